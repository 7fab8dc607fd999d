"""A preset's own code: refused unless allowed, never imported by reading, first-class once allowed.

Real commands on tiny data; the modules are files in tests/fixtures/code/, one of which leaves a mark
when imported, so "never imported" is a fact on disk, not a mock. A command runs in this process
(`tfbench_here`) unless only a process shows what is checked: consent asked of a fresh interpreter, a
kill, a study's workers, loading without tfbench. Each test's copy of a module gets a line of its own,
so its digest (and the name it is imported under) is new to this process and an import here still
leaves its mark.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from no_network.sitecustomize import pythonpath
from tiny_runs import REPO, runner_env, tfbench_here, tfbench_process, wait_for_event

from tfbench.engine import events as ev
from tfbench.rundir import read_history

FIXTURES = Path(__file__).parent / "fixtures" / "code"

SPIRAL = """
name = "{name}"
[code]
modules = [{modules}]
[data]
source = "builtin:spiral"
batch_size = 32
{layers}
[train]
epochs = {epochs}
optimizer = {{ type = "Adam", learning_rate = 0.01 }}
loss = {loss}
metrics = {metrics}
seed = 7
{extra}
"""
SCALE_LAYERS = """
[[model.layers]]
type = "Scale"
factor = 2.0
[[model.layers]]
type = "Dense"
units = 8
activation = "relu"
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""


def code_preset(
    folder: Path,
    modules: tuple[str, ...] = ("sentinel",),
    layers: str = SCALE_LAYERS,
    epochs: int = 2,
    loss: str = '"binary_crossentropy"',
    metrics: str = '["accuracy"]',
    extra: str = "",
    name: str = "own",
) -> Path:
    """A spiral preset whose [code] lists copies of the fixture modules in `folder/code/`, each a version
    of its own (a last comment naming `folder`): never imported in this process before."""
    (folder / "code").mkdir(parents=True, exist_ok=True)
    for module in modules:
        text = (FIXTURES / f"{module}.py").read_text(encoding="utf-8")
        (folder / "code" / f"{module}.py").write_text(f"{text}\n# the copy in {folder}\n", encoding="utf-8")
    listed = ", ".join(f'"code/{m}.py"' for m in modules)
    text = SPIRAL.format(
        name=name, modules=listed, layers=layers, epochs=epochs, loss=loss, metrics=metrics, extra=extra
    )
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def only_run(runs_dir: Path) -> Path:
    [found] = [p for p in runs_dir.iterdir() if p.is_dir()]
    return found


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


# -- nothing is imported without consent ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("validate",),
        ("run", "--quiet"),
        ("code",),
        ("tune", "--trials", "1"),
        ("layers", "--preset"),
    ],
    ids=["validate", "run", "code", "tune", "layers"],
)
def test_without_consent_a_preset_with_code_is_refused_in_one_line_and_nothing_is_imported(tmp_path, command):
    tune = '[tune]\nobjective = "val_loss"\n[tune.space]\n"model.layers[1].units" = { int = [4, 8] }'
    preset = code_preset(tmp_path, extra=tune)
    args = [*command, str(preset)] if command[0] == "layers" else [command[0], str(preset), *command[1:]]
    if command[0] in ("run", "tune"):
        args += ["--runs-dir" if command[0] == "run" else "--study-dir", str(tmp_path / "out")]
    line = one_error_line(tfbench_process(*args))  # a fresh interpreter: nothing imported before
    assert "sentinel.py" in line and "sha256" in line and "--allow-code" in line and "TFBENCH_ALLOW_CODE" in line
    assert not (tmp_path / "code" / "sentinel.imported").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def imported_here(module: Path) -> bool:
    """Whether this process imported this version of a module file (under its digest's own name)."""
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    return any(name.startswith(f"tfbench_code_{module.stem}_{digest[:16]}") for name in sys.modules)


@pytest.fixture(scope="module")
def spiral_with_code(tmp_path_factory) -> Path:
    """A folder with a preset whose [code] is the sentinel module and its run, trained with --allow-code
    in a process of its own: nothing of it was ever imported in this one."""
    folder = tmp_path_factory.mktemp("spiral-with-code")
    preset = code_preset(folder)
    ran = tfbench_process("run", preset, "--runs-dir", folder / "runs", "--quiet", "--allow-code")
    assert ran.returncode == 0, ran.stderr[-3000:]
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    """A copy of a trained folder (preset, code and runs) this test may change."""
    return Path(shutil.copytree(folder, tmp_path / "copy"))


@pytest.mark.slow
def test_allowed_code_is_imported_and_a_run_keeps_a_copy_with_its_digest(spiral_with_code):
    folder = spiral_with_code
    assert (folder / "code" / "sentinel.imported").exists()
    run_dir = only_run(folder / "runs")
    manifest = json.loads((run_dir / "code" / "manifest.json").read_text())["modules"]
    digest = hashlib.sha256((folder / "code" / "sentinel.py").read_bytes()).hexdigest()
    assert manifest == [{"file": "sentinel.py", "sha256": digest, "source": str(folder / "code" / "sentinel.py")}]
    assert (run_dir / "code" / "sentinel.py").read_bytes() == (folder / "code" / "sentinel.py").read_bytes()
    assert str(run_dir / "code" / "sentinel.py") in (run_dir / "experiment.toml").read_text()


def test_the_environment_allows_code_too(tmp_path):
    preset = code_preset(tmp_path)
    checked = tfbench_here("validate", preset, env={"TFBENCH_ALLOW_CODE": "1"})
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "Scale" in checked.stdout
    assert (tmp_path / "code" / "sentinel.imported").exists()


@pytest.mark.slow  # the trained run it reads takes seconds
def test_runs_and_watch_of_a_run_with_code_never_import_it(spiral_with_code, tmp_path):
    folder = copy_of(spiral_with_code, tmp_path)
    mark = folder / "code" / "sentinel.imported"
    run_dir = only_run(folder / "runs")
    copy_mark = run_dir / "code" / "sentinel.imported"
    mark.unlink()
    listed = tfbench_here("runs", folder / "runs", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert json.loads(listed.stdout)[0]["status"] == "completed"
    watched = tfbench_here("watch", run_dir)  # not a terminal: plain lines to the end
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert not mark.exists() and not copy_mark.exists()
    assert not imported_here(run_dir / "code" / "sentinel.py")


# -- errors in the user's code: one line naming the file and line -------------------------------------------


def test_a_module_that_fails_to_import_is_one_line_naming_its_file_and_line(tmp_path):
    preset = code_preset(tmp_path, modules=("broken", "sentinel"))
    line = one_error_line(tfbench_here("validate", preset, "--allow-code"))
    assert f"{tmp_path / 'code' / 'broken.py'}:6: cannot import it: NameError" in line
    assert "undefined_name" in line


def test_a_constructor_that_raises_is_one_line_naming_the_layer_and_the_line(tmp_path):
    layers = '[[model.layers]]\ntype = "Fussy"\ndivisor = 0.0\n[[model.layers]]\ntype = "Dense"\nunits = 1\n'
    layers += 'activation = "sigmoid"'
    preset = code_preset(tmp_path, modules=("raising",), layers=layers)
    line = one_error_line(tfbench_here("validate", preset, "--allow-code"))
    assert "model.layers[0]: Fussy: ZeroDivisionError: float division by zero (raising.py:15)" in line


def test_a_class_the_modules_do_not_define_is_an_unknown_layer_once_they_are_imported(tmp_path):
    layers = SCALE_LAYERS.replace('type = "Scale"', 'type = "Scal"')
    preset = code_preset(tmp_path, layers=layers)
    line = one_error_line(tfbench_here("validate", preset, "--allow-code"))
    assert "model.layers[0]: unknown layer 'Scal'" in line and "Scale" in line


# -- first-class once allowed -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_custom_loss_metric_and_callback_are_listed_with_their_forms_and_reach_the_history(tmp_path):
    preset = code_preset(
        tmp_path,
        modules=("sentinel", "extras"),
        loss='{ type = "FocalLoss", gamma = 1.5 }',
        metrics='["accuracy", { type = "MeanConfidence" }]',
        extra='callbacks = [ { type = "WeightNorm" } ]',
    )
    listed = tfbench_here("layers", "--preset", preset, "--allow-code")
    assert listed.returncode == 0, listed.stderr[-3000:]
    text = listed.stdout
    assert "extras.py (the preset's own code):" in text and "sentinel.py (the preset's own code):" in text
    assert re.search(r"FocalLoss\s+loss\s+Binary focal loss.*\(gamma=2\.0\)", text)
    assert re.search(r"MeanConfidence\s+metric\s+How sure the model is", text)
    assert re.search(r"WeightNorm\s+callback\s+Adds the L2 norm", text)
    assert re.search(r"Scale\s+layer\s+Multiplies its input by a fixed factor.*\(factor=1\.0\)", text)
    ran = tfbench_here("run", preset, "--runs-dir", tmp_path / "runs", "--quiet", "--allow-code")
    assert ran.returncode == 0, ran.stderr[-3000:]
    rows = read_history(only_run(tmp_path / "runs"))
    assert len(rows) == 2
    for column in ("loss", "mean_confidence", "val_mean_confidence", "weight_norm"):
        assert all(isinstance(r[column], float) for r in rows), (column, rows)
    assert rows[0]["weight_norm"] != rows[1]["weight_norm"]


def test_a_wrong_argument_of_a_custom_class_is_located_by_its_derived_form(tmp_path):
    preset = code_preset(tmp_path, modules=("sentinel", "extras"), loss='{ type = "FocalLoss", gama = 1.5 }')
    line = one_error_line(tfbench_here("validate", preset, "--allow-code"))
    assert "train.loss.gama: FocalLoss has no argument 'gama'" in line and "gamma" in line


# -- a changed module ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_refuses_a_run_whose_module_changed_and_allow_changed_code_continues(tmp_path):
    preset = code_preset(tmp_path, epochs=3)
    ran = tfbench_here(
        "run", preset, "--runs-dir", tmp_path / "runs", "--quiet", "--allow-code", "--set", "train.epochs=2"
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    run_dir = only_run(tmp_path / "runs")
    source = tmp_path / "code" / "sentinel.py"
    source.write_text(source.read_text() + "\n# edited after the run\n")
    refused = tfbench_here("resume", run_dir, "--epochs", "3", "--quiet", "--allow-code")
    line = one_error_line(refused)
    assert "sentinel.py changed since the run started" in line and "--allow-changed-code" in line
    resumed = tfbench_here("resume", run_dir, "--epochs", "3", "--quiet", "--allow-code", "--allow-changed-code")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]
    assert "edited" not in (run_dir / "code" / "sentinel.py").read_text()  # the run's own copy went on


@pytest.mark.slow  # the trained run it reads takes seconds
def test_resume_without_consent_is_refused_too(spiral_with_code, tmp_path):
    folder = copy_of(spiral_with_code, tmp_path)
    run_dir = only_run(folder / "runs")
    for mark in (folder / "code" / "sentinel.imported", run_dir / "code" / "sentinel.imported"):
        mark.unlink(missing_ok=True)
    line = one_error_line(tfbench_here("resume", run_dir, "--epochs", "3", "--quiet"))
    assert "code/sentinel.py" in line and "--allow-code" in line
    line = one_error_line(tfbench_here("export", run_dir, "--format", "keras"))
    assert "--allow-code" in line
    assert not (run_dir / "code" / "sentinel.imported").exists()
    assert not imported_here(run_dir / "code" / "sentinel.py")


# -- a model class with its own train_step ---------------------------------------------------------------------

VAE_LAYERS = """
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Rescaling"
scale = 0.0625
[[model.layers]]
type = "Dense"
units = 32
activation = "relu"
[[model.layers]]
type = "Dense"
units = 4
[[model.layers]]
type = "Sampling"
[[model.layers]]
type = "Dense"
units = 32
activation = "relu"
[[model.layers]]
type = "Dense"
units = 64
activation = "sigmoid"
"""


def vae_preset(folder: Path) -> Path:
    preset = code_preset(folder, modules=("vae",), layers=VAE_LAYERS, epochs=4, name="vae", loss='"auto"')
    text = preset.read_text().replace('source = "builtin:spiral"', 'source = "builtin:digits"')
    text = text.replace("[code]", '[model]\nclass = "VAE"\n[code]')
    preset.write_text(text)
    return preset


@pytest.mark.slow
def test_a_vae_model_class_trains_with_its_own_train_step_and_resumes_exactly(tmp_path):
    """Its train_step's metrics are the history's columns. Killed after epoch 2 and resumed, it goes on
    from epoch 2 with the uninterrupted run's numbers (to float rounding: two processes of this model
    already differ in the last bit of a summed loss, killed or not)."""
    preset = vae_preset(tmp_path)
    env = {"TFBENCH_CHECKPOINT_SECONDS": "0"}
    whole = tfbench_here("run", preset, "--runs-dir", tmp_path / "whole", "--quiet", "--allow-code", env=env)
    assert whole.returncode == 0, whole.stderr[-3000:]
    uninterrupted = [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(only_run(tmp_path / "whole"))]
    assert [r["epoch"] for r in uninterrupted] == [1, 2, 3, 4]
    for column in ("loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss", "val_kl_loss"):
        assert column in uninterrupted[0]
    assert uninterrupted[-1]["loss"] < uninterrupted[0]["loss"]

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfbench",
            "run",
            str(preset),
            "--runs-dir",
            str(tmp_path / "cut"),
            "--quiet",
            "--allow-code",
        ],
        env=dict(runner_env(), **env),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = _appearing_run(tmp_path / "cut")
    wait_for_event(run_dir, lambda e: e["event"] == "checkpoint" and e["kind"] == "backup" and e["epoch"] == 2, 240)
    proc.kill()
    proc.wait(60)
    resumed = tfbench_here("resume", run_dir, "--quiet", "--allow-code", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [e["initial_epoch"] for e in ev.read_events(run_dir) if e["event"] == "run_started"] == [0, 2]
    resumed_rows = [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(run_dir)]
    assert [r["epoch"] for r in resumed_rows] == [1, 2, 3, 4]
    for row, whole_row in zip(resumed_rows, uninterrupted):
        assert row == pytest.approx(whole_row, rel=1e-5)


def _appearing_run(runs_dir: Path, timeout: float = 240) -> Path:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in runs_dir.glob("*") if p.is_dir()] if runs_dir.exists() else []
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no run directory in {runs_dir}")


# -- keras.io's Transformer classifier --------------------------------------------------------------------------


def keras_io_params() -> int:
    """keras.io's own classifier, built by keras.io's code (the held-out module, imported as keras.io
    writes it, not as a preset's code), counted."""
    spec = importlib.util.spec_from_file_location("kerasio_as_published", FIXTURES / "kerasio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.keras_io_model().count_params()


@pytest.mark.slow
def test_the_shipped_transformer_preset_validates_to_keras_ios_parameter_count():
    checked = tfbench_here("validate", "transformer-text", "--allow-code", "--json")
    assert checked.returncode == 0, checked.stderr[-3000:]
    result = json.loads(checked.stdout)
    assert [row["type"] for row in result["layers"]][:2] == ["TokenAndPositionEmbedding", "TransformerBlock"]
    assert result["params"]["total"] == keras_io_params() == 657_758


@pytest.mark.slow
def test_keras_ios_layers_as_that_page_writes_them_validate_train_and_load_in_plain_keras(tmp_path):
    """The held-out module: no **kwargs, no get_config, no registration of its own. Its commands run in
    processes of their own: its classes have the names of transformer.py's, which this process may
    have imported (a process refuses two modules defining one class name)."""
    layers = """
[[model.layers]]
type = "TokenAndPositionEmbedding"
maxlen = 200
vocab_size = 20000
embed_dim = 32
[[model.layers]]
type = "TransformerBlock"
embed_dim = 32
num_heads = 2
ff_dim = 32
[[model.layers]]
type = "GlobalAveragePooling1D"
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
"""
    (tmp_path / "code").mkdir()
    shutil.copy(FIXTURES / "kerasio.py", tmp_path / "code" / "kerasio.py")
    shipped = (REPO / "presets" / "transformer-text.toml").read_text()
    data = shipped[shipped.index("[data]") : shipped.index("[[model.layers]]")]
    data = data.replace('"text:data/reviews"', f'"text:{REPO / "presets" / "data" / "reviews"}"')
    text = f'name = "held-out"\n[code]\nmodules = ["code/kerasio.py"]\n{data}{layers}\n[train]\nepochs = 1\n'
    text += 'loss = "sparse_categorical_crossentropy"\nmetrics = ["accuracy"]\nseed = 3\n'
    text += '[export]\nformats = ["keras", "savedmodel"]\n'
    preset = tmp_path / "held-out.toml"
    preset.write_text(text)
    checked = tfbench_process("validate", preset, "--allow-code", "--json")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert json.loads(checked.stdout)["params"]["total"] == 646_400 + 10_656 + 66
    ran = tfbench_process("run", preset, "--runs-dir", tmp_path / "runs", "--quiet", "--allow-code")
    assert ran.returncode == 0, ran.stderr[-3000:]
    run_dir = only_run(tmp_path / "runs")
    _loads_in_plain_keras(run_dir, tmp_path)


def _loads_in_plain_keras(run_dir: Path, tmp_path: Path) -> None:
    """model.keras and the SavedModel, in a process with nothing of tfbench: it imports the run's
    copy of the module as the run's train.py does (the lines train.py writes for it)."""
    script = (run_dir / "train.py").read_text()
    imports = script[script.index("# -- the experiment's own code") : script.index("# -- settings")]
    code = f"""
import os, sys, numpy as np, keras, tensorflow as tf
{imports}
model = keras.saving.load_model({str(run_dir / "model.keras")!r})
x = np.ones((2,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
saved = tf.saved_model.load({str(run_dir / "exports" / "saved_model")!r})
served = list(saved.signatures["serving_default"](tf.constant(x)).values())[0].numpy()
assert np.allclose(model.predict(x, verbose=0), served, atol=1e-5)
assert not any(name.startswith("tfbench") for name in sys.modules)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=runner_env(), timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.slow
def test_the_transformer_killed_after_epoch_2_resumes_to_the_uninterrupted_history_and_exports_work(tmp_path):
    """The shipped preset, every epoch saved: killed after epoch 2, resumed; then its .keras,
    SavedModel and train.py work without tfbench, the run's copy of the module on the path."""
    env = {"TFBENCH_CHECKPOINT_SECONDS": "0"}
    common = ("--set", "train.epochs=4", "--set", 'export.formats=["keras", "savedmodel", "tflite"]')
    only_keras = ("--set", 'export.formats=["keras"]')  # its exports are not compared: none but the model
    whole = tfbench_here(
        "run",
        "transformer-text",
        *common,
        *only_keras,
        "--runs-dir",
        tmp_path / "whole",
        "--quiet",
        "--allow-code",
        env=env,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    uninterrupted = [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(only_run(tmp_path / "whole"))]
    assert [r["epoch"] for r in uninterrupted] == [1, 2, 3, 4]

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfbench",
            "run",
            "transformer-text",
            *common,
            "--runs-dir",
            str(tmp_path / "cut"),
            "--quiet",
            "--allow-code",
        ],
        env=dict(runner_env(), **env),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = _appearing_run(tmp_path / "cut")
    wait_for_event(run_dir, lambda e: e["event"] == "checkpoint" and e["kind"] == "backup" and e["epoch"] == 2, 300)
    proc.kill()
    proc.wait(60)
    resumed = tfbench_here("resume", run_dir, "--quiet", "--allow-code", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [e["initial_epoch"] for e in ev.read_events(run_dir) if e["event"] == "run_started"] == [0, 2]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(run_dir)] == uninterrupted

    report = json.loads((run_dir / "exports" / "report.json").read_text())
    assert report, report
    _loads_in_plain_keras(run_dir, tmp_path)
    script = subprocess.run(
        [sys.executable, str(run_dir / "train.py"), "--epochs", "1", "--output", str(tmp_path / "again.keras")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=dict(runner_env(), PYTHONPATH=pythonpath()),
    )
    assert script.returncode == 0, script.stderr[-3000:]
    assert "params: 657758" in script.stdout
    assert (tmp_path / "again.keras").is_file()


@pytest.mark.slow
def test_a_study_tunes_a_custom_layers_argument_in_workers_that_import_the_allowed_code(tmp_path):
    space = '[tune]\nobjective = "val_loss"\ntrials = 2\nsampler = "random"\npruner = "none"\n'
    space += '[tune.space]\n"model.layers[0].factor" = { float = [0.5, 3.0] }'
    preset = code_preset(tmp_path, extra=space)
    wrong = preset.read_text().replace("{ float = [0.5, 3.0] }", "{ int = [1, 3] }")
    (tmp_path / "wrong.toml").write_text(wrong)
    line = one_error_line(tfbench_here("tune", tmp_path / "wrong.toml", "--allow-code", "--study-dir", tmp_path / "w"))
    assert 'tune.space."model.layers[0].factor"' in line  # checked against the form derived from Scale
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    study = tfbench_here("tune", preset, "--allow-code", "--study-dir", tmp_path / "s", "--json")  # trials in workers
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # the driver put them back
    assert study.returncode == 0, study.stderr[-3000:]
    trials = json.loads(study.stdout)["trials"]
    assert [t["state"] for t in trials] == ["finished", "finished"], trials
    assert len({t["params"]["model.layers[0].factor"] for t in trials}) == 2
    assert all((tmp_path / "s" / f"trial-{n:04d}" / "code" / "sentinel.py").is_file() for n in (0, 1))
