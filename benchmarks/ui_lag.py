"""Is the live view cheap? Event-loop lag of the TUI while its runner trains, and what the view
costs the runner's throughput.

The model is the keras.io MNIST convnet (Conv2D 32 → pool → Conv2D 64 → pool → Flatten →
Dropout 0.5 → Dense 10) on synthetic MNIST-shaped data (28x28x1 uint8, 10 classes) written to an
`.npz` in a temporary folder, with a preset beside it. Each round trains it twice in a runner
process, in alternating order:

- view: the workbench App (headless, 100x32, the real train screen) starts the runner with
  Ctrl+R and follows it, while a probe on the App's event loop sleeps 20 ms at a time and records
  how late it wakes (the lag a keypress would see). Lag counts from the first batch to the end.
- no view: the same runner started directly, waited on by a 1 s poll of its log.

Throughput is the runner's own samples/s from its `epoch_ended` events, epoch 1 (tracing and
warm-up) left out; the ratio is view / no view, median over rounds.
Targets (DESIGN.md): lag p95 ≤ 30 ms, max ≤ 100 ms; throughput ratio ≥ 0.95.

    .venv/bin/python benchmarks/ui_lag.py [--rounds 3] [--epochs 4] [--samples 12000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESET = """
name = "mnist-convnet-synthetic"
description = "The keras.io MNIST convnet on synthetic MNIST-shaped data."

[data]
source = "npz:{npz}"
validation_split = 0.1
batch_size = 128

[[model.layers]]
type = "Rescaling"
scale = 0.00392156862745098

[[model.layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"

[[model.layers]]
type = "MaxPooling2D"
pool_size = 2

[[model.layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
activation = "relu"

[[model.layers]]
type = "MaxPooling2D"
pool_size = 2

[[model.layers]]
type = "Flatten"

[[model.layers]]
type = "Dropout"
rate = 0.5

[[model.layers]]
type = "Dense"
units = 10
activation = "softmax"

[train]
epochs = {epochs}
optimizer = {{ type = "Adam", learning_rate = 1e-3 }}
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
seed = 42

[export]
formats = []
"""


PROBE_SECONDS = 0.02  # the probe wakes 50 times a second; it must not be a load of its own


def write_data(folder: Path, samples: int) -> Path:
    """MNIST-shaped digits stand-ins: a blurred template per class plus noise, as uint8."""
    import numpy as np

    rng = np.random.default_rng(0)
    templates = rng.random((10, 28, 28)) > 0.8
    y = rng.integers(0, 10, samples)
    x = templates[y] * 180 + rng.integers(0, 75, (samples, 28, 28))
    path = folder / "mnist_like.npz"
    np.savez(path, x=x.astype("uint8")[..., None], y=y.astype("int64"))
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def throughput(run_dir: Path) -> float:
    """Median samples/s of the run's epochs after the first."""
    from tfbench.engine.events import read_events

    epochs = [e for e in read_events(run_dir) if e["event"] == "epoch_ended"]
    rates = [float(e["samples_per_sec"]) for e in epochs[1:] if e.get("samples_per_sec")]
    return statistics.median(rates) if rates else float("nan")


def ended(run_dir: Path) -> dict | None:
    from tfbench.engine.events import read_events

    try:
        return next((e for e in reversed(read_events(run_dir)) if e["event"] == "run_ended"), None)
    except OSError:
        return None


def run_without_view(experiment, runs_dir: Path) -> dict:
    from tfbench.engine.control import start_runner

    run_dir = start_runner(experiment, runs_dir)
    while (end := ended(run_dir)) is None:
        time.sleep(1.0)
    return {"run_dir": run_dir, "status": end["status"], "samples_per_sec": throughput(run_dir)}


async def _run_with_view(experiment, runs_dir: Path) -> dict:
    # FixedEngineCalls: the App's own background Keras warm-up is left out, as it happens once at
    # start-up and not while a run is being watched.
    import psutil

    from tfbench.app import make_app
    from tfbench.engine_calls import FixedEngineCalls
    from tfbench.screens.training import TrainingScreen
    from tfbench.widgets.curves import Curves

    app = make_app(experiment=experiment, runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    lags: list[tuple[float, float]] = []
    costs: dict[str, list[float]] = {"curve_build": [], "fold": []}

    def timed(function, key):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                costs[key].append(1000 * (time.perf_counter() - start))

        return wrapper

    # What the view's own work costs per call, to tell its spikes from the CPU being busy elsewhere.
    Curves._build = timed(Curves._build, "curve_build")
    Curves._build_in_thread = timed(Curves._build_in_thread, "curve_build")
    TrainingScreen.on_events_read = timed(TrainingScreen.on_events_read, "fold")
    me = psutil.Process()
    period = PROBE_SECONDS

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            lags.append((time.time(), loop.time() - start - period))

    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.get_screen("train")
        assert isinstance(screen, TrainingScreen)
        screen.auto_evaluate = False  # the evaluation after the run is not part of watching it
        task = asyncio.ensure_future(probe())
        await pilot.press("ctrl+r")
        first_batch = None
        cpu_start = 0.0
        while not screen.state.ended:
            await asyncio.sleep(0.25)
            if first_batch is None and screen.state.step:
                first_batch = time.time()
                cpu_start = sum(me.cpu_times()[:2])
        end_time = screen.state.finished_at or time.time()
        cpu_seconds = sum(me.cpu_times()[:2]) - cpu_start
        task.cancel()
        run_dir = screen.run_dir
        status = screen.state.status
        builds = screen.query_one("#curves").builds
    window = [lag for t, lag in lags if first_batch is not None and first_batch <= t <= end_time]
    return {
        "run_dir": run_dir,
        "status": status,
        "samples_per_sec": throughput(run_dir),
        "lags_ms": [1000 * lag for lag in window],
        "curve_builds": builds,
        "seconds_watched": end_time - (first_batch or end_time),
        "view_cpu_seconds": cpu_seconds,
        "curve_build_max_ms": max(costs["curve_build"], default=0.0),
        "fold_max_ms": max(costs["fold"], default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--poll", type=float, default=None, help="The train screen's log poll, seconds.")
    args = parser.parse_args()
    if args.poll:
        import tfbench.screens.training as training

        training.POLL_INTERVAL = args.poll

    from tfbench.spec import load_experiment

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        npz = write_data(folder, args.samples)
        preset = folder / "mnist-convnet.toml"
        preset.write_text(PRESET.format(npz=npz, epochs=args.epochs))
        experiment = load_experiment(preset)
        runs_dir = folder / "runs"
        rounds = []
        for r in range(args.rounds):
            order = ("view", "no view") if r % 2 == 0 else ("no view", "view")
            result = {}
            for kind in order:
                if kind == "view":
                    result[kind] = asyncio.run(_run_with_view(experiment, runs_dir))
                else:
                    result[kind] = run_without_view(experiment, runs_dir)
            lags = result["view"]["lags_ms"]
            row = {
                "round": r + 1,
                "order": " then ".join(order),
                "view_samples_per_sec": round(result["view"]["samples_per_sec"], 1),
                "no_view_samples_per_sec": round(result["no view"]["samples_per_sec"], 1),
                "ratio": round(result["view"]["samples_per_sec"] / result["no view"]["samples_per_sec"], 3),
                "lag_p50_ms": round(percentile(lags, 50), 2),
                "lag_p95_ms": round(percentile(lags, 95), 2),
                "lag_max_ms": round(max(lags), 2) if lags else None,
                "lag_samples": len(lags),
                "curve_builds": result["view"]["curve_builds"],
                "seconds_watched": round(result["view"]["seconds_watched"], 1),
                "view_cpu_percent": round(
                    100 * result["view"]["view_cpu_seconds"] / max(1e-9, result["view"]["seconds_watched"]), 1
                ),
                "curve_build_max_ms": round(result["view"]["curve_build_max_ms"], 1),
                "fold_max_ms": round(result["view"]["fold_max_ms"], 1),
                "statuses": [result["view"]["status"], result["no view"]["status"]],
            }
            rounds.append(row)
            print(json.dumps(row), flush=True)
            row["_lags"] = lags
        all_lags = [lag for row in rounds for lag in row.pop("_lags")]
        summary = {
            "rounds": args.rounds,
            "epochs": args.epochs,
            "samples": args.samples,
            "cpus": os.cpu_count(),
            "throughput_ratio_median": round(statistics.median(row["ratio"] for row in rounds), 3),
            "lag_p50_ms": round(percentile(all_lags, 50), 2),
            "lag_p95_ms": round(percentile(all_lags, 95), 2),
            "lag_max_ms": round(max(all_lags), 2) if all_lags else None,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "targets": {"lag_p95_ms": 30, "lag_max_ms": 100, "throughput_ratio": 0.95},
        }
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
