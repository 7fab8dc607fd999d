"""No preset can make tfbench write outside its run directory through a callback's file argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tfbench import catalog
from tfbench.errors import UserError
from tfbench.spec import load_experiment
from tiny_runs import REPO, runner_env, spiral_preset, write_preset

VICTIM_TEXT = "export PATH=/usr/bin  # the user's own file\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "home" / "victim.rc"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    return victim


def _run(preset: Path, runs_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfbench", "run", str(preset), "--runs-dir", str(runs_dir), "--quiet"],
        cwd=cwd, env=runner_env(), capture_output=True, text=True, timeout=240,
    )


@pytest.mark.parametrize("callback, arg", [
    ("CSVLogger", "filename"), ("ModelCheckpoint", "filepath"), ("TensorBoard", "log_dir"),
    ("BackupAndRestore", "backup_dir"),
])
@pytest.mark.parametrize("how", ["absolute", "escaping", "home"])
def test_a_path_outside_the_run_directory_is_refused_at_validation(tmp_path, callback, arg, how):
    victim = _victim(tmp_path)
    value = {"absolute": str(victim), "escaping": "../../home/victim.rc", "home": "~/victim.rc"}[how]
    preset = write_preset(tmp_path, spiral_preset(extra=f'callbacks = [{{ type = "{callback}", {arg} = "{value}" }}]'))
    with pytest.raises(UserError) as info:
        load_experiment(preset)
    assert info.value.location == f"{preset}: train.callbacks[0].{arg}"
    assert "inside the run directory" in info.value.message


def test_a_real_run_leaves_the_victim_untouched_and_says_where(tmp_path):
    """`CSVLogger filename = "/…/victim.rc"`: exit 2, one line naming the argument, the file as it was."""
    victim = _victim(tmp_path)
    preset = write_preset(tmp_path, spiral_preset(
        epochs=1, extra=f'callbacks = [{{ type = "CSVLogger", filename = "{victim}" }}]'))
    result = _run(preset, tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {preset}: train.callbacks[0].filename: ")
    assert victim.read_text() == VICTIM_TEXT
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_relative_callback_path_is_written_inside_the_run_directory(tmp_path):
    """A relative path is the run directory's, whatever the working directory is."""
    victim = _victim(tmp_path)
    (tmp_path / "cwd").mkdir()
    preset = write_preset(tmp_path, spiral_preset(epochs=2, extra=(
        'callbacks = [{ type = "CSVLogger", filename = "keras-log.csv" }, '
        '{ type = "ModelCheckpoint", filepath = "keep/m-{epoch}.keras" }]')))
    result = _run(preset, tmp_path / "runs", cwd=tmp_path / "cwd")
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len((run_dir / "keras-log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    assert sorted(p.name for p in (run_dir / "keep").iterdir()) == ["m-1.keras", "m-2.keras"]
    assert not any((tmp_path / "cwd").iterdir())
    assert victim.read_text() == VICTIM_TEXT


def test_building_the_callbacks_checks_again():
    """Even arguments that never met validation cannot leave the run directory."""
    with pytest.raises(UserError) as info:
        catalog.resolve_run_paths("callbacks", "CSVLogger", {"filename": "/etc/x"}, "/runs/r", "train.callbacks[3]")
    assert info.value.location == "train.callbacks[3].filename"
    args = catalog.resolve_run_paths("callbacks", "CSVLogger", {"filename": "a/b.csv", "append": True}, "/runs/r")
    assert args == {"filename": "/runs/r/a/b.csv", "append": True}


@pytest.mark.parametrize("value", ["history.csv", "events.jsonl", "./model.keras", "checkpoints/last.keras",
                                   "checkpoints/backup/x", "exports"])
def test_a_callback_cannot_overwrite_what_tfbench_records(value):
    from tfbench.rundir import OWN_PATHS

    with pytest.raises(UserError, match="where tfbench keeps the run's") as info:
        catalog.resolve_run_paths("callbacks", "CSVLogger", {"filename": value}, "/runs/r", "train.callbacks[0]",
                                  reserved=OWN_PATHS)
    assert info.value.location == "train.callbacks[0].filename"
    catalog.resolve_run_paths("callbacks", "CSVLogger", {"filename": "keras-log.csv"}, "/runs/r", reserved=OWN_PATHS)


def test_a_real_run_refuses_to_log_over_its_own_history(tmp_path):
    preset = write_preset(tmp_path, spiral_preset(
        epochs=1, extra='callbacks = [{ type = "CSVLogger", filename = "history.csv" }]'))
    result = _run(preset, tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train.callbacks[0].filename: 'history.csv' is where tfbench keeps the run's history.csv" in result.stderr

