"""Labels that fit the loss: one-hot or sparse, decided before training — never a silent NaN.

An integer-label dataset trained with `categorical_crossentropy` is converted to one-hot; a
combination that cannot work (class losses on regression targets, a binary loss on ten classes)
is rejected with a message that names a loss that fits. No TensorFlow here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfbench.data.info import DataInfo, LabelKind
from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

# Class losses by the label encoding they want, by Keras class name (`catalog.get` resolves the
# function names and aliases: `categorical_crossentropy`, `bce`).
_LOSS_FAMILIES = {
    "one_hot": ("CategoricalCrossentropy", "CategoricalFocalCrossentropy", "CategoricalHinge"),
    "sparse": ("SparseCategoricalCrossentropy",),
    "binary": ("BinaryCrossentropy", "BinaryFocalCrossentropy"),
}
_FAMILY_OF = {name: family for family, names in _LOSS_FAMILIES.items() for name in names}
# The range of regression targets on which a probabilistic loss computes something meaningful:
# Keras takes any target in [0, 1] for cross-entropy and KL divergence (an autoencoder's pixels,
# soft labels), and counts (>= 0) for Poisson; outside it the loss is no longer a divergence.
_TARGET_RANGES = {
    "BinaryCrossentropy": (0.0, 1.0),
    "BinaryFocalCrossentropy": (0.0, 1.0),
    "CategoricalCrossentropy": (0.0, 1.0),  # soft or multi-hot rows, as Keras takes them
    "CategoricalFocalCrossentropy": (0.0, 1.0),
    "KLDivergence": (0.0, 1.0),
    "Poisson": (0.0, None),
}
_SOURCES_WITH_LABEL_KIND = ("npz", "csv", "parquet")  # the kinds whose options take `label_kind`


def loss_name(loss: Any) -> str:
    """The name of a loss given as a string, a `Component` or a component dict (`{"type": …}`)."""
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return str(loss.get("type", ""))
    return str(getattr(loss, "type", loss))


def loss_class(loss: Any) -> str:
    """The Keras class a loss names (`"bce"`, `"binary_crossentropy"` → `BinaryCrossentropy`), or its name."""
    from tfbench import catalog

    name = loss_name(loss)
    entry = catalog.get("losses", name)
    return entry.name if entry is not None else name


def loss_family(loss: Any) -> str | None:
    """Which labels a class loss wants: "one_hot", "sparse" (class ids), "binary" (0/1) — None otherwise."""
    return _FAMILY_OF.get(loss_class(loss))


def labels_are_one_hot(info: DataInfo) -> bool:
    """Whether the class labels are one-hot already: a last axis of one 0/1 entry per class.

    Class ids per position (a sequence's `(steps,)` labels) are not; they are one-hot encoded
    per position when the loss wants one-hot labels. A source that knows says so in
    `extra["label_encoding"]` ("ids" or "one_hot"), so ids at 10 positions of 10 classes are ids.
    """
    encoding = info.extra.get("label_encoding")
    if encoding is not None:
        return encoding == "one_hot"
    shape = tuple(info.label_shape)
    return info.is_classification and bool(shape) and info.num_classes > 0 and shape[-1] == info.num_classes


def needs_one_hot(
    loss: Any,
    info: DataInfo,
    location: str = "train.loss",
    output_shape: list[int | None] | None = None,
    declared_width: int | None = None,
) -> bool:
    """Whether labels must be one-hot for `loss`, rejecting combinations that cannot train.

    This is the one place that decides; `tfbench.build.needs_one_hot(exp, info)` resolves the
    Experiment's "auto" loss and asks here.

    Args:
        loss: the loss (`"auto"`, a name, a Component or a component dict).
        info: the data's description.
        location: where to place an error.
        output_shape: one sample's output shape, when the model is built: the advice then fits the
            model as well as the labels (class outputs on whole-number targets: read them as classes).
        declared_width: the width the stack's last layer declares (`units`/`filters`), when the
            preset says: labels per position whose last axis already has that width are rows the
            model writes (multi-hot, as the Functional API guide's department head), not ids.

    Returns:
        True when integer class labels must be converted to one-hot for this loss.

    Raises:
        UserError: the loss cannot fit these labels; the hint names what does.
    """
    name = loss_name(loss)
    family = loss_family(loss)
    if info.label_kind == "regression":
        _check_regression_loss(loss, info, location, output_shape)
        return False
    one_hot_labels = labels_are_one_hot(info)
    if family == "sparse" and one_hot_labels:
        raise UserError(
            f"{name} needs integer class ids, but {info.source} has one-hot labels",
            location,
            "use categorical_crossentropy or 'auto'",
        )
    if family == "binary" and info.label_kind == "categorical" and info.num_classes > 2:
        raise UserError(
            f"{name} needs 0/1 labels, but {info.source} has {info.num_classes} classes",
            location,
            f"use sparse_categorical_crossentropy (or 'auto') with {info.num_classes} outputs and softmax",
        )
    if family == "one_hot" and info.label_shape and declared_width == info.label_shape[-1]:
        return False  # 0/1 rows as wide as the output (multi-hot): Keras' cross-entropy takes them as they are
    return family == "one_hot" and not one_hot_labels


def target_range(info: DataInfo) -> tuple[float, float] | None:
    """(lowest, highest) regression target of the training data, when the source knows it."""
    found = info.extra.get("label_range")
    return (float(found[0]), float(found[1])) if found else None


def _check_regression_loss(loss: Any, info: DataInfo, location: str, output_shape: list[int | None] | None) -> None:
    """Class losses never fit regression targets; probabilistic ones only targets in their range."""
    name = loss_name(loss)
    cls = loss_class(loss)
    known = target_range(info)
    if cls in _TARGET_RANGES:
        low, high = _TARGET_RANGES[cls]
        if known is not None and known[0] >= low and (high is None or known[1] <= high):
            return  # e.g. an autoencoder's pixels in [0, 1] with binary cross-entropy
        wanted = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        found = f"lie in [{known[0]:.4g}, {known[1]:.4g}]" if known else "are not known to lie there"
        raise UserError(
            f"{name} needs targets {wanted}, but {info.source}'s regression targets {found}",
            location,
            _regression_hint(info, output_shape),
        )
    if cls in _FAMILY_OF:
        raise UserError(
            f"{name} needs class labels, but {info.source} has regression targets",
            location,
            _regression_hint(info, output_shape),
        )


def _regression_hint(info: DataInfo, output_shape: list[int | None] | None) -> str:
    """What fits float targets: read whole numbers as classes (`classes_hint`), else a regression
    loss — and, for targets in [0, 1], binary cross-entropy too."""
    as_classes = classes_hint(info, output_shape)
    if as_classes:
        return as_classes
    known = target_range(info)
    in_unit = known is not None and known[0] >= 0.0 and known[1] <= 1.0
    return "use mean_squared_error, mean_absolute_error" + (", binary_crossentropy" if in_unit else "") + " or 'auto'"


def classes_hint(info: DataInfo, output_shape: list[int | None] | None) -> str | None:
    """The advice for whole-number float targets under a model with a class axis (K > 1 outputs per
    target position, or any model not built yet): they are class ids stored as floats.

    Returns:
        The hint, or None when the targets or the model say regression.
    """
    if info.label_kind != "regression" or not info.extra.get("label_whole"):
        return None
    if info.source.split(":", 1)[0] not in _SOURCES_WITH_LABEL_KIND:
        return None
    label_shape = [d for d in info.label_shape if d != 1] if output_shape is not None else []
    out = list(output_shape or [])
    class_axis = output_shape is None or (out[:-1] == label_shape and (out[-1] or 0) > 1 if out else False)
    if not class_axis:
        return None
    return 'the targets are whole numbers: set data.options.label_kind = "categorical" to read them as class ids'


def label_facts(y: np.ndarray, kind: str) -> dict[str, Any]:
    """What a source records about its labels in `DataInfo.extra` (see `labels_are_one_hot`, `target_range`).

    Returns:
        `label_encoding` ("ids" | "one_hot") for classes; `label_range` ([low, high]) and
        `label_whole` (all whole numbers) for regression targets.
    """
    import numpy as np

    y = np.asarray(y)
    if kind != "regression":
        return {"label_encoding": "one_hot" if _one_hot(y) else "ids"}
    if not y.size:
        return {}
    finite = y[np.isfinite(y)] if np.issubdtype(y.dtype, np.floating) else y
    if not finite.size:
        return {}
    return {
        "label_range": [float(finite.min()), float(finite.max())],
        "label_whole": bool(np.all(np.mod(finite, 1) == 0)),
    }


def _one_hot(y: np.ndarray) -> bool:
    """A last axis of 0/1 entries, exactly one of them 1: one-hot rows (per sample or per position)."""
    import numpy as np

    return bool(
        y.ndim >= 2
        and y.shape[-1] > 1
        and y.size
        and bool(np.all((y == 0) | (y == 1)))
        and bool(np.all(y.sum(axis=-1) == 1))
    )


def infer_label_kind(
    y, override: LabelKind | None = None, location: str = "data.options.label_kind"
) -> tuple[LabelKind, int, tuple[int, ...]]:
    """Classification or regression from the labels themselves, unless `override` says which.

    Integer labels 0..k-1 are classes — one id per sample, or one per position when each label
    has a shape (a tagger's `(steps,)`, a segmentation mask's `(height, width)`; a last axis of 1
    is dropped) — binary when they are only 0 and 1; 0/1 rows with exactly one 1 on the last axis
    are one-hot classes (per sample or per position); floats are regression targets.

    Args:
        y: the labels (numpy array, first axis: samples).
        override: "categorical", "binary" or "regression" to skip the inference.
        location: where to place an error.

    Returns:
        (label_kind, num_classes, label_shape): `()` for one id per sample, the positions' shape
        for ids per position, the one-hot shape for one-hot labels.

    Raises:
        UserError: `override` asks for classes but the labels are not class ids.
    """
    import numpy as np

    y = np.asarray(y)
    integral = y.size > 0 and (np.issubdtype(y.dtype, np.integer) or bool(np.all(np.mod(y, 1) == 0)))
    if integral and _one_hot(y) and override in (None, "categorical"):
        return "categorical", int(y.shape[-1]), tuple(int(d) for d in y.shape[1:])
    if override == "regression" or (override is None and not (integral and np.issubdtype(y.dtype, np.integer))):
        return "regression", 0, tuple(int(d) for d in y.shape[1:]) or (1,)
    shape = tuple(int(d) for d in y.shape[1:])
    if shape and shape[-1] == 1:  # (n, 1) ids, or a mask's trailing channel: one id per sample / position
        shape = shape[:-1]
    if not integral or (y.size and y.min() < 0):
        raise UserError("class labels must be whole numbers 0, 1, 2, …", location)
    classes = int(y.max()) + 1 if y.size else 0
    kind: LabelKind = override or ("binary" if classes <= 2 else "categorical")
    if kind == "binary" and classes > 2:
        raise UserError(f"binary labels must be 0 or 1, but there are {classes} classes", location)
    return kind, max(classes, 2 if kind == "binary" else classes), shape
