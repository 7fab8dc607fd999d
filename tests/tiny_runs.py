"""Tiny experiments for tests that train, and helpers to follow the runner processes they start.

`spiral_preset` is a two-layer MLP on the bundled 2-D spiral (binary labels, trains in seconds);
`digits_preset` a softmax classifier on the bundled 8x8 digits. Their arguments are the knobs the
tests turn; `write_preset` puts a preset's text in a file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tfbench.engine import events as ev

REPO = Path(__file__).resolve().parent.parent

PRESET = """
name = "{name}"
[data]
source = "{source}"
batch_size = {batch}
{layers}
[train]
epochs = {epochs}
optimizer = {{ type = "{optimizer}", learning_rate = {lr} }}
loss = "{loss}"
metrics = ["accuracy"]
seed = {seed}
{extra}
"""

SPIRAL_LAYERS = """
[[model.layers]]
type = "Dense"
units = {units}
activation = "relu"
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""

DIGITS_LAYERS = """
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Dense"
units = 10
activation = "softmax"
"""


def spiral_preset(name: str = "tiny", epochs: int = 3, batch: int = 32, units: int = 16,
                  optimizer: str = "Adam", lr: float = 1e-2, seed: int = 7, extra: str = "") -> str:
    """A preset's text: Dense(units, relu) → Dense(1, sigmoid) on builtin:spiral; `extra` ends [train]."""
    return PRESET.format(name=name, source="builtin:spiral", batch=batch, layers=SPIRAL_LAYERS.format(units=units).strip(),
                         epochs=epochs, optimizer=optimizer, lr=lr, loss="binary_crossentropy", seed=seed, extra=extra)


def digits_preset(name: str = "digits", epochs: int = 3, batch: int = 8, lr: float = 1e-3, seed: int = 5,
                  extra: str = "") -> str:
    """A preset's text: Flatten → Dense(10, softmax) on builtin:digits; `extra` ends [train]."""
    return PRESET.format(name=name, source="builtin:digits", batch=batch, layers=DIGITS_LAYERS.strip(),
                         epochs=epochs, optimizer="Adam", lr=lr, loss="sparse_categorical_crossentropy",
                         seed=seed, extra=extra)


def write_preset(folder: Path, text: str, filename: str = "preset.toml") -> Path:
    """Write preset text (UTF-8) to `folder/filename` and return the path."""
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def runner_env() -> dict[str, str]:
    """The environment for a runner subprocess: this checkout importable, TensorFlow quiet on the CPU."""
    return dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def wait_for_event(run_dir: Path, predicate, timeout: float = 90.0) -> dict:
    """The first event of the run's log matching `predicate` (fails after `timeout`, with the runner's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / ev.EVENTS_FILE).exists():
            for event in ev.read_events(run_dir):
                if predicate(event):
                    return event
        time.sleep(0.05)
    log = (run_dir / "runner.log").read_text() if (run_dir / "runner.log").exists() else ""
    raise AssertionError(f"no such event within {timeout}s; runner.log:\n{log[-2000:]}")
