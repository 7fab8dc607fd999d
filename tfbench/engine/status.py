"""A run's status: the words its event log and `tfbench runs` use, and what each one means.

The values are the strings on disk (`run_ended.status`, `RunState.status`), so a `RunStatus` compares
equal to, hashes like and serialises as its plain string: code that holds a status read from JSON
tests it against these groupings without converting it. Each grouping is written here once.
"""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10: the same behaviour, written out

    class StrEnum(str, Enum):
        """An Enum whose members are their own string values (`str()`, f-strings, JSON)."""

        __str__ = str.__str__
        __format__ = str.__format__


class RunStatus(StrEnum):
    """Where a run stands; the last four are only ever told by the runner's `run_ended`."""

    WAITING = "waiting"  # no `run_started` yet
    RUNNING = "running"
    PAUSED = "paused"
    INTERRUPTED = "interrupted"  # the runner died without `run_ended`
    DAMAGED = "damaged"  # the run directory cannot be read
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """The runner wrote `run_ended`: nothing more will happen to the run."""
        return self in ENDED

    @property
    def succeeded(self) -> bool:
        """Trained as planned (all epochs, or until early stopping): its best and final models are kept."""
        return self in SUCCEEDED

    @property
    def kept_model(self) -> bool:
        """Ended with `model.keras` saved: a succeeded run, or one stopped on request."""
        return self in KEPT_MODEL

    @property
    def exit_code(self) -> int:
        """The runner process's exit code for this final status (DESIGN.md: 0, 1 or 130)."""
        return exit_code(self)


ENDED = frozenset({RunStatus.COMPLETED, RunStatus.EARLY_STOPPED, RunStatus.STOPPED, RunStatus.FAILED})
SUCCEEDED = frozenset({RunStatus.COMPLETED, RunStatus.EARLY_STOPPED})
KEPT_MODEL = SUCCEEDED | {RunStatus.STOPPED}
EXIT_CODES: dict[str, int] = {
    RunStatus.COMPLETED: 0,
    RunStatus.EARLY_STOPPED: 0,
    RunStatus.FAILED: 1,
    RunStatus.STOPPED: 130,
}


def exit_code(status: str) -> int:
    """The exit code for a final status read as a string; anything but success or a stop is a failure (1)."""
    return EXIT_CODES.get(status, 1)
