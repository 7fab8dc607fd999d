"""`npz:PATH` — a NumPy `.npz` file with `x`/`y` arrays (names configurable), optional `x_test`/`y_test`.

Without a UI; no TensorFlow. Labels are read to infer classification or regression (integer ids
are classes — one per sample, or one per position for a tagger's or a segmentation mask's labels;
one-hot rows are classes; floats are regression targets) unless `label_kind` says which. A model
with several named inputs or outputs (`tfbench.io_model`) reads the arrays named like them instead
of `x`/`y` (and `NAME_test` arrays, when the file has one for each, as the test split); each
output's labels are inferred on their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from tfbench.data.info import DataInfo, IONames, one_label_kind
from tfbench.data.labels import infer_label_kind, label_facts
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, Splits, planned_sizes, split_arrays
from tfbench.errors import UserError, close_matches


class NpzOptions(SourceOptions):
    """Which arrays of the file hold what."""

    x: str = Field("x", description="Name of the features array.")
    y: str = Field("y", description="Name of the labels array.")
    x_test: str = Field("x_test", description="Name of the test features array (optional in the file).")
    y_test: str = Field("y_test", description="Name of the test labels array (optional in the file).")
    label_kind: (
        Literal["categorical", "binary", "regression"]
        | dict[str, Literal["categorical", "binary", "regression"]]
        | None
    ) = Field(None, description="Override the inferred label kind (several outputs: a kind per output name).")
    class_names: list[str] | None = Field(None, description="A name per class id.")


OPTIONS = NpzOptions
PICKER = Picker("npz", "npz:PATH", suffixes=(".npz",))
PATHS = ("target",)  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = True  # reads arrays named like a model's several inputs and outputs (data.describe's `io`)
NORMALIZES_ITSELF = False
overview = None


def _path(spec) -> Path:
    path = Path(spec.target).expanduser()
    if not path.exists():
        raise UserError("no such file", f"data.source ({spec.target})")
    if path.is_dir():
        raise UserError("is a folder, not an .npz file", f"data.source ({spec.target})")
    return path


@lru_cache(maxsize=4)
def _read(path: str, mtime: float, names: tuple[str, str, str, str]) -> dict[str, Arrays]:
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.keys())
            x, y, x_test, y_test = names
            for key, option in ((x, "x"), (y, "y")):
                if key not in keys:
                    hint = close_matches(key, keys) or f"the file has: {', '.join(keys) or 'no arrays'}"
                    raise UserError(f"{path} has no array {key!r}", f"data.options.{option}", hint)
            named = {"train": Arrays(f[x], f[y])}
            if x_test in keys and y_test in keys:
                named["test"] = Arrays(f[x_test], f[y_test])
    except UserError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise UserError(f"cannot read as .npz: {exc}", f"data.source ({path})") from None
    for split, arrays in named.items():
        if len(arrays.x) != len(arrays.y):
            raise UserError(
                f"{split} features have {len(arrays.x)} samples but labels have {len(arrays.y)}",
                f"data.source ({path})",
            )
    if len(named["train"]) == 0:
        raise UserError("the dataset is empty", f"data.source ({path})")
    return named


def _named(spec, options: NpzOptions, io: IONames | None = None) -> dict[str, Arrays]:
    path = _path(spec)
    if io is None and isinstance(options.label_kind, dict):
        raise UserError("a label kind per output is for a model with several outputs", "data.options.label_kind")
    if io is not None:
        from tfbench.data.named_arrays import read_named

        return read_named(str(path), path.stat().st_mtime, options, io)
    return _read(str(path), path.stat().st_mtime, (options.x, options.y, options.x_test, options.y_test))


def describe(spec, options: NpzOptions, seed: int | None = 42, io: IONames | None = None) -> DataInfo:
    """Shapes and label kind of the file's arrays; sizes after the split."""
    named = _named(spec, options, io)
    train = named["train"]
    if io is not None:
        from tfbench.data.named_arrays import describe_named

        return describe_named(spec, options, named, io)
    kind, classes, label_shape = infer_label_kind(train.y, one_label_kind(options.label_kind))
    names = options.class_names or [str(i) for i in range(classes)]
    if options.class_names is not None and len(names) != classes:
        raise UserError(f"{len(names)} class names for {classes} classes", "data.options.class_names")
    dtype = "int32" if np.issubdtype(train.x.dtype, np.integer) and train.x.ndim == 2 else "float32"
    if train.x.dtype.kind in "US":  # text or category names: string inputs (a lookup or TextVectorization)
        dtype = "string"
    return DataInfo(
        source=spec.source,
        input_shape=tuple(int(d) for d in train.x.shape[1:]),
        label_kind=kind,
        num_classes=classes,
        class_names=names if classes else [],
        label_shape=label_shape,
        sizes=planned_sizes(spec, {k: len(v) for k, v in named.items()}),
        description=f"Arrays {options.x!r}/{options.y!r} from {spec.target}.",
        input_dtype=dtype,
        extra={"arrays": list(named), **label_facts(train.y, kind)},
    )


def load(spec, options: NpzOptions, seed: int | None = 42, io: IONames | None = None) -> Splits:
    """The file's arrays, split by `spec`."""
    named = _named(spec, options, io)
    if io is not None:
        from tfbench.data.named_arrays import typed

        return split_arrays(spec, {split: typed(arrays, options, io) for split, arrays in named.items()}, seed)
    kind, _, label_shape = infer_label_kind(named["train"].y, one_label_kind(options.label_kind))
    fixed = {}
    for split, arrays in named.items():
        y = arrays.y
        if kind == "regression":
            y = y.astype(np.float32).reshape((len(y), *label_shape))
        else:  # one id per sample, per position (a mask's channel of 1 dropped), or one-hot rows
            y = y.astype(np.int32).reshape((len(y), *label_shape))
        fixed[split] = Arrays(arrays.x, y)
    return split_arrays(spec, fixed, seed)


def loader_code(exp, info) -> LoaderCode:
    """The data loader the script `tfbench code` writes for this kind."""
    if info.inputs or info.outputs:  # a model with several named inputs or outputs
        from tfbench.data.named_arrays import loader_text

        return LoaderCode(loader_text(exp, info, parse_options(OPTIONS, exp.data.options)))
    return LoaderCode(_loader_text(exp, info))


def _loader_text(exp, info) -> str:
    options = parse_options(OPTIONS, exp.data.options)
    path = str(Path(exp.data.target).expanduser().resolve())
    dtype = "np.float32" if info.label_kind == "regression" else "np.int32"
    y_cast = f"np.asarray(y, {dtype}).reshape((len(y), *{tuple(info.label_shape)!r}))"
    return f'''DATA_FILE = {path!r}


def load_data():
    """The named splits of {Path(path).name}, as numpy arrays: {{"train": (x, y), "test": (x, y)}}."""
    named = {{}}
    with np.load(DATA_FILE) as f:
        keys = (("train", {options.x!r}, {options.y!r}), ("test", {options.x_test!r}, {options.y_test!r}))
        for split_name, x_key, y_key in keys:
            if x_key in f and y_key in f:
                x, y = f[x_key], f[y_key]
                named[split_name] = (x, {y_cast})
    return named'''


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import npz_source
    from tfbench.data.registry import DataSource

    _: DataSource = npz_source
