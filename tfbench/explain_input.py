"""One image file made into what a run's model takes — without a UI; TensorFlow decodes it.

An image file (PNG, JPEG, GIF, BMP) is decoded with the model's channels, resized to its input size,
and its 0–255 pixels are mapped onto the value range of the run's training inputs (so a drawing
saved from `builtin:shapes`, whose inputs run 0–1, is read as the model saw its kind). A `.npy`
file is taken as the model's input exactly, for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfbench.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def read_image(path: Path, shape: tuple[int, ...], value_range: Callable[[], tuple[float, float]]) -> np.ndarray:
    """The file at `path` as one input of `shape` (H×W×C).

    Args:
        path: an image file, or a `.npy` array of `shape` (a leading axis of 1 is dropped).
        shape: the model's input shape per sample.
        value_range: gives (least, most) input value the model was trained on; asked only for images.

    Raises:
        UserError: a missing file, an unknown kind, an unreadable image or an array of another shape.
    """
    where = f"--input ({path})"
    if not path.is_file():
        raise UserError("no such file", where)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"not a readable .npy array: {exc}", where) from None
        if array.ndim == len(shape) + 1 and array.shape[0] == 1:
            array = array[0]
        if tuple(array.shape) != tuple(shape):
            raise UserError(f"the array is {array.shape}; the model takes {tuple(shape)}", where)
        return array.astype(np.float32)
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"not an image file ({', '.join(IMAGE_SUFFIXES)}) or .npy array", where)
    import tensorflow as tf

    height, width, channels = shape
    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise UserError("not a readable image (empty, cut short or damaged)", where) from None
    pixels = tf.image.resize(tf.cast(image, tf.float32), (height, width)).numpy()
    low, high = value_range()
    return (low + pixels / 255.0 * (high - low)).astype(np.float32)
