"""Non-blocking reads of a growing event log, for views that poll on their own schedule.

Without a UI and without TensorFlow. `events.follow` is a generator that blocks between lines;
a view's worker instead wants "everything new since last time" in one list, so it can post one
message per poll rather than one per event (a fast run must not flood the UI's event loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from tfbench.engine.events import EVENTS_FILE, decode
from tfbench.engine.log_scan import kind_prefixes


def log_path(path: str | Path) -> Path:
    """The `events.jsonl` of a run directory, or the log path itself."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return path
    return path / EVENTS_FILE


class EventTail:
    """Reads the complete events appended to a log since the previous read.

    A torn last line (the writer is mid-append) stays pending until its newline arrives. The log
    may not exist yet: reads return nothing until it does.

    Args:
        path: the log, or its run directory.
        chunk_bytes: how much to read per call at most, so one call on a huge finished log
            returns a bounded batch and the caller can interleave its own work.
        skip: event kinds the caller has no use for (`BULK_KINDS` for plain epoch lines): their
            lines are passed over unparsed, so following a long log costs little more than reading it.
    """

    def __init__(self, path: str | Path, chunk_bytes: int = 1 << 20, skip: tuple[str, ...] = ()):
        self.path = log_path(path)
        self.chunk_bytes = chunk_bytes
        self._skipped = kind_prefixes(skip)
        self._handle: TextIO | None = None
        self._pending = ""

    def read(self) -> list[dict[str, Any]]:
        """Every complete event appended since the last call (possibly none)."""
        if self._handle is None:
            try:
                self._handle = open(self.path, encoding="utf-8")
            except FileNotFoundError:
                return []
        chunk = self._handle.read(self.chunk_bytes)
        if not chunk:
            return []
        text = self._pending + chunk
        *lines, self._pending = text.split("\n")
        events = []
        for line in lines:
            if self._skipped and line.startswith(self._skipped):
                continue
            event = decode(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> EventTail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
