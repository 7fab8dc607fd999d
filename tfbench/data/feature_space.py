"""A table's preprocessing inside the model, with `keras.utils.FeatureSpace` — imports Keras.

The model a table trains takes the file's raw named columns (a dict of `(batch, 1)` inputs):
numbers as float32 with NaN for missing, categories as strings (or int64, -1 missing), dates as
days since 1970-01-01. Missing numbers are imputed with the training mean and, where the
training split had any, flagged by an indicator feature; dates become elapsed days plus the
sine and cosine of the day of the year and of the weekday. A `FeatureSpace` then normalises
(training mean and variance, given — not adapted — so the statistics are the training split's),
looks up (`StringLookup`/`IntegerLookup`, one-hot, an out-of-vocabulary slot) or hashes each
column and concatenates the result for the layer stack. Every piece is a built-in Keras layer or
op, so the `.keras` file loads in plain Keras and the SavedModel serves raw rows.
"""

from __future__ import annotations

import math
from typing import Any

from tfbench.data.tables import ColumnPlan, TablePlan

DAYS_PER_YEAR = 365.2425
INDICATOR = "{name}__missing"


def plan_of_info(info) -> TablePlan | None:
    """The table plan a DataInfo carries, or None when the data is not a table."""
    data = (getattr(info, "extra", None) or {}).get("table")
    return TablePlan.from_dict(data) if data else None


def raw_inputs(plan: TablePlan) -> dict[str, Any]:
    """One `keras.Input` of shape (1,) per feature column, named after it, of its raw dtype."""
    import keras

    return {c.name: keras.Input(shape=(1,), dtype=c.dtype, name=c.name) for c in plan.columns}


def _imputed(x, column: ColumnPlan) -> tuple[Any, Any]:
    """(value with missing replaced by the training mean, 0/1 missing indicator)."""
    from keras import ops

    missing = ops.isnan(x)
    return ops.where(missing, ops.full_like(x, column.mean), x), ops.cast(missing, "float32")


def _cyclic(x, period: float) -> tuple[Any, Any]:
    from keras import ops

    angle = (2 * math.pi / period) * ops.mod(x, period)
    return ops.sin(angle), ops.cos(angle)


def _derived(column: ColumnPlan, x) -> dict[str, Any]:
    """The FeatureSpace inputs one raw column gives: itself, or its imputed value, indicator, date parts."""
    from keras import ops

    if column.kind not in ("numeric", "date"):
        return {column.name: x}
    value, missing = _imputed(x, column)
    out = {column.name: value}
    if column.indicator:
        out[INDICATOR.format(name=column.name)] = missing
    if column.kind == "date":
        day = ops.floor(value)
        out[f"{column.name}__year_sin"], out[f"{column.name}__year_cos"] = _cyclic(value, DAYS_PER_YEAR)
        # 1970-01-01 was a Thursday: (day + 3) mod 7 counts from Monday.
        out[f"{column.name}__week_sin"], out[f"{column.name}__week_cos"] = _cyclic(day + 3.0, 7.0)
    return out


def _features(column: ColumnPlan, normalize: bool) -> dict[str, Any]:
    """The FeatureSpace features of one column (names as `_derived` gives them)."""
    import keras

    fs = keras.utils.FeatureSpace
    if column.kind == "text":
        return {column.name: fs.string_hashed(num_bins=column.bins, name=column.name)}
    if column.kind == "categorical":
        lookup = keras.layers.StringLookup if column.dtype == "string" else keras.layers.IntegerLookup
        layer = lookup(vocabulary=list(column.vocabulary), num_oov_indices=1, output_mode="one_hot")
        # Wrapped so FeatureSpace does not re-adapt it: the vocabulary is the training split's already.
        encoder = keras.Sequential([layer], name=f"{column.name}_lookup")
        return {column.name: fs.feature(dtype=column.dtype, preprocessor=encoder, output_mode="float")}
    out: dict[str, Any] = {}
    if normalize:
        scale = keras.layers.Normalization(mean=column.mean, variance=column.variance, name=f"{column.name}_normalize")
        out[column.name] = fs.feature(dtype="float32", preprocessor=scale, output_mode="float")
    else:
        out[column.name] = fs.float(name=column.name)
    if column.indicator:
        name = INDICATOR.format(name=column.name)
        out[name] = fs.float(name=name)
    if column.kind == "date":
        for part in ("year_sin", "year_cos", "week_sin", "week_cos"):
            out[f"{column.name}__{part}"] = fs.float(name=f"{column.name}__{part}")
    return out


def feature_space(plan: TablePlan):
    """The plan's `keras.utils.FeatureSpace` (concatenated output), ready to use without `adapt`."""
    import keras

    features: dict[str, Any] = {}
    for column in plan.columns:
        features.update(_features(column, plan.normalize))
    space = keras.utils.FeatureSpace(features=features, output_mode="concat")
    space.get_encoded_features()  # builds it; every preprocessor's state is given
    return space


def encoder(plan: TablePlan):
    """Raw named columns → the encoded feature vector the layer stack takes, as a Functional model."""
    import keras

    inputs = raw_inputs(plan)
    derived: dict[str, Any] = {}
    for column in plan.columns:
        derived.update(_derived(column, inputs[column.name]))
    space = feature_space(plan)
    space_inputs = space.get_inputs()
    order = list(space_inputs)
    inner = keras.Model([space_inputs[n] for n in order], space.get_encoded_features(), name="feature_space")
    return keras.Model(inputs, inner([derived[n] for n in order]), name="preprocessing")


def raw_columns_model(model, info):
    """`model` behind its table's preprocessing, taking raw named columns; other data: `model` itself.

    This is the hook `tfbench.build.build_model` calls: the layer stack is built on the encoded
    width (`DataInfo.input_shape`), and a table's model becomes preprocessing → stack.
    """
    import keras

    plan = plan_of_info(info)
    if plan is None:
        return model
    preprocessing = encoder(plan)
    outputs = model(preprocessing(preprocessing.input))
    return keras.Model(preprocessing.input, outputs, name=model.name)


def parts(model) -> tuple[Any, Any] | None:
    """(preprocessing, layer stack) of a table's model, or None for any other model."""
    inner = {layer.name: layer for layer in getattr(model, "layers", [])}
    preprocessing = inner.pop("preprocessing", None)
    stacks = [layer for layer in inner.values() if hasattr(layer, "layers")]
    if preprocessing is None or len(stacks) != 1:
        return None
    return preprocessing, stacks[0]


def after_preprocessing(model, reference) -> tuple[Any, Any, str | None]:
    """What TFLite exports of a table's model: the layer stack on encoded features, with a note.

    TFLite's built-in ops have no string lookups and the converter takes one input tensor, so a
    table's TFLite file takes the encoded feature vector; the note names the raw columns it
    cannot take. Any other model passes through: `(model, reference, None)`.
    """
    import dataclasses

    import numpy as np

    found = parts(model)
    if found is None:
        return model, reference, None
    preprocessing, stack = found
    from tfbench.data import rows

    encoded = np.concatenate(
        [
            np.asarray(preprocessing(rows.take(reference.x, i, i + 256), training=False))
            for i in range(0, rows.count(reference.x), 256)
        ]
    )
    names = sorted(reference.x) if isinstance(reference.x, dict) else []
    text = [n for n in names if np.asarray(reference.x[n]).dtype == object]
    note = (
        f"TFLite takes the {encoded.shape[1]} encoded features, after the model's preprocessing; "
        f"it cannot take the raw columns {', '.join(text or names)}"
        + (" (text: no string lookups in TFLite)" if text else "")
        + " — the .keras and SavedModel exports take them"
    )
    return stack, dataclasses.replace(reference, x=encoded), note
