"""Tiny experiments for tests that train, and helpers to follow the runner processes they start.

`spiral_preset` is a two-layer MLP on the bundled 2-D spiral (binary labels, trains in seconds);
`digits_preset` a softmax classifier on the bundled 8x8 digits; `images_preset` one on a PNG folder
`png_folder` writes (a streamed source, so `data.cache` applies). Their arguments are the knobs the
tests turn; `write_preset` puts a preset's text in a file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from no_network.sitecustomize import pythonpath

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


def spiral_preset(
    name: str = "tiny",
    epochs: int = 3,
    batch: int = 32,
    units: int = 16,
    optimizer: str = "Adam",
    lr: float = 1e-2,
    seed: int = 7,
    extra: str = "",
) -> str:
    """A preset's text: Dense(units, relu) → Dense(1, sigmoid) on builtin:spiral; `extra` ends [train]."""
    return PRESET.format(
        name=name,
        source="builtin:spiral",
        batch=batch,
        layers=SPIRAL_LAYERS.format(units=units).strip(),
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        loss="binary_crossentropy",
        seed=seed,
        extra=extra,
    )


def digits_preset(
    name: str = "digits", epochs: int = 3, batch: int = 8, lr: float = 1e-3, seed: int = 5, extra: str = ""
) -> str:
    """A preset's text: Flatten → Dense(10, softmax) on builtin:digits; `extra` ends [train]."""
    return PRESET.format(
        name=name,
        source="builtin:digits",
        batch=batch,
        layers=DIGITS_LAYERS.strip(),
        epochs=epochs,
        optimizer="Adam",
        lr=lr,
        loss="sparse_categorical_crossentropy",
        seed=seed,
        extra=extra,
    )


def write_preset(folder: Path, text: str, filename: str = "preset.toml") -> Path:
    """Write preset text (UTF-8) to `folder/filename` and return the path."""
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def runner_env() -> dict[str, str]:
    """The environment for a runner subprocess: this checkout importable, TensorFlow quiet on the CPU."""
    return dict(os.environ, PYTHONPATH=pythonpath(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def tfbench_process(
    *args: object, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`python -m tfbench ARGS` to its end in a child process.

    For what only a process shows: signals and kills, a fresh interpreter's imports, a second process
    beside the first. Each call starts TensorFlow anew (seconds); `tfbench_here` does not.
    """
    return subprocess.run(
        [sys.executable, "-m", "tfbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or runner_env(),
        timeout=timeout,
        cwd=cwd,
    )


def tfbench_here(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`tfbench ARGS` run in this process through click's test runner, answered like `tfbench_process`.

    The command, its exit code and its output are the real ones; TensorFlow is already imported here, so
    a call costs only its own work. `env` adds to (not replaces) the environment for the call.
    """
    from click.testing import CliRunner

    from tfbench.cli import cli

    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return subprocess.CompletedProcess(["tfbench", *map(str, args)], result.exit_code, result.stdout, result.stderr)


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


def png_bytes(pixels) -> bytes:
    """An 8-bit RGB PNG of `pixels` (height × width × 3 uint8), written without TensorFlow."""
    import struct
    import zlib

    import numpy as np

    pixels = np.asarray(pixels, np.uint8)
    height, width = pixels.shape[:2]
    raw = b"".join(b"\0" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_folder(root: Path, per_class: int, size: int = 8) -> Path:
    """An `images:` folder of two classes, `a` dark and `b` bright, `per_class` PNGs each."""
    import numpy as np

    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (size, size, 3)) + 150 * c
            (root / name / f"{i}.png").write_bytes(png_bytes(pixels))
    return root


def images_preset(root: Path, epochs: int = 2, batch: int = 8, extra_data: str = "") -> str:
    """A preset's text: Flatten → Dense(2, softmax) on `images:root`; `extra_data` ends [data]."""
    return (
        f'name = "imgs"\n[data]\nsource = "images:{root}"\nbatch_size = {batch}\n{extra_data}\n'
        '[[model.layers]]\ntype = "Rescaling"\nscale = 0.00392\n[[model.layers]]\ntype = "Flatten"\n'
        '[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n'
        f"[train]\nepochs = {epochs}\nseed = 3\n"
    )


BLOCKER = """
import importlib.abc, runpy, sys

BLOCKED = {blocked!r}


class Blocked(importlib.abc.MetaPathFinder):
    \"\"\"These packages cannot be imported here, as if they were not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Blocked())
runpy.run_path({guard!r})  # the network guard this folder's sitecustomize stands in front of
"""


def without_modules(folder: Path, *names: str) -> dict[str, str]:
    """A runner environment (`runner_env`) in which importing `names` fails as if they were not installed.

    A `sitecustomize` put first on `PYTHONPATH` blocks them and then runs the network guard's own.
    """
    from no_network.sitecustomize import GUARD_DIR

    here = folder / "without-modules"
    here.mkdir(exist_ok=True)
    guard = str(Path(GUARD_DIR) / "sitecustomize.py")
    (here / "sitecustomize.py").write_text(BLOCKER.format(blocked=tuple(names), guard=guard), encoding="utf-8")
    env = runner_env()
    env["PYTHONPATH"] = os.pathsep.join([str(here), env["PYTHONPATH"]])
    return env


TRAINED_ONCE: dict[tuple, Path] = {}
"""Runs trained by `trained_once` in this process, by key: each test module copies rather than trains."""


def trained_once(target: Path, key: tuple, train) -> Path:
    """A copy at `target` of the run `train(folder)` writes, trained once per process for each `key`.

    For modules that share an equivalent run (the same preset, epochs and overrides): the first asks
    for it to be trained into a folder of its own, every caller gets a copy (milliseconds) it may write
    into. `key` must name everything `train` does.
    """
    import atexit
    import shutil
    import tempfile

    if key not in TRAINED_ONCE:
        folder = Path(tempfile.mkdtemp(prefix="tfbench-trained-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        TRAINED_ONCE[key] = train(folder / "run")
    return Path(shutil.copytree(TRAINED_ONCE[key], target))


def spiral_info():
    """What the bundled spiral holds, as `describe` says it: fixed engine calls' data for the spiral presets."""
    from tfbench.data.info import DataInfo

    return DataInfo(
        source="builtin:spiral",
        input_shape=(2,),
        label_kind="binary",
        num_classes=2,
        class_names=["inner", "outer"],
        sizes={"train": 800, "validation": 200},
    )
