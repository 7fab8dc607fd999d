"""The runs in a runs directory, summarised for the Runs screen and `tfbench runs`.

Without a UI and without TensorFlow: everything comes from each run's `events.jsonl` (folded into
a `RunState`) and its `experiment.toml`, so listing runs is quick and works on a machine that
never trained them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib

from tfbench import rundir
from tfbench.engine.events import RunState
from tfbench.engine.log_scan import LogScan, summary_state
from tfbench.experiment_diff import experiment_differences, flatten, repr_value  # noqa: F401 - the Runs screen compares runs with them
from tfbench.figures import format_duration, format_number
from tfbench.run_notes import read_notes
from tfbench.rundir import EVENTS_FILE, EXPERIMENT_FILE, RUNNER_FILE

if TYPE_CHECKING:
    from rich.table import Table


@dataclass
class RunSummary:
    """One row of the runs table, plus what comparing runs needs (history, experiment).

    The runs index keeps a compact summary (`complete` False): the row's figures and its query
    fields, without the curves and the Experiment, which `runs_index.complete_summary` reads again.
    """

    name: str
    path: Path
    started: float | None
    status: str  # running | paused | completed | stopped | early_stopped | failed | interrupted | waiting | damaged
    epochs_completed: int
    epochs: int
    best_monitor: str
    best_value: float | None
    best_epoch: int | None
    params: int | None
    duration: float
    reason: str = ""
    experiment: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_numbers: list[int] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)  # the last epoch's metrics
    tags: list[str] = field(default_factory=list)
    note: str = ""
    query_fields: dict[str, Any] = field(default_factory=dict, repr=False)  # `runs_query.run_fields`, made once
    complete: bool = True  # False: from the runs index, without history, epoch numbers and Experiment

    @property
    def best_text(self) -> str:
        """The best metric as `monitor value (epoch N)`, or a dash."""
        if self.best_value is None or not self.best_monitor:
            return "—"
        where = f" @{self.best_epoch}" if self.best_epoch else ""
        return f"{self.best_monitor} {format_number(self.best_value)}{where}"

    @property
    def started_text(self) -> str:
        """The start as `YYYY-mm-dd HH:MM` UTC."""
        if self.started is None:
            return "—"
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.started))


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError, OverflowError):
        return False
    except (PermissionError, OSError):
        return True
    return True


def _runner_alive(run_dir: Path, pid: int | None) -> bool:
    """Whether the run's runner still runs: its `runner.json` when it has one (which also
    catches a recycled pid), else the pid its log names."""
    from tfbench.engine import control

    if (run_dir / RUNNER_FILE).exists():
        return control.runner_alive(run_dir)
    return _pid_alive(pid)


def best_of(state: RunState) -> tuple[str, float | None, int | None]:
    """The run's best (monitor, value, epoch): the run's own verdict when it ended, else the
    lowest `val_loss` (or `loss`) so far."""
    best = state.best or {}
    if best.get("monitor") and best.get("value") is not None:
        try:
            value = float(best["value"])
        except (TypeError, ValueError):
            value = None
        epoch = best.get("epoch")
        return str(best["monitor"]), value, int(epoch) if epoch else None
    monitor = "val_loss" if "val_loss" in state.history else "loss"
    series = state.history.get(monitor) or []
    finite = [(v, i) for i, v in enumerate(series) if not math.isnan(v)]
    if not finite:
        return monitor, None, None
    value, index = min(finite)
    return monitor, value, state.epoch_numbers[index]


def read_experiment(run_dir: Path, state: RunState | None = None) -> dict[str, Any]:
    """The run's resolved Experiment as a dict (its `experiment.toml`, else the log's copy)."""
    path = run_dir / EXPERIMENT_FILE
    if path.exists():
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):  # TOML or UTF-8 errors: a damaged file
            pass
    return dict(state.experiment) if state is not None else {}


def summarize_run(run_dir: str | Path) -> RunSummary:
    """Summarise one run directory.

    Args:
        run_dir: a directory holding `events.jsonl` (and usually `experiment.toml`).

    Returns:
        Its summary; a run whose log stops before `run_ended` and whose runner process is gone
        is reported as `interrupted`; one with a damaged file as `damaged`, the reason naming it
        (what could be read is still shown).
    """
    run_dir = Path(run_dir)
    scan = LogScan()  # one pass over the log gives the summary and its damage
    counted: int | None = None
    try:
        summary = _summary(run_dir, scan)
        counted = scan.damaged
    except Exception as exc:  # noqa: BLE001 - one damaged run must never hide the others
        summary = RunSummary(
            name=run_dir.name,
            path=run_dir,
            started=None,
            status="damaged",
            epochs_completed=0,
            epochs=0,
            best_monitor="",
            best_value=None,
            best_epoch=None,
            params=None,
            duration=0.0,
            reason=f"cannot be read: {type(exc).__name__}: {exc}",
        )
    damaged = rundir.damage(run_dir, counted)
    if damaged and summary.status != "running":
        summary.status, summary.reason = "damaged", damaged
    notes = read_notes(run_dir)
    summary.tags, summary.note = notes.tags, notes.note
    return summary


def _summary(run_dir: Path, scan: LogScan) -> RunSummary:
    log = run_dir / EVENTS_FILE
    state = summary_state(log, scan) if log.exists() else RunState()  # however long the log, it streams by
    status = state.status
    if state.running and not _runner_alive(run_dir, state.pid):
        status = "interrupted"
    monitor, value, epoch = best_of(state)
    params = state.model.get("total_params") if state.model else None
    return RunSummary(
        name=run_dir.name,
        path=run_dir,
        started=state.started,
        status=status,
        epochs_completed=len(state.epoch_numbers),
        epochs=state.epochs,
        best_monitor=monitor,
        best_value=value,
        best_epoch=epoch,
        params=int(params) if params is not None else None,
        duration=state.elapsed(),
        reason=state.reason,
        experiment=read_experiment(run_dir, state),
        history={k: list(v) for k, v in state.history.items()},
        epoch_numbers=list(state.epoch_numbers),
        final=final_metrics(state),
    )


def final_metrics(state: RunState) -> dict[str, float]:
    """The run's last epoch's metrics: its `run_ended` record, else the last value of each series."""
    final = {k: float(v) for k, v in state.final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key, series in state.history.items():
        if series and key not in final:
            final[key] = float(series[-1])
    return final


def scan_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run in a runs directory, oldest first (runs without a start time last).

    Args:
        runs_dir: the folder whose subfolders are run directories; missing means no runs.
    """
    return oldest_first([summarize_run(child) for child in run_directories(runs_dir)])


def run_directories(runs_dir: str | Path) -> list[Path]:
    """The run directories in a folder (those with an event log or an Experiment), by name."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [
        child
        for child in sorted(runs_dir.iterdir())
        if child.is_dir() and ((child / EVENTS_FILE).exists() or (child / EXPERIMENT_FILE).exists())
    ]


def oldest_first(runs: list[RunSummary]) -> list[RunSummary]:
    """Runs by start time (runs without one last), then name."""
    return sorted(runs, key=lambda r: (r.started is None, r.started or 0.0, r.name))


# Columns a narrow terminal leaves out first, so that run names always print whole.
OPTIONAL_COLUMNS = ("started", "params", "time", "best", "epochs")


def runs_table(runs: list[RunSummary], title: str | None = None, width: int | None = None) -> Table:
    """The runs as a rich Table, for `tfbench runs`.

    Run names and figures are never cut: when the table would be wider than `width`, columns are
    left out in the order of `OPTIONAL_COLUMNS` (`--json` has them all); only a terminal too narrow
    even for names and statuses folds a name onto a second line.
    """
    from rich.cells import cell_len
    from rich.table import Table

    monitors = {run.best_monitor for run in runs if run.best_value is not None}
    shared = monitors.pop() if len(monitors) == 1 else None
    columns: dict[str, list[str]] = {
        name: [] for name in ("run", "started", "status", "epochs", "best", "params", "time")
    }
    for run in runs:
        if run.best_value is None:
            best = "—"
        elif shared:
            best = f"{format_number(run.best_value)} @{run.best_epoch}"
        else:
            best = run.best_text
        columns["run"].append(run.name)
        columns["started"].append(run.started_text[5:])
        columns["status"].append(run.status)
        columns["epochs"].append(f"{run.epochs_completed}/{run.epochs}" if run.epochs else str(run.epochs_completed))
        columns["best"].append(best)
        columns["params"].append(f"{run.params:,}" if run.params is not None else "—")
        columns["time"].append(format_duration(run.duration))
    headers = {name: name for name in columns} | {"best": f"best {shared}" if shared else "best"}
    widths = {name: max(cell_len(cell) for cell in [headers[name], *cells]) for name, cells in columns.items()}
    for name in OPTIONAL_COLUMNS:
        if width is None or sum(widths.values()) + 3 * len(widths) + 1 <= width:  # cells, padding, rules
            break
        del columns[name], widths[name]
    table = Table(title=title)
    for name in columns:
        right = name in ("epochs", "params", "time")
        if name == "run":  # it folds only when the terminal is too narrow even for names and statuses
            table.add_column(headers[name], overflow="fold")
        else:
            table.add_column(headers[name], justify="right" if right else "left", min_width=widths[name], no_wrap=True)
    for row in zip(*columns.values()):
        table.add_row(*row)
    return table
