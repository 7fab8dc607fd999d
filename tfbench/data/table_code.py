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

from tfbench.data.feature_space import plan_of_info
from tfbench.data.options import parse_options
from tfbench.data.registry import LoaderCode
from tfbench.data.tables import NULL_VALUES, TIMESTAMP_FORMATS

_READ = {
    "csv": '''def read_table(path):
    """The file as a pyarrow Table: types inferred, NA/empty/null cells missing, dates recognised."""
    convert = csv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True,
                                 timestamp_parsers=[csv.ISO8601, *TIMESTAMP_FORMATS])
    return csv.read_csv(path, parse_options=csv.ParseOptions(delimiter={delimiter!r}), convert_options=convert)''',
    "parquet": '''def read_table(path):
    """The Parquet file (or folder of part files) as a pyarrow Table."""
    return parquet.read_table(path)''',
}

_BODY = '''

def as_float(column):
    """Numbers as float64, dates as days since 1970-01-01; NaN where missing."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        seconds = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
        return pc.divide(pc.cast(seconds, pa.float64()), 86400.0).to_numpy(zero_copy_only=False)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def raw_columns(table):
    """The feature columns as the model takes them: (rows, 1) float32 / int64 (-1 missing) / str."""
    out = {{}}
    for c in COLUMNS:
        column = table[c["name"]]
        if c["dtype"] == "float32":
            out[c["name"]] = as_float(column).astype(np.float32).reshape(-1, 1)
        elif c["dtype"] == "int64":
            out[c["name"]] = pc.fill_null(pc.cast(column, pa.int64()), -1).to_numpy(zero_copy_only=False).reshape(-1, 1)
        else:
            text = pc.fill_null(pc.cast(column, pa.string()), "").to_numpy(zero_copy_only=False)
            out[c["name"]] = np.asarray(text, dtype=object).reshape(-1, 1)
    return out


def labels(table):
    """The label column as class ids (looked up when its values are not 0..K-1) or float targets."""
    column = table[LABEL]
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


def imputed_and_dates(inputs):
    """Missing numbers → the training mean (+ a 0/1 indicator); dates → elapsed days and cyclic parts."""
    out = {{}}
    for c in COLUMNS:
        x = inputs[c["name"]]
        if c["kind"] not in ("numeric", "date"):
            out[c["name"]] = x
            continue
        missing = keras.ops.isnan(x)
        value = keras.ops.where(missing, keras.ops.full_like(x, c["mean"]), x)
        out[c["name"]] = value
        if c["indicator"]:
            out[c["name"] + "__missing"] = keras.ops.cast(missing, "float32")
        if c["kind"] == "date":
            for part, period, shift in (("year", 365.2425, 0.0), ("week", 7.0, 3.0)):
                day = value if part == "year" else keras.ops.floor(value)
                angle = (2 * np.pi / period) * keras.ops.mod(day + shift, period)
                out[f"{{c['name']}}__{{part}}_sin"] = keras.ops.sin(angle)
                out[f"{{c['name']}}__{{part}}_cos"] = keras.ops.cos(angle)
    return out


def feature_space():
    """The FeatureSpace with the training split's statistics given (no adapt needed)."""
    fs = keras.utils.FeatureSpace
    features = {{}}
    for c in COLUMNS:
        name = c["name"]
        if c["kind"] == "text":
            features[name] = fs.string_hashed(num_bins=c["bins"], name=name)
        elif c["kind"] == "categorical":
            lookup = keras.layers.StringLookup if c["dtype"] == "string" else keras.layers.IntegerLookup
            layer = lookup(vocabulary=c["vocabulary"], num_oov_indices=1, output_mode="one_hot")
            features[name] = fs.feature(dtype=c["dtype"], preprocessor=keras.Sequential([layer]), output_mode="float")
        else:
            if NORMALIZE:
                scale = keras.layers.Normalization(mean=c["mean"], variance=c["variance"])
                features[name] = fs.feature(dtype="float32", preprocessor=scale, output_mode="float")
            else:
                features[name] = fs.float(name=name)
            extra = ["missing"] if c["indicator"] else []
            if c["kind"] == "date":
                extra += ["year_sin", "year_cos", "week_sin", "week_cos"]
            for part in extra:
                features[f"{{name}}__{{part}}"] = fs.float(name=f"{{name}}__{{part}}")
    space = fs(features=features, output_mode="concat")
    space.get_encoded_features()
    return space


def preprocessing_model():
    """Raw named columns → the encoded feature vector the layer stack takes."""
    inputs = {{c["name"]: keras.Input(shape=(1,), dtype=c["dtype"], name=c["name"]) for c in COLUMNS}}
    derived = imputed_and_dates(inputs)
    space = feature_space()
    space_inputs = space.get_inputs()
    order = list(space_inputs)
    inner = keras.Model([space_inputs[n] for n in order], space.get_encoded_features())
    return keras.Model(inputs, inner([derived[n] for n in order]), name="preprocessing")


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
    from tfbench.data import registry

    kind = exp.data.kind
    options = parse_options(registry.source_module(kind).OPTIONS, exp.data.options)
    plan = plan_of_info(info)
    if plan is None:
        raise ValueError("a table source's DataInfo carries its plan")
    files = {"train": str(Path(exp.data.target).expanduser().resolve())}
    if options.test_path:
        files["test"] = str(Path(options.test_path).expanduser().resolve())
    columns = [{k: v for k, v in vars(c).items() if k not in ("missing", "distinct")} for c in plan.columns]
    reader = "from pyarrow import csv" if kind == "csv" else "from pyarrow import parquet"
    head = f"""import pyarrow as pa
import pyarrow.compute as pc
{reader}

FILES = {files!r}
NULL_VALUES = {NULL_VALUES!r}
TIMESTAMP_FORMATS = {list(TIMESTAMP_FORMATS)!r}
LABEL = {plan.label!r}
LABEL_KIND = {plan.label_kind!r}
LABEL_LOOKUP = {[str(v) if isinstance(v, str) else v for v in plan.label_lookup]!r}
NORMALIZE = {plan.normalize!r}
# The feature columns and the statistics tfbench took from the training split (kind: numeric,
# categorical, text (hashed) or date; dtype: what the saved model takes for the column).
COLUMNS = {columns!r}


"""
    text = head + _READ[kind].format(delimiter=getattr(options, "delimiter", ",")) + _BODY.format()
    return LoaderCode(
        text,
        pipeline=_PIPELINE.format(shuffle=exp.data.shuffle),
        before_save=[
            "    # Saved as preprocessing → layer stack, so the file takes the raw named columns.",
            "    model = keras.Model(PREPROCESSING.input, model(PREPROCESSING.output), name=model.name)",
        ],
    )
