"""Capturing a profiler trace of some training steps and judging it — without a UI or TensorBoard.

`ProfileCallback` runs first in `fit`'s callbacks. A capture is asked for by `train.profile`
(`{ epoch = 2, steps = 10 }`: the first steps of that epoch) or at any time through the run's
controls (`tfbench profile RUN_DIR`, the Train screen's key). It starts `tf.profiler.experimental`
before a batch, marks each step on the training thread with a `train` trace event (TensorFlow's
own step marker, from one batch's start to the next's, so Keras' callbacks count as the host
time they are), stops before the batch after the last, then reads the trace
(`tfbench.engine.xplane`), judges it (`tfbench.engine.profile_summary`), writes the summary beside
the trace in the run's `profile/` and emits a `profile` event. A capture that cannot be made
(another profiler is running) or read says why in that event; the run goes on either way.

When no capture is wanted the batch hook reads two attributes; nothing else runs.
"""

from __future__ import annotations

import gc
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras

from tfbench.atomic import write_text
from tfbench.engine import events as ev
from tfbench.engine.profile_summary import STEP_EVENT, summarize
from tfbench.engine.xplane import newest_trace, read_trace

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

PROFILE_DIR = "profile"


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: reading a trace makes many small objects, and a full
    collection over TensorFlow's millions of objects would take longer than the reading."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def judge_trace(path: Path) -> dict[str, Any]:
    """Read a trace file and summarise it, with how long that took (`parse_seconds`).

    Raises:
        OSError, ValueError: the trace cannot be read or holds no marked step.
    """
    started = time.perf_counter()
    with collector_paused():
        summary = summarize(read_trace(path))
    summary["parse_seconds"] = round(time.perf_counter() - started, 4)
    return summary


class ProfiledRun(Protocol):
    """What the profiler reads and calls on the Run that trains (`tfbench.engine.run.Run`)."""

    experiment: Any
    run_dir: Path | None
    controls: Any

    @property
    def directory(self) -> Path: ...

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any] | None: ...


class Capture:
    """One capture: what asked for it, how many steps, and where it stands."""

    def __init__(self, steps: int, command_id: str | None, origin: str):
        self.steps = steps
        self.command_id = command_id
        self.origin = origin  # "plan" (train.profile) or "request" (the controls)
        self.done = 0  # steps marked so far
        self.epoch = 0
        self.first_batch = 0  # 1-based batch of its epoch where the capture began
        self.marker: Any = None  # the open step marker
        self.started = 0.0


class ProfileCallback(keras.callbacks.Callback):
    """Captures a profile when the Experiment or a controller asks, and reports it as an event.

    Args:
        run: the Run being trained (its `train.profile`, controls, run directory and emitter).
    """

    def __init__(self, run: ProfiledRun):
        super().__init__()
        self.run = run
        self.controls = run.controls
        plan = run.experiment.train.profile
        self.plan: tuple[int, int] | None = (plan.epoch, plan.steps) if plan is not None else None
        self.logdir = run.directory / PROFILE_DIR
        self.async_safe = False  # step markers belong on the training thread
        self.pending: Capture | None = None
        self.capture: Capture | None = None
        self.epoch = 0
        self.batches = 0  # batches begun since fit began (the first one traces the model)
        self._per_call = 1

    # -- fit's hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        self._per_call = max(1, int(getattr(self.model, "steps_per_execution", 1) or 1))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        if self.plan is not None and self.plan[0] == self.epoch and self.capture is None:
            self.pending = Capture(self.plan[1], None, "plan")

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.capture is not None:
            self._next_step(batch)
        elif self.pending is not None or self.controls.profile_request is not None:
            self._begin(batch)
        self.batches += 1

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self.capture is not None:  # validation is not a training step: end the capture before it
            self._end()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.capture is not None:
            self._end()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.capture is not None:
            self._end()
        if self.pending is not None and self.pending.origin == "request":
            self.controls.profile_request = (self.pending.steps, self.pending.command_id)  # for the next fit
        self.pending = None

    # -- capturing ----------------------------------------------------------------------------
    def _begin(self, batch: int) -> None:
        """Start the profiler before this batch, unless it is the one that traces the model."""
        if self.batches == 0:
            return
        if self.pending is None:
            steps, command_id = self.controls.profile_request
            self.controls.profile_request = None
            self.pending = Capture(int(steps), command_id, "request")
        capture, self.pending = self.pending, None
        import tensorflow as tf

        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            tf.profiler.experimental.start(str(self.logdir))
        except Exception as exc:  # another profiler runs (a TensorBoard callback's profile_batch) or no disk
            self.controls.profiling = False
            self._report(capture, error=f"the profiler could not start: {str(exc).strip().splitlines()[0]}")
            return
        self.controls.profiling = True
        capture.epoch, capture.first_batch, capture.started = self.epoch, batch + 1, time.perf_counter()
        self.capture = capture
        self._open_marker(capture)

    def _open_marker(self, capture: Capture) -> None:
        import tensorflow as tf

        capture.marker = tf.profiler.experimental.Trace(STEP_EVENT, step_num=capture.done, _r=1)
        capture.marker.__enter__()

    def _next_step(self, batch: int) -> None:
        """A batch begins while capturing: the step before it is whole."""
        capture = self.capture
        if capture is None:
            return
        capture.marker.__exit__(None, None, None)
        capture.marker = None
        capture.done += self._per_call
        if capture.done >= capture.steps:
            self._end()
        else:
            self._open_marker(capture)

    def _end(self) -> None:
        """Stop the profiler, judge the trace and report it."""
        import tensorflow as tf

        capture, self.capture = self.capture, None
        if capture is None:
            return
        if capture.marker is not None:  # the last step ends here (epoch end, validation, stop)
            capture.marker.__exit__(None, None, None)
            capture.done += self._per_call
        try:
            tf.profiler.experimental.stop()
        except Exception as exc:
            self.controls.profiling = False
            self._report(capture, error=f"the profiler could not stop: {str(exc).strip().splitlines()[0]}")
            return
        self.controls.profiling = False
        seconds = time.perf_counter() - capture.started
        trace = newest_trace(self.logdir)
        if trace is None:
            self._report(capture, error="the profiler wrote no trace")
            return
        try:
            summary = judge_trace(trace)
        except (OSError, ValueError) as exc:
            self._report(capture, error=f"the trace could not be read: {exc}", trace=trace)
            return
        summary["capture_seconds"] = round(seconds, 3)
        self._report(capture, summary=summary, trace=trace)

    def _report(
        self, capture: Capture, summary: dict | None = None, error: str | None = None, trace: Path | None = None
    ) -> None:
        """Write the summary beside the trace and emit the `profile` event (an `error` instead when
        there is nothing to judge)."""
        run_dir = self.run.directory
        fields: dict[str, Any] = {
            "epoch": capture.epoch or self.epoch,
            "first_batch": capture.first_batch,
            "requested_steps": capture.steps,
            "origin": capture.origin,
        }
        if trace is not None:
            fields["trace"] = trace.relative_to(run_dir).as_posix()
        if summary is not None and trace is not None:
            fields.update(summary)
            name = f"{PROFILE_DIR}/summary-{trace.parent.name}.json"
            try:
                write_text(run_dir / name, json.dumps(ev.json_safe(fields), indent=1) + "\n", durable=False)
                fields["summary"] = name
            except OSError as exc:
                fields["error"] = f"the summary could not be written: {exc.strerror or exc}"
        if error is not None:
            fields["error"] = error
        self.run.emit(ev.PROFILE, command_id=capture.command_id, **fields)
