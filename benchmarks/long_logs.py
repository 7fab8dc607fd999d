"""`tfbench runs`, `resume` and `watch` on a run whose event log is 200 MB: peak memory and time.

Writes one finished run with a ~200 MB `events.jsonl` (1,000-batch epochs with system samples and
checkpoints, as a long run leaves it) and runs, each as a user would in its own process with
stdout a pipe: `tfbench runs DIR --json`, `tfbench resume RUN` (refused: the run is finished) and
`tfbench watch RUN` (plain lines). For each it reports the median wall time and peak resident
memory (`wait4`'s maxrss) over the rounds. Target: `runs` under 100 MB.

With `--baseline CHECKOUT` the same commands also run from another checkout of tfbench (say
/work/main before the change), round by round beside this one, and the ratios are reported.

    .venv/bin/python benchmarks/long_logs.py [--megabytes 200] [--rounds 3] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from long_logs import peak_rss, write_long_run  # noqa: E402

COMMANDS = {
    "runs": lambda runs, run: ["runs", str(runs), "--json"],
    "resume (refused)": lambda runs, run: ["resume", str(run)],
    "watch (plain)": lambda runs, run: ["watch", str(run)],
}


def measure(checkout: Path, args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak resident MB, exit code) of `python -m tfbench ARGS` run from `checkout`
    (started in `cwd`, away from any checkout, so the current directory's tfbench does not shadow it)."""
    env = dict(os.environ, PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    start = time.perf_counter()
    code, _, _, peak = peak_rss([sys.executable, "-m", "tfbench", *args], env, cwd)
    return time.perf_counter() - start, peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout of tfbench to compare with")
    args = parser.parse_args()
    sides = {"this": REPO} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        run = write_long_run(runs / "long-20250101-000000", args.megabytes)
        log_mb = (run / "events.jsonl").stat().st_size / 2**20
        samples: dict[str, dict[str, list[tuple[float, float, int]]]] = {n: {s: [] for s in sides} for n in COMMANDS}
        for _ in range(args.rounds):
            for name, command in COMMANDS.items():
                for side, checkout in sides.items():
                    samples[name][side].append(measure(checkout, command(runs, run), Path(tmp)))
    result: dict = {"log_mb": round(log_mb, 1), "rounds": args.rounds, "commands": {}}
    for name, by_side in samples.items():
        row = {}
        for side, runs_of in by_side.items():
            row[side] = {
                "median_seconds": round(statistics.median(s for s, _, _ in runs_of), 2),
                "median_peak_mb": round(statistics.median(m for _, m, _ in runs_of), 1),
                "exit_codes": sorted({c for _, _, c in runs_of}),
            }
        if "baseline" in row:
            row["time_ratio"] = round(row["this"]["median_seconds"] / row["baseline"]["median_seconds"], 3)
            row["memory_ratio"] = round(row["this"]["median_peak_mb"] / row["baseline"]["median_peak_mb"], 3)
        result["commands"][name] = row
    result["target_runs_peak_mb"] = 100
    result["ok"] = result["commands"]["runs"]["this"]["median_peak_mb"] < 100
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
