"""`images:DIR` — an image folder with one sub-folder per class, decoded by a parallel `tf.data` map.

Without a UI; TensorFlow imported only when loading. Like Keras' `image_dataset_from_directory`:
classes are the sorted sub-folder names, pixels are float32 0-255, colour mode and size are
options. Unlike it, images are not silently resized: without `image_size` every image must have
the same size, checked from the file headers (cheap) so `describe` knows the input shape and a
mixed folder is an error naming two files that differ.

Every file is checked once before training, from its bytes and without decoding (a PNG's chunk
checksums and end chunk, a JPEG's end marker, a GIF's trailer, a BMP's declared size): an empty,
cut-short or damaged file is refused with its name rather than failing mid-epoch in a TensorFlow
graph error that names none. It is refused, not skipped, so the data trained on is the data in
the folder; remove or replace the file. A folder with a single class is refused as well (as for
`text:DIR`, by `folders.class_files`): a classifier with one class learns nothing.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from tfbench.data.folders import SPLIT_FILES_CODE, class_files, folder_lines, named_lines, split_lines
from tfbench.data.info import DataInfo
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Splits, check_split_name, holdout_indices, planned_sizes
from tfbench.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


class ImagesOptions(SourceOptions):
    """Image size and colour mode, and an optional test folder."""

    image_size: list[int] | None = Field(
        None, min_length=2, max_length=2, description="Resize every image to [height, width]."
    )
    color_mode: Literal["grayscale", "rgb", "rgba"] = Field("rgb", description="Channels to decode.")
    test_dir: str | None = Field(None, description="A second folder of the same classes: the 'test' split.")


OPTIONS = ImagesOptions
PATHS = ("target", "test_dir")  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None


def image_size(path: str) -> tuple[int, int] | None:
    """(height, width) from an image file's header, or None when the format is not recognised."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            width, height = struct.unpack(">II", head[16:24])
            return height, width
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return height, width
        if head[:2] == b"BM":
            width, height = struct.unpack("<ii", head[18:26])
            return abs(height), width
        if head[:2] == b"\xff\xd8":
            f.seek(2)
            while True:
                marker = f.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    return None
                while marker[1] == 0xFF:  # fill bytes
                    marker = marker[1:] + f.read(1)
                code = marker[1]
                if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
                    continue
                (length,) = struct.unpack(">H", f.read(2))
                if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    height, width = struct.unpack(">xHH", f.read(5))
                    return height, width
                f.seek(length - 2, 1)
    return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def damage(path: str) -> str | None:
    """Why an image file cannot be decoded, read from its bytes without decoding; None when whole.

    Returns:
        e.g. "is empty", "is cut short (no IEND chunk)", "is damaged (bad checksum in its IDAT
        chunk)", "is not a PNG, JPEG, GIF or BMP image".
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not data:
        return "is empty"
    if data.startswith(PNG_SIGNATURE):
        return _png_damage(data)
    if data[:2] == b"\xff\xd8":
        return None if b"\xff\xd9" in data[-4096:] else "is cut short (no JPEG end marker)"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return None if data.rstrip(b"\x00").endswith(b";") else "is cut short (no GIF trailer)"
    if data[:2] == b"BM" and len(data) >= 26:
        (declared,) = struct.unpack("<I", data[2:6])
        return None if len(data) >= declared else f"is cut short ({len(data)} of {declared} bytes)"
    return "is not a PNG, JPEG, GIF or BMP image"


def _png_damage(data: bytes) -> str | None:
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return f"is damaged (bad checksum in its {kind.decode('latin-1')} chunk)"
        if kind == b"IEND":
            return None
        pos = end
    return "is cut short (no IEND chunk)"


@lru_cache(maxsize=8)
def _scan(
    root: str, mtime: float, location: str
) -> tuple[list[str], list[str], list[int], tuple[tuple[int, int] | None, ...]]:
    classes, paths, labels = class_files(root, EXTENSIONS, location)
    where = f"{location} ({root})"
    damaged = [(p, why) for p in paths if (why := damage(p))]
    if damaged:
        more = f" (and {len(damaged) - 1} more damaged files)" if len(damaged) > 1 else ""
        raise UserError(f"{damaged[0][0]} {damaged[0][1]}{more}", where, "remove or replace it")
    sizes = tuple(image_size(p) for p in paths)
    return classes, paths, labels, sizes


def _folder(root: str, location: str):
    path = Path(root).expanduser()
    mtime = max((p.stat().st_mtime for p in path.iterdir()), default=0.0) if path.is_dir() else 0.0
    return _scan(root, mtime, location)


def _common_size(paths: list[str], sizes, location: str) -> tuple[int, int]:
    known = {s for s in sizes if s is not None}
    unreadable = [p for p, s in zip(paths, sizes) if s is None]
    if unreadable:
        raise UserError(
            f"cannot read the image size of {unreadable[0]}",
            location,
            "set data.options.image_size to decode and resize every image",
        )
    if len(known) > 1:
        first = sizes[0]
        other = next(i for i, s in enumerate(sizes) if s != first)
        raise UserError(
            f"images have different sizes: {paths[0]} is {first[0]}x{first[1]}, "
            f"{paths[other]} is {sizes[other][0]}x{sizes[other][1]}",
            location,
            "set data.options.image_size = [height, width] to resize them all",
        )
    return next(iter(known))


def _shape(spec, options: ImagesOptions) -> tuple[int, int, int]:
    channels = CHANNELS[options.color_mode]
    if options.image_size:
        height, width = options.image_size
        return (height, width, channels)
    _, paths, _, sizes = _folder(spec.target, "data.source")
    height, width = _common_size(paths, sizes, f"data.source ({spec.target})")
    if options.test_dir:
        _, tpaths, _, tsizes = _folder(options.test_dir, "data.options.test_dir")
        if _common_size(tpaths, tsizes, f"data.options.test_dir ({options.test_dir})") != (height, width):
            raise UserError(
                "test images differ in size from the training images",
                "data.options.test_dir",
                "set data.options.image_size to resize both",
            )
    return height, width, channels


def _named_sizes(spec, options: ImagesOptions) -> dict[str, int]:
    named = {"train": len(_folder(spec.target, "data.source")[1])}
    if options.test_dir:
        named["test"] = len(_folder(options.test_dir, "data.options.test_dir")[1])
    return named


def describe(spec, options: ImagesOptions, seed: int | None = 42) -> DataInfo:
    """Classes from the folder names, the common (or requested) image size, sizes after the split."""
    classes, paths, _, _ = _folder(spec.target, "data.source")
    shape = _shape(spec, options)
    if options.test_dir:
        test_classes = _folder(options.test_dir, "data.options.test_dir")[0]
        if test_classes != classes:
            raise UserError(f"the test folder's classes {test_classes} differ from {classes}", "data.options.test_dir")
    return DataInfo(
        source=spec.source,
        input_shape=shape,
        label_kind="binary" if len(classes) == 2 else "categorical",
        num_classes=len(classes),
        class_names=classes,
        sizes=planned_sizes(spec, _named_sizes(spec, options)),
        description=f"{len(paths)} images in {len(classes)} class folders under {spec.target}.",
        extra={"pixel_range": [0, 255]},
    )


def _decoder(shape: tuple[int, int, int], resize: bool):
    import tensorflow as tf

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=shape[2], expand_animations=False)
        if resize:
            image = tf.image.resize(image, shape[:2])
        else:
            image = tf.ensure_shape(image, shape)
        return tf.cast(image, tf.float32), label

    return decode


def _stream(paths: list[str], labels: list[int], shape, options: ImagesOptions):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.array(paths), np.array(labels, np.int32)))
    parallel = options.parallel_calls or tf.data.AUTOTUNE
    return ds.map(_decoder(shape, options.image_size is not None), num_parallel_calls=parallel, deterministic=True)


def load(spec, options: ImagesOptions, seed: int | None = 42) -> Splits:
    """Streams of decoded images; the validation fraction is a seeded split of the file list."""
    _, paths, labels, _ = _folder(spec.target, "data.source")
    shape = _shape(spec, options)
    named = {"train": (paths, labels)}
    if options.test_dir:
        _, tpaths, tlabels, _ = _folder(options.test_dir, "data.options.test_dir")
        named["test"] = (tpaths, tlabels)
    train = named["train"]
    validation = None
    if spec.validation:
        check_split_name(spec.validation, list(named), "data.validation")
        validation = named[spec.validation]
    elif spec.validation_split:
        train_idx, val_idx = holdout_indices(len(paths), spec.validation_split, seed)
        validation = ([paths[i] for i in val_idx], [labels[i] for i in val_idx])
        train = ([paths[i] for i in train_idx], [labels[i] for i in train_idx])
    test = None
    if spec.test:
        check_split_name(spec.test, list(named), "data.test")
        test = named[spec.test]
    sizes: dict[str, int | None] = {"train": len(train[0]), "validation": len(validation[0]) if validation else 0}
    if test:
        sizes["test"] = len(test[0])

    def stream(part):
        return _stream(part[0], part[1], shape, options) if part and part[0] else None

    return Splits(stream(train), stream(validation), stream(test), sizes)


# How the dataset picker offers this kind, and the loader `tfbench code` writes for it.
PICKER = Picker("images", "images:DIR")


def loader_code(exp: Any, info: DataInfo) -> LoaderCode:
    """`load_splits()` for `tfbench code`: the run's files (listed and held out as here), decoded as here."""

    data = exp.data
    options = parse_options(ImagesOptions, data.options)
    if options.image_size:
        fit = f"    image = tf.image.resize(image, {list(options.image_size)!r})"
    else:
        fit = f"    image = tf.ensure_shape(image, {tuple(info.input_shape)!r})  # every image has this size"
    split_files = SPLIT_FILES_CODE if data.validation_split and not data.validation else ""
    text = f'''import pathlib

{folder_lines(data, options, EXTENSIONS)}{split_files}


def decode(path, label):
    """One image file as float32 pixels 0-255 ({options.color_mode}), with its class id."""
    image = tf.io.decode_image(tf.io.read_file(path), channels={CHANNELS[options.color_mode]}, expand_animations=False)
{fit}
    return tf.cast(image, tf.float32), label


def images(files):
    """An unbatched dataset of (image, class id), decoded in parallel, in the files' order."""
    if files is None:
        return None
    paths, labels = zip(*files)
    ds = tf.data.Dataset.from_tensor_slices((np.array(paths), np.array(labels, np.int32)))
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_splits():
    """Unbatched (x, y) datasets for training, validation and test, read from the class folders."""
{chr(10).join(named_lines(options))}
{chr(10).join(split_lines(data))}
    return images(train), images(validation), images(test)'''
    return LoaderCode(text, streamed=True)


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import images
    from tfbench.data.registry import DataSource

    _: DataSource = images
