"""Exports of a real trained digits-cnn in every format, verified against the Keras model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import trained_once

from tfbench import export, rundir
from tfbench.errors import UserError
from tfbench.export import formats, keras_formats, reference, tflite
from tfbench.export.report import report_table

# Keras warns that a finite tf.data pipeline "ran out of data" after fit/evaluate on it.
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")

EPOCHS = 8


def make_run(run_dir: Path, preset: str = "digits-cnn", epochs: int = EPOCHS, overrides=()) -> Path:
    """Train `preset` for a few epochs with the real builder and data, and save it as a run would."""
    from tfbench import data
    from tfbench.build import apply_seed, build_model, needs_one_hot
    from tfbench.spec import load_experiment, save_experiment

    exp = load_experiment(preset, [f"train.epochs={epochs}", *overrides])
    info = data.describe(exp.data, seed=exp.train.seed)
    apply_seed(exp.train)
    model = build_model(exp, info)
    bundle = data.load(exp.data, seed=exp.train.seed, one_hot=needs_one_hot(exp, info))
    model.fit(bundle.train, validation_data=bundle.validation, epochs=exp.train.epochs, verbose=0, shuffle=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_experiment(exp, run_dir / "experiment.toml")
    model.save(str(run_dir / "model.keras"))
    return run_dir


def digits_cnn_run(target: Path) -> Path:
    """A copy at `target` of digits-cnn trained for four epochs (94 % accurate), trained once per test process."""
    return trained_once(target, ("digits-cnn", 4), lambda folder: make_run(folder, epochs=4))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return digits_cnn_run(tmp_path_factory.mktemp("runs") / "digits-cnn-20260101-000000")


@pytest.fixture(scope="module")
def exported(digits_run) -> dict[str, dict]:
    """Every format, plus the quantised TFLite variants, exported once for the module."""
    reports = export.export_run(digits_run, ["keras", "savedmodel", "tflite"])
    by_key = {formats.report_key(r["format"]): r for r in reports}
    for quantize in ("dynamic", "float16", "int8"):
        by_key[f"tflite-{quantize}"] = export.export_model(digits_run, "tflite", quantize=quantize)
    by_key["tflite-int8-io"] = export.export_model(digits_run, "tflite", quantize="int8", int8_io=True)
    return by_key


def _validation(run_dir: Path):
    from tfbench import data
    from tfbench.spec import load_experiment

    exp = load_experiment(run_dir / "experiment.toml")
    bundle = data.load(exp.data, seed=exp.train.seed)
    return reference.take_samples(bundle.validation, 10_000)


def _keras_outputs(run_dir: Path, x):
    model = rundir.load_model(run_dir / "model.keras")
    return reference.predict_keras(model, x)


@pytest.mark.slow
def test_keras_export_reloads_identically(digits_run, exported):
    report = exported["keras"]
    path = digits_run / report["path"]
    assert path == digits_run / "exports" / "model.keras" and path.is_file()
    assert report["identical"] is True and report["max_abs_diff"] == 0.0
    x, _ = _validation(digits_run)
    assert np.array_equal(_keras_outputs(path.parent.parent, x), reference.predict_keras(rundir.load_model(path), x))


def test_savedmodel_serves_the_same_outputs(digits_run, exported):
    report = exported["savedmodel"]
    path = digits_run / report["path"]
    assert (path / "saved_model.pb").is_file()
    assert report["signature"] == "serving_default"
    x, _ = _validation(digits_run)
    served = keras_formats.savedmodel_predictor(path)(x)
    np.testing.assert_allclose(served, _keras_outputs(digits_run, x), atol=1e-5)
    assert report["agreement"] == 1.0


def test_float_tflite_matches_keras(digits_run, exported):
    report = exported["tflite"]
    assert report["max_abs_diff"] < 1e-4
    x, y = _validation(digits_run)
    outputs = tflite.TFLiteRunner(digits_run / report["path"]).predict(x)
    np.testing.assert_allclose(outputs, _keras_outputs(digits_run, x), atol=1e-4)
    assert report["agreement"] == 1.0
    assert report["keras_metric"] > 0.8, "the trained digits-cnn should be well past chance"
    assert report["export_metric"] == pytest.approx(report["keras_metric"])
    assert report["latency_ms"] > 0 and report["input_dtype"] == "float32"


def test_int8_agrees_and_is_small(digits_run, exported):
    floating, int8 = exported["tflite"], exported["tflite-int8"]
    assert int8["agreement"] >= 0.97
    assert int8["size_bytes"] < 0.4 * floating["size_bytes"], (int8["size_bytes"], floating["size_bytes"])
    # The agreement in the report is what the interpreter gives on the whole validation split.
    x, _ = _validation(digits_run)
    mine = tflite.TFLiteRunner(digits_run / int8["path"]).predict(x).argmax(-1)
    assert np.mean(mine == _keras_outputs(digits_run, x).argmax(-1)) == pytest.approx(int8["agreement"])


def test_int8_io_model_takes_and_gives_int8(digits_run, exported):
    report = exported["tflite-int8-io"]
    assert report["input_dtype"] == "int8" and report["output_dtype"] == "int8"
    assert report["agreement"] >= 0.97


def test_dynamic_and_float16_are_smaller_and_agree(exported):
    for key in ("tflite-dynamic", "tflite-float16"):
        assert exported[key]["size_bytes"] < exported["tflite"]["size_bytes"]
        assert exported[key]["agreement"] >= 0.97


def test_report_json_merges_every_export(digits_run, exported):
    merged = json.loads((digits_run / "exports" / "report.json").read_text())
    assert set(merged) == {
        "keras",
        "savedmodel",
        "tflite",
        "tflite-dynamic",
        "tflite-float16",
        "tflite-int8",
        "tflite-int8-io",
    }
    for key, report in merged.items():
        assert report["size_bytes"] == exported[key]["size_bytes"] > 0
        assert report["split"] == "validation" and report["samples"] == 359  # 20% of 1,797 digits
    leftovers = [p.name for p in (digits_run / "exports").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_report_table_shows_every_export(exported):
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    console.print(report_table(list(exported.values())))
    text = console.export_text()
    assert "tflite-int8" in text and "savedmodel" in text and "accuracy" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# -- bad input --------------------------------------------------------------------------------


def test_run_dir_without_model(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "experiment.toml").write_text('name = "x"\n')
    with pytest.raises(UserError, match="no trained model") as info:
        export.export_model(run, "tflite")
    assert info.value.location == str(run)
    assert not (run / "exports").exists()


def test_missing_run_dir(tmp_path):
    with pytest.raises(UserError, match="no such run directory"):
        export.export_model(tmp_path / "nope", "keras")


@pytest.mark.parametrize(
    "fmt, quantize, int8_io, where",
    [
        ("onnxx", "none", False, "--format"),
        ("tflite", "int4", False, "--quantize"),
        ("keras", "dynamic", False, "--quantize"),
        ("tflite", "dynamic", True, "--int8-io"),
    ],
)
def test_bad_options_leave_nothing(digits_run, tmp_path, fmt, quantize, int8_io, where):
    out = tmp_path / "out"
    with pytest.raises(UserError) as info:
        export.export_model(digits_run, fmt, quantize=quantize, int8_io=int8_io, out_dir=out)
    assert info.value.location == where
    assert not out.exists()


def test_close_match_for_a_misspelt_format():
    with pytest.raises(UserError) as info:
        formats.check_options("tflight")
    assert "tflite" in (info.value.hint or "")


def test_unwritable_folder(digits_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write") as info:
        export.export_model(digits_run, "keras", out_dir=blocker / "exports")
    assert info.value.location == str(blocker / "exports")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(digits_run, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write"):
            export.export_model(digits_run, "keras", out_dir=out)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.slow
def test_failed_export_leaves_no_partial_file(digits_run, tmp_path, monkeypatch):
    """A conversion that dies half way leaves neither the artifact nor a staging folder."""
    out = tmp_path / "out"

    def broken(path, reference):
        raise RuntimeError("verification blew up")

    monkeypatch.setattr(tflite, "verify_tflite", broken)
    with pytest.raises(RuntimeError, match="blew up"):
        export.export_model(digits_run, "tflite", out_dir=out)
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_re_export_replaces_a_savedmodel_in_place(digits_run, tmp_path):
    out = tmp_path / "out"
    first = export.export_model(digits_run, "savedmodel", out_dir=out)
    (out / "saved_model" / "stale.txt").write_text("old")
    second = export.export_model(digits_run, "savedmodel", out_dir=out)
    assert not (out / "saved_model" / "stale.txt").exists()
    assert second["max_abs_diff"] == first["max_abs_diff"] == 0.0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "saved_model"]


# -- ops TFLite lacks -------------------------------------------------------------------------


@pytest.mark.slow
def test_missing_ops_are_named_with_the_option_that_allows_them(tmp_path):
    import keras
    import tensorflow as tf

    class Determinant(keras.layers.Layer):
        def call(self, x):
            return tf.reshape(tf.linalg.det(tf.reshape(x, (-1, 2, 2))), (-1, 1))

    model = keras.Sequential([keras.Input((4,)), Determinant(), keras.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    ref = reference.Reference(
        x=x,
        y=None,
        outputs=reference.predict_keras(model, x),
        label_kind="regression",
        logits=False,
        split="validation",
        keras_metric=None,
    )
    with pytest.raises(UserError) as info:
        export.export_loaded(model, "tflite", tmp_path / "out", ref)
    assert "MatrixDeterminant" in info.value.message
    assert "--select-tf-ops" in info.value.hint and "SELECT_TF_OPS" in info.value.hint
    assert "Traceback" not in str(info.value) and "MLIR" not in str(info.value)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []
    # With TensorFlow kernels allowed the conversion goes through.
    content = tflite.convert_tflite(model, ref, select_tf_ops=True)
    assert len(content) > 0


# -- automatic export at the end of a run -----------------------------------------------------


@pytest.mark.slow
def test_auto_export_emits_one_event_per_format(digits_run, tmp_path):
    import shutil

    from tfbench import data
    from tfbench.spec import load_experiment

    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("exports"))
    exp = load_experiment(run / "experiment.toml")
    assert exp.export.formats == ["keras", "tflite"] and exp.export.tflite_quantization == "dynamic"
    model = rundir.load_model(run / "model.keras")
    bundle = data.load(exp.data, seed=exp.train.seed)
    events = []
    reports = export.auto_export(run, exp, model, bundle, lambda kind, **fields: events.append((kind, fields)))
    assert [kind for kind, _ in events] == ["export", "export"]
    assert [f["format"] for _, f in events] == ["keras", "tflite"]
    assert events[1][1]["path"] == "exports/model.dynamic.tflite"
    assert (run / "exports" / "model.dynamic.tflite").is_file()
    assert reports[1]["agreement"] >= 0.97


def test_auto_export_failure_is_logged_not_raised(digits_run, tmp_path):
    from tfbench import data
    from tfbench.spec import load_experiment

    run = tmp_path / "run"
    run.mkdir()
    (run / "exports").write_text("a file where the exports folder should be")
    exp = load_experiment(digits_run / "experiment.toml")
    model = rundir.load_model(digits_run / "model.keras")
    bundle = data.load(exp.data, seed=exp.train.seed)
    events = []
    reports = export.auto_export(run, exp, model, bundle, lambda kind, **fields: events.append((kind, fields)))
    assert reports == []
    assert events and events[0][0] == "log" and events[0][1]["level"] == "error"
    assert "cannot write" in events[0][1]["message"]


def test_importing_export_codegen_and_evaluation_does_not_import_tensorflow():
    """`tfbench --help` and `tfbench code` stay instant: TensorFlow is imported only when used."""
    import subprocess
    import sys

    code = (
        "import sys, tfbench.export, tfbench.export.tflite, tfbench.export.keras_formats, tfbench.codegen\n"
        "import tfbench.evaluation, tfbench.export.onnx, tfbench.export.openvino, tfbench.export.matrix\n"
        "import tfbench.export.variants, tfbench.export.runners, tfbench.export.report\n"
        "heavy = ('tensorflow', 'keras', 'ai_edge_litert', 'onnx', 'onnxruntime', 'tf2onnx', 'openvino')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# -- a recurrent regressor --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "sine-rnn-20260101-000000", "sine-rnn", epochs=2)


@pytest.mark.slow
def test_lstm_converts_for_one_sample_at_a_time(sine_run):
    """Keras 3 runs an LSTM as a tensor-list loop, which TFLite lowers only with a static batch."""
    report = export.export_model(sine_run, "tflite")
    assert report["batch_size"] == 1
    assert report["agreement"] is None and report["metric"] == "mae"
    assert report["max_abs_diff"] < 1e-4
    assert report["export_metric"] == pytest.approx(report["keras_metric"], rel=1e-4)
    x, _ = _validation(sine_run)
    outputs = tflite.TFLiteRunner(sine_run / report["path"]).predict(x[:7])
    np.testing.assert_allclose(outputs, _keras_outputs(sine_run, x[:7]), atol=1e-4)


@pytest.mark.slow
def test_a_converter_crash_is_a_clear_error(sine_run):
    """int8 calibration of an LSTM segfaults inside TensorFlow 2.21; the export survives it."""
    try:
        report = export.export_model(sine_run, "tflite", quantize="int8")
    except UserError as err:
        assert err.location == "export.tflite_quantization"
        assert "crashed: SIGSEGV while calibrating int8" in err.message and "LSTM" in err.message
        assert "dynamic" in err.hint
        assert not (sine_run / "exports" / "model.int8.tflite").exists()
    else:  # a TensorFlow that calibrates LSTMs: then the export must verify like any other
        assert report["max_abs_diff"] < 0.1
    assert [p for p in (sine_run / "exports").iterdir() if p.name.startswith(".")] == []


def _keras_accuracy(run_dir: Path) -> float:
    """Keras' own accuracy on the run's validation data (the compiled model's evaluate)."""
    import keras

    from tfbench.spec import load_experiment

    exp = load_experiment(run_dir / "experiment.toml")
    model = keras.saving.load_model(str(run_dir / "model.keras"))
    return model.evaluate(rundir.load_bundle(exp).validation, return_dict=True, verbose=0)["accuracy"]


def test_reported_accuracy_is_keras_own(digits_run, exported):
    assert exported["keras"]["keras_metric"] == pytest.approx(_keras_accuracy(digits_run), abs=1e-6)


@pytest.mark.slow
def test_one_hot_labels_are_scored_the_same(tmp_path):
    run = make_run(tmp_path / "run", "digits-mlp", epochs=2, overrides=['train.loss="categorical_crossentropy"'])
    report = export.export_model(run, "keras")
    assert report["keras_metric"] == pytest.approx(_keras_accuracy(run), abs=1e-6)
    assert report["keras_metric"] > 0.5


def test_stderr_is_captured_at_the_descriptor_but_never_under_a_textual_ui():
    """Converter chatter written to fd 2 is caught; a process drawing a Textual UI keeps its fd 2."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from tfbench.native_log import captured_stderr\n"
        "with captured_stderr() as text:\n"
        "    os.write(2, b'native chatter\\n')\n"
        "print('captured' if 'native chatter' in text[0] else 'missed')\n"
        "import textual\n"
        "with captured_stderr() as text:\n"
        "    os.write(2, b'ui frame\\n')\n"
        "print('left alone' if text == [] else 'captured under a UI')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["captured", "left", "alone"], result.stdout + result.stderr
    assert result.stderr == "ui frame\n"
