"""What a profiler trace says about training: the step split, the top ops, the tf.data stages, the
device planes and one verdict with its fix — without a UI and without TensorBoard.

The trace (`tfbench.engine.xplane`) holds the profiled steps, each marked on the training thread
by a `train` event with a `step_num` stat (`tfbench.engine.profiling` puts them there). Each step
is split three ways, and the three always add up to the step:

- **input**: the step waits for its batch — `IteratorGetNext` blocking, inside or outside the
  compiled function;
- **compute**: the step runs its compiled function (`EagerExecute` of a function) and is not
  waiting for data;
- **host**: everything else in the step — Python, Keras' callbacks, dispatching ops one by one.

The verdict is judged on fractions of the step, never on absolute times, so a loaded machine that
slows everything alike gives the same verdict. Plain Python; `summarize` takes a read `Trace`.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections import defaultdict
from typing import Any

from tfbench.engine.xplane import Event, Line, Plane, Trace, clipped, gaps, length, merged, self_times

STEP_EVENT = "train"  # the step marker's name (TensorFlow's own convention for `Trace`)
INPUT_EVENTS = frozenset({"IteratorGetNextOp::DoCompute", "IteratorGetNextAsOptionalOp::DoCompute"})
FUNCTION_EVENT = "EagerExecute"  # with stat is_func = 1: a compiled function runs
OP_EVENT = re.compile(r"^(?P<name>[^:]+(?::[^:]+)*?):(?P<type>[A-Za-z_][A-Za-z0-9_]*)$")
SCOPE_PREFIXES = ("StatefulPartitionedCall/", "PartitionedCall/")
ITERATOR_PREFIX = "Iterator::"
# tf.data stages whose GetNext only waits for a buffer other threads fill: their consumer time is
# waiting, their work is in their `…Produce` events and the functions those start.
ASYNC_STAGES = re.compile(r"^(Prefetch|ParallelMap\w*|MapAndBatch|ParallelInterleave\w*|ParallelBatch|ParallelFilter)$")
PRODUCE_SUFFIX = "Produce"
DEVICE_LINE = "Stream #"
MIN_GAP_PS = 10_000_000  # 10 µs: shorter idle stretches are launch latency, not gaps

INPUT_BOUND = 0.20  # TensorFlow's own input-pipeline analysis calls ≥ 20 % "highly input-bound"
HOST_BOUND = 0.30
DEVICE_BUSY = 0.80
TOP = 5


# -- steps -------------------------------------------------------------------------------------------


def step_windows(host: Plane) -> list[tuple[Line, Event]]:
    """The profiled steps: the `train` markers with a `step_num`, in time order."""
    found = []
    for line, event in host.events({STEP_EVENT}):
        if "step_num" in host.event_stats(event):
            found.append((line, event))
    found.sort(key=lambda pair: pair[1].start)
    return found


def step_split(host: Plane, steps: list[tuple[Line, Event]]) -> dict[str, Any]:
    """Input, compute and host time of the profiled steps, as fractions of their total.

    Returns:
        `{"input", "compute", "host"}` fractions, `step_ms` (the median step), `steps`.
    """
    waits = merged([(e.start, e.end) for _, e in host.events(INPUT_EVENTS)])
    totals = {"input": 0, "compute": 0, "host": 0}
    durations = []
    for line, step in steps:
        window = (step.start, step.end)
        functions = merged(
            [
                (e.start, e.end)
                for e in line.events
                if e.name == FUNCTION_EVENT
                and e.end > step.start
                and e.start < step.end
                and host.event_stats(e).get("is_func") == 1
            ]
        )
        functions = clipped(functions, window)
        waiting = clipped(waits, window)
        busy = merged(functions + waiting)
        totals["input"] += length(waiting)
        totals["compute"] += length(busy) - length(waiting)
        totals["host"] += step.duration - length(busy)
        durations.append(step.duration)
    whole = sum(durations) or 1
    return {
        **{k: v / whole for k, v in totals.items()},
        "step_ms": statistics.median(durations) / 1e9 if durations else None,
        "steps": len(steps),
    }


# -- ops ---------------------------------------------------------------------------------------------


def short_op_name(name: str) -> str:
    """An op's name without the call wrappers TensorFlow puts before the model's own scopes."""
    changed = True
    while changed:
        changed = False
        for prefix in SCOPE_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def _is_op(event: Event) -> bool:
    return "::" not in event.name and OP_EVENT.match(event.name) is not None


def top_ops(host: Plane, windows: list[tuple[int, int]], top: int = TOP) -> list[dict[str, Any]]:
    """The ops with the most self time inside the profiled steps, on any host thread.

    Returns:
        `[{"name", "type", "ms", "share"}]`, `ms` per step, `share` of all ops' self time.
    """
    by_op: dict[tuple[str, str], int] = defaultdict(int)
    for line in host.lines:
        own = self_times(line.events, _is_op)
        for i, ps in own.items():
            event = line.events[i]
            if not _inside(event, windows):
                continue
            match = OP_EVENT.match(event.name)
            if match is None:  # _is_op matched it
                continue
            by_op[(short_op_name(match.group("name")), match.group("type"))] += ps
    whole = sum(by_op.values()) or 1
    steps = max(1, len(windows))
    ranked = sorted(by_op.items(), key=lambda item: -item[1])[:top]
    return [{"name": name, "type": kind, "ms": ps / 1e9 / steps, "share": ps / whole} for (name, kind), ps in ranked]


def _inside(event: Event, windows: list[tuple[int, int]]) -> bool:
    """Whether an event overlaps one of the sorted, disjoint step windows."""
    at = bisect.bisect_left(windows, (event.end,))  # the windows that start before the event ends
    return at > 0 and windows[at - 1][1] > event.start


# -- tf.data -------------------------------------------------------------------------------------------


def stage_name(path: str) -> str:
    """`Iterator::Root::Prefetch::Map[0]::TensorSlice` → `TensorSlice`."""
    return re.sub(r"\[\d+\]$", "", path.rsplit("::", 1)[-1])


def _is_iterator(event: Event) -> bool:
    return event.name.startswith(ITERATOR_PREFIX) or event.name.endswith(PRODUCE_SUFFIX)


def data_stages(host: Plane, windows: list[tuple[int, int]], top: int = TOP) -> list[dict[str, Any]]:
    """Time each tf.data stage spends producing, per profiled step, slowest first.

    A synchronous stage's work is its GetNext less the stages it calls (its own functions run
    inside it). An asynchronous stage (prefetch, parallel map…) only waits in its GetNext; its work
    is in its `…Produce` events and in the functions they start on other threads.

    Returns:
        `[{"stage", "path", "ms", "share"}]`, `ms` per step, `share` of all stages' time.
    """
    run_time = _function_run_times(host)
    by_stage: dict[str, int] = defaultdict(int)
    for line in host.lines:
        own = self_times(line.events, _is_iterator)
        for i, ps in own.items():
            event = line.events[i]
            if not _inside(event, windows):
                continue
            if event.name.endswith(PRODUCE_SUFFIX):
                path = _produced_stage(line.events, i)
                by_stage[path] += ps + _async_functions(host, line.events, i, run_time)
            elif not ASYNC_STAGES.match(stage_name(event.name)):
                by_stage[event.name] += ps
    whole = sum(by_stage.values()) or 1
    steps = max(1, len(windows))
    ranked = sorted(by_stage.items(), key=lambda item: -item[1])[:top]
    return [
        {"stage": stage_name(path), "path": path, "ms": ps / 1e9 / steps, "share": ps / whole} for path, ps in ranked
    ]


def _produced_stage(events: list[Event], index: int) -> str:
    """The stage a `…Produce` event works for: the parent of the first iterator it calls."""
    produce = events[index]
    for event in events[index + 1 :]:
        if event.start >= produce.end:
            break
        if event.name.startswith(ITERATOR_PREFIX) and "::" in event.name[len(ITERATOR_PREFIX) :]:
            return event.name.rsplit("::", 1)[0]
    return ITERATOR_PREFIX + produce.name[: -len(PRODUCE_SUFFIX)]


def _function_run_times(host: Plane) -> dict[int, int]:
    """Executor time of each function run, by its `id`, summed over the threads that ran it."""
    times: dict[int, int] = defaultdict(int)
    for _, event in host.events({"ExecutorState::Process"}):
        run_id = host.event_stats(event).get("id")
        if run_id is not None:
            times[run_id] += event.duration
    return times


def _async_functions(host: Plane, events: list[Event], index: int, run_time: dict[int, int]) -> int:
    """The executor time of the functions a `…Produce` event started asynchronously."""
    produce = events[index]
    total = 0
    for event in events[index + 1 :]:
        if event.start >= produce.end:
            break
        if event.name == "InstantiatedCapturedFunction::RunAsync":
            total += run_time.get(host.event_stats(event).get("id", -1), 0)
    return total


# -- devices -------------------------------------------------------------------------------------------


def _device_kind(plane: Plane, line: Line, event: Event) -> str:
    """`kernel`, `memcpy` or `memset`, from the event's name or its CUPTI details."""
    name = event.name.lower()
    if name.startswith("memcpy"):
        return "memcpy"
    if name.startswith("memset"):
        return "memset"
    stats = plane.event_stats(event)
    if "memcpy_details" in stats:
        return "memcpy"
    if "Memset_details" in stats or "memset_details" in stats:
        return "memset"
    return "kernel"


def device_plane(plane: Plane, windows: list[tuple[int, int]], top: int = 3) -> dict[str, Any] | None:
    """A GPU's time inside the profiled steps: kernels, copies, idle gaps and the top kernels.

    Only its CUDA streams count (`Stream #…` lines); the derived lines a tool may add (XLA Ops,
    Steps…) repeat what the streams hold.

    Returns:
        `{"device", "kernel", "memcpy", "busy", "idle", "gaps", "longest_gap_ms", "top_kernels"}`
        (fractions of the steps' time), or None when the plane has no stream events.
    """
    spans: dict[str, list[tuple[int, int]]] = {"kernel": [], "memcpy": [], "memset": []}
    by_kernel: dict[str, int] = defaultdict(int)
    for line in plane.lines:
        if not line.name.startswith(DEVICE_LINE):
            continue
        for event in line.events:
            kind = _device_kind(plane, line, event)
            spans[kind].append((event.start, event.end))
            if kind == "kernel" and _inside(event, windows):
                label = plane.event_stats(event).get("tf_op") or event.name
                by_kernel[short_op_name(str(label))] += event.duration
    everything = [s for kind in spans.values() for s in kind]
    if not everything:
        return None
    if not windows:
        windows = [(min(s for s, _ in everything), max(e for _, e in everything))]
    whole = sum(hi - lo for lo, hi in windows) or 1
    busy = merged(everything)
    idle = [g for w in windows for g in gaps(busy, w) if g[1] - g[0] >= MIN_GAP_PS]
    kernel = sum(length(clipped(merged(spans["kernel"]), w)) for w in windows)
    copies = sum(length(clipped(merged(spans["memcpy"] + spans["memset"]), w)) for w in windows)
    busy_ps = sum(length(clipped(busy, w)) for w in windows)
    kernels_total = sum(by_kernel.values()) or 1
    ranked = sorted(by_kernel.items(), key=lambda item: -item[1])[:top]
    return {
        "device": plane.name.removeprefix("/device:"),
        "kernel": kernel / whole,
        "memcpy": copies / whole,
        "busy": busy_ps / whole,
        "idle": 1 - busy_ps / whole,
        "gaps": len(idle),
        "longest_gap_ms": max((hi - lo for lo, hi in idle), default=0) / 1e9,
        "top_kernels": [{"name": name, "share": ps / kernels_total} for name, ps in ranked],
    }


# -- the verdict -----------------------------------------------------------------------------------------


def percent(fraction: float) -> str:
    """A fraction as a whole percentage, `58 %`."""
    return f"{round(100 * fraction)} %"


def verdict(split: dict[str, float], stages: list[dict[str, Any]], devices: list[dict[str, Any]]) -> dict[str, str]:
    """The one line that says what limits the steps, and what to change.

    Judged on fractions of the step time only: input ≥ 20 % is input-bound (the data cannot keep
    up); else a device busy ≥ 80 % is compute-bound; else host time ≥ 30 % (or an idle device) is
    host-bound (Python and dispatch between the compiled steps); else compute-bound.

    Returns:
        `{"kind": "input" | "compute" | "host", "line": "input-bound: 58 % of each step …"}`.
    """
    device = devices[0] if devices else None
    if split["input"] >= INPUT_BOUND:
        slowest = f" (slowest stage: {stages[0]['stage']}, {stages[0]['ms']:.1f} ms a step)" if stages else ""
        return {
            "kind": "input",
            "line": f"input-bound: {percent(split['input'])} of each step waits on data{slowest}"
            " → `data.cache`, `prefetch`, or more parallel calls",
        }
    if device is not None and device["busy"] >= DEVICE_BUSY:
        return {
            "kind": "compute",
            "line": f"compute-bound: {device['device']} is busy {percent(device['busy'])} of each step"
            " → `train.mixed_precision`, `train.jit_compile`, or a smaller model",
        }
    if split["host"] >= HOST_BOUND or (device is not None and device["idle"] >= 1 - DEVICE_BUSY):
        idle = f"; {device['device']} idles {percent(device['idle'])}" if device is not None else ""
        return {
            "kind": "host",
            "line": f"host-bound: {percent(split['host'])} of each step is Python and dispatch{idle}"
            " → `train.steps_per_execution`, a larger `data.batch_size`, or `train.jit_compile`",
        }
    return {
        "kind": "compute",
        "line": f"compute-bound: {percent(split['compute'])} of each step computes and the data keeps up"
        " → `train.jit_compile`, `train.mixed_precision` on a GPU, or a smaller model",
    }


def summarize(trace: Trace) -> dict[str, Any]:
    """Everything the Profile panel shows, from one read trace (plain floats and strings).

    Raises:
        ValueError: the trace holds no host plane or no marked step.
    """
    if trace.host is None:
        raise ValueError("the trace has no host plane (was the profiler running?)")
    steps = step_windows(trace.host)
    if not steps:
        raise ValueError("the trace holds no training step")
    windows = [(e.start, e.end) for _, e in steps]
    split = step_split(trace.host, steps)
    stages = data_stages(trace.host, windows)
    devices = [d for d in (device_plane(p, windows) for p in trace.devices) if d is not None]
    return {
        "split": {k: split[k] for k in ("input", "compute", "host")},
        "step_ms": split["step_ms"],
        "steps": split["steps"],
        "top_ops": top_ops(trace.host, windows),
        "stages": stages,
        "devices": devices,
        "verdict": verdict(split, stages, devices),
        "host": trace.hostnames[0] if trace.hostnames else "",
    }


def describe(profile: dict[str, Any]) -> list[str]:
    """A `profile` event's fields as plain lines, for `tfbench profile` and headless progress."""
    first, steps = profile.get("first_batch"), profile.get("steps") or profile.get("requested_steps")
    where = f"epoch {profile.get('epoch')}" + (f", batches {first}–{int(first) + int(steps or 0) - 1}" if first else "")
    if profile.get("error"):
        return [f"profile of {where}: {profile['error']}"]
    split = profile.get("split") or {}
    lines = [
        f"profile of {where} ({steps} steps, {float(profile.get('step_ms') or 0):.1f} ms a step)",
        str((profile.get("verdict") or {}).get("line", "")),
        "step: " + "  ".join(f"{k} {percent(float(split.get(k) or 0))}" for k in ("input", "compute", "host")),
    ]
    if profile.get("top_ops"):
        lines.append("top ops (self time):")
        lines += [f"  {percent(o['share']):>5}  {o['name']}  {o['type']}" for o in profile["top_ops"]]
    if profile.get("stages"):
        lines.append("tf.data stages (a step):")
        lines += [f"  {float(s['ms']):8.2f} ms  {s['stage']}" for s in profile["stages"]]
    for d in profile.get("devices") or []:
        lines.append(
            f"{d['device']}: kernels {percent(d['kernel'])}, copies {percent(d['memcpy'])}, idle {percent(d['idle'])}"
            f" ({d['gaps']} gaps, longest {float(d['longest_gap_ms']):.2f} ms)"
        )
    if profile.get("trace"):
        lines.append(f"trace: {profile['trace']}")
    return lines
