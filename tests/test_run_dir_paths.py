"""No preset can make tfbench write outside its run directory: not through a callback's file
argument, not through a file cache (`data.cache`), not by downloading into a data folder it names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_runs import images_preset, png_folder, runner_env, spiral_preset, tfbench_here, write_preset

from tfbench import catalog
from tfbench.errors import UserError
from tfbench.spec import load_experiment

VICTIM_TEXT = "export PATH=/usr/bin  # the user's own file\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "home" / "victim.rc"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    return victim


def _run(preset: Path, runs_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """`tfbench run PRESET` from the working directory `cwd` (in this process)."""
    return tfbench_here("run", preset, "--runs-dir", runs_dir, "--quiet", cwd=cwd)


@pytest.mark.parametrize(
    "callback, arg",
    [
        ("CSVLogger", "filename"),
        ("ModelCheckpoint", "filepath"),
        ("TensorBoard", "log_dir"),
        ("BackupAndRestore", "backup_dir"),
    ],
)
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
    preset = write_preset(
        tmp_path, spiral_preset(epochs=1, extra=f'callbacks = [{{ type = "CSVLogger", filename = "{victim}" }}]')
    )
    result = _run(preset, tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {preset}: train.callbacks[0].filename: ")
    assert victim.read_text() == VICTIM_TEXT
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_a_relative_callback_path_is_written_inside_the_run_directory(tmp_path):
    """A relative path is the run directory's, whatever the working directory is."""
    victim = _victim(tmp_path)
    (tmp_path / "cwd").mkdir()
    preset = write_preset(
        tmp_path,
        spiral_preset(
            epochs=2,
            extra=(
                'callbacks = [{ type = "CSVLogger", filename = "keras-log.csv" }, '
                '{ type = "ModelCheckpoint", filepath = "keep/m-{epoch}.keras" }]'
            ),
        ),
    )
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


@pytest.mark.parametrize(
    "value",
    ["history.csv", "events.jsonl", "./model.keras", "checkpoints/last.keras", "checkpoints/backup/x", "exports"],
)
def test_a_callback_cannot_overwrite_what_tfbench_records(value):
    from tfbench.rundir import OWN_PATHS

    with pytest.raises(UserError, match="where tfbench keeps the run's") as info:
        catalog.resolve_run_paths(
            "callbacks", "CSVLogger", {"filename": value}, "/runs/r", "train.callbacks[0]", reserved=OWN_PATHS
        )
    assert info.value.location == "train.callbacks[0].filename"
    catalog.resolve_run_paths("callbacks", "CSVLogger", {"filename": "keras-log.csv"}, "/runs/r", reserved=OWN_PATHS)


@pytest.mark.slow
def test_a_real_run_refuses_to_log_over_its_own_history(tmp_path):
    preset = write_preset(
        tmp_path, spiral_preset(epochs=1, extra='callbacks = [{ type = "CSVLogger", filename = "history.csv" }]')
    )
    result = _run(preset, tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train.callbacks[0].filename: 'history.csv' is where tfbench keeps the run's history.csv" in result.stderr


# -- data: a file cache, and the folders datasets are read from --------------------------------


@pytest.mark.parametrize("how", ["absolute", "escaping", "home"])
def test_a_file_cache_outside_the_run_directory_is_refused_at_validation(tmp_path, how):
    victim = _victim(tmp_path)
    value = {"absolute": str(victim), "escaping": "../../home/victim.rc", "home": "~/victim.rc"}[how]
    preset = write_preset(tmp_path, images_preset(tmp_path / "imgs", extra_data=f'cache = "{value}"'))
    with pytest.raises(UserError) as info:
        load_experiment(preset)
    assert info.value.location == f"{preset}: data.cache"
    assert "inside the run directory" in info.value.message


@pytest.mark.slow
def test_a_file_cache_is_written_inside_the_run_directory_whatever_the_working_directory(tmp_path):
    root = png_folder(tmp_path / "imgs", per_class=10)
    (tmp_path / "cwd").mkdir()
    preset = write_preset(tmp_path, images_preset(root, extra_data='cache = "cache/imgs"'))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run(preset, tmp_path / "runs", cwd=tmp_path / "cwd")
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {p.name for p in (run_dir / "cache").iterdir()} >= {"imgs-train.index", "imgs-validation.index"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["runs"])
    assert not any((tmp_path / "cwd").iterdir())
    # The run's own train.py caches each split in a file of its own, beside where it runs.
    script = subprocess.run(
        [sys.executable, str(run_dir / "train.py"), "--epochs", "1", "--output", "m.keras"],
        cwd=tmp_path / "cwd",
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert script.returncode == 0, script.stderr[-2000:]
    assert {p.name for p in (tmp_path / "cwd" / "cache").iterdir()} >= {"imgs-train.index", "imgs-validation.index"}


def test_a_file_cache_cannot_be_one_of_tfbenchs_own_files(tmp_path):
    from tfbench.rundir import cache_prefix

    with pytest.raises(UserError, match="where tfbench keeps the run's checkpoints/last.keras") as info:
        cache_prefix(tmp_path, "checkpoints/last.keras")
    assert info.value.location == "data.cache"
    assert cache_prefix(tmp_path, "cache/x") == tmp_path / "cache" / "x"


def test_a_keras_cache_dir_a_preset_names_is_only_read(tmp_path):
    """A missing file is not downloaded into the preset's folder: the error says where it would go."""
    from tfbench import data
    from tfbench.spec import DataSpec

    folder = tmp_path / "keras-data"
    with pytest.raises(UserError, match="only read from, never downloaded into") as info:
        data.load(DataSpec(source="keras:boston_housing", options={"cache_dir": str(folder)}))
    assert info.value.location == "data.options.cache_dir" and "boston_housing.npz" in info.value.hint
    assert not folder.exists()


def test_a_tfds_data_dir_a_preset_names_is_only_read(tmp_path):
    """`download = true` with a preset's `data_dir`: refused before TFDS writes anything there."""
    from tfbench import data
    from tfbench.spec import DataSpec

    folder = tmp_path / "tfds-data"
    with pytest.raises(UserError, match="only read from, never downloaded into") as info:
        data.load(DataSpec(source="tfds:mnist", options={"data_dir": str(folder), "download": True}))
    assert info.value.location == "data.options.data_dir" and "tfds build mnist" in info.value.hint
    assert not folder.exists() or not any(folder.rglob("*"))
