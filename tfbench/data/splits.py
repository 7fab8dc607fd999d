"""What a source hands the pipeline: unbatched train/validation/test data, and how splits are chosen.

In-memory sources (builtin, keras, csv, npz, text) give `Arrays`; streaming sources (tfds, image
folders) give an unbatched `tf.data.Dataset`. The validation split is either a named split of the
source (`data.validation = "test"`) or a seeded fraction of the training data; the same rule
decides the sizes `describe` reports, so the numbers shown before loading are the numbers trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfbench.errors import UserError, close_matches


@dataclass
class Arrays:
    """Features and labels held in memory (first axis: samples); `x` may be a dict of named columns,
    `y` a dict of named labels (a model with several outputs)."""

    x: Any
    y: Any

    def __len__(self) -> int:
        return len(next(iter(self.y.values()))) if isinstance(self.y, dict) else len(self.y)

    def take(self, index: np.ndarray) -> Arrays:
        """The samples at `index` (works for numpy arrays, lists and dicts of columns alike)."""
        x: Any
        if isinstance(self.x, dict):
            x = {name: column[index] for name, column in self.x.items()}
        elif isinstance(self.x, list):
            x = [self.x[i] for i in index]
        else:
            x = self.x[index]
        y = {name: labels[index] for name, labels in self.y.items()} if isinstance(self.y, dict) else self.y[index]
        return Arrays(x, y)


@dataclass
class Splits:
    """A source's unbatched data: `Arrays` or an unbatched `tf.data.Dataset` per split.

    Attributes:
        train: the training data.
        validation: the validation data, or None (no validation).
        test: the test data when `data.test` names a split, else None.
        sizes: samples per split; None where a stream's length is unknown.
        batched: the streams are batched already (`data.batch_size`) and read from disk each
            epoch: the pipeline neither caches nor shuffles nor batches them again.
    """

    train: Any
    validation: Any | None
    test: Any | None
    sizes: dict[str, int | None]
    batched: bool = False


def holdout_size(n: int, fraction: float) -> int:
    """How many of `n` samples a validation fraction holds out (at least one, never all)."""
    if n < 2:
        return 0
    return min(n - 1, max(1, int(round(n * fraction))))


def holdout_indices(n: int, fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) index arrays for a fraction split of `n` samples."""
    order = np.random.default_rng(seed).permutation(n)
    k = holdout_size(n, fraction)
    return np.sort(order[k:]), np.sort(order[:k])


def check_split_name(name: str, available: list[str], location: str) -> None:
    """Raise a located `UserError` when a named split does not exist in the source.

    Raises:
        UserError: at `location`, listing the splits the source has.
    """
    if name not in available:
        hint = close_matches(name, available) or f"this source has: {', '.join(available) or 'none'}"
        raise UserError(f"the source has no split {name!r}", location, hint)


def planned_sizes(spec, named_sizes: Mapping[str, int | None], default: str = "train") -> dict[str, int | None]:
    """Train/validation/test sizes after `spec`'s split rules, from the source's named split sizes.

    Args:
        spec: the DataSpec (its `validation`, `validation_split`, `test`).
        named_sizes: samples in each named split of the source.
        default: the split trained on.

    Raises:
        UserError: a named validation/test split the source does not have.
    """
    names = list(named_sizes)
    n_train = named_sizes.get(default)
    sizes: dict[str, int | None] = {}
    if spec.validation:
        check_split_name(spec.validation, names, "data.validation")
        sizes["train"] = n_train
        sizes["validation"] = named_sizes[spec.validation]
    elif spec.validation_split:
        k = holdout_size(n_train, spec.validation_split) if n_train is not None else None
        sizes["train"] = None if n_train is None or k is None else n_train - k
        sizes["validation"] = k
    else:
        sizes["train"] = n_train
        sizes["validation"] = 0
    if spec.test:
        check_split_name(spec.test, names, "data.test")
        sizes["test"] = named_sizes[spec.test]
    return sizes


def split_arrays(spec, named: dict[str, Arrays], seed: int | None, default: str = "train") -> Splits:
    """Choose train/validation/test from in-memory named splits following `spec`.

    Raises:
        UserError: an unknown split name, or a training split too small to hold anything out.
    """
    names = list(named)
    train = named[default]
    if len(train) == 0:
        raise UserError("the dataset is empty", "data.source")
    validation = None
    if spec.validation:
        check_split_name(spec.validation, names, "data.validation")
        validation = named[spec.validation]
    elif spec.validation_split:
        if len(train) < 2:
            raise UserError(
                f"only {len(train)} sample: too few to hold out a validation fraction", "data.validation_split"
            )
        train_idx, val_idx = holdout_indices(len(train), spec.validation_split, seed)
        train, validation = train.take(train_idx), train.take(val_idx)
    test = None
    if spec.test:
        check_split_name(spec.test, names, "data.test")
        test = named[spec.test]
    sizes: dict[str, int | None] = {"train": len(train), "validation": len(validation) if validation is not None else 0}
    if test is not None:
        sizes["test"] = len(test)
    return Splits(train, validation, test, sizes)
