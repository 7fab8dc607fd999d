"""Warm trial workers and the pool that keeps K of them busy — a study's trials, run as ordinary runs.

A worker process imports TensorFlow once and runs trial after trial in-process through the
engine's `Run` (each in its own run directory inside the study directory), clearing Keras' state
between trials, so a small model's trial costs its training and not a fresh TensorFlow import. A
worker asks the study for its own trials (so processes on other machines can share the study),
reports each epoch's objective to Optuna, and stops a trial the pruner gives up on through the
run's own `stop()`: the trial ends as `pruned`, its run directory kept. After a bounded number of
trials, or when its memory passes a limit, a worker exits and the pool starts a fresh one.

The pool, in the `tfbench tune` process, starts the workers (one GPU each with `--gpus`, never
more than there are trials left to start), restarts recycled ones, gives back the trial of a worker
that died (its own or another process's, see `owners.py`), and follows the study. A worker dies
with the pool (Linux: the parent-death signal), so a killed `tune` leaves no orphan training;
SIGTERM makes a worker stop its trial after the current batch, save it and give it back.

A full disk is nobody's trial failing: a worker that meets one leaves its trial to be given back
and exits with `DISK_FULL`, and the study stops (an `OSError` out of `run_study`) so that
`tfbench tune --resume` can finish it once there is space again.
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tfbench.code_consent import allow
from tfbench.diskspace import disk_full, says_disk_full
from tfbench.engine.improvement import best_of
from tfbench.errors import UserError
from tfbench.study.owners import TrialOwners, heartbeat_seconds
from tfbench.study.space import trial_experiment
from tfbench.study.study import FAILED, StudyDir, trial_dir_name

NO_MORE_WORK, RECYCLE, DISK_FULL, STOPPED = 0, 3, 4, 130
WORKER_LOG = "workers.log"
# TensorFlow keeps each trial's traced graphs after clear_session (~6 MiB a digits-mlp trial, measured);
# a fresh worker every ten trials bounds that for the price of one TensorFlow import.
TRIALS_PER_WORKER = 10
WORKER_MEMORY_MB = 4096

# Workers that die one after another without a trial ending: something is wrong with every start.
DEATHS_IN_A_ROW = 3


class WorkersDying(RuntimeError):
    """Trial workers keep dying before any trial ends (a crash at start-up, the memory killer)."""


# -- inside a worker process --------------------------------------------------------------------------


def resident_mb() -> float:
    """This process's resident memory in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def clear_keras_state() -> None:
    """Forget the last trial's graphs and layers, so the next one starts as small as the first."""
    import keras

    keras.backend.clear_session()
    gc.collect()


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the pool's process dies (kill -9 of `tune` included)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(STOPPED)


class TrialRunner:
    """Runs one Optuna trial as a Run in this process and tells the study how it ended."""

    def __init__(self, study: StudyDir, stopping: threading.Event):
        self.study = study
        self.stopping = stopping

    def run(self, trial: Any) -> str:
        """Train `trial`; returns its outcome: finished, pruned, failed or interrupted."""
        from tfbench.engine.run import Run
        from tfbench.rundir import record_failure

        settings = self.study.settings
        values = {p.path: p.suggest(trial) for p in settings.params}
        run_dir = self.study.path / trial_dir_name(trial.number)
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        experiment = None
        try:
            experiment = trial_experiment(
                self.study.experiment, values, name=f"{self.study.experiment.name}-trial", for_trial=True
            )
            events: queue.Queue = queue.Queue()
            run = Run(experiment, run_dir=run_dir, subscribers=[events.put])
            run.prepare()
        except UserError as err:
            if says_disk_full(str(err)):
                raise OSError(errno.ENOSPC, str(err)) from None
            if experiment is not None:
                record_failure(run_dir, experiment, err)
            return self._failed(trial, str(err), user_error=True)
        run.start()
        try:
            outcome, reason = self._follow(trial, run, events)
        except OSError as exc:  # the study's storage could not be written (a full disk): stop, keep the run
            run.stop(f"the study could not be written: {exc.strerror or exc}")
            run.wait()
            raise
        if run.status == "failed" and says_disk_full(run.reason):  # not the trial's fault: it goes back
            raise OSError(errno.ENOSPC, run.reason)
        if not run.ended:
            return self._failed(trial, f"the training thread ended without ending the run; see {WORKER_LOG}")
        return self._tell(trial, run, outcome, reason)

    def _follow(self, trial: Any, run: Any, events: queue.Queue) -> tuple[str, str]:
        """Report each epoch's objective; stop the run when pruned, missing its objective, or asked."""
        objective = self.study.settings.objective
        outcome, reason = "", ""
        beat, every = time.monotonic(), heartbeat_seconds()
        while True:
            ended = run.ended or run.finished()  # finished: its thread is gone, even without an end
            if time.monotonic() - beat >= every:  # a sign of life for processes on other machines
                beat = time.monotonic()
                trial.set_user_attr("alive", round(time.time(), 1))
            while True:
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    break
                if event.get("event") != "epoch_ended" or outcome:
                    continue
                logs, epoch = event.get("logs", {}), int(event.get("epoch", 0))
                if objective not in logs:
                    outcome = FAILED
                    reason = f"the objective {objective!r} is not logged (logged: {', '.join(sorted(logs))})"
                    run.stop(reason)
                    continue
                trial.report(float(logs[objective]), epoch)
                if trial.should_prune():
                    outcome, reason = "pruned", f"pruned after epoch {epoch}"
                    run.stop(reason)
            if ended:
                break
            if self.stopping.is_set() and not outcome:
                outcome, reason = "interrupted", "the study was interrupted"
                run.stop(reason)
            run.wait(0.2)
        run.wait()
        return outcome, reason

    def _tell(self, trial: Any, run: Any, outcome: str, reason: str) -> str:
        study = self.study.study
        trial.set_user_attr("run_status", run.status)
        if outcome == "interrupted" or (not outcome and run.status == "stopped"):
            self.study.give_back(trial.number, reason or run.reason)
            return "interrupted"
        if outcome == "pruned":
            study.tell(trial, state=_state("PRUNED"))
            return "pruned"
        values = self._reported(trial)
        if outcome == FAILED or run.status == "failed" or not values:
            return self._failed(trial, reason or run.reason or "no epoch finished", user_error=outcome == FAILED)
        best = best_of(values, self.study.settings.direction)
        if best is None:
            return self._failed(trial, reason or "no epoch reported a finite objective")
        trial.set_user_attr("last", values[-1])
        study.tell(trial, best)
        return "finished"

    def _reported(self, trial: Any) -> list[float]:
        frozen = next(t for t in self.study.study.get_trials(deepcopy=False) if t.number == trial.number)
        return [v for _, v in sorted(frozen.intermediate_values.items())]

    def _failed(self, trial: Any, reason: str, user_error: bool = False) -> str:
        trial.set_user_attr("outcome", FAILED)
        trial.set_user_attr("reason", reason)
        if user_error:
            trial.set_user_attr("user_error", True)
        self.study.study.tell(trial, state=_state("FAIL"))
        return FAILED


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def worker_main(argv: list[str] | None = None) -> int:
    """A worker process: run trials of the study in `STUDY_DIR` until none is left or it is recycled."""
    parser = argparse.ArgumentParser(prog="tfbench-worker")
    parser.add_argument("study_dir")
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--trials", type=int)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--max-trials", type=int, default=TRIALS_PER_WORKER)
    parser.add_argument("--memory-mb", type=float, default=WORKER_MEMORY_MB)
    args = parser.parse_args(argv)
    if args.parent:
        _die_with_parent(args.parent)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides; Ctrl+C reaches it
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    from tfbench.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()
    study = StudyDir.load(args.study_dir, args.trials)
    allow(study.experiment, False, str(study.path))  # [code]: the files the study's driver allowed, by digest
    if study.settings.seed is not None:  # a seed of its own, still reproducible from the preset's
        study.sampler_seed = (study.settings.seed * 7919 + args.parent * 131 + args.index) % 2**31
    try:
        return run_trials(study, TrialRunner(study, stopping), stopping, args.max_trials, args.memory_mb)
    except OSError as exc:
        if disk_full(exc):  # the trial stays running: the pool (or a later --resume) gives it back
            return DISK_FULL
        raise


def run_trials(study: StudyDir, runner: TrialRunner, stopping: threading.Event, count: int, memory_mb: float) -> int:
    """Up to `count` trials, one after another; the worker's exit code."""
    for _ in range(count):
        if stopping.is_set():
            return STOPPED
        trial = study.next_trial()
        if trial is None:
            return NO_MORE_WORK
        runner.run(trial)
        clear_keras_state()
        print(f"trial {trial.number} done; resident {resident_mb():.0f} MiB", flush=True)
        if resident_mb() > memory_mb:
            break
    return STOPPED if stopping.is_set() else RECYCLE


# -- the pool, in the `tfbench tune` process ----------------------------------------------------------


def gpu_ids(text: str | None) -> list[str]:
    """The GPUs `--gpus` names (indices, or UUIDs as `nvidia-smi -L` lists them), checked.

    Raises:
        UserError: an id that is neither, or an empty one.
    """
    if text is None:
        return []
    ids = [g.strip() for g in text.split(",")]
    for gpu in ids:
        if not (re.fullmatch(r"\d{1,4}", gpu) or re.fullmatch(r"(GPU|MIG)-[0-9A-Za-z/-]{4,}", gpu)):
            raise UserError(
                f"{gpu[:40]!r} is not a GPU id" if gpu else "an empty GPU id",
                "--gpus",
                "give GPU indices such as 0,1 or UUIDs (GPU-…) as `nvidia-smi -L` lists them",
            )
    return ids


class Pool:
    """Up to K worker processes for one study, each with its own GPU when `gpus` are given.

    Args:
        study: the study directory the workers run.
        parallel: how many trials run at once (at most the planned trials).
        gpus: GPU ids handed out round-robin as `CUDA_VISIBLE_DEVICES` (empty: leave it alone).
        max_trials: trials a worker runs before it is replaced by a fresh one.
        memory_mb: resident memory after which a worker is replaced.
    """

    def __init__(
        self,
        study: StudyDir,
        parallel: int,
        gpus: list[str] | None = None,
        max_trials: int = TRIALS_PER_WORKER,
        memory_mb: float = WORKER_MEMORY_MB,
    ):
        self.study = study
        self.parallel = max(1, min(parallel, study.settings.trials))
        self.gpus = list(gpus or [])
        self.max_trials = max_trials
        self.memory_mb = memory_mb
        self.slots: list[subprocess.Popen | None] = [None] * self.parallel
        self.started = 0
        self.disk_full = False  # a worker met a full disk
        self.deaths_in_a_row = 0  # workers that died since a trial last ended
        self.last_death = 0

    def command(self) -> list[str]:
        """The worker's command line."""
        return [
            sys.executable,
            "-m",
            "tfbench.study.workers",
            str(self.study.path),
            "--parent",
            str(os.getpid()),
            "--trials",
            str(self.study.settings.trials),
            "--index",
            str(self.started),
            "--max-trials",
            str(self.max_trials),
            "--memory-mb",
            str(self.memory_mb),
        ]

    def start(self, slot: int) -> None:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with open(self.study.path / WORKER_LOG, "ab") as log:
            self.slots[slot] = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.started += 1

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.slots if p is not None and p.poll() is None]

    def reap(self, give_back: bool = True) -> list[int]:
        """Clear the slots of workers that exited; give back the trials of those that died."""
        died = []
        for slot, proc in enumerate(self.slots):
            if proc is None or proc.poll() is None:
                continue
            self.slots[slot] = None
            if proc.returncode == DISK_FULL:
                self.disk_full = True
            elif proc.returncode not in (NO_MORE_WORK, RECYCLE, STOPPED):
                self.deaths_in_a_row += 1
                self.last_death = proc.returncode
            if give_back and proc.returncode not in (NO_MORE_WORK, RECYCLE, STOPPED):
                died += self.study.recover(dead_pid=proc.pid)
        return died

    def fill(self, trials: list[Any] | None = None) -> None:
        """Start workers in empty slots, never more than trials are left to start.

        A worker that is starting (importing TensorFlow) or between trials will take one of the
        trials left, so only the trials left beyond those idle workers start new ones.
        """
        trials = self.study.trials() if trials is None else trials
        pids = {p.pid for p in self.alive()}
        busy = sum(1 for t in trials if t.state.name == "RUNNING" and t.user_attrs.get("pid") in pids)
        wanted = self.study.work_left() - (len(pids) - busy)
        for slot, proc in enumerate(self.slots):
            if proc is None and wanted > 0:
                self.start(slot)
                wanted -= 1

    def stop(self, timeout: float = 120.0, give_back: bool = True) -> None:
        """SIGTERM every worker (each stops its trial after the batch, saves it, gives it back) and wait.

        Args:
            give_back: give back the trials of workers that die; False when the storage cannot be
                written (a full disk): `--resume` gives them back later.
        """
        for proc in self.alive():
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.alive():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.reap(give_back)


def run_study(
    study: StudyDir, pool: Pool, on_trial: Callable[[dict], None], stopping: threading.Event, interval: float = 0.5
) -> str:
    """Keep the pool busy until the study has its planned trials; returns `done` or `interrupted`.

    Trials whose worker is gone — a worker of this pool, of another process on this machine, or
    one elsewhere that stopped showing signs of life — are given back and run again; trials
    another live process is running are waited for, so `done` means the whole plan ended.

    Args:
        study: the study.
        pool: its workers.
        on_trial: called with each trial's row (see `StudyDir.rows`) once it finished, was pruned,
            or failed.
        stopping: set to stop starting trials and let the running ones save.

    Raises:
        UserError: a trial failed for a mistake every trial would make (an objective that is
            not logged, a batch size the data cannot give).
        OSError: the study's disk is full (the workers are stopped first).
        WorkersDying: trial workers keep dying before any trial ends.
    """
    try:
        return follow_study(study, pool, on_trial, stopping, interval)
    except OSError:
        pool.stop(give_back=False)
        raise


def follow_study(
    study: StudyDir, pool: Pool, on_trial: Callable[[dict], None], stopping: threading.Event, interval: float
) -> str:
    """`run_study`'s loop."""
    owners = TrialOwners()
    reported = {r["number"] for r in study.rows() if r["state"] in ("finished", "pruned", "failed")}
    while True:
        pool.reap()
        if pool.disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(study.path))
        for row in study.rows():
            if row["number"] in reported or row["state"] not in ("finished", "pruned", "failed"):
                continue
            reported.add(row["number"])
            pool.deaths_in_a_row = 0
            on_trial(row)
            if row["state"] == "failed" and _user_error(study, row["number"]):
                pool.stop()
                raise UserError(row["reason"], f"trial #{row['number']}")
        if stopping.is_set():
            pool.stop()
            return "interrupted"
        if pool.deaths_in_a_row >= DEATHS_IN_A_ROW:
            pool.stop()
            raise WorkersDying(
                f"{pool.deaths_in_a_row} trial workers in a row died (exit code {pool.last_death}) "
                f"before a trial ended; see {study.path / WORKER_LOG}"
            )
        study.give_back_abandoned(owners)
        trials = study.trials()
        if study.work_left() == 0 and not pool.alive() and not any(t.state.name == "RUNNING" for t in trials):
            return "done"
        pool.fill(trials)
        time.sleep(interval)


def _user_error(study: StudyDir, number: int) -> bool:
    return any(t.number == number and t.user_attrs.get("user_error") for t in study.trials())


if __name__ == "__main__":
    sys.exit(worker_main())
