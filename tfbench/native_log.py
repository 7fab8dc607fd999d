"""Where TensorFlow's native log lines go: never onto the user's terminal.

TensorFlow's C++ core and absl write start-up chatter ("oneDNN custom operations are on", "Could
not find cuda drivers", "All log messages before absl::InitializeLog()…") straight to file
descriptor 2, below Python, and TensorFlow 2.21 prints several of them whatever
`TF_CPP_MIN_LOG_LEVEL` says. In the TUI those bytes land in the middle of the screen; in a headless
run they bury the progress. So the descriptor itself is pointed at a log file while TensorFlow
starts (headless) or while the TUI owns the terminal, and put back afterwards. Python-level errors
are unaffected: they are raised as usual and printed once the descriptor is restored.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

_kept_log: Path | None = None
"""The log fd 2 points at while `terminal_kept_from_native_log` is active, else None."""


def log_path() -> Path:
    """The file native output is sent to: one per user, in the temp folder, overwritten each time
    (appended to while open, so a runner process and the TUI writing at once never overwrite each other)."""
    user = os.environ.get("USER") or str(os.getuid())
    return Path(tempfile.gettempdir()) / f"tfbench-native-{user}.log"


def _flush_stderr() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


def _fd2_draws_a_ui() -> bool:
    """Whether fd 2 is a Textual screen, which must not be taken away mid-frame.

    Textual draws on fd 2 unless `terminal_kept_from_native_log` gave it a descriptor of its own;
    checked without importing Textual.
    """
    return "textual" in sys.modules and _kept_log is None


@contextmanager
def native_stderr_to(path: str | Path | None = None) -> Iterator[Path]:
    """Point file descriptor 2 at `path` (default `log_path()`) for the duration of the block.

    Inside `terminal_kept_from_native_log` fd 2 already goes to the log: it is left alone there,
    as re-opening the log would truncate it and a swap in a worker thread would race the others.
    It is left alone as well where it is a Textual screen: better a stray line than a lost frame.

    Yields:
        The log's path, so a caller can show it after a crash.
    """
    if _kept_log is not None and (path is None or Path(path) == _kept_log):
        yield _kept_log
        return
    path = Path(path) if path is not None else log_path()
    if _fd2_draws_a_ui():
        yield path
        return
    _flush_stderr()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 2)
        yield path
    finally:
        _flush_stderr()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Catch what is written to fd 2 during the block, to show it if the work fails.

    The TFLite converter and the LiteRT runtime write from C++ straight to fd 2, past Python's
    `sys.stderr`. The captured text is appended to the yielded list when the block ends. Where
    fd 2 is a Textual screen (a UI not started inside `terminal_kept_from_native_log`) it is left
    alone and the list stays empty: swallowing it would swallow the picture.
    """
    out: list[str] = []
    if _fd2_draws_a_ui():
        yield out
        return
    try:
        _flush_stderr()
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (embedded): nothing to silence
        yield out
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))


@contextmanager
def terminal_kept_from_native_log(path: str | Path | None = None) -> Iterator[TextIO]:
    """Let only Python draw on the terminal for the block; fd 2 itself goes to the log.

    Textual's Linux driver writes the screen to `sys.__stderr__`, which is fd 2 — where native
    code (TensorFlow imported in a UI worker) writes too. So the terminal is moved to a duplicate
    descriptor that `sys.__stderr__` and `sys.stderr` wrap for the block, and fd 2 is pointed at
    `path` (default `log_path()`). Everything is put back on exit, exception or not.

    Yields:
        The text stream on the terminal (also `sys.__stderr__` inside the block).
    """
    global _kept_log
    path = Path(path) if path is not None else log_path()
    _flush_stderr()
    old_stderr, old_dunder, old_kept = sys.stderr, sys.__stderr__, _kept_log
    like = old_dunder if old_dunder is not None else old_stderr
    saved = os.dup(2)  # kept apart from `screen`, which Textual could close
    screen = os.fdopen(
        os.dup(2),
        "w",
        encoding=getattr(like, "encoding", None) or "utf-8",
        errors=getattr(like, "errors", None) or "backslashreplace",
        buffering=1,
    )
    try:
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    except OSError:
        screen.close()
        os.close(saved)
        raise
    try:
        os.dup2(target, 2)
    finally:
        os.close(target)
    sys.stderr = sys.__stderr__ = screen  # type: ignore[misc]  # native code and late imports read __stderr__
    _kept_log = path
    try:
        yield screen
    finally:
        _kept_log = old_kept
        sys.stderr, sys.__stderr__ = old_stderr, old_dunder  # type: ignore[misc]  # put back as found
        try:
            screen.flush()
        except (ValueError, OSError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        try:
            screen.close()
        except (ValueError, OSError):
            pass


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its native start-up lines kept off the terminal.

    Call it once, early, in a command that is about to train or convert; later imports are free.
    Listing the GPUs here also gets CUDA's platform probe ("failed call to cuInit" on a machine
    without one) over with, while it still leaves device configuration open (logical CPU devices
    for a mirrored strategy can be set afterwards). A failed import still raises as usual.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_to():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
