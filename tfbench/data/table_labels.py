"""A table with a label column per named output of a model (`tfbench.io_model`) — without a UI; no TensorFlow.

`label = ["species", "body_mass_g"]` names one column per output (left out, the outputs' own
names are the columns); classification and regression mix. The other columns (or `features`)
are the model's one input, planned exactly as for one label (`tfbench.data.table_source`): the
first label's plan gives every feature column's kind and training statistics, and each label is
read from the same rows: rows without every label are left out (with a note, as for one label).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfbench.data.info import DataInfo, IONames, LabelKind
from tfbench.data.registry import LoaderCode
from tfbench.data.splits import Arrays, Splits, split_arrays
from tfbench.data.tables import TablePlan, column_index, label_plan, label_values, read_table
from tfbench.errors import UserError


def check_one_label(options: Any) -> None:
    """A table read for a model with one output has one label column.

    Raises:
        UserError: at `data.options.label` (or `label_kind`) when it names several.
    """
    if isinstance(options.label, list):
        raise UserError(
            "several label columns need a model with an output per column",
            "data.options.label",
            "add [[model.outputs]] entries named like the columns, or name one label column",
        )
    if isinstance(options.label_kind, dict):
        raise UserError("a label kind per column is for a model with several outputs", "data.options.label_kind")


def _labels(options: Any, io: IONames, names: list[str], file: str) -> list[str]:
    """The label columns, in the outputs' order: `label` when it is a list, else the outputs' names."""
    if io.inputs:
        raise UserError(
            "a table gives the model one input, its feature columns; named inputs need an npz file",
            "model.inputs",
            "leave model.inputs out (the features feed the trunk)",
        )
    written = options.label if isinstance(options.label, list) else list(io.outputs)
    if sorted(written) != sorted(io.outputs):
        raise UserError(
            f"the label columns {written} are not the model's outputs {list(io.outputs)}",
            "data.options.label",
            "name one label column per [[model.outputs]] entry, named alike",
        )
    for i, name in enumerate(io.outputs):
        column_index(names, name, file, f"model.outputs[{i}].name")
    return list(io.outputs)


def _first_label_options(options: Any, labels: list[str], names: list[str]) -> Any:
    """The options the plan is made with: every label column (the first gives the plan) and, as the
    features, the other columns (or `features`)."""
    features = options.features
    if features is None:
        features = [n for n in names if n not in labels]
    elif any(f in labels for f in features):
        raise UserError("a label column is also listed as a feature", "data.options.features")
    return options.model_copy(update={"label": labels, "features": features, "label_kind": _kind(options, labels[0])})


def _kind(options: Any, label: str) -> LabelKind | None:
    kind = options.label_kind
    if isinstance(kind, dict):
        return kind.get(label)
    if kind is not None:
        raise UserError(
            "with several label columns, give a kind per column",
            "data.options.label_kind",
            '{ body_mass_g = "regression" }',
        )
    return None


def _plans(spec: Any, options: Any, fmt: str, seed: int | None, io: IONames) -> tuple[dict[str, TablePlan], Any, Any]:
    """(each label's plan, the first label's options, the labelled table)."""
    from tfbench.data import table_source
    from tfbench.data.table_stream import should_stream

    if should_stream(spec.target, options.stream):
        raise UserError("several label columns need the table in memory", "data.options.stream", "set stream = false")
    names = read_table(spec.target, fmt, getattr(options, "delimiter", ","), "data.source").column_names
    labels = _labels(options, io, names, Path(spec.target).name)
    first = _first_label_options(options, labels, names)
    plan, table = table_source.plan_of(spec, first, fmt, seed)  # rows with every label
    plans = {labels[0]: plan}
    for name in labels[1:]:
        kind, class_names, lookup = label_plan(table[name], name, _kind(options, name))
        plans[name] = TablePlan(name, kind, class_names, lookup)
    return plans, first, table


def describe(spec: Any, options: Any, fmt: str, seed: int | None, io: IONames) -> DataInfo:
    """The table's DataInfo with an output per label column (its kind and classes)."""
    from tfbench.data import table_source

    plans, first, _ = _plans(spec, options, fmt, seed, io)
    info = table_source.describe(spec, first, fmt, seed)
    outputs = {
        name: DataInfo(
            source=f"{name!r} of {spec.source}",
            input_shape=(),
            label_kind=plan.label_kind,
            num_classes=len(plan.class_names),
            class_names=list(plan.class_names),
            label_shape=(1,) if plan.label_kind == "regression" else (),
        )
        for name, plan in plans.items()
    }
    labels = {name: {"kind": p.label_kind, "lookup": list(p.label_lookup)} for name, p in plans.items()}
    return dataclasses.replace(info, outputs=outputs, extra={**info.extra, "label_columns": labels})


def load(spec: Any, options: Any, fmt: str, seed: int | None, io: IONames) -> Splits:
    """The raw feature columns and a label per output, split by `spec`."""
    from tfbench.data.table_source import columns_of

    plans, _, table = _plans(spec, options, fmt, seed, io)
    first = plans[next(iter(plans))]
    named = {"train": Arrays(columns_of(table, first), _values(table, plans, "data.source"))}
    if options.test_path:
        where = "data.options.test_path"
        other = read_table(options.test_path, fmt, getattr(options, "delimiter", ","), where)
        missing = [name for name in plans if name not in other.column_names]
        if missing:
            raise UserError(f"the test file has no label column {missing[0]!r}", where)
        other = _all_labelled(other, list(plans))
        named["test"] = Arrays(columns_of(other, first, where), _values(other, plans, where))
    return split_arrays(spec, named, seed)


def _values(table: Any, plans: dict[str, TablePlan], location: str) -> dict[str, Any]:
    return {name: label_values(table[name], plan, location) for name, plan in plans.items()}


def _all_labelled(table: Any, labels: list[str]) -> Any:
    import pyarrow.compute as pc

    for name in labels:
        table = table.filter(pc.is_valid(table[name]))
    return table


def scoring_labels(table: Any, info: DataInfo) -> dict[str, Any] | None:
    """Each output's labels in a table of new rows to score, for the outputs whose column is there
    (None when none is): class ids with `NO_CLASS`, or targets with NaN, where a row has no label or
    one the run does not know, so those rows are scored and left out of that output's metric."""
    from tfbench.data.table_scoring import label_targets

    known = info.extra.get("label_columns") or {}
    labels = {
        name: label_targets(table[name], TablePlan(name, k["kind"], list(info.outputs[name].class_names), k["lookup"]))
        for name, k in known.items()
        if name in table.column_names
    }
    return labels or None


def loader_code(exp: Any, info: DataInfo) -> LoaderCode:
    """`tfbench code`'s data part for a table with a label per output: the one-label code of the
    first label, its `labels` and `load_data` redefined for every label column."""
    from tfbench.data.table_code import table_loader_code

    code = table_loader_code(exp, info)
    known = info.extra.get("label_columns") or {}
    labels = {
        name: (k["kind"], [str(v) if isinstance(v, str) else v for v in k["lookup"]]) for name, k in known.items()
    }
    extra = f'''


# Several outputs: a label column each — (kind, lookup values) by output name.
LABELS = {labels!r}


def labels(table):
    """Each output's label column as its targets: class ids (looked up) or float targets."""
    out = {{}}
    for name, (kind, lookup) in LABELS.items():
        column = table[name]
        if kind == "regression":
            out[name] = as_float(column).astype(np.float32).reshape(-1, 1)
        elif not lookup:
            out[name] = as_float(column).astype(np.int32)
        else:
            text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            probe = pc.cast(column, pa.string() if text else pa.int64())
            ids = pc.index_in(probe, value_set=pa.array(lookup))
            out[name] = ids.to_numpy(zero_copy_only=False).astype(np.int32)
    return out


def load_data():
    """The named splits: {{"train": (columns, labels)[, "test": …]}}; rows without every label left out."""
    named = {{}}
    for split_name, path in FILES.items():
        table = read_table(path)
        for name in LABELS:
            table = table.filter(pc.is_valid(table[name]))
        named[split_name] = (raw_columns(table), labels(table))
    return named'''
    pipeline = f'''def to_dataset(part, training):
    """Batches of encoded features and a label per output (one-hot where its loss wants it)."""
    x, y = part
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training and {exp.data.shuffle}:
        ds = ds.shuffle(len(next(iter(y.values()))), seed=SEED, reshuffle_each_iteration=True)
    ds = ds.batch(BATCH_SIZE)
    one_hot = globals().get("ONE_HOT", {{}})  # the outputs whose loss wants one-hot labels

    def encode(x, y):
        y = {{n: tf.one_hot(tf.cast(v, tf.int32), one_hot[n]) if n in one_hot else v for n, v in y.items()}}
        return PREPROCESSING(x), y

    return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)'''
    return dataclasses.replace(code, text=code.text + extra, pipeline=pipeline)
