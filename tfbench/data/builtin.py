"""The bundled offline datasets (`builtin:NAME`): digits, spiral, shapes, sine — numpy only.

`digits` is real data shipped in `files/digits.npz` (UCI optdigits, CC BY 4.0; see
`files/LICENSE-digits.txt`); the others are generated. Each is deterministic: generators use fixed
seeds of their own, and only the train/validation split follows the experiment's seed. Nothing
here imports TensorFlow, so the dataset picker and `tfbench validate` know the shapes at once.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfbench.data.info import DataInfo, LabelKind
from tfbench.data.options import SourceOptions
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, Splits, planned_sizes, split_arrays
from tfbench.errors import UserError, close_matches

FILES = Path(__file__).parent / "files"


@dataclass(frozen=True)
class Builtin:
    """One bundled dataset: what it looks like and how to make it."""

    input_shape: tuple[int, ...]
    label_kind: LabelKind
    class_names: tuple[str, ...]
    label_shape: tuple[int, ...]
    size: int
    description: str
    make: Callable[[], Arrays]


def _digits() -> Arrays:
    with np.load(FILES / "digits.npz") as f:
        x = f["x"].astype(np.float32)[..., None]
        y = f["y"].astype(np.int32)
    return Arrays(x, y)


def _spiral(n: int = 1000) -> Arrays:
    """Two interleaved spiral arms in the plane, labelled by arm."""
    rng = np.random.default_rng(1001)
    per_arm = n // 2
    xs, ys = [], []
    for arm in range(2):
        t = np.sqrt(rng.uniform(0.02, 1.0, per_arm))
        angle = t * 3.0 * np.pi + arm * np.pi
        radius = t
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        points += rng.normal(0.0, 0.03, points.shape)
        xs.append(points)
        ys.append(np.full(per_arm, arm))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int32)
    order = rng.permutation(len(y))
    return Arrays(x[order], y[order])


def _shapes(n: int = 1500, side: int = 28) -> Arrays:
    """Filled circles, squares and triangles of random size and place, with light noise.

    Drawn a class at a time over whole arrays (the first preview waits for this); the random numbers
    are the ones a per-image loop of `uniform` draws would take, in the same order, so the images are
    the same bit for bit as they always were.
    """
    rng = np.random.default_rng(1002)
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    labels = np.tile(np.arange(3), n // 3 + 1)[:n]
    rng.shuffle(labels)
    draws = rng.random((n, 4))  # per image: half size, centre row, centre column, brightness
    half = 4.5 + (10.0 - 4.5) * draws[:, 0]  # half the shape's extent, in pixels
    low, high = half + 1, side - half - 1
    centre_y, centre_x = low + (high - low) * draws[:, 1], low + (high - low) * draws[:, 2]
    shade = 0.6 + (1.0 - 0.6) * draws[:, 3]
    images = np.zeros((n, side, side), np.float32)
    for label in range(3):
        pick = np.flatnonzero(labels == label)
        h = half[pick, None, None]
        dy, dx = rows - centre_y[pick, None, None], cols - centre_x[pick, None, None]
        if label == 0:  # circle
            mask = dy**2 + dx**2 <= h**2
        elif label == 1:  # square
            mask = (np.abs(dy) <= h * 0.85) & (np.abs(dx) <= h * 0.85)
        else:  # upright triangle: apex at the top, base at the bottom
            depth = (dy + h) / (2 * h)  # 0 at the apex, 1 at the base
            mask = (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * h)
        images[pick] = mask * shade[pick, None, None]
    images += rng.normal(0.0, 0.05, images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return Arrays(images[..., None], labels.astype(np.int32))


def _sine(n: int = 2000, window: int = 32) -> Arrays:
    """Windows of a noisy sine series, each labelled with the value that follows it."""
    rng = np.random.default_rng(1003)
    t = np.arange(n + window, dtype=np.float64)
    series = np.sin(2 * np.pi * t / 40.0) + 0.5 * np.sin(2 * np.pi * t / 97.0)
    series += rng.normal(0.0, 0.1, series.shape)
    series = series.astype(np.float32)
    index = np.arange(window)[None, :] + np.arange(n)[:, None]
    x = series[index][..., None]
    y = series[np.arange(n) + window][:, None]
    return Arrays(x, y)


DATASETS: dict[str, Builtin] = {
    "digits": Builtin(
        (8, 8, 1),
        "categorical",
        tuple(str(i) for i in range(10)),
        (),
        1797,
        "1,797 real 8x8 handwritten digits (UCI optdigits, CC BY 4.0), pixel values 0-16.",
        _digits,
    ),
    "spiral": Builtin(
        (2,),
        "binary",
        ("arm 0", "arm 1"),
        (),
        1000,
        "1,000 2-D points on two interleaved spiral arms; which arm is a point on?",
        _spiral,
    ),
    "shapes": Builtin(
        (28, 28, 1),
        "categorical",
        ("circle", "square", "triangle"),
        (),
        1500,
        "1,500 28x28 drawings of circles, squares and triangles (values 0-1, light noise).",
        _shapes,
    ),
    "sine": Builtin(
        (32, 1),
        "regression",
        (),
        (1,),
        2000,
        "2,000 windows of 32 steps of a noisy sine series; predict the next value.",
        _sine,
    ),
}


class BuiltinOptions(SourceOptions):
    """Bundled datasets take only the common options."""


OPTIONS = BuiltinOptions
PICKER = Picker("Bundled (offline)", "builtin:NAME", listed=True)
PATHS: tuple[str, ...] = ()  # bundled files only
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None


def _entry(spec) -> Builtin:
    name = spec.target
    entry = DATASETS.get(name)
    if entry is None:
        hint = close_matches(name, DATASETS) or f"bundled datasets: {', '.join(DATASETS)}"
        raise UserError(f"no bundled dataset {name!r}", "data.source", hint)
    return entry


@cache
def arrays(name: str) -> Arrays:
    """The whole bundled dataset `name` (made once per process)."""
    return DATASETS[name].make()


def describe(spec, options: BuiltinOptions, seed: int | None = 42) -> DataInfo:
    """What a bundled dataset holds; sizes follow the split rules of `spec`."""
    entry = _entry(spec)
    sizes = planned_sizes(spec, {"train": entry.size})
    return DataInfo(
        source=spec.source,
        input_shape=entry.input_shape,
        label_kind=entry.label_kind,
        num_classes=len(entry.class_names),
        class_names=list(entry.class_names),
        label_shape=entry.label_shape,
        sizes=sizes,
        description=entry.description,
        input_dtype="float32",
    )


def load(spec, options: BuiltinOptions, seed: int | None = 42) -> Splits:
    """The bundled dataset split into train/validation by the experiment's seed."""
    _entry(spec)
    return split_arrays(spec, {"train": arrays(spec.target)}, seed)


def loader_code(exp, info) -> LoaderCode:
    """The data loader the script `tfbench code` writes for this kind."""
    return LoaderCode(_loader_text(exp, info))


def _loader_text(exp, info) -> str:
    name = exp.data.target
    if name == "digits":
        path = (FILES / "digits.npz").resolve()
        return f'''# The 1,797 8x8 UCI optdigits images (CC BY 4.0) that ship with tfbench, at:
DIGITS_FILE = os.environ.get("DIGITS_FILE", {str(path)!r})


def load_data():
    """The named splits of the dataset, as numpy arrays: {{"train": (x, y)}}."""
    with np.load(DIGITS_FILE) as f:
        x = f["x"].astype(np.float32)[..., None]  # (1797, 8, 8, 1), pixel values 0-16
        y = f["y"].astype(np.int32)
    return {{"train": (x, y)}}'''
    maker = globals().get(f"_{name}")
    if maker is None:
        raise UserError(f"cannot write a script for builtin:{name}", "data.source")
    source = textwrap.dedent(inspect.getsource(maker))
    source = source.replace(f"def _{name}(", f"def make_{name}(", 1)
    source = re.sub(r"return Arrays\((.*)\)\s*$", r"return \1", source.rstrip())
    source = re.sub(r"\) -> Arrays:", "):", source)
    return f'''{source}


def load_data():
    """The named splits of the dataset, as numpy arrays: {{"train": (x, y)}}."""
    x, y = make_{name}()
    return {{"train": (x, y)}}'''


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import builtin
    from tfbench.data.registry import DataSource

    _: DataSource = builtin
