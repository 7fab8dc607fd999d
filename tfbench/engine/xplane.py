"""A TensorFlow profiler trace (an XSpace, `*.xplane.pb`) as plain events — without TensorBoard.

`tf.profiler.experimental` writes what it saw as an XSpace protobuf: planes (the host's threads,
each GPU), lines (a thread, a CUDA stream) and events (a name, a start, a duration and typed
stats). TensorFlow ships the protobuf classes (`tensorflow.tsl.profiler.protobuf.xplane_pb2`),
so the trace is read here without TensorBoard or its profile plugin. Times are picoseconds on
the trace's own clock, which every plane shares.

Only the protobuf module needs TensorFlow, and only when a file is read; the rest is plain Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_PLANE = "/host:CPU"
DEVICE_PLANE_PREFIXES = ("/device:GPU:", "/device:TPU:")
TRACE_SUFFIX = ".xplane.pb"


@dataclass(frozen=True, slots=True)
class Event:
    """One traced event: its name, start and end (picoseconds) and the raw protobuf for its stats."""

    name: str
    start: int
    end: int
    raw: Any = field(repr=False, compare=False)

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class Line:
    """A thread (host) or a stream (device): its name and its events, in start order."""

    name: str
    events: list[Event]


class Plane:
    """One plane of a trace: its lines, with names and stats resolved from the plane's metadata."""

    def __init__(self, plane: Any):
        self.name: str = plane.name
        self._stat_names = {key: meta.name for key, meta in plane.stat_metadata.items()}
        self._ref_names = self._stat_names  # a ref_value points into the same table
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        self.lines: list[Line] = []
        for line in plane.lines:
            base = line.timestamp_ns * 1000
            events = [
                Event(names.get(e.metadata_id, ""), base + e.offset_ps, base + e.offset_ps + e.duration_ps, e)
                for e in line.events
            ]
            events.sort(key=lambda e: (e.start, -e.end))
            self.lines.append(Line(line.display_name or line.name, events))
        self.stats = self._decode(plane.stats)

    def event_stats(self, event: Event) -> dict[str, Any]:
        """An event's stats by name (`step_num`, `is_func`, `id`, `tf_op`, …)."""
        return self._decode(event.raw.stats)

    def _decode(self, stats: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for stat in stats:
            kind = stat.WhichOneof("value")
            if kind is None:
                continue
            value = getattr(stat, kind)
            if kind == "ref_value":
                value = self._ref_names.get(value, "")
            elif kind == "bytes_value":
                continue  # serialized protobufs (profile options, HLO): nothing shown here
            out[self._stat_names.get(stat.metadata_id, "")] = value
        return out

    def events(self, names: set[str] | frozenset[str] | None = None) -> Iterator[tuple[Line, Event]]:
        """Every event (or those named in `names`), line by line."""
        for line in self.lines:
            for event in line.events:
                if names is None or event.name in names:
                    yield line, event


@dataclass
class Trace:
    """A read trace: its host plane, its device planes and where it came from."""

    path: Path
    host: Plane | None
    devices: list[Plane]
    hostnames: list[str]


def read_trace(path: str | Path) -> Trace:
    """Read one `*.xplane.pb` file.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not an XSpace.
    """
    from google.protobuf.message import DecodeError

    xplane_pb2 = _protobuf_module()
    space = xplane_pb2.XSpace()
    try:
        space.ParseFromString(Path(path).read_bytes())
    except DecodeError as exc:
        raise ValueError(f"not a profiler trace: {exc}") from None
    host = None
    devices = []
    for raw in space.planes:
        if raw.name == HOST_PLANE:
            host = Plane(raw)
        elif raw.name.startswith(DEVICE_PLANE_PREFIXES):
            devices.append(Plane(raw))
    devices.sort(key=lambda p: p.name)
    return Trace(Path(path), host, devices, list(space.hostnames))


def _protobuf_module() -> Any:
    """TensorFlow's XSpace protobuf classes (importing them imports TensorFlow)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    return xplane_pb2


def newest_trace(logdir: str | Path) -> Path | None:
    """The newest `*.xplane.pb` under a profiler log folder (`<logdir>/plugins/profile/<stamp>/`)."""
    found = sorted(Path(logdir).glob(f"plugins/profile/*/*{TRACE_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


# -- intervals -------------------------------------------------------------------------------------


def merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of intervals, as sorted disjoint intervals."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def clipped(spans: list[tuple[int, int]], window: tuple[int, int]) -> list[tuple[int, int]]:
    """The parts of disjoint sorted intervals inside `window`."""
    lo, hi = window
    return [(max(s, lo), min(e, hi)) for s, e in spans if e > lo and s < hi]


def length(spans: list[tuple[int, int]]) -> int:
    """The total length of disjoint intervals."""
    return sum(e - s for s, e in spans)


def gaps(spans: list[tuple[int, int]], window: tuple[int, int]) -> list[tuple[int, int]]:
    """The parts of `window` that disjoint sorted intervals leave uncovered."""
    out = []
    cursor = window[0]
    for start, end in clipped(spans, window):
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < window[1]:
        out.append((cursor, window[1]))
    return out


def self_times(events: list[Event], counted: Any = None) -> dict[int, int]:
    """The time of each counted event less the counted events nested directly inside it.

    Args:
        events: one line's events in start order (outer events before the events they hold).
        counted: a test `counted(event) -> bool` (None: every event counts).

    Returns:
        Self time in picoseconds by index into `events`, for the counted events.
    """
    own: dict[int, int] = {}
    stack: list[int] = []  # the counted events open at this point, outermost first
    for i, event in enumerate(events):
        if counted is not None and not counted(event):
            continue
        while stack and events[stack[-1]].end <= event.start:
            stack.pop()
        if stack and event.end <= events[stack[-1]].end:
            own[stack[-1]] -= event.duration
        own[i] = event.duration
        stack.append(i)
    return own
