"""Folders with one sub-folder per class — the layout `images:DIR` and `text:DIR` share.

No TensorFlow. Class ids follow the sorted sub-folder names (Keras' `*_dataset_from_directory`
rule), so a model trained here labels classes the way Keras would.
"""

from __future__ import annotations

from pathlib import Path

from tfbench.data.options import parse_options
from tfbench.data.registry import LoaderCode
from tfbench.errors import UserError


def class_files(
    root_text: str, extensions: tuple[str, ...], location: str = "data.source"
) -> tuple[list[str], list[str], list[int]]:
    """The class names and the files of each class under `root_text`.

    Args:
        root_text: the folder (one sub-folder per class).
        extensions: lower-case suffixes to include (`.png`, `.txt`, …).
        location: where to place an error.

    Returns:
        (class_names, file paths, class id per file), files in a stable sorted order.

    Raises:
        UserError: a missing folder, a folder with fewer than two class sub-folders, or no
            matching files.
    """
    root = Path(root_text).expanduser()
    where = f"{location} ({root_text})"
    if not root.exists():
        raise UserError("no such folder", where)
    if not root.is_dir():
        raise UserError("is a file; expected a folder with one sub-folder per class", where)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError("has no class sub-folders; put each class's files in a folder named after it", where)
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
        paths.extend(str(p) for p in found)
        labels.extend([index] * len(found))
    if not paths:
        raise UserError(f"holds no {'/'.join(extensions)} files in its class folders", where)
    empty = [name for index, name in enumerate(classes) if index not in set(labels)]
    if empty:
        raise UserError(f"class folder {empty[0]!r} holds no {'/'.join(extensions)} files", where)
    if len(classes) < 2:  # a classifier with one class learns nothing: its loss is 0 from the first batch
        raise UserError(
            f"has one class folder ({classes[0]!r}); a classifier needs at least two",
            where,
            "put each class's files in a folder of its own, side by side",
        )
    return classes, paths, labels


_VECTORIZE = '''

vectorizer = keras.layers.TextVectorization(
    max_tokens={max_tokens!r}, output_sequence_length={sequence_length!r}
)


def vectorize(train, *others):
    """Learn the vocabulary on the training texts and turn every text into token ids."""
    vectorizer.adapt(train.map(lambda x, y: x))
    return [None if ds is None else ds.map(lambda x, y: (vectorizer(x), y)) for ds in (train, *others)]'''


def folder_loader_code(exp, info) -> LoaderCode:
    """`load_splits()` for a folder of class sub-folders (images or text), as `tfbench code` writes it."""
    data = exp.data
    kind = data.kind
    from tfbench.data import registry

    options = parse_options(registry.source_module(kind).OPTIONS, data.options)
    folder = str(Path(data.target).expanduser().resolve())
    split_args = ""
    if data.validation_split:
        split_args = ', validation_split=VALIDATION_SPLIT, subset="both", seed=SEED'
    if kind == "images":
        size = getattr(options, "image_size", None) or list(info.input_shape[:2])
        call = (
            f'keras.utils.image_dataset_from_directory(\n        path, labels="inferred", '
            f'label_mode="int", color_mode={options.color_mode!r}, image_size={tuple(size)!r},\n'
            f"        batch_size=None, shuffle=False{{split}})"
        )
        vectorize = ""
    else:
        call = (
            'keras.utils.text_dataset_from_directory(\n        path, labels="inferred", '
            'label_mode="int", batch_size=None, shuffle=False{split})'
        )
        vectorize = _VECTORIZE.format(max_tokens=options.max_tokens, sequence_length=options.sequence_length)
    test_dir = getattr(options, "test_dir", None)
    test_line = (
        f"    test = {call.format(split='')}".replace("path,", f"{str(Path(test_dir).expanduser().resolve())!r},")
        if test_dir
        else "    test = None"
    )
    if data.validation_split:
        main = (
            "    # Keras holds out the last VALIDATION_SPLIT of the sorted files; tfbench a seeded random pick.\n"
            f"    train, validation = {call.format(split=split_args)}"
        )
    else:
        main = f"    train, validation = {call.format(split='')}, None"
    finish = "    return vectorize(train, validation, test)" if kind == "text" else "    return train, validation, test"
    return LoaderCode(
        f'''FOLDER = {folder!r}  # one sub-folder per class{vectorize}


def load_splits():
    """Unbatched (x, y) datasets for training, validation and test, read from the class folders."""
    path = FOLDER
{main}
{test_line}
{finish}''',
        streamed=True,
    )
