"""Tables larger than memory: one pyarrow pass for the plan, then batches through `tf.data`.

No TensorFlow at import. A streamed table is read in record batches (`pyarrow.dataset`, CSV or
Parquet alike). The plan takes the same rules as an in-memory table from running counts (nulls,
sums of the training rows, value counts up to `MAX_COUNTED` values a column); the validation rows
are a seeded choice per row, decided batch by batch, so the plan pass and every epoch agree on
them. Each epoch shuffles rows within a window of `WINDOW_ROWS` and yields ready batches, so
memory stays flat however long the file is.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.data.info import one_label_kind
from tfbench.data.tables import (
    DATE_NOTE,
    NULL_VALUES,
    TIMESTAMP_FORMATS,
    ColumnPlan,
    TableOptions,
    TablePlan,
    as_float,
    label_plan,
    label_values,
    raw_column,
    type_family,
    type_for,
)
from tfbench.errors import UserError

BATCH_ROWS = 16_384  # rows per record batch read
WINDOW_ROWS = 65_536  # rows shuffled together
MAX_COUNTED = 50_000  # distinct values counted per column before it counts as "many"
STREAM_FRACTION = 0.25  # stream by default when the file is larger than this share of the memory


def should_stream(path_text: str, option: bool | None) -> bool:
    """The `stream` option, or by default whether the file is too large to hold comfortably."""
    if option is not None:
        return option
    path = Path(path_text).expanduser()
    if not path.exists():
        return False  # reading it says what is wrong
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    try:
        import os

        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return size > STREAM_FRACTION * memory


def batches(path: str, fmt: str, delimiter: str = ",") -> Iterator[Any]:
    """The file's record batches, in order (a Parquet folder's parts in name order), read one at a time.

    pyarrow's sequential readers (`csv.open_csv`, `ParquetFile.iter_batches`); the CSV reader reads
    a few dozen blocks ahead, so blocks of 1 MiB keep that read-ahead near 40 MB (4 MiB blocks held
    ~150 MB, which a small file never needed: memory then grew with the file up to that cap).
    """
    from pyarrow import csv, parquet

    source = Path(path).expanduser()
    if fmt == "csv":
        convert = csv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True, timestamp_parsers=[csv.ISO8601, *TIMESTAMP_FORMATS]
        )
        reader = csv.open_csv(
            str(source),
            read_options=csv.ReadOptions(block_size=1 << 20),
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=convert,
        )
        yield from reader
        return
    parts = (
        sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if source.is_dir()
        else [source]
    )
    for part in parts:
        yield from parquet.ParquetFile(str(part)).iter_batches(batch_size=BATCH_ROWS)


def holdout_mask(index: int, rows: int, fraction: float | None, seed: int | None) -> np.ndarray:
    """Which rows of record batch `index` are validation rows (seeded, the same every pass)."""
    if not fraction:
        return np.zeros(rows, bool)
    return np.random.default_rng([seed or 0, index]).random(rows) < fraction


@dataclass
class _Counts:
    """Running counts of one column: over all rows, and sums over the training rows."""

    family: str
    rows: int = 0
    nulls: int = 0
    train_nulls: int = 0
    total: float = 0.0
    squares: float = 0.0
    present: int = 0
    low: float = np.inf
    high: float = -np.inf
    values: Counter = field(default_factory=Counter)
    train_values: Counter = field(default_factory=Counter)
    many: bool = False

    def add(self, column, train) -> None:
        import pyarrow.compute as pc

        self.rows += len(column)
        self.nulls += column.null_count
        self.train_nulls += train.null_count
        if self.family in ("float", "int", "bool", "date"):
            values = as_float(column)
            train_values = as_float(train)
            finite = train_values[~np.isnan(train_values)]
            self.total += float(finite.sum())
            self.squares += float(np.square(finite).sum())
            self.present += finite.size
            if np.isfinite(values).any():
                self.low, self.high = min(self.low, np.nanmin(values)), max(self.high, np.nanmax(values))
        if self.family != "float" and not self.many:
            for target, part in ((self.values, column), (self.train_values, train)):
                counts = pc.value_counts(
                    pc.fill_null(pc.cast(part, "string"), "") if self.family == "string" else part.drop_null()
                )
                target.update({c["values"].as_py(): c["counts"].as_py() for c in counts})
            self.many = len(self.values) > MAX_COUNTED

    def kind(self, options: TableOptions) -> str:
        distinct = len(self.values) - (1 if "" in self.values and self.family == "string" else 0)
        unique = self.rows >= 20 and self.nulls == 0 and (self.many or distinct == self.rows)
        if self.family == "date":
            return "date"
        if self.family in ("float", "bool"):
            return "numeric"
        if self.family == "int":
            return "identifier" if unique and self.high - self.low + 1 == self.rows else "numeric"
        if unique:
            return "identifier"
        return "categorical" if not self.many and distinct <= options.max_one_hot else "text"

    def plan(self, name: str, kind: str, options: TableOptions) -> ColumnPlan:
        if kind in ("numeric", "date"):
            mean = self.total / self.present if self.present else 0.0
            variance = self.squares / self.present - mean**2 if self.present else 1.0
            return ColumnPlan(
                name,
                kind,
                "float32",
                self.train_nulls,
                0,
                mean,
                variance if variance > 0 else 1.0,
                indicator=self.train_nulls > 0,
            )
        dtype = "int64" if self.family in ("int", "bool") else "string"
        if kind == "text" or self.many:
            return ColumnPlan(name, "text", "string", self.train_nulls, len(self.train_values), bins=options.hash_bins)
        pairs = sorted(self.train_values.items(), key=lambda p: (-p[1], str(p[0])))
        vocabulary = [int(v) if dtype == "int64" else str(v) for v, _ in pairs]
        return ColumnPlan(name, "categorical", dtype, self.train_nulls, len(pairs), vocabulary=vocabulary)


@lru_cache(maxsize=4)
def stream_plan(path: str, stamp: float, fmt: str, options_json: str, fraction, seed) -> tuple[TablePlan, dict]:
    """The plan of a streamed table from one pass, and its sizes (`train`, `validation`)."""
    import json

    import pyarrow as pa

    options = type_for(fmt).model_validate(json.loads(options_json))
    names: list[str] | None = None
    counts: dict[str, _Counts] = {}
    labels: Counter = Counter()
    sizes = {"train": 0, "validation": 0}
    label = None
    for index, batch in enumerate(batches(path, fmt, getattr(options, "delimiter", ","))):
        if names is None:
            names = batch.schema.names
            label = _label_name(names, options, Path(path).name)
            counts = {n: _Counts(type_family(batch.schema.field(n).type)) for n in names if n != label}
        batch = batch.filter(batch.column(label).is_valid())
        mask = holdout_mask(index, batch.num_rows, fraction, seed)
        train = batch.filter(pa.array(~mask))
        sizes["validation"] += int(mask.sum())
        sizes["train"] += train.num_rows
        labels.update(batch.column(label).drop_null().to_pylist())
        for name, tally in counts.items():
            tally.add(batch.column(name), train.column(name))
    if names is None or label is None or not labels:
        raise UserError("the file has no rows with a label", f"data.source ({path})")
    kind, class_names, lookup = label_plan(pa.array(sorted(labels)), label, one_label_kind(options.label_kind))
    plan = TablePlan(
        label,
        kind,
        class_names,
        lookup,
        normalize=options.normalize,
        notes=[f"{Path(path).name} is read in batches of {BATCH_ROWS:,} rows (streamed)"],
    )
    _plan_columns(plan, counts, options)
    return plan, sizes


def _label_name(names: list[str], options: TableOptions, file: str) -> str:
    from tfbench.data.tables import check_overrides, column_index

    if isinstance(options.label, list):  # several label columns are refused before a stream is planned
        raise UserError("several label columns need the table in memory", "data.options.stream", "set stream = false")
    label = names[column_index(names, options.label, file, "data.options.label")]
    check_overrides(names, options, label, file)
    return label


def _plan_columns(plan: TablePlan, counts: dict[str, _Counts], options: TableOptions) -> None:
    wanted = options.features
    for name, tally in counts.items():
        if wanted is not None and name not in wanted:
            continue
        kind = options.columns.get(name) or tally.kind(options)
        if kind == "identifier":
            plan.notes.append(f"column {name!r} is unique per row (an identifier): dropped")
        elif kind == "drop":
            plan.notes.append(f"column {name!r} is dropped (data.options.columns)")
        else:
            if kind == "date":
                plan.notes.append(DATE_NOTE.format(name=name))
            plan.columns.append(tally.plan(name, kind, options))
    if not plan.columns:
        raise UserError("no feature columns are left", "data.options.columns", "keep at least one column")


def _windows(path: str, fmt: str, plan: TablePlan, delimiter: str, fraction, seed, validation: bool):
    """Windows of (raw columns, labels) of one split, in file order."""
    import pyarrow as pa

    parts: list = []
    held = 0
    for index, batch in enumerate(batches(path, fmt, delimiter)):
        batch = batch.filter(batch.column(plan.label).is_valid())
        mask = holdout_mask(index, batch.num_rows, fraction, seed)
        part = batch.filter(pa.array(mask if validation else ~mask))
        parts.append(part)
        held += part.num_rows
        if held >= WINDOW_ROWS:
            yield _arrays(pa.Table.from_batches(parts), plan)
            parts, held = [], 0
    if held:
        yield _arrays(pa.Table.from_batches(parts), plan)


def _arrays(table, plan: TablePlan) -> tuple[dict[str, np.ndarray], np.ndarray]:
    columns = {c.name: raw_column(table[c.name], c) for c in plan.columns}
    return columns, label_values(table[plan.label], plan, "data.source")


def dataset(path: str, fmt: str, plan: TablePlan, spec, delimiter: str, seed, *, validation: bool, shuffle: bool):
    """A batched `tf.data.Dataset` of (raw columns, labels) for one split, reading the file each epoch."""
    import tensorflow as tf

    size = spec.batch_size
    fraction = None if spec.validation else spec.validation_split

    epochs = itertools.count()

    def generate():
        rng = np.random.default_rng([seed or 0, next(epochs)])  # a new order every epoch, the same every run
        for columns, labels in _windows(path, fmt, plan, delimiter, fraction, seed, validation):
            order = rng.permutation(len(labels)) if shuffle else np.arange(len(labels))
            for start in range(0, len(labels), size):
                pick = order[start : start + size]
                yield {name: column[pick] for name, column in columns.items()}, labels[pick]

    dtypes = {"float32": tf.float32, "int64": tf.int64, "string": tf.string}
    x_spec = {c.name: tf.TensorSpec((None, 1), dtypes[c.dtype]) for c in plan.columns}
    y_spec = (
        tf.TensorSpec((None, 1), tf.float32) if plan.label_kind == "regression" else tf.TensorSpec((None,), tf.int32)
    )
    return tf.data.Dataset.from_generator(generate, output_signature=(x_spec, y_spec))
