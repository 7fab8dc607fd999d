"""`tfbench predict --input` on a CSV larger than memory should hold: peak memory and output as it reads (not a test).

Trains a 2-epoch `penguins` run, writes a generated CSV of the penguins' columns (labels included)
of the asked size, and runs `tfbench predict RUN --input BIG.csv --output OUT.csv` in a child
process. It reports the child's peak resident memory (`wait4`'s `ru_maxrss`), its wall time and
rows per second, and the output file's size sampled every half second — rows are written as the
file is read when the output grows steadily from the first seconds rather than at the end.

    .venv/bin/python benchmarks/predict_memory.py [--size-mb 1024] [--folder /tmp]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def write_penguins_like(path: Path, size_mb: int, seed: int = 0) -> int:
    """A CSV with the penguins' columns and random plausible values, about `size_mb` MiB; its rows."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    rows = 0
    chunk = 200_000
    with csv.CSVWriter(
        str(path),
        pa.schema(
            [
                ("species", pa.string()),
                ("island", pa.string()),
                ("bill_length_mm", pa.float64()),
                ("bill_depth_mm", pa.float64()),
                ("flipper_length_mm", pa.float64()),
                ("body_mass_g", pa.float64()),
                ("sex", pa.string()),
                ("year", pa.int64()),
            ]
        ),
    ) as out:
        while path.stat().st_size < size_mb * 2**20:
            species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], chunk)
            out.write_table(
                pa.table(
                    {
                        "species": species,
                        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], chunk),
                        "bill_length_mm": rng.normal(44, 5, chunk).round(1),
                        "bill_depth_mm": rng.normal(17, 2, chunk).round(1),
                        "flipper_length_mm": rng.normal(200, 14, chunk).round(0),
                        "body_mass_g": rng.normal(4200, 800, chunk).round(0),
                        "sex": rng.choice(["male", "female"], chunk),
                        "year": rng.integers(2007, 2010, chunk),
                    }
                )
            )
            rows += chunk
    return rows


def train(folder: Path) -> Path:
    runs = folder / "runs"
    command = [sys.executable, "-m", "tfbench", "run", "penguins", "--set", "train.epochs=2"]
    command += ["--set", "export.formats=[]", "--runs-dir", str(runs)]
    subprocess.run(command, check=True, env=ENV, cwd=REPO, capture_output=True)
    return next(runs.iterdir())


def predict(run: Path, big: Path, out: Path) -> tuple[float, float, list[tuple[float, int]], str]:
    """(wall seconds, peak resident MB, [(seconds, output bytes)], stdout) of `tfbench predict`."""
    command = [sys.executable, "-m", "tfbench", "predict", str(run), "--input", str(big), "--output", str(out)]
    start = time.perf_counter()
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.perf_counter() - start, out.stat().st_size if out.exists() else 0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=ENV, cwd=REPO, text=True)
        stdout = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)  # before Popen reaps it: the child's own peak memory
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        if child.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"predict failed ({child.returncode}): {errors.read()[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, samples, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated CSV (MiB)")
    parser.add_argument("--folder", default=tempfile.gettempdir(), help="where the CSV and the run go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfbench-predict-", dir=args.folder) as tmp:
        folder = Path(tmp)
        run = train(folder)
        big = folder / "big.csv"
        rows = write_penguins_like(big, args.size_mb)
        print(f"input: {big.stat().st_size / 2**20:,.0f} MiB, {rows:,} rows", flush=True)
        out = folder / "predictions.csv"
        seconds, peak, samples, stdout = predict(run, big, out)
        print(f"predict --input: {seconds:.0f} s ({rows / seconds:,.0f} rows/s), peak RSS {peak:,.0f} MB")
        print(f"  {stdout.strip().splitlines()[-1]}")
        print(f"  output {out.stat().st_size / 2**20:,.0f} MiB; written as it read (seconds: MiB so far):")
        step = max(1, len(samples) // 10)
        print("   " + ", ".join(f"{t:.0f}: {b / 2**20:,.0f}" for t, b in samples[::step]))


if __name__ == "__main__":
    main()
