"""Reading a long event log for what a summary needs, at the speed of reading the file.

Without a UI and without TensorFlow. A run logs ~10 `batch` events a second, so a long run's
`events.jsonl` grows to hundreds of MB, nearly all of it batches and system samples. Listing runs,
resuming one or looking for its end needs the other events (starts, epochs, checkpoints, the end):
this reads the log in blocks, finds the lines of the bulky kinds by their first bytes (the writer
puts `event` first, in compact JSON) and passes over them unparsed, so memory stays at one block
and the time near reading the bytes. The last of each skipped kind before each other event is still
parsed, so the folded state knows the run's latest step, sample and time as a full fold does.

Damage is still counted: a block in which as many lines end an object as there are event names is
whole; otherwise each skipped line's shape is checked (`looks_whole`); every other line is parsed. A
line of a skipped kind whose inside was overwritten but whose shape holds is not seen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tfbench.engine.events import BATCH, EVENTS_FILE, SYSTEM, RunState, decode

BULK_KINDS = (BATCH, SYSTEM)
"""The kinds a long log is made of; a summary folds without parsing them."""

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 << 20  # a "line" longer than this is damage (no newline in a file of garbage)
EVENT_KEY = b'{"event":'
Noted = dict[bytes, tuple[int, int, bytes]]  # a skipped kind's prefix -> (block, offset, line) of its latest line


def kind_prefixes(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """How lines of these kinds begin as the event writer writes them."""
    return tuple(f'{{"event":"{json.dumps(kind)[1:-1]}"' for kind in kinds)


def looks_whole(line: bytes) -> bool:
    """A cheap check of a line passed over unparsed: it names one event and ends its object.

    It catches what damages a log in practice (a cut line, a torn line another write was glued
    to, bytes appended) without parsing every batch of a long run.
    """
    line = line.rstrip()
    return line.endswith(b"}") and line.count(EVENT_KEY) == 1


@dataclass
class LogScan:
    """What one pass over a log found besides its events."""

    damaged: int = 0
    """Complete lines that are not events (unparsable, or skipped and not whole)."""


def _blocks(handle: IO[bytes], scan: LogScan) -> Iterator[tuple[bytes, int]]:
    """The file in blocks of whole lines: (data, end), where `data[:end]` starts with the newline
    before its first line (so every line start is a newline's end) and ends with a newline; a torn
    last line is left out. A line longer than `MAX_LINE_BYTES` (a file of garbage without
    newlines) is dropped as it is read, and counted damaged."""
    tail, endless = b"\n", False
    while block := handle.read(BLOCK_BYTES):
        data = tail + block  # the one copy of each block
        if endless:
            cut = data.find(b"\n")
            if cut < 0:
                tail = b""
                continue
            data, endless = data[cut:], False
        end = data.rfind(b"\n") + 1
        if end > 1:
            yield data, end
            tail = data[end - 1 :]
        elif len(data) > MAX_LINE_BYTES:
            scan.damaged += 1
            tail, endless = b"", True
        else:
            tail = data


def scan_events(
    path: str | Path, skip: tuple[str, ...] = BULK_KINDS, scan: LogScan | None = None
) -> Iterator[dict[str, Any]]:
    """The events of a log, where each run of lines of the `skip` kinds between two other events is
    represented by its last whole line of each kind (so a folded state has the latest step, sample
    and time, in order).

    Args:
        path: the log, or its run directory.
        skip: the kinds to pass over unparsed.
        scan: filled in with what the pass found (damaged lines).
    """
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    scan = scan if scan is not None else LogScan()
    prefixes = tuple(p.encode() for p in kind_prefixes(skip))
    # a newline not followed by a skipped kind: the start of a line to parse (found at C speed)
    others = re.compile(b"\n(?!" + b"|".join(re.escape(p) for p in prefixes) + b")" if prefixes else b"\n")
    latest: Noted = {}  # since the last parsed event
    with open(path, "rb") as handle:
        for number, (data, end) in enumerate(_blocks(handle, scan)):
            if prefixes and not _block_is_whole(data, end):
                scan.damaged += _unwhole_lines(data[:end], prefixes)
            after = 0  # where the run of skipped lines since the last parsed event begins
            for match in others.finditer(data, 0, end - 1):
                line = data[match.end() : data.index(b"\n", match.end())]
                event = decode(line.decode("utf-8", "replace"))
                if event is None:
                    scan.damaged += bool(line.strip())
                    continue
                _note_latest(data, after, match.end(), number, prefixes, latest)
                yield from _flush(latest, scan)
                yield event
                after = match.end() + len(line)
            _note_latest(data, after, end, number, prefixes, latest)
    yield from _flush(latest, scan)


def _note_latest(data: bytes, start: int, end: int, number: int, prefixes: tuple[bytes, ...], latest: Noted) -> None:
    """Note the last whole line of each skipped kind in `data[start:end]` (block `number`)."""
    for prefix in prefixes:
        found = _last_whole(data, end, prefix, start)
        if found is not None:
            latest[prefix] = (number, *found)


def _flush(latest: Noted, scan: LogScan) -> Iterator[dict[str, Any]]:
    """The noted lines as events, in the log's order; then forget them."""
    for _, _, line in sorted(latest.values()):
        event = decode(line.decode("utf-8", "replace"))
        scan.damaged += event is None
        if event is not None:
            yield event
    latest.clear()


def _block_is_whole(data: bytes, end: int) -> bool:
    """The quick check of a block: as many lines end an object as there are event names.

    A skipped line that is cut (no closing brace) or glued to another (two names) unbalances it;
    only a parsed line that is damaged itself could balance it again, and that one is counted.
    """
    return data.count(b"}\n", 0, end) == data.count(EVENT_KEY, 0, end)


def _unwhole_lines(data: bytes, prefixes: tuple[bytes, ...]) -> int:
    """How many skipped lines of a block are not whole (the block failed the quick check)."""
    return sum(1 for line in data.split(b"\n") if line.startswith(prefixes) and not looks_whole(line))


def _last_whole(data: bytes, end: int, prefix: bytes, after: int) -> tuple[int, bytes] | None:
    """The last whole line of a block starting with `prefix`, at or after offset `after`."""
    pos = data.rfind(b"\n" + prefix, after, end)
    while pos >= 0:
        line = data[pos + 1 : data.index(b"\n", pos + 1)]
        if looks_whole(line):
            return pos + 1, line
        pos = data.rfind(b"\n" + prefix, after, pos)
    return None


def last_event(path: str | Path, window: int = 1 << 16) -> dict[str, Any] | None:
    """The log's last complete event, read from its end (None when the last lines do not parse).

    Args:
        path: the log, or its run directory.
        window: how many bytes from the end to look at; a last line longer than that is not read.
    """
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - window))
        data = handle.read()
    end = data.rfind(b"\n")  # a torn last line (no newline yet) is not complete
    start = data.rfind(b"\n", 0, end) + 1 if end >= 0 else 0
    if end < 0 or (start == 0 and size > window):
        return None
    return decode(data[start:end].decode("utf-8", "replace"))


def summary_state(path: str | Path, scan: LogScan | None = None) -> RunState:
    """A run's state folded from its log without its batches and system samples (see the module)."""
    return RunState.from_events(scan_events(path, BULK_KINDS, scan))
