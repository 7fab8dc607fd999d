"""Folders with one sub-folder per class — the layout `images:DIR` and `text:DIR` share.

No TensorFlow. Class ids follow the sorted sub-folder names (Keras' `*_dataset_from_directory`
rule), so a model trained here labels classes the way Keras would.
"""

from __future__ import annotations

from pathlib import Path

from tfbench.errors import UserError


def class_files(root_text: str, extensions: tuple[str, ...], location: str = "data.source") -> tuple[list[str], list[str], list[int]]:
    """The class names and the files of each class under `root_text`.

    Args:
        root_text: the folder (one sub-folder per class).
        extensions: lower-case suffixes to include (`.png`, `.txt`, …).
        location: where to place an error.

    Returns:
        (class_names, file paths, class id per file), files in a stable sorted order.

    Raises:
        UserError: a missing folder, a folder without class sub-folders, or no matching files.
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
        found = sorted(
            p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in extensions
        )
        paths.extend(str(p) for p in found)
        labels.extend([index] * len(found))
    if not paths:
        raise UserError(f"holds no {'/'.join(extensions)} files in its class folders", where)
    empty = [name for index, name in enumerate(classes) if index not in set(labels)]
    if empty:
        raise UserError(f"class folder {empty[0]!r} holds no {'/'.join(extensions)} files", where)
    return classes, paths, labels
