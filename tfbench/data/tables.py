"""Tables (CSV, Parquet) read with pyarrow: column kinds, overrides, training-split statistics.

Without a UI; no TensorFlow (pyarrow is imported when a table is read). A table becomes a
`TablePlan` — plain data: the label and its classes, each feature column's kind (numeric,
categorical, text, date) with the statistics of the *training split only* (mean and variance,
vocabulary, hash bins, whether missing values occur) and a note for every column dropped
(identifiers, overrides). `tfbench.data.feature_space` turns a plan into the Keras preprocessing
that sits inside the model, so the model takes the file's raw named columns.

Missing values are `NA`, `N/A`, `NaN`, `null`, `None` or empty cells; a numeric or date column
holding any in the training split gets an indicator feature beside its imputed value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tfbench.data.info import LabelKind
from tfbench.data.options import SourceOptions
from tfbench.errors import UserError, close_matches

KINDS = ("numeric", "categorical", "text", "date", "identifier", "drop")
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A"]
TIMESTAMP_FORMATS = ("%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y", "%d.%m.%Y")
MAX_INTEGER_CLASSES = 20  # whole-number labels with at most this many values are classes
MIN_ROWS_FOR_IDENTIFIER = 20  # fewer rows than this: a unique column proves nothing
DATE_FEATURES = ("elapsed", "year_sin", "year_cos", "week_sin", "week_cos")
SECONDS_PER_DAY = 86_400.0
DATE_NOTE = "column {name!r} is a date: it gives elapsed days and cyclic day-of-year and weekday features"


class TableOptions(SourceOptions):
    """The label column, which columns are features and what kind each one is."""

    label: str | int | list[str] = Field(
        -1,
        description="Label column: its name or index (default: the last column); "
        "a list of columns for a model with an output per column.",
    )
    features: list[str | int] | None = Field(None, description="Feature columns (default: all others).")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Column kinds by name: numeric, categorical, text, date, identifier or drop "
        '(e.g. { date = "drop", island = "categorical" }); others are inferred.',
    )
    label_kind: (
        Literal["categorical", "binary", "regression"]
        | dict[str, Literal["categorical", "binary", "regression"]]
        | None
    ) = Field(None, description="Override the inferred label kind (several label columns: a kind per column).")
    normalize: bool = Field(True, description="Standardise numeric columns with the training split's statistics.")
    max_one_hot: int = Field(
        32, ge=2, description="Text columns with at most this many values are one-hot; more are hashed."
    )
    hash_bins: int = Field(64, ge=2, description="Bins of a hashed text column.")
    test_path: str | None = Field(None, description="A second file with the same columns: the 'test' split.")
    stream: bool | None = Field(
        None,
        description="Read the file in batches each epoch instead of loading it whole "
        "(default: when it is larger than a quarter of the free memory).",
    )


@dataclass
class ColumnPlan:
    """How one feature column enters the model.

    Attributes:
        name: the column's name in the file.
        kind: numeric, categorical, text (hashed) or date.
        dtype: the raw input the model takes: "float32", "int64" or "string" (dates: days since 1970).
        missing: missing cells in the training split.
        distinct: distinct values in the training split (categorical and text columns; 0 otherwise).
        mean / variance: training statistics of a numeric column (of the days, for a date).
        vocabulary: a categorical column's values, most frequent first.
        bins: a text column's hash bins.
        indicator: whether a 0/1 "was missing" feature goes beside the imputed value.
    """

    name: str
    kind: str
    dtype: str
    missing: int = 0
    distinct: int = 0
    mean: float = 0.0
    variance: float = 1.0
    vocabulary: list = field(default_factory=list)
    bins: int = 0
    indicator: bool = False

    @property
    def width(self) -> int:
        """Features this column gives the model."""
        extra = 1 if self.indicator else 0
        if self.kind == "categorical":
            return len(self.vocabulary) + 1  # + one out-of-vocabulary slot
        if self.kind == "text":
            return self.bins
        if self.kind == "date":
            return len(DATE_FEATURES) + extra
        return 1 + extra


@dataclass
class TablePlan:
    """A table's label and feature columns, as plain data (it travels in `DataInfo.extra["table"]`)."""

    label: str
    label_kind: LabelKind
    class_names: list[str]
    label_lookup: list = field(default_factory=list)
    columns: list[ColumnPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    normalize: bool = True

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TablePlan:
        data = dict(data)
        data["columns"] = [ColumnPlan(**c) for c in data.get("columns", [])]
        return cls(**data)


def type_for(fmt: str) -> type[TableOptions]:
    """The options model of a table kind (`csv` adds the delimiter)."""
    from tfbench.data import registry

    return registry.source_module(fmt).OPTIONS


# -- reading ------------------------------------------------------------------------------------


def _where(path: str, location: str = "data.source") -> str:
    return f"{location} ({path})"


@lru_cache(maxsize=4)
def _read_csv(path: str, mtime: float, delimiter: str):
    import pyarrow as pa
    from pyarrow import csv

    convert = csv.ConvertOptions(
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        timestamp_parsers=[csv.ISO8601, *TIMESTAMP_FORMATS],
    )
    try:
        return csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=delimiter), convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise UserError(f"cannot read as CSV: {str(exc).splitlines()[0]}", _where(path)) from None
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", _where(path)) from None


@lru_cache(maxsize=4)
def _read_parquet(path: str, mtime: float):
    import pyarrow as pa
    from pyarrow import parquet

    try:
        return parquet.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"cannot read as Parquet: {str(exc).splitlines()[0]}", _where(path)) from None


def file_stamp(path_text: str) -> float:
    """When a file (or the newest file of a folder) last changed; 0 when it does not exist."""
    path = Path(path_text).expanduser()
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob("*")), default=0.0)
    return path.stat().st_mtime if path.exists() else 0.0


def read_table(path_text: str, fmt: str, delimiter: str = ",", location: str = "data.source"):
    """The whole file as a `pyarrow.Table` (cached while the file is unchanged).

    Args:
        path_text: a CSV file, a Parquet file, or a folder of Parquet part files.
        fmt: "csv" or "parquet".
        delimiter: the CSV field separator.
        location: where to place an error.

    Raises:
        UserError: no such file, a folder where a file is needed, unreadable or empty data.
    """
    path = Path(path_text).expanduser()
    if not path.exists():
        raise UserError("no such file", _where(path_text, location))
    if fmt == "csv":
        if path.is_dir():
            raise UserError("is a folder, not a CSV file", _where(path_text, location))
        table = _read_csv(str(path), path.stat().st_mtime, delimiter)
    else:
        table = _read_parquet(str(path), file_stamp(path_text))
    if table.num_columns == 0:
        raise UserError("the file is empty", _where(path_text, location))
    if table.num_rows == 0:
        raise UserError("the file has a header but no rows", _where(path_text, location))
    return table


def column_index(names: list[str], key: str | int, file: str, location: str) -> int:
    """The index of a column given by name or (negative) index.

    Raises:
        UserError: at `location`, with the closest names.
    """
    if isinstance(key, int):
        if not -len(names) <= key < len(names):
            raise UserError(f"column index {key} is out of range: the file has {len(names)} columns", location)
        return key % len(names)
    if key not in names:
        hint = close_matches(key, names) or f"columns: {', '.join(names)}"
        raise UserError(f"{file} has no column {key!r}", location, hint)
    return names.index(key)


# -- column kinds ---------------------------------------------------------------------------------


def type_family(arrow_type) -> str:
    """ "float", "int", "bool", "date" or "string" for a pyarrow type."""
    import pyarrow.types as t

    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "float"
    if t.is_integer(arrow_type):
        return "int"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return "date"
    return "string"


def inferred_kind(column, options: TableOptions) -> str:
    """A column's kind from its values: numbers are numeric, dates dates, unique values identifiers.

    Whole numbers that count up by one through every row (1, 2, 3, …) are identifiers too; a text
    column with at most `max_one_hot` values is categorical, with more it is text (hashed).
    """
    import pyarrow.compute as pc

    family = type_family(column.type)
    if family == "date":
        return "date"
    if family in ("float", "bool"):
        return "numeric"  # decided without counting values: counting a float column is the slow part
    present = len(column) - column.null_count
    distinct = pc.count_distinct(column).as_py()
    unique = present >= MIN_ROWS_FOR_IDENTIFIER and distinct == present == len(column)
    if family == "int":
        span = pc.max(column).as_py() - pc.min(column).as_py() + 1 if present else 0
        return "identifier" if unique and span == present else "numeric"
    if unique:
        return "identifier"
    return "categorical" if distinct <= options.max_one_hot else "text"


def _convert(column, kind: str, name: str):
    """The column as the kind needs it: numbers to float, dates to days; a bad cell is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    where = f"data.options.columns.{name}"
    family = type_family(column.type)
    try:
        if kind == "numeric" and family == "string":
            return pc.cast(column, pa.float64())
        if kind == "date" and family == "string":
            return pc.strptime(column, format="%Y-%m-%d", unit="s")
    except pa.ArrowInvalid:
        values = column.to_pylist()
        bad = next(i for i, v in enumerate(values) if v is not None and not _parses(v, kind))
        what = "a number" if kind == "numeric" else "a date (YYYY-MM-DD)"
        raise UserError(
            f"column {name!r} holds values that are not {what} (row {bad + 2}: {values[bad]!r})",
            where,
            "fix those cells, or choose another kind",
        ) from None
    if kind in ("numeric", "date") and family not in ("float", "int", "bool", "date"):
        raise UserError(f"column {name!r} cannot be {kind}", where)
    if kind == "date" and family != "date":
        raise UserError(f"column {name!r} holds numbers, not dates", where, "choose numeric")
    return column


def _parses(value: str, kind: str) -> bool:
    import datetime

    try:
        if kind == "numeric":
            float(value)
        else:
            datetime.date.fromisoformat(value)
        return True
    except ValueError:
        return False


def check_overrides(names: list[str], options: TableOptions, label: str, file: str) -> None:
    """Every `columns` entry names a column of the file and a known kind, and not the label.

    Raises:
        UserError: one line, at `data.options.columns.NAME`.
    """
    for name, kind in options.columns.items():
        where = f"data.options.columns.{name}"
        if name not in names:
            hint = close_matches(name, names) or f"columns: {', '.join(names)}"
            raise UserError(f"{file} has no column {name!r}", where, hint)
        if kind not in KINDS:
            hint = close_matches(kind, KINDS) or f"choose {', '.join(KINDS)}"
            raise UserError(f"unknown column kind {kind!r}", where, hint)
        if name == label:
            raise UserError(f"{name!r} is the label column; its kind is set by label_kind", where)


# -- statistics of the training rows ----------------------------------------------------------


def column_plan(column, kind: str, name: str, options: TableOptions) -> ColumnPlan:
    """The kind and training-split statistics of one feature column."""
    import pyarrow.compute as pc

    column = _convert(column, kind, name)
    missing = column.null_count
    family = type_family(column.type)
    if kind in ("numeric", "date"):
        values = as_float(column)
        finite = values[~np.isnan(values)]
        mean = float(finite.mean()) if finite.size else 0.0
        variance = float(finite.var()) if finite.size else 1.0
        return ColumnPlan(
            name, kind, "float32", missing, 0, mean, variance if variance > 0 else 1.0, indicator=missing > 0
        )
    counts = pc.value_counts(column.drop_null() if family != "string" else pc.fill_null(column, ""))
    pairs = sorted(((c["values"].as_py(), c["counts"].as_py()) for c in counts), key=lambda p: (-p[1], str(p[0])))
    dtype = "int64" if family in ("int", "bool") else "string"
    if kind == "text":
        return ColumnPlan(name, "text", dtype, missing, len(pairs), bins=options.hash_bins)
    vocabulary = [int(v) if dtype == "int64" else str(v) for v, _ in pairs]
    return ColumnPlan(name, "categorical", dtype, missing, len(pairs), vocabulary=vocabulary)


def as_float(column) -> np.ndarray:
    """A numeric or date column as float values (dates as days since 1970-01-01), NaN where missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if type_family(column.type) == "date":
        seconds = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
        return (
            pc.divide(pc.cast(seconds, pa.float64()), SECONDS_PER_DAY).to_numpy(zero_copy_only=False).astype(np.float64)
        )
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def raw_column(column, plan: ColumnPlan) -> np.ndarray:
    """A column as the model's raw input: shape (rows, 1), float32 with NaN, int64 (-1 missing) or str."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if plan.dtype == "float32":
        column = _convert(column, plan.kind, plan.name)
        return as_float(column).astype(np.float32).reshape(-1, 1)
    if plan.dtype == "int64":
        filled = pc.fill_null(pc.cast(column, pa.int64()), -1)
        return filled.to_numpy(zero_copy_only=False).astype(np.int64).reshape(-1, 1)
    text = pc.fill_null(pc.cast(column, pa.string()), "")
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object).reshape(-1, 1)


# -- the label ------------------------------------------------------------------------------------


def label_plan(column, name: str, override: LabelKind | None) -> tuple[LabelKind, list[str], list]:
    """(label kind, class names, lookup values) of the label column.

    Text labels are classes named by their sorted values. Whole numbers 0..K-1 are class ids;
    other whole numbers (years, codes) with at most `MAX_INTEGER_CLASSES` values are looked up
    (classes named by their sorted values); anything else is a regression target.

    Raises:
        UserError: at `data.options.label_kind`, when the override cannot fit the values.
    """
    import pyarrow.compute as pc

    where = "data.options.label_kind"
    family = type_family(column.type)
    if family in ("string", "date"):
        if override == "regression":
            raise UserError(f"column {name!r} holds text, which cannot be a regression target", where)
        values = sorted(str(v) for v in pc.unique(pc.cast(column, "string")).to_pylist())
        kind: LabelKind = override or ("binary" if len(values) == 2 else "categorical")
        lookup: list[Any] = values
    else:
        numbers = np.unique(as_float(column))
        whole = bool(np.all(np.mod(numbers, 1) == 0))
        ids = whole and numbers.size > 0 and numbers.min() == 0 and numbers.max() == numbers.size - 1
        few = whole and numbers.size <= MAX_INTEGER_CLASSES
        if override == "regression" or (override is None and not (ids or few)):
            return "regression", [], []
        if not whole:
            raise UserError(
                f"column {name!r} holds fractional numbers, which cannot be classes",
                where,
                'use label_kind = "regression"',
            )
        lookup = [] if ids else [int(v) for v in numbers]
        values = [str(int(v)) for v in numbers]
        kind = override or ("binary" if len(values) == 2 else "categorical")
    if kind == "binary" and len(values) > 2:
        raise UserError(f"binary labels need 2 classes, column {name!r} has {len(values)}", where)
    return kind, values, lookup


def label_values(column, plan: TablePlan, location: str) -> np.ndarray:
    """The label column as the model's targets: class ids (int32) or regression values (float32, (n, 1)).

    Raises:
        UserError: a class that does not occur in the training file (e.g. in the test file).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if plan.label_kind == "regression":
        return as_float(column).astype(np.float32).reshape(-1, 1)
    if not plan.label_lookup:
        return as_float(column).astype(np.int32)
    family = type_family(column.type)
    value_set = pa.array(plan.label_lookup if family not in ("string", "date") else [str(v) for v in plan.label_lookup])
    probe = column if family not in ("string", "date") else pc.cast(column, pa.string())
    if family not in ("string", "date"):
        probe = pc.cast(probe, pa.int64())
    ids = pc.index_in(probe, value_set=value_set)
    if ids.null_count:
        first = pc.index(pc.is_null(ids), True).as_py()
        raise UserError(f"label {column[first].as_py()!r} does not occur in the training file", location)
    return ids.to_numpy(zero_copy_only=False).astype(np.int32)
