"""An npz file's arrays named like a model's inputs and outputs — without a UI; no TensorFlow.

A model with several named inputs or outputs (`tfbench.io_model`) takes a dict of arrays per
split: `x` holds one array per input (or the file's `x` when the model has one input), `y` one
array per output (or the file's `y`). `NAME_test` arrays, when the file has one for every name,
are the test split. Each output's labels are inferred on their own (class ids, one-hot rows,
regression targets), so classification and regression heads mix.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from tfbench.data.info import DataInfo, InputInfo, IONames, LabelKind
from tfbench.data.labels import infer_label_kind, label_facts
from tfbench.data.splits import Arrays, planned_sizes
from tfbench.errors import UserError, close_matches


def _keys(io: IONames, x: str, y: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(array name, where it is named) of the features and of the labels."""
    xs = [(name, f"model.inputs[{i}].name") for i, name in enumerate(io.inputs)] or [(x, "data.options.x")]
    ys = [(name, f"model.outputs[{j}].name") for j, name in enumerate(io.outputs)] or [(y, "data.options.y")]
    return xs, ys


def read_named(path: str, mtime: float, options: Any, io: IONames) -> dict[str, Arrays]:
    """The file's train (and test) split, as dicts of arrays when the model names them.

    Raises:
        UserError: a named array the file lacks (at the name's place), arrays of different lengths,
            a file that is not an npz.
    """
    return _read(path, mtime, options.x, options.y, io)


@lru_cache(maxsize=4)
def _read(path: str, mtime: float, x_name: str, y_name: str, io: IONames) -> dict[str, Arrays]:
    xs, ys = _keys(io, x_name, y_name)
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.keys())
            for name, where in xs + ys:
                if name not in keys:
                    hint = close_matches(name, keys) or f"the file has: {', '.join(keys) or 'no arrays'}"
                    raise UserError(f"{path} has no array {name!r}", where, hint)
            named = {"train": _arrays(f, xs, ys, io, "")}
            if all(f"{name}_test" in keys for name, _ in xs + ys):
                named["test"] = _arrays(f, xs, ys, io, "_test")
    except UserError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise UserError(f"cannot read as .npz: {exc}", f"data.source ({path})") from None
    for split, arrays in named.items():
        _check_lengths(split, arrays, path)
    return named


def _arrays(f: Any, xs: list, ys: list, io: IONames, suffix: str) -> Arrays:
    x = {name: f[name + suffix] for name, _ in xs} if io.inputs else f[xs[0][0] + suffix]
    y = {name: f[name + suffix] for name, _ in ys} if io.outputs else f[ys[0][0] + suffix]
    return Arrays(x, y)


def _check_lengths(split: str, arrays: Arrays, path: str) -> None:
    columns = {**_as_dict(arrays.x, "x"), **_as_dict(arrays.y, "y")}
    lengths = {name: len(a) for name, a in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise UserError(f"the {split} arrays differ in length ({listed})", f"data.source ({path})")
    if split == "train" and not next(iter(lengths.values())):
        raise UserError("the dataset is empty", f"data.source ({path})")


def _as_dict(value: Any, name: str) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {name: value}


def _label_kind(options: Any, name: str) -> LabelKind | None:
    kind = options.label_kind
    return kind.get(name) if isinstance(kind, dict) else kind


def _input_dtype(array: np.ndarray) -> str:
    """Token ids (integers, one row per sample) stay integers for an Embedding; the rest is float32."""
    return "int32" if np.issubdtype(array.dtype, np.integer) and array.ndim == 2 else "float32"


def describe_named(spec: Any, options: Any, named: dict[str, Arrays], io: IONames) -> DataInfo:
    """The DataInfo of named arrays: each input's shape and dtype, each output's labels."""
    train = named["train"]
    sizes = planned_sizes(spec, {k: len(next(iter(_as_dict(v.y, "y").values()))) for k, v in named.items()})
    features = _as_dict(train.x, "x").items()
    inputs = {name: InputInfo(tuple(int(d) for d in a.shape[1:]), _input_dtype(a)) for name, a in features}
    outputs = {}
    for name, labels in _as_dict(train.y, "y").items():
        where = f"data.options.label_kind.{name}" if io.outputs else "data.options.label_kind"
        kind, classes, label_shape = infer_label_kind(labels, _label_kind(options, name), where)
        outputs[name] = DataInfo(
            source=f"{name!r} of {spec.source}" if io.outputs else spec.source,
            input_shape=(),
            label_kind=kind,
            num_classes=classes,
            class_names=[str(i) for i in range(classes)],
            label_shape=label_shape,
            extra=label_facts(labels, kind),
        )
    first_in = next(iter(inputs.values()))
    first_out = next(iter(outputs.values()))
    names = f"arrays {', '.join(repr(n) for n in (*inputs, *outputs))}"
    return DataInfo(
        source=spec.source,
        input_shape=first_in.shape,
        label_kind=first_out.label_kind,
        num_classes=first_out.num_classes,
        class_names=first_out.class_names,
        label_shape=first_out.label_shape,
        sizes=sizes,
        description=f"The {names} of {spec.target}.",
        input_dtype=first_in.dtype,
        extra={"arrays": list(named)},
        inputs=inputs if io.inputs else {},
        outputs=outputs if io.outputs else {},
    )


def typed(arrays: Arrays, options: Any, io: IONames) -> Arrays:
    """The arrays as the model takes them: inputs in their dtype, class ids as int32, targets as float32."""
    if io.inputs:
        x = {name: a.astype(np.int32 if _input_dtype(a) == "int32" else np.float32) for name, a in arrays.x.items()}
    else:
        x = arrays.x
    labels = _as_dict(arrays.y, "y")
    fixed = {}
    for name, y in labels.items():
        kind, _, label_shape = infer_label_kind(y, _label_kind(options, name))
        if kind == "regression":
            y = y.astype(np.float32).reshape((len(y), *label_shape))
        elif not label_shape:
            y = y.astype(np.int32).reshape(len(y))
        fixed[name] = y
    return Arrays(x, fixed if io.outputs else fixed["y"])


def loader_text(exp: Any, info: DataInfo, options: Any) -> str:
    """`load_data()` for the script `tfbench code` writes: the arrays named like the model's inputs
    and outputs, typed as tfbench types them (see `typed`); `options` are the npz source's."""
    from pathlib import Path

    path = str(Path(exp.data.target).expanduser().resolve())
    inputs = {name: i.dtype for name, i in info.inputs.items()}
    outputs = {
        name: ("float32", list(o.label_shape)) if o.label_kind == "regression" else ("int32", [])
        for name, o in info.outputs.items()
    }
    x = "{name: f[name + suffix].astype(dtype) for name, dtype in INPUTS.items()}"
    if not inputs:
        x = f"f[{options.x!r} + suffix]"
    if outputs:
        y = "{name: labels(f[name + suffix], *kind) for name, kind in OUTPUTS.items()}"
    elif info.label_kind == "regression":
        y = f"labels(f[{options.y!r} + suffix], 'float32', {list(info.label_shape)!r})"
    else:
        y = f"labels(f[{options.y!r} + suffix], 'int32', [])"
    names = [*inputs, *outputs] or [options.x, options.y]
    return f'''DATA_FILE = {path!r}
# The model's inputs (the arrays of these names, in these dtypes) and outputs (each label
# array's dtype and shape per sample).
INPUTS = {inputs!r}
OUTPUTS = {outputs!r}


def labels(array, dtype, shape):
    """Class ids as int32 (one per sample), regression targets as float32 of their shape."""
    return np.asarray(array).astype(dtype).reshape(len(array), *shape)


def load_data():
    """The named splits of {Path(path).name}: {{"train": (x, y), "test": (x, y)}}, NAME_test arrays the test split."""
    named = {{}}
    with np.load(DATA_FILE) as f:
        for split_name, suffix in (("train", ""), ("test", "_test")):
            if all(name + suffix in f for name in {names!r}):
                x = {x}
                y = {y}
                named[split_name] = (x, y)
    return named'''


def scoring_arrays(path: str, options: Any, io: IONames, info: DataInfo) -> tuple[Any, Any]:
    """(inputs, labels or None) of an npz file of new samples to score, named as the run's data was.

    The labels are read when the file has every label array the run trained on (typed as `typed`
    types them); otherwise the samples are scored without.

    Raises:
        UserError: at `--input`, a file that is not an npz or lacks an input's array.
    """
    xs, ys = _keys(io, options.x, options.y)
    where = f"--input ({path})"
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.keys())
            for name, _ in xs:
                if name not in keys:
                    hint = close_matches(name, keys) or f"the file has: {', '.join(keys) or 'no arrays'}"
                    raise UserError(f"has no array {name!r}, which the model takes", where, hint)
            x = {name: f[name] for name, _ in xs} if io.inputs else f[xs[0][0]]
            y = None
            if all(name in keys for name, _ in ys):
                y = {name: f[name] for name, _ in ys} if io.outputs else f[ys[0][0]]
    except UserError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise UserError(f"cannot read as .npz: {exc}", where) from None
    if isinstance(x, dict):
        x = {name: a.astype(info.inputs[name].dtype) for name, a in x.items()}
    return x, None if y is None else typed(Arrays(x, y), options, io).y
