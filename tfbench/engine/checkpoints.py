"""A run's checkpoints: when to save `last`, `best` and the backup, and which epoch is best — without a UI.

Keras is only touched through the model handed in. One rule says what "better" means (`improved`,
after Keras' MonitorCallback: `min` or `max` from the metric's name), and it serves both the
epochs trained now and the history a resumed run brings back.

Saving costs tens of milliseconds, which short epochs would feel, so saves are spaced by an
interval (`checkpoint_interval`); an improved best that is not due yet is kept in memory and
written at the latest when the run ends.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from tfbench.engine import events as ev
from tfbench.rundir import BACKUP_DIR, BEST_CHECKPOINT, LAST_CHECKPOINT

# Seconds between writes of last.keras, best.keras and the BackupAndRestore state. Epochs longer
# than this are saved every time, and the epoch a run ends on always is. TFBENCH_CHECKPOINT_SECONDS
# overrides it (0: save every epoch).
CHECKPOINT_INTERVAL = 30.0

# Metrics where larger is better, for choosing the best epoch.
_MAX_METRICS = ("acc", "auc", "precision", "recall", "f1", "iou", "r2", "top_k")


def checkpoint_interval() -> float:
    """The checkpoint interval in seconds (TFBENCH_CHECKPOINT_SECONDS, else 30)."""
    try:
        return max(0.0, float(os.environ.get("TFBENCH_CHECKPOINT_SECONDS", CHECKPOINT_INTERVAL)))
    except ValueError:
        return CHECKPOINT_INTERVAL


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """`min` or `max` for a metric name, as Keras' callbacks decide it."""
    if mode in ("min", "max"):
        return mode
    return "max" if any(key in monitor for key in _MAX_METRICS) else "min"


def choose_monitor(callbacks: list[Any], has_validation: bool) -> tuple[str, str]:
    """The metric and mode that pick the best epoch: the first monitoring callback's, else
    `val_loss` (or `loss` without validation data), lower is better."""
    for cb in callbacks:
        if cb.type in ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau") and cb.args.get("monitor"):
            return cb.args["monitor"], monitor_mode(cb.args["monitor"], cb.args.get("mode", "auto"))
    return ("val_loss" if has_validation else "loss"), "min"


class Checkpoints:
    """The last/best/backup policy of one run directory.

    Args:
        run_dir: the run directory.
        emit: the run's event emitter (each save emits a `checkpoint` event).
        monitor: the metric that picks the best epoch; `mode` says whether lower or higher wins.
        interval: seconds between saves (default: `checkpoint_interval()`).
    """

    def __init__(self, run_dir: Path, emit: Callable[..., Any], monitor: str = "loss", mode: str = "min",
                 interval: float | None = None):
        self.run_dir = Path(run_dir)
        self.emit = emit
        self.monitor, self.mode = monitor, mode
        self.interval = checkpoint_interval() if interval is None else interval
        self.best: dict[str, Any] = {}
        self.last_saved_epoch = 0  # epoch of the weights in last.keras
        self.backup_pending: tuple[int, list] | None = None
        self._saved_at: dict[str, float] = {}
        self._started = time.monotonic()
        self._best_pending: tuple[int, list, dict[str, Any]] | None = None

    def started(self) -> None:
        """Training begins now: intervals count from here."""
        self._started = time.monotonic()

    def due(self, kind: str) -> bool:
        """Whether a save of `kind` (last | best | backup) is due by the interval."""
        since = self._saved_at.get(kind, self._started)
        return time.monotonic() - since >= self.interval

    # -- the best epoch ------------------------------------------------------------------------
    def improved(self, value: Any) -> bool:
        """The one rule: whether `value` beats the best so far (a non-finite value never does)."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(value):
            return False
        best = self.best.get("value")
        return best is None or (value < best if self.mode == "min" else value > best)

    def _record_best(self, epoch: int, logs: dict[str, Any]) -> bool:
        value = logs.get(self.monitor)
        if not self.improved(value):
            return False
        self.best = {"monitor": self.monitor, "mode": self.mode, "epoch": epoch, "value": float(value), "logs": logs}
        return True

    def restore_best(self, history: list[dict[str, Any]]) -> None:
        """The best epoch of a history brought back by a resume (nothing is saved)."""
        for row in history:
            logs = {k: v for k, v in row.items() if k not in ("epoch", "lr", "seconds")}
            self._record_best(int(row["epoch"]), logs)

    # -- saving ----------------------------------------------------------------------------------
    def epoch_ended(self, model: Any, epoch: int, logs: dict[str, Any]) -> None:
        """After a completed epoch: save `last` when due; keep (or save, when due) a new best."""
        if self.due("last"):
            self.save(model, LAST_CHECKPOINT, "last", epoch)
        if not self._record_best(epoch, logs):
            return
        fields = {"monitor": self.monitor, "value": self.best["value"]}
        if self.due("best"):
            self._best_pending = None
            self.save(model, BEST_CHECKPOINT, "best", epoch, **fields)
        else:
            self._best_pending = (epoch, model.get_weights(), fields)

    def backup_due(self, model: Any, epoch: int, ending: bool) -> bool | str:
        """Whether the backup should be saved at the end of `epoch` (complete epochs only).

        Returns "after_fit" when the run ends with this epoch: its weights are kept and the backup
        is written once `fit` returns.
        """
        if ending:
            self.backup_pending = (epoch, model.get_weights())
            return "after_fit"
        return self.due("backup")

    def backup_saved(self, epoch: int) -> None:
        """The backup of `epoch` was written."""
        self._saved_at["backup"] = time.monotonic()
        self.emit(ev.CHECKPOINT, kind="backup", path=BACKUP_DIR, epoch=epoch)

    def flush(self, model: Any, completed_epochs: int, save_last: bool) -> None:
        """Write the pending best and (when asked and behind) the last checkpoint."""
        if self._best_pending is not None:
            epoch, weights, fields = self._best_pending
            current = model.get_weights()
            model.set_weights(weights)
            try:
                self.save(model, BEST_CHECKPOINT, "best", epoch, **fields)
            finally:
                model.set_weights(current)
            self._best_pending = None
        if save_last and (self.last_saved_epoch != completed_epochs or "last" not in self._saved_at):
            self.save(model, LAST_CHECKPOINT, "last", completed_epochs)

    def save(self, model: Any, rel: str, kind: str, epoch: int, **fields: Any) -> None:
        """Save the model to `rel` atomically and emit a `checkpoint` event."""
        final = self.run_dir / rel
        tmp = final.with_name(f".{final.stem}-{os.getpid()}.tmp.keras")
        model.save(tmp)
        os.replace(tmp, final)
        self._saved_at[kind] = time.monotonic()
        if kind == "last":
            self.last_saved_epoch = epoch
        self.emit(ev.CHECKPOINT, kind=kind, path=rel, epoch=epoch, **fields)
