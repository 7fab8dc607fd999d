"""A table's preprocessing inside the model, with Keras layers and `keras.utils.FeatureSpace` — imports Keras.

The model a table trains takes the file's raw named columns (a dict of `(batch, 1)` inputs):
numbers as float32 with NaN for missing, categories as strings (or int64, -1 missing), dates as ISO
text (`YYYY-MM-DD HH:MM:SS`, or shorter), which `date_days` parses with TensorFlow ops inside the
model. Numbers and dates go through one block, however many there are: the columns
are joined into one vector, normalised by one `keras.layers.Normalization` given the training
split's means and variances (not adapted), missing values imputed with the training mean (0 after
normalising) and, for columns whose training split had any, flagged by 0/1 indicators; a date adds
the sine and cosine of the day of the year and of the weekday. Categorical and text columns go
through a `FeatureSpace` (`StringLookup`/`IntegerLookup`, one-hot with an out-of-vocabulary slot;
a `TextVectorization` multi-hot of a text column's words; hashing). One block rather than a layer
per numeric column keeps a 5,000-column table's model as quick to build and trace as a 50-column one.
Every piece is a built-in Keras layer or op, so the `.keras` file loads in plain Keras and the
SavedModel serves raw rows.

Inner layers are named with the columns' serving names (`tfbench.data.column_names`), so any
name a CSV header can hold works.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tfbench.data.column_names import input_name, serving_names
from tfbench.data.table_inputs import NUMERIC_KINDS, layout, number_columns, packed_columns
from tfbench.data.tables import ColumnPlan, TablePlan

DAYS_PER_YEAR = 365.2425
ISO_LENGTH = 19  # YYYY-MM-DD HH:MM:SS; later characters (fractions, zones) are not read
# Each ISO field's digits by position, with their place values: year, month, day, hour, minute, second.
_FIELDS = ((0, 1, 2, 3), (5, 6), (8, 9), (11, 12), (14, 15), (17, 18))


def _places() -> np.ndarray:
    """(character position, field) → the place value of that digit in that field."""
    places = np.zeros((ISO_LENGTH, len(_FIELDS)), np.float32)
    for field, positions in enumerate(_FIELDS):
        for k, position in enumerate(positions):
            places[position, field] = 10.0 ** (len(positions) - 1 - k)
    return places


PLACES = _places()
DATE_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9]  # a date is there when these are all digits
RENAMED_INPUT_WARNING = (
    r"When providing `inputs` as a dict, all keys in the dict must match the names of the corresponding "
    r"tensors\. Received key '[^']*/"
)
# Keras refuses "/" in a layer name, so a column named "a/b" has an Input named "a_b" under the key
# "a/b": Keras warns about that whenever it builds or loads such a model, though it maps by key.
warnings.filterwarnings("ignore", message=RENAMED_INPUT_WARNING, category=UserWarning)


def plan_of_info(info) -> TablePlan | None:
    """The table plan a DataInfo carries, or None when the data is not a table."""
    data = (getattr(info, "extra", None) or {}).get("table")
    return TablePlan.from_dict(data) if data else None


def raw_inputs(plan: TablePlan) -> dict[str, Any]:
    """The model's `keras.Input`s, keyed as `table_inputs.layout` keys them: a column's name, of its raw dtype."""
    import keras

    shapes = layout(plan)
    names = serving_names(shapes)
    return {
        key: keras.Input(shape=(width,), dtype=dtype, name=input_name(key, names[key]))
        for key, (width, dtype) in shapes.items()
    }


def _joined(tensors: list, name: str):
    import keras

    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)


def _cyclic(x, period: float) -> list:
    from keras import ops

    angle = (2 * math.pi / period) * ops.mod(x, period)
    return [ops.sin(angle), ops.cos(angle)]


def date_days(x: Any, key: str) -> Any:
    """ISO date text `(batch, 1)` → days since 1970-01-01 (float32, NaN where empty or not a date).

    Built-in layers and ops only, so the `.keras` file loads in plain Keras: a `TextVectorization`
    with the ten digits as its vocabulary splits the text into characters and gives each digit its
    index (2..11: 0 pads, 1 is any other character); one matrix product gives the year, month, day,
    hour, minute and second; the days follow from the proleptic Gregorian calendar (H. Hinnant's
    `days_from_civil`), the time of day as a fraction.
    """
    import keras
    from keras import ops

    chars = keras.layers.TextVectorization(
        standardize=None,
        split="character",
        output_mode="int",
        output_sequence_length=ISO_LENGTH,
        vocabulary=list("0123456789"),
        name=f"{key}_characters",
    )(x)
    digits = ops.maximum(ops.cast(chars, "float32") - 2.0, 0.0)
    fields = ops.matmul(digits, PLACES)
    year, month, day, hour, minute, second = (fields[:, i : i + 1] for i in range(len(_FIELDS)))
    y = year - ops.cast(month <= 2.0, "float32")
    era = ops.floor(y / 400.0)
    year_of_era = y - era * 400.0
    day_of_year = ops.floor((153.0 * ops.mod(month + 9.0, 12.0) + 2.0) / 5.0) + day - 1.0
    day_of_era = year_of_era * 365.0 + ops.floor(year_of_era / 4.0) - ops.floor(year_of_era / 100.0) + day_of_year
    days = era * 146097.0 + day_of_era - 719468.0 + (hour * 3600.0 + minute * 60.0 + second) / 86400.0
    present = ops.min(ops.take(chars, DATE_DIGITS, axis=1), axis=1, keepdims=True) >= 2
    return ops.where(present, days, np.float32(np.nan))


def numbers_block(columns: list[ColumnPlan], tensors: list, normalize: bool):
    """The numeric and date columns → (batch, features): values, missing indicators, date cycles.

    Args:
        columns: the plan's numeric and date columns, in `table_inputs.number_columns` order.
        tensors: their float32 values (a date's days since 1970, `date_days`), NaN missing: `(batch, 1)`
            each, or first a packed `(batch, k)` one.
        normalize: standardise the values with the training statistics.
    """
    import keras
    from keras import ops

    x = _joined(tensors, "numbers")
    missing = ops.isnan(x)
    means = np.array([c.mean for c in columns], np.float32)
    value = ops.where(missing, means, x)
    pieces = [value]
    if normalize:
        variances = np.array([c.variance for c in columns], np.float32)
        pieces = [keras.layers.Normalization(mean=means, variance=variances, name="normalize")(value)]
    flagged = [i for i, c in enumerate(columns) if c.indicator]
    if flagged:
        pieces.append(ops.cast(ops.take(missing, flagged, axis=1), "float32"))
    dates = [i for i, c in enumerate(columns) if c.kind == "date"]
    if dates:
        days = ops.take(value, dates, axis=1)
        # 1970-01-01 was a Thursday: (day + 3) mod 7 counts from Monday.
        pieces += [*_cyclic(days, DAYS_PER_YEAR), *_cyclic(ops.floor(days) + 3.0, 7.0)]
    return _joined(pieces, "numbers_encoded")


def _features(column: ColumnPlan, key: str) -> Any:
    """The FeatureSpace feature of a categorical, text or hashed column, named `key`."""
    import keras

    fs = keras.utils.FeatureSpace
    if column.kind == "hashed":
        return fs.string_hashed(num_bins=column.bins, name=key)
    if column.kind == "text":  # its words, multi-hot, tokenised as `table_text.words` counted them
        words = keras.layers.TextVectorization(
            standardize="lower_and_strip_punctuation",
            split="whitespace",
            output_mode="multi_hot",
            vocabulary=list(column.vocabulary),
        )
        flat = keras.layers.Reshape((column.width,))  # FeatureSpace's (batch, 1) input would leave an axis
        return fs.feature(
            dtype="string", preprocessor=keras.Sequential([words, flat], name=f"{key}_words"), output_mode="float"
        )
    lookup = keras.layers.StringLookup if column.dtype == "string" else keras.layers.IntegerLookup
    layer = lookup(vocabulary=list(column.vocabulary), num_oov_indices=1, output_mode="one_hot")
    # Wrapped so FeatureSpace does not re-adapt it: the vocabulary is the training split's already.
    encoder = keras.Sequential([layer], name=f"{key}_lookup")
    return fs.feature(dtype=column.dtype, preprocessor=encoder, output_mode="float")


def feature_space(columns: list[ColumnPlan], keys: dict[str, str]):
    """The `keras.utils.FeatureSpace` (concatenated output) of categorical and text columns, built.

    Args:
        columns: the columns, each categorical or text.
        keys: each column's serving name, which names its feature.
    """
    import keras

    features = {keys[c.name]: _features(c, keys[c.name]) for c in columns}
    space = keras.utils.FeatureSpace(features=features, output_mode="concat")
    space.get_encoded_features()  # builds it; every preprocessor's state is given
    return space


def encoder(plan: TablePlan):
    """Raw named columns → the encoded feature vector the layer stack takes, as a Functional model."""
    import keras

    inputs = raw_inputs(plan)
    keys = serving_names(inputs)
    parts = []
    numbers = number_columns(plan)
    if numbers:
        packed = [inputs[plan.packed]] if plan.packed else []
        tensors = packed + [
            date_days(inputs[c.name], keys[c.name]) if c.kind == "date" else inputs[c.name]
            for c in numbers[len(packed_columns(plan)) :]
        ]
        parts.append(numbers_block(numbers, tensors, plan.normalize))
    coded = [c for c in plan.columns if c.kind not in NUMERIC_KINDS]
    if coded:
        space = feature_space(coded, keys)
        space_inputs = space.get_inputs()
        order = list(space_inputs)
        column_of = {keys[c.name]: c.name for c in coded}
        inner = keras.Model([space_inputs[n] for n in order], space.get_encoded_features(), name="feature_space")
        parts.append(inner([inputs[column_of[n]] for n in order]))
    return keras.Model(inputs, _joined(parts, "encoded"), name="preprocessing")


def serving_signature(model) -> list | None:
    """The SavedModel input signature of a table's model: each column under its serving name.

    Other models: None (Keras derives the signature itself).
    """
    import tensorflow as tf

    inputs = getattr(model, "input", None)
    if not isinstance(inputs, dict):
        return None
    names = serving_names(inputs)
    return [
        {
            column: tf.TensorSpec(tensor.shape, tensor.dtype, name=names[column])
            for column, tensor in sorted(inputs.items())
        }
    ]


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
