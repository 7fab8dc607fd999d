"""The event log: the one contract between a training run and everything that shows it.

Without a UI and without TensorFlow. The training thread emits events; `events.jsonl` in the run
directory holds them one JSON object per line; the TUI's train screen, `tfbench watch`, the Runs
screen and the headless progress all fold the same events into a `RunState`. So an in-process
run, a watched detached run and a replayed fixture log look the same.

Every event has `event` (its type), `time` (Unix seconds) and `v` (the schema version). Types:

- `run_started`: experiment (dict), run_dir, model {layers: [{name, type, output_shape, params}],
  total_params, trainable_params}, data (DataInfo dict), steps_per_epoch, epochs, initial_epoch,
  pid, resumed (bool)
- `epoch_started`: epoch (1-based), epochs
- `batch`: epoch, step (1-based in the epoch), steps, logs {loss, …} — throttled (≤ ~10/s)
- `epoch_ended`: epoch, logs {loss, val_loss, …}, lr, seconds, samples_per_sec
- `system`: cpu_percent, rss_mb, ram_used_mb, ram_total_mb, gpus [{index, name, util, mem_used_mb,
  mem_total_mb, temperature, power_w, processes}], tf_memory {device: {current_mb, peak_mb}}
- `checkpoint`: kind (last | best | backup), path (relative to the run dir), epoch, monitor, value
- `paused`: epoch, step · `resumed`: epoch, step
- `setting_changed`: name (learning_rate | epochs), old, new
- `preflight`: step_seconds, eta_seconds, peak_memory_mb (None off-GPU)
- `log`: level (info | warning | error), message
- `run_ended`: status (completed | stopped | early_stopped | failed), reason, epochs_completed,
  best {monitor, mode, epoch, value, logs}, final (last epoch's logs), artifacts {name: relpath},
  seconds
- `export`: format, path, report (the verification report of one export)
- `profile`: epoch, first_batch, requested_steps, origin (plan | request), trace and summary
  (paths in the run dir), steps, step_ms, split {input, compute, host} (fractions of the step),
  top_ops [{name, type, ms, share}], stages [{stage, path, ms, share}] (tf.data), devices
  [{device, kernel, memcpy, busy, idle, gaps, longest_gap_ms, top_kernels}], verdict {kind, line},
  parse_seconds, capture_seconds — or `error` when no trace could be judged
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfbench.engine.status import ENDED, RunStatus

SCHEMA_VERSION = 1
EVENTS_FILE = "events.jsonl"

RUN_STARTED = "run_started"
EPOCH_STARTED = "epoch_started"
BATCH = "batch"
EPOCH_ENDED = "epoch_ended"
SYSTEM = "system"
CHECKPOINT = "checkpoint"
PAUSED = "paused"
RESUMED = "resumed"
SETTING_CHANGED = "setting_changed"
PREFLIGHT = "preflight"
LOG = "log"
RUN_ENDED = "run_ended"
EXPORT = "export"
PROFILE = "profile"


def make_event(kind: str, /, **fields: Any) -> dict[str, Any]:
    """An event dict with its type, the time now and the schema version."""
    return {"event": kind, "time": time.time(), "v": SCHEMA_VERSION, **fields}


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, Paths, tuples: plain JSON for every reader.
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def json_safe(value: Any) -> Any:
    """Make floats JSON-safe: NaN/Inf become the strings "nan"/"inf"/"-inf"."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def as_float(value: Any) -> float:
    """A metric value back as a float ("nan"/"inf" strings included)."""
    if isinstance(value, str):
        return float(value)
    return float(value)


def encode(event: dict[str, Any]) -> str:
    """One event as one JSON line (no newline)."""
    return json.dumps(json_safe(event), default=_json_default, separators=(",", ":"))


class EventWriter:
    """Appends events to `events.jsonl`, one flushed line each, and hands them to subscribers.

    Thread-safe: the training thread, the system sampler and the control loop all emit. A line is
    written whole with a single `write` call on a file opened for appending, so a reader tailing
    the file never sees a half event except at the very end, which `follow` waits out.
    """

    def __init__(self, path: str | Path | None, subscribers: list[Callable[[dict], None]] | None = None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8") if self.path is not None else None
        self.subscribers: list[Callable[[dict], None]] = list(subscribers or [])
        self.lost = 0  # events the disk could not hold (subscribers still had them)
        self._failed = False  # the last write failed: the file was closed, to be reopened

    def emit(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Record an event and pass it to every subscriber; returns the event."""
        event = make_event(kind, **fields)
        line = encode(event) + "\n"
        with self._lock:
            self._write(line)
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken view must never stop training
                pass
        return event

    def _write(self, line: str) -> None:
        """Append one line; a line the disk cannot hold is lost, never raised into the training thread.

        The file is reopened after a failed write (its buffer dropped), and a torn line left by one
        is ended first, so the next event is not glued to it (`decode` skips the torn one).
        """
        if self._file is None or (self._file.closed and not self._failed):
            return  # no file, or closed for good by `close`
        try:
            if self._file.closed:
                self._file = open(self._file.name, "a", encoding="utf-8")
                self._failed = False
                if ends_torn(Path(self._file.name)):
                    self._file.write("\n")
            self._file.write(line)
            self._file.flush()
        except OSError:
            self.lost += 1
            self._failed = True
            try:
                self._file.close()  # drops what it could not write
            except OSError:
                pass

    def subscribe(self, callback: Callable[[dict], None]) -> None:
        with self._lock:
            self.subscribers.append(callback)

    def close(self) -> None:
        with self._lock:
            self._failed = False  # closed for good: later events go only to subscribers
            if self._file is not None and not self._file.closed:
                try:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except OSError:  # a full disk: the lines it could not hold are lost, as in `_write`
                    self.lost += 1
                finally:
                    try:
                        self._file.close()
                    except OSError:
                        pass


def ends_torn(path: Path) -> bool:
    """Whether a file's last line lacks its newline (a write the disk could not hold, a kill)."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return False
        handle.seek(size - 1)
        return handle.read(1) != b"\n"


def decode(line: str) -> dict[str, Any] | None:
    """Parse one log line; None for a blank, torn or foreign line."""
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or "event" not in event:
        return None
    return event


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete event in a log, one at a time (a torn last line is skipped)."""
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    with open(path, encoding="utf-8", errors="replace") as handle:  # damaged bytes: lines that do not decode
        for line in handle:
            if not line.endswith("\n"):
                break
            event = decode(line)
            if event is not None:
                yield event


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every complete event in a log, in a list (a torn last line is skipped)."""
    return list(iter_events(path))


def follow(
    path: str | Path,
    stop: threading.Event | None = None,
    poll: float = 0.1,
    from_start: bool = True,
    until_ended: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield events from a log as they are appended (like `tail -f`).

    Args:
        path: the log, or its run directory; it may not exist yet.
        stop: set it to end the iteration from another thread.
        poll: seconds between looks at the file when nothing new came.
        from_start: replay what is already there first.
        until_ended: return after a `run_ended` event.
    """
    path = Path(path)
    if path.is_dir() or path.suffix != ".jsonl":
        path = path / EVENTS_FILE
    stop = stop or threading.Event()
    while not path.exists():
        if stop.wait(poll):
            return
    with open(path, encoding="utf-8", errors="replace") as handle:
        if not from_start:
            handle.seek(0, os.SEEK_END)
        pending = ""
        while not stop.is_set():
            chunk = handle.read(1 << 16)
            if not chunk:
                stop.wait(poll)
                continue
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                event = decode(line)
                if event is None:
                    continue
                yield event
                if until_ended and event["event"] == RUN_ENDED:
                    return


# -- RunState ---------------------------------------------------------------------------------

MAX_BATCH_POINTS = 2000
MAX_LOG_LINES = 200


@dataclass
class LogLine:
    """One line for the event log pane."""

    time: float
    level: str
    message: str


@dataclass
class RunState:
    """Everything a view shows about a run, folded from its events: plain floats and strings.

    Memory stays bounded however long the run: per-epoch history grows with epochs only, batch
    points are thinned to at most `MAX_BATCH_POINTS`, and the log keeps its last lines.
    """

    status: str = "waiting"  # waiting | running | paused | completed | stopped | early_stopped | failed
    name: str = ""
    run_dir: str = ""
    experiment: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    started: float | None = None
    updated: float | None = None
    finished_at: float | None = None
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    epoch_started: float | None = None
    history: dict[str, list[float]] = field(default_factory=dict)  # metric -> value per epoch
    epoch_numbers: list[int] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)  # thinned batch losses
    batch_x: list[float] = field(default_factory=list)  # fractional epoch of each batch point
    batch_stride: int = 1
    last_batch_logs: dict[str, float] = field(default_factory=dict)
    samples_per_sec: float | None = None
    step_seconds: float | None = None
    system: dict[str, Any] = field(default_factory=dict)
    damaged_events: int = 0  # events whose fields could not be read (a damaged log)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    log: deque = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    reason: str = ""
    best: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    exports: list[dict[str, Any]] = field(default_factory=list)
    preflight: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)  # the latest `profile` event's fields
    events_seen: int = 0
    _batches_seen: int = 0

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]]) -> RunState:
        state = cls()
        for event in events:
            state.apply(event)
        return state

    @classmethod
    def from_log(cls, path: str | Path) -> RunState:
        """The state folded from a whole log as it streams by (`log_scan.summary_state` skips batches)."""
        return cls.from_events(iter_events(path))

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def running(self) -> bool:
        return self.status in (RunStatus.RUNNING, RunStatus.PAUSED)

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run started (until it ended)."""
        if self.started is None:
            return 0.0
        if self.finished_at is not None:
            end = self.finished_at
        else:
            end = now if now is not None else (self.updated or self.started)
        return max(0.0, end - self.started)

    def eta(self) -> float | None:
        """Seconds left at the pace so far, or None before the first measurable progress."""
        if not self.epochs:
            return None
        if self.epoch_seconds:
            recent = self.epoch_seconds[-5:]
            per_epoch = sum(recent) / len(recent)
        elif self.preflight.get("step_seconds") and self.steps:
            per_epoch = self.preflight["step_seconds"] * self.steps
        else:
            return None
        done = len(self.epoch_numbers)
        left_in_epoch = 0.0
        if self.steps and self.step and self.epoch > done:
            left_in_epoch = per_epoch * (1 - self.step / self.steps)
            done += 1
        return max(0.0, (self.epochs - done) * per_epoch + left_in_epoch)

    @property
    def outputs(self) -> list[str]:
        """The named outputs of a model with several (`[[model.outputs]]`), in order; empty otherwise."""
        written = (self.experiment.get("model") or {}).get("outputs") or []
        return [str(o.get("name")) for o in written if isinstance(o, dict) and o.get("name")]

    def metric_names(self) -> list[str]:
        """Metrics with a history, training ones first then their `val_` twins."""
        base = [k for k in self.history if not k.startswith("val_")]
        return base + [k for k in self.history if k.startswith("val_")]

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event into the state."""
        kind = event.get("event")
        t = event.get("time")
        self.events_seen += 1
        if isinstance(t, (int, float)):
            self.updated = float(t)
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is not None:
            try:
                handler(event)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError):
                self.damaged_events += 1  # a damaged or foreign line: the rest of the log still counts

    def _note(self, event: dict[str, Any], level: str, message: str) -> None:
        self.log.append(LogLine(float(event.get("time") or 0.0), level, message))

    def _on_run_started(self, e: dict[str, Any]) -> None:
        self.status = "running"
        self.experiment = e.get("experiment") or {}
        self.name = self.experiment.get("name", "")
        self.run_dir = e.get("run_dir", "")
        self.model = e.get("model") or {}
        self.data = e.get("data") or {}
        self.pid = e.get("pid")
        self.steps = int(e.get("steps_per_epoch") or 0)
        self.epochs = int(e.get("epochs") or 0)
        if self.started is None:
            self.started = float(e["time"])
        self.finished_at = None
        self.reason = ""
        initial = int(e.get("initial_epoch") or 0)
        if e.get("resumed"):
            self._note(e, "info", f"resumed from epoch {initial}")
            self._truncate_history(initial)
        else:
            self._note(e, "info", f"started: {self.model.get('total_params', '?')} parameters")

    def _truncate_history(self, epochs_kept: int) -> None:
        keep = [i for i, n in enumerate(self.epoch_numbers) if n <= epochs_kept]
        cut = len(keep)
        self.epoch_numbers = self.epoch_numbers[:cut]
        self.learning_rates = self.learning_rates[:cut]
        self.epoch_seconds = self.epoch_seconds[:cut]
        for key in self.history:
            self.history[key] = self.history[key][:cut]

    def _on_epoch_started(self, e: dict[str, Any]) -> None:
        self.epoch = int(e.get("epoch") or 0)
        self.epochs = int(e.get("epochs") or self.epochs)
        self.step = 0
        self.epoch_started = float(e["time"])
        if self.status not in ENDED:
            self.status = "running"

    def _on_batch(self, e: dict[str, Any]) -> None:
        self.epoch = int(e.get("epoch") or self.epoch)
        self.step = int(e.get("step") or 0)
        self.steps = int(e.get("steps") or self.steps)
        logs = {k: as_float(v) for k, v in (e.get("logs") or {}).items()}
        self.last_batch_logs = logs
        if e.get("samples_per_sec") is not None:
            self.samples_per_sec = float(e["samples_per_sec"])
        if e.get("step_seconds") is not None:
            self.step_seconds = float(e["step_seconds"])
        self._batches_seen += 1
        if "loss" in logs and self._batches_seen % self.batch_stride == 0:
            x = (self.epoch - 1) + (self.step / self.steps if self.steps else 0.0)
            self.batch_loss.append(logs["loss"])
            self.batch_x.append(x)
            if len(self.batch_loss) > MAX_BATCH_POINTS:
                # Thin to every other point and keep only every 2×stride-th from now on.
                self.batch_loss = self.batch_loss[::2]
                self.batch_x = self.batch_x[::2]
                self.batch_stride *= 2

    def _on_epoch_ended(self, e: dict[str, Any]) -> None:
        epoch = int(e.get("epoch") or self.epoch)
        if epoch in self.epoch_numbers:  # a resumed run repeats an epoch: keep the newer
            self._truncate_history(epoch - 1)
        n = len(self.epoch_numbers)
        self.epoch_numbers.append(epoch)
        logs = {k: as_float(v) for k, v in (e.get("logs") or {}).items()}
        for key, value in logs.items():
            series = self.history.setdefault(key, [])
            series.extend([math.nan] * (n - len(series)))
            series.append(value)
        for series in self.history.values():
            if len(series) < n + 1:
                series.extend([math.nan] * (n + 1 - len(series)))
        lr = e.get("lr")
        self.learning_rates.append(as_float(lr) if lr is not None else math.nan)
        self.epoch_seconds.append(float(e.get("seconds") or 0.0))
        if e.get("samples_per_sec") is not None:
            self.samples_per_sec = float(e["samples_per_sec"])
        self.epoch = epoch
        self.step = self.steps

    def _on_system(self, e: dict[str, Any]) -> None:
        self.system = {k: v for k, v in e.items() if k not in ("event", "time", "v")}

    def _on_checkpoint(self, e: dict[str, Any]) -> None:
        self.checkpoints.append({k: v for k, v in e.items() if k not in ("event", "v")})
        what = e.get("kind", "checkpoint")
        value = e.get("value")
        extra = f" ({e.get('monitor')}={as_float(value):.4g})" if value is not None and e.get("monitor") else ""
        self._note(e, "info", f"epoch {e.get('epoch')}: saved {what} checkpoint{extra}")

    def _on_paused(self, e: dict[str, Any]) -> None:
        self.status = "paused"
        self._note(e, "info", f"paused at epoch {e.get('epoch')}, batch {e.get('step')}")

    def _on_resumed(self, e: dict[str, Any]) -> None:
        if self.status == "paused":
            self.status = "running"
        self._note(e, "info", "resumed")

    def _on_setting_changed(self, e: dict[str, Any]) -> None:
        name, new = e.get("name"), e.get("new")
        if name == "epochs":
            self.epochs = int(e["new"])
        self._note(e, "info", f"{name}: {e.get('old')} → {new}")

    def _on_preflight(self, e: dict[str, Any]) -> None:
        self.preflight = {k: v for k, v in e.items() if k not in ("event", "time", "v")}
        if e.get("step_seconds") is not None:
            self.step_seconds = float(e["step_seconds"])
        eta = e.get("eta_seconds")
        if eta is not None:
            self._note(e, "info", f"pre-flight: {float(e['step_seconds']) * 1000:.1f} ms/step, ETA {eta:.0f}s")

    def _on_log(self, e: dict[str, Any]) -> None:
        self._note(e, str(e.get("level", "info")), str(e.get("message", "")))

    def _on_run_ended(self, e: dict[str, Any]) -> None:
        self.status = str(e.get("status", "completed"))
        self.reason = str(e.get("reason") or "")
        self.best = e.get("best") or {}
        self.final = e.get("final") or {}
        self.artifacts = e.get("artifacts") or {}
        self.finished_at = float(e["time"])
        message = f"run {self.status}" + (f": {self.reason}" if self.reason else "")
        self._note(e, "error" if self.status == "failed" else "info", message)

    def _on_export(self, e: dict[str, Any]) -> None:
        self.exports.append({k: v for k, v in e.items() if k not in ("event", "v")})
        self._note(e, "info", f"exported {e.get('format')} → {e.get('path')}")

    def _on_profile(self, e: dict[str, Any]) -> None:
        self.profile = {k: v for k, v in e.items() if k not in ("event", "v", "command_id")}
        where = f"epoch {e.get('epoch')}, {e.get('steps') or e.get('requested_steps')} steps"
        if e.get("error"):
            self._note(e, "warning", f"profile ({where}): {e['error']}")
        else:
            self._note(e, "info", f"profile ({where}): {(e.get('verdict') or {}).get('line', '')}")
