"""The Keras callbacks a Run adds to `model.fit` — without a UI.

Imported only by code that trains, so it imports Keras at module level. `EventCallback` turns the
fit loop into events and is the point where the training thread obeys control (pause blocks between
batches; live settings are applied between batches). It is built to cost nothing against a plain
`model.fit`: Keras' TensorFlow backend converts every batch's logs to Python floats for its own
History callback anyway, so per batch this adds an attribute check, a finiteness test and a clock
read, and an event at most ten times a second. It is marked `async_safe`, so on a backend that
dispatches batch ends to a worker thread nothing here waits on the device either.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from tfbench.engine import events as ev
from tfbench.errors import UserError
from tfbench.rundir import CHECKPOINTS_DIR, KERAS_LOG, TENSORBOARD_DIR

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.engine.run import Run

BATCH_INTERVAL = 0.1  # seconds between batch events (≤ 10/s)
SPIKE_FACTOR = 10.0  # a batch loss this many times its running mean is reported as a spike
SPIKE_WARMUP = 20  # batches before spikes are judged


def peak_memory_mb() -> float | None:
    """The first GPU's peak memory in MiB since start-up (None without a GPU)."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    try:
        return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    except (ValueError, RuntimeError):
        return None


def finite(value: Any) -> bool:
    """Whether a metric value is a finite number (non-numbers count as finite)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class EventCallback(keras.callbacks.Callback):
    """Emits the run's events and applies its controls, from inside `model.fit`.

    Args:
        run: the Run being trained; the callback reads its control flags and reports through it.
    """

    def __init__(self, run: "Run"):
        super().__init__()
        self.run = run
        self.controls = run.controls
        # Its batch-end hook only reads floats and emits, so Keras may call it from a worker thread
        # (backends that dispatch asynchronously do; TensorFlow's calls it in line).
        self.async_safe = True
        self._lock = threading.Lock()
        self.epoch = 0  # 1-based epoch being trained
        self.step = 0  # batches begun in this epoch
        self._per_call = 1
        self._epoch_t0 = 0.0
        self._last_batch_event = 0.0
        self._step_times: list[float] = []
        self._preflight_done = False
        self._loss_mean: float | None = None
        self._batches_seen = 0
        self._spike_reported_epoch = 0

    # -- epochs -------------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        # With steps_per_execution = n, Keras calls the batch hooks once per n batches.
        self._per_call = max(1, int(getattr(self.model, "steps_per_execution", 1) or 1))

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch + 1
        self.step = 0
        self._epoch_t0 = time.perf_counter()
        self.run.epoch_began(self.epoch)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        # The training thread passes here before every batch: keep it to a few attribute reads.
        self.step = batch + self._per_call  # batches begun in this epoch (may overshoot the last)
        if self.controls.attention:
            self.controls.between_batches(self.epoch, batch)
        if not self._preflight_done:
            self._time_preflight()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        # Logs arrive as Python floats (Keras converts them before calling any callback).
        if not logs:
            return
        loss = logs.get("loss")
        if loss is not None:
            if not finite(loss):
                self.run.diverged(self.epoch, batch + 1, loss)
                return
            self._watch_spike(float(loss), batch + 1)
        now = time.monotonic()
        if now - self._last_batch_event >= BATCH_INTERVAL:
            with self._lock:
                if now - self._last_batch_event < BATCH_INTERVAL:
                    return
                self._last_batch_event = now
            self.run.emit(ev.BATCH, epoch=self.epoch, step=batch + 1, steps=self.run.steps_per_epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        seconds = time.perf_counter() - self._epoch_t0
        if not self._preflight_done:
            self._time_preflight(final=True)
        self.run.epoch_ended(epoch + 1, dict(logs or {}), seconds, self.step)

    # -- checks -------------------------------------------------------------------------------
    def _time_preflight(self, final: bool = False) -> None:
        """Time the first real batches (batch 1 includes tracing), then report once."""
        self._step_times.append(time.perf_counter())
        times = self._step_times
        if len(times) >= 3 or final:
            self._preflight_done = True
            if len(times) >= 3:
                step = times[2] - times[1]
            elif len(times) == 2:
                step = times[1] - times[0]
            else:
                step = None
            first = times[1] - times[0] if len(times) >= 2 else None
            self._report_preflight(step, first)

    def _report_preflight(self, step_seconds: float | None, first_step_seconds: float | None) -> None:
        """The first batches' timing: an ETA for the planned epochs and the peak device memory."""
        run = self.run
        eta = None
        if step_seconds is not None and run.steps_per_epoch:
            eta = round(step_seconds * run.steps_per_epoch * (run.target_epochs - run.completed_epochs), 3)
        run.emit(ev.PREFLIGHT, step_seconds=step_seconds, first_step_seconds=first_step_seconds, eta_seconds=eta,
                 peak_memory_mb=peak_memory_mb(), batch_size=run.experiment.data.batch_size)

    def _watch_spike(self, loss: float, step: int) -> None:
        self._batches_seen += 1
        mean = self._loss_mean
        if mean is None:
            self._loss_mean = loss
            return
        if (
            self._batches_seen > SPIKE_WARMUP
            and mean > 0
            and loss > SPIKE_FACTOR * mean
            and self._spike_reported_epoch != self.epoch
        ):
            self._spike_reported_epoch = self.epoch
            self.run.emit(
                "log",
                level="warning",
                message=(
                    f"loss spike at epoch {self.epoch}, batch {step}: {loss:.4g} "
                    f"(running mean {mean:.4g}); a lower learning rate may help"
                ),
            )
        self._loss_mean = 0.9 * mean + 0.1 * loss


class RunBackup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore that never records a half-trained epoch as done.

    A stop or a divergence ends an epoch early; Keras still calls `on_epoch_end`, and the stock
    callback would then mark that epoch finished, so `tfbench resume` would skip its rest. This one
    keeps the previous backup instead. The backup is doubled, so a kill during a save falls back to
    the one before, and it is kept after training so a finished run can still be extended.

    Saving costs tens of milliseconds, so with short epochs it saves at most every
    `checkpoints.CHECKPOINT_INTERVAL` seconds (the Run's Checkpoints decide), and always for the epoch where the run ends —
    that save just after `fit` returns, from the weights that epoch ended with.
    """

    def __init__(self, run: "Run", backup_dir: str, save_freq: Any = "epoch", **kwargs: Any):
        kwargs.setdefault("double_checkpoint", True)
        kwargs["delete_checkpoint"] = False
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.run = run
        # With per-epoch saves the batch hook does nothing, so it may run on Keras' async thread.
        self.async_safe = save_freq == "epoch"

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.run.epoch_interrupted:
            return
        due = self.save_freq != "epoch" or self.run.backup_due(epoch + 1)
        if due == "after_fit":
            # The run ends with this epoch: the Run keeps these weights and calls `save_after_fit`
            # once `fit` has returned, so the last save does not lengthen the training loop.
            due = False
        if not due:
            self._current_epoch = epoch + 1  # the base class's bookkeeping, without the save
            self._last_batch_seen = 0
            return
        super().on_epoch_end(epoch, logs)
        self.run.checkpoints.backup_saved(epoch + 1)

    def save_after_fit(self, epoch: int, weights: list) -> None:
        """Save the backup of `epoch`, whose weights are `weights` (callbacks such as EarlyStopping
        may have restored others since); the model's own weights are left as they are."""
        current = self.model.get_weights()
        self.model.set_weights(weights)
        try:
            self._current_epoch = epoch
            self._last_batch_seen = 0
            self._save_model()
        finally:
            self.model.set_weights(current)
        self.run.checkpoints.backup_saved(epoch)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.run.epoch_interrupted:
            return
        super().on_train_batch_end(batch, logs)


def experiment_callbacks(experiment: Any, run_dir: Path, resuming: bool) -> tuple[list[Any], dict[str, Any]]:
    """The Experiment's own Keras callbacks, their files inside the run directory by default.

    A `BackupAndRestore` entry is not built here: its arguments (second in the result) go to the
    run's own `RunBackup`, which keeps the backup in `checkpoints/backup`.

    Raises:
        UserError: an entry that is not a Keras callback, or arguments it refuses.
    """
    callbacks: list[Any] = []
    backup_args: dict[str, Any] = {}
    for i, component in enumerate(experiment.train.callbacks):
        args = dict(component.args)
        if component.type == "BackupAndRestore":
            args.pop("backup_dir", None)
            backup_args = args
            continue
        if component.type == "ModelCheckpoint":
            args.setdefault("filepath", str(run_dir / CHECKPOINTS_DIR / "model-{epoch:03d}.keras"))
        elif component.type == "CSVLogger":
            args.setdefault("filename", str(run_dir / KERAS_LOG))
            args.setdefault("append", resuming)
        elif component.type == "TensorBoard":
            args.setdefault("log_dir", str(run_dir / TENSORBOARD_DIR))
        cls = getattr(keras.callbacks, component.type, None)
        if not isinstance(cls, type):
            raise UserError(f"{component.type!r} is not a Keras callback", f"train.callbacks[{i}]")
        try:
            callbacks.append(cls(**args))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{component.type}: {exc}", f"train.callbacks[{i}]") from None
    if experiment.train.tensorboard and not any(c.type == "TensorBoard" for c in experiment.train.callbacks):
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_DIR)))
    return callbacks, backup_args


def check_tensorboard(experiment: Any) -> None:
    """Refuse TensorBoard logging early when the tensorboard package is missing.

    Raises:
        UserError: naming the entry that asks for it.
    """
    train = experiment.train
    wanted = [f"train.callbacks[{i}]" for i, c in enumerate(train.callbacks) if c.type == "TensorBoard"]
    if train.tensorboard:
        wanted.append("train.tensorboard")
    if not wanted:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError("TensorBoard logging needs the tensorboard package", wanted[0], "pip install tensorboard") from None
