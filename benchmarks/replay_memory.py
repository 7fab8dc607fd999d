"""Memory of the train screen replaying a very long run: does resident memory stay flat?

Writes a 100,000-batch event log (100 epochs of 1,000 batches, with epoch ends, system samples
and checkpoints), opens the train screen on it headless at 100x32, and measures the process's
resident memory once the screen is up on the run's first event and again after it has folded
all of them and redrawn its curves. Target: growth under 20 MB.

    .venv/bin/python benchmarks/replay_memory.py [--batches 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.app import App  # noqa: E402

from tfbench.engine.events import encode  # noqa: E402
from tfbench.screens.training import TrainingScreen  # noqa: E402
from tfbench.widgets.curves import Curves  # noqa: E402

STEPS = 1000


def log_lines(batches: int) -> list[str]:
    """A synthetic log: run_started, then `batches` batch events with epoch bookkeeping."""
    t = 1_800_000_000.0
    epochs = max(1, batches // STEPS)
    lines = [
        encode(
            {
                "event": "run_started",
                "time": t,
                "v": 1,
                "experiment": {"name": "long-run"},
                "model": {"total_params": 123456},
                "data": {"label_kind": "categorical"},
                "steps_per_epoch": STEPS,
                "epochs": epochs,
                "initial_epoch": 0,
                "pid": None,
            }
        )
    ]
    for i in range(batches):
        epoch, step = divmod(i, STEPS)
        t += 0.01
        if step == 0:
            lines.append(encode({"event": "epoch_started", "time": t, "v": 1, "epoch": epoch + 1, "epochs": epochs}))
        loss = 2.0 / (1 + i / 5000)
        lines.append(
            encode(
                {
                    "event": "batch",
                    "time": t,
                    "v": 1,
                    "epoch": epoch + 1,
                    "step": step + 1,
                    "steps": STEPS,
                    "logs": {"loss": loss, "accuracy": 1 - loss / 2.5},
                    "samples_per_sec": 3200.0,
                    "step_seconds": 0.01,
                }
            )
        )
        if step % 200 == 0:
            lines.append(
                encode(
                    {
                        "event": "system",
                        "time": t,
                        "v": 1,
                        "cpu_percent": 150.0,
                        "rss_mb": 900.0,
                        "ram_used_mb": 4000.0,
                        "ram_total_mb": 8000.0,
                        "gpus": [],
                        "tf_memory": {},
                    }
                )
            )
        if step == STEPS - 1:
            logs = {"loss": loss, "accuracy": 1 - loss / 2.5, "val_loss": loss * 1.1, "val_accuracy": 1 - loss / 2.4}
            lines.append(
                encode(
                    {
                        "event": "epoch_ended",
                        "time": t,
                        "v": 1,
                        "epoch": epoch + 1,
                        "logs": logs,
                        "lr": 0.001,
                        "seconds": 10.0,
                        "samples_per_sec": 3200.0,
                    }
                )
            )
            lines.append(
                encode(
                    {
                        "event": "checkpoint",
                        "time": t,
                        "v": 1,
                        "kind": "last",
                        "path": "checkpoints/last.keras",
                        "epoch": epoch + 1,
                    }
                )
            )
    return lines


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


class Host(App):
    def __init__(self, screen: TrainingScreen):
        super().__init__()
        self.train_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.train_screen)


async def measure(batches: int) -> dict:
    lines = log_lines(batches)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.jsonl"
        log.write_text(lines[0] + "\n")
        screen = TrainingScreen(Path(tmp), clock=lambda: None, bell=False, poll=0.05)
        async with Host(screen).run_test(size=(100, 32)) as pilot:
            while not screen.caught_up:
                await pilot.pause(0.05)
            screen.query_one(Curves).redraw()
            await pilot.pause(0.2)
            before = rss_mb()
            with open(log, "a") as handle:
                handle.write("\n".join(lines[1:]) + "\n")
            del lines[1:]
            start = time.perf_counter()
            total = None
            while True:
                await pilot.pause(0.05)
                total = total or sum(1 for _ in open(log))
                if screen.state.events_seen >= total:
                    break
            seconds = time.perf_counter() - start
            screen.query_one(Curves).redraw()
            await pilot.pause(0.2)
            after = rss_mb()
            state = screen.state
            return {
                "batches": batches,
                "events": state.events_seen,
                "log_mb": round(log.stat().st_size / 2**20, 1),
                "replay_seconds": round(seconds, 2),
                "rss_before_mb": round(before, 1),
                "rss_after_mb": round(after, 1),
                "rss_growth_mb": round(after - before, 1),
                "batch_points_kept": len(state.batch_loss),
                "epochs": len(state.epoch_numbers),
                "log_lines_kept": len(state.log),
                "curve_builds": screen.query_one(Curves).builds,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100_000)
    args = parser.parse_args()
    result = asyncio.run(measure(args.batches))
    result["target_growth_mb"] = 20
    result["ok"] = result["rss_growth_mb"] < 20
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
