"""Tables (CSV, Parquet) read with pyarrow: column kinds, overrides, training-split statistics.

Without a UI; no TensorFlow (pyarrow is imported when a table is read). A table becomes a
`TablePlan` — plain data: the label and its classes, each feature column's kind (numeric,
categorical, text, hashed, date) with the statistics of the *training split only* (mean and
variance, vocabulary or words, hash bins, whether missing values occur, a date's written form) and
a note for every column dropped (identifiers, overrides, types no model takes) or read in a way
worth saying (dates, text with many values). `tfbench.data.feature_space` turns a plan into the
Keras preprocessing that sits inside the model, so the model takes the file's raw named columns.
A cell that does not fit its column's kind is an error naming the file's row.

Missing values are `NA`, `N/A`, `NaN`, `null`, `None` or empty cells; a numeric or date column
holding any in the training split gets an indicator feature beside its imputed value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tfbench.data.arrow_types import is_categorical, plain, type_family, unusable
from tfbench.data.info import LabelKind
from tfbench.data.options import SourceOptions
from tfbench.data.table_dates import best_form, first_unreadable, iso_text, parsed, text_form, unix_form
from tfbench.data.table_text import frequent_values, many_values_kind, word_vocabulary
from tfbench.errors import UserError, close_matches

KINDS = ("numeric", "categorical", "text", "hashed", "date", "identifier", "drop")
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A"]
MAX_INTEGER_CLASSES = 20  # whole-number labels with at most this many values are classes
MIN_ROWS_FOR_IDENTIFIER = 20  # fewer rows than this: a unique column proves nothing
DATE_FEATURES = ("elapsed", "year_sin", "year_cos", "week_sin", "week_cos")
SECONDS_PER_DAY = 86_400.0


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
        description="Column kinds by name: numeric, categorical, text, hashed, date, identifier or drop "
        '(e.g. { date = "drop", island = "categorical" }); others are inferred.',
    )
    label_kind: (
        Literal["categorical", "binary", "regression"]
        | dict[str, Literal["categorical", "binary", "regression"]]
        | None
    ) = Field(None, description="Override the inferred label kind (several label columns: a kind per column).")
    normalize: bool = Field(True, description="Standardise numeric columns with the training split's statistics.")
    max_one_hot: int = Field(
        32,
        ge=2,
        description="Text columns with at most this many values are one-hot; with more, their words "
        "(values of several words) or their most frequent values (one word) are used.",
    )
    max_words: int = Field(256, ge=1, description="Words a text column keeps: the most frequent, seen twice.")
    hash_bins: int = Field(64, ge=2, description='Bins of a hashed text column (kind "hashed").')
    max_numeric_inputs: int = Field(
        256,
        ge=1,
        description="Numeric columns the model takes as inputs of their own; a table with more takes them "
        "as one matrix input, `numbers` (a model with thousands of inputs takes minutes to build).",
    )
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
        kind: numeric, categorical, text (its words), hashed or date.
        dtype: the raw input the model takes: "float32", "int64" or "string" (dates: ISO text).
        missing: missing cells in the training split.
        distinct: distinct values in the training split (categorical and text columns; 0 otherwise).
        mean / variance: training statistics of a numeric column (of the days, for a date).
        vocabulary: a categorical column's values or a text column's words, most frequent first.
        bins: a hashed column's bins.
        indicator: whether a 0/1 "was missing" feature goes beside the imputed value.
        form: a date column's written form in the file (`table_dates.FORMS`, Unix seconds; "" typed).
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
    form: str = ""

    @property
    def width(self) -> int:
        """Features this column gives the model."""
        extra = 1 if self.indicator else 0
        if self.kind in ("categorical", "text"):
            return len(self.vocabulary) + 1  # + one out-of-vocabulary slot (other values, other words)
        if self.kind == "hashed":
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
    packed: str = ""  # the input holding every numeric column as one matrix ("": an input per column)

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

    model = registry.source_module(fmt).OPTIONS
    if not issubclass(model, TableOptions):
        raise ValueError(f"{fmt!r} is not a table kind")
    return model


# -- reading ------------------------------------------------------------------------------------


def _where(path: str, location: str = "data.source") -> str:
    return f"{location} ({path})"


def csv_convert_options(**extra: Any):
    """pyarrow's CSV conversion as every table read uses it: the missing-value words and date forms."""
    from pyarrow import csv

    return csv.ConvertOptions(
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        timestamp_parsers=[csv.ISO8601],  # other written forms: `table_dates.text_form`
        **extra,
    )


def csv_read_options(encoding: str = "utf-8", **extra: Any):
    """pyarrow's CSV read options with the file's text encoding."""
    from pyarrow import csv

    return csv.ReadOptions(encoding=encoding, **extra)


@lru_cache(maxsize=4)
def _read_csv(path: str, mtime: float, delimiter: str, encoding: str, location: str):
    import pyarrow as pa
    from pyarrow import csv

    try:
        return csv.read_csv(
            path,
            read_options=csv_read_options(encoding),
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=csv_convert_options(),
        )
    except pa.ArrowInvalid as exc:
        raise UserError(f"cannot read as CSV: {str(exc).splitlines()[0]}", _where(path, location)) from None
    except UnicodeDecodeError:
        raise UserError(
            f"not {encoding} text", _where(path, location), "save it as UTF-8, or set data.options.encoding"
        ) from None


@lru_cache(maxsize=4)
def _read_parquet(path: str, mtime: float, location: str):
    import pyarrow as pa
    from pyarrow import parquet

    try:
        return parquet.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"cannot read as Parquet: {str(exc).splitlines()[0]}", _where(path, location)) from None


def file_stamp(path_text: str) -> float:
    """When a file (or the newest file of a folder) last changed; 0 when it does not exist."""
    path = Path(path_text).expanduser()
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.rglob("*")), default=0.0)
    return path.stat().st_mtime if path.exists() else 0.0


def read_table(path_text: str, fmt: str, delimiter: str = ",", location: str = "data.source", encoding: str = "utf-8"):
    """The whole file as a `pyarrow.Table` (cached while the file is unchanged).

    Args:
        path_text: a CSV file, a Parquet file, or a folder of Parquet part files.
        fmt: "csv" or "parquet".
        delimiter: the CSV field separator.
        location: where to place an error.
        encoding: the CSV file's text encoding.

    Raises:
        UserError: no such file, a folder where a file is needed, unreadable or empty data, a
            column name used twice, CSV text that is not in `encoding`.
    """
    path = Path(path_text).expanduser()
    if not path.exists():
        raise UserError("no such file", _where(path_text, location))
    if fmt == "csv":
        if path.is_dir():
            raise UserError("is a folder, not a CSV file", _where(path_text, location))
        table = _read_csv(str(path), path.stat().st_mtime, delimiter, encoding, location)
    else:
        table = _read_parquet(str(path), file_stamp(path_text), location)
    if table.num_columns == 0:
        raise UserError("the file is empty", _where(path_text, location))
    if table.num_rows == 0:
        raise UserError("the file has a header but no rows", _where(path_text, location))
    check_names(table.column_names, _where(path_text, location))
    if fmt == "csv":
        check_text(table, _where(path_text, location), encoding)
    return table


def check_names(names: list[str], where: str) -> None:
    """Every column name occurs once (a model takes its columns by name).

    Raises:
        UserError: at `where`, naming the first name used twice and its positions.
    """
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise UserError(
                f"the column name {name!r} is used twice (columns {seen[name] + 1} and {index + 1})",
                where,
                "rename one of them: a model takes its columns by name",
            )
        seen[name] = index


def check_text(table, where: str, encoding: str = "utf-8") -> None:
    """A CSV's text columns decoded: pyarrow keeps a column it cannot decode as bytes.

    Raises:
        UserError: at `where`, naming the column and the row of the first cell that is not text.
    """
    import pyarrow.types as t

    for name in table.column_names:
        if not t.is_binary(table[name].type):
            continue
        for index, value in enumerate(table[name].to_pylist()):
            try:
                value is None or value.decode(encoding)
            except UnicodeDecodeError:
                raise UserError(
                    f"column {name!r} is not {encoding} text (row {index + 2}: {value[:40]!r})",
                    where,
                    'save the file as UTF-8, or set data.options.encoding (e.g. "latin-1")',
                ) from None


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


def inferred_kind(column, options: TableOptions, name: str = "") -> str:
    """A column's kind from its values: numbers are numeric, dates dates, unique values identifiers.

    Whole numbers that count up by one through every row (1, 2, 3, …) are identifiers too; a text
    column with at most `max_one_hot` values is categorical, with more it is text (hashed). A
    dictionary-encoded column (pandas' `category`) is categorical, or text when it has more
    values than `max_one_hot`; a column of a type no model takes (`arrow_types.unusable`) is "drop".
    Text in a written date form and whole numbers that are Unix times of a column named like a
    time are dates (`tfbench.data.table_dates`).
    """
    import pyarrow.compute as pc

    if unusable(column.type):
        return "drop"
    categorical = is_categorical(column.type)
    column = plain(column)
    family = type_family(column.type)
    if family == "date" or (family == "string" and not categorical and text_form(column)):
        return "date"
    if family in ("float", "bool"):
        return "numeric"  # decided without counting values: counting a float column is the slow part
    if family == "int" and name and unix_form(column, name):
        return "date"
    present = len(column) - column.null_count
    distinct = pc.count_distinct(column).as_py()
    if categorical:
        return "categorical"
    unique = present >= MIN_ROWS_FOR_IDENTIFIER and distinct == present == len(column)
    if family == "int":
        span = pc.max(column).as_py() - pc.min(column).as_py() + 1 if present else 0
        return "identifier" if unique and span == present else "numeric"
    if unique:
        return "identifier"
    return "categorical" if distinct <= options.max_one_hot else many_values_kind(column)


def chosen_kind(name: str, arrow_type, options: TableOptions, infer: Callable[[], str]) -> tuple[str, str | None]:
    """A feature column's kind (its override, or `infer()`) and the note the plan shows for it.

    A column of a type no model takes is dropped with a note saying why.

    Raises:
        UserError: at `data.options.columns.NAME`, an override that keeps such a column.
    """
    reason = unusable(arrow_type)
    forced = options.columns.get(name)
    if reason:
        if forced not in (None, "drop"):
            raise UserError(
                f"column {name!r} {reason}; it cannot be {forced}",
                f"data.options.columns.{name}",
                f'drop it: columns = {{ {name!r} = "drop" }}',
            )
        return "drop", f"column {name!r} {reason}: dropped"
    kind = forced or infer()
    if kind == "identifier":
        return kind, f"column {name!r} is unique per row (an identifier): dropped"
    if kind == "drop":
        return kind, f"column {name!r} is dropped (data.options.columns)"
    return kind, None  # a date's note names its written form: `table_dates.date_note`


def _convert(column, kind: str, name: str, location: str | None = None, first_row: int = 0, form: str = ""):
    """The column as the kind needs it: text to numbers (float, or whole for `kind="whole"`) or dates.

    A cell that does not fit is an error naming its row: `first_row` is the row of the column's
    first cell among the file's data rows (0 for a whole file), and rows count as a spreadsheet
    shows them, the header being row 1.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    where = location or f"data.options.columns.{name}"
    column = plain(column)
    family = type_family(column.type)
    if kind == "date":
        return dates_of(column, name, form, location, first_row)
    try:
        if kind == "numeric" and family == "string":
            return pc.cast(column, pa.float64())
        if kind == "whole" and family == "string":
            return pc.cast(column, pa.int64())
    except pa.ArrowInvalid:
        values = column.to_pylist()
        bad = next(i for i, v in enumerate(values) if v is not None and not _parses(v, kind))
        what = "a number" if kind == "numeric" else "a whole number"
        raise UserError(
            f"column {name!r} holds values that are not {what} (row {first_row + bad + 2}: {values[bad]!r})",
            where,
            "fix those cells" + ("" if location else ", or choose another kind"),
        ) from None
    if kind == "numeric" and family not in ("float", "int", "bool", "date"):
        raise UserError(f"column {name!r} cannot be {kind}", where)
    return column


def dates_of(column: Any, name: str, form: str, location: str | None = None, first_row: int = 0) -> Any:
    """A date column as timestamps, its text read in `form` (see `table_dates`).

    Raises:
        UserError: at `location` (default `data.options.columns.NAME`), a cell `form` cannot read (its
            row counted as `_convert` counts it), or numbers that are not Unix times.
    """
    from tfbench.data.table_dates import ISO, UNIX_MILLISECONDS, UNIX_SECONDS

    where = location or f"data.options.columns.{name}"
    column = plain(column)
    family = type_family(column.type)
    if family == "date" or (family != "string" and form in (UNIX_SECONDS, UNIX_MILLISECONDS)):
        return parsed(column, form)
    if family != "string":
        raise UserError(f"column {name!r} holds numbers, not dates", where, "choose numeric")
    bad = first_unreadable(column, form)
    if bad is not None:
        written = (form or ISO).split(" (")[0]
        raise UserError(
            f"column {name!r} holds values that are not dates written like {written} "
            f"(row {first_row + bad + 2}: {column[bad].as_py()!r})",
            where,
            "fix those cells" + ("" if location else ", or choose another kind"),
        )
    return parsed(column, form)


def date_form(column: Any, name: str) -> str:
    """The written form of a date column in the whole file ("" for typed dates).

    Raises:
        UserError: at `data.options.columns.NAME`, naming the file row of the first value the closest
            form cannot read, or numbers that are not Unix times.
    """
    column = plain(column)
    family = type_family(column.type)
    if family == "date":
        return ""
    if family == "string":
        form = text_form(column)
        if form is None:
            form = best_form(column)
            dates_of(column, name, form)  # names the first row that form cannot read
        return form
    form = unix_form(column, name, named=False)
    if form is None:
        where = f"data.options.columns.{name}"
        raise UserError(f"column {name!r} holds numbers, not dates (nor Unix times)", where, "choose numeric")
    return form


def checked_form(column: Any, kind: str, name: str) -> str:
    """Check a feature column of the whole file against its kind, so an error names the file's row
    (the plan's statistics see the training rows only); a date's written form, else ""."""
    if kind == "date":
        return date_form(column, name)
    if kind == "numeric":
        _convert(column, kind, name)
    return ""


def fitting_kinds(column: Any, name: str) -> list[str]:
    """The kinds a feature column's values fit, checked as a plan checks them, then "drop" (always fits).

    Numbers and dates must read in every cell; text is words, so only a text column is "text"; a
    column of fractions or dates is no category. A column no model takes fits only "drop".
    """
    if unusable(column.type):
        return ["drop"]
    family = type_family(column.type)
    kinds = []
    for kind in ("numeric", "categorical", "text", "date"):
        if (kind == "text" and family != "string") or (kind == "categorical" and family in ("float", "date")):
            continue
        try:
            checked_form(column, kind, name)
        except UserError:
            continue
        kinds.append(kind)
    return [*kinds, "drop"]


def _parses(value: str, kind: str) -> bool:
    try:
        if kind == "numeric":
            float(value)
        else:
            int(value)
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


def column_plan(
    column, kind: str, name: str, options: TableOptions, form: str = "", inferred: bool = False
) -> ColumnPlan:
    """The kind and training-split statistics of one feature column (a date's in its written `form`;
    `inferred`: the kind was not set by `columns`)."""
    import pyarrow.compute as pc

    column = _convert(column, kind, name, form=form)
    missing = column.null_count
    family = type_family(column.type)
    if kind in ("numeric", "date"):
        values = as_float(column)
        finite = values[~np.isnan(values)]
        mean = float(finite.mean()) if finite.size else 0.0
        variance = float(finite.var()) if finite.size else 1.0
        dtype = "string" if kind == "date" else "float32"  # a date: ISO text, parsed inside the model
        return ColumnPlan(
            name, kind, dtype, missing, 0, mean, variance if variance > 0 else 1.0, indicator=missing > 0, form=form
        )
    counts = pc.value_counts(column.drop_null() if family != "string" else pc.fill_null(column, ""))
    pairs = sorted(((c["values"].as_py(), c["counts"].as_py()) for c in counts), key=lambda p: (-p[1], str(p[0])))
    dtype = "int64" if family in ("int", "bool") else "string"
    return coded_plan(name, kind, dtype, missing, pairs, options, inferred)


def coded_plan(
    name: str, kind: str, dtype: str, missing: int, pairs: list[tuple[Any, int]], options: TableOptions, inferred: bool
) -> ColumnPlan:
    """A categorical, text or hashed column's plan from its training (value, count) pairs, most frequent first.

    Text keeps its words (`table_text.word_vocabulary`); an inferred categorical column with more
    values than `max_one_hot` keeps its most frequent ones; with nothing seen twice, either is hashed.
    """
    distinct = len(pairs)
    if kind == "text":
        words = word_vocabulary(pairs, options.max_words)
        if words:
            return ColumnPlan(name, "text", "string", missing, distinct, vocabulary=words)
        kind = "hashed"
    if kind == "categorical" and inferred and distinct > options.max_one_hot:
        pairs = frequent_values(pairs, options.max_one_hot)
        kind = "categorical" if pairs else "hashed"
    if kind == "hashed":
        return ColumnPlan(name, "hashed", "string", missing, distinct, bins=options.hash_bins)
    vocabulary = [int(v) if dtype == "int64" else str(v) for v, _ in pairs]
    return ColumnPlan(name, "categorical", dtype, missing, distinct, vocabulary=vocabulary)


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


def raw_column(column, plan: ColumnPlan, location: str | None = None, first_row: int = 0) -> np.ndarray:
    """A column as the model's raw input: shape (rows, 1), float32 with NaN, int64 (-1 missing) or str
    (a date as ISO text, "" missing).

    Raises:
        UserError: at `location` (default `data.options.columns.NAME`), a cell the kind cannot read
            (its row counted from `first_row`, see `_convert`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = plain(column)
    if plan.kind == "date":
        text = iso_text(dates_of(column, plan.name, plan.form, location, first_row))
        return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object).reshape(-1, 1)
    if plan.dtype == "float32":
        column = _convert(column, plan.kind, plan.name, location, first_row)
        return as_float(column).astype(np.float32).reshape(-1, 1)
    if plan.dtype == "int64":
        column = _convert(column, "whole", plan.name, location, first_row)
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
        UserError: at `data.options.label_kind`, when the override cannot fit the values; at
            `data.options.label`, a column no model can predict or one with a single class.
    """
    import pyarrow.compute as pc

    where = "data.options.label_kind"
    check_label_type(column.type, name)
    column = plain(column)
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
    if len(values) < 2:  # a classifier with one class learns nothing: its loss is 0 from the first batch
        raise UserError(
            f"the label column {name!r} has one class ({values[0]!r}) in its labelled rows; "
            "a classifier needs at least two",
            "data.options.label",
            "choose another label column, or give rows of other classes",
        )
    return kind, values, lookup


def check_label_type(arrow_type, name: str) -> None:
    """A label column of a type a model can predict.

    Raises:
        UserError: at `data.options.label`, a column with no values, nested values or bytes.
    """
    reason = unusable(arrow_type)
    if reason:
        raise UserError(f"the label column {name!r} {reason}", "data.options.label", "choose another label column")


def label_values(column, plan: TablePlan, location: str) -> np.ndarray:
    """The label column as the model's targets: class ids (int32) or regression values (float32, (n, 1)).

    Raises:
        UserError: a class that does not occur in the training file (e.g. in the test file).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = plain(column)
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
