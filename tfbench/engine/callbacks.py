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

import json
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras

from tfbench import catalog, user_code
from tfbench.atomic import copy_file, replacing, write_text
from tfbench.diskspace import disk_full
from tfbench.engine import events as ev
from tfbench.engine.checkpoints import seed_variables
from tfbench.errors import UserError
from tfbench.rundir import (
    BACKUP_DIR,
    BACKUP_PAIRS,
    CHECKPOINTS_DIR,
    KERAS_LOG,
    OWN_PATHS,
    TENSORBOARD_DIR,
    file_digest,
    newest_backup,
)

if TYPE_CHECKING:  # pragma: no cover
    from tfbench.engine.checkpoints import Checkpoints
    from tfbench.engine.controls import Controls
    from tfbench.spec import Experiment

BATCH_INTERVAL = 0.1  # seconds between batch events (≤ 10/s)
SPIKE_FACTOR = 10.0  # a batch loss this many times its running mean is reported as a spike
SPIKE_WARMUP = 20  # batches before spikes are judged


class TrainingRun(Protocol):
    """What the callbacks read and call on the Run that trains (`tfbench.engine.run.Run`).

    Named here, not imported, so the Run can build its callbacks without an import circle.
    """

    experiment: Experiment
    run_dir: Path | None
    bundle: Any
    controls: Controls
    checkpoints: Checkpoints | None
    steps_per_epoch: int | None
    resuming: bool
    epoch_interrupted: bool
    diverged_reason: str | None

    @property
    def target_epochs(self) -> int: ...

    @property
    def completed_epochs(self) -> int: ...

    @property
    def directory(self) -> Path: ...

    @property
    def saver(self) -> Checkpoints: ...

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any] | None: ...

    def epoch_began(self, epoch: int) -> None: ...

    def diverge(self, reason: str) -> None: ...

    def record_epoch(self, epoch: int, logs: dict[str, float], seconds: float, samples: int) -> None: ...

    def backup_due(self, epoch: int) -> bool | str: ...


def peak_memory_mb() -> float | None:
    """The first GPU's peak memory in MiB since start-up (None without a GPU)."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    try:
        return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    except (ValueError, RuntimeError):
        return None


def plain_logs(logs: dict[str, Any]) -> dict[str, float]:
    """Logs as Python floats (non-numbers dropped)."""
    out = {}
    for key, value in logs.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


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

    def __init__(self, run: TrainingRun):
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
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # With steps_per_execution = n, Keras calls the batch hooks once per n batches.
        self._per_call = max(1, int(getattr(self.model, "steps_per_execution", 1) or 1))

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1
        self.step = 0
        self._epoch_t0 = time.perf_counter()
        self.run.epoch_began(self.epoch)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # The training thread passes here before every batch: keep it to a few attribute reads.
        self.step = batch + self._per_call  # batches begun in this epoch (may overshoot the last)
        if self.controls.attention:
            self.controls.between_batches(self.epoch, batch)
        if not self._preflight_done:
            self._time_preflight()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Logs arrive as Python floats (Keras converts them before calling any callback).
        if not logs:
            return
        loss = logs.get("loss")
        if loss is not None:
            if not finite(loss):
                self._diverged(self.epoch, batch + 1, loss)
                return
            self._watch_spike(float(loss), batch + 1)
        now = time.monotonic()
        if now - self._last_batch_event >= BATCH_INTERVAL:
            with self._lock:
                if now - self._last_batch_event < BATCH_INTERVAL:
                    return
                self._last_batch_event = now
            self.run.emit(ev.BATCH, epoch=self.epoch, step=batch + 1, steps=self.run.steps_per_epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._epoch_t0
        if not self._preflight_done:
            self._time_preflight(final=True)
        run, epoch = self.run, epoch + 1
        if run.diverged_reason is not None:
            return
        steps, begun = run.steps_per_epoch, self.step
        if self.controls.stop_reason is not None and steps and begun < steps:
            run.epoch_interrupted = True
            run.emit(
                ev.LOG,
                level="info",
                message=f"stopped in epoch {epoch} after {begun} of {steps} batches; that epoch is not recorded",
            )
            return
        logs = plain_logs(logs or {})
        if not finite(logs.get("loss", 0.0)):
            self._diverged(epoch, begun, logs["loss"])
            return
        begun = min(begun, steps) if steps else begun
        samples = begun * run.experiment.data.batch_size
        train_size = (run.bundle.info.sizes or {}).get("train")
        if train_size and steps and begun >= steps:
            samples = min(samples, int(train_size))
        run.record_epoch(epoch, logs, seconds, samples)

    def _diverged(self, epoch: int, step: int, loss: Any) -> None:
        what = (
            "NaN" if isinstance(loss, float) and math.isnan(loss) else "Inf" if isinstance(loss, float) else str(loss)
        )
        self.run.diverge(f"loss became {what} at epoch {epoch}, batch {step}")

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
        run.emit(
            ev.PREFLIGHT,
            step_seconds=step_seconds,
            first_step_seconds=first_step_seconds,
            eta_seconds=eta,
            peak_memory_mb=peak_memory_mb(),
            batch_size=run.experiment.data.batch_size,
        )

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
    """Keras' BackupAndRestore that never records a half-trained epoch as done, survives a kill at
    any moment, and brings back the random-seed states too, so a resumed run trains exactly as if
    it had never stopped.

    A stop or a divergence ends an epoch early; Keras still calls `on_epoch_end`, and the stock
    callback would then mark that epoch finished, so `tfbench resume` would skip its rest. This one
    keeps the previous backup instead. The stock save writes its files in place, so a kill in the
    middle left a cut weights file that no resume could load; here each file is written whole and
    renamed into place, weights first, then the metadata that names them by digest and holds the
    layers' seed states (Dropout's masks). Before Keras loads, `settle` leaves it the newest whole
    backup (`rundir.newest_backup`) under its usual name, or none. The backup is doubled, so a kill
    during a save falls back to the one before, and it is kept after training so a finished run
    can still be extended.

    When to save is the run's Checkpoints' decision (`Run.backup_due`); an epoch not saved at its
    end is written later from its snapshot with `save_epoch`.
    """

    def __init__(self, run: TrainingRun, backup_dir: str, save_freq: Any = "epoch", **kwargs: Any):
        kwargs.setdefault("double_checkpoint", True)
        kwargs["delete_checkpoint"] = False
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.run = run
        self.folder = Path(backup_dir)
        # With per-epoch saves the batch hook does nothing, so it may run on Keras' async thread.
        self.async_safe = save_freq == "epoch"

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.settle()
        super().on_train_begin(logs)
        self.restore_seeds()

    def settle(self) -> None:
        """Leave the newest whole backup as Keras' `latest` pair, or no `latest` at all."""
        (weights, metadata), _ = self.paths()
        chosen = newest_backup(self.folder)
        if chosen is None:  # a first save cut short: its weights belong to no epoch
            weights.unlink(missing_ok=True)
            metadata.unlink(missing_ok=True)
        elif chosen.weights != weights:  # the newest save was cut short: fall back to the one before
            copy_file(chosen.weights, weights)
            copy_file(chosen.metadata_file, metadata)

    def paths(self) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
        """(weights, metadata) of the newest backup and of the one before, as Keras names them."""
        latest, before = ((self.folder / w, self.folder / m) for w, m in BACKUP_PAIRS)
        return latest, before

    def restore_seeds(self) -> None:
        """Put back the seed states saved with the weights just loaded."""
        chosen = newest_backup(self.folder)
        states = chosen.metadata.get("seeds") if chosen is not None else None
        variables = seed_variables(self.model)
        if isinstance(states, list) and len(states) == len(variables):
            for variable, state in zip(variables, states):
                variable.assign(state)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.run.epoch_interrupted:
            return
        if self.save_freq != "epoch" or self.run.backup_due(epoch + 1):
            self.save_epoch(epoch + 1)
        else:
            self._current_epoch = epoch + 1  # the base class's bookkeeping, without the save
            self._last_batch_seen = 0

    def save_epoch(self, epoch: int) -> None:
        """Write the backup of `epoch` from the model's present state."""
        started = time.perf_counter()
        self._current_epoch = epoch
        self._last_batch_seen = 0
        self._save_model()
        self.run.saver.backup_saved(epoch, time.perf_counter() - started)

    def _save_model(self) -> None:
        """Keras' save, each file written whole: at every moment one whole backup is on disk."""
        (weights, metadata), (weights_before, metadata_before) = self.paths()
        self.folder.mkdir(parents=True, exist_ok=True)
        if weights.is_file() and metadata.is_file():  # whole (settled at the start): keep it as the fallback
            copy_file(weights, weights_before)
            copy_file(metadata, metadata_before)
        with replacing(weights, suffix=".tmp.weights.h5") as partial:  # Keras wants this ending
            self.model.save_weights(partial, overwrite=True)
            digest = file_digest(partial)
        seeds = [v.numpy().tolist() for v in seed_variables(self.model)]
        write_text(
            metadata,
            json.dumps(
                {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights_sha256": digest, "seeds": seeds}
            ),
            durable=False,
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
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
        args = catalog.resolve_run_paths(
            "callbacks", component.type, component.args, run_dir, f"train.callbacks[{i}]", reserved=OWN_PATHS
        )
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
        own = user_code.find("callbacks", component.type) if cls is None else None  # the preset's code
        if own is not None:
            try:
                callbacks.append(own.cls(**args))
            except Exception as exc:  # noqa: BLE001 - the user's constructor: one line naming it and where
                raise user_code.constructor_error(own, exc, f"train.callbacks[{i}]") from None
            continue
        if not isinstance(cls, type):
            raise UserError(f"{component.type!r} is not a Keras callback", f"train.callbacks[{i}]")
        try:
            callbacks.append(cls(**args))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{component.type}: {exc}", f"train.callbacks[{i}]") from None
    return callbacks, backup_args


def check_tensorboard(experiment: Any) -> None:
    """Refuse TensorBoard logging early when the tensorboard package is missing.

    Raises:
        UserError: naming the entry that asks for it.
    """
    train = experiment.train
    wanted = [f"train.callbacks[{i}]" for i, c in enumerate(train.callbacks) if c.type == "TensorBoard"]
    if not wanted:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError(
            "TensorBoard logging needs the tensorboard package", wanted[0], "pip install tensorboard"
        ) from None


def run_callbacks(run: TrainingRun, extra: list[Any]) -> tuple[list[Any], RunBackup]:
    """`fit`'s callbacks for a Run: any `extra` first, the profiler (its step markers then hold the
    others' batch hooks), the EventCallback, the Experiment's own, then the run's backup (returned
    apart too).

    Raises:
        UserError: a callback entry Keras refuses.
    """
    own, backup_args = experiment_callbacks(run.experiment, run.directory, run.resuming)
    try:
        backup = RunBackup(run, str(run.directory / BACKUP_DIR), **backup_args)
    except (TypeError, ValueError) as exc:
        raise UserError(f"BackupAndRestore: {exc}", "train.callbacks") from None
    from tfbench.engine.profiling import ProfileCallback

    # The preset's own callbacks see each epoch before it is recorded, so what they add to its logs is kept.
    mine = [c for c in own if type(c).__module__.startswith(user_code.MODULE_PREFIX)]
    return [*extra, ProfileCallback(run), *mine, EventCallback(run), *[c for c in own if c not in mine], backup], backup


def early_stop_reason(callbacks: list[Any], completed_epochs: int) -> str:
    """Why a callback ended `fit` before the planned epochs (EarlyStopping says what it watched)."""
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping) and cb.stopped_epoch:
            return (
                f"EarlyStopping: {cb.monitor} did not improve for {cb.patience} epochs "
                f"(stopped after epoch {completed_epochs})"
            )
    return f"a callback stopped training after epoch {completed_epochs}"


def failure_reason(exc: Exception, batch_size: int, epoch: int) -> str:
    """One line for a `fit` that raised; running out of memory or disk says what to do."""
    import tensorflow as tf

    if isinstance(exc, tf.errors.ResourceExhaustedError):
        return (
            f"out of memory at batch size {batch_size} (epoch {epoch}); try a smaller batch "
            f"(--set data.batch_size={max(1, batch_size // 2)}) or mixed precision "
            f"(--set train.mixed_precision=mixed_float16)"
        )
    if disk_full(exc):
        return (
            f"the disk is full (epoch {epoch} could not be saved); free some space, then "
            f"`tfbench resume` continues from the last saved epoch"
        )
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:500]
