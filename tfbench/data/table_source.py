"""What the `csv:` and `parquet:` kinds share: a table's plan, its DataInfo and its raw-column splits.

Without a UI; no TensorFlow. `describe` and `load` compute the same plan (cached while the file
and the options are unchanged): rows without a label are left out, the seeded validation rows
are held out *before* any statistics are taken, so normalisation and vocabularies come from the
training split only. The splits hold the raw columns by name (`Arrays.x` is a dict), which the
model's own preprocessing (`tfbench.data.feature_space`) encodes.
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.data.arrow_types import plain, unusable
from tfbench.data.info import DataInfo, one_label_kind
from tfbench.data.splits import Arrays, Splits, holdout_indices, planned_sizes, split_arrays
from tfbench.data.table_dates import date_note
from tfbench.data.table_inputs import model_columns, pack_if_wide
from tfbench.data.table_text import encoding_note
from tfbench.data.tables import (
    TableOptions,
    TablePlan,
    check_overrides,
    checked_form,
    chosen_kind,
    column_index,
    column_plan,
    file_stamp,
    fitting_kinds,
    inferred_kind,
    label_plan,
    label_values,
    read_table,
    type_for,
)
from tfbench.errors import UserError


def _read(spec, options: TableOptions, fmt: str, path: str | None = None, location: str = "data.source"):
    return read_table(
        path or spec.target, fmt, getattr(options, "delimiter", ","), location, getattr(options, "encoding", "utf-8")
    )


def _labelled(table, label: str, notes: list[str]):
    """The rows that have a label (others are left out, with a note)."""
    import pyarrow.compute as pc

    missing = table[label].null_count
    if missing:
        notes.append(f"{missing} rows without a {label!r} label are left out")
        table = table.filter(pc.is_valid(table[label]))
    return table


def _feature_names(names: list[str], label_index: int, options: TableOptions, file: str) -> list[str]:
    if options.features is None:
        return [n for i, n in enumerate(names) if i != label_index]
    picked = [
        names[column_index(names, f, file, f"data.options.features[{n}]")] for n, f in enumerate(options.features)
    ]
    if names[label_index] in picked:
        raise UserError("the label column is also listed as a feature", "data.options.features")
    return picked


def _train_rows(spec, n: int, seed: int | None) -> np.ndarray | None:
    """The training rows' indices when a validation fraction is held out (as `split_arrays` holds it)."""
    if spec.validation or not spec.validation_split or n < 2:
        return None
    return holdout_indices(n, spec.validation_split, seed)[0]


def plan_of(spec, options: TableOptions, fmt: str, seed: int | None) -> tuple[TablePlan, Any]:
    """The table's plan (label, feature kinds, training statistics) and its labelled rows."""
    return _plan(
        spec.target,
        file_stamp(spec.target),
        fmt,
        options.model_dump_json(),
        spec.validation,
        spec.validation_split,
        seed,
    )


@lru_cache(maxsize=8)
def _plan(target: str, stamp: float, fmt: str, options_json: str, validation, fraction, seed) -> tuple[TablePlan, Any]:
    import json

    from tfbench.data.options import parse_options

    spec = _SplitSpec(target, validation, fraction)
    options = parse_options(type_for(fmt), json.loads(options_json))
    table = _read(spec, options, fmt)
    names = table.column_names
    file = Path(target).name
    labels = options.label if isinstance(options.label, list) else [options.label]  # several: `table_labels`
    label = names[column_index(names, labels[0], file, "data.options.label")]
    check_overrides(names, options, label, file)
    notes: list[str] = []
    whole = table
    for name in [label, *labels[1:]]:  # a row needs every label column's value
        table = _labelled(table, name, notes)
    if table.num_rows == 0:
        raise UserError(f"no row has a {label!r} label", "data.options.label")
    kind, class_names, lookup = label_plan(table[label], label, one_label_kind(options.label_kind))
    features = _feature_names(names, names.index(label), options, file)
    rows = _train_rows(spec, table.num_rows, seed)
    train = table if rows is None else table.take(rows)
    plan = TablePlan(label, kind, class_names, lookup, normalize=options.normalize, notes=notes)
    for name in features:
        infer = partial(inferred_kind, table[name], options, name)
        column_kind, note = chosen_kind(name, table[name].type, options, infer)
        notes.extend([note] if note else [])
        if column_kind not in ("identifier", "drop"):
            form = checked_form(whole[name], column_kind, name)
            notes.extend([date_note(name, form)] if column_kind == "date" else [])
            inferred = name not in options.columns
            plan.columns.append(column_plan(train[name], column_kind, name, options, form, inferred))
            note = encoding_note(plan.columns[-1], train.num_rows, options.max_one_hot) if inferred else None
            notes.extend([note] if note else [])
    if not plan.columns:
        raise UserError("no feature columns are left", "data.options.columns", "keep at least one column")
    pack_if_wide(plan, options, names)
    return plan, table


class _SplitSpec:
    """The parts of a DataSpec the plan depends on (hashable, for the cache)."""

    def __init__(self, target: str, validation, validation_split):
        self.target, self.validation, self.validation_split = target, validation, validation_split


def columns_of(table, plan: TablePlan, location: str = "data.source") -> dict[str, np.ndarray]:
    """A table's feature columns as the model's raw inputs, by name.

    Raises:
        UserError: a training column missing from this table (e.g. a file to score).
    """
    present = set(table.column_names)  # a property that builds a new list on every call
    missing = [c.name for c in plan.columns if c.name not in present]
    if missing:
        raise UserError(f"the file has no column {missing[0]!r}, which the model takes", location)
    return model_columns(table, plan, None if location == "data.source" else location)  # a file to score: its place


def _streamed_plan(spec, options: TableOptions, fmt: str, seed: int | None):
    from tfbench.data import table_stream

    if options.test_path or spec.validation or spec.test:
        raise UserError(
            "a streamed table splits by validation_split only",
            "data.options.stream",
            "drop test_path / data.validation / data.test, or set stream = false",
        )
    return table_stream.stream_plan(
        spec.target, file_stamp(spec.target), fmt, options.model_dump_json(), spec.validation_split, seed
    )


def _info(spec, plan: TablePlan, rows: int, sizes: dict) -> DataInfo:
    return DataInfo(
        source=spec.source,
        input_shape=(plan.width,),
        label_kind=plan.label_kind,
        num_classes=len(plan.class_names),
        class_names=plan.class_names,
        label_shape=(1,) if plan.label_kind == "regression" else (),
        sizes=sizes,
        description=f"{rows:,} rows of {Path(spec.target).name}; label column {plan.label!r}; "
        f"{len(plan.columns)} feature columns.",
        extra={
            "label_column": plan.label,
            "feature_names": [c.name for c in plan.columns],
            "notes": list(plan.notes),
            "table": plan.to_dict(),
        },
    )


def describe(spec, options: TableOptions, fmt: str, seed: int | None = 42) -> DataInfo:
    """The table's plan as a DataInfo: encoded width, label kind and classes, notes, sizes."""
    from tfbench.data.table_stream import should_stream

    if should_stream(spec.target, options.stream):
        plan, sizes = _streamed_plan(spec, options, fmt, seed)
        return _info(spec, plan, sum(sizes.values()), dict(sizes))
    plan, table = plan_of(spec, options, fmt, seed)
    sizes = {"train": table.num_rows}
    if options.test_path:
        sizes["test"] = _read(spec, options, fmt, options.test_path, "data.options.test_path").num_rows
    return _info(spec, plan, table.num_rows, planned_sizes(spec, sizes))


def load(spec, options: TableOptions, fmt: str, seed: int | None = 42) -> Splits:
    """The raw feature columns and labels, split by `spec` (the plan's training rows); a large file streams."""
    from tfbench.data import table_stream

    if table_stream.should_stream(spec.target, options.stream):
        plan, sizes = _streamed_plan(spec, options, fmt, seed)
        delimiter, encoding = getattr(options, "delimiter", ","), getattr(options, "encoding", "utf-8")
        streams = [
            table_stream.dataset(
                spec.target, fmt, plan, spec, delimiter, seed, validation=held, shuffle=shuffle, encoding=encoding
            )
            for held, shuffle in ((False, spec.shuffle), (True, False))
        ]
        return Splits(streams[0], streams[1], None, dict(sizes), batched=True)
    plan, table = plan_of(spec, options, fmt, seed)
    named = {"train": Arrays(columns_of(table, plan), label_values(table[plan.label], plan, "data.source"))}
    if options.test_path:
        where = "data.options.test_path"
        other = _read(spec, options, fmt, options.test_path, where)
        other = _labelled(other, plan.label, []) if plan.label in other.column_names else other
        if plan.label not in other.column_names:
            raise UserError(f"the test file has no label column {plan.label!r}", where)
        named["test"] = Arrays(columns_of(other, plan, where), label_values(other[plan.label], plan, where))
    return split_arrays(spec, named, seed)


def overview(spec, options: TableOptions, fmt: str, seed: int | None = 42, n: int = 6) -> dict[str, Any]:
    """The file's own columns for the dataset screen: raw rows under their names, and per column its
    inferred and chosen kind, the kinds its values fit, missing and distinct counts, and role (label,
    feature, dropped). A kind set in `columns` that a column's values do not fit is that column's
    `error` (the others are shown as planned without it), so one wrong kind never hides the table.

    Returns:
        `{"header": [...], "rows": [[cell text, …] × n], "columns": [{name, kind, inferred, fits,
        missing, distinct, role[, error]}]}`; counts are over the whole file.
    """
    import pyarrow.compute as pc

    plan, errors = _plan_past_kind_errors(spec, options, fmt, seed)
    table = _read(spec, options, fmt)
    planned = {c.name: c.kind for c in plan.columns}
    columns = []
    for name in table.column_names:
        column = table[name]
        inferred = "label" if name == plan.label else inferred_kind(column, options, name)
        role = "label" if name == plan.label else ("feature" if name in planned else "dropped")
        columns.append(
            {
                "name": name,
                "inferred": inferred,
                "kind": options.columns[name]
                if name in errors
                else planned.get(name, options.columns.get(name, inferred)),
                "fits": [] if name == plan.label else fitting_kinds(column, name),
                "missing": column.null_count,
                "distinct": 0 if unusable(column.type) else pc.count_distinct(plain(column)).as_py(),
                "role": "feature" if name in errors else role,
                **({"error": errors[name]} if name in errors else {}),
            }
        )
    head = table.slice(0, n).to_pylist()
    rows = [["—" if row[name] is None else str(row[name]) for name in table.column_names] for row in head]
    return {"header": table.column_names, "rows": rows, "columns": columns}


def _plan_past_kind_errors(spec, options: TableOptions, fmt: str, seed: int | None) -> tuple[TablePlan, dict[str, str]]:
    """The plan, leaving out each `columns` kind its column's values do not fit; those columns' errors by name."""
    errors: dict[str, str] = {}
    while True:
        try:
            return plan_of(spec, options, fmt, seed)[0], errors
        except UserError as exc:
            name = (exc.location or "").removeprefix("data.options.columns.")
            if name == exc.location or name not in options.columns or name in errors:
                raise
            errors[name] = exc.message
            kinds = {k: v for k, v in options.columns.items() if k != name}
            options = options.model_copy(update={"columns": kinds})
