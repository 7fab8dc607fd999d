"""The data part `tfbench code` writes for a table: pyarrow reading and the same FeatureSpace.

No TensorFlow here. The script reads the file with the same pyarrow options, keeps the plan's
columns with the statistics tfbench took from the training split (written out literally), and
builds the same preprocessing as `tfbench.data.feature_space`: imputation with indicators, date
features, and a `keras.utils.FeatureSpace` of given normalisation and lookups. As in keras.io's
structured-data examples, `tf.data` applies it while training and the saved model is
preprocessing → layer stack, taking the raw named columns.
"""

from __future__ import annotations

from pathlib import Path

from tfbench.data.column_names import input_name, serving_names
from tfbench.data.feature_space import PLACES, plan_of_info
from tfbench.data.options import parse_options
from tfbench.data.registry import LoaderCode
from tfbench.data.table_dates import FORMS, ISO, ISO_CLEAN
from tfbench.data.table_inputs import layout
from tfbench.data.tables import NULL_VALUES, type_for

_READ = {
    "csv": '''def read_table(path):
    """The file as a pyarrow Table: types inferred, NA/empty/null cells missing, ISO dates recognised."""
    convert = csv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True, timestamp_parsers=[csv.ISO8601])
    return csv.read_csv(path, read_options=csv.ReadOptions(encoding={encoding!r}),
                        parse_options=csv.ParseOptions(delimiter={delimiter!r}), convert_options=convert)''',
    "parquet": '''def read_table(path):
    """The Parquet file (or folder of part files) as a pyarrow Table."""
    return parquet.read_table(path)''',
}

_BODY = '''

def plain(column):
    """Categories (dictionary-encoded) as their values; durations and times of day in seconds."""
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if pa.types.is_duration(column.type) or pa.types.is_time(column.type):
        unit = {{"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}}[column.type.unit]
        whole = pa.int32() if pa.types.is_time32(column.type) else pa.int64()
        return pc.multiply(pc.cast(pc.cast(column, whole), pa.float64()), unit)
    return column


def as_float(column):
    """Numbers as float64, dates as days since 1970-01-01; NaN where missing."""
    column = plain(column)
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        seconds = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
        return pc.divide(pc.cast(seconds, pa.float64()), 86400.0).to_numpy(zero_copy_only=False)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def date_text(column, form):
    """A date column as the ISO text the model takes ("" missing): typed dates formatted, text read in
    its written form (DATE_FORMATS), Unix times converted."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        stamps = pc.cast(pc.cast(column, pa.timestamp("ms")), pa.timestamp("s"), safe=False)
    elif form.startswith("Unix"):
        seconds = pc.divide(pc.cast(column, pa.float64()), 1000.0 if "milli" in form else 1.0)
        stamps = pc.cast(pc.cast(pc.floor(seconds), pa.int64()), pa.timestamp("s"))
    else:
        text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
        if form == ISO_FORM:
            text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, *ISO_CLEAN))
        attempts = [pc.strptime(text, format=f, unit="s", error_is_null=True) for f in DATE_FORMATS[form]]
        stamps = pc.coalesce(*attempts)
    return pc.fill_null(pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S"), "")


def raw_columns(table):
    """The feature columns as the model takes them: (rows, 1) float32 / int64 (-1 missing) / str."""
    out = {{}}
    for c in COLUMNS:
        column = plain(table[c["name"]])
        if c["kind"] == "date":
            out[c["name"]] = np.asarray(date_text(column, c["form"]).to_numpy(zero_copy_only=False), object)[:, None]
        elif c["dtype"] == "float32":
            out[c["name"]] = as_float(column).astype(np.float32).reshape(-1, 1)
        elif c["dtype"] == "int64":
            out[c["name"]] = pc.fill_null(pc.cast(column, pa.int64()), -1).to_numpy(zero_copy_only=False).reshape(-1, 1)
        else:
            text = pc.fill_null(pc.cast(column, pa.string()), "").to_numpy(zero_copy_only=False)
            out[c["name"]] = np.asarray(text, dtype=object).reshape(-1, 1)
    if PACKED:  # a wide table: the numeric columns are one matrix input
        out[PACKED] = np.hstack([out.pop(c["name"]) for c in COLUMNS if c["kind"] == "numeric"])
    return out


def labels(table):
    """The label column as class ids (looked up when its values are not 0..K-1) or float targets."""
    column = plain(table[LABEL])
    if LABEL_KIND == "regression":
        return as_float(column).astype(np.float32).reshape(-1, 1)
    if not LABEL_LOOKUP:
        return as_float(column).astype(np.int32)
    text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    probe = pc.cast(column, pa.string() if text else pa.int64())
    return pc.index_in(probe, value_set=pa.array(LABEL_LOOKUP)).to_numpy(zero_copy_only=False).astype(np.int32)


def load_data():
    """The named splits: {{"train": (columns, y)[, "test": (columns, y)]}}; rows without a label left out."""
    named = {{}}
    for split_name, path in FILES.items():
        table = read_table(path)
        table = table.filter(pc.is_valid(table[LABEL]))
        named[split_name] = (raw_columns(table), labels(table))
    return named


def joined(tensors, name):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)


def cyclic(x, period):
    angle = (2 * np.pi / period) * keras.ops.mod(x, period)
    return [keras.ops.sin(angle), keras.ops.cos(angle)]


def date_days(x, key):
    """ISO date text → days since 1970-01-01 (NaN where empty), with TensorFlow ops inside the model: a
    TextVectorization of the ten digits splits the characters, one matrix product gives year, month,
    day, hour, minute and second, and the calendar arithmetic is H. Hinnant's days_from_civil."""
    chars = keras.layers.TextVectorization(standardize=None, split="character", output_mode="int",
                                           output_sequence_length=19, vocabulary=list("0123456789"),
                                           name=key + "_characters")(x)
    digits = keras.ops.maximum(keras.ops.cast(chars, "float32") - 2.0, 0.0)
    fields = keras.ops.matmul(digits, np.array(DIGIT_PLACES, np.float32))
    year, month, day, hour, minute, second = (fields[:, i : i + 1] for i in range(6))
    y = year - keras.ops.cast(month <= 2.0, "float32")
    era = keras.ops.floor(y / 400.0)
    yoe = y - era * 400.0
    doy = keras.ops.floor((153.0 * keras.ops.mod(month + 9.0, 12.0) + 2.0) / 5.0) + day - 1.0
    doe = yoe * 365.0 + keras.ops.floor(yoe / 4.0) - keras.ops.floor(yoe / 100.0) + doy
    days = era * 146097.0 + doe - 719468.0 + (hour * 3600.0 + minute * 60.0 + second) / 86400.0
    present = keras.ops.min(keras.ops.take(chars, [0, 1, 2, 3, 5, 6, 8, 9], axis=1), axis=1, keepdims=True) >= 2
    return keras.ops.where(present, days, np.float32(np.nan))


def numbers_block(columns, tensors):
    """Numeric and date columns as one vector: missing → the training mean (+ 0/1 indicators),
    normalised with the training statistics; a date adds cyclic day-of-year and weekday parts."""
    x = joined(tensors, "numbers")
    missing = keras.ops.isnan(x)
    means = np.array([c["mean"] for c in columns], np.float32)
    value = keras.ops.where(missing, means, x)
    pieces = [value]
    if NORMALIZE:
        variances = np.array([c["variance"] for c in columns], np.float32)
        pieces = [keras.layers.Normalization(mean=means, variance=variances, name="normalize")(value)]
    flagged = [i for i, c in enumerate(columns) if c["indicator"]]
    if flagged:
        pieces.append(keras.ops.cast(keras.ops.take(missing, flagged, axis=1), "float32"))
    dates = [i for i, c in enumerate(columns) if c["kind"] == "date"]
    if dates:
        days = keras.ops.take(value, dates, axis=1)
        pieces += [*cyclic(days, 365.2425), *cyclic(keras.ops.floor(days) + 3.0, 7.0)]  # 1970-01-01: a Thursday
    return joined(pieces, "numbers_encoded")


def feature_space(columns):
    """The FeatureSpace of the categorical, text and hashed columns, with the training split's vocabularies
    (a text column: its most frequent words, multi-hot)."""
    fs = keras.utils.FeatureSpace
    features = {{}}
    for c in columns:
        if c["kind"] == "hashed":
            features[c["key"]] = fs.string_hashed(num_bins=c["bins"], name=c["key"])
        elif c["kind"] == "text":
            words = keras.layers.TextVectorization(standardize="lower_and_strip_punctuation", split="whitespace",
                                                   output_mode="multi_hot", vocabulary=c["vocabulary"])
            encoder = keras.Sequential([words, keras.layers.Reshape((len(c["vocabulary"]) + 1,))],
                                       name=c["key"] + "_words")
            features[c["key"]] = fs.feature(dtype="string", preprocessor=encoder, output_mode="float")
        else:
            lookup = keras.layers.StringLookup if c["dtype"] == "string" else keras.layers.IntegerLookup
            layer = lookup(vocabulary=c["vocabulary"], num_oov_indices=1, output_mode="one_hot")
            encoder = keras.Sequential([layer], name=c["key"] + "_lookup")
            features[c["key"]] = fs.feature(dtype=c["dtype"], preprocessor=encoder, output_mode="float")
    space = fs(features=features, output_mode="concat")
    space.get_encoded_features()
    return space


def preprocessing_model():
    """Raw named columns → the encoded feature vector the layer stack takes."""
    packed = [c for c in COLUMNS if PACKED and c["kind"] == "numeric"]
    inputs = {{c["name"]: keras.Input(shape=(1,), dtype=c["dtype"], name=c["input"]) for c in COLUMNS if c["input"]}}
    if packed:
        inputs[PACKED] = keras.Input(shape=(len(packed),), dtype="float32", name=PACKED)
    numbers = packed + [c for c in COLUMNS if c["kind"] in ("numeric", "date") and c["input"]]
    parts = []
    if numbers:
        rest = [date_days(inputs[c["name"]], c["key"]) if c["kind"] == "date" else inputs[c["name"]]
                for c in numbers[len(packed) :]]
        tensors = ([inputs[PACKED]] if packed else []) + rest
        parts.append(numbers_block(numbers, tensors))
    coded = [c for c in COLUMNS if c["kind"] not in ("numeric", "date")]
    if coded:
        space = feature_space(coded)
        space_inputs = space.get_inputs()
        order = list(space_inputs)
        column_of = {{c["key"]: c["name"] for c in coded}}
        inner = keras.Model([space_inputs[n] for n in order], space.get_encoded_features(), name="feature_space")
        parts.append(inner([inputs[column_of[n]] for n in order]))
    return keras.Model(inputs, joined(parts, "encoded"), name="preprocessing")


PREPROCESSING = preprocessing_model()'''

_PIPELINE = '''def to_dataset(part, training):
    """Batches of encoded features: the FeatureSpace runs in tf.data, as keras.io's examples do it."""
    x, y = part
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training and {shuffle}:
        ds = ds.shuffle(len(y), seed=SEED, reshuffle_each_iteration=True)
    ds = ds.batch(BATCH_SIZE)
    one_hot = "NUM_CLASSES" in globals()  # the loss wants one-hot labels
    ds = ds.map(lambda x, y: (PREPROCESSING(x), tf.one_hot(tf.cast(y, tf.int32), NUM_CLASSES) if one_hot else y),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)'''


def table_loader_code(exp, info) -> LoaderCode:
    """The `load_data()`, preprocessing and `to_dataset` of a `csv:` or `parquet:` source."""
    kind = exp.data.kind
    options = parse_options(type_for(kind), exp.data.options)
    plan = plan_of_info(info)
    if plan is None:
        raise ValueError("a table's loader code needs the table's plan in the data info")
    files = {"train": str(Path(exp.data.target).expanduser().resolve())}
    if options.test_path:
        files["test"] = str(Path(options.test_path).expanduser().resolve())
    keys = serving_names(layout(plan))
    columns = [
        {
            **{k: v for k, v in vars(c).items() if k not in ("missing", "distinct")},
            "key": keys.get(c.name, ""),
            "input": input_name(c.name, keys[c.name]) if c.name in keys else "",  # "": inside PACKED
        }
        for c in plan.columns
    ]
    forms = {c.form: FORMS[c.form] for c in plan.columns if c.kind == "date" and c.form in FORMS}
    reader = "from pyarrow import csv" if kind == "csv" else "from pyarrow import parquet"
    head = f"""import pyarrow as pa
import pyarrow.compute as pc
{reader}

FILES = {files!r}
NULL_VALUES = {NULL_VALUES!r}
ISO_FORM = {ISO!r}
ISO_CLEAN = {list(ISO_CLEAN)!r}
# The written forms of the date columns and the strptime formats that read them (tried per value).
DATE_FORMATS = {forms!r}
# (character of "YYYY-MM-DD HH:MM:SS", field) → place value: year, month, day, hour, minute, second.
DIGIT_PLACES = {PLACES.tolist()!r}
LABEL = {plan.label!r}
LABEL_KIND = {plan.label_kind!r}
LABEL_LOOKUP = {[str(v) if isinstance(v, str) else v for v in plan.label_lookup]!r}
NORMALIZE = {plan.normalize!r}
PACKED = {plan.packed!r}  # the input holding every numeric column as one matrix ("" : an input per column)
# The feature columns and the statistics tfbench took from the training split (kind: numeric,
# categorical, text (its words), hashed or date; dtype: what the saved model takes for the column; key: the
# name its inner layers use; input: its keras.Input's name, the column's own unless it holds "/").
COLUMNS = {columns!r}


"""
    text = (
        head
        + _READ[kind].format(delimiter=getattr(options, "delimiter", ","), encoding=getattr(options, "encoding", ""))
        + _BODY.format()
    )
    return LoaderCode(
        text,
        pipeline=_PIPELINE.format(shuffle=exp.data.shuffle),
        before_save=[
            "    # Saved as preprocessing → layer stack, so the file takes the raw named columns.",
            "    model = keras.Model(PREPROCESSING.input, model(PREPROCESSING.output), name=model.name)",
        ],
    )
