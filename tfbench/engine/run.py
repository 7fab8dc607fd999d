"""A Run: one training of an Experiment in its own run directory — without a UI.

The Run owns `runs/<name>-<YYYYmmdd-HHMMSS>/` (layout in `tfbench.rundir`), trains in a background
thread with `model.fit`, and writes everything as it goes: the event log, `history.csv` (rewritten
atomically each epoch), the checkpoints (`engine.checkpoints` decides when), and at the end
`model.keras`, `train.py` and the exports. Another thread may pause, unpause, stop it or change
its learning rate and planned epochs through its `controls` (`engine.controls`); the runner
process's main thread does exactly that for the control channel (`tfbench.engine.control`).

The lifecycle is `prepare()` (seed, data, model — every user mistake surfaces here, as a
`UserError`, before any thread or run directory exists), `start()` (run directory, `run_started`,
training thread) and `wait()`. TensorFlow is imported inside the methods that need it.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from tfbench import rundir
from tfbench.atomic import write_text
from tfbench.engine import events as ev
from tfbench.engine.checkpoints import Checkpoints, choose_monitor
from tfbench.engine.controls import Controls, learning_rate
from tfbench.errors import UserError
from tfbench.rundir import LAST_CHECKPOINT, MODEL_FILE, SCRIPT_FILE
from tfbench.spec import Experiment

EXIT_CODES = {"completed": 0, "early_stopped": 0, "failed": 1, "stopped": 130}


def exit_code(status: str) -> int:
    """The process exit code for a run's final status (DESIGN.md: 0, 1 or 130)."""
    return EXIT_CODES.get(status, 1)


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
        extra_callbacks: Keras callbacks to run first in `fit` (a benchmark's clock).
    """

    def __init__(
        self,
        experiment: Experiment,
        runs_dir: str | Path = "runs",
        run_dir: str | Path | None = None,
        subscribers: list[Callable[[dict], None]] | tuple = (),
        resume: bool = False,
        epochs: int | None = None,
        extra_callbacks: list[Any] | tuple = (),
    ):
        self.experiment = experiment
        self.runs_dir = Path(runs_dir)
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.resuming = resume
        self.subscribers = list(subscribers)
        self.writer: ev.EventWriter | None = None
        self.status = "prepared"
        self.reason = ""
        self.initial_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.model: Any = None
        self.bundle: Any = None
        self.strategy: Any = None
        self.summary: dict[str, Any] = {}
        self.steps_per_epoch: int | None = None
        self.fit_seconds = 0.0  # time spent inside model.fit (the benchmark's measure)
        self.fit_cpu_seconds = 0.0  # CPU time of the whole process meanwhile
        schedule = experiment.train.schedule.type if experiment.train.schedule is not None else None
        self.controls = Controls(self.emit, int(epochs or experiment.train.epochs), schedule=schedule)
        self.checkpoints: Checkpoints | None = None
        self.epoch_interrupted = False  # the epoch being ended was cut short (stop or divergence)
        self.diverged_reason: str | None = None
        self._epochs_given = epochs is not None
        self._extra_callbacks = list(extra_callbacks)
        self._prepared = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._ended_lock = threading.Lock()
        self._t0 = 0.0
        self._sampler: Any = None
        self._scratch = False  # a non-chief worker's throwaway run directory
        self._fit_inputs: dict[str, Any] = {}
        self._callback: Any = None
        self._backup: Any = None  # the RunBackup callback
        self._callbacks: list[Any] = []
        self._previous_last_epoch = 0
        if resume:
            self._load_previous()

    # -- what the controls and checkpoints hold ------------------------------------------------
    @property
    def target_epochs(self) -> int:
        """The planned total of epochs (live `set epochs=N` changes it)."""
        return self.controls.target_epochs

    @property
    def completed_epochs(self) -> int:
        """Epochs completed and recorded."""
        return self.controls.completed_epochs

    @property
    def best(self) -> dict[str, Any]:
        """The best epoch so far: monitor, mode, epoch, value, logs ({} before any)."""
        return self.checkpoints.best if self.checkpoints is not None else {}

    @property
    def changes(self) -> list[dict[str, Any]]:
        """The live setting changes, in order."""
        return self.controls.changes

    # -- preparing -------------------------------------------------------------------------
    def _load_previous(self) -> None:
        if self.run_dir is None or not (self.run_dir / ev.EVENTS_FILE).exists():
            raise UserError("not a run directory (no events.jsonl)", str(self.run_dir))
        previous = ev.RunState.from_log(self.run_dir)
        if previous.epochs and not self._epochs_given:
            self.controls.target_epochs = previous.epochs  # the plan, with its live changes
        self.initial_epoch = rundir.backup_epoch(self.run_dir)
        self.controls.completed_epochs = self.initial_epoch
        lasts = [c for c in previous.checkpoints if c.get("kind") == "last"]
        self._previous_last_epoch = int(lasts[-1].get("epoch") or 0) if lasts else 0
        self.history = [r for r in rundir.read_history(self.run_dir) if int(r.get("epoch", 0)) <= self.initial_epoch]
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
        from tfbench.engine.callbacks import check_tensorboard
        from tfbench.engine.strategy import make_strategy

        exp = self.experiment
        if model is None:
            # First: multi-worker strategies must exist before any other TensorFlow op.
            self.strategy = make_strategy(exp.train)
            build.apply_seed(exp.train)
        if bundle is None:
            bundle = self._load_bundle()
        self.bundle = bundle
        if model is None:
            with self.strategy.scope():
                model = build.build_model(exp, bundle.info)
        self.model = model
        self.controls.attach(model)
        self.summary = self._summary(model)
        self.steps_per_epoch = bundle.steps_per_epoch
        if self.steps_per_epoch is None:
            card = int(tf.data.experimental.cardinality(bundle.train))
            self.steps_per_epoch = card if card > 0 else None
        check_tensorboard(exp)
        self._fit_inputs = self._repeated_inputs(bundle)
        self._prepared = True

    def _load_bundle(self) -> Any:
        from tfbench import build, data

        exp = self.experiment
        info = data.describe(exp.data, exp.train.seed)
        bundle = data.load(exp.data, exp.train.seed, one_hot=build.needs_one_hot(exp, info))
        if exp.train.strategy == "multi_worker":
            from tfbench.engine.strategy import with_data_sharding

            bundle.train = with_data_sharding(bundle.train)
            if bundle.validation is not None:
                bundle.validation = with_data_sharding(bundle.validation)
        return bundle

    def _summary(self, model: Any) -> dict[str, Any]:
        from tfbench import build

        try:
            return build.summarize(self.experiment, self.bundle.info).to_dict()
        except Exception:  # an injected model need not match the Experiment's layers
            return {
                "layers": [],
                "total_params": int(model.count_params()),
                "trainable_params": int(sum(int(math.prod(w.shape)) for w in model.trainable_weights)),
            }

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

    # -- the run directory -------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """A path inside the run directory."""
        assert self.run_dir is not None
        return self.run_dir / rel

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any] | None:
        """Record an event (thread-safe); nothing once the run has ended."""
        if self.writer is None:
            return None
        return self.writer.emit(kind, **fields)

    def subscribe(self, callback: Callable[[dict], None]) -> None:
        """Call `callback` with every event from now on (in the emitting thread; keep it quick)."""
        if self.writer is not None:
            self.writer.subscribe(callback)
        else:
            self.subscribers.append(callback)

    def start(self) -> Path:
        """Create the run directory, emit `run_started` and start the training thread.

        Returns:
            The run directory.

        Raises:
            UserError: the directory cannot be written, or already holds another run.
        """
        if not self._prepared:
            self.prepare()
        self._open_run_dir()
        monitor, mode = choose_monitor(self.experiment.train.callbacks, self.bundle.validation is not None)
        self.checkpoints = Checkpoints(self.run_dir, self.emit, monitor, mode)
        self.checkpoints.last_saved_epoch = self._previous_last_epoch
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
            self.checkpoints.restore_best(self.history)
        from tfbench.system import SystemSampler

        self._sampler = SystemSampler(lambda kind, **f: self.emit(kind, **f))
        self._sampler.start()
        self._thread = threading.Thread(target=self._train, name="tfbench-training", daemon=True)
        self._thread.start()
        return self.run_dir

    def _open_run_dir(self) -> None:
        from tfbench.engine.strategy import is_chief, worker_dir

        if self.experiment.train.strategy == "multi_worker" and not is_chief():
            # Only the chief writes the run directory; other workers write a scratch copy.
            self.run_dir = worker_dir(self.run_dir or self.runs_dir)
            self._scratch = True
        if self.run_dir is None:
            self.run_dir = rundir.new_run_dir(self.runs_dir, self.experiment.name)
        elif not self.resuming and (self.run_dir / ev.EVENTS_FILE).exists():
            raise UserError("already holds a run; continue it with `tfbench resume`", str(self.run_dir))
        try:
            self.path(rundir.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
            if not (self.run_dir / rundir.EXPERIMENT_FILE).exists():
                rundir.write_experiment(self.run_dir, self.experiment)
            self.writer = ev.EventWriter(self.path(ev.EVENTS_FILE), self.subscribers)
        except OSError as exc:
            raise UserError(f"cannot write the run directory: {exc.strerror}", str(self.run_dir)) from None

    def _make_callbacks(self) -> list[Any]:
        """Any extra callbacks, the EventCallback, then the Experiment's callbacks, then the backup."""
        from tfbench.engine.callbacks import EventCallback, RunBackup, experiment_callbacks

        self._callback = EventCallback(self)
        own, backup_args = experiment_callbacks(self.experiment, self.run_dir, self.resuming)
        try:
            self._backup = RunBackup(self, str(self.path(rundir.BACKUP_DIR)), **backup_args)
        except (TypeError, ValueError) as exc:
            raise UserError(f"BackupAndRestore: {exc}", "train.callbacks") from None
        return [*self._extra_callbacks, self._callback, *own, self._backup]

    # -- training (the training thread) -------------------------------------------------------
    def _train(self) -> None:
        status, reason = "failed", ""
        try:
            self.checkpoints.started()
            if not self.resuming:
                self.checkpoints.save(self.model, LAST_CHECKPOINT, "last", 0)
            status, reason = self._fit_loop()
        except UserError as exc:
            status, reason = "failed", str(exc)
        except Exception as exc:  # a failed run, reported in its log rather than lost
            status, reason = "failed", self.failure_reason(exc)
            self.emit(ev.LOG, level="error", message=traceback.format_exc())
        finally:
            try:
                self._finish(status, reason)
            finally:
                self._done.set()  # whatever happened, nobody waits forever

    def failure_reason(self, exc: Exception) -> str:
        """One line for a training that raised (out of memory says what to change)."""
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
            if self.controls.stop_reason is not None:
                return "stopped", self.controls.stop_reason
            fit_started, fit_cpu = time.perf_counter(), time.process_time()
            try:
                self.model.fit(**self._fit_inputs, epochs=self.target_epochs, initial_epoch=start,
                               callbacks=self._callbacks, verbose=0,
                               shuffle=False)  # the tf.data pipeline shuffles
            finally:
                self.fit_seconds += time.perf_counter() - fit_started
                self.fit_cpu_seconds += time.process_time() - fit_cpu
                self._save_backup_after_fit()
            if self.diverged_reason is not None:
                return "failed", self.diverged_reason
            if self.controls.stop_reason is not None:
                return "stopped", self.controls.stop_reason
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

    # -- what the EventCallback reports (the training thread) -----------------------------------
    def epoch_began(self, epoch: int) -> None:
        """Epoch `epoch` (1-based) begins."""
        if self.diverged_reason is None:
            self.epoch_interrupted = False
        self.controls.epoch = epoch
        self.emit(ev.EPOCH_STARTED, epoch=epoch, epochs=self.target_epochs)

    def diverged(self, epoch: int, step: int, loss: Any) -> None:
        """The loss became NaN or Inf: end the run as failed, keeping the last good checkpoint."""
        if self.diverged_reason is not None:
            return
        what = "NaN" if isinstance(loss, float) and math.isnan(loss) else "Inf" if isinstance(loss, float) else str(loss)
        kept = f"{LAST_CHECKPOINT} (epoch {self.checkpoints.last_saved_epoch})"
        self.diverged_reason = (
            f"loss became {what} at epoch {epoch}, batch {step}; kept the last good checkpoint {kept}; "
            f"a lower learning rate usually helps"
        )
        self.epoch_interrupted = True
        self.model.stop_training = True

    def epoch_ended(self, epoch: int, logs: dict[str, Any], seconds: float, steps_begun: int) -> None:
        """Record a completed epoch (history, checkpoints); a cut-short one is not recorded."""
        if self.diverged_reason is not None:
            return
        steps = self.steps_per_epoch
        if self.controls.stop_reason is not None and steps and steps_begun < steps:
            self.epoch_interrupted = True
            self.emit(ev.LOG, level="info",
                      message=f"stopped in epoch {epoch} after {steps_begun} of {steps} batches; that epoch is not recorded")
            return
        logs = _plain(logs)
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged(epoch, steps_begun, loss)
            return
        lr = learning_rate(self.model)
        if steps:
            steps_begun = min(steps_begun, steps)
        samples = steps_begun * self.experiment.data.batch_size
        train_size = (self.bundle.info.sizes or {}).get("train")
        if train_size and steps and steps_begun >= steps:
            samples = min(samples, int(train_size))
        self.emit(ev.EPOCH_ENDED, epoch=epoch, logs=logs, lr=lr, seconds=round(seconds, 4),
                  samples_per_sec=round(samples / seconds, 1) if seconds > 0 else None)
        self.history.append({"epoch": epoch, **logs, "lr": lr, "seconds": round(seconds, 4)})
        self._write_history()
        self.controls.completed_epochs = epoch
        self.checkpoints.epoch_ended(self.model, epoch, logs)
        if epoch >= self.target_epochs:
            self.model.stop_training = True  # the plan was lowered while running

    def backup_due(self, epoch: int) -> bool | str:
        """Whether RunBackup should save at the end of `epoch` ("after_fit": once `fit` returns)."""
        ending = self.controls.stop_reason is not None or epoch >= self.target_epochs or self.model.stop_training
        return self.checkpoints.backup_due(self.model, epoch, ending)

    def _save_backup_after_fit(self) -> None:
        pending, self.checkpoints.backup_pending = self.checkpoints.backup_pending, None
        if pending is not None and self._backup is not None:
            self._backup.save_after_fit(*pending)

    def _write_history(self) -> None:
        rundir.write_history(self.run_dir, self.history, durable=False)

    # -- finishing ----------------------------------------------------------------------------
    def _finish(self, status: str, reason: str) -> None:
        """Save what the run has, write `train.py` and the exports, and emit `run_ended`."""
        try:
            if status == "stopped":
                epoch = self._callback.epoch if self._callback else self.completed_epochs
                self.checkpoints.save(self.model, LAST_CHECKPOINT, "last", epoch)
            self.checkpoints.flush(self.model, self.completed_epochs, save_last=status in ("completed", "early_stopped"))
            if status in ("completed", "early_stopped", "stopped"):
                self.model.save(self.path(MODEL_FILE).with_name(".model.tmp.keras"))
                os.replace(self.path(MODEL_FILE).with_name(".model.tmp.keras"), self.path(MODEL_FILE))
        except Exception as exc:
            self.emit(ev.LOG, level="error", message=f"could not save the model: {exc}")
        if self.history:
            try:  # once more, durably: during training it is rewritten without an fsync
                rundir.write_history(self.run_dir, self.history)
            except OSError as exc:
                self.emit(ev.LOG, level="error", message=f"could not write {rundir.HISTORY_FILE}: {exc}")
        self._write_script()
        if status in ("completed", "early_stopped"):
            self._export()
        if self._sampler is not None:
            self._sampler.stop()
        self._end(status, reason, command_id=self.controls.stop_id if status == "stopped" else None)
        if self._scratch:
            import shutil

            shutil.rmtree(self.run_dir, ignore_errors=True)
        self._done.set()

    def _write_script(self) -> None:
        from tfbench.codegen import generate_script

        try:
            write_text(self.path(SCRIPT_FILE), generate_script(self.experiment))
        except Exception as exc:  # the run's results matter more than its script
            self.emit(ev.LOG, level="warning", message=f"could not write {SCRIPT_FILE}: {exc}")

    def _export(self) -> None:
        from tfbench.export import auto_export

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
        return rundir.artifacts(self.run_dir)

    def _end(self, status: str, reason: str, command_id: str | None = None) -> bool:
        """Emit `run_ended` once (the training thread and an abort may race)."""
        with self._ended_lock:
            if self.controls.ended:
                return False
            self.controls.ended = True
        self.status, self.reason = status, reason
        if not self.best and self.history and self.checkpoints is not None:
            self.checkpoints.restore_best(self.history)
        self.emit(
            ev.RUN_ENDED, status=status, reason=reason, epochs_completed=self.completed_epochs,
            epochs=self.target_epochs, best=self.best, final=self.final_logs(), artifacts=self.artifacts(),
            changes=self.changes, seconds=round(time.time() - self._t0, 3), command_id=command_id,
        )
        if self.writer is not None:
            self.writer.close()
        return True

    # -- control (any thread) -------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        """Whether `run_ended` has been recorded."""
        return self.controls.ended

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run has ended (or `timeout`); returns the status."""
        self._done.wait(timeout)
        return self.status

    def finished(self, timeout: float = 0.0) -> bool:
        """Wait up to `timeout` seconds; True once the run is over (or its thread is gone)."""
        if self._done.wait(timeout):
            return True
        return self._thread is None or not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the training thread itself to end (after an abort it may still be finishing)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def train(self) -> str:
        """Prepare (if needed), start and wait: the whole run in this call; returns its status."""
        self.start()
        return self.wait()

    def pause(self, command_id: str | None = None) -> bool:
        """Ask the training thread to block before its next batch; False if already paused/asked."""
        return self.controls.pause(command_id)

    def unpause(self, command_id: str | None = None) -> bool:
        """Let a paused run go on; False when it was not paused."""
        return self.controls.unpause(command_id)

    def stop(self, reason: str = "stopped by request", command_id: str | None = None) -> bool:
        """Finish the current batch, save a checkpoint and end as `stopped`; False if already asked."""
        return self.controls.stop(reason, command_id)

    def set(self, name: str, value: Any, command_id: str | None = None) -> None:
        """Change `learning_rate` or `epochs` while the run trains (see `Controls.set`)."""
        self.controls.set(name, value, command_id)

    def abort(self, reason: str = "stopped at once") -> None:
        """End the record now without waiting for the batch (a second Ctrl+C); keeps what was saved.

        The training thread is still asked to stop, and ends without a second `run_ended`.
        """
        self.stop(reason)
        self._end("stopped", reason)
        self._done.set()
