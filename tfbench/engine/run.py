"""A Run: one training of an Experiment in its own run directory — without a UI.

The Run owns `runs/<name>-<YYYYmmdd-HHMMSS>/` (layout in DESIGN.md), trains in a background thread
with `model.fit`, and writes everything as it goes: the event log, `history.csv` (rewritten
atomically each epoch), the last and best checkpoints and Keras' BackupAndRestore state, and at the
end `model.keras`, `train.py` and the exports. Another thread may pause, unpause, stop it or change
its learning rate and planned epochs; the runner process's main thread does exactly that for the
control channel (`tfbench.engine.control`).

The lifecycle is `prepare()` (seed, data, model — every user mistake surfaces here, as a
`UserError`, before any thread or run directory exists), `start()` (run directory, `run_started`,
training thread) and `wait()`. TensorFlow is imported inside the methods that need it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from tfbench.atomic import write_text
from tfbench.engine import events as ev
from tfbench.errors import UserError
from tfbench.spec import Experiment

EXPERIMENT_FILE = "experiment.toml"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
SCRIPT_FILE = "train.py"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.keras"
BEST_CHECKPOINT = "checkpoints/best.keras"
BACKUP_DIR = "checkpoints/backup"

# Seconds between writes of last.keras, best.keras and the BackupAndRestore state: a save costs tens
# of milliseconds, which short epochs would feel. Epochs longer than this are saved every time, and
# the epoch a run ends on always is; a pending best is kept in memory and written at the latest when
# the run ends. A crash loses at most this much training. TFBENCH_CHECKPOINT_SECONDS overrides it
# (0: save every epoch).
CHECKPOINT_INTERVAL = 30.0


def checkpoint_interval() -> float:
    """The checkpoint interval in seconds (TFBENCH_CHECKPOINT_SECONDS, else 30)."""
    try:
        return max(0.0, float(os.environ.get("TFBENCH_CHECKPOINT_SECONDS", CHECKPOINT_INTERVAL)))
    except ValueError:
        return CHECKPOINT_INTERVAL

EXIT_CODES = {"completed": 0, "early_stopped": 0, "failed": 1, "stopped": 130}
SETTINGS = ("learning_rate", "epochs")

# Metrics where larger is better, for choosing the best epoch.
_MAX_METRICS = ("acc", "auc", "precision", "recall", "f1", "iou", "r2", "top_k")


def exit_code(status: str) -> int:
    """The process exit code for a run's final status (DESIGN.md: 0, 1 or 130)."""
    return EXIT_CODES.get(status, 1)


def new_run_dir(runs_dir: str | Path, name: str, now: datetime | None = None) -> Path:
    """Create and return a fresh `runs_dir/<name>-<YYYYmmdd-HHMMSS>` (a suffix keeps it unique).

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


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """`min` or `max` for a metric name, as Keras' callbacks decide it."""
    if mode in ("min", "max"):
        return mode
    return "max" if any(key in monitor for key in _MAX_METRICS) else "min"


def backup_epoch(run_dir: str | Path) -> int:
    """Epochs completed according to the BackupAndRestore state (0 when there is none)."""
    backup = Path(run_dir) / BACKUP_DIR
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            return int(json.loads((backup / name).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's `history.csv` (numbers as floats, `epoch` as int)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if value in (None, ""):
                    continue
                try:
                    row[key] = int(value) if key == "epoch" else float(value)
                except ValueError:
                    row[key] = value
            rows.append(row)
    return rows


def history_csv(rows: list[dict[str, Any]]) -> str:
    """`history.csv`'s text: an `epoch` column, then every log key in order of first appearance."""
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


def _plain(logs: dict[str, Any]) -> dict[str, Any]:
    """Logs as Python floats (non-numbers dropped)."""
    out = {}
    for key, value in logs.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class Run:
    """One training of an Experiment, with its run directory, training thread and controls.

    Args:
        experiment: the validated Experiment to train.
        runs_dir: where a new run directory is created (ignored when `run_dir` is given).
        run_dir: an existing directory to use (the runner process is handed the one its launcher
            chose; a resumed run continues in its own).
        subscribers: called with every event, in the emitting thread (keep them quick).
        resume: continue the run already in `run_dir` to its planned epochs.
        epochs: with `resume`, a new planned total.
    """

    def __init__(
        self,
        experiment: Experiment,
        runs_dir: str | Path = "runs",
        run_dir: str | Path | None = None,
        subscribers: list[Callable[[dict], None]] | tuple = (),
        resume: bool = False,
        epochs: int | None = None,
    ):
        self.experiment = experiment
        self.runs_dir = Path(runs_dir)
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.resuming = resume
        self.state = ev.RunState()
        self._subscribers = [self.state.apply, *subscribers]
        self.writer: ev.EventWriter | None = None
        self.status = "prepared"
        self.reason = ""
        self.target_epochs = int(epochs or experiment.train.epochs)
        self._epochs_given = epochs is not None
        self.initial_epoch = 0
        self.completed_epochs = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.changes: list[dict[str, Any]] = []
        self.model: Any = None
        self.bundle: Any = None
        self.summary: dict[str, Any] = {}
        self.steps_per_epoch: int | None = None
        self.fit_seconds = 0.0  # time spent inside model.fit (the benchmark's measure)
        self.fit_cpu_seconds = 0.0  # CPU time of the whole process meanwhile
        self._prepared = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._ended_lock = threading.Lock()
        self._ended = False
        self._t0 = 0.0
        self._sampler: Any = None
        self._scratch = False  # a non-chief worker's throwaway run directory
        self._strategy: Any = None
        self._gpu = False
        # control, shared between the training thread and its controllers
        self._cond = threading.Condition()
        self._attention = False  # read on every batch: anything asked of the training thread?
        self._pause_requested = False
        self._pause_id: str | None = None
        self._resume_id: str | None = None
        self._paused = False
        self._pending: list[tuple[str, Any, str | None]] = []
        self._stop_reason: str | None = None
        self._stop_id: str | None = None
        self._diverged_reason: str | None = None
        self._epoch_interrupted = False
        self._last_saved_epoch = 0  # epoch of the weights in last.keras
        self._saved_at: dict[str, float] = {}
        self._train_started = 0.0
        self.checkpoint_interval = checkpoint_interval()
        self._best_pending: tuple[int, list, dict[str, Any]] | None = None
        self._backup_pending: tuple[int, list] | None = None
        self._backup: Any = None  # the RunBackup callback
        self._fit_inputs: dict[str, Any] = {}
        self._monitor, self._mode = "loss", "min"
        self._callback: Any = None
        self._callbacks: list[Any] = []
        if resume:
            self._load_previous()

    # -- preparing -------------------------------------------------------------------------
    def _load_previous(self) -> None:
        if self.run_dir is None or not (self.run_dir / ev.EVENTS_FILE).exists():
            raise UserError("not a run directory (no events.jsonl)", str(self.run_dir))
        previous = ev.RunState.from_log(self.run_dir)
        if previous.epochs and not self._epochs_given:
            self.target_epochs = previous.epochs  # the plan, with its live changes
        self.initial_epoch = backup_epoch(self.run_dir)
        self.completed_epochs = self.initial_epoch
        lasts = [c for c in previous.checkpoints if c.get("kind") == "last"]
        self._last_saved_epoch = int(lasts[-1].get("epoch") or 0) if lasts else 0
        self.history = [r for r in read_history(self.run_dir) if int(r.get("epoch", 0)) <= self.initial_epoch]
        if self.initial_epoch >= self.target_epochs:
            raise UserError(
                f"the run already finished its {self.target_epochs} planned epochs",
                str(self.run_dir),
                "plan more with --epochs N",
            )

    def prepare(self, bundle: Any = None, model: Any = None) -> None:
        """Seed, load the data and build the compiled model, before any thread or file exists.

        Args:
            bundle: an already loaded DataBundle (the benchmark shares one with plain `fit`).
            model: an already built, compiled model for that data.

        Raises:
            UserError: the data or the model cannot be made from this Experiment.
        """
        import tensorflow as tf

        from tfbench import build, data

        exp = self.experiment
        if model is None:
            # First: multi-worker strategies must exist before any other TensorFlow op.
            self._strategy = self._make_strategy()
        self._gpu = bool(tf.config.list_physical_devices("GPU"))
        if model is None:
            build.apply_seed(exp.train)
        if bundle is None:
            info = data.describe(exp.data, exp.train.seed)
            bundle = data.load(exp.data, exp.train.seed, one_hot=build.needs_one_hot(exp, info))
            if exp.train.strategy == "multi_worker":
                from tfbench.engine.strategy import with_data_sharding

                bundle.train = with_data_sharding(bundle.train)
                if bundle.validation is not None:
                    bundle.validation = with_data_sharding(bundle.validation)
        self.bundle = bundle
        if model is None:
            with self._strategy.scope():
                model = build.build_model(exp, bundle.info)
        self.model = model
        try:
            self.summary = build.summarize(exp, bundle.info).to_dict()
        except Exception:  # an injected model need not match the Experiment's layers
            self.summary = {
                "layers": [],
                "total_params": int(model.count_params()),
                "trainable_params": int(sum(int(math.prod(w.shape)) for w in model.trainable_weights)),
            }
        self.steps_per_epoch = bundle.steps_per_epoch
        if self.steps_per_epoch is None:
            card = int(tf.data.experimental.cardinality(bundle.train))
            self.steps_per_epoch = card if card > 0 else None
        self._monitor, self._mode = self._choose_monitor()
        self._check_tensorboard()
        self._fit_inputs = self._repeated_inputs(bundle)
        self._fit_inputs.update(data.class_weights.fit_arguments(exp.train, bundle))  # train.class_weight
        self._prepared = True

    def _repeated_inputs(self, bundle: Any) -> dict[str, Any]:
        """`fit`'s data: each split repeated, with its steps, when its length is known.

        Keras starts a new iterator over a finite dataset every epoch, and starting one runs the
        pipeline's functions' set-up again: ~15 ms per epoch on 2 cores, a tenth of a small
        model's epoch. Repeated, with `steps_per_epoch`/`validation_steps`, one iterator per split
        serves the whole `fit`; the epochs are the same batches. Multi-worker runs keep the
        finite datasets (their shards' lengths are not known here).
        """
        import tensorflow as tf

        inputs: dict[str, Any] = {"x": bundle.train, "validation_data": bundle.validation}
        if self.experiment.train.strategy == "multi_worker" or not self.steps_per_epoch:
            return inputs
        inputs.update(x=bundle.train.repeat(), steps_per_epoch=self.steps_per_epoch)
        if bundle.validation is not None:
            card = int(tf.data.experimental.cardinality(bundle.validation))
            if card > 0:
                inputs.update(validation_data=bundle.validation.repeat(), validation_steps=card)
        return inputs

    def _check_tensorboard(self) -> None:
        train = self.experiment.train
        wanted = [f"train.callbacks[{i}]" for i, c in enumerate(train.callbacks) if c.type == "TensorBoard"]
        if train.tensorboard:
            wanted.append("train.tensorboard")
        if not wanted:
            return
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError(
                "TensorBoard logging needs the tensorboard package", wanted[0], "pip install tensorboard"
            ) from None

    def _make_strategy(self) -> Any:
        try:
            from tfbench.engine.strategy import make_strategy
        except ImportError:
            import tensorflow as tf

            return tf.distribute.get_strategy()
        return make_strategy(self.experiment.train)

    def _choose_monitor(self) -> tuple[str, str]:
        for cb in self.experiment.train.callbacks:
            if cb.type in ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau") and cb.args.get("monitor"):
                return cb.args["monitor"], monitor_mode(cb.args["monitor"], cb.args.get("mode", "auto"))
        monitor = "val_loss" if self.bundle.validation is not None else "loss"
        return monitor, "min"

    # -- the run directory -------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        assert self.run_dir is not None
        return self.run_dir / rel

    def rel(self, path: str | Path) -> str:
        try:
            return str(Path(path).relative_to(self.run_dir))
        except ValueError:
            return str(path)

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any] | None:
        """Record an event (thread-safe); nothing once the run has ended."""
        if self.writer is None:
            return None
        return self.writer.emit(kind, **fields)

    def start(self) -> Path:
        """Create the run directory, emit `run_started` and start the training thread.

        Returns:
            The run directory.

        Raises:
            UserError: the directory cannot be written, or already holds another run.
        """
        if not self._prepared:
            self.prepare()
        if not self._is_chief():
            # Only the chief writes the run directory; other workers write a scratch copy.
            from tfbench.engine.strategy import worker_dir

            self.run_dir = worker_dir(self.run_dir or self.runs_dir)
            self._scratch = True
        if self.run_dir is None:
            self.run_dir = new_run_dir(self.runs_dir, self.experiment.name)
        elif not self.resuming and (self.run_dir / ev.EVENTS_FILE).exists():
            raise UserError("already holds a run; continue it with `tfbench resume`", str(self.run_dir))
        try:
            self.path(CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            if not self.resuming:
                write_text(self.path(EXPERIMENT_FILE), self.experiment.to_toml())
            self.writer = ev.EventWriter(self.path(ev.EVENTS_FILE), self._subscribers)
        except OSError as exc:
            raise UserError(f"cannot write the run directory: {exc.strerror}", str(self.run_dir)) from None
        self._t0 = time.time()
        self._callbacks = self._make_callbacks()
        self.status = "running"
        self.emit(
            ev.RUN_STARTED,
            experiment=self.experiment.to_dict(),
            run_dir=str(self.run_dir),
            model=self.summary,
            data=self.bundle.info.to_dict(),
            steps_per_epoch=self.steps_per_epoch,
            epochs=self.target_epochs,
            initial_epoch=self.initial_epoch,
            pid=os.getpid(),
            resumed=self.resuming,
        )
        if self.resuming:
            self._write_history()
            self._resumed_best()
        self._start_sampler()
        self._thread = threading.Thread(target=self._train, name="tfbench-training", daemon=True)
        self._thread.start()
        return self.run_dir

    def _is_chief(self) -> bool:
        if self.experiment.train.strategy != "multi_worker":
            return True
        from tfbench.engine.strategy import is_chief

        return is_chief()

    def _start_sampler(self) -> None:
        try:
            from tfbench.system import SystemSampler
        except ImportError:
            return
        self._sampler = SystemSampler(lambda kind, **f: self.emit(kind, **f))
        self._sampler.start()

    def _make_callbacks(self) -> list[Any]:
        """The EventCallback first, then the Experiment's callbacks, then the backup."""
        import keras

        from tfbench.engine.callbacks import EventCallback, RunBackup

        self._callback = EventCallback(self)
        callbacks: list[Any] = [self._callback]
        backup_args: dict[str, Any] = {}
        for i, component in enumerate(self.experiment.train.callbacks):
            args = dict(component.args)
            if component.type == "BackupAndRestore":
                args.pop("backup_dir", None)
                backup_args = args
                continue
            if component.type == "ModelCheckpoint":
                args.setdefault("filepath", str(self.path("checkpoints/model-{epoch:03d}.keras")))
            elif component.type == "CSVLogger":
                args.setdefault("filename", str(self.path("keras-log.csv")))
                args.setdefault("append", self.resuming)
            elif component.type == "TensorBoard":
                args.setdefault("log_dir", str(self.path("tensorboard")))
            cls = getattr(keras.callbacks, component.type, None)
            if not isinstance(cls, type):
                raise UserError(f"{component.type!r} is not a Keras callback", f"train.callbacks[{i}]")
            try:
                callbacks.append(cls(**args))
            except (TypeError, ValueError) as exc:
                raise UserError(f"{component.type}: {exc}", f"train.callbacks[{i}]") from None
        if self.experiment.train.tensorboard and not any(
            c.type == "TensorBoard" for c in self.experiment.train.callbacks
        ):
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(self.path("tensorboard"))))
        try:
            self._backup = RunBackup(self, str(self.path(BACKUP_DIR)), **backup_args)
            callbacks.append(self._backup)
        except (TypeError, ValueError) as exc:
            raise UserError(f"BackupAndRestore: {exc}", "train.callbacks") from None
        return callbacks

    # -- training (the training thread) -------------------------------------------------------
    def _train(self) -> None:
        status, reason = "failed", ""
        try:
            self._train_started = time.monotonic()
            if not self.resuming:
                self._save_model(LAST_CHECKPOINT, "last", 0)
            status, reason = self._fit_loop()
        except UserError as exc:
            status, reason = "failed", str(exc)
        except Exception as exc:  # a failed run, reported in its log rather than lost
            status, reason = "failed", self._failure_reason(exc)
            self.emit(ev.LOG, level="error", message=traceback.format_exc())
        finally:
            try:
                self._finish(status, reason)
            finally:
                self._done.set()  # whatever happened, nobody waits forever

    def _failure_reason(self, exc: Exception) -> str:
        import tensorflow as tf

        if isinstance(exc, tf.errors.ResourceExhaustedError):
            batch = self.experiment.data.batch_size
            epoch = self._callback.epoch if self._callback else 0
            return (
                f"out of memory at batch size {batch} (epoch {epoch}); try a smaller batch "
                f"(--set data.batch_size={max(1, batch // 2)}) or mixed precision "
                f"(--set train.mixed_precision=mixed_float16)"
            )
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {message}"[:500]

    def _fit_loop(self) -> tuple[str, str]:
        while True:
            start = self.completed_epochs
            if start >= self.target_epochs:
                return "completed", ""
            if self._stop_reason is not None:
                return "stopped", self._stop_reason
            fit_started, fit_cpu = time.perf_counter(), time.process_time()
            try:
                self.model.fit(
                    **self._fit_inputs,
                    epochs=self.target_epochs,
                    initial_epoch=start,
                    callbacks=self._callbacks,
                    verbose=0,
                    shuffle=False,  # the tf.data pipeline shuffles
                )
            finally:
                self.fit_seconds += time.perf_counter() - fit_started
                self.fit_cpu_seconds += time.process_time() - fit_cpu
                self._save_backup_after_fit()
            if self._diverged_reason is not None:
                return "failed", self._diverged_reason
            if self._stop_reason is not None:
                return "stopped", self._stop_reason
            if self.completed_epochs >= self.target_epochs:
                return "completed", ""
            if self.completed_epochs == start:  # fit ended at once: nothing more will happen
                return "failed", "training stopped without completing an epoch"
            if self.model.stop_training:
                return "early_stopped", self._early_stop_reason()
            # the planned epochs grew while the last epoch ran: fit on to the new total

    def _early_stop_reason(self) -> str:
        for cb in self._callbacks:
            if type(cb).__name__ == "EarlyStopping" and getattr(cb, "stopped_epoch", 0):
                return (
                    f"EarlyStopping: {cb.monitor} did not improve for {cb.patience} epochs "
                    f"(stopped after epoch {self.completed_epochs})"
                )
        return f"a callback stopped training after epoch {self.completed_epochs}"

    # hooks called by EventCallback --------------------------------------------------------------
    def _on_epoch_begin(self, epoch: int) -> None:
        if self._diverged_reason is None:
            self._epoch_interrupted = False
        self.emit(ev.EPOCH_STARTED, epoch=epoch, epochs=self.target_epochs)

    def _between_batches(self, epoch: int, batch: int) -> None:
        """Apply what controllers asked for; block here while paused."""
        with self._cond:
            self._apply_pending()
            if self._stop_reason is None and self._pause_requested and not self._paused:
                self._paused = True
                pause_id, self._pause_id = self._pause_id, None
                self.emit(ev.PAUSED, epoch=epoch, step=batch, command_id=pause_id)
                since = time.monotonic()
                while self._pause_requested and self._stop_reason is None:
                    self._cond.wait(0.5)
                    self._apply_pending()
                self._paused = False
                resume_id, self._resume_id = self._resume_id, None
                self.emit(
                    ev.RESUMED,
                    epoch=epoch,
                    step=batch,
                    paused_seconds=round(time.monotonic() - since, 3),
                    command_id=resume_id,
                )
            self._attention = bool(self._pending or self._pause_requested or self._stop_reason)
            if self._stop_reason is not None:
                self.model.stop_training = True
                self._attention = False

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, []
        for name, value, command_id in pending:
            if name == "learning_rate":
                old = self.learning_rate()
                self.model.optimizer.learning_rate = value
                self._record_change(name, old, value, command_id)

    def _record_change(self, name: str, old: Any, new: Any, command_id: str | None) -> None:
        epoch = self._callback.epoch if self._callback else 0
        self.changes.append({"name": name, "old": old, "new": new, "epoch": epoch, "time": time.time()})
        self.emit(ev.SETTING_CHANGED, name=name, old=old, new=new, epoch=epoch, command_id=command_id)

    def _emit_batch(self, epoch: int, step: int, logs: dict[str, Any]) -> None:
        self.emit(ev.BATCH, epoch=epoch, step=step, steps=self.steps_per_epoch, logs=logs)

    def _diverged(self, epoch: int, step: int, loss: Any) -> None:
        with self._cond:
            if self._diverged_reason is not None:
                return
            what = "NaN" if isinstance(loss, float) and math.isnan(loss) else "Inf" if isinstance(loss, float) else str(loss)
            kept = f"{LAST_CHECKPOINT} (epoch {self._last_saved_epoch})"
            self._diverged_reason = (
                f"loss became {what} at epoch {epoch}, batch {step}; kept the last good checkpoint {kept}; "
                f"a lower learning rate usually helps"
            )
            self._epoch_interrupted = True
            self.model.stop_training = True

    def _preflight(self, step_seconds: float | None, first_step_seconds: float | None) -> None:
        eta = None
        if step_seconds is not None and self.steps_per_epoch:
            epochs_left = self.target_epochs - self.completed_epochs
            eta = round(step_seconds * self.steps_per_epoch * epochs_left, 3)
        self.emit(
            ev.PREFLIGHT,
            step_seconds=step_seconds,
            first_step_seconds=first_step_seconds,
            eta_seconds=eta,
            peak_memory_mb=self._peak_memory_mb(),
            batch_size=self.experiment.data.batch_size,
        )

    def _peak_memory_mb(self) -> float | None:
        if not self._gpu:
            return None
        import tensorflow as tf

        try:
            return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
        except (ValueError, RuntimeError):
            return None

    def _on_epoch_end(self, epoch: int, logs: dict[str, Any], seconds: float, steps_begun: int) -> None:
        if self._diverged_reason is not None:
            return
        steps = self.steps_per_epoch
        if self._stop_reason is not None and steps and steps_begun < steps:
            self._epoch_interrupted = True
            self.emit(
                ev.LOG,
                level="info",
                message=f"stopped in epoch {epoch} after {steps_begun} of {steps} batches; that epoch is not recorded",
            )
            return
        logs = _plain(logs)
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            self._diverged(epoch, steps_begun, loss)
            return
        lr = self.learning_rate()
        batch = self.experiment.data.batch_size
        train_size = (self.bundle.info.sizes or {}).get("train")
        if steps:
            steps_begun = min(steps_begun, steps)
        samples = steps_begun * batch
        if train_size and steps and steps_begun >= steps:
            samples = min(samples, int(train_size))
        self.emit(
            ev.EPOCH_ENDED,
            epoch=epoch,
            logs=logs,
            lr=lr,
            seconds=round(seconds, 4),
            samples_per_sec=round(samples / seconds, 1) if seconds > 0 else None,
        )
        self.history.append({"epoch": epoch, **logs, "lr": lr, "seconds": round(seconds, 4)})
        self._write_history()
        self.completed_epochs = epoch
        if self._due("last"):
            self._save_model(LAST_CHECKPOINT, "last", epoch)
        self._check_best(epoch, logs)
        if epoch >= self.target_epochs:
            self.model.stop_training = True  # the plan was lowered while running

    def _backup_due(self, epoch: int) -> bool | str:
        """Whether the backup should be saved at the end of `epoch` (complete epochs only).

        Returns "after_fit" when the run ends with this epoch: its weights are kept and the backup
        is written once `fit` returns (`_save_backup_after_fit`).
        """
        ending = self._stop_reason is not None or epoch >= self.target_epochs or self.model.stop_training
        if ending:
            self._backup_pending = (epoch, self.model.get_weights())
            return "after_fit"
        return self._due("backup")

    def _save_backup_after_fit(self) -> None:
        pending, self._backup_pending = self._backup_pending, None
        if pending is not None and self._backup is not None:
            self._backup.save_after_fit(*pending)

    def _backup_saved(self, epoch: int) -> None:
        self._saved_at["backup"] = time.monotonic()
        self.emit(ev.CHECKPOINT, kind="backup", path=BACKUP_DIR, epoch=epoch)

    def _write_history(self) -> None:
        write_text(self.path(HISTORY_FILE), history_csv(self.history), durable=False)

    def _check_best(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self._monitor)
        if value is None or not math.isfinite(value):
            return
        best = self.best.get("value")
        better = best is None or (value < best if self._mode == "min" else value > best)
        if better:
            self.best = {"monitor": self._monitor, "mode": self._mode, "epoch": epoch, "value": value, "logs": logs}
            fields = {"monitor": self._monitor, "value": value}
            if self._due("best"):
                self._best_pending = None
                self._save_model(BEST_CHECKPOINT, "best", epoch, **fields)
            else:
                self._best_pending = (epoch, self.model.get_weights(), fields)

    def _due(self, kind: str) -> bool:
        since = self._saved_at.get(kind, self._train_started)
        return time.monotonic() - since >= self.checkpoint_interval

    def _flush_checkpoints(self, save_last: bool) -> None:
        """Write the pending best and (when asked and behind) the last checkpoint."""
        if self._best_pending is not None:
            epoch, weights, fields = self._best_pending
            current = self.model.get_weights()
            self.model.set_weights(weights)
            try:
                self._save_model(BEST_CHECKPOINT, "best", epoch, **fields)
            finally:
                self.model.set_weights(current)
            self._best_pending = None
        if save_last and (self._last_saved_epoch != self.completed_epochs or "last" not in self._saved_at):
            self._save_model(LAST_CHECKPOINT, "last", self.completed_epochs)

    def _save_model(self, rel: str, kind: str, epoch: int, **fields: Any) -> None:
        """Save the model to `rel` atomically and emit a `checkpoint` event."""
        final = self.path(rel)
        tmp = final.with_name(f".{final.stem}-{os.getpid()}.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, final)
        self._saved_at[kind] = time.monotonic()
        if kind == "last":
            self._last_saved_epoch = epoch
        self.emit(ev.CHECKPOINT, kind=kind, path=rel, epoch=epoch, **fields)

    def learning_rate(self) -> float | None:
        """The optimizer's current learning rate (a schedule's value at this step)."""
        try:
            return float(self.model.optimizer.learning_rate)
        except Exception:
            return None

    # -- finishing ----------------------------------------------------------------------------
    def _resumed_best(self) -> None:
        for row in self.history:
            self._check_best_quiet(row)

    def _check_best_quiet(self, row: dict[str, Any]) -> None:
        value = row.get(self._monitor)
        if value is None:
            return
        best = self.best.get("value")
        if best is None or (value < best if self._mode == "min" else value > best):
            logs = {k: v for k, v in row.items() if k not in ("epoch", "lr", "seconds")}
            self.best = {"monitor": self._monitor, "mode": self._mode, "epoch": row["epoch"], "value": value, "logs": logs}

    def _finish(self, status: str, reason: str) -> None:
        """Save what the run has, write `train.py` and the exports, and emit `run_ended`."""
        try:
            if status == "stopped":
                epoch = self._callback.epoch if self._callback else self.completed_epochs
                self._save_model(LAST_CHECKPOINT, "last", epoch)
            self._flush_checkpoints(save_last=status in ("completed", "early_stopped"))
            if status in ("completed", "early_stopped", "stopped"):
                self.model.save(self.path(MODEL_FILE).with_name(".model.tmp.keras"))
                os.replace(self.path(MODEL_FILE).with_name(".model.tmp.keras"), self.path(MODEL_FILE))
        except Exception as exc:
            self.emit(ev.LOG, level="error", message=f"could not save the model: {exc}")
        if self.history:
            try:  # once more, durably: during training it is rewritten without an fsync
                write_text(self.path(HISTORY_FILE), history_csv(self.history))
            except OSError as exc:
                self.emit(ev.LOG, level="error", message=f"could not write {HISTORY_FILE}: {exc}")
        self._write_script()
        if status in ("completed", "early_stopped"):
            self._export()
        if self._sampler is not None:
            self._sampler.stop()
        self._end(status, reason, command_id=self._stop_id if status == "stopped" else None)
        if self._scratch:
            import shutil

            shutil.rmtree(self.run_dir, ignore_errors=True)
        self._done.set()

    def _write_script(self) -> None:
        try:
            from tfbench.codegen import generate_script
        except ImportError:
            return
        try:
            write_text(self.path(SCRIPT_FILE), generate_script(self.experiment))
        except Exception as exc:  # the run's results matter more than its script
            self.emit(ev.LOG, level="warning", message=f"could not write {SCRIPT_FILE}: {exc}")

    def _export(self) -> None:
        try:
            from tfbench.export import auto_export
        except ImportError:
            return
        try:
            auto_export(self.run_dir, self.experiment, self.model, self.bundle, self.emit)
        except Exception as exc:  # an export failure never loses the run
            self.emit(ev.LOG, level="error", message=f"export failed: {exc}")

    def final_logs(self) -> dict[str, Any]:
        """The last recorded epoch's logs (empty before the first epoch)."""
        if not self.history:
            return {}
        return {k: v for k, v in self.history[-1].items() if k not in ("epoch", "lr", "seconds")}

    def artifacts(self) -> dict[str, str]:
        """The files the run left, by name, relative to the run directory."""
        names = {
            "experiment": EXPERIMENT_FILE,
            "events": ev.EVENTS_FILE,
            "history": HISTORY_FILE,
            "model": MODEL_FILE,
            "last_checkpoint": LAST_CHECKPOINT,
            "best_checkpoint": BEST_CHECKPOINT,
            "backup": BACKUP_DIR,
            "script": SCRIPT_FILE,
            "tensorboard": "tensorboard",
            "exports": "exports",
        }
        return {name: rel for name, rel in names.items() if self.path(rel).exists()}

    def _end(self, status: str, reason: str, command_id: str | None = None) -> bool:
        """Emit `run_ended` once (the training thread and an abort may race)."""
        with self._ended_lock:
            if self._ended:
                return False
            self._ended = True
        self.status, self.reason = status, reason
        if not self.best and self.history:
            self._resumed_best()
        self.emit(
            ev.RUN_ENDED,
            status=status,
            reason=reason,
            epochs_completed=self.completed_epochs,
            epochs=self.target_epochs,
            best=self.best,
            final=self.final_logs(),
            artifacts=self.artifacts(),
            changes=self.changes,
            seconds=round(time.time() - self._t0, 3),
            command_id=command_id,
        )
        if self.writer is not None:
            self.writer.close()
        return True

    # -- control (any thread) -------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run has ended (or `timeout`); returns the status."""
        self._done.wait(timeout)
        return self.status

    def train(self) -> str:
        """Prepare (if needed), start and wait: the whole run in this call; returns its status."""
        self.start()
        return self.wait()

    def pause(self, command_id: str | None = None) -> bool:
        """Ask the training thread to block before its next batch; False if already paused/asked."""
        with self._cond:
            if self._pause_requested or self._ended:
                return False
            self._pause_requested = True
            self._pause_id = command_id
            self._attention = True
            return True

    def unpause(self, command_id: str | None = None) -> bool:
        """Let a paused run go on; False when it was not paused."""
        with self._cond:
            if not self._pause_requested:
                return False
            self._pause_requested = False
            self._resume_id = command_id
            self._cond.notify_all()
            return True

    def stop(self, reason: str = "stopped by request", command_id: str | None = None) -> bool:
        """Finish the current batch, save a checkpoint and end as `stopped`; False if already asked."""
        with self._cond:
            if self._stop_reason is not None or self._ended:
                return False
            self._stop_reason = reason
            self._stop_id = command_id
            self._attention = True
            if self.model is not None:
                self.model.stop_training = True
            self._cond.notify_all()
            return True

    def abort(self, reason: str = "stopped at once") -> None:
        """End the record now without waiting for the batch (a second Ctrl+C); keeps what was saved.

        The training thread is still asked to stop, and ends without a second `run_ended`.
        """
        self.stop(reason)
        self._end("stopped", reason)
        self._done.set()

    def set(self, name: str, value: Any, command_id: str | None = None) -> None:
        """Change `learning_rate` or `epochs` (the planned total) while the run trains.

        Raises:
            UserError: an unknown setting or an impossible value.
        """
        if name not in SETTINGS:
            from tfbench.errors import close_matches

            raise UserError(f"cannot change {name!r} while running", name, close_matches(name, SETTINGS) or f"settable: {', '.join(SETTINGS)}")
        if name == "learning_rate":
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise UserError(f"expected a number, got {value!r}", name) from None
            if not (value > 0 and math.isfinite(value)):
                raise UserError(f"must be a positive number, got {value!r}", name)
            if self.experiment.train.schedule is not None:
                raise UserError(
                    f"the learning rate follows train.schedule ({self.experiment.train.schedule.type})", name,
                    "remove the schedule to set it by hand",
                )
            with self._cond:
                self._pending.append((name, value, command_id))
                self._attention = True
                self._cond.notify_all()
            return
        try:
            epochs = int(value)
            if epochs != float(value):
                raise ValueError
        except (TypeError, ValueError):
            raise UserError(f"expected a whole number, got {value!r}", name) from None
        with self._cond:
            current = self.completed_epochs + 1
            if epochs < current:
                raise UserError(f"epoch {current} is already under way; plan at least {current}", name)
            old, self.target_epochs = self.target_epochs, epochs
            if self.model is not None and epochs <= self.completed_epochs:
                self.model.stop_training = True
        self._record_change("epochs", old, epochs, command_id)


def record_failure(run_dir: str | Path, experiment: Experiment, error: Exception) -> None:
    """Leave a `run_ended` failed record in a run directory whose run could not even start.

    A runner process is handed its run directory by the launcher (the TUI), which follows that
    directory's event log: a preset the runner cannot build must still end there, with the message.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / EXPERIMENT_FILE).exists():
        write_text(run_dir / EXPERIMENT_FILE, experiment.to_toml())
    writer = ev.EventWriter(run_dir / ev.EVENTS_FILE)
    try:
        writer.emit(
            ev.RUN_ENDED, status="failed", reason=str(error), epochs_completed=0, best={}, final={},
            artifacts={"experiment": EXPERIMENT_FILE, "events": ev.EVENTS_FILE}, seconds=0.0,
        )
    finally:
        writer.close()
