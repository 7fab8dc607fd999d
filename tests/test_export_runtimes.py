"""ONNX, OpenVINO and Keras-native quantisation: every file loaded by its own runtime and checked.

One tiny trained run per kind of model, shared by the module (conversions take seconds each on
two cores): digits-mlp for the runtimes and Keras' quantisation, penguins for a table's string
lookups, and a mixed-precision digits-mlp for the float32 cast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from no_network.sitecustomize import pythonpath
from test_export import make_run

from tfbench import export, rundir
from tfbench.cli import cli
from tfbench.errors import UserError
from tfbench.export import formats, reference
from tfbench.export.report import read_report

pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "digits-mlp-20260101-000000", "digits-mlp", epochs=2)


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "penguins-20260101-000000", "penguins", epochs=2)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _validation(run_dir: Path):
    from tfbench import data
    from tfbench.spec import load_experiment

    exp = load_experiment(run_dir / "experiment.toml")
    return reference.take_samples(data.load(exp.data, seed=exp.train.seed).validation, 10_000)


@pytest.mark.slow
def test_onnx_and_openvino_load_in_their_runtimes_and_agree_with_keras(mlp_run):
    import onnxruntime as ort

    from tfbench.export.openvino import OpenVinoRunner

    reports = {r["format"]: r for r in export.export_run(mlp_run, ["onnx", "openvino"])}
    x, _ = _validation(mlp_run)
    keras_out = reference.predict_keras(rundir.load_model(mlp_run / "model.keras"), x)
    session = ort.InferenceSession(str(mlp_run / "exports" / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    openvino_out = OpenVinoRunner(mlp_run / "exports" / "openvino").predict(x)
    for outputs in (onnx_out, openvino_out):
        assert np.array_equal(outputs.argmax(-1), keras_out.argmax(-1))
        assert np.abs(outputs - keras_out).max() <= 1e-5 * np.abs(keras_out).max()
    assert (mlp_run / "exports" / "openvino" / "model.xml").is_file()
    assert (mlp_run / "exports" / "openvino" / "model.bin").is_file()
    for report in reports.values():
        assert report["agreement"] == 1.0 and report["relative_diff"] <= 1e-5
        assert report["compared"] >= reference.MIN_COMPARED
        assert report["latency_runs"] >= 30 and report["latency_threads"] == 1
        assert report["latency_p10_ms"] <= report["latency_ms"] <= report["latency_p90_ms"]
        assert report["size_ratio"] == pytest.approx(report["float_keras_bytes"] / report["size_bytes"])
    assert set(read_report(mlp_run / "exports")) >= {"onnx", "openvino"}


@pytest.mark.slow
def test_keras_int8_and_int4_quantise_every_dense_layer_and_reload(mlp_run):
    import keras

    reports = {
        (r["format"], r["quantization"]): r
        for q in ("int8", "int4")
        for r in export.export_run(mlp_run, ["keras", "onnx"], quantize=q)
    }
    for q in ("int8", "int4"):
        report = reports[("keras", q)]
        assert report["quantized_by"] == "keras" and report["path"] == f"exports/model.{q}.keras"
        assert report["quantized_share"] == 1.0 and report["not_quantized"] == []
        assert report["identical"] is True  # the reload reproduces the quantised model exactly
        assert report["size_bytes"] < report["float_keras_bytes"]
        reloaded = rundir.load_model(mlp_run / report["path"])
        dense = [layer for layer in reloaded.layers if isinstance(layer, keras.layers.Dense)]
        assert dense and all(layer.quantization_mode == q for layer in dense)
        # ONNX Runtime computes the Keras-quantised graph as Keras does.
        assert reports[("onnx", q)]["runtime_diff"] <= 1e-5
    assert reports[("keras", "int8")]["agreement"] >= 0.95
    assert reports[("keras", "int4")]["size_bytes"] < reports[("keras", "int8")]["size_bytes"]


@pytest.mark.slow
def test_keras_int8_on_a_dense_heavy_preset_is_small_and_agrees(tmp_path):
    """shapes-mlp (784→256→256→3, offline): int8 ≥ 3.5× smaller with ≥ 99 % top-1 agreement, int4 ≥ 6×
    with the accuracy change reported."""
    run = make_run(tmp_path / "shapes-mlp", "shapes-mlp", epochs=1)
    int8 = export.export_model(run, "keras", quantize="int8")
    int4 = export.export_model(run, "keras", quantize="int4")
    assert int8["size_ratio"] >= 3.5 and int8["agreement"] >= 0.99, (int8["size_ratio"], int8["agreement"])
    assert int4["size_ratio"] >= 6.0, int4["size_ratio"]
    assert int4["export_metric"] is not None and int4["keras_metric"] is not None


def test_layers_keras_cannot_quantise_are_named():
    import keras

    from tfbench.export.variants import quantized_copy

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="features")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    copy, notes = quantized_copy(model, "int8")
    assert notes["not_quantized"] == ["features (Conv2D, 40 params)"]
    assert notes["quantized_layers"] == 1 and 0 < notes["quantized_share"] < 1
    assert model.get_layer("head").quantization_mode is None, "the run's model is never changed"
    only_conv = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(UserError, match="quantises none of this model's layers"):
        quantized_copy(only_conv, "int8")


@pytest.mark.slow
def test_a_runtime_that_computes_a_model_wrongly_leaves_no_export(mlp_run):
    """OpenVINO (2026.4, pinned) loads a Keras-int8 graph but computes it wrongly: refused, not kept."""
    with pytest.raises(UserError, match="computes the Keras-int8 model wrongly") as caught:
        export.export_model(mlp_run, "openvino", quantize="int8")
    assert caught.value.location == "--format openvino"
    exports = mlp_run / "exports"
    assert not (exports / "openvino.int8").exists() and "openvino-int8" not in read_report(exports)
    assert not [p for p in exports.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_table_lookups_are_refused_with_one_line_and_after_preprocessing_exports(penguins_run, tmp_path):
    out = tmp_path / "out"
    for fmt in ("onnx", "openvino"):
        result = invoke("export", str(penguins_run), "--format", fmt, "--out", str(out))
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: --format {fmt}: the StringLookup")
        assert "--after-preprocessing" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, no staging left
    result = invoke("export", str(penguins_run), "--format", "onnx", "--after-preprocessing", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = read_report(out)["onnx"]
    assert report["agreement"] == 1.0 and report["relative_diff"] <= 1e-5
    columns = ["bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm", "island", "sex", "year"]
    assert report["inputs"]["after_preprocessing"] is True and report["inputs"]["columns"] == columns
    # 69 validation rows: compared on 256 (topped up from training), scored on the validation rows.
    assert report["compared"] >= reference.MIN_COMPARED and report["samples"] >= reference.MIN_COMPARED


@pytest.mark.slow
def test_predict_with_an_export_scores_in_its_runtime(penguins_run):
    from tfbench.prediction import predict_inputs

    export.export_model(penguins_run, "onnx", after_preprocessing=True)
    csv = Path(__file__).resolve().parent.parent / "presets" / "data" / "penguins.csv"
    by_keras = predict_inputs(penguins_run, csv)
    by_onnx = predict_inputs(penguins_run, csv, with_export="onnx")
    assert by_onnx["with"] == "onnx" and by_onnx["samples"] == by_keras["samples"] > 300
    assert [r["predicted"] for r in by_onnx["rows"]] == [r["predicted"] for r in by_keras["rows"]]
    result = invoke("predict", str(penguins_run), "--input", str(csv), "--with", "onnx", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["accuracy"] == by_keras["accuracy"]
    missing = invoke("predict", str(penguins_run), "--input", str(csv), "--with", "tflite-int8")
    assert missing.exit_code == 2 and missing.stderr.startswith("error: --with: the run has no tflite-int8 export")


@pytest.mark.slow
def test_mixed_precision_runs_export_float32_graphs(tmp_path):
    import onnx

    run = make_run(tmp_path / "mixed", "digits-mlp", epochs=1, overrides=["train.mixed_precision=mixed_float16"])
    report = export.export_model(run, "onnx")
    assert report["cast_to_float32"] is True and report["agreement"] == 1.0
    graph = onnx.load(str(run / "exports" / "model.onnx"))
    assert {init.data_type for init in graph.graph.initializer} <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}


def test_a_missing_runtime_is_one_line_naming_the_extra(mlp_run):
    fmt = formats.register(
        formats.ExportFormat(
            "faraway",
            "model.far",
            "needs a runtime that is not installed",
            "x:Y",
            extra="faraway",
            runtime=("no_rt_x",),
        )
    )
    try:
        with pytest.raises(UserError) as caught:
            export.export_model(mlp_run, fmt.name)
        assert (
            str(caught.value)
            == "--format faraway: needs no_rt_x, which is not installed (pip install 'tfbench[faraway]')"
        )
    finally:
        formats.unregister("faraway")


def test_relative_difference_is_scaled_by_the_outputs():
    """A randomly initialised model's outputs can be ~1e-12: an absolute tolerance would pass anything."""
    tiny = np.full((4, 3), 1e-12, "float32")
    ref = reference.Reference(tiny, None, tiny, "categorical", False, "validation", None)
    checks = ref.compare(tiny * 2)
    assert checks["max_abs_diff"] < 1e-11 and checks["relative_diff"] == pytest.approx(1.0)


def test_a_quantised_file_slower_than_its_float_file_is_flagged(tmp_path):
    from tfbench.export.exporter import slower_than_float
    from tfbench.export.report import merge_report

    merge_report(tmp_path, "onnx", {"latency_ms": 0.10})
    onnx = formats.get_format("onnx")
    assert slower_than_float(tmp_path, onnx, "int8", {"latency_ms": 0.12}) == {
        "float_latency_ms": 0.10,
        "slower_than_float": True,
    }
    assert slower_than_float(tmp_path, onnx, "int8", {"latency_ms": 0.05})["slower_than_float"] is False
    assert slower_than_float(tmp_path, formats.get_format("keras"), "int8", {"latency_ms": 1.0}) == {}


def test_openvino_is_imported_without_its_telemetry():
    code = (
        "from tfbench.export.openvino import import_openvino; import sys\n"
        "import_openvino()\n"
        "from openvino.tools.ovc import telemetry_utils\n"
        "print(sys.modules.get('openvino_telemetry'), telemetry_utils.tm.__name__)\n"
    )
    env = {"PYTHONPATH": pythonpath(), "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "openvino.tools.ovc.telemetry_stub"]


@pytest.mark.slow
def test_a_preset_naming_onnx_and_openvino_exports_them_when_the_run_ends(mlp_run, tmp_path):
    """`[export] formats = ["keras", "onnx", "openvino"]`: written at the end of a run, unquantised
    (the preset's `tflite_quantization` is TFLite's alone)."""
    import shutil

    from tfbench import data
    from tfbench.spec import load_experiment

    run = tmp_path / "run"
    shutil.copytree(mlp_run, run, ignore=shutil.ignore_patterns("exports"))
    formats_set = 'export.formats=["keras", "onnx", "openvino"]'
    exp = load_experiment(run / "experiment.toml", [formats_set, "export.tflite_quantization=dynamic"])
    model = rundir.load_model(run / "model.keras")
    bundle = data.load(exp.data, seed=exp.train.seed)
    events = []
    reports = export.auto_export(run, exp, model, bundle, lambda kind, **fields: events.append((kind, fields)))
    assert [(kind, f.get("format")) for kind, f in events] == [
        ("export", "keras"),
        ("export", "onnx"),
        ("export", "openvino"),
    ]
    assert [r["quantization"] for r in reports] == ["none", "none", "none"]
    assert (run / "exports" / "model.onnx").is_file() and (run / "exports" / "openvino" / "model.xml").is_file()
    assert all(r["agreement"] == 1.0 for r in reports)


def test_training_only_random_layers_are_left_out_of_runtime_exports(tmp_path):
    """RandomFlip passes inputs through at inference, but its graph keeps random ops ONNX Runtime
    has no kernel for: the ONNX file is made without it and still agrees with the model."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.RandomFlip("horizontal", name="random_flip")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GaussianNoise(0.1, name="gaussian_noise")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    samples = np.random.default_rng(0).uniform(0, 1, (256, 8, 8, 1)).astype("float32")
    outputs = reference.predict_keras(model, samples)
    ref = reference.Reference(samples, None, outputs, "categorical", False, "validation", None)
    report = export.export_loaded(model, "onnx", tmp_path, ref)
    assert report["left_out"] == ["random_flip (RandomFlip)", "gaussian_noise (GaussianNoise)"]
    assert report["agreement"] == 1.0 and report["relative_diff"] <= 1e-5
    assert [type(layer).__name__ for layer in model.layers].count("RandomFlip") == 1, "the model is unchanged"
