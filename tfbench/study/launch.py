"""Starting `tfbench tune` from the workbench, and telling how that process is doing — without a UI.

The workbench starts a study the way it starts a run (`tfbench.engine.control.launch`): a child
process in its own session, its output in the study directory's `runner.log` and its pid in
`runner.json`, so it survives a closed terminal and the workbench can say whether it still runs. The
child is the ordinary `tfbench tune PRESET --study-dir DIR`, given the Experiment with its `[tune]`
table as `preset.toml` in the study directory: the same code path, and the same checks, as the CLI.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime
from pathlib import Path

from tfbench.atomic import write_text
from tfbench.engine.control import launch, read_runner, runner_alive, runner_command
from tfbench.errors import UserError
from tfbench.rundir import RUNNER_FILE, RUNNER_LOG, new_run_dir
from tfbench.spec import Experiment
from tfbench.study.owners import stop_driver
from tfbench.study.space import parse_tune
from tfbench.study.study import STUDY_FILE

STUDIES_DIR = "studies"  # inside the workbench's runs folder
PRESET_FILE = "preset.toml"  # the Experiment with its `[tune]`, as `tfbench tune` was given it


def start_study(experiment: Experiment, runs_dir: str | Path, parallel: int = 1, extra_args: tuple | list = ()) -> Path:
    """Start `tfbench tune` on an Experiment with a `[tune]` table, in a process of its own.

    What `tune` would refuse (the space, the trial count, the objective's direction) is refused here
    first, so the caller can say why instead of watching a process fail.

    Args:
        experiment: the Experiment, its `tune` table the study to run.
        runs_dir: the workbench's runs folder; the study directory is `runs_dir/studies/<name>-<time>`.
        parallel: trials at once (`--parallel`).
        extra_args: more `tfbench tune` arguments (`--allow-code`).

    Returns:
        The study directory (it holds `runner.json` when this returns; `study.toml` once `tune` has
        checked and opened the study).

    Raises:
        UserError: a `[tune]` mistake, located, or a runs folder that cannot be written.
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise UserError(f"expected a whole number of worker processes from 1, got {parallel!r}", "--parallel")
    parse_tune(experiment)
    study_dir = new_run_dir(Path(runs_dir) / STUDIES_DIR, experiment.name, datetime.now())
    preset = study_dir / PRESET_FILE
    try:
        write_text(preset, experiment.to_toml())
    except OSError as exc:
        raise UserError(f"cannot write the study directory: {exc.strerror}", str(study_dir)) from None
    argv = runner_command(
        "tune", str(preset.resolve()), "--study-dir", str(study_dir.resolve()), "--parallel", str(parallel)
    )
    launch([*argv, *extra_args], study_dir, detach=True)
    return study_dir


def study_process_running(study_dir: str | Path) -> bool:
    """Whether the `tfbench tune` process the workbench started for `study_dir` still runs."""
    return (Path(study_dir) / RUNNER_FILE).exists() and runner_alive(study_dir)


def stop_study_process(study_dir: str | Path) -> bool:
    """Ask the study's `tfbench tune` process to stop as Ctrl+C would (running trials save and are given
    back; `tfbench tune --resume` continues it); False when none runs.
    """
    if stop_driver(Path(study_dir)):
        return True
    if not study_process_running(study_dir):
        return False
    try:  # it has not recorded itself as the study's driver yet: the process the workbench started
        os.kill(int(read_runner(study_dir)["pid"]), signal.SIGINT)
    except (OSError, KeyError, ValueError):
        return False
    return True


def launch_state(study_dir: str | Path) -> str | None:
    """What to show for a started study that has no `study.toml` yet: starting, or why `tune` gave up.

    Returns:
        None when the study directory holds a study (or was not started from the workbench);
        "starting" while its `tfbench tune` process checks and opens the study; else the error
        line `tune` printed (from `runner.log`), or a line that says where to look.
    """
    study_dir = Path(study_dir)
    if (study_dir / STUDY_FILE).exists() or not (study_dir / RUNNER_FILE).exists():
        return None
    if study_process_running(study_dir):
        return "starting"
    if (study_dir / STUDY_FILE).exists():  # written just as the process ended
        return None
    try:
        lines = (study_dir / RUNNER_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [line.strip() for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1]
    return f"`tfbench tune` ended before it opened the study; see {study_dir / RUNNER_LOG}"
