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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def log_path() -> Path:
    """The file native output is sent to: one per user, in the temp folder, overwritten each time."""
    user = os.environ.get("USER") or str(os.getuid())
    return Path(tempfile.gettempdir()) / f"tfbench-native-{user}.log"


@contextmanager
def native_stderr_to(path: str | Path | None = None) -> Iterator[Path]:
    """Point file descriptor 2 at `path` (default `log_path()`) for the duration of the block.

    Yields:
        The path the output went to, so a caller can show it after a crash.
    """
    path = Path(path) if path is not None else log_path()
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.dup2(target, 2)
        yield path
    finally:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


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
