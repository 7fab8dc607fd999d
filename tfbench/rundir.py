"""The run directory: its layout, creating one, its history and backup, and loading a finished run.

Without a UI and without TensorFlow at import (the loaders of a finished run's model and data
import it when called). Every module that reads or writes a run directory takes the file names
from here, so the layout in DESIGN.md ("Run directory") has one home:

```
runs/<name>-<YYYYmmdd-HHMMSS>[-N]/
  experiment.toml  events.jsonl  history.csv  model.keras  train.py
  checkpoints/{last,best}.keras  checkpoints/backup/  exports/  tensorboard/
  runner.json  runner.log  control/  .lock  code/ (the preset's own modules, copied)
```
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.atomic import write_text
from tfbench.engine import events as ev
from tfbench.engine.events import EVENTS_FILE  # noqa: F401 - named by the event log's module, listed here with the rest
from tfbench.engine.log_scan import LogScan, last_event, scan_events, summary_state
from tfbench.engine.status import SUCCEEDED
from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.data.info import DataBundle
    from tfbench.spec import Experiment

EXPERIMENT_FILE = "experiment.toml"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
SCRIPT_FILE = "train.py"
RUNNER_FILE = "runner.json"
RUNNER_LOG = "runner.log"
CONTROL_DIR = "control"
LOCK_FILE = ".lock"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.keras"
BEST_CHECKPOINT = "checkpoints/best.keras"
BACKUP_DIR = "checkpoints/backup"
# Inside BACKUP_DIR, Keras' BackupAndRestore names: the newest (weights, metadata) pair, then the
# one before (`double_checkpoint`). The metadata names its weights by digest (`newest_backup`).
BACKUP_PAIRS = (
    ("latest.weights.h5", "training_metadata.json"),
    ("latest.weights.h5.bkp", "training_metadata.json.bkp"),
)
BACKUP_METADATA = tuple(metadata for _, metadata in BACKUP_PAIRS)
EXPORTS_DIR = "exports"
TENSORBOARD_DIR = "tensorboard"
KERAS_LOG = "keras-log.csv"
CODE_DIR = "code"  # copies of the preset's own modules ([code]), as imported
CODE_MANIFEST = "code/manifest.json"  # their file names, SHA-256 digests and where they came from
# What tfbench writes itself: a callback's file (`tfbench.catalog.resolve_run_paths`) may not be one.
OWN_PATHS = (
    EXPERIMENT_FILE,
    EVENTS_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    SCRIPT_FILE,
    RUNNER_FILE,
    RUNNER_LOG,
    CONTROL_DIR,
    LOCK_FILE,
    LAST_CHECKPOINT,
    BEST_CHECKPOINT,
    BACKUP_DIR,
    EXPORTS_DIR,
    CODE_DIR,
)

# Names `run_ended` lists, by the key it lists them under.
ARTIFACTS = {
    "experiment": EXPERIMENT_FILE,
    "events": EVENTS_FILE,
    "history": HISTORY_FILE,
    "model": MODEL_FILE,
    "last_checkpoint": LAST_CHECKPOINT,
    "best_checkpoint": BEST_CHECKPOINT,
    "backup": BACKUP_DIR,
    "script": SCRIPT_FILE,
    "tensorboard": TENSORBOARD_DIR,
    "exports": EXPORTS_DIR,
}


# -- creating -----------------------------------------------------------------------------------


def new_run_dir(runs_dir: str | Path, name: str, now: datetime | None = None) -> Path:
    """Create and return a fresh `runs_dir/<name>-<YYYYmmdd-HHMMSS>` (a `-N` suffix keeps it unique).

    `mkdir` either creates the folder or fails, so two runs of one preset started in the same
    second (even in two processes) never share a folder.

    Raises:
        UserError: the runs folder cannot be created or written.
    """
    runs_dir = Path(runs_dir)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = runs_dir / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        raise UserError(f"cannot create the run directory: {exc.strerror}", str(runs_dir)) from None
    raise UserError("too many runs with this name this second", str(runs_dir))


def create_run_dir(runs_dir: str | Path, experiment: Experiment) -> Path:
    """A new run directory holding the resolved Experiment in `experiment.toml`.

    Raises:
        UserError: the folder or the file cannot be written.
    """
    run_dir = new_run_dir(runs_dir, experiment.name)
    write_experiment(run_dir, experiment)
    return run_dir


def write_experiment(run_dir: str | Path, experiment: Experiment) -> Path:
    """Record the resolved Experiment in the run directory (atomically).

    Raises:
        UserError: the file cannot be written.
    """
    try:
        return write_text(Path(run_dir) / EXPERIMENT_FILE, experiment.to_toml())
    except OSError as exc:
        raise UserError(f"cannot write the run directory: {exc.strerror}", str(run_dir)) from None


def is_run_dir(path: str | Path) -> bool:
    """Whether a folder looks like a run directory (an event log or a recorded Experiment)."""
    path = Path(path)
    return (path / EVENTS_FILE).exists() or (path / EXPERIMENT_FILE).exists()


# -- history ------------------------------------------------------------------------------------


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's `history.csv` (numbers as floats, `epoch` as int), in epoch order.

    A damaged file (bytes that are not text, rows without a whole-number epoch) yields the rows
    that can be read; `history_damage` says what is wrong.
    """
    rows, _ = _parse_history(Path(run_dir) / HISTORY_FILE)
    return rows


def history_damage(run_dir: str | Path) -> str:
    """Why a run's `history.csv` cannot be read whole ("" when it can, or does not exist)."""
    return _parse_history(Path(run_dir) / HISTORY_FILE)[1]


def _parse_history(path: Path) -> tuple[list[dict[str, Any]], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], ""
    except UnicodeDecodeError:
        return [], f"{HISTORY_FILE} is not text"
    except OSError as exc:
        return [], f"{HISTORY_FILE}: {exc.strerror}"
    rows: list[dict[str, Any]] = []
    damage = ""
    try:
        for raw in csv.DictReader(io.StringIO(text, newline="")):
            row = _history_row(raw)
            if row is None:
                damage = damage or f"{HISTORY_FILE} has rows without an epoch number"
                continue
            rows.append(row)
    except csv.Error as exc:
        damage = f"{HISTORY_FILE}: {exc}"
    rows.sort(key=lambda r: r["epoch"])
    return rows, damage


def _history_row(raw: dict[str | None, Any]) -> dict[str, Any] | None:
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if key is None or value in (None, "") or not isinstance(value, str):
            continue
        try:
            row[key] = int(value) if key == "epoch" else float(value)
        except ValueError:
            if key == "epoch":
                return None
            row[key] = value
    return row if isinstance(row.get("epoch"), int) and row["epoch"] >= 1 else None


def history_csv(rows: list[dict[str, Any]]) -> str:
    """`history.csv`'s text: an `epoch` column, then every log key in order of first appearance.

    Floats are written with `repr`, so reading the file back gives the very same numbers.
    """
    columns = ["epoch"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def write_history(run_dir: str | Path, rows: list[dict[str, Any]], durable: bool = True) -> Path:
    """Rewrite `history.csv` atomically (`durable=False` skips the fsync, for per-epoch writes)."""
    return write_text(Path(run_dir) / HISTORY_FILE, history_csv(rows), durable=durable)


def history_from_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows rebuilt from a log's `epoch_ended` events (the last record of each epoch).

    The log holds everything `history.csv` holds, so a damaged history can be recovered from it.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.get("event") != ev.EPOCH_ENDED:
            continue
        try:
            epoch = int(event["epoch"])
            logs = {k: ev.as_float(v) for k, v in (event.get("logs") or {}).items()}
        except (KeyError, TypeError, ValueError):
            continue
        row: dict[str, Any] = {"epoch": epoch, **logs}
        if event.get("lr") is not None:
            row["lr"] = event["lr"]
        if event.get("seconds") is not None:
            row["seconds"] = event["seconds"]
        by_epoch[epoch] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


# -- backup and failure -----------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """A whole BackupAndRestore backup: its weights file, its metadata file and what that holds."""

    weights: Path
    metadata_file: Path
    metadata: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.metadata["epoch"])


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (a weights file can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def newest_backup(backup_dir: str | Path) -> Backup | None:
    """The newest backup in `backup_dir` whose weights are the ones its metadata was written for.

    A save writes the weights, then the metadata naming them by digest, each atomically; a kill
    between the two leaves new weights beside old metadata, and a kill during the very first save
    leaves weights and no metadata. Neither counts as a backup: the one before it (or none) does.
    Metadata without a digest (older runs) vouches for whatever weights file is there.
    """
    folder = Path(backup_dir)
    for weights_name, metadata_name in BACKUP_PAIRS:
        weights, metadata_file = folder / weights_name, folder / metadata_name
        try:
            metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
            int(metadata["epoch"])
            if not weights.is_file():
                continue
            digest = metadata.get("weights_sha256")
            if digest is not None and digest != file_digest(weights):
                continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        return Backup(weights, metadata_file, metadata)
    return None


def backup_epoch(run_dir: str | Path) -> int:
    """Epochs completed according to the run's newest whole backup (0 when there is none)."""
    backup = newest_backup(Path(run_dir) / BACKUP_DIR)
    return backup.epoch if backup is not None else 0


def record_failure(run_dir: str | Path, experiment: Experiment, error: Exception) -> None:
    """Leave a `run_ended` failed record in a run directory whose run could not even start.

    A runner process is handed its run directory by the launcher (the TUI), which follows that
    directory's event log: a preset the runner cannot build must still end there, with the message.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / EXPERIMENT_FILE).exists():
        write_experiment(run_dir, experiment)
    writer = ev.EventWriter(run_dir / EVENTS_FILE)
    try:
        writer.emit(
            ev.RUN_ENDED,
            status="failed",
            reason=str(error),
            epochs_completed=0,
            best={},
            final={},
            artifacts={"experiment": EXPERIMENT_FILE, "events": EVENTS_FILE},
            seconds=0.0,
        )
    finally:
        writer.close()


def artifacts(run_dir: str | Path) -> dict[str, str]:
    """The files a run left, by name, relative to the run directory (those that exist)."""
    run_dir = Path(run_dir)
    return {name: rel for name, rel in ARTIFACTS.items() if (run_dir / rel).exists()}


def damage(run_dir: str | Path, log_damage: int | None = None) -> str:
    """What is damaged in a run directory, one line ("" when every file reads as it should).

    Looks at the files a run leaves: undecodable lines in the event log (its torn last line, which
    a live run may be writing, does not count; `log_damage` when a scan of the log already
    counted them), `history.csv`, `runner.json`, `experiment.toml` and `model.keras`.
    """
    import tomllib

    run_dir = Path(run_dir)
    found = []
    bad = _damaged_lines(run_dir / EVENTS_FILE) if log_damage is None else log_damage
    if bad:
        found.append(f"{EVENTS_FILE} has {bad} unreadable line{'s' if bad > 1 else ''}")
    found.append(history_damage(run_dir))
    runner = run_dir / RUNNER_FILE
    if runner.exists():
        try:
            record = json.loads(runner.read_text(encoding="utf-8"))
            pid = record.get("pid") if isinstance(record, dict) else None
            if not isinstance(pid, int) or isinstance(pid, bool):
                found.append(f"{RUNNER_FILE} names no process")
        except (OSError, ValueError):
            found.append(f"{RUNNER_FILE} is not JSON")
    try:
        if (run_dir / EXPERIMENT_FILE).exists():
            tomllib.loads((run_dir / EXPERIMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found.append(f"{EXPERIMENT_FILE} is not valid TOML")
    if (run_dir / MODEL_FILE).exists() and not zipfile.is_zipfile(run_dir / MODEL_FILE):
        found.append(f"{MODEL_FILE} is not a .keras archive")
    return "; ".join(f for f in found if f)


def _damaged_lines(path: Path) -> int:
    scan = LogScan()
    try:
        for _ in scan_events(path, scan=scan):  # batches are checked for shape, not parsed: a long log is quick
            pass
    except OSError:
        return 0
    return scan.damaged


# -- resuming ---------------------------------------------------------------------------------


@dataclass
class ResumePoint:
    """Where a run stands for `tfbench resume`, read from its directory."""

    initial_epoch: int
    """Epochs completed in the backup: training continues after this one."""
    target_epochs: int
    """The planned total (the log's plan with its live changes, or the one asked for)."""
    history: list[dict[str, Any]]
    """The recorded epochs up to `initial_epoch`."""
    later: list[dict[str, Any]] = field(default_factory=list)
    """Recorded epochs after the backup (a kill between two saves): kept until trained again."""
    last_checkpoint_epoch: int = 0
    """The epoch of `checkpoints/last.keras`."""
    finishing: bool = False
    """Every planned epoch is done, but the run never finished (model, exports, train.py)."""
    notes: list[str] = field(default_factory=list)
    """What was damaged and how it was recovered, one line each."""


def resume_point(
    run_dir: str | Path, planned: int, epochs: int | None = None, experiment: Experiment | None = None
) -> ResumePoint:
    """Read a run directory for `tfbench resume` (nothing is written).

    Args:
        run_dir: the run directory.
        planned: the Experiment's planned epochs (used when the log has no plan).
        epochs: a new planned total asked for.
        experiment: the Experiment resume will train (its `experiment.toml` as it is now): an
            edited `train.epochs` is the new plan (`epochs` wins), other edits are refused
            (`edited_plan`).

    Raises:
        UserError: not a run directory, a damaged backup, a run that already finished, or an
            `experiment.toml` edited in a way resume cannot honour.
    """
    run_dir = Path(run_dir)
    if not (run_dir / EVENTS_FILE).exists():
        raise UserError("not a run directory (no events.jsonl)", str(run_dir))
    initial = _checked_backup_epoch(run_dir)
    end = last_event(run_dir)  # a finished run with the plan it ended with is refused from the log's last line
    if epochs is None and end is not None and end["event"] == ev.RUN_ENDED and end.get("epochs") == planned:
        _refuse_finished(run_dir, str(end.get("status")), planned, initial)
    previous = summary_state(run_dir)  # a long log streams by: its batches are not parsed
    edited = edited_plan(run_dir, experiment, previous.experiment, initial) if experiment is not None else None
    target = int(epochs or edited or previous.epochs or planned)
    lasts = [c for c in previous.checkpoints if c.get("kind") == "last"]
    point = ResumePoint(initial, target, [], last_checkpoint_epoch=int(lasts[-1].get("epoch") or 0) if lasts else 0)
    rows, damage = _parse_history(run_dir / HISTORY_FILE)
    if damage:
        recovered = history_from_events(scan_events(run_dir))
        shutil.copyfile(run_dir / HISTORY_FILE, run_dir / f"{HISTORY_FILE}.damaged")
        point.notes.append(f"{damage}; kept it as {HISTORY_FILE}.damaged and rebuilt the history from {EVENTS_FILE}")
        rows = recovered if len(recovered) >= len(rows) else rows
    point.history = [r for r in rows if r["epoch"] <= initial]
    point.later = [r for r in rows if r["epoch"] > initial]
    if edited and not epochs:
        point.notes.append(
            f"{EXPERIMENT_FILE} plans {edited} epochs now ({previous.epochs} before): training on to {edited}"
        )
    if initial >= target:
        _refuse_finished(run_dir, previous.status, target, initial)
        point.finishing = True
    return point


# What resume honours of an `experiment.toml` edited after the run stopped: a new planned total
# (as `tfbench set RUN epochs=N` while it trains), and what only the run's end reads. Any other
# edit would continue a different run from this one's weights and optimizer state.
HONOURED_EDITS = ("train.epochs", "description", "export")


def edited_plan(run_dir: Path, experiment: Experiment, recorded: dict[str, Any], trained: int) -> int | None:
    """The planned epochs an edited `experiment.toml` asks for, None when its plan was not edited.

    Args:
        run_dir: the run directory.
        experiment: its `experiment.toml` as it is now.
        recorded: the Experiment the run last started with (its log's last `run_started`).
        trained: the epochs in the run's backup.

    Raises:
        UserError: at `experiment.toml`, naming each edit resume cannot honour, or a plan below
            what was trained; nothing is written, so the run stays resumable.
    """
    from tfbench.experiment_diff import experiment_differences
    from tfbench.spec import experiment_from_dict

    if not recorded:
        return None
    try:
        before = experiment_from_dict(recorded).to_dict()  # with today's defaults, as `experiment` has them
    except UserError:
        return None  # recorded by another version of tfbench: nothing to compare with
    changes = experiment_differences([before, experiment.to_dict()])
    refused = [(path, old, new) for path, (old, new) in changes if not _honoured(path)]
    where = str(run_dir / EXPERIMENT_FILE)
    if refused:
        shown = "; ".join(f"{path} {old} → {new}" for path, old, new in refused[:3])
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        raise UserError(
            f"changed since the run was trained ({shown}{more}); resume continues the run as it was trained",
            where,
            f"put it back as it was, or train the new version as a new run: `tfbench run {where}`",
        )
    if any(path == "train.epochs" for path, _ in changes):
        if experiment.train.epochs < trained:
            raise UserError(
                f"train.epochs = {experiment.train.epochs}, but the run has trained {trained} epochs",
                f"{where}: train.epochs",
                f"plan at least {trained}",
            )
        return experiment.train.epochs
    return None


def _honoured(path: str) -> bool:
    return any(path == edit or path.startswith((f"{edit}.", f"{edit}[")) for edit in HONOURED_EDITS)


def _refuse_finished(run_dir: Path, status: str, target: int, initial: int) -> None:
    """Refuse to resume a run that trained its planned epochs and saved its model."""
    if initial >= target and status in SUCCEEDED and zipfile.is_zipfile(run_dir / MODEL_FILE):
        raise UserError(
            f"the run already finished its {target} planned epochs", str(run_dir), "plan more with --epochs N"
        )


def _checked_backup_epoch(run_dir: Path) -> int:
    backup = run_dir / BACKUP_DIR
    epoch = backup_epoch(run_dir)
    if newest_backup(backup) is None and any((backup / name).exists() for name in BACKUP_METADATA):
        raise UserError(
            f"the backup is damaged: no {BACKUP_DIR}/{BACKUP_METADATA[0]} can be read that matches its weights",
            str(run_dir),
            f"its last checkpoint is {LAST_CHECKPOINT}; or start over with `tfbench run {EXPERIMENT_FILE}`",
        )
    return epoch


def lock(run_dir: str | Path) -> int:
    """Take the run directory's training lock (the OS drops it when the process dies).

    Returns:
        The lock's file descriptor; `unlock` it when the run is over.

    Raises:
        UserError: another process holds it — that run is training in this directory now.
    """
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write the run directory: {exc.strerror}", str(run_dir)) from None
    try:
        _take_lock(fd)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise UserError(
            f"another tfbench process{f' (pid {holder})' if holder.isdigit() else ''} is training this run",
            str(run_dir),
            "wait for it, or stop it with `tfbench stop RUN_DIR`",
        ) from None
    except OSError:  # a file system without locks (some network mounts): train unguarded
        return fd
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


LOCK_RELEASE_WAIT = 10.0
"""Seconds to wait for the lock of a runner that has died but not yet released it."""


def _take_lock(fd: int) -> None:
    """flock the run's lock file, waiting while the process that holds it is exiting.

    A killed runner's lock is dropped only when the last of its threads is gone; for a big process
    that is a moment after it shows as dead (a zombie, or no longer listed), which is when a quick
    `resume` asks. Its lock is waited for (up to LOCK_RELEASE_WAIT); a live holder is refused at once.

    Raises:
        BlockingIOError: a live process holds the lock, or a dead one's was not released in time.
    """
    deadline = time.monotonic() + LOCK_RELEASE_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            if not _exiting(holder) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _exiting(holder: str) -> bool:
    """Whether the process a lock file names is gone or a zombie (its lock is about to be dropped)."""
    import psutil

    if not holder.isdigit():
        return False
    try:
        return psutil.Process(int(holder)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def unlock(fd: int | None) -> None:
    """Release a lock taken with `lock` (None: nothing to release)."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def check_unlocked(run_dir: str | Path) -> None:
    """Refuse a run directory another process is training in (see `lock`), taking nothing."""
    if (Path(run_dir) / LOCK_FILE).exists():
        unlock(lock(run_dir))


# -- loading a finished run -------------------------------------------------------------------


def find_model(run_dir: str | Path) -> Path:
    """The trained model of a run directory.

    Raises:
        UserError: the folder does not exist or holds no `model.keras` or `experiment.toml`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("no such run directory", str(run_dir))
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        hint = "the run may have failed before saving; see its events.jsonl, or run the preset again"
        if (run_dir / BACKUP_DIR).is_dir():
            hint = "finish it with `tfbench resume RUN_DIR`"
        raise UserError(f"this run directory has no trained model ({MODEL_FILE})", str(run_dir), hint)
    if not (run_dir / EXPERIMENT_FILE).is_file():
        raise UserError(f"this run directory has no {EXPERIMENT_FILE}", str(run_dir))
    return model_path


def load_run_experiment(run_dir: str | Path) -> Experiment:
    """The Experiment a run recorded.

    Raises:
        UserError: `experiment.toml` is missing or not a valid Experiment.
    """
    from tfbench.spec import load_experiment

    return load_experiment(Path(run_dir) / EXPERIMENT_FILE)


def load_model(path: str | Path, compile: bool = False) -> Any:
    """Load a `.keras` model (for inference unless `compile`).

    Raises:
        UserError: the file is missing, damaged (not a `.keras` archive) or not a loadable model.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("no such model file", str(path))
    if not zipfile.is_zipfile(path):
        raise UserError(
            "the model file is damaged (not a .keras archive)",
            str(path),
            "use checkpoints/last.keras, or finish the run again with `tfbench resume`",
        )
    from tfbench.keras_archive import check_archive

    check_archive(path)  # members declaring gigabytes: refused before Keras reads them
    import keras

    try:
        return keras.saving.load_model(str(path), compile=compile)
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
        if "Could not locate class" in str(exc):  # a class of the run's own code ([code]), not imported here
            raise UserError(
                "the model uses a class of its run's own code, which is not imported here",
                str(path),
                "allow the run's code: --allow-code (the run keeps it in code/)",
            ) from None
        raise UserError(f"the model file is damaged: {type(exc).__name__}: {exc}", str(path)) from None


def load_bundle(experiment: Experiment, cache_dir: str | Path | None = None) -> DataBundle:
    """The run's data, split and batched as it was for training (one-hot labels where the loss needs them).

    Args:
        cache_dir: the run directory a file cache (`data.cache = "NAME"`) is written in, by the run
            that trains (it holds the run's lock); without it the samples are not cached, so an
            export or an evaluation never writes beside a training run.

    Raises:
        UserError: the data cannot be loaded (a moved file, no network for a download…), or a
            file cache that is not inside the run directory.
    """
    from tfbench import data
    from tfbench.io_model import data_names
    from tfbench.models import needs_one_hot

    spec = experiment.data
    if spec.cache_file:
        cache = str(cache_prefix(cache_dir, spec.cache_file)) if cache_dir is not None else False
        spec = spec.model_copy(update={"cache": cache})  # no validation: the path is absolute now
    seed = experiment.train.seed
    io = data_names(experiment)
    info = data.describe(spec, seed, io=io)
    return data.load(spec, seed, one_hot=needs_one_hot(experiment, info), io=io)


def cache_prefix(run_dir: str | Path, name: str) -> Path:
    """Where `data.cache = "NAME"` writes its files (`NAME-train.index`, …): inside the run directory.

    Raises:
        UserError: a name outside the run directory or on one of tfbench's own files.
    """
    from tfbench.catalog import inside_run_dir

    return inside_run_dir(name, run_dir, "data.cache", OWN_PATHS)


def prepare_cache(run_dir: str | Path, name: str) -> list[Path]:
    """Make a file cache's folder, and remove what a killed run left of a half-written cache.

    TensorFlow refuses to write a cache whose lock file exists ("a concurrent caching iterator");
    only the run holding the run directory's lock calls this, so no iterator of it is alive.

    Returns:
        The stale files removed.
    """
    import glob

    prefix = cache_prefix(run_dir, name)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    stale = [
        p
        for p in prefix.parent.glob(glob.escape(prefix.name) + "-*")
        if p.name.endswith(".lockfile") or ".tempstate" in p.name
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
