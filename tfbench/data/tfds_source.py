"""`tfds:NAME` — any TensorFlow Datasets dataset: split slicing, feature detection, offline info.

Without a UI; `tensorflow_datasets` (and with it TensorFlow) imported only when this source is
used. The dataset's features, shapes and classes come from the TFDS builder's code and so are
known without downloading; split sizes are known once TFDS has the dataset's metadata (after
preparing, or from `data_dir`). Features are picked from `supervised_keys` (the `as_supervised`
pair) or detected — the first image/text/tensor feature as input, the first class label as label
— and can be named with `input_key`/`label_key`. The validation fraction is taken with TFDS'
split slicing (`train[:1600]` / `train[1600:]`), which is deterministic but positional.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import Field

from tfbench.data.info import DataInfo, LabelKind
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Splits, holdout_size
from tfbench.errors import UserError, close_matches


class TfdsOptions(SourceOptions):
    """Where the data lives, which split trains, which features are input and label."""

    split: str = Field("train", description="The training split; TFDS slicing allowed (train[:80%]).")
    data_dir: str | None = Field(
        None,
        description="A TFDS data folder to read prepared data from (never downloaded into); "
        "default TFDS' own (TFDS_DATA_DIR, else ~/tensorflow_datasets).",
    )
    download: bool = Field(
        True, description="Download and prepare the data into TFDS' own folder when it is not prepared yet."
    )
    as_supervised: bool = Field(True, description="Use the dataset's (input, label) supervised keys when it has them.")
    input_key: str | None = Field(None, description="Feature used as input (default: detected).")
    label_key: str | None = Field(None, description="Feature used as label (default: detected).")
    max_tokens: int = Field(20000, ge=3, description="Text inputs: vocabulary size of the TextVectorization.")
    sequence_length: int = Field(200, ge=1, description="Text inputs: token ids per sample (padded or cut).")


OPTIONS = TfdsOptions
PICKER = Picker("TensorFlow Datasets", "tfds:NAME", listed=True)
PATHS = ("data_dir",)  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None


def _tfds():
    import tensorflow_datasets as tfds

    return tfds


@lru_cache(maxsize=16)
def _builder(name: str, data_dir: str | None):
    tfds = _tfds()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        from tfbench.data.tfds_catalog import catalog_names

        known = set(catalog_names()) | set(tfds.list_builders())
        base = name.split("/")[0].split(":")[0]
        hint = close_matches(base, known) or "see `tfbench datasets QUERY` for the TFDS catalog"
        raise UserError(f"TensorFlow Datasets has no dataset {name!r}", "data.source", hint) from None
    except Exception as exc:  # a bad version or config, a builder that cannot be constructed
        raise UserError(f"cannot open TFDS dataset {name!r}: {str(exc).splitlines()[0][:200]}", "data.source") from None


def _features(info, options: TfdsOptions) -> tuple[str, str]:
    """(input key, label key) from the options, the supervised keys, or the feature types."""
    tfds = _tfds()
    features = info.features
    names = list(features.keys())
    keys = info.supervised_keys
    x_key = options.input_key
    y_key = options.label_key
    if options.as_supervised and keys and all(isinstance(k, str) for k in keys[:2]):
        x_key = x_key or keys[0]
        y_key = y_key or keys[1]
    kinds = {k: type(features[k]) for k in names}
    if x_key is None:
        for kind in (tfds.features.Image, tfds.features.Text, tfds.features.Tensor):
            x_key = next((k for k in names if issubclass(kinds[k], kind)), None)
            if x_key:
                break
    if y_key is None:
        labels = [k for k in names if issubclass(kinds[k], tfds.features.ClassLabel)]
        y_key = "label" if "label" in labels else (labels[0] if labels else None)
    for key, option in ((x_key, "input_key"), (y_key, "label_key")):
        if key is None:
            raise UserError(
                f"cannot tell which feature is the {option.split('_')[0]}",
                f"data.options.{option}",
                f"features: {', '.join(names)}",
            )
        if key not in names:
            hint = close_matches(key, names) or f"features: {', '.join(names)}"
            raise UserError(f"the dataset has no feature {key!r}", f"data.options.{option}", hint)
    assert x_key is not None and y_key is not None  # each was checked just above
    return x_key, y_key


def _split_names(info) -> list[str]:
    return list(info.splits.keys())


def _size(info, split: str, location: str) -> int | None:
    """Samples in a (possibly sliced) split when TFDS knows the splits; None otherwise."""
    if not info.splits:
        return None
    try:
        return int(info.splits[split].num_examples)
    except (KeyError, ValueError, AssertionError) as exc:
        base = split.split("[")[0]
        names = _split_names(info)
        if base not in names:
            hint = close_matches(base, names) or f"splits: {', '.join(names)}"
            raise UserError(f"the dataset has no split {base!r}", location, hint) from None
        raise UserError(f"bad split {split!r}: {str(exc).splitlines()[0][:160]}", location) from None


def _plan(spec, options: TfdsOptions, info) -> dict[str, tuple[str, str] | None]:
    """The TFDS split string (and its option location) for train, validation and test."""
    train = (options.split, "data.options.split")
    validation = None
    if spec.validation:
        validation = (spec.validation, "data.validation")
    elif spec.validation_split:
        if "[" in options.split:
            raise UserError(
                "the training split is already sliced, so a validation fraction is ambiguous",
                "data.validation_split",
                'name the validation split instead, e.g. validation = "train[80%:]"',
            )
        n = _size(info, options.split, "data.options.split")
        if n is not None:
            cut = n - holdout_size(n, spec.validation_split)
            train = (f"{options.split}[:{cut}]", "data.options.split")
            validation = (f"{options.split}[{cut}:]", "data.validation_split")
        else:
            percent = max(1, min(99, round(spec.validation_split * 100)))
            train = (f"{options.split}[:{100 - percent}%]", "data.options.split")
            validation = (f"{options.split}[{100 - percent}%:]", "data.validation_split")
    test = (spec.test, "data.test") if spec.test else None
    return {"train": train, "validation": validation, "test": test}


def describe(spec, options: TfdsOptions, seed: int | None = 42) -> DataInfo:
    """Features, shapes and classes from the builder — no download; split sizes when TFDS knows them."""
    tfds = _tfds()
    builder = _builder(spec.target, options.data_dir)
    info = builder.info
    x_key, y_key = _features(info, options)
    x_feature, y_feature = info.features[x_key], info.features[y_key]
    if isinstance(y_feature, tfds.features.ClassLabel):
        classes = int(y_feature.num_classes)
        kind: LabelKind = "binary" if classes == 2 else "categorical"
        names = list(y_feature.names)
        label_shape: tuple[int, ...] = ()
    else:
        classes, kind, names = 0, "regression", []
        label_shape = tuple(int(d) for d in (y_feature.shape or ())) or (1,)
    text = isinstance(x_feature, tfds.features.Text)
    if text:  # vectorised on load, like `text:DIR`
        input_shape: tuple = (options.sequence_length,)
        dtype = "int32"
    else:
        input_shape = tuple(None if d is None else int(d) for d in x_feature.shape)
        raw = str(getattr(x_feature.dtype, "name", x_feature.dtype))
        dtype = "float32" if isinstance(x_feature, tfds.features.Image) or raw.startswith("float") else "int32"
    plan = _plan(spec, options, info)
    sizes = {split: (_size(info, *where) if where else 0) for split, where in plan.items() if split != "test" or where}
    try:
        prepared = bool(builder.is_prepared())
    except Exception:  # noqa: BLE001 - some builders cannot tell without their files
        prepared = False
    download = info.download_size
    return DataInfo(
        source=spec.source,
        input_shape=input_shape,
        label_kind=kind,
        num_classes=classes,
        class_names=names,
        label_shape=label_shape,
        sizes=sizes,
        description=(info.description or "").strip().split("\n")[0][:300],
        input_dtype=dtype,
        extra={
            "input_key": x_key,
            "label_key": y_key,
            "features": str(info.features),
            "splits": _split_names(info),
            "download_bytes": int(download) if download else None,
            "prepared": prepared,
            "data_dir": builder.data_dir if prepared else options.data_dir,
            "homepage": info.homepage,
            "text_input": text,
            "vocab_size": options.max_tokens if text else None,
        },
    )


def _prepare(builder, spec, options: TfdsOptions) -> None:
    if builder.is_prepared():
        return
    name = spec.target
    folder = options.data_dir or "~/tensorflow_datasets"
    if options.data_dir:  # a preset's folder is only read: no preset makes tfbench write where it says
        raise UserError(
            f"TFDS dataset {name!r} is not prepared in {folder}; a preset's data_dir is only read from, "
            "never downloaded into",
            "data.options.data_dir",
            f"run `tfds build {name} --data_dir {folder}` yourself, or remove data_dir so TFDS downloads "
            "into its own folder (TFDS_DATA_DIR, else ~/tensorflow_datasets)",
        )
    if not options.download:
        raise UserError(
            f"TFDS dataset {name!r} is not prepared in {folder}",
            "data.options.data_dir",
            "set data.options.download = true, or prepare it elsewhere and point data_dir at it",
        )
    try:
        builder.download_and_prepare()
    except Exception as exc:  # network errors arrive as many types
        raise UserError(
            f"cannot download TFDS dataset {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            "data.source",
            f"on a machine with internet run `tfds build {name} --data_dir DIR`, copy DIR here and set "
            "data.options.data_dir to it",
        ) from None


def load(spec, options: TfdsOptions, seed: int | None = 42) -> Splits:
    """Unbatched (input, label) streams of the planned splits, preparing the data first if allowed."""
    import tensorflow as tf

    tfds = _tfds()
    info_here = describe(spec, options, seed)  # feature and split mistakes surface before a download
    builder = _builder(spec.target, options.data_dir)
    if not builder.is_prepared():
        _prepare(builder, spec, options)
        info_here = describe(spec, options, seed)  # split sizes are known now
    x_key, y_key = info_here.extra["input_key"], info_here.extra["label_key"]
    if None in info_here.input_shape and options.resize is None:
        raise UserError(
            f"the images of {spec.target!r} have no fixed size {info_here.input_shape}",
            "data.options.resize",
            "set data.options.resize = [height, width]",
        )
    regression = info_here.label_kind == "regression"
    label_shape = info_here.label_shape

    def pick(example):
        y = example[y_key]
        y = tf.reshape(tf.cast(y, tf.float32), label_shape) if regression else tf.cast(y, tf.int32)
        return example[x_key], y

    def stream(where):
        if where is None:
            return None
        split, location = where
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False, read_config=tfds.ReadConfig(shuffle_seed=seed))
        except (KeyError, ValueError, AssertionError) as exc:
            raise UserError(f"bad split {split!r}: {str(exc).splitlines()[0][:200]}", location) from None
        return ds.map(pick, num_parallel_calls=options.parallel_calls or tf.data.AUTOTUNE)

    plan = _plan(spec, options, builder.info)
    sizes = {k: v for k, v in info_here.sizes.items()}
    streams = [stream(plan[k]) for k in ("train", "validation", "test")]
    if info_here.extra["text_input"]:
        streams = _vectorised(streams, options)
    return Splits(streams[0], streams[1], streams[2], sizes)


def _vectorised(streams: list, options: TfdsOptions) -> list:
    """Raw text → int32 token ids, with a vocabulary adapted on the training split only."""
    import keras
    import tensorflow as tf

    vectorize = keras.layers.TextVectorization(
        max_tokens=options.max_tokens, output_mode="int", output_sequence_length=options.sequence_length
    )
    vectorize.adapt(streams[0].map(lambda x, y: x).batch(256))

    def ids(x, y):
        return tf.cast(vectorize(tf.expand_dims(x, 0))[0], tf.int32), y

    return [s.map(ids, num_parallel_calls=tf.data.AUTOTUNE) if s is not None else None for s in streams]


def loader_code(exp, info) -> LoaderCode:
    """The data loader the script `tfbench code` writes for this kind."""
    return LoaderCode(_loader_text(exp, info), streamed=True)


def _loader_text(exp, info) -> str:
    data = exp.data
    options = parse_options(OPTIONS, data.options)
    base = options.split
    train, validation = base, None
    if data.validation:
        validation = data.validation
    elif data.validation_split:
        n_train, n_val = info.sizes.get("train"), info.sizes.get("validation")
        if n_train is not None and n_val is not None:
            train, validation = f"{base}[:{n_train}]", f"{base}[{n_train}:]"
        else:
            percent = max(1, min(99, round(data.validation_split * 100)))
            train, validation = f"{base}[:{100 - percent}%]", f"{base}[{100 - percent}%:]"
    x_key = info.extra.get("input_key") or "image"
    y_key = info.extra.get("label_key") or "label"
    if info.label_kind == "regression":
        label = f"tf.reshape(tf.cast(example[{y_key!r}], tf.float32), {tuple(info.label_shape)!r})"
    else:
        label = f"tf.cast(example[{y_key!r}], tf.int32)"
    data_dir = f", data_dir={options.data_dir!r}" if options.data_dir else ""

    def stream(split):
        if split is None:
            return "None"
        return f"tfds.load({data.target!r}, split={split!r}, shuffle_files=False{data_dir}).map(pick)"

    return f'''import tensorflow_datasets as tfds


def load_splits():
    """Unbatched (x, y) datasets for training, validation and test (TFDS downloads them once)."""

    def pick(example):
        return example[{x_key!r}], {label}

    train = {stream(train)}
    validation = {stream(validation)}
    test = {stream(data.test)}
    return train, validation, test'''


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import tfds_source
    from tfbench.data.registry import DataSource

    _: DataSource = tfds_source
