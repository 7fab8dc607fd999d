"""`train.class_weight`: "balanced" or a weight per class, resolved against the training labels.

No TensorFlow. "balanced" weighs class c by n / (k · n_c) (scikit-learn's rule), from the
training split's label counts, which in-memory sources record when they load; a table of
weights names classes by name or id. The resolved `{class id: weight}` goes to `fit` and into
the run's record (`DataInfo.extra["class_weight"]`).
"""

from __future__ import annotations

from typing import Any

from tfbench.data.labels import labels_are_one_hot
from tfbench.errors import UserError, close_matches

LOCATION = "train.class_weight"


def resolve(setting: Any, info) -> dict[int, float] | None:
    """`{class id: weight}` for `fit`, or None when no weighting is asked for.

    Raises:
        UserError: weights for regression targets, an unknown class, a bad weight, or "balanced"
            where the label counts are unknown (a streamed source).
    """
    if setting is None:
        return None
    if not info.is_classification:
        raise UserError("class weights need class labels, but the labels are regression targets", LOCATION)
    if len(info.label_shape) > (1 if labels_are_one_hot(info) else 0):
        raise UserError(
            "class weights need one label per sample, but the labels are classes per position "
            "(Keras would weigh each sample by one position's class)",
            LOCATION,
            "drop class_weight; a loss such as CategoricalFocalCrossentropy weighs rare classes per position",
        )
    names = list(info.class_names)
    if setting == "balanced":
        counts = info.extra.get("label_counts")
        if not counts:
            raise UserError(
                '"balanced" needs the training labels\' counts, which a streamed source does not know',
                LOCATION,
                "give a weight per class instead, e.g. { cat = 1.0, dog = 3.0 }",
            )
        total, k = sum(counts), len([c for c in counts if c])
        return {i: round(total / (k * c), 6) for i, c in enumerate(counts) if c}
    weights: dict[int, float] = {}
    for key, value in setting.items():
        where = f"{LOCATION}.{key}"
        if key in names:
            index = names.index(key)
        elif str(key).isdigit() and int(key) < len(names):
            index = int(key)
        else:
            raise UserError(
                f"no class {key!r}", where, close_matches(str(key), names) or f"classes: {', '.join(names)}"
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise UserError(f"a class weight is a number of 0 or more, got {value!r}", where)
        weights[index] = float(value)
    return {i: weights.get(i, 1.0) for i in range(len(names))}


def fit_arguments(train_spec, bundle) -> dict[str, Any]:
    """`{"class_weight": …}` for `model.fit` (empty without weighting); records it in the bundle's info."""
    weights = resolve(getattr(train_spec, "class_weight", None), bundle.info)
    if weights is None:
        return {}
    bundle.info.extra["class_weight"] = {bundle.info.class_names[i]: w for i, w in weights.items()}
    return {"class_weight": weights}
