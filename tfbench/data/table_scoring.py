"""New rows of a table to score, read in batches with the training plan's types — no TensorFlow.

`tfbench predict RUN --input new.csv` never holds the file: pyarrow's streaming readers
(`csv.open_csv`, `ParquetFile.iter_batches`) give record batches of the columns the model takes
(and the label, when the file has it), each CSV column converted to the type the plan needs, so a
cell that does not fit is one error naming `--input`, the column and the row, and a column empty in
the first block cannot turn into the wrong type later. A label is optional per row: `label_targets`
gives the rows without one (or with a class the run never saw) a mark instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.data.arrow_types import plain
from tfbench.data.table_inputs import model_columns
from tfbench.data.table_stream import batches, parquet_parts
from tfbench.data.tables import TablePlan, check_names
from tfbench.errors import UserError

NO_CLASS = -1  # a row without a label, or with one that is not a class of the run


def _csv_type() -> Any:
    """What a CSV column is read as: bytes, decoded and converted per batch (numbers, dates in the
    plan's written form) so an error names its row."""
    import pyarrow as pa

    return pa.binary()


def _decoded(column: Any, name: str, first_row: int, where: str, encoding: str) -> Any:
    """A column read as bytes, as text; a cell that is not valid text is an error naming its row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if not t.is_binary(column.type):
        return column
    try:
        return pc.cast(column, pa.string())
    except pa.ArrowInvalid:
        values = column.to_pylist()
        bad = next(i for i, v in enumerate(values) if v is not None and not _is_text(v))
        raise UserError(
            f"column {name!r} is not {encoding} text (row {first_row + bad + 2}: {values[bad][:40]!r})",
            where,
            'save the file as UTF-8, or set data.options.encoding (e.g. "latin-1") in the run\'s experiment.toml',
        ) from None


def _is_text(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _header(path: Path, fmt: str, delimiter: str, encoding: str, where: str) -> list[str]:
    """The file's column names, from its first block (CSV) or its schema (Parquet)."""
    import pyarrow as pa
    from pyarrow import csv, parquet

    from tfbench.data.tables import csv_read_options

    try:
        if fmt == "csv":
            reader = csv.open_csv(
                str(path),
                read_options=csv_read_options(encoding, block_size=1 << 16),
                parse_options=csv.ParseOptions(delimiter=delimiter),
                convert_options=csv.ConvertOptions(column_types={}, include_columns=[]),
            )
            return list(reader.schema.names)
        parts = parquet_parts(path)
        if not parts:
            raise UserError("holds no Parquet files", where)
        return list(parquet.ParquetFile(str(parts[0])).schema_arrow.names)
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise UserError(f"cannot read as {fmt.upper()}: {str(exc).splitlines()[0]}", where) from None


def scoring_batches(
    path: Path, fmt: str, plan: TablePlan, delimiter: str = ",", encoding: str = "utf-8"
) -> tuple[bool, Iterator[tuple[dict[str, np.ndarray], Any]]]:
    """(whether the file has the label column, its batches of (model inputs, label column or None)).

    Raises:
        UserError: at `--input`, no such file, a column the model takes is missing, a name used twice.
    """
    where = f"--input ({path})"
    if not path.exists():
        raise UserError("no such file or folder", where)
    names = _header(path, fmt, delimiter, encoding, where)
    check_names(names, where)
    present = set(names)
    missing = [c.name for c in plan.columns if c.name not in present]
    if missing:
        raise UserError(f"the file has no column {missing[0]!r}, which the model takes", where)
    labelled = plan.label in present
    wanted = [c.name for c in plan.columns] + ([plan.label] if labelled else [])
    types = {name: _csv_type() for name in wanted} if fmt == "csv" else None

    def read() -> Iterator[tuple[dict[str, np.ndarray], Any]]:
        import pyarrow as pa

        first = 0
        reading = batches(str(path), fmt, delimiter, encoding=encoding, columns=wanted, types=types, location="--input")
        for batch in reading:
            if batch.num_rows:
                table = pa.table({n: _decoded(batch[n], n, first, where, encoding) for n in wanted})
                yield model_columns(table, plan, where, first), table[plan.label] if labelled else None
            first += batch.num_rows

    return labelled, read()


def label_targets(column: Any, plan: TablePlan) -> np.ndarray:
    """A label column of new rows as the run's targets, for scoring.

    Returns:
        Regression: float64 values, NaN where a row has none (or text that is not a number).
        Classification: int64 class ids, `NO_CLASS` where a row has no label or one the run never saw.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pc.cast(plain(column), pa.string()))
    if plan.label_kind == "regression":
        try:
            return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # a cell that is not a number: that row has no target
            return np.array([_number(v) for v in text.to_pylist()], np.float64)
    ids = pc.index_in(text, value_set=pa.array(plan.class_names)).to_numpy(zero_copy_only=False)
    out = np.where(np.isnan(ids.astype(np.float64)), NO_CLASS, ids).astype(np.int64)
    unmatched = np.flatnonzero(out == NO_CLASS)
    values = text.take(unmatched).to_pylist() if unmatched.size else []
    for i, value in zip(unmatched, values, strict=True):  # "1.0" for class "1"
        number = _number(value)
        if np.isfinite(number) and number == int(number) and str(int(number)) in plan.class_names:
            out[i] = plan.class_names.index(str(int(number)))
    return out


def _number(text: str | None) -> float:
    try:
        return float(text) if text else float("nan")
    except ValueError:
        return float("nan")
