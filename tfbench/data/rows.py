"""Samples that are an array or a table's dict of named columns, handled alike — no TensorFlow.

A table's model takes a dict of `(rows, 1)` columns; every other model one array. Code that
gathers, slices or counts samples (export verification, predictions) goes through these, so it
need not know which it holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numpy(x: Any) -> Any:
    """Tensors (or a dict of them) as NumPy arrays."""
    if isinstance(x, dict):
        return {name: np.asarray(value) for name, value in x.items()}
    return np.asarray(x)


def count(x: Any) -> int:
    """How many samples `x` holds."""
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    return len(x)


def take(x: Any, start: int, stop: int) -> Any:
    """Samples `start` to `stop` of `x`."""
    if isinstance(x, dict):
        return {name: value[start:stop] for name, value in x.items()}
    return x[start:stop]


def concatenate(parts: list) -> Any:
    """Batches of samples joined into one."""
    if parts and isinstance(parts[0], dict):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return np.concatenate(parts)


def dtype_name(x: Any) -> str:
    """The dtype of an array, or "columns" for a table's dict."""
    return "columns" if isinstance(x, dict) else str(np.asarray(x).dtype)
