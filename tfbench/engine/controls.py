"""A training's controls: pause, unpause, stop and live settings, applied between batches — without a UI.

Any thread may ask (the runner's control loop, a signal handler's helper, a test); only the
training thread acts, between two batches, where the model is in a consistent state. Asking sets
`attention`, the one flag the batch hook reads, so a run nobody controls pays one attribute read
per batch.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tfbench.engine import events as ev
from tfbench.errors import UserError, close_matches

SETTINGS = ("learning_rate", "epochs")
MAX_PROFILE_STEPS = 1000


def learning_rate(model: Any) -> float | None:
    """A model's current learning rate (a schedule's value at this step), None without one."""
    try:
        return float(model.optimizer.learning_rate)
    except Exception:  # no optimizer yet, or a rate that is not a number
        return None


class Controls:
    """What controllers asked of one training, and the training thread's side of it.

    Args:
        emit: the run's event emitter, `emit(kind, **fields)`.
        target_epochs: the planned total of epochs (`set epochs=N` changes it).
        completed_epochs: epochs already done (a resumed run's start).
        schedule: the learning-rate schedule's type, when the Experiment has one (the rate then
            cannot be set by hand).
    """

    def __init__(
        self, emit: Callable[..., Any], target_epochs: int, completed_epochs: int = 0, schedule: str | None = None
    ):
        self.emit = emit
        self.model: Any = None
        self.target_epochs = target_epochs
        self.completed_epochs = completed_epochs
        self.epoch = 0  # the epoch being trained (1-based), for the record of changes
        self.changes: list[dict[str, Any]] = []
        self.attention = False  # read on every batch: anything asked of the training thread?
        self.stop_reason: str | None = None
        self.stop_id: str | None = None
        self.ended = False
        self._schedule = schedule
        self._cond = threading.Condition()
        self._pause_requested = False
        self._pause_id: str | None = None
        self._resume_id: str | None = None
        self._paused = False
        self._pending: list[tuple[str, Any, str | None]] = []
        self.profile_request: tuple[int, str | None] | None = None  # (steps, command id) for the profiler
        self.profiling = False  # a capture is under way (`tfbench.engine.profiling`)

    def attach(self, model: Any) -> None:
        """The model the controls act on (set once it is built)."""
        self.model = model

    # -- asking (any thread) ---------------------------------------------------------------------
    def pause(self, command_id: str | None = None) -> bool:
        """Ask the training thread to block before its next batch; False if already paused/asked."""
        with self._cond:
            if self._pause_requested or self.ended:
                return False
            self._pause_requested = True
            self._pause_id = command_id
            self.attention = True
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
        """Ask the run to finish its current batch and end as `stopped`; False if already asked."""
        with self._cond:
            if self.stop_reason is not None or self.ended:
                return False
            self.stop_reason = reason
            self.stop_id = command_id
            self.attention = True
            if self.model is not None:
                self.model.stop_training = True
            self._cond.notify_all()
            return True

    def profile(self, steps: int = 10, command_id: str | None = None) -> bool:
        """Ask for a profile of the next `steps` batches; False when one is asked for or under way.

        Raises:
            UserError: `steps` is not a whole number from 1 to 1000.
        """
        try:
            steps = int(steps)
        except (TypeError, ValueError):
            raise UserError(f"expected a whole number of steps, got {steps!r}", "steps") from None
        if not 1 <= steps <= MAX_PROFILE_STEPS:
            raise UserError(f"profile 1 to {MAX_PROFILE_STEPS} steps, got {steps}", "steps")
        with self._cond:
            if self.profile_request is not None or self.profiling or self.ended:
                return False
            self.profile_request = (steps, command_id)  # the profiler's batch hook takes it
            return True

    def set(self, name: str, value: Any, command_id: str | None = None) -> None:
        """Change `learning_rate` or `epochs` (the planned total) while the run trains.

        Raises:
            UserError: an unknown setting or an impossible value.
        """
        if name not in SETTINGS:
            raise UserError(
                f"cannot change {name!r} while running",
                name,
                close_matches(name, SETTINGS) or f"settable: {', '.join(SETTINGS)}",
            )
        if name == "learning_rate":
            value = self._checked_rate(value)
            with self._cond:
                self._pending.append((name, value, command_id))
                self.attention = True
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
        self.record_change("epochs", old, epochs, command_id)

    def _checked_rate(self, value: Any) -> float:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(f"expected a number, got {value!r}", "learning_rate") from None
        if not (value > 0 and math.isfinite(value)):
            raise UserError(f"must be a positive number, got {value!r}", "learning_rate")
        if self._schedule is not None:
            raise UserError(
                f"the learning rate follows train.schedule ({self._schedule})",
                "learning_rate",
                "remove the schedule to set it by hand",
            )
        return value

    # -- acting (the training thread) ----------------------------------------------------------
    def between_batches(self, epoch: int, batch: int) -> None:
        """Apply what controllers asked for; block here while paused."""
        with self._cond:
            self._apply_pending()
            if self.stop_reason is None and self._pause_requested and not self._paused:
                self._hold(epoch, batch)
            self.attention = bool(self._pending or self._pause_requested or self.stop_reason)
            if self.stop_reason is not None:
                self.model.stop_training = True
                self.attention = False

    def _hold(self, epoch: int, batch: int) -> None:
        """Block while paused (the condition is held), applying live settings meanwhile."""
        self._paused = True
        pause_id, self._pause_id = self._pause_id, None
        self.emit(ev.PAUSED, epoch=epoch, step=batch, command_id=pause_id)
        since = time.monotonic()
        while self._pause_requested and self.stop_reason is None:
            self._cond.wait(0.5)
            self._apply_pending()
        self._paused = False
        resume_id, self._resume_id = self._resume_id, None
        self.emit(
            ev.RESUMED, epoch=epoch, step=batch, paused_seconds=round(time.monotonic() - since, 3), command_id=resume_id
        )

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, []
        for name, value, command_id in pending:
            if name == "learning_rate":
                old = learning_rate(self.model)
                self.model.optimizer.learning_rate = value
                self.record_change(name, old, value, command_id)

    def record_change(self, name: str, old: Any, new: Any, command_id: str | None) -> None:
        """Keep a live change for `run_ended` and emit `setting_changed`."""
        self.changes.append({"name": name, "old": old, "new": new, "epoch": self.epoch, "time": time.time()})
        self.emit(ev.SETTING_CHANGED, name=name, old=old, new=new, epoch=self.epoch, command_id=command_id)

    def plan_reached(self) -> bool:
        """Whether the planned epochs are done (the plan may have been lowered while running)."""
        return self.completed_epochs >= self.target_epochs
