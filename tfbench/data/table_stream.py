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
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.data.arrow_types import is_categorical, plain, type_family, unusable
from tfbench.data.info import one_label_kind
from tfbench.data.table_dates import (
    UNIX_MILLISECONDS,
    date_note,
    first_unreadable,
    parsed,
    text_form,
    unix_range_form,
)
from tfbench.data.table_inputs import layout, model_columns, pack_if_wide
from tfbench.data.table_text import MIN_WORDS, encoding_note
from tfbench.data.tables import (
    SECONDS_PER_DAY,
    ColumnPlan,
    TableOptions,
    TablePlan,
    as_float,
    check_label_type,
    check_names,
    chosen_kind,
    coded_plan,
    csv_convert_options,
    csv_read_options,
    label_plan,
    label_values,
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


def batches(
    path: str,
    fmt: str,
    delimiter: str = ",",
    *,
    encoding: str = "utf-8",
    columns: list[str] | None = None,
    types: dict[str, Any] | None = None,
    location: str = "data.source",
) -> Iterator[Any]:
    """The file's record batches, in order (a Parquet folder's parts in name order), read one at a time.

    pyarrow's sequential readers (`csv.open_csv`, `ParquetFile.iter_batches`); the CSV reader reads
    a few dozen blocks ahead, so blocks of 1 MiB keep that read-ahead near 40 MB (4 MiB blocks held
    ~150 MB, which a small file never needed: memory then grew with the file up to that cap).

    Args:
        columns: read only these columns (default all).
        types: CSV column types to read as (others are inferred from the first block).
        location: where an error is placed.

    Raises:
        UserError: at `location`, a file pyarrow cannot read, a cell that does not fit its column's
            type, a column name used twice.
    """
    import pyarrow as pa

    where = f"{location} ({path})"
    try:
        for index, batch in enumerate(_read_batches(Path(path).expanduser(), fmt, delimiter, encoding, columns, types)):
            if index == 0:
                check_names(batch.schema.names, where)
            yield batch
    except pa.ArrowInvalid as exc:
        text = str(exc).splitlines()[0]
        hint = 'save the file as UTF-8, or set data.options.encoding (e.g. "latin-1")' if "UTF8" in text else None
        raise UserError(f"cannot read: {text}", where, hint) from None


def _read_batches(source: Path, fmt: str, delimiter: str, encoding: str, columns, types) -> Iterator[Any]:
    from pyarrow import csv, parquet

    if fmt == "csv":
        extra: dict[str, Any] = {"column_types": types or {}}
        if columns is not None:
            extra["include_columns"] = columns
        reader = csv.open_csv(
            str(source),
            read_options=csv_read_options(encoding, block_size=1 << 20),
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=csv_convert_options(**extra),
        )
        yield from reader
        return
    for part in parquet_parts(source):
        yield from parquet.ParquetFile(str(part)).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def parquet_parts(source: Path) -> list[Path]:
    """A Parquet file, or a folder's part files in name order (hidden and `_` files left out)."""
    if not source.is_dir():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def holdout_mask(index: int, rows: int, fraction: float | None, seed: int | None) -> np.ndarray:
    """Which rows of record batch `index` are validation rows (seeded, the same every pass)."""
    if not fraction:
        return np.zeros(rows, bool)
    return np.random.default_rng([seed or 0, index]).random(rows) < fraction


@dataclass
class _Counts:
    """Running counts of one column: over all rows, and sums over the training rows."""

    family: str
    categorical: bool = False
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
    arrow_type: Any = None
    name: str = ""
    form: str | None = None  # a text column's written date form, found in its first batch
    days: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # training days: sum, squares, count

    def add(self, column, train) -> None:
        import pyarrow.compute as pc

        column, train = plain(column), plain(train)
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
        if self.family == "string":
            self._add_dates(column, train)

    def _add_dates(self, column: Any, train: Any) -> None:
        """Whether the text is dates in one written form, and the training days' sums if it is."""
        if self.rows == len(column):  # the first batch decides the form
            self.form = text_form(column)
        elif self.form and first_unreadable(column, self.form) is not None:
            self.form = None
        if self.form:
            values = as_float(parsed(train, self.form))
            finite = values[~np.isnan(values)]
            self.days = [
                self.days[0] + float(finite.sum()),
                self.days[1] + float(np.square(finite).sum()),
                self.days[2] + finite.size,
            ]

    def kind(self, options: TableOptions) -> str:
        distinct = len(self.values) - (1 if "" in self.values and self.family == "string" else 0)
        unique = self.rows >= 20 and self.nulls == 0 and (self.many or distinct == self.rows)
        if self.family == "date" or (self.family == "string" and self.form and not self.categorical):
            return "date"
        if self.family in ("float", "bool"):
            return "numeric"
        if self.categorical:
            return "categorical" if not self.many else "hashed"
        if self.family == "int" and self.present and unix_range_form(self.low, self.high, self.name):
            return "date"
        if self.family == "int":
            return "identifier" if unique and self.high - self.low + 1 == self.rows else "numeric"
        if unique:
            return "identifier"
        if self.many:
            return "hashed"
        return "categorical" if distinct <= options.max_one_hot else self._many_values_kind()

    def _many_values_kind(self) -> str:
        """`text` when the values hold several words on average, else `categorical` (see `table_text`)."""
        counted = [(v, c) for v, c in self.values.items() if v != ""]
        rows = sum(c for _, c in counted)
        words = sum(c * len(str(v).split()) for v, c in counted)
        return "text" if rows and words / rows >= MIN_WORDS else "categorical"

    def plan(self, name: str, kind: str, options: TableOptions, inferred: bool = False) -> ColumnPlan:
        if kind == "date":
            return self._date_plan(name)
        if kind == "numeric":
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
        if self.many:  # more values than were counted
            return ColumnPlan(
                name, "hashed", "string", self.train_nulls, len(self.train_values), bins=options.hash_bins
            )
        pairs = sorted(self.train_values.items(), key=lambda p: (-p[1], str(p[0])))
        return coded_plan(name, kind, dtype, self.train_nulls, pairs, options, inferred)

    def _date_plan(self, name: str) -> ColumnPlan:
        """A date column's plan: its written form and the training days' mean and variance."""
        where = f"data.options.columns.{name}"
        form, scale = "", 1.0
        total, squares, present = self.total, self.squares, float(self.present)
        if self.family == "string":
            if not self.form:
                raise UserError(f"column {name!r} holds values that are not dates in one written form", where)
            form, (total, squares, present) = self.form, self.days
        elif self.family != "date":
            form = unix_range_form(self.low, self.high, name, named=False) or ""
            if not form:
                raise UserError(f"column {name!r} holds numbers, not dates (nor Unix times)", where, "choose numeric")
            scale = SECONDS_PER_DAY * (1000.0 if form == UNIX_MILLISECONDS else 1.0)
        mean = total / present if present else 0.0
        variance = (squares / present - mean**2) / scale**2 if present else 1.0
        return ColumnPlan(
            name,
            "date",
            "string",
            self.train_nulls,
            0,
            mean / scale,
            variance if variance > 0 else 1.0,
            indicator=self.train_nulls > 0,
            form=form,
        )


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
    reading = batches(path, fmt, getattr(options, "delimiter", ","), encoding=getattr(options, "encoding", "utf-8"))
    for index, batch in enumerate(reading):
        if names is None:
            names = batch.schema.names
            label = _label_name(names, options, Path(path).name)
            check_label_type(batch.schema.field(label).type, label)
            types = {n: batch.schema.field(n).type for n in names if n != label}
            counts = {n: _Counts(type_family(t), is_categorical(t), arrow_type=t, name=n) for n, t in types.items()}
        batch = batch.filter(batch.column(label).is_valid())
        mask = holdout_mask(index, batch.num_rows, fraction, seed)
        train = batch.filter(pa.array(~mask))
        sizes["validation"] += int(mask.sum())
        sizes["train"] += train.num_rows
        labels.update(batch.column(label).drop_null().to_pylist())
        for name, tally in counts.items():
            if not unusable(tally.arrow_type):
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
        kind, note = chosen_kind(name, tally.arrow_type, options, partial(tally.kind, options))
        plan.notes.extend([note] if note else [])
        if kind not in ("identifier", "drop"):
            inferred = name not in options.columns
            plan.columns.append(tally.plan(name, kind, options, inferred))
            plan.notes.extend([date_note(name, plan.columns[-1].form)] if kind == "date" else [])
            note = encoding_note(plan.columns[-1], tally.rows, options.max_one_hot) if inferred else None
            plan.notes.extend([note] if note else [])
    if not plan.columns:
        raise UserError("no feature columns are left", "data.options.columns", "keep at least one column")
    pack_if_wide(plan, options, [*counts, plan.label])


def _windows(path: str, fmt: str, plan: TablePlan, delimiter: str, fraction, seed, validation: bool, encoding: str):
    """Windows of (raw columns, labels) of one split, in file order."""
    import pyarrow as pa

    parts: list = []
    held = 0
    for index, batch in enumerate(batches(path, fmt, delimiter, encoding=encoding)):
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
    return model_columns(table, plan), label_values(table[plan.label], plan, "data.source")


def dataset(
    path: str,
    fmt: str,
    plan: TablePlan,
    spec,
    delimiter: str,
    seed,
    *,
    validation: bool,
    shuffle: bool,
    encoding: str = "utf-8",
):
    """A batched `tf.data.Dataset` of (raw columns, labels) for one split, reading the file each epoch."""
    import tensorflow as tf

    size = spec.batch_size
    fraction = None if spec.validation else spec.validation_split

    epochs = itertools.count()

    def generate():
        rng = np.random.default_rng([seed or 0, next(epochs)])  # a new order every epoch, the same every run
        for columns, labels in _windows(path, fmt, plan, delimiter, fraction, seed, validation, encoding):
            order = rng.permutation(len(labels)) if shuffle else np.arange(len(labels))
            for start in range(0, len(labels), size):
                pick = order[start : start + size]
                yield {name: column[pick] for name, column in columns.items()}, labels[pick]

    dtypes = {"float32": tf.float32, "int64": tf.int64, "string": tf.string}
    x_spec = {name: tf.TensorSpec((None, width), dtypes[dtype]) for name, (width, dtype) in layout(plan).items()}
    y_spec = (
        tf.TensorSpec((None, 1), tf.float32) if plan.label_kind == "regression" else tf.TensorSpec((None,), tf.int32)
    )
    return tf.data.Dataset.from_generator(generate, output_signature=(x_spec, y_spec))
