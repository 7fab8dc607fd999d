"""Folders with one sub-folder per class — the layout `images:DIR` and `text:DIR` share.

No TensorFlow. Class ids follow the sorted sub-folder names (Keras' `*_dataset_from_directory`
rule), so a model trained here labels classes the way Keras would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


LIST_FILES_CODE = '''

def list_files(folder):
    """The class names and (path, class id) of every file: classes are the sorted sub-folders, each
    one's files sorted (Keras' `*_dataset_from_directory` order, and tfbench's)."""
    root = pathlib.Path(folder)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = []
    for index, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        files += [(str(p), index) for p in found]
    return classes, files'''
"""`list_files(folder)` as `tfbench code` writes it: the files `class_files` lists, in its order."""

SPLIT_FILES_CODE = '''

def split_files(files):
    """Hold out a seeded VALIDATION_SPLIT of the files, drawn from every class: the files tfbench holds out.

    (Keras' `validation_split` with shuffle=False would keep the last files of the class-sorted list:
    the last class only.)
    """
    order = np.random.default_rng(SEED).permutation(len(files))
    k = min(len(files) - 1, max(1, int(round(len(files) * VALIDATION_SPLIT))))
    return [files[i] for i in np.sort(order[k:])], [files[i] for i in np.sort(order[:k])]'''
"""`split_files(files)` as `tfbench code` writes it: `splits.holdout_indices` over the listed files."""


def folder_lines(data: Any, options: Any, extensions: tuple[str, ...]) -> str:
    """The script's FOLDER, TEST_FOLDER and EXTENSIONS settings, then `list_files`."""
    lines = [f"FOLDER = {str(Path(data.target).expanduser().resolve())!r}  # one sub-folder per class"]
    test_dir = getattr(options, "test_dir", None)
    if test_dir:
        folder = str(Path(test_dir).expanduser().resolve())
        lines.append(f"TEST_FOLDER = {folder!r}  # the 'test' split: the same classes")
    lines.append(f"EXTENSIONS = {tuple(e.lower() for e in extensions)!r}")
    return "\n".join(lines) + LIST_FILES_CODE


def named_lines(options: Any) -> list[str]:
    """`named = {"train": files, "test": files}`: the folders' listed files, by split name."""
    lines = ['    named = {"train": list_files(FOLDER)[1]}']
    if getattr(options, "test_dir", None):
        lines.append('    named["test"] = list_files(TEST_FOLDER)[1]')
    return lines


def split_lines(data: Any) -> list[str]:
    """`train, validation = …` and `test = …` from `named`, as `splits.split_arrays` chooses them."""
    if data.validation:
        lines = [f'    train, validation = named["train"], named[{data.validation!r}]']
    elif data.validation_split:
        lines = ['    train, validation = split_files(named["train"])']
    else:
        lines = ['    train, validation = named["train"], None']
    lines.append(f"    test = named[{data.test!r}]" if data.test else "    test = None")
    return lines
