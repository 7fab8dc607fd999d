"""`text:DIR` — raw text files in one sub-folder per class, vectorised with Keras' `TextVectorization`.

Without a UI; TensorFlow imported only when loading. The vocabulary is learnt from the training
split only (never from validation or test), and every split becomes fixed-length int32 token ids,
so an `Embedding` + `LSTM` stack trains on raw text with `input_dim = max_tokens`. With
`vectorize = false` the samples are the raw texts, one string each, for a model that starts with
its own `TextVectorization` layer (keras.io's end-to-end text models; it adapts on the training
texts when a run starts), so the model and its exports take raw strings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from tfbench.data.folders import class_files, folder_lines, named_lines
from tfbench.data.info import DataInfo
from tfbench.data.options import SourceOptions
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, Splits, planned_sizes, split_arrays
from tfbench.errors import UserError


class TextOptions(SourceOptions):
    """Vocabulary and sequence length, the file suffixes read, and an optional test folder."""

    max_tokens: int = Field(20000, ge=3, description="Vocabulary size, including padding and out-of-vocabulary.")
    sequence_length: int = Field(200, ge=1, description="Token ids per sample (padded or cut).")
    extensions: list[str] = Field([".txt"], min_length=1, description="File suffixes to read.")
    test_dir: str | None = Field(None, description="A second folder of the same classes: the 'test' split.")
    vectorize: bool = Field(
        True, description="Turn texts into token ids here; false: raw strings for a TextVectorization layer."
    )


OPTIONS = TextOptions
PICKER = Picker("text", "text:DIR")
PATHS = ("target", "test_dir")  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None


@lru_cache(maxsize=4)
def _read(root: str, mtime: float, extensions: tuple[str, ...], location: str) -> tuple[list[str], Arrays]:
    classes, paths, labels = class_files(root, extensions, location)
    texts = np.array([Path(p).read_text(encoding="utf-8", errors="replace") for p in paths], dtype=object)
    return classes, Arrays(texts, np.array(labels, np.int32))


def _folder(root: str, options: TextOptions, location: str) -> tuple[list[str], Arrays]:
    path = Path(root).expanduser()
    mtime = max((p.stat().st_mtime for p in path.iterdir()), default=0.0) if path.is_dir() else 0.0
    return _read(root, mtime, tuple(e.lower() for e in options.extensions), location)


def _named(spec, options: TextOptions) -> tuple[list[str], dict[str, Arrays]]:
    classes, train = _folder(spec.target, options, "data.source")
    named = {"train": train}
    if options.test_dir:
        test_classes, test = _folder(options.test_dir, options, "data.options.test_dir")
        if test_classes != classes:
            raise UserError(f"the test folder's classes {test_classes} differ from {classes}", "data.options.test_dir")
        named["test"] = test
    return classes, named


def describe(spec, options: TextOptions, seed: int | None = 42) -> DataInfo:
    """Classes from the folder names; samples are `sequence_length` int32 token ids (or raw strings)."""
    classes, named = _named(spec, options)
    return DataInfo(
        source=spec.source,
        input_shape=(options.sequence_length,) if options.vectorize else (),
        label_kind="binary" if len(classes) == 2 else "categorical",
        num_classes=len(classes),
        class_names=classes,
        sizes=planned_sizes(spec, {k: len(v) for k, v in named.items()}),
        description=f"{len(named['train'])} text files in {len(classes)} class folders under {spec.target}.",
        input_dtype="int32" if options.vectorize else "string",
        extra={"vocab_size": options.max_tokens} if options.vectorize else {},
    )


def vectorizer(spec, options: TextOptions, seed: int | None = 42):
    """The `TextVectorization` a run's model reads through: adapted on the training split alone
    (None with `vectorize = false`: the model reads the raw texts).

    Predictions on new text files go through the same one (same seed, same split, same vocabulary).
    """
    import keras
    import tensorflow as tf

    _, named = _named(spec, options)
    splits = split_arrays(spec, named, seed)
    if not options.vectorize:
        return None, splits
    vectorize = keras.layers.TextVectorization(
        max_tokens=options.max_tokens, output_mode="int", output_sequence_length=options.sequence_length
    )
    vectorize.adapt(tf.constant(list(splits.train.x), tf.string), batch_size=256)
    return vectorize, splits


def load(spec, options: TextOptions, seed: int | None = 42) -> Splits:
    """Token-id arrays; the vocabulary is adapted on the training split alone."""
    import tensorflow as tf

    vectorize, splits = vectorizer(spec, options, seed)

    def ids(part: Arrays | None) -> Arrays | None:
        if part is None or vectorize is None:
            return part
        tokens = vectorize(tf.constant(list(part.x), tf.string))
        return Arrays(np.asarray(tokens, np.int32), part.y)

    return Splits(ids(splits.train), ids(splits.validation), ids(splits.test), splits.sizes)


def loader_code(exp: Any, info: DataInfo) -> LoaderCode:
    """`load_data()` for `tfbench code`: the run's texts (listed as here, split by the common `split`),
    vectorised with a vocabulary learnt on the training texts alone, as here."""
    from tfbench.data.options import parse_options

    options = parse_options(TextOptions, exp.data.options)
    raw = "" if options.vectorize else ", as the model takes them: raw strings"
    text = f'''import pathlib

{folder_lines(exp.data, options, tuple(options.extensions))}


def read(files):
    """(texts, class ids) of the files, as numpy arrays."""
    texts = np.array([pathlib.Path(p).read_text(encoding="utf-8", errors="replace") for p, _ in files], dtype=object)
    return texts, np.array([c for _, c in files], np.int32)


def load_data():
    """The named splits of the folders, as numpy arrays: {{"train": (texts, class ids), …}}{raw}."""
{chr(10).join(named_lines(options))}
    return {{name: read(files) for name, files in named.items()}}'''
    if not options.vectorize:
        return LoaderCode(text)
    text += f'''


def vectorize(*parts):
    """Learn the vocabulary on the training texts alone, then turn every split's texts into token ids."""
    vectorizer = keras.layers.TextVectorization(
        max_tokens={options.max_tokens!r}, output_mode="int", output_sequence_length={options.sequence_length!r}
    )
    vectorizer.adapt(tf.constant(list(parts[0][0]), tf.string), batch_size=256)
    return [
        None if part is None else (np.asarray(vectorizer(tf.constant(list(part[0]), tf.string)), np.int32), part[1])
        for part in parts
    ]'''
    return LoaderCode(text, after_split=["    train, validation, test = vectorize(train, validation, test)"])


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import text
    from tfbench.data.registry import DataSource

    _: DataSource = text
