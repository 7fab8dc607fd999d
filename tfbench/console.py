"""The rich Console a command prints its tables with, at a width that makes sense.

Without a UI and without TensorFlow. Rich takes `COLUMNS` at its word, so `COLUMNS=0` (what some
shells and CI runners export when they do not know) rendered every table as nothing, and output
piped into a file or `grep` was cut to 80 columns. Here a terminal's width is `COLUMNS` when that
is a usable number, else the terminal's own size; a pipe or a file gets tables at their natural
width, never cut.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

MIN_COLUMNS = 20
"""Narrower than this, `COLUMNS` or a terminal's reported size is taken for a mistake."""
DEFAULT_COLUMNS = 80
PIPED_WIDTH = 4096
"""The width of output that is not a terminal: wide enough that no table is ever cut."""


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` writes to a terminal (not a pipe, a file, a closed or a fake stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def terminal_columns(stream: TextIO) -> int | None:
    """How wide the terminal `stream` writes to is, in columns; None when it is not a terminal."""
    if not is_terminal(stream):
        return None
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) >= MIN_COLUMNS:
        return int(columns)
    try:
        size = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        size = 0
    return size if size >= MIN_COLUMNS else DEFAULT_COLUMNS


def output_console(stream: TextIO | None = None, highlight: bool = False) -> Console:
    """A rich Console for a command's output on `stream` (stdout by default), sized as the module says."""
    from rich.console import Console

    stream = stream if stream is not None else sys.stdout
    return Console(file=stream, width=terminal_columns(stream) or PIPED_WIDTH, highlight=highlight)
