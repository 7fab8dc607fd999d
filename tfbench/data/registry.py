"""Which source kinds exist and where each lives — a module per kind, imported only when used.

A source module provides every hook of `DataSource` (its docstring says what each is for; four of
them have `DEFAULTS`). It declares so at its end, where the type checker holds it to the contract:

    if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
        from tfbench.data import csv_source
        from tfbench.data.registry import DataSource

        _: DataSource = csv_source

Adding a kind is its module and one entry in `SOURCES`; the dataset screen, the spec's help text
and `tfbench code` read everything else from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tfbench.errors import UserError, close_matches

if TYPE_CHECKING:
    from tfbench.data.info import DataInfo
    from tfbench.data.options import SourceOptions
    from tfbench.data.splits import Splits

SOURCES: dict[str, str] = {
    "builtin": "tfbench.data.builtin",
    "keras": "tfbench.data.keras_source",
    "tfds": "tfbench.data.tfds_source",
    "csv": "tfbench.data.csv_source",
    "parquet": "tfbench.data.parquet_source",
    "npz": "tfbench.data.npz_source",
    "images": "tfbench.data.images",
    "text": "tfbench.data.text",
}


@dataclass(frozen=True)
class Picker:
    """How the dataset picker offers a kind.

    Attributes:
        title: a catalog group's heading ("Bundled (offline)") or a file kind's label.
        form: the source's written form, for help text (`csv:PATH`).
        listed: True for kinds whose datasets `tfbench datasets` lists (a group in the list);
            False for kinds the user points at a path (the file-kind selector).
        suffixes: file name endings that choose this kind when a file is browsed to.
    """

    title: str
    form: str
    listed: bool = False
    suffixes: tuple[str, ...] = ()


@dataclass
class LoaderCode:
    """The data part of a generated script, as one kind writes it.

    Attributes:
        text: source defining `load_data()` (named NumPy splits) or, when `streamed`,
            `load_splits()` (unbatched train/validation/test datasets).
        streamed: whether the text defines `load_splits()` instead of `load_data()`.
        after_split: lines `main()` runs after the split (e.g. a normalisation), 4-space indented.
        pipeline: the `to_dataset(part, training)` function when the kind writes its own (a table's
            FeatureSpace); None for the common one.
        before_save: lines `main()` runs before saving `model` (a table's model gets its
            preprocessing in front, so the saved file takes raw columns).
    """

    text: str
    streamed: bool = False
    after_split: list[str] = field(default_factory=list)
    pipeline: str | None = None
    before_save: list[str] = field(default_factory=list)


@runtime_checkable
class DataSource(Protocol):
    """What a source kind's module provides: every name the code reads from one.

    Module-level constants are read-only properties here, so a module's plain assignment matches.
    `options` is typed loosely because each kind's functions take its own `OPTIONS` model.
    """

    @property
    def OPTIONS(self) -> type[SourceOptions]:
        """Its options model: what `[data.options]` may hold."""

    @property
    def PICKER(self) -> Picker:
        """How the dataset picker offers it (a catalog group, or a file kind)."""

    @property
    def PATHS(self) -> tuple[str, ...]:
        """Which parts of its source are file paths (`target`, option names): see `path_fields`."""

    @property
    def NAMED_IO(self) -> bool:
        """Whether `describe`/`load` take `io=` (named inputs and outputs of a model with several)."""

    @property
    def NORMALIZES_ITSELF(self) -> bool:
        """Whether `normalize = true` is the model's own business (a table's preprocessing)."""

    @property
    def overview(self) -> Callable[..., dict[str, Any]] | None:
        """`overview(spec, options, seed, n)`: a table's columns, kinds and raw rows for the picker; None
        for kinds the picker shows as samples."""

    def describe(self, spec: Any, options: Any, seed: int | None = 42) -> DataInfo:
        """What it holds, without downloading where it can."""

    def load(self, spec: Any, options: Any, seed: int | None = 42) -> Splits:
        """The unbatched train/validation/test data."""

    def loader_code(self, exp: Any, info: DataInfo) -> LoaderCode:
        """The data-loading part of the script `tfbench code` writes."""


# The hooks a module written without them gets (the project's own kinds spell every hook out).
DEFAULTS: dict[str, Any] = {"PATHS": (), "NAMED_IO": False, "NORMALIZES_ITSELF": False, "overview": None}
REQUIRED = ("OPTIONS", "PICKER", "describe", "load", "loader_code")


def sources() -> list[str]:
    """The registered source kinds, in the order the dataset picker shows them."""
    return list(SOURCES)


def source_module(kind: str) -> DataSource:
    """The module that implements a source kind, with `DEFAULTS` for the hooks it leaves out.

    Raises:
        UserError: at `data.source` for an unknown kind, with the closest kinds.
        TypeError: the module lacks one of the hooks every kind must provide.
    """
    path = SOURCES.get(kind)
    if path is None:
        hint = close_matches(kind, SOURCES) or f"known kinds: {', '.join(SOURCES)}"
        raise UserError(f"unknown data source kind {kind!r}", "data.source", hint)
    module = importlib.import_module(path)
    for name, value in DEFAULTS.items():
        if not hasattr(module, name):
            setattr(module, name, value)
    if not isinstance(module, DataSource):
        missing = [name for name in REQUIRED if not hasattr(module, name)]
        raise TypeError(f"data source module {path} lacks {', '.join(missing)} (see registry.DataSource)")
    return module


def picker(kind: str) -> Picker:
    """The kind's `Picker` (imports its module, which imports no TensorFlow)."""
    return source_module(kind).PICKER


def listed_groups() -> list[tuple[str, str]]:
    """(kind, heading) of the kinds whose datasets the picker lists, in registry order."""
    return [(kind, picker(kind).title) for kind in SOURCES if picker(kind).listed]


def file_kinds() -> list[str]:
    """The kinds the user points at a file or folder, in registry order."""
    return [kind for kind in SOURCES if not picker(kind).listed]


def kind_for_path(path: str) -> str | None:
    """The file kind a path's ending chooses (`x.parquet` → `parquet`), or None."""
    lower = path.lower()
    for kind in file_kinds():
        if any(lower.endswith(suffix) for suffix in picker(kind).suffixes):
            return kind
    return None


def source_forms() -> str:
    """`builtin:NAME | tfds:NAME | …`: every kind's written form, for help text."""
    return " | ".join(picker(kind).form for kind in SOURCES)


def path_fields(kind: str) -> tuple[str, ...]:
    """Which parts of a kind's source are file paths: `target` (after the colon) and option names.

    A source module lists them in `PATHS`; a relative one in a preset is resolved against the
    preset file's folder (`tfbench.spec`). An unknown kind has none (validation says it is unknown).
    """
    if kind not in SOURCES:
        return ()
    return source_module(kind).PATHS
