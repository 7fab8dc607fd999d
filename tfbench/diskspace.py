"""Running out of disk space, recognised wherever it surfaces — without TensorFlow.

A full disk (or a full quota) is not the fault of what was being written: a run or a study that
meets one stops, keeps what it had, and says to free space and continue. It shows up as an
`OSError` somewhere down a chain of errors, or, once a run has ended, only in the reason the run
wrote down.
"""

from __future__ import annotations

import errno
import os

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# What a run's reason says when a write failed for want of space: the run's own wording, or the
# operating system's message that it quotes.
FULL_WORDS = ("the disk is full", *(os.strerror(code) for code in FULL_ERRNOS), "errno = 28")


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, is "no space left" (or over a disk quota)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return True
        error = error.__cause__ or error.__context__
    return False


def says_disk_full(reason: str) -> bool:
    """Whether a run's written reason for failing is a full disk (it quotes the error, not the error)."""
    lowered = reason.lower()
    return any(word.lower() in lowered for word in FULL_WORDS)
