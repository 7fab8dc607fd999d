"""`parquet:PATH` — a Parquet file, or a folder of part files, read with pyarrow.

Without a UI; no TensorFlow. The same column kinds, overrides and in-model preprocessing as
`csv:` (see `tfbench.data.table_source`); the file's own types are used as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfbench.data import table_labels, table_source
from tfbench.data.info import DataInfo, IONames
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Splits
from tfbench.data.tables import TableOptions

OPTIONS = TableOptions
PICKER = Picker("parquet", "parquet:PATH", suffixes=(".parquet", ".pq"))
NORMALIZES_ITSELF = True  # the model's own preprocessing normalises numeric columns
PATHS = ("target", "test_path")  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = True  # a label column per named output of a model (data.describe's `io`, `table_labels`)


def describe(spec, options: TableOptions, seed: int | None = 42, io: IONames | None = None) -> DataInfo:
    """Columns, their kinds, the encoded width and the label kind; sizes after the split."""
    if io is not None:  # a model with an output per label column
        return table_labels.describe(spec, options, "parquet", seed, io)
    table_labels.check_one_label(options)
    return table_source.describe(spec, options, "parquet", seed)


def load(spec, options: TableOptions, seed: int | None = 42, io: IONames | None = None) -> Splits:
    """The raw columns and labels, split by `spec`."""
    if io is not None:
        return table_labels.load(spec, options, "parquet", seed, io)
    table_labels.check_one_label(options)
    return table_source.load(spec, options, "parquet", seed)


def loader_code(exp, info) -> LoaderCode:
    """pyarrow reading and the FeatureSpace preprocessing, as `tfbench code` writes them."""
    from tfbench.data.table_code import table_loader_code

    if info.outputs:  # a label column per output
        return table_labels.loader_code(exp, info)

    return table_loader_code(exp, info)


def overview(spec, options, seed: int | None = 42, n: int = 6) -> dict:
    """The file's own columns and a few raw rows, for the dataset screen."""
    return table_source.overview(spec, options, "parquet", seed, n)


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import parquet_source
    from tfbench.data.registry import DataSource

    _: DataSource = parquet_source
