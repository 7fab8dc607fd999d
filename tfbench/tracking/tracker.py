"""Mirroring runs where other tools read them — TensorBoard's files, an MLflow tracking store —
while they train (`[track]`) and after (`tfbench runs export`). Without a UI.

The event log is the contract here as everywhere: a `Tracker` subscribes to a Run's events and
hands them to its mirrors, so a live run and a finished one (`mirror_finished`, replaying its
files) are mirrored by the same code.

What it costs the training: the mirrors are set up when the run starts, before the training
thread (so a wrong tracking URI is reported before any epoch, and the first epochs are not slowed
by MLflow's import); from then on the training thread only puts events on a queue. A thread of
the tracker's own writes them, each write at least 50 times its own duration after the last (the
rule checkpoints follow), so mirroring takes about 2 % of the time at most, however short the
epochs. At the end it writes what is left, the artifacts and the final status, before the run's
process may exit. A mirror that fails says so in the run's log and stops; the run goes on.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tfbench.atomic import write_json
from tfbench.engine import events as ev
from tfbench.errors import UserError
from tfbench.rundir import EXPERIMENT_FILE, EXPORTS_DIR, HISTORY_FILE, TENSORBOARD_DIR, read_history

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.spec import Experiment

TRACKING_FILE = "tracking.json"  # in the run directory: where the run is mirrored (MLflow's run id)
COST_FACTOR = 50  # a write waits 50 times its own duration after the last one (≤ 2 % of the time)
MIN_SECONDS = 0.5  # and at least this long
FINISH_SECONDS = 300.0  # the longest the end of a run waits for its mirrors


class Mirror(Protocol):
    """One place a run is mirrored to."""

    name: str

    def start(self, started: dict[str, Any]) -> None: ...

    def epochs(self, rows: list[dict[str, Any]], wall_times: list[float]) -> None: ...

    def profile(self, event: dict[str, Any]) -> None: ...

    def finish(self, ended: dict[str, Any] | None) -> None: ...

    def where(self) -> str: ...


def check(experiment: Experiment) -> None:
    """Refuse `[track]` early when the package a mirror writes with is missing.

    Raises:
        UserError: at `track.tensorboard` or `track.mlflow`, with the extra to install.
    """
    from tfbench.tracking.mlflow_runs import INSTALL_HINT as MLFLOW_HINT
    from tfbench.tracking.tensorboard_files import INSTALL_HINT as TENSORBOARD_HINT

    track = experiment.track
    if track.tensorboard and not installed("tensorboard"):
        raise UserError(
            "TensorBoard files are written with the tensorboard package", "track.tensorboard", TENSORBOARD_HINT
        )
    if track.mlflow and not installed("mlflow"):
        raise UserError("mirroring to MLflow needs the mlflow package", "track.mlflow", MLFLOW_HINT)


def installed(package: str) -> bool:
    """Whether a package can be imported (found, and not refused by the interpreter's import hooks)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


# -- the mirrors -------------------------------------------------------------------------------------------


class TensorBoardMirror:
    """Epoch scalars and profiler traces into a TensorBoard log folder."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, logdir: Path, scalars: bool = True):
        self.run_dir, self.logdir, self.scalars = run_dir, logdir, scalars
        self.writer: Any = None

    def start(self, started: dict[str, Any]) -> None:
        from tfbench.tracking.tensorboard_files import TensorBoardWriter

        self.writer = TensorBoardWriter(self.logdir)

    def epochs(self, rows: list[dict[str, Any]], wall_times: list[float]) -> None:
        if self.scalars:  # else a Keras TensorBoard callback of the Experiment writes them
            self.writer.epochs(rows, wall_times)
            self.writer.flush()

    def profile(self, event: dict[str, Any]) -> None:
        if event.get("trace"):
            self.writer.trace(self.run_dir / event["trace"])

    def finish(self, ended: dict[str, Any] | None) -> None:
        self.writer.close()

    def where(self) -> str:
        return f"TensorBoard files in {self.logdir}"


class MlflowMirror:
    """Parameters, metrics, exports and report.json as one MLflow run.

    Args:
        run_dir: the tfbench run.
        uri: the tracking URI.
        experiment: the MLflow experiment's name.
        only_new: leave a run MLflow already holds as it is (`tfbench runs export`).
    """

    name = "mlflow"

    def __init__(self, run_dir: Path, uri: str, experiment: str, only_new: bool = False):
        self.run_dir, self.uri, self.experiment, self.only_new = run_dir, uri, experiment, only_new
        self.writer: Any = None
        self.already: str | None = None  # the MLflow run that held this run before

    def start(self, started: dict[str, Any]) -> None:
        from tfbench.tracking.mlflow_runs import MlflowWriter

        recorded = read_tracking(self.run_dir).get("mlflow") or {}
        run_id = recorded.get("run_id") if recorded.get("uri") == self.uri else None
        self.writer = MlflowWriter(self.uri, self.experiment, self.run_dir.name, run_id)
        if self.only_new:
            self.already = self.writer.existing()
            if self.already is not None:
                return
        run_id = self.writer.start(started.get("experiment") or {}, self.run_dir)
        record = read_tracking(self.run_dir)
        record["mlflow"] = {"uri": self.uri, "experiment_id": self.writer.experiment_id, "run_id": run_id}
        write_json(self.run_dir / TRACKING_FILE, record)

    def epochs(self, rows: list[dict[str, Any]], wall_times: list[float]) -> None:
        if self.already is None:
            self.writer.epochs(rows, wall_times)

    def profile(self, event: dict[str, Any]) -> None:
        if event.get("summary") and self.already is None:
            self.writer.artifact(self.run_dir / event["summary"], "profile")

    def finish(self, ended: dict[str, Any] | None) -> None:
        if self.already is not None:
            return
        for name in (EXPORTS_DIR, EXPERIMENT_FILE, HISTORY_FILE):
            self.writer.artifact(self.run_dir / name)
        self.writer.finish(str((ended or {}).get("status") or "stopped"))

    def where(self) -> str:
        if self.already is not None:
            return f"MLflow run {self.already} in {self.uri} (there already; left as it is)"
        return f"MLflow run {self.writer.run_id} in {self.uri}, experiment {self.experiment!r}"


def read_tracking(run_dir: str | Path) -> dict[str, Any]:
    """The run's `tracking.json` ({} when there is none or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / TRACKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def mirrors_for(experiment: Experiment, run_dir: Path) -> list[Mirror]:
    """The mirrors an Experiment's `[track]` asks for."""
    track = experiment.track
    mirrors: list[Mirror] = []
    if track.tensorboard:
        keras_writes = any(c.type == "TensorBoard" for c in experiment.train.callbacks)
        mirrors.append(TensorBoardMirror(run_dir, run_dir / TENSORBOARD_DIR, scalars=not keras_writes))
    if track.mlflow:
        mirrors.append(MlflowMirror(run_dir, track.mlflow, track.mlflow_experiment or experiment.name))
    return mirrors


# -- following a live run ---------------------------------------------------------------------------------


def attach(run: Any) -> None:
    """Mirror a Run as it trains, when its Experiment's `[track]` asks (call once its log is open)."""
    from tfbench.engine.strategy import is_chief

    experiment = run.experiment
    if experiment.train.strategy == "multi_worker" and not is_chief():
        return  # the chief mirrors the run; the other workers write scratch copies
    mirrors = mirrors_for(experiment, Path(run.run_dir))
    if mirrors:
        run.subscribe(Tracker(mirrors, run.emit))


class Tracker:
    """Hands a run's events to its mirrors: set up in the emitting thread, written from its own.

    Args:
        mirrors: where the run goes.
        emit: the run's emitter, for a mirror's failure (a `log` warning).
    """

    def __init__(self, mirrors: list[Mirror], emit: Any):
        self.mirrors = mirrors
        self.emit = emit
        self.queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == ev.RUN_STARTED:
            self._start(event)
        elif kind in (ev.EPOCH_ENDED, ev.PROFILE) and self.thread is not None:
            self.queue.put(event)
        elif kind == ev.RUN_ENDED and self.thread is not None:
            self.queue.put(event)
            self.thread.join(FINISH_SECONDS)  # the runner may exit right after: finish first

    def _start(self, started: dict[str, Any]) -> None:
        for mirror in list(self.mirrors):
            self._call(mirror, "start", started)
        if self.thread is None and self.mirrors:
            self.thread = threading.Thread(target=self._work, name="tfbench-tracking", daemon=True)
            self.thread.start()

    def _call(self, mirror: Mirror, method: str, *args: Any) -> None:
        """One call on a mirror; a failure drops that mirror and says so in the run's log."""
        try:
            getattr(mirror, method)(*args)
        except Exception as exc:  # a tracking store that fails must never stop the training
            if mirror in self.mirrors:
                self.mirrors.remove(mirror)
            message = f"{mirror.name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            if (
                self.emit(ev.LOG, level="warning", message=f"{message}; the run goes on without mirroring there")
                is None
            ):
                print(f"tracking: {message}", file=sys.stderr)

    def _work(self) -> None:
        """The tracker's thread: write epochs at most as often as their cost allows, then finish."""
        rows: list[dict[str, Any]] = []
        times: list[float] = []
        due = 0.0
        while True:
            try:
                event = self.queue.get(timeout=max(0.05, due - time.monotonic()) if rows else None)
            except queue.Empty:
                event = None
            kind = event.get("event") if event else None
            if kind == ev.EPOCH_ENDED and event is not None:
                rows.append(epoch_row(event))
                times.append(float(event.get("time") or time.time()))
            if rows and (kind == ev.RUN_ENDED or time.monotonic() >= due):
                started = time.monotonic()
                for mirror in list(self.mirrors):
                    self._call(mirror, "epochs", rows, times)
                rows, times = [], []
                due = time.monotonic() + max(MIN_SECONDS, COST_FACTOR * (time.monotonic() - started))
            if kind == ev.PROFILE:
                for mirror in list(self.mirrors):
                    self._call(mirror, "profile", event)
            if kind == ev.RUN_ENDED:
                for mirror in list(self.mirrors):
                    self._call(mirror, "finish", event)
                return


def epoch_row(event: dict[str, Any]) -> dict[str, Any]:
    """An `epoch_ended` event as the history row `history.csv` holds for it."""
    row: dict[str, Any] = {"epoch": int(event["epoch"]), **(event.get("logs") or {})}
    if event.get("lr") is not None:
        row["lr"] = event["lr"]
    return row


# -- finished runs -----------------------------------------------------------------------------------------


def mirror_finished(run_dir: str | Path, mirrors: list[Mirror]) -> list[str]:
    """Mirror a finished (or interrupted) run from its files: the same calls a live run makes.

    Returns:
        Where each mirror put it, one line each.

    Raises:
        UserError: not a run directory, or a mirror failed (naming it).
    """
    run_dir = Path(run_dir)
    if not (run_dir / ev.EVENTS_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", str(run_dir))
    events = ev.read_events(run_dir)
    started = next((e for e in events if e.get("event") == ev.RUN_STARTED), None)
    if started is None:
        raise UserError("the run never started (its log has no run_started)", str(run_dir))
    ended = next((e for e in reversed(events) if e.get("event") == ev.RUN_ENDED), None)
    rows = read_history(run_dir)
    stamps = {int(e["epoch"]): float(e["time"]) for e in events if e.get("event") == ev.EPOCH_ENDED and "epoch" in e}
    times = [stamps.get(int(row["epoch"]), float(started["time"])) for row in rows]
    for mirror in mirrors:
        try:
            mirror.start(started)
            mirror.epochs(rows, times)
            for event in events:
                if event.get("event") == ev.PROFILE:
                    mirror.profile(event)
            mirror.finish(ended)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"{mirror.name}: {exc}", str(run_dir)) from None
    return [mirror.where() for mirror in mirrors]
