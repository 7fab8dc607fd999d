"""What a large table costs: `tfbench validate` against pyarrow's own read, and a streamed epoch (not a test).

1. Validate: a generated 300,000 × 20 numeric CSV (and a label column) against a 1,000-row copy.
   Each round runs, interleaved, in fresh processes: `tfbench validate` on the copy, on the big
   file, and a plain `pyarrow.csv.read_csv` of the big file into one NumPy array. The figures are
   medians: validate's extra seconds on the big file over the read's seconds (target ≤ 2×), and
   its extra peak resident memory (target ≤ 200 MB).
2. Streaming: one epoch of a small model over 100,000 and over 2,000,000 rows with
   `data.options.stream = true`, each in a fresh process; the figure is the difference of the two
   peak resident memories (target: within 100 MB — memory stays flat as the file grows).

    .venv/bin/python benchmarks/tables.py [--rounds 3] [--stream-rows 100000 2000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLUMNS = 20

READ = r"""
import sys, time
import numpy as np
from pyarrow import csv
start = time.perf_counter()
table = csv.read_csv(sys.argv[1])
x = np.column_stack([c.to_numpy() for c in table.columns])
print(time.perf_counter() - start)
"""

EPOCH = r"""
import sys
from tfbench import build, data
from tfbench.spec import experiment_from_dict
exp = experiment_from_dict({"name": "stream", "data": {"source": "csv:" + sys.argv[1], "batch_size": 1024,
    "options": {"stream": True, "label": "label"}},
    "model": {"layers": [{"type": "Dense", "units": 16, "activation": "relu"},
                         {"type": "Dense", "units": 2, "activation": "softmax"}]}, "train": {"epochs": 1}})
bundle = data.load(exp.data, exp.train.seed)
model = build.build_model(exp, bundle.info)
model.fit(bundle.train, epochs=1, verbose=0)
"""


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """A numeric CSV: COLUMNS float features and a 0/1 label, written in chunks with pyarrow."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(COLUMNS)] + ["label"]
    with csv.CSVWriter(str(path), pa.schema([(n, pa.float64()) for n in names[:-1]] + [("label", pa.int64())])) as out:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            x = rng.normal(size=(n, COLUMNS)).round(4)
            y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
            out.write_table(pa.table([*x.T, y], names=names))
    return path


def measured(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak resident MB, stdout) of a child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}… failed ({child.returncode})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


def preset(folder: Path, csv_path: Path) -> Path:
    path = folder / f"{csv_path.stem}.toml"
    path.write_text(f"""name = "bench"
[data]
source = "csv:{csv_path}"
options = {{ label = "label" }}
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
""")
    return path


def validate_figures(folder: Path, rounds: int) -> dict:
    big = write_table(folder / "big.csv", 300_000)
    small = write_table(folder / "small.csv", 1_000)
    validate = [sys.executable, "-m", "tfbench", "validate"]
    ratios, extra_mb, reads = [], [], []
    for _ in range(rounds):  # interleaved, so a busy moment hits every measurement alike
        small_s, small_mb, _ = measured([*validate, str(preset(folder, small))])
        big_s, big_mb, _ = measured([*validate, str(preset(folder, big))])
        _, _, out = measured([sys.executable, "-c", READ, str(big)])
        read_s = float(out.strip())
        reads.append(read_s)
        ratios.append((big_s - small_s) / read_s)
        extra_mb.append(big_mb - small_mb)
    return {
        "file_mb": big.stat().st_size / 2**20,
        "read_s": statistics.median(reads),
        "ratio": statistics.median(ratios),
        "extra_mb": statistics.median(extra_mb),
    }


def stream_figures(folder: Path, sizes: list[int]) -> dict[int, float]:
    peaks = {}
    for rows in sizes:
        path = write_table(folder / f"stream-{rows}.csv", rows, seed=1)
        seconds, peak, _ = measured([sys.executable, "-c", EPOCH, str(path)])
        peaks[rows] = peak
        print(f"  streamed epoch over {rows:,} rows: {seconds:.1f} s, peak RSS {peak:.0f} MB", flush=True)
        path.unlink()
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-rows", type=int, nargs=2, default=[100_000, 2_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfbench-tables-") as tmp:
        folder = Path(tmp)
        figures = validate_figures(folder, args.rounds)
        print(f"validate, 300,000 x {COLUMNS} CSV ({figures['file_mb']:.0f} MB), median of {args.rounds}:")
        print(f"  pyarrow.csv.read_csv into NumPy: {figures['read_s']:.2f} s")
        print(
            f"  validate beyond a 1,000-row copy: {figures['ratio']:.2f}x that, "
            f"{figures['extra_mb']:.0f} MB more peak RSS"
        )
        peaks = stream_figures(folder, args.stream_rows)
        small, large = args.stream_rows
        print(f"  peak RSS difference, {large:,} vs {small:,} rows: {peaks[large] - peaks[small]:+.0f} MB")


if __name__ == "__main__":
    main()
