"""A run's checkpoints: when to save `last`, `best` and the backup, and which epoch is best — without a UI.

Keras is only touched through the model handed in (TensorFlow only to read its variables).
`improved` asks the one rule of what "better" means (`improvement.improves`, after Keras'
MonitorCallback: `min` or `max` from the metric's name), for both the epochs trained now and the
history a resumed run brings back.

The policy (README, "Run directory"): `last.keras` and the backup are saved together at the end
of an epoch once the training since the last save is worth 50 times what a save costs (measured
on each save; at most 30 s, and always at the first epoch). An epoch that is not saved is kept as
a copy in memory (its weights, optimizer and random-seed state), and that copy is written when the
run stops, diverges or ends — so a stop by any means keeps every completed epoch, and a kill loses
at most one epoch or those few seconds of short epochs, while saving costs at most ~2% of the
training time. TFBENCH_CHECKPOINT_SECONDS fixes the spacing instead (0: save every epoch).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tfbench.engine import events as ev
from tfbench.engine.improvement import improves
from tfbench.rundir import BACKUP_DIR, BEST_CHECKPOINT, LAST_CHECKPOINT

SAVE_BUDGET = 0.02  # the share of training time that saving may cost
MAX_INTERVAL = 30.0  # seconds of training a crash may lose at most (short epochs)

# Metrics where larger is better, for choosing the best epoch.
_MAX_METRICS = ("acc", "auc", "precision", "recall", "f1", "iou", "r2", "top_k")


def checkpoint_interval() -> float | None:
    """TFBENCH_CHECKPOINT_SECONDS as seconds between saves (0: every epoch); None: the adaptive policy."""
    try:
        return max(0.0, float(os.environ["TFBENCH_CHECKPOINT_SECONDS"]))
    except (KeyError, ValueError):
        return None


def state_variables(model: Any) -> list[Any]:
    """Everything training changes: weights, random-seed states and the optimizer's variables."""
    seen: set[int] = set()
    out = []
    optimizer = getattr(model, "optimizer", None)
    for v in [*model.variables, *(optimizer.variables if optimizer is not None else [])]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def seed_variables(model: Any) -> list[Any]:
    """The random-seed states of a model's layers (Dropout's, augmentations'): variables that are
    not weights, which Keras' weight files leave out."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def snapshot(model: Any) -> list[Any]:
    """A copy of the model's training state, as `state_variables` lists it.

    Taken at most epoch ends, so it is kept cheap: a variable in host memory is read as a tensor,
    which keeps its value while training goes on (TensorFlow copies a variable's buffer before
    updating it in place while a read of it is held), several times faster than copying it into
    numpy (~0.1 ms a variable: ~8 ms an epoch for digits-resnet's 77). A variable on an
    accelerator is copied to numpy, so the copy never takes the accelerator's memory.
    """
    return [_read(v) for v in state_variables(model)]


def _read(variable: Any) -> Any:
    value = getattr(variable, "value", variable)  # a Keras variable holds a TensorFlow one
    try:
        if "CPU" in value.device:
            import tensorflow as tf

            return tf.raw_ops.ReadVariableOp(resource=value.handle, dtype=value.dtype)
    except (AttributeError, TypeError, ValueError, RuntimeError):
        pass  # not a plain resource variable (a distributed one): numpy below
    return variable.numpy()


@contextmanager
def holding(model: Any, values: list[Any], variables: list[Any] | None = None) -> Iterator[None]:
    """Put a snapshot's values into the model for the block, then the model's own back.

    `variables` are those the snapshot was taken of (default: the model's now), for a snapshot
    older than a change of the optimizer (fine-tuning recompiles)."""
    variables = state_variables(model) if variables is None else variables
    current = [_read(v) for v in variables]
    for v, value in zip(variables, values):
        v.assign(value)
    try:
        yield model
    finally:
        for v, value in zip(variables, current):
            v.assign(value)


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
        interval: fixed seconds between saves (default: `checkpoint_interval()`; None adapts).
    """

    def __init__(
        self,
        run_dir: Path,
        emit: Callable[..., Any],
        monitor: str = "loss",
        mode: str = "min",
        interval: float | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.emit = emit
        self.monitor, self.mode = monitor, mode
        self.interval = checkpoint_interval() if interval is None else interval
        self.best: dict[str, Any] = {}
        self.last_saved_epoch = 0  # epoch of the weights in last.keras
        self.unsaved: tuple[int, list] | None = None  # (epoch, snapshot) of a completed epoch not saved yet
        self._saved_at: dict[str, float] = {}
        self._cost: dict[str, float] = {}  # seconds the last save of each kind took
        self._started = time.monotonic()
        self._best_pending: tuple[int, list, list, dict[str, Any]] | None = None

    def started(self) -> None:
        """Training begins now: intervals count from here."""
        self._started = time.monotonic()

    def due(self, kind: str) -> bool:
        """Whether a save of `kind` (last | best | backup) is due (see the module's policy)."""
        window = self.interval
        if window is None:
            window = min(MAX_INTERVAL, self._cost.get(kind, 0.0) / SAVE_BUDGET)
        return time.monotonic() - self._saved_at.get(kind, self._started) >= window

    # -- the best epoch ------------------------------------------------------------------------
    def improved(self, value: Any) -> bool:
        """Whether `value` beats the best so far (a non-finite value never does)."""
        return improves(value, self.best.get("value"), self.mode)

    def _record_best(self, epoch: int, logs: dict[str, Any]) -> bool:
        value = logs.get(self.monitor)
        if value is None or not self.improved(value):
            return False
        self.best = {"monitor": self.monitor, "mode": self.mode, "epoch": epoch, "value": float(value), "logs": logs}
        return True

    def restore_best(self, history: list[dict[str, Any]]) -> None:
        """The best epoch of a history brought back by a resume (nothing is saved)."""
        for row in history:
            logs = {k: v for k, v in row.items() if k not in ("epoch", "lr", "seconds")}
            self._record_best(int(row["epoch"]), logs)

    def epoch_ended(self, model: Any, epoch: int, logs: dict[str, Any]) -> None:
        """After a completed epoch: keep (or save, when due) a new best."""
        if not self._record_best(epoch, logs):
            return
        fields = {"monitor": self.monitor, "value": self.best["value"]}
        if self.due("best"):
            self._best_pending = None
            self.save(model, BEST_CHECKPOINT, "best", epoch, **fields)
        else:
            self._best_pending = (epoch, state_variables(model), snapshot(model), fields)

    # -- last and backup -------------------------------------------------------------------------
    def backup_due(self, model: Any, epoch: int, ending: bool) -> bool:
        """At the end of a completed `epoch`: save `last.keras` now and say True when due (the
        caller then writes the backup); else keep a snapshot for `write_unsaved` and say False.

        An `ending` epoch is always kept for after `fit`, so the last save does not lengthen
        the training loop and callbacks that restore other weights do not change what is saved.
        """
        if ending or not self.due("backup"):
            self.unsaved = (epoch, snapshot(model))
            return False
        self.unsaved = None
        self.save(model, LAST_CHECKPOINT, "last", epoch)
        return True

    def backup_saved(self, epoch: int, seconds: float) -> None:
        """The backup of `epoch` was written, in `seconds`."""
        self._saved_at["backup"] = time.monotonic()
        self._cost["backup"] = seconds
        self.emit(ev.CHECKPOINT, kind="backup", path=BACKUP_DIR, epoch=epoch)

    def write_unsaved(self, model: Any, save_backup: Callable[[int], None]) -> None:
        """Write the last completed epoch that is only in memory: `last.keras` and the backup."""
        unsaved, self.unsaved = self.unsaved, None
        if unsaved is None:
            return
        epoch, values = unsaved
        with holding(model, values):
            save_backup(epoch)
            if self.last_saved_epoch != epoch or "last" not in self._saved_at:
                self.save(model, LAST_CHECKPOINT, "last", epoch)

    def flush(self, model: Any, completed_epochs: int, save_last: bool) -> None:
        """Write the pending best and (when asked and behind) the last checkpoint."""
        if self._best_pending is not None:
            epoch, variables, values, fields = self._best_pending
            with holding(model, values, variables):
                self.save(model, BEST_CHECKPOINT, "best", epoch, **fields)
            self._best_pending = None
        if save_last and (self.last_saved_epoch != completed_epochs or "last" not in self._saved_at):
            self.save(model, LAST_CHECKPOINT, "last", completed_epochs)

    def save(self, model: Any, rel: str, kind: str, epoch: int | None = None, **fields: Any) -> None:
        """Save the model to `rel` atomically (no temporary file is left, even on a full disk) and,
        for a checkpoint (`epoch` given), emit a `checkpoint` event."""
        started = time.perf_counter()
        final = self.run_dir / rel
        tmp = final.with_name(f".{final.stem}-{os.getpid()}.tmp.keras")
        try:
            model.save(tmp)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._saved_at[kind] = time.monotonic()
        self._cost[kind] = time.perf_counter() - started
        if kind == "last":
            self.last_saved_epoch = int(epoch or 0)
        if epoch is not None:
            self.emit(ev.CHECKPOINT, kind=kind, path=rel, epoch=epoch, **fields)
