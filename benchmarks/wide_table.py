"""How long a wide table takes to reach its first training step (not a test).

A 300-row table of n numeric columns (and a label) is described, loaded, built and trained for one
step in a fresh process — once with the numeric columns packed into one model input (the default
above `max_numeric_inputs`), once with an input per column (`max_numeric_inputs` set above n).
The figures are the medians of the rounds' seconds from the start of `describe` to the end of the
first step (TensorFlow's import not included).

    .venv/bin/python benchmarks/wide_table.py [--columns 500 1000 5000] [--per-column-up-to 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FIRST_STEP = r"""
import sys, time
import tensorflow as tf
from tfbench import build, data
from tfbench.spec import experiment_from_dict
path, limit = sys.argv[1], int(sys.argv[2])
exp = experiment_from_dict({"name": "wide", "data": {"source": "csv:" + path,
    "options": {"label": "y", "max_numeric_inputs": limit}},
    "model": {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]}, "train": {"epochs": 1}})
start = time.perf_counter()
bundle = data.load(exp.data, 42)
model = build.build_model(exp, bundle.info)
model.fit(bundle.train, epochs=1, steps_per_epoch=1, verbose=0)
print(len(model.inputs), time.perf_counter() - start)
"""


def write_wide(path: Path, columns: int, rows: int = 300) -> Path:
    import numpy as np

    x = np.random.default_rng(0).normal(size=(rows, columns)).round(3)
    with open(path, "w") as f:
        f.write(",".join(f"g{i}" for i in range(columns)) + ",y\n")
        for r in range(rows):
            f.write(",".join(map(str, x[r])) + f",{int(x[r, 0] > 0)}\n")
    return path


def first_step(path: Path, limit: int) -> tuple[int, float]:
    """(model inputs, seconds to the end of the first step) in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_STEP, str(path), str(limit)], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[500, 1000, 5000])
    parser.add_argument("--per-column-up-to", type=int, default=1000, help="widest table to try an input per column")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfbench-wide-") as tmp:
        for n in args.columns:
            path = write_wide(Path(tmp) / f"wide{n}.csv", n)
            for label, limit in (("packed", 256), ("an input per column", n + 1)):
                if limit > 256 and n > args.per_column_up_to:
                    continue
                runs = [first_step(path, limit) for _ in range(args.rounds)]
                seconds = statistics.median(s for _, s in runs)
                print(f"{n:>6,} columns, {label} ({runs[0][0]} inputs): first step after {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
