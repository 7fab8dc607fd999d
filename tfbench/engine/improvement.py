"""Whether a value beats the best so far: the one rule behind best checkpoints, study results and the CLI.

After Keras' MonitorCallback: lower is better for `min`, higher for `max`, and an improvement must beat
the best by more than `min_delta`. A missing or non-finite value never improves (a NaN loss is not a
best epoch), while any finite value beats no best at all. A direction is spelt as Keras' modes
(`min`, `max`) or as Optuna's study directions (`minimize`, `maximize`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
MAXIMIZING = frozenset({"max", "maximize"})
MINIMIZING = frozenset({"min", "minimize"})


def maximizes(direction: str) -> bool:
    """Whether larger is better in `direction`; an unknown spelling is a programming error."""
    if direction in MAXIMIZING:
        return True
    if direction in MINIMIZING:
        return False
    raise ValueError(f"unknown direction {direction!r}: expected min, max, minimize or maximize")


def finite_number(value: Any) -> float | None:
    """`value` as a finite float, or None (a missing, non-numeric, infinite or NaN value)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def improves(value: Any, best: float | None, direction: str, min_delta: float = 0.0) -> bool:
    """Whether `value` beats `best` (None: nothing yet) by more than `min_delta` in `direction`."""
    larger = maximizes(direction)
    number = finite_number(value)
    if number is None:
        return False
    if best is None:
        return True
    return number - min_delta > best if larger else number + min_delta < best


def best_of(items: Iterable[T], direction: str, key: Callable[[T], Any] | None = None) -> T | None:
    """The item whose value (`key(item)`, default the item) is best; the first of equals; None when
    no item has a finite value."""
    best: T | None = None
    best_value: float | None = None
    for item in items:
        value = finite_number(key(item) if key is not None else item)
        if improves(value, best_value, direction):
            best, best_value = item, value
    return best
