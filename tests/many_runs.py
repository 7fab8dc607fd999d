"""A runs folder of many runs, made from the three recorded runs in `fixtures/runs_dir`.

Each made run is one of the recorded runs with its own name, start time, learning rate, optimizer,
units, batch size, final metrics and status, so filters and sorting have something to tell apart.
The values follow from the run's number alone: the same folder every time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

FIXTURES = Path(__file__).parent / "fixtures" / "runs_dir"
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
OPTIMIZERS = ("Adam", "SGD", "RMSprop", "AdamW")
FILTERS = (8, 16, 32, 64)
BATCH_SIZES = (32, 64, 128)
STATUSES = ("completed", "completed", "early_stopped", "stopped", "failed")
START = 1_793_000_000.0


def made_run_values(index: int) -> dict[str, Any]:
    """What run number `index` is made with (the tests check filters against these)."""
    return {
        "learning_rate": LEARNING_RATES[index % len(LEARNING_RATES)],
        "optimizer": OPTIMIZERS[(index // 5) % len(OPTIMIZERS)],
        "filters": FILTERS[(index // 3) % len(FILTERS)],
        "batch_size": BATCH_SIZES[index % len(BATCH_SIZES)],
        "status": STATUSES[(index // 7) % len(STATUSES)],
        "val_accuracy": round(0.80 + (index * 37 % 200) / 1000, 3),  # 0.800 … 0.999
        "val_loss": round(0.1 + (index * 53 % 400) / 1000, 3),
    }


def _edited_events(lines: list[str], index: int, values: dict[str, Any], experiment: dict[str, Any]) -> list[str]:
    """The recorded log re-timed to this run's start, with its experiment, final metrics and status."""
    first = json.loads(lines[0])
    shift = START + index * 600 - float(first["time"])
    out = []
    for line in lines:
        event = json.loads(line)
        event["time"] = round(float(event["time"]) + shift, 3)
        if event["event"] == "run_started":
            event["experiment"] = experiment
            event["run_dir"] = ""
        elif event["event"] == "run_ended":
            event["status"] = values["status"]
            final = dict(event.get("final") or {})
            final.update(val_accuracy=values["val_accuracy"], val_loss=values["val_loss"])
            event["final"] = final
            event["best"] = dict(event.get("best") or {}, monitor="val_loss", value=values["val_loss"])
            if values["status"] == "failed":
                event["reason"] = "loss became NaN"
        out.append(json.dumps(event, separators=(",", ":")))
    return out


def make_runs(runs_dir: Path, count: int = 1000) -> list[Path]:
    """Write `count` run directories into `runs_dir` (created); returns them in the order made."""
    sources = sorted(p for p in FIXTURES.iterdir() if (p / "events.jsonl").exists())
    recorded = [
        (tomllib.loads((s / "experiment.toml").read_text()), (s / "events.jsonl").read_text().splitlines())
        for s in sources[:2]  # the two finished recordings (the third stops early without an end)
    ]
    runs_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        values = made_run_values(index)
        experiment, lines = recorded[index % len(recorded)]
        experiment = json.loads(json.dumps(experiment))
        experiment["name"] = f"digits-{'cnn' if index % 2 else 'mlp'}"
        experiment["train"]["optimizer"] = {"type": values["optimizer"], "learning_rate": values["learning_rate"]}
        experiment["data"]["batch_size"] = values["batch_size"]
        experiment["model"]["layers"][1]["filters"] = values["filters"]
        run = runs_dir / f"{experiment['name']}-{index:04d}"
        run.mkdir()
        (run / "experiment.toml").write_text(tomli_w.dumps(experiment))
        (run / "events.jsonl").write_text("\n".join(_edited_events(lines, index, values, experiment)) + "\n")
        made.append(run)
    return made


def copy_fixture_runs(runs_dir: Path) -> Path:
    """The three recorded runs themselves, copied into `runs_dir`."""
    shutil.copytree(FIXTURES, runs_dir)
    return runs_dir
