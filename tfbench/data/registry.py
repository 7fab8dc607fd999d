"""Which source kinds exist and where each lives — a module per kind, imported only when used.

A source module provides `OPTIONS` (its `SourceOptions` model), `describe(spec, options, seed)
-> DataInfo` (what it holds, without downloading where it can) and `load(spec, options, seed) ->
Splits` (the unbatched train/validation/test data the pipeline batches). Adding a kind is one entry here and one module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tfbench.errors import UserError, close_matches

SOURCES: dict[str, str] = {
    "builtin": "tfbench.data.builtin",
    "tfds": "tfbench.data.tfds_source",
    "keras": "tfbench.data.keras_source",
    "csv": "tfbench.data.csv_source",
    "npz": "tfbench.data.npz_source",
    "images": "tfbench.data.images",
    "text": "tfbench.data.text",
}


def sources() -> list[str]:
    """The registered source kinds, in the order the dataset picker shows them."""
    return list(SOURCES)


def source_module(kind: str) -> ModuleType:
    """The module that implements a source kind.

    Raises:
        UserError: at `data.source` for an unknown kind, with the closest kinds.
    """
    path = SOURCES.get(kind)
    if path is None:
        hint = close_matches(kind, SOURCES) or f"known kinds: {', '.join(SOURCES)}"
        raise UserError(f"unknown data source kind {kind!r}", "data.source", hint)
    return importlib.import_module(path)


def path_fields(kind: str) -> tuple[str, ...]:
    """Which parts of a kind's source are file paths: `target` (after the colon) and option names.

    A source module lists them in `PATHS`; a relative one in a preset is resolved against the
    preset file's folder (`tfbench.spec`). An unknown kind has none (validation says it is unknown).
    """
    if kind not in SOURCES:
        return ()
    return tuple(getattr(source_module(kind), "PATHS", ()))
