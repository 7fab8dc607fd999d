"""What a study costs: `tfbench tune` against the same fits back to back in one plain Keras process.

Side A runs `tfbench tune digits-mlp --trials 20 --parallel 1` (5 epochs a trial, no pruner, so
both sides train the same 20 models fully) as a user would: its whole wall time from the command's
start to its exit, with the worker's TensorFlow import, every trial's run directory, event log,
checkpoints, history and `train.py`. Side B is one plain Python process that imports TensorFlow,
loads the digits once and, for each of the study's 20 parameter sets, builds the same model and
calls `model.fit(train, validation_data=validation, epochs=5)` — its wall time from start to exit.
Target: A ≤ 1.5× B. Two rounds of A then B (with A's parameters); each round's ratio is reported
and their mean.

Memory: the worker prints its resident memory after every trial (`workers.log`); the figure is
the growth from after trial 5 to after trial 20. Target: within 10 %.

Usage:
    python benchmarks/study.py [--trials 20] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLAIN = r"""
import json, sys, time
t0 = time.perf_counter()
import keras, tensorflow as tf
from tfbench import build, data
from tfbench.spec import load_experiment
from tfbench.study.space import trial_experiment

params, epochs = json.loads(sys.argv[1]), int(sys.argv[2])
base = load_experiment("digits-mlp", [f"train.epochs={epochs}"])
info = data.describe(base.data, base.train.seed)
bundle = data.load(base.data, base.train.seed, one_hot=build.needs_one_hot(base, info))
for values in params:
    exp = trial_experiment(base, values, for_trial=True)
    build.apply_seed(exp.train)
    model = build.build_model(exp, bundle.info)
    model.fit(bundle.train, validation_data=bundle.validation, epochs=epochs, verbose=0)
    keras.backend.clear_session()
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")


def run_study(study_dir: Path, trials: int, epochs: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfbench",
            "tune",
            "digits-mlp",
            "--trials",
            str(trials),
            "--parallel",
            "1",
            "--set",
            f"train.epochs={epochs}",
            "--set",
            'tune.pruner="none"',
            "--study-dir",
            str(study_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env(),
        cwd=study_dir.parent,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return seconds


def run_plain(params: list[dict], epochs: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN, json.dumps(params), str(epochs)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    started_to_end = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return started_to_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    from tfbench.study.study import StudyDir

    rounds = []
    with tempfile.TemporaryDirectory(prefix="tfbench-study-bench-") as tmp:
        for n in (1, 2):  # study then plain, twice: the machine's drift shows between the rounds
            study_dir = Path(tmp) / f"study-{n}"
            study_seconds = run_study(study_dir, args.trials, args.epochs)
            params = [r["params"] for r in StudyDir.load(study_dir).rows() if r["state"] == "finished"]
            plain_seconds = run_plain(params, args.epochs)
            log = (study_dir / "workers.log").read_text()
            resident = [float(m) for m in re.findall(r"resident (\d+) MiB", log)]
            rounds.append(
                {
                    "study_seconds": round(study_seconds, 1),
                    "plain_seconds": round(plain_seconds, 1),
                    "ratio": round(study_seconds / plain_seconds, 3),
                    "trials_finished": len(params),
                    "resident_mib_after_trial_5": resident[4] if len(resident) > 4 else None,
                    "resident_mib_after_last_trial": resident[-1] if resident else None,
                    "resident_growth": round(resident[-1] / resident[4] - 1, 4) if len(resident) > 4 else None,
                }
            )
    result = {
        "trials": args.trials,
        "epochs": args.epochs,
        "rounds": rounds,
        "ratio_mean": round(sum(r["ratio"] for r in rounds) / len(rounds), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
