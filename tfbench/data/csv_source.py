"""`csv:PATH` — a table with a header row, read with pyarrow; one label column, the rest features.

Without a UI; no TensorFlow. Types are inferred (quoted fields, `NA`/empty/`null` as missing,
dates and times recognised); column kinds are inferred and overridable (`columns`); the model
takes the raw columns and encodes them itself (see `tfbench.data.table_source`).
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from tfbench.data import table_labels, table_source
from tfbench.data.info import DataInfo, IONames
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Splits
from tfbench.data.tables import TableOptions


class CsvOptions(TableOptions):
    """A table's options, the CSV field separator and the file's text encoding."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.")
    encoding: str = Field(
        "utf-8", description='The text encoding of the file (e.g. "latin-1", "cp1252"); new files to score too.'
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("unknown text encoding (e.g. utf-8, latin-1, cp1252)") from None
        return value


OPTIONS = CsvOptions
PICKER = Picker("csv", "csv:PATH", suffixes=(".csv", ".tsv"))
NORMALIZES_ITSELF = True  # the model's own preprocessing normalises numeric columns
PATHS = ("target", "test_path")  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = True  # a label column per named output of a model (data.describe's `io`, `table_labels`)


def describe(spec, options: CsvOptions, seed: int | None = 42, io: IONames | None = None) -> DataInfo:
    """Columns, their kinds, the encoded width and the label kind; sizes after the split."""
    if io is not None:  # a model with an output per label column
        return table_labels.describe(spec, options, "csv", seed, io)
    table_labels.check_one_label(options)
    return table_source.describe(spec, options, "csv", seed)


def load(spec, options: CsvOptions, seed: int | None = 42, io: IONames | None = None) -> Splits:
    """The raw columns and labels, split by `spec`."""
    if io is not None:
        return table_labels.load(spec, options, "csv", seed, io)
    table_labels.check_one_label(options)
    return table_source.load(spec, options, "csv", seed)


def loader_code(exp, info) -> LoaderCode:
    """pyarrow reading and the FeatureSpace preprocessing, as `tfbench code` writes them."""
    from tfbench.data.table_code import table_loader_code

    if info.outputs:  # a label column per output
        return table_labels.loader_code(exp, info)

    return table_loader_code(exp, info)


def overview(spec, options, seed: int | None = 42, n: int = 6) -> dict:
    """The file's own columns and a few raw rows, for the dataset screen."""
    return table_source.overview(spec, options, "csv", seed, n)


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import csv_source
    from tfbench.data.registry import DataSource

    _: DataSource = csv_source
