"""The `tf.data` input pipeline: preprocess (parallel map), cache, shuffle, batch, prefetch.

Without a UI. Streams (image folders, TFDS) follow the TensorFlow performance guide's order:
decoding and preprocessing run once, in parallel, before the cache; only shuffling and batching
repeat each epoch. In-memory arrays take a faster road: preprocessing runs once over the whole
arrays, an epoch's shuffle permutes sample *indices*, one gather puts the arrays in that order,
and batches are slices of the result — no sample passes through a shuffle buffer, which made
small models up to 2x slower than training on ready batches (benchmarks/pipeline.py).
Prefetching overlaps the next batch with the current training step, so the model — not the
input — sets the pace.
"""

from __future__ import annotations

import math

from tfbench.data.column_packing import packed
from tfbench.data.info import DataBundle, DataInfo
from tfbench.data.options import SourceOptions
from tfbench.data.splits import Arrays, Splits
from tfbench.errors import UserError

MAX_DEFAULT_BUFFER = 100_000


def preprocess_fn(info: DataInfo, options: SourceOptions, one_hot: bool | dict[str, bool]):
    """The preprocessing (for a sample, a batch or whole arrays): cast, resize, scale, one-hot or scale labels.

    With several outputs, `one_hot` says per output name which labels become one-hot.
    Returns None when there is nothing to do.
    """
    import tensorflow as tf

    relabel = _labels_per_output(info, one_hot) if isinstance(one_hot, dict) else None
    one_hot = one_hot if isinstance(one_hot, bool) else False
    float_input = info.input_dtype.startswith("float")
    scale = options.scale
    resize = options.resize
    classes = info.num_classes
    if resize is not None and len(info.input_shape) != 3:
        raise UserError(
            f"resize works on images (height, width, channels), but samples have shape {tuple(info.input_shape)}",
            "data.options.resize",
        )
    if one_hot and classes < 2:
        raise UserError("one-hot labels need a classification dataset", "train.loss")
    label_scale = options.label_scale
    if label_scale is not None and info.outputs:
        raise UserError("label_scale applies to one label; the model has several outputs", "data.options.label_scale")
    if label_scale is not None and info.label_kind != "regression":
        raise UserError(
            "label_scale applies to regression targets, but the labels are classes", "data.options.label_scale"
        )
    if not (float_input or scale or resize or one_hot or label_scale or relabel):
        return None

    def prep(x, y):
        # A table's x is a dict of raw named columns, which the model preprocesses itself.
        if not isinstance(x, dict):
            if (float_input or scale is not None or resize is not None) and x.dtype != tf.float32:
                x = tf.cast(x, tf.float32)
            if resize is not None:
                x = tf.image.resize(x, resize)
            if scale is not None:
                x = x * scale
        if one_hot:
            y = tf.one_hot(tf.cast(y, tf.int32), classes)
        if label_scale is not None:
            y = tf.cast(y, tf.float32) * label_scale
        if relabel is not None:
            y = relabel(y)
        return x, y

    return prep


def _labels_per_output(info: DataInfo, one_hot: dict[str, bool]):
    """Several outputs: one-hot the class ids of the outputs whose loss wants one-hot labels (None: no output does)."""
    import tensorflow as tf

    wanted = {name: info.outputs[name].num_classes for name, flag in one_hot.items() if flag}
    if not wanted:
        return None

    def relabel(y):
        return {name: tf.one_hot(tf.cast(v, tf.int32), wanted[name]) if name in wanted else v for name, v in y.items()}

    return relabel


def normalize_splits(splits: Splits) -> dict[str, list[float]]:
    """Standardise in-memory features with the training split's per-feature statistics, in place.

    Returns:
        The mean and deviation used (flattened per feature), for the run record.

    Raises:
        UserError: the source streams its data, so statistics would need a pass over it.
    """
    import numpy as np

    if not isinstance(splits.train, Arrays):
        raise UserError(
            "normalize works for in-memory sources (builtin, keras, csv, npz)",
            "data.options.normalize",
            "add a Normalization-style scaling to the model instead, or use scale",
        )
    x = np.asarray(splits.train.x, np.float32)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    parts = {id(p): p for p in (splits.train, splits.validation, splits.test) if p is not None}
    for part in parts.values():
        part.x = ((np.asarray(part.x, np.float32) - mean) / std).astype(np.float32)
    return {"mean": mean.ravel().tolist()[:64], "std": std.ravel().tolist()[:64]}


EAGER_PREP_BYTES = 256 * 2**20


def from_arrays(part: Arrays, spec, seed: int | None, *, training: bool, prep, parallel):
    """Batches of in-memory arrays, with work per epoch rather than per sample or per batch.

    Preprocessing runs once over the whole arrays when they are small enough (else per batch in
    a parallel map). A training epoch shuffles the sample indices, gathers the arrays in that
    order once, and slices batches off the result — so a batch costs what a ready batch in
    memory costs. Without shuffling the batches are sliced once and reused. `data.cache` does not
    apply: the samples are in memory already.
    """
    import tensorflow as tf

    x, unpack = packed(part.x)  # an array, or a table's dict of columns as one matrix per dtype
    x = tf.nest.map_structure(tf.convert_to_tensor, x)
    y = tf.nest.map_structure(tf.convert_to_tensor, part.y)  # an array, or a label per named output
    elements = sum(t.shape.num_elements() for t in tf.nest.flatten(x))
    if prep is not None and elements * 4 <= EAGER_PREP_BYTES:
        x, y = prep(x, y)
        prep = None
    n = len(part)
    size = spec.batch_size
    full = n // size

    def blocks(t):
        return tf.reshape(t[: full * size], [full, size, *t.shape[1:]])

    def rest(t):
        return t[full * size :]

    def batches(xs, ys):
        head = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(blocks, (xs, ys)))
        if n % size:
            head = head.concatenate(tf.data.Dataset.from_tensors(tf.nest.map_structure(rest, (xs, ys))))
        return head

    if training and spec.shuffle:
        buffer = spec.shuffle_buffer or n
        # One element per epoch: the whole permutation, reshuffled every iteration by its seed.
        order = tf.data.Dataset.range(n).shuffle(max(1, min(buffer, n)), seed=seed, reshuffle_each_iteration=True)
        ds = order.batch(n).flat_map(
            lambda index: batches(*tf.nest.map_structure(lambda t: tf.gather(t, index), (x, y)))
        )
        # flat_map hides the length; Keras needs it to know an epoch's steps.
        ds = ds.apply(tf.data.experimental.assert_cardinality(full + (1 if n % size else 0)))
    else:
        ds = batches(x, y)
    if unpack is not None:
        ds = ds.map(lambda xs, ys: (unpack(xs), ys))
    if prep is not None:
        ds = ds.map(prep, num_parallel_calls=parallel, deterministic=True)
        if spec.prefetch:
            ds = ds.prefetch(tf.data.AUTOTUNE)
    # Without a map, a batch is a slice of memory: there is nothing to prefetch, and a prefetch
    # thread's hand-off would cost every step (measured: up to a third of a tiny MLP's steps/s).
    # Slices of memory need no tuning, and tf.data's autotuner is not free: measured on 2 cores,
    # its background work cost small models ~30% of their steps/s (benchmarks/pipeline.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def batched(ds, spec, seed: int | None, *, training: bool, size: int | None, cache_name: str, prep, parallel):
    """Preprocess → cache → (shuffle) → batch → prefetch, for one split; arrays via `from_arrays`."""
    import tensorflow as tf

    if isinstance(ds, Arrays):
        return from_arrays(ds, spec, seed, training=training, prep=prep, parallel=parallel)
    # A stream: every decoded sample goes through map, cache and the shuffle buffer.

    if prep is not None:
        ds = ds.map(prep, num_parallel_calls=parallel, deterministic=True)
    if spec.cache is True:
        ds = ds.cache()
    elif spec.cache_file:
        ds = ds.cache(f"{spec.cache_file}-{cache_name}")
    if training and spec.shuffle:
        buffer = spec.shuffle_buffer or min(size or MAX_DEFAULT_BUFFER, MAX_DEFAULT_BUFFER)
        ds = ds.shuffle(max(1, buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(spec.batch_size)
    if spec.prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def build_bundle(
    spec, splits: Splits, info: DataInfo, options: SourceOptions, seed: int | None, one_hot: bool | dict[str, bool]
) -> DataBundle:
    """Turn a source's unbatched splits into the batched datasets of a `DataBundle`.

    Raises:
        UserError: an empty training split, or preprocessing that cannot apply to this data.
    """
    import tensorflow as tf

    if splits.sizes.get("train") == 0:
        raise UserError("the training split is empty", "data.source")
    prep = preprocess_fn(info, options, one_hot)
    parallel = options.parallel_calls or tf.data.AUTOTUNE
    if splits.batched:
        return _ready_bundle(spec, splits, info, prep, parallel)
    common = dict(prep=prep, parallel=parallel)
    train = batched(
        splits.train, spec, seed, training=True, size=splits.sizes.get("train"), cache_name="train", **common
    )
    validation = None
    if splits.validation is not None and splits.sizes.get("validation") != 0:
        validation = batched(
            splits.validation,
            spec,
            seed,
            training=False,
            size=splits.sizes.get("validation"),
            cache_name="validation",
            **common,
        )
    test = None
    if splits.test is not None:
        test = batched(
            splits.test, spec, seed, training=False, size=splits.sizes.get("test"), cache_name="test", **common
        )
    n_train = splits.sizes.get("train")
    steps = math.ceil(n_train / spec.batch_size) if n_train else None
    return DataBundle(train=train, validation=validation, info=info, test=test, steps_per_epoch=steps)


def _ready_bundle(spec, splits: Splits, info: DataInfo, prep, parallel) -> DataBundle:
    """A bundle of streams that come batched (a table read from disk each epoch): map and prefetch only."""
    import tensorflow as tf

    def ready(ds):
        if ds is None:
            return None
        if prep is not None:
            ds = ds.map(prep, num_parallel_calls=parallel)
        return ds.prefetch(tf.data.AUTOTUNE) if spec.prefetch else ds

    n_train = splits.sizes.get("train")
    steps = math.ceil(n_train / spec.batch_size) if n_train else None
    validation = ready(splits.validation) if splits.sizes.get("validation") else None
    return DataBundle(
        train=ready(splits.train), validation=validation, info=info, test=ready(splits.test), steps_per_epoch=steps
    )
