"""A data-source kind written for the tests: every hook of `DataSource`, nothing else.

The type checker reads it (tests/test_data_source_kind.py); nothing registers or calls it. It ends
with the declaration every source module ends with, so a missing or mistyped hook is a type error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfbench.data.info import DataInfo
from tfbench.data.options import SourceOptions
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Splits


class ExampleOptions(SourceOptions):
    """The kind's own `[data.options]`: the common ones are enough here."""


OPTIONS = ExampleOptions
PICKER = Picker("example", "example:PATH", suffixes=(".example",))
PATHS = ("target",)
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None


def describe(spec: Any, options: ExampleOptions, seed: int | None = 42) -> DataInfo:
    """What the source holds."""
    raise NotImplementedError


def load(spec: Any, options: ExampleOptions, seed: int | None = 42) -> Splits:
    """The unbatched splits."""
    raise NotImplementedError


def loader_code(exp: Any, info: DataInfo) -> LoaderCode:
    """The script's data part."""
    return LoaderCode("def load_data():\n    raise NotImplementedError\n")


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    import source_kind_example

    from tfbench.data.registry import DataSource

    _: DataSource = source_kind_example
