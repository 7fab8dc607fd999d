"""A study's journal file: Optuna's journal backend, kept whole through a full disk, a kill in the
middle of a write and a hand-cut file — without TensorFlow.

Optuna's `JournalFileBackend` appends one JSON line per operation under a lock file. A write the
disk could not hold, a process killed while writing, or a file cut short leaves the last line
without its newline; Optuna reads past such a line, but its next append lands on it, and from then
on every reader of the study fails. `StudyJournal` keeps the file whole instead: a write that fails
is cut back to where it began, and a cut last record found before a write is removed first (it
never was a whole operation, so no reader has applied it). Anything else that is not a journal
record is never cut away: it is reported with its line, and how much of the file before it is
intact, as a `JournalDamaged` error.

Optuna's lock file (`PATH.lock`) is kept, so processes running plain Optuna on the same file stay
excluded while either writes.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from tfbench.diskspace import disk_full
from tfbench.errors import UserError

# How every record Optuna writes begins (`{"op_code": N, "worker_id": …}` without spaces): a cut
# last line that is a beginning of this, or begins with it, is a cut record and may be removed.
RECORD_START = b'{"op_code":'
OP_CODES = range(0, 11)  # optuna.storages.journal's JournalOperation
TAIL_CHUNK = 64 * 1024


class JournalDamaged(UserError):
    """A journal holds something that is not a journal record (garbage, bytes overwritten, not a journal)."""


class StudyJournal(JournalFileBackend):
    """Optuna's journal file backend that never appends to a cut line and names the damage it meets.

    Args:
        file_path: the journal file (created empty if missing).
        location: how error messages name the file (`--storage data.csv`, a study's journal path).
    """

    def __init__(self, file_path: str, location: str | None = None):
        self.file_lock = JournalFileSymlinkLock(file_path)  # Optuna's own default lock
        super().__init__(file_path, lock_obj=self.file_lock)
        self.path = file_path
        self.location = location or file_path
        fd = os.open(file_path, os.O_RDONLY)
        try:
            self._whole_end(fd)
        finally:
            os.close(fd)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        """Optuna's reading, with a damaged line turned into a `JournalDamaged` that says where."""
        try:
            for log in super().read_logs(log_number_from):
                if not is_record(log):
                    raise ValueError("not a journal record")
                yield log
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, Optuna's "Invalid log format."
            raise self.damage() from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append `logs` as whole lines: a cut last record is removed first, a failed write cut back."""
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        try:
            self.file_lock.acquire()
            try:
                self._append(data)
            finally:
                self.file_lock.release()
        except RuntimeError as exc:  # the lock could not be released: the disk filled meanwhile
            if disk_full(exc):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path) from exc
            raise

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_RDWR)
        try:
            end = self._whole_end(fd)
            if end < os.fstat(fd).st_size:
                os.ftruncate(fd, end)  # a cut record goes: no reader ever applied it
            written = 0
            try:
                while written < len(data):
                    written += os.pwrite(fd, data[written:], end + written)
            except OSError:
                os.ftruncate(fd, end)  # never leave half a record for the next writer to append to
                raise
            os.fsync(fd)
        finally:
            os.close(fd)

    def _whole_end(self, fd: int) -> int:
        """Where the last whole line ends; a cut last line must be a cut record (else `JournalDamaged`)."""
        size = os.fstat(fd).st_size
        start = max(0, size - TAIL_CHUNK)
        while True:
            chunk = os.pread(fd, size - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0 or start == 0:
                break
            start = max(0, start - TAIL_CHUNK)
        end = start + newline + 1
        tail = chunk[newline + 1 :]
        if tail and not (tail.startswith(RECORD_START) or RECORD_START.startswith(tail)):
            raise self.damage()
        return end

    def damage(self) -> JournalDamaged:
        """The first damaged line of the file, as an error that says what to do."""
        line, intact = first_damaged_line(Path(self.path))
        where = f"{self.location}: line {line}"
        if line == 1:
            return JournalDamaged(
                "not an Optuna journal (its first line is not a journal record)",
                where,
                "name a journal file, a new file, or a database URL such as sqlite:///study.db",
            )
        return JournalDamaged(
            "the study's journal is damaged here (not a journal record)",
            where,
            f"the {line - 1} records before it are intact: `truncate -s {intact} {self.path}` keeps them "
            "and drops the rest",
        )


def is_record(log: Any) -> bool:
    """Whether a decoded line has the shape of an Optuna journal operation."""
    return (
        isinstance(log, dict)
        and isinstance(log.get("op_code"), int)
        and not isinstance(log.get("op_code"), bool)
        and log["op_code"] in OP_CODES
        and isinstance(log.get("worker_id"), str)
    )


def first_damaged_line(path: Path) -> tuple[int, int]:
    """(1-based number, byte offset) of the first line that is not a whole journal record.

    A cut record at the very end is not damage (the next append removes it); when nothing else is
    wrong, the line after the last is named.
    """
    offset, number = 0, 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):  # noqa: B007 (number is used after the loop)
            if not line.endswith(b"\n"):
                if line.startswith(RECORD_START) or RECORD_START.startswith(line):
                    return number + 1, offset + len(line)
                return number, offset
            try:
                good = is_record(json.loads(line))
            except ValueError:
                good = False
            if not good:
                return number, offset
            offset += len(line)
    return number + 1, offset
