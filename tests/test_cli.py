"""The `tfbench` command: exit codes, one-line errors, validate/run JSON, no TensorFlow at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_runs import spiral_preset, write_preset

from tfbench.cli import cli
from tfbench.engine import events as ev
from tfbench.rundir import read_history

REPO = Path(__file__).resolve().parent.parent

# The `name`, `units` and `seed` are what this file's expectations (33 parameters, "cli-tiny") assume.
GOOD = spiral_preset(name="cli-tiny", epochs=2, batch=64, units=8, lr=1e-3, seed=1)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_preset(tmp_path, GOOD, "good.toml")


def test_importing_the_cli_does_not_import_tensorflow():
    code = (
        "import sys, tfbench.cli, tfbench.headless, tfbench.engine.control, tfbench.engine.run;"
        "heavy = [m for m in ('tensorflow', 'keras', 'textual') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


def test_help_teaches_with_examples():
    result = invoke("--help")
    assert result.exit_code == 0 and "Examples:" in result.output and "tfbench run digits-cnn" in result.output
    for command in ("run", "validate", "resume", "pause", "unpause", "stop", "set", "layers"):
        sub = invoke(command, "--help")
        assert sub.exit_code == 0 and "Usage: " in sub.output, command


def test_validate_json_describes_the_model(good):
    result = invoke("validate", str(good), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["input_shape"] == [2] and data["output_shape"] == [1]
    assert data["params"] == {"total": 3 * 8 + 9, "trainable": 33}
    assert [(layer["type"], layer["output_shape"], layer["params"]) for layer in data["layers"]] == [
        ("Dense", [8], 24),
        ("Dense", [1], 9),
    ]


def test_validate_plain_prints_the_layers(good):
    result = invoke("validate", str(good))
    assert result.exit_code == 0 and "Dense" in result.output and "33 total" in result.output


BAD = {
    "syntax": ("name = 'x'\n[data\n", "TOML syntax error"),
    "unknown_layer": (GOOD.replace('type = "Dense"\nunits = 8', 'type = "Dence"\nunits = 8'), "model.layers[0]"),
    "unknown_key": (GOOD.replace("batch_size = 64", "batch_sise = 64"), "data.batch_sise"),
    "wrong_type": (GOOD.replace("epochs = 2", 'epochs = "two"'), "train.epochs"),
    "out_of_range": (GOOD.replace("epochs = 2", "epochs = 0"), "train.epochs"),
    "impossible_stack": (
        GOOD.replace('type = "Dense"\nunits = 8', 'type = "Conv2D"\nfilters = 2\nkernel_size = 3'),
        "model.layers[0]",
    ),
    "last_layer_mismatch": (
        GOOD.replace("units = 1\n", "units = 3\n").replace("binary_crossentropy", "auto"),
        "model.layers[1]",
    ),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_presets_exit_2_with_one_error_line(tmp_path, runs_dir, case, command):
    text, expected = BAD[case]
    path = write_preset(tmp_path, text, "bad.toml")
    args = [command, str(path)] + (["--runs-dir", str(runs_dir)] if command == "run" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert lines[0].startswith(f"error: {path}")  # located in the file, then in the Experiment
    assert "Traceback" not in result.output
    assert list(runs_dir.iterdir()) == []


def test_binary_and_missing_presets_exit_2(tmp_path):
    binary = tmp_path / "model.h5"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00")
    result = CliRunner().invoke(cli, ["validate", str(binary)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "binary" in result.stderr
    result = CliRunner().invoke(cli, ["run", "digits-cnnn"])
    assert result.exit_code == 2 and "did you mean 'digits-cnn'" in result.stderr


def test_validate_json_reports_errors_as_json_too(tmp_path):
    path = write_preset(tmp_path, BAD["impossible_stack"][0], "bad.toml")
    result = CliRunner().invoke(cli, ["validate", str(path), "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["location"].endswith("model.layers[0]")


@pytest.mark.parametrize("command", ["run", "resume"])
def test_run_and_resume_json_print_an_error_object_for_a_bad_input(tmp_path, command):
    """A script reading `--json` from stdout gets `{"ok": false, …}`, not nothing; stderr keeps its line."""
    if command == "run":
        path = write_preset(tmp_path, GOOD.replace("epochs = 2", "epochs = 0"), "bad.toml")
        args, location = ["run", str(path), "--runs-dir", str(tmp_path / "runs")], "train.epochs"
    else:
        args, location = ["resume", str(tmp_path)], str(tmp_path)
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["location"].endswith(location) and data["error"]


def test_bad_set_override_exits_2(good):
    result = CliRunner().invoke(cli, ["run", str(good), "--set", "train.epochs"])
    assert result.exit_code == 2 and "error: --set train.epochs" in result.stderr


@pytest.mark.slow
def test_run_json_prints_plain_epoch_lines_and_a_summary(good, runs_dir):
    result = CliRunner().invoke(cli, ["run", str(good), "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["params"] == {"total": 33, "trainable": 33}
    assert {"loss", "val_loss", "accuracy"} <= set(summary["final"]) and summary["best"]["monitor"] == "val_loss"
    # progress went to stderr, one plain line per epoch (not a terminal)
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    run_dir = Path(summary["run_dir"])
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2]
    assert ev.read_events(run_dir)[-1]["status"] == "completed"


@pytest.mark.slow
def test_run_with_overrides_and_quiet(good, runs_dir):
    result = CliRunner().invoke(
        cli, ["run", str(good), "--runs-dir", str(runs_dir), "--quiet", "--set", "train.epochs=1"]
    )
    assert result.exit_code == 0 and result.output == ""
    (run_dir,) = runs_dir.iterdir()
    assert len(read_history(run_dir)) == 1


def test_failed_run_exits_1(tmp_path, runs_dir):
    diverging = spiral_preset(name="cli-tiny", epochs=2, batch=64, units=8, optimizer="SGD", lr=1e12, seed=1)
    path = write_preset(tmp_path, diverging, "diverge.toml")
    result = CliRunner().invoke(cli, ["run", str(path), "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"


def test_layers_lists_keras_layers():
    result = invoke("layers")
    assert result.exit_code == 0 and "Dense" in result.output and "Conv2D" in result.output
    assert "Lambda" not in result.output.split()
    assert invoke("layers", "conv").output.count("Conv") >= 2


def test_control_commands_on_a_dead_run_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["pause", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    result = CliRunner().invoke(cli, ["set", str(tmp_path), "learning_rate"])
    assert result.exit_code == 2


def test_resume_of_a_non_run_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.stderr


@pytest.mark.slow
def test_headless_progress_renders_a_replayed_run(good, runs_dir):
    import io

    from tfbench.headless import Progress

    result = CliRunner().invoke(cli, ["run", str(good), "--runs-dir", str(runs_dir), "--quiet"])
    assert result.exit_code == 0
    (run_dir,) = runs_dir.iterdir()
    events = ev.read_events(run_dir)
    for tty in (True, False):
        out = io.StringIO()
        progress = Progress(out, tty=tty)
        for event in events:
            progress(event)
        progress.close()
        text = out.getvalue()
        assert "cli-tiny: training, 33 parameters" in text
        assert "epoch 1/2  loss " in text and "epoch 2/2  loss " in text
        assert "run completed (best val_loss" in text
