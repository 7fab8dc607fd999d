"""Exporting finished models, verified — without a UI; TensorFlow is imported when something is exported.

One idea a module: `formats` (the registry every chooser reads: spec, screens, CLI), `exporter`
(the entry points below), `reference` (what an export is checked against, shared with
`tfbench.evaluation`), `keras_formats` (.keras and SavedModel), `tflite` (conversion in a child
process, the LiteRT interpreter; `python -m tfbench.export` is that child), `report`
(`report.json` and the table `tfbench export` prints).

The entry points are reached through this package (`from tfbench.export import export_run`) but
loaded on first use, so reading the registry (`tfbench.export.formats`), which the UI does at
start-up, costs only the registry.
"""

from __future__ import annotations

import importlib
from typing import Any

ENTRY_POINTS = ("export_model", "export_run", "export_loaded", "auto_export", "ensure_writable", "quiet_tensorflow")
"""The names `tfbench.export` offers, all from `tfbench.export.exporter`."""

__all__ = list(ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    if name in ENTRY_POINTS:
        return getattr(importlib.import_module("tfbench.export.exporter"), name)
    raise AttributeError(f"module 'tfbench.export' has no attribute {name!r}")
