"""Data sources and the input pipeline — without a UI; TensorFlow is imported lazily.

`describe(spec)` tells what a source holds (no download where the source knows it);
`load(spec, seed)` gives the batched datasets a run trains on; `preview(spec)` a few raw samples
for the dataset picker; `catalog_listing(query)` what `tfbench datasets` lists.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

from tfbench.data import class_weights  # noqa: F401 - `data.class_weights`, for the engine's fit
from tfbench.data.info import DataBundle, DataInfo, IONames
from tfbench.data.labels import needs_one_hot
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import source_module, sources
from tfbench.data.splits import Arrays
from tfbench.errors import UserError

__all__ = [
    "DataBundle",
    "DataInfo",
    "catalog_listing",
    "describe",
    "load",
    "needs_one_hot",
    "preview",
    "sources",
]


def _options(spec):
    module = source_module(spec.kind)
    return module, parse_options(module.OPTIONS, spec.options)


def _with_preprocessing(info: DataInfo, options: SourceOptions) -> DataInfo:
    """The info as the model sees it, after the common resize/scale options."""
    changes: dict[str, Any] = {}
    if options.resize is not None and len(info.input_shape) == 3:
        changes["input_shape"] = (*options.resize, info.input_shape[2])
    if options.resize is not None or options.scale is not None:
        changes["input_dtype"] = "float32"
    return dataclasses.replace(info, **changes) if changes else info


def _source_call(module, name: str, spec, options, seed, io: IONames | None):
    """`module.describe`/`module.load`, with the model's named inputs and outputs when it has them.

    Raises:
        UserError: the source kind cannot give named inputs or outputs.
    """
    if io is None:
        return getattr(module, name)(spec, options, seed)
    if not module.NAMED_IO:
        where = "model.inputs" if io.inputs else "model.outputs"
        raise UserError(
            f"{spec.kind}: data gives one input and one label; a model with named inputs or outputs "
            "needs arrays or columns of those names",
            where,
            "use an npz file with an array per input and output (or a table with a label per output)",
        )
    return getattr(module, name)(spec, options, seed, io=io)


def describe(spec, seed: int | None = 42, io: IONames | None = None) -> DataInfo:
    """What a data source holds, without downloading it where the source knows its shape.

    Args:
        spec: the Experiment's DataSpec.
        seed: the experiment seed (decides the validation fraction's samples, not its size).
        io: the named inputs and outputs of a model with several (`tfbench.io_model.data_names`).

    Returns:
        The DataInfo; `sizes` are the train/validation/test sizes after the split.

    Raises:
        UserError: located at `data.source`, `data.validation`, `data.test` or `data.options.NAME`.
    """
    module, options = _options(spec)
    return _with_preprocessing(_source_call(module, "describe", spec, options, seed, io), options)


def load(spec, seed: int | None = 42, one_hot: bool | dict[str, bool] = False, io: IONames | None = None) -> DataBundle:
    """The batched `tf.data` pipelines of (x, y) a run trains, validates and tests on.

    Args:
        spec: the Experiment's DataSpec; a file cache (`cache = "NAME"`) already made absolute
            inside the run directory (`tfbench.rundir.load_bundle` does).
        seed: seeds the validation fraction and the per-epoch shuffle.
        one_hot: convert integer class labels to one-hot (see `needs_one_hot`); with several
            outputs, whether to, per output name.
        io: the named inputs and outputs of a model with several (`tfbench.io_model.data_names`).

    Returns:
        A DataBundle whose info carries the actual split sizes, with `steps_per_epoch` filled in.

    Raises:
        UserError: an unknown or unreadable source, a missing split, bad options, empty data.
    """
    from tfbench.data.pipeline import build_bundle, normalize_splits

    module, options = _options(spec)
    splits = _source_call(module, "load", spec, options, seed, io)
    info = _with_preprocessing(_source_call(module, "describe", spec, options, seed, io), options)
    if options.normalize and not module.NORMALIZES_ITSELF:
        info = dataclasses.replace(info, extra={**info.extra, "normalization": normalize_splits(splits)})
    info = dataclasses.replace(info, sizes={**info.sizes, **splits.sizes})
    labels = splits.train.y if isinstance(splits.train, Arrays) and not info.outputs else None
    if labels is not None and info.is_classification and np.ndim(labels) == 1:
        counts = np.bincount(np.asarray(labels, np.int64), minlength=info.num_classes)
        info = dataclasses.replace(info, extra={**info.extra, "label_counts": counts.tolist()})
    if one_hot:
        info = dataclasses.replace(info, extra={**info.extra, "one_hot": True})
    return build_bundle(spec, splits, info, options, seed, one_hot)


def preview(spec, n: int = 8, seed: int | None = 42) -> dict[str, Any]:
    """A few raw training samples and the label counts, as plain Python/numpy for the TUI.

    Returns:
        `{"info": DataInfo dict, "samples": [{"x": ndarray, "y": label, "label": name}],
        "label_counts": {name: count}, "counted": samples counted}`, and for a table `"table"`
        (see `table_source.overview`); label counts are over the
        whole training split for in-memory sources, over the first 10,000 samples of a stream. A
        table whose `columns` set a kind its values do not fit gives `{"error", "table"}`, the column
        marked in the table.
    """
    module, options = _options(spec)
    try:
        info = _with_preprocessing(module.describe(spec, options, seed), options)
    except UserError as exc:  # a column set to a kind its values do not fit: the table shows which
        if module.overview is None or not (exc.location or "").startswith("data.options.columns."):
            raise
        return {"error": str(exc), "table": module.overview(spec, options, seed, n)}
    splits = module.load(spec, options, seed)
    train = splits.train
    if isinstance(train, Arrays) and isinstance(train.x, dict):  # a table: one raw value per column
        xs: list[Any] = [{name: column[i, 0] for name, column in train.x.items()} for i in range(min(n, len(train)))]
        ys = np.asarray(train.y)
    elif isinstance(train, Arrays):
        xs = [np.asarray(train.x[i]) for i in range(min(n, len(train)))]
        ys = np.asarray(train.y)
    else:
        xs, label_list = [], []
        for x, y in train.take(10_000).as_numpy_iterator():
            if len(xs) < n:
                xs.append(x)
            label_list.append(y)
        ys = np.asarray(label_list)
    names = info.class_names

    def label_of(y) -> Any:
        value = y.item() if np.ndim(y) == 0 else np.asarray(y).tolist()
        if info.is_classification and np.ndim(y) == 0 and 0 <= int(value) < len(names):
            return names[int(value)]
        return value

    samples = [
        {"x": x, "y": ys[i].item() if ys[i].ndim == 0 else ys[i].tolist(), "label": label_of(ys[i])}
        for i, x in enumerate(xs)
    ]
    counts: dict[str, int] = {}
    if info.is_classification and ys.ndim == 1:
        tally = Counter(int(v) for v in ys)
        counts = {names[k] if k < len(names) else str(k): tally[k] for k in sorted(tally)}
    result = {"info": info.to_dict(), "samples": samples, "label_counts": counts, "counted": int(len(ys))}
    if module.overview is not None:  # a table: its own columns, kinds and raw rows
        result["table"] = module.overview(spec, options, seed, n)
    return result


def label_candidates(spec) -> list[Any]:
    """A table's columns that could be its label, most likely first (`label_proposal.LabelCandidate`s);
    [] for a source that is not a table.

    Raises:
        UserError: an unknown source kind, bad options, a file that cannot be read as a table.
    """
    from tfbench.data.label_proposal import propose

    module, options = _options(spec)
    if module.overview is None:
        return []
    return propose(spec.target, spec.kind, getattr(options, "delimiter", ","), getattr(options, "encoding", "utf-8"))


def catalog_listing(query: str | None = None) -> list[dict[str, Any]]:
    """What `tfbench datasets [QUERY]` lists: builtin, Keras and TFDS datasets with their shapes.

    Returns:
        Rows `{name, kind, shape, classes, sizes, description}` whose name or description
        contains `query` (case-insensitive); all rows when `query` is empty.
    """
    from tfbench.data.listing import listing

    return listing(query)
