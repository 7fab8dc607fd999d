"""How an export's latency is measured: one sample at a time, on one thread, many times — no UI.

A multi-threaded figure depends on what else the machine runs, so every runtime (Keras/TensorFlow,
LiteRT, ONNX Runtime, OpenVINO) is timed the same way: a few warm-up calls, then timed calls of one
sample — at least LATENCY_RUNS of them and for at least MIN_SECONDS, since fifty calls of a 20 µs
model fit in one scheduler time slice and a busy machine would make the median a coin toss —
reported as the median with the 10th and 90th percentiles as its spread. `benchmarks/exports.py`
checks that a second measurement of the same file lands within ±15 % of the first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

LATENCY_RUNS = 50
"""Timed single-sample calls per export at least (the median of ≥ 30), after WARM_UP untimed ones."""
MIN_SECONDS = 0.5
"""Timed calls go on at least this long, so a fast model's median spans many time slices."""
MAX_RUNS = 20_000
"""Timed calls at most (a 10 µs model reaches MIN_SECONDS well before)."""
WARM_UP = 5
"""Untimed calls first: the first calls allocate, compile and fill caches."""


def time_calls(
    call: Callable[[], Any], runs: int = LATENCY_RUNS, threads: int = 1, min_seconds: float = MIN_SECONDS
) -> dict[str, Any]:
    """Time `call` (one single-sample inference) at least `runs` times and `min_seconds` long.

    Returns:
        `{"latency_ms": median, "latency_p10_ms", "latency_p90_ms", "latency_runs", "latency_threads"}`.
    """
    import numpy as np

    for _ in range(WARM_UP):
        call()
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < runs or time.perf_counter() - began < min_seconds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {
        "latency_ms": float(np.median(times)),
        "latency_p10_ms": float(np.percentile(times, 10)),
        "latency_p90_ms": float(np.percentile(times, 90)),
        "latency_runs": len(times),
        "latency_threads": threads,
    }


def single_thread_tensorflow() -> None:
    """Ask TensorFlow for one intra-op and one inter-op thread, so Keras and SavedModel timings compare
    with the other runtimes'. Only possible before TensorFlow has run anything; otherwise a no-op
    (`tensorflow_threads` then says how many it uses)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the context already runs: keep its pools
        pass


def tensorflow_threads() -> int:
    """The intra-op threads TensorFlow's kernels use (its setting, or every core when it is 0)."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
