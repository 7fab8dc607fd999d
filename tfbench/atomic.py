"""Atomic file writes: a reader (or a crash) never sees half a file.

Every file tfbench leaves behind — presets, experiment.toml, history.csv, reports — is written to a
temporary file in the same folder and renamed over the target, which POSIX makes atomic.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def replacing(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside `path` to write; renamed over `path` when the block ends, removed if it fails.

    `suffix` ends the temporary name, for writers that insist on an ending (Keras: `.weights.h5`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write `data` to `path` atomically, creating parent folders.

    `durable=False` skips the fsync: the rename still means a crashed process never leaves half a
    file, only a power cut can lose the newest version. For files rewritten often (history.csv
    after every epoch), where an fsync would cost the training loop milliseconds each time.
    """
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    return Path(path)


def copy_file(source: str | Path, path: str | Path) -> Path:
    """Copy `source` to `path` atomically, without holding it in memory (no fsync: see `write_bytes`)."""
    with replacing(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)


def write_text(path: str | Path, text: str, durable: bool = True) -> Path:
    """Write UTF-8 `text` to `path` atomically (see `write_bytes`)."""
    return write_bytes(path, text.encode("utf-8"), durable)


def write_json(path: str | Path, value: Any) -> Path:
    """Write `value` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
