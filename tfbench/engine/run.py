"""A Run: one training of an Experiment in its own run directory — without a UI.

The Run owns a run directory (`tfbench.rundir`), trains in a background thread with `model.fit`
and writes as it goes: the event log, `history.csv`, the checkpoints (`engine.checkpoints` says
when), and at the end `model.keras`, `train.py` and the exports. Other threads reach it through
its `controls` (`engine.controls`); a runner's main thread serves them (`engine.control`).

The lifecycle is `prepare()` (seed, data, model — every user mistake surfaces here, as a
`UserError`, before any thread or run directory exists), `start()` (run directory, `run_started`,
training thread) and `wait()`. TensorFlow is imported inside the methods that need it.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench import code_consent, rundir
from tfbench.atomic import write_text
from tfbench.engine import events as ev
from tfbench.engine import fine_tune
from tfbench.engine.checkpoints import Checkpoints, choose_monitor
from tfbench.engine.controls import Controls, learning_rate
from tfbench.engine.status import KEPT_MODEL, SUCCEEDED, RunStatus
from tfbench.errors import UserError
from tfbench.rundir import LAST_CHECKPOINT, MODEL_FILE, SCRIPT_FILE
from tfbench.spec import Experiment
from tfbench.tracking import tracker as tracking


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
        self.fit_seconds = self.fit_cpu_seconds = 0.0  # inside model.fit: wall and process CPU time
        schedule = experiment.train.schedule.type if experiment.train.schedule is not None else None
        self.controls = Controls(self.emit, int(epochs or experiment.train.epochs), schedule=schedule)
        self.checkpoints: Checkpoints | None = None
        self.epoch_interrupted = False  # the epoch being ended was cut short (stop or divergence)
        self.diverged_reason: str | None = None
        self.unwritten: list[str] = []  # checkpoints a full disk kept out while training, for run_ended
        self.point = rundir.ResumePoint(0, self.target_epochs, [])  # where a resumed run continues
        self._extra_callbacks = list(extra_callbacks)
        self._thread: threading.Thread | None = None
        self._done, self._ended_lock = threading.Event(), threading.Lock()
        self._t0 = 0.0
        self._sampler: Any = None
        self._scratch = False  # a non-chief worker's throwaway run directory
        self._chosen = False  # the run directory is decided (`_choose_run_dir`)
        self._fit_inputs: dict[str, Any] = {}
        self._backup: Any = None  # the RunBackup callback
        self._callbacks: list[Any] = []
        self._lock: int | None = None  # the run directory's training lock
        if resume:
            where = self.run_dir or Path(runs_dir)
            self.point = rundir.resume_point(where, experiment.train.epochs, epochs, experiment)
            self.controls.target_epochs = self.point.target_epochs
            self.initial_epoch = self.controls.completed_epochs = self.point.initial_epoch
            self.history = self.point.history

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
    def directory(self) -> Path:
        """The run directory, once chosen (by `start`, or by `prepare` for a file cache)."""
        if self.run_dir is None:
            raise RuntimeError("the run directory is chosen when the run starts")
        return self.run_dir

    @property
    def saver(self) -> Checkpoints:
        """The run's checkpoints, from `start` on."""
        if self.checkpoints is None:
            raise RuntimeError("the checkpoints are set up when the run starts")
        return self.checkpoints

    # -- preparing -------------------------------------------------------------------------
    def prepare(self, bundle: Any = None, model: Any = None) -> None:
        """Seed, load the data and build the compiled model, before any thread or file exists.

        Args:
            bundle: an already loaded DataBundle (the benchmark shares one with plain `fit`).
            model: an already built, compiled model for that data.

        Raises:
            UserError: the data or the model cannot be made from this Experiment.
        """
        import tensorflow as tf

        from tfbench import build, data, models
        from tfbench.adapt import adapt_model, described
        from tfbench.engine.callbacks import check_tensorboard
        from tfbench.engine.strategy import fit_inputs, make_strategy, training_bundle

        exp = self.experiment
        if model is None:
            # First: multi-worker strategies must exist before any other TensorFlow op.
            self.strategy = make_strategy(exp.train)
            build.apply_seed(exp.train)
        self.bundle = bundle = bundle if bundle is not None else training_bundle(exp, self._cache_dir())
        adapted: list[dict] = []
        if model is None:
            with self.strategy.scope():
                model = models.build_model(exp, bundle.info)
                adapted = adapt_model(exp, model, self.run_dir, self.resuming)  # layers that learn from data
        self.model = model
        self.controls.attach(model)
        self.summary = self._summary(model) | ({"adapted": described(adapted)} if adapted else {})
        self.steps_per_epoch = bundle.steps_per_epoch
        if self.steps_per_epoch is None:
            card = int(tf.data.experimental.cardinality(bundle.train))
            self.steps_per_epoch = card if card > 0 else None
        check_tensorboard(exp)
        tracking.check(exp)  # [track]: the packages its mirrors write with
        self._fit_inputs = fit_inputs(bundle, self.steps_per_epoch, exp.train.strategy)
        self._fit_inputs.update(data.class_weights.fit_arguments(exp.train, bundle))  # train.class_weight

    def _summary(self, model: Any) -> dict[str, Any]:
        from tfbench import models

        try:
            return models.summarize(self.experiment, self.bundle.info).to_dict()
        except Exception:  # an injected model need not match the Experiment's layers
            return {
                "layers": [],
                "total_params": int(model.count_params()),
                "trainable_params": fine_tune.trainable_count(model),
            }

    # -- the run directory -------------------------------------------------------------------
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
        if self.model is None:
            self.prepare()
        self._open_run_dir()
        monitor, mode = choose_monitor(self.experiment.train.callbacks, self.bundle.validation is not None)
        self.checkpoints = Checkpoints(self.directory, self.emit, monitor, mode)
        self.checkpoints.last_saved_epoch = self.point.last_checkpoint_epoch
        self._t0 = time.time()
        from tfbench.engine.callbacks import run_callbacks

        self._callbacks, self._backup = run_callbacks(self, self._extra_callbacks)
        tracking.attach(self)  # [track]: TensorBoard files, MLflow — before run_started, which sets them up
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
        for line in self.summary.get("adapted", []):  # layers that learnt from the training split
            self.emit(ev.LOG, level="info", message=line)
        if self.resuming:  # history.csv stays as it is until an epoch is recorded: never shorter
            self.saver.restore_best(self.history)
            for note in self.point.notes:
                self.emit(ev.LOG, level="warning", message=note)
        from tfbench.system import SystemSampler

        self._sampler = SystemSampler(lambda kind, **f: self.emit(kind, **f))
        self._sampler.start()
        self._thread = threading.Thread(target=self._train, name="tfbench-training", daemon=True)
        self._thread.start()
        return self.directory

    def _path(self, rel: str) -> Path:
        return self.directory / rel

    def _choose_run_dir(self) -> Path:
        """This run's directory: the one given, a non-chief worker's scratch copy, or a new one."""
        if self._chosen:
            return self.directory
        from tfbench.engine.strategy import is_chief, worker_dir

        if self.experiment.train.strategy == "multi_worker" and not is_chief():
            # Only the chief writes the run directory; other workers write a scratch copy.
            self.run_dir = worker_dir(self.run_dir or self.runs_dir)
            self._scratch = True
        if self.run_dir is None:
            self.run_dir = rundir.new_run_dir(self.runs_dir, self.experiment.name)
        elif not self.resuming and (self.run_dir / ev.EVENTS_FILE).exists():
            raise UserError("already holds a run; continue it with `tfbench resume`", str(self.run_dir))
        self._chosen = True
        return self.run_dir

    def _cache_dir(self) -> Path | None:
        """Where a file cache (`data.cache = "NAME"`) is written: this run's directory, chosen now."""
        return self._choose_run_dir() if self.experiment.data.cache_file else None

    def _open_run_dir(self) -> None:
        run_dir = self._choose_run_dir()
        try:
            self._path(rundir.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
            if not self._scratch:
                self._lock = rundir.lock(run_dir)  # one training per run directory, until _finish
            if self.experiment.data.cache_file:  # its folder; a killed run's half-written cache
                rundir.prepare_cache(run_dir, self.experiment.data.cache_file)
            kept = code_consent.keep_copies(run_dir, self.experiment)  # [code]: copies of what it imported
            if kept is not self.experiment or not (run_dir / rundir.EXPERIMENT_FILE).exists():
                self.experiment = kept
                rundir.write_experiment(run_dir, self.experiment)
            self.writer = ev.EventWriter(self._path(ev.EVENTS_FILE), self.subscribers)
        except OSError as exc:
            raise UserError(f"cannot write the run directory: {exc.strerror}", str(self.run_dir)) from None

    # -- training (the training thread) -------------------------------------------------------
    def _train(self) -> None:
        status, reason = RunStatus.FAILED, ""
        try:
            self.saver.started()
            if not self.resuming:
                self.saver.save(self.model, LAST_CHECKPOINT, "last", 0)
            if self.point.finishing:  # the backup holds the trained model: bring it back, then finish
                self._backup.set_model(self.model)
                self._backup.on_train_begin()
            status, reason = self._fit_loop()
        except UserError as exc:
            status, reason = RunStatus.FAILED, str(exc)
        except Exception as exc:  # a failed run, reported in its log rather than lost
            from tfbench.engine.callbacks import failure_reason

            status, reason = RunStatus.FAILED, failure_reason(exc, self.experiment.data.batch_size, self.controls.epoch)
            self.emit(ev.LOG, level="error", message=traceback.format_exc())
        finally:
            try:
                self._finish(status, reason)
            finally:
                self._done.set()  # whatever happened, nobody waits forever

    def _fit_loop(self) -> tuple[RunStatus, str]:
        from tfbench.engine.callbacks import early_stop_reason
        from tfbench.engine.strategy import inputs_after

        while True:
            start = self.completed_epochs
            if start >= self.target_epochs:
                return RunStatus.COMPLETED, ""
            if self.controls.stop_reason is not None:
                return RunStatus.STOPPED, self.controls.stop_reason
            tune = self.experiment.train.fine_tune  # fit up to its switch epoch, then unfreeze
            fine_tune.switch_if_due(tune, self.model, start, self.controls.record_change)
            fit_started, fit_cpu = time.perf_counter(), time.process_time()
            try:
                self.model.fit(
                    **inputs_after(self._fit_inputs, start),
                    epochs=fine_tune.fit_until(tune, start, self.target_epochs),
                    initial_epoch=start,
                    callbacks=self._callbacks,
                    verbose=0,
                    shuffle=False,
                )  # the tf.data pipeline shuffles
            finally:
                self.fit_seconds += time.perf_counter() - fit_started
                self.fit_cpu_seconds += time.process_time() - fit_cpu
                try:  # a full disk here still ends as a trained run that `resume` finishes
                    self.saver.write_unsaved(self.model, self._backup.save_epoch)
                except OSError as exc:
                    self.unwritten.append(self._failed_write(LAST_CHECKPOINT, exc))
            if self.diverged_reason is not None:
                kept = f"{LAST_CHECKPOINT} (epoch {self.saver.last_saved_epoch})"
                return (
                    RunStatus.FAILED,
                    f"{self.diverged_reason}; kept the last good checkpoint {kept}; "
                    "a lower learning rate usually helps",
                )
            if self.controls.stop_reason is not None:
                return RunStatus.STOPPED, self.controls.stop_reason
            if self.completed_epochs >= self.target_epochs:
                return RunStatus.COMPLETED, ""
            if self.completed_epochs == start:  # fit ended at once: nothing more will happen
                return RunStatus.FAILED, "training stopped without completing an epoch"
            if self.model.stop_training:
                return RunStatus.EARLY_STOPPED, early_stop_reason(self._callbacks, self.completed_epochs)
            # the planned epochs grew while the last epoch ran: fit on to the new total

    # -- what the EventCallback reports (the training thread) -----------------------------------
    def epoch_began(self, epoch: int) -> None:
        """Epoch `epoch` (1-based) begins."""
        if self.diverged_reason is None:
            self.epoch_interrupted = False
        self.controls.epoch = epoch
        self.emit(ev.EPOCH_STARTED, epoch=epoch, epochs=self.target_epochs)

    def diverge(self, reason: str) -> None:
        """The loss became NaN or Inf: end the run as failed, keeping the last good checkpoint."""
        if self.diverged_reason is None:
            self.diverged_reason = reason
            self.epoch_interrupted = True
            self.model.stop_training = True

    def record_epoch(self, epoch: int, logs: dict[str, float], seconds: float, samples: int) -> None:
        """Record a completed epoch: its event, its history row, its checkpoints."""
        lr = learning_rate(self.model)
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
        self.controls.completed_epochs = epoch
        self.saver.epoch_ended(self.model, epoch, logs)
        if epoch >= self.target_epochs:
            self.model.stop_training = True  # the plan was lowered while running

    def backup_due(self, epoch: int) -> bool | str:
        """Whether RunBackup should save at the end of `epoch` ("after_fit": once `fit` returns)."""
        ending = self.controls.stop_reason is not None or epoch >= self.target_epochs or self.model.stop_training
        return self.saver.backup_due(self.model, epoch, ending)

    def _write_history(self, durable: bool = False) -> None:
        last = self.history[-1]["epoch"] if self.history else 0
        rundir.write_history(self.directory, self.history + [r for r in self.point.later if r["epoch"] > last], durable)

    # -- finishing ----------------------------------------------------------------------------
    def _finish(self, status: str, reason: str) -> None:
        """Save what the run has, write `train.py` and the exports, and emit `run_ended`.

        A trained run whose model, script or exports could not be written (a full disk) ends as
        `failed`, naming them: its epochs are in the backup, and `tfbench resume` finishes it.
        """
        missing = self.unwritten + self._save_model_files(status)
        if self.history:
            try:  # once more, durably: during training it is rewritten without an fsync
                self._write_history(durable=True)
            except OSError as exc:
                missing.append(f"{rundir.HISTORY_FILE} ({exc.strerror or exc})")
        missing += self._write_outputs(status)
        if missing and status in SUCCEEDED:
            status, reason = (
                RunStatus.FAILED,
                (
                    f"trained {self.completed_epochs} epochs, but could not write "
                    f"{'; '.join(missing)}; `tfbench resume` finishes it"
                ),
            )
        if self._sampler is not None:
            self._sampler.stop()
        self._end(status, reason, command_id=self.controls.stop_id if status == RunStatus.STOPPED else None)
        rundir.unlock(self._lock)
        if self._scratch:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)
        self._done.set()

    def _save_model_files(self, status: str) -> list[str]:
        try:
            if status == RunStatus.STOPPED:
                self.saver.save(self.model, LAST_CHECKPOINT, "last", self.controls.epoch or self.completed_epochs)
            self.saver.flush(self.model, self.completed_epochs, save_last=status in SUCCEEDED)
            if status in KEPT_MODEL:
                self.saver.save(self.model, MODEL_FILE, "final")
            return []
        except Exception as exc:
            return [self._failed_write(MODEL_FILE, exc)]

    def _write_outputs(self, status: str) -> list[str]:
        """`train.py`, then (for a trained run) the exports; what could not be written."""
        from tfbench.codegen import generate_script
        from tfbench.export import auto_export

        missing = []
        try:
            write_text(self._path(SCRIPT_FILE), generate_script(self.experiment))
        except Exception as exc:  # the run's results matter more than its script
            missing.append(self._failed_write(SCRIPT_FILE, exc))
        if status in SUCCEEDED:
            wanted = len(self.experiment.export.formats)
            try:  # auto_export logs each format's failure and returns the reports of the others
                done = len(auto_export(self.run_dir, self.experiment, self.model, self.bundle, self.emit))
            except Exception as exc:  # an export failure never loses the run
                self.emit(ev.LOG, level="error", message=f"export failed: {exc}")
                done = 0
            if done < wanted:
                missing.append(f"exports ({wanted - done} of {wanted} failed; see the log)")
        return missing

    def _failed_write(self, name: str, exc: Exception) -> str:
        self.emit(ev.LOG, level="error", message=f"could not write {name}: {exc}")
        return f"{name} ({getattr(exc, 'strerror', None) or exc})"

    def final_logs(self) -> dict[str, Any]:
        """The last recorded epoch's logs (empty before the first epoch)."""
        if not self.history:
            return {}
        return {k: v for k, v in self.history[-1].items() if k not in ("epoch", "lr", "seconds")}

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
            ev.RUN_ENDED,
            status=status,
            reason=reason,
            epochs_completed=self.completed_epochs,
            epochs=self.target_epochs,
            best=self.best,
            final=self.final_logs(),
            artifacts=rundir.artifacts(self.directory),
            changes=self.controls.changes,
            seconds=round(time.time() - self._t0, 3),
            command_id=command_id,
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

    def stop(self, reason: str = "stopped by request", command_id: str | None = None) -> bool:
        """Finish the current batch, save a checkpoint and end as `stopped`; False if already asked."""
        return self.controls.stop(reason, command_id)

    def abort(self, reason: str = "stopped at once") -> None:
        """End the record now, keeping what was saved (a second Ctrl+C); the training thread still
        stops, without a second `run_ended`."""
        self.stop(reason)
        self._end(RunStatus.STOPPED, reason)
        self._done.set()
