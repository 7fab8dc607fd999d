"""Labels that fit the loss: one-hot or sparse, decided before training — never a silent NaN.

An integer-label dataset trained with `categorical_crossentropy` is converted to one-hot; a
combination that cannot work (class losses on regression targets, a binary loss on ten classes)
is rejected with a message that names a loss that fits. No TensorFlow here.
"""

from __future__ import annotations

from typing import Any

from tfbench.data.info import DataInfo
from tfbench.errors import UserError

# Class losses by the label encoding they want. Keys are normalised (lower case, no underscores),
# so the function name (`categorical_crossentropy`) and the class (`CategoricalCrossentropy`) match.
_LOSS_FAMILIES = {
    "one_hot": ("categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge"),
    "sparse": ("sparse_categorical_crossentropy",),
    "binary": ("binary_crossentropy", "binary_focal_crossentropy"),
}
_FAMILY_OF = {name.replace("_", ""): family for family, names in _LOSS_FAMILIES.items() for name in names}


def loss_name(loss: Any) -> str:
    """The name of a loss given as a string, a `Component` or a component dict (`{"type": …}`)."""
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return str(loss.get("type", ""))
    return str(getattr(loss, "type", loss))


def loss_family(loss: Any) -> str | None:
    """Which labels a class loss wants: "one_hot", "sparse" (class ids), "binary" (0/1) — None otherwise."""
    return _FAMILY_OF.get(loss_name(loss).replace("_", "").lower())


def labels_are_one_hot(info: DataInfo) -> bool:
    """Whether the class labels are one-hot already: a last axis of one 0/1 entry per class.

    Class ids per position (a sequence's `(steps,)` labels) are not; they are one-hot encoded
    per position when the loss wants one-hot labels.
    """
    shape = tuple(info.label_shape)
    return info.is_classification and bool(shape) and info.num_classes > 0 and shape[-1] == info.num_classes


def needs_one_hot(loss: Any, info: DataInfo, location: str = "train.loss") -> bool:
    """Whether labels must be one-hot for `loss`, rejecting combinations that cannot train.

    This is the one place that decides; `tfbench.build.needs_one_hot(exp, info)` resolves the
    Experiment's "auto" loss and asks here.

    Args:
        loss: the loss (`"auto"`, a name, a Component or a component dict).
        info: the data's description.
        location: where to place an error.

    Returns:
        True when integer class labels must be converted to one-hot for this loss.

    Raises:
        UserError: the loss cannot fit these labels; the hint names one that does.
    """
    name = loss_name(loss)
    family = loss_family(loss)
    classes = info.num_classes
    one_hot_labels = labels_are_one_hot(info)
    if family in ("one_hot", "binary") and targets_in_unit_range(info):
        return False  # probabilities (soft or multi-hot rows) in [0, 1]: Keras' cross-entropies take them as they are
    if family in ("one_hot", "sparse"):
        if info.label_kind == "regression":
            raise UserError(
                f"{name} needs class labels, but {info.source} has regression targets",
                location,
                "use mean_squared_error, mean_absolute_error or 'auto'",
            )
        if family == "sparse" and one_hot_labels:
            raise UserError(
                f"{name} needs integer class ids, but {info.source} has one-hot labels",
                location,
                "use categorical_crossentropy or 'auto'",
            )
        return family == "one_hot" and not one_hot_labels
    if family == "binary" and info.label_kind == "regression":
        raise UserError(
            f"{name} needs 0/1 labels, but {info.source} has regression targets",
            location,
            "use mean_squared_error, mean_absolute_error or 'auto'",
        )
    if family == "binary" and info.label_kind == "categorical" and classes > 2:
        raise UserError(
            f"{name} needs 0/1 labels, but {info.source} has {classes} classes",
            location,
            "use sparse_categorical_crossentropy (or 'auto')",
        )
    return False


def targets_in_unit_range(info: DataInfo) -> bool:
    """Whether regression targets are known to lie in [0, 1] (`extra["label_range"]`, from the source)."""
    bounds = info.extra.get("label_range")
    return info.label_kind == "regression" and bool(bounds) and 0.0 <= bounds[0] and bounds[1] <= 1.0


def infer_label_kind(
    y, override: str | None = None, location: str = "data.options.label_kind"
) -> tuple[str, int, tuple[int, ...]]:
    """Classification or regression from the labels themselves, unless `override` says which.

    Integer labels 0..k-1 (one column) are classes — binary when they are only 0 and 1; a 2-D
    array of 0/1 rows summing to one is one-hot classes; anything else is regression.

    Args:
        y: the labels (numpy array, first axis: samples).
        override: "categorical", "binary" or "regression" to skip the inference.
        location: where to place an error.

    Returns:
        (label_kind, num_classes, label_shape).

    Raises:
        UserError: `override` asks for classes but the labels are not class ids.
    """
    import numpy as np

    y = np.asarray(y)
    integral = y.size > 0 and (np.issubdtype(y.dtype, np.integer) or bool(np.all(np.mod(y, 1) == 0)))
    one_hot = (
        y.ndim == 2
        and y.shape[1] > 1
        and integral
        and bool(np.all((y == 0) | (y == 1)))
        and bool(np.all(y.sum(axis=1) == 1))
    )
    if one_hot and override in (None, "categorical"):
        return "categorical", int(y.shape[1]), (int(y.shape[1]),)
    if override == "regression" or (
        override is None and (not integral or y.ndim > 1 or not np.issubdtype(y.dtype, np.integer))
    ):
        return "regression", 0, tuple(int(d) for d in y.shape[1:]) or (1,)
    flat = y.reshape(len(y), -1) if y.ndim > 1 else y
    if flat.ndim > 1 and flat.shape[1] != 1:
        raise UserError(f"class labels must be one id per sample, got label shape {y.shape[1:]}", location)
    if not integral or (y.size and y.min() < 0):
        raise UserError("class labels must be whole numbers 0, 1, 2, …", location)
    classes = int(y.max()) + 1 if y.size else 0
    kind = override or ("binary" if classes <= 2 else "categorical")
    if kind == "binary" and classes > 2:
        raise UserError(f"binary labels must be 0 or 1, but there are {classes} classes", location)
    return kind, max(classes, 2 if kind == "binary" else classes), ()
