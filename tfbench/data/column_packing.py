"""A table's named columns carried through `tf.data` as one matrix per dtype — no TensorFlow at import.

A table's samples are a dict of `(rows, 1)` columns. `tf.data` shuffles and batches each column
as its own tensor, so a 5,000-column table gave every epoch's gather and every batch's slice
5,000 ops to trace and run (a wide table never reached its first step). Packed, the columns of one
dtype travel as one `(rows, k)` matrix, and one `split` per batch gives the model its named
columns again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

PACKED = "__{dtype}__"


def packed(x: Any) -> tuple[Any, Callable[[Any], Any] | None]:
    """(x with its columns packed per dtype, the function that unpacks a batch), or `(x, None)` for an array.

    The unpacking function takes and returns `tf.data` elements' x (a dict of batched tensors).
    """
    if not isinstance(x, dict) or len(x) < 2:
        return x, None
    groups: dict[str, list[str]] = {}
    kept: dict[str, Any] = {}
    for name, column in x.items():
        column = np.asarray(column)
        if column.ndim == 2 and column.shape[1] == 1:
            groups.setdefault(PACKED.format(dtype=column.dtype.str), []).append(name)
        else:
            kept[name] = column  # a matrix already (a wide table's packed numbers)
    order = list(x)
    matrices = {key: np.concatenate([np.asarray(x[n]) for n in names], axis=1) for key, names in groups.items()}

    def unpack(batch: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        columns = {name: batch[name] for name in kept}
        for key, names in groups.items():
            columns.update(zip(names, tf.split(batch[key], len(names), axis=1), strict=True))
        return {name: columns[name] for name in order}

    return {**matrices, **kept}, unpack
