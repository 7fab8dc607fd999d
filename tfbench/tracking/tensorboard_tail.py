"""A TensorBoard log folder read as a run's events, so the live view shows its scalars
(`tfbench watch tb:LOGDIR`) — without a UI and without TensorFlow.

`TensorBoardTail` reads like `tfbench.event_tail.EventTail`: each `read` returns what is new. It
starts with a `run_started` named after the folder, turns each step of the scalars into an
`epoch_ended` (`train`/`validation` runs and `epoch_*` tags map back to `loss`, `val_loss`, …), and
ends the run once no event file has changed for two minutes — a TensorBoard log says nothing of
its end, so a log still being written stays "running" and grows as it is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tfbench.engine import events as ev
from tfbench.event_tail import EventTail

EVENT_FILES = "events.out.tfevents.*"
POLL_SECONDS = 2.0  # between re-reads of the log
STALE_SECONDS = 120.0  # no event file changed this long: the log is taken as finished


def is_tensorboard_log(path: str | Path) -> bool:
    """A folder without a tfbench event log that holds TensorBoard event files."""
    path = Path(path)
    return path.is_dir() and not (path / ev.EVENTS_FILE).exists() and next(path.rglob(EVENT_FILES), None) is not None


def open_tail(path: str | Path, chunk_bytes: int = 1 << 20) -> Any:
    """The reader a view follows `path` with: a run's event log, or a TensorBoard log folder."""
    return TensorBoardTail(path) if is_tensorboard_log(path) else EventTail(path, chunk_bytes=chunk_bytes)


class TensorBoardTail:
    """A TensorBoard log folder as tfbench events, read a poll at a time.

    Args:
        logdir: the folder (its sub-folders are TensorBoard's runs).
        poll_seconds: the least time between two reads of the files.
    """

    def __init__(self, logdir: str | Path, poll_seconds: float = POLL_SECONDS):
        self.logdir = Path(logdir)
        self.poll_seconds = poll_seconds
        self._last_read = -float("inf")
        self._epochs = 0  # epochs already reported
        self._started = self._ended = False

    def read(self) -> list[dict[str, Any]]:
        """The events the log gained since the last read (nothing between polls)."""
        if self._ended or time.monotonic() - self._last_read < self.poll_seconds:
            return []
        self._last_read = time.monotonic()
        from tfbench.tracking.tensorboard_files import read_scalars, scalars_as_history

        rows = scalars_as_history(read_scalars(self.logdir))
        out = []
        if not self._started:
            self._started = True
            out.append(self._event(ev.RUN_STARTED, experiment={"name": self.logdir.name}, run_dir=str(self.logdir)))
        for row in rows:
            if row["epoch"] > self._epochs:
                logs = {k: v for k, v in row.items() if k not in ("epoch", "lr")}
                out.append(self._event(ev.EPOCH_ENDED, epoch=row["epoch"], logs=logs, lr=row.get("lr"), seconds=None))
                self._epochs = row["epoch"]
        newest = max((p.stat().st_mtime for p in self.logdir.rglob(EVENT_FILES)), default=0.0)
        if time.time() - newest > STALE_SECONDS:
            self._ended = True
            reason = "a TensorBoard log, not written to for two minutes"
            out.append(self._event(ev.RUN_ENDED, status="completed", reason=reason, epochs_completed=self._epochs))
        return out

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return ev.make_event(kind, **fields)

    def close(self) -> None:
        """Nothing to let go of (the files are read whole at each poll)."""

    def __enter__(self) -> TensorBoardTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
