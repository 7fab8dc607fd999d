"""Labels that fit the loss: one-hot or sparse, decided before training — never a silent NaN.

An integer-label dataset trained with `categorical_crossentropy` is converted to one-hot; a
combination that cannot work (class losses on regression targets, a binary loss on ten classes)
is rejected with a message that names a loss that fits. No TensorFlow here.
"""

from __future__ import annotations

from typing import Any

from tfbench.data.info import DataInfo
from tfbench.errors import UserError

ONE_HOT_LOSSES = {
    "categorical_crossentropy", "CategoricalCrossentropy",
    "categorical_focal_crossentropy", "CategoricalFocalCrossentropy",
    "categorical_hinge", "CategoricalHinge",
}
SPARSE_LOSSES = {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"}
BINARY_LOSSES = {
    "binary_crossentropy", "BinaryCrossentropy",
    "binary_focal_crossentropy", "BinaryFocalCrossentropy",
}


def loss_name(loss: Any) -> str:
    """The class or function name of a loss given as a string or a `Component`."""
    return loss if isinstance(loss, str) else getattr(loss, "type", str(loss))


def needs_one_hot(loss: Any, info: DataInfo, location: str = "train.loss") -> bool:
    """Whether labels must be one-hot for `loss`, rejecting combinations that cannot train.

    Args:
        loss: the Experiment's loss (`"auto"`, a name, or a Component).
        info: the data's description.
        location: where to place an error.

    Returns:
        True when integer class labels must be converted to one-hot for this loss.

    Raises:
        UserError: the loss cannot fit these labels; the hint names one that does.
    """
    name = loss_name(loss)
    classes = info.num_classes
    one_hot_labels = info.is_classification and len(info.label_shape) > 0
    if name in ONE_HOT_LOSSES or name in SPARSE_LOSSES:
        if info.label_kind == "regression":
            raise UserError(
                f"{name} needs class labels, but {info.source} has regression targets",
                location, "use mean_squared_error or mean_absolute_error",
            )
        if name in SPARSE_LOSSES and one_hot_labels:
            raise UserError(
                f"{name} needs integer class ids, but {info.source} has one-hot labels",
                location, "use categorical_crossentropy",
            )
        return name in ONE_HOT_LOSSES and not one_hot_labels
    if name in BINARY_LOSSES and info.label_kind == "categorical" and classes > 2:
        raise UserError(
            f"{name} needs 0/1 labels, but {info.source} has {classes} classes",
            location, "use sparse_categorical_crossentropy (or categorical_crossentropy)",
        )
    return False
