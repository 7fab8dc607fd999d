"""What profiling costs and how long judging a trace takes.

One Run of a small convnet on in-memory data asks, through its controls, for a 10-step profile in
every other epoch (the epochs between are the same steps unprofiled), so profiled and unprofiled
steps alternate in one process and the machine's drift hits both alike. Reported:

- the profiled steps' time against the same steps of the neighbouring unprofiled epochs (median of
  the per-pair ratios; target ≤ 1.10), timed by a probe callback from one batch's start to the next;
  the capture's one-off cost (starting the profiler, stopping it, writing and judging the trace,
  in the batches before and after it) is reported apart;
- the unprofiled epochs of that Run against the same epochs of a Run whose Experiment never asks
  for a profile (interleaved runs, median of per-round ratios; target ≈ 1.00: the profiler's hook
  costs nothing until asked);
- the time `judge_trace` takes to read and judge one 10-step trace (median and worst; target ≤ 1 s).

Usage:
    python benchmarks/profile.py [--rounds 5] [--epochs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = 12  # batches an epoch; captures take batches 1-10 of the profiled epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=9)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from tfbench.data.info import DataBundle, DataInfo
    from tfbench.engine import events as ev
    from tfbench.engine.profiling import judge_trace
    from tfbench.engine.run import Run
    from tfbench.spec import experiment_from_dict

    shape = (24, 24, 3)
    x = np.random.default_rng(0).random((STEPS * 32, *shape), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 4, STEPS * 32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).cache().prefetch(2)
    info = DataInfo(source="builtin:bench", input_shape=shape, label_kind="categorical", num_classes=4)
    layers = [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 4, "activation": "softmax"},
    ]
    exp = experiment_from_dict(
        {"name": "bench", "model": {"layers": layers}, "train": {"epochs": args.epochs}, "export": {"formats": []}}
    )

    def model():
        keras.utils.set_random_seed(1)
        m = keras.Sequential(
            [
                keras.Input(shape),
                keras.layers.Conv2D(32, 3, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(4, activation="softmax"),
            ]
        )
        m.compile("adam", "sparse_categorical_crossentropy")
        return m

    class Clock(keras.callbacks.Callback):
        """Batch starts by epoch; asks for a profile at the start of every other epoch when told to."""

        def __init__(self, ask: bool):
            super().__init__()
            self.ask, self.run, self.starts = ask, None, {}

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.starts[epoch] = []
            if self.ask and epoch >= 2 and epoch % 2 == 0:
                self.run.controls.profile(10)

        def on_train_batch_begin(self, batch, logs=None):
            self.starts[self.epoch].append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            self.starts[epoch].append(time.perf_counter())

        def steps(self, epoch, first=1, last=9):
            """Batches `first`..`last` (0-based), each from its start to the next one's: by default the
            steps wholly inside a capture of batches 0-9 (its start and its stop fall outside them)."""
            s = self.starts[epoch]
            return sum(s[i + 1] - s[i] for i in range(first, last + 1))

    def one(ask: bool, runs_dir: str):
        clock = Clock(ask)
        run = Run(exp, runs_dir=runs_dir, extra_callbacks=[clock])
        clock.run = run
        run.prepare(bundle=DataBundle(train=data, validation=None, info=info, steps_per_epoch=STEPS), model=model())
        assert run.train() == "completed", run.reason
        profiles = [e for e in ev.read_events(run.run_dir) if e["event"] == ev.PROFILE]
        return clock, run.run_dir, profiles

    pairs, plain_ratio, parse, once = [], [], [], []
    with tempfile.TemporaryDirectory() as runs_dir:
        one(True, runs_dir)  # warm-up
        for r in range(args.rounds):
            order = [True, False] if r % 2 == 0 else [False, True]
            done = {ask: one(ask, runs_dir) for ask in order}
            asked, run_dir, profiles = done[True]
            plain = done[False][0]
            for epoch in range(2, args.epochs - 1, 2):  # profiled epoch vs the unprofiled ones beside it
                beside = statistics.mean([asked.steps(epoch - 1), asked.steps(epoch + 1)])
                pairs.append(asked.steps(epoch) / beside)
                ends = [asked.steps(e, 0, 0) + asked.steps(e, 10, 10) for e in (epoch - 1, epoch, epoch + 1)]
                once.append(ends[1] - (ends[0] + ends[2]) / 2)
            for epoch in range(3, args.epochs, 2):  # unprofiled epochs vs a run that never profiles
                plain_ratio.append(asked.steps(epoch) / plain.steps(epoch))
            for p in profiles:
                parse.append(judge_trace(Path(run_dir) / p["trace"])["parse_seconds"])
            print(
                f"round {r + 1}: profiled/unprofiled {statistics.median(pairs):.3f}  "
                f"unprofiled/never {statistics.median(plain_ratio):.3f}  parse {statistics.median(parse):.3f}s",
                flush=True,
            )
    med = statistics.median
    print(f"\nprofiled steps vs the same steps unprofiled: {med(pairs):.3f}x (median of {len(pairs)} pairs; ≤ 1.10)")
    print(f"unprofiled epochs vs a run that never profiles: {med(plain_ratio):.3f}x (median of {len(plain_ratio)})")
    print(f"one-off cost of a capture (start, stop, write, judge): median {med(once) * 1000:.0f} ms")
    print(f"judging a 10-step trace: median {med(parse):.3f}s, worst {max(parse):.3f}s over {len(parse)} (≤ 1 s)")


if __name__ == "__main__":
    main()
