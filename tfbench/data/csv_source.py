"""`csv:PATH` — a table with a header row: one label column, feature columns, plain Python `csv`.

Without a UI; no TensorFlow. Numeric columns stay numbers (optionally normalised with the
training split's mean and deviation); text columns are one-hot encoded; a column that mixes
numbers and text is an error naming the column and the first offending row, never a silent NaN.
The label is a class when it is text or a small set of whole numbers, else a regression target,
unless `label_kind` says otherwise.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from tfbench.data.info import DataInfo
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, Splits, planned_sizes, split_arrays
from tfbench.errors import UserError, close_matches


MAX_INTEGER_CLASSES = 20


class CsvOptions(SourceOptions):
    """Which column is the label, which are features, and how they are encoded."""

    label: str | int = Field(-1, description="Label column: its name or index (default: the last column).")
    features: list[str | int] | None = Field(None, description="Feature columns (default: all others).")
    normalize: bool = Field(False, description="Scale numeric features to zero mean, unit variance.")
    label_kind: Literal["categorical", "binary", "regression"] | None = Field(
        None, description="Override the inferred label kind."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.")
    test_path: str | None = Field(None, description="A second CSV file with the same columns: the 'test' split.")


OPTIONS = CsvOptions
PICKER = Picker("csv", "csv:PATH", suffixes=(".csv", ".tsv"))
NORMALIZES_ITSELF = True  # numeric columns only; one-hot text columns stay 0/1


@dataclass
class Table:
    """A parsed CSV: header and rows of strings."""

    path: str
    header: list[str]
    rows: list[list[str]]


@lru_cache(maxsize=4)
def _read(path: str, mtime: float, delimiter: str) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            rows = [row for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", f"data.source ({path})") from None
    except (OSError, csv.Error) as exc:
        raise UserError(f"cannot read as CSV: {exc}", f"data.source ({path})") from None
    if not header:
        raise UserError("the file is empty", f"data.source ({path})")
    header = [h.strip() for h in header]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UserError(
                f"row {number} has {len(row)} fields but the header has {len(header)}", f"data.source ({path})"
            )
    if not rows:
        raise UserError("the file has a header but no rows", f"data.source ({path})")
    return Table(path, header, rows)


def _table(path_text: str, options: CsvOptions, location: str = "data.source") -> Table:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise UserError("no such file", f"{location} ({path_text})")
    if path.is_dir():
        raise UserError("is a folder, not a CSV file", f"{location} ({path_text})")
    return _read(str(path), path.stat().st_mtime, options.delimiter)


def _column(table: Table, key: str | int, location: str) -> int:
    if isinstance(key, int):
        if not -len(table.header) <= key < len(table.header):
            raise UserError(f"column index {key} is out of range: the file has {len(table.header)} columns", location)
        return key % len(table.header)
    if key not in table.header:
        hint = close_matches(key, table.header) or f"columns: {', '.join(table.header)}"
        raise UserError(f"{Path(table.path).name} has no column {key!r}", location, hint)
    return table.header.index(key)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class Column:
    """How one column is read: numbers, or text categories."""

    name: str
    index: int
    numeric: bool
    categories: list[str]


def _inspect(table: Table, index: int) -> Column:
    """Numeric or text, checking every cell: an empty or mixed column is an error."""
    name = table.header[index]
    values = [row[index].strip() for row in table.rows]
    numbers = [_number(v) for v in values]
    parsed = [n is not None for n in numbers]
    where = f"data.source ({Path(table.path).name}, column {name!r})"
    empty = [i for i, v in enumerate(values) if not v]
    if empty:
        raise UserError(f"row {empty[0] + 2} has no value", where)
    if all(parsed):
        return Column(name, index, True, [])
    if any(parsed):
        number_row = parsed.index(True)
        text_row = parsed.index(False)
        raise UserError(
            f"the column mixes numbers and text (row {number_row + 2}: {values[number_row]!r}, "
            f"row {text_row + 2}: {values[text_row]!r})", where,
            "make every value a number, or every value text",
        )
    return Column(name, index, False, sorted(set(values)))


@dataclass
class Layout:
    """The parsed plan: label column and its kind, feature columns and their encoding."""

    label: Column
    label_kind: str
    class_names: list[str]
    features: list[Column]

    @property
    def width(self) -> int:
        return sum(1 if c.numeric else len(c.categories) for c in self.features)

    def feature_names(self) -> list[str]:
        names = []
        for c in self.features:
            names.extend([c.name] if c.numeric else [f"{c.name}={v}" for v in c.categories])
        return names


def _layout(table: Table, options: CsvOptions) -> Layout:
    label_index = _column(table, options.label, "data.options.label")
    label = _inspect(table, label_index)
    if options.features is None:
        feature_indexes = [i for i in range(len(table.header)) if i != label_index]
    else:
        feature_indexes = [_column(table, f, f"data.options.features[{n}]") for n, f in enumerate(options.features)]
        if label_index in feature_indexes:
            raise UserError("the label column is also listed as a feature", "data.options.features")
    if not feature_indexes:
        raise UserError("no feature columns: the file has only the label column", "data.options.features")
    features = [_inspect(table, i) for i in feature_indexes]
    kind = options.label_kind
    if label.numeric:
        values = np.array([float(row[label_index]) for row in table.rows])
        whole = bool(np.all(np.mod(values, 1) == 0)) and values.min() >= 0
        distinct = np.unique(values)
        if kind is None:
            if whole and len(distinct) <= MAX_INTEGER_CLASSES and "." not in "".join(r[label_index] for r in table.rows):
                kind = "binary" if len(distinct) <= 2 and distinct.max() <= 1 else "categorical"
            else:
                kind = "regression"
        if kind == "regression":
            names: list[str] = []
        else:
            if not whole:
                raise UserError(
                    f"column {label.name!r} holds fractional numbers, which cannot be class ids",
                    "data.options.label_kind", "use label_kind = \"regression\"",
                )
            names = [str(i) for i in range(int(distinct.max()) + 1)]
    else:
        if kind == "regression":
            raise UserError(f"column {label.name!r} holds text, which cannot be a regression target",
                            "data.options.label_kind")
        names = label.categories
        kind = kind or ("binary" if len(names) == 2 else "categorical")
    if kind == "binary" and len(names) > 2:
        raise UserError(f"binary labels need 2 classes, column {label.name!r} has {len(names)}",
                        "data.options.label_kind")
    return Layout(label, kind, names, features)


def _encode(table: Table, layout: Layout) -> Arrays:
    n = len(table.rows)
    x = np.zeros((n, layout.width), np.float32)
    col = 0
    for feature in layout.features:
        cells = [row[feature.index].strip() for row in table.rows]
        if feature.numeric:
            x[:, col] = np.array(cells, dtype=np.float64)
            col += 1
        else:
            lookup = {v: i for i, v in enumerate(feature.categories)}
            for r, cell in enumerate(cells):
                if cell in lookup:  # categories unseen in the training file stay all-zero
                    x[r, col + lookup[cell]] = 1.0
            col += len(feature.categories)
    labels = [row[layout.label.index].strip() for row in table.rows]
    if layout.label_kind == "regression":
        y = np.array(labels, dtype=np.float32).reshape(n, 1)
    elif layout.label.numeric:
        y = np.array([float(v) for v in labels]).astype(np.int32)
    else:
        lookup = {v: i for i, v in enumerate(layout.class_names)}
        unknown = [v for v in labels if v not in lookup]
        if unknown:
            raise UserError(f"label {unknown[0]!r} does not occur in the training file",
                            f"data.options.test_path ({table.path})")
        y = np.array([lookup[v] for v in labels], np.int32)
    return Arrays(x, y)


def _named_sizes(spec, options: CsvOptions) -> dict[str, int]:
    sizes = {"train": len(_table(spec.target, options).rows)}
    if options.test_path:
        sizes["test"] = len(_table(options.test_path, options, "data.options.test_path").rows)
    return sizes


def describe(spec, options: CsvOptions, seed: int | None = 42) -> DataInfo:
    """Columns, encoded width and label kind of the table; sizes after the split."""
    table = _table(spec.target, options)
    layout = _layout(table, options)
    return DataInfo(
        source=spec.source,
        input_shape=(layout.width,),
        label_kind=layout.label_kind,
        num_classes=len(layout.class_names),
        class_names=layout.class_names,
        label_shape=(1,) if layout.label_kind == "regression" else (),
        sizes=planned_sizes(spec, _named_sizes(spec, options)),
        description=f"{len(table.rows)} rows of {Path(spec.target).name}; label column {layout.label.name!r}.",
        extra={"label_column": layout.label.name, "feature_names": layout.feature_names()},
    )


def load(spec, options: CsvOptions, seed: int | None = 42) -> Splits:
    """The encoded table split by `spec`; normalised with the training split's statistics."""
    table = _table(spec.target, options)
    layout = _layout(table, options)
    named = {"train": _encode(table, layout)}
    if options.test_path:
        other = _table(options.test_path, options, "data.options.test_path")
        if other.header != table.header:
            raise UserError("the test file's columns differ from the training file's",
                            f"data.options.test_path ({options.test_path})")
        named["test"] = _encode(other, layout)
    splits = split_arrays(spec, named, seed)
    if options.normalize:
        numeric = np.zeros(layout.width, bool)
        col = 0
        for feature in layout.features:
            width = 1 if feature.numeric else len(feature.categories)
            numeric[col:col + width] = feature.numeric
            col += width
        mean = splits.train.x.mean(axis=0)
        std = splits.train.x.std(axis=0)
        std[std == 0] = 1.0
        mean[~numeric], std[~numeric] = 0.0, 1.0
        parts = {id(p): p for p in (splits.train, splits.validation, splits.test) if p is not None}
        for part in parts.values():
            part.x = ((part.x - mean) / std).astype(np.float32)
    return splits


def loader_code(exp, info) -> LoaderCode:
    """The data loader the script `tfbench code` writes for this kind."""
    return LoaderCode(_loader_text(exp, info),
                      after_split=["    train, validation, test = normalize(train, validation, test)"] if parse_options(OPTIONS, exp.data.options).normalize else [])


def _loader_text(exp, info) -> str:
    options = parse_options(OPTIONS, exp.data.options)
    table = _table(exp.data.target, options)
    layout = _layout(table, options)
    features = [(c.index, None if c.numeric else c.categories) for c in layout.features]
    label = layout.label
    if layout.label_kind == "regression":
        label_code = "y = np.array([[float(row[LABEL_COLUMN])] for row in rows], np.float32)"
    elif label.numeric:
        label_code = "y = np.array([int(float(row[LABEL_COLUMN])) for row in rows], np.int32)"
    else:
        label_code = "y = np.array([CLASS_NAMES.index(row[LABEL_COLUMN].strip()) for row in rows], np.int32)"
    files = [("train", str(Path(exp.data.target).expanduser().resolve()))]
    if options.test_path:
        files.append(("test", str(Path(options.test_path).expanduser().resolve())))
    normalize = ""
    if options.normalize:
        normalize = '''


def normalize(train, validation, test):
    """Zero mean, unit variance per numeric feature, with the training split's statistics."""
    numeric = np.array(NUMERIC_COLUMNS, dtype=int)
    mean, std = train[0].mean(axis=0), train[0].std(axis=0)
    std[std == 0] = 1.0

    def scaled(part):
        if part is None:
            return None
        x = part[0].copy()
        x[:, numeric] = (x[:, numeric] - mean[numeric]) / std[numeric]
        return x.astype(np.float32), part[1]

    return scaled(train), scaled(validation), scaled(test)'''
    numeric_columns = []
    position = 0
    for _, categories in features:
        if categories is None:
            numeric_columns.append(position)
            position += 1
        else:
            position += len(categories)
    return f'''import csv

FILES = {dict(files)!r}
LABEL_COLUMN = {label.index!r}  # {label.name!r}
# (column, None for a number or the categories a text column is one-hot encoded over)
FEATURES = {features!r}
NUMERIC_COLUMNS = {numeric_columns!r}  # positions of the numeric features in x


def read_csv(path):
    """Features (numbers, text columns one-hot) and labels of one CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter={options.delimiter!r})
        next(reader)  # the header
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    x = []
    for row in rows:
        values = []
        for column, categories in FEATURES:
            cell = row[column].strip()
            if categories is None:
                values.append(float(cell))
            else:
                values.extend(1.0 if cell == c else 0.0 for c in categories)
        x.append(values)
    {label_code}
    return np.array(x, np.float32), y{normalize}


def load_data():
    """The named splits, as numpy arrays: {{"train": (x, y)[, "test": (x, y)]}}."""
    named = {{name: read_csv(path) for name, path in FILES.items()}}
    return named'''
