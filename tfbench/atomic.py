"""Atomic file writes: a reader (or a crash) never sees half a file.

Every file tfbench leaves behind — presets, experiment.toml, history.csv, reports — is written to a
temporary file in the same folder and renamed over the target, which POSIX makes atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write `data` to `path` atomically, creating parent folders.

    `durable=False` skips the fsync: the rename still means a crashed process never leaves half a
    file, only a power cut can lose the newest version. For files rewritten often (history.csv
    after every epoch), where an fsync would cost the training loop milliseconds each time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text(path: str | Path, text: str, durable: bool = True) -> Path:
    """Write UTF-8 `text` to `path` atomically (see `write_bytes`)."""
    return write_bytes(path, text.encode("utf-8"), durable)


def write_json(path: str | Path, value: Any) -> Path:
    """Write `value` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
