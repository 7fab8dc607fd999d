"""A `.keras` file looked at before Keras opens it: is it a whole archive of a sane size?

Without a UI and without TensorFlow. A `.keras` model is a zip archive (`config.json`,
`metadata.json`, `model.weights.h5`) whose members Keras stores uncompressed. Keras reports a cut
or foreign file as "File not found", and it reads members into memory or extracts them to disk
trusting the sizes they declare (it refuses only members over 4 GiB), so a 1.5 MB file declaring
gigabytes is opened. Here a file is refused, with what is wrong, when it has no zip directory (cut
short, or not an archive) or when what its members declare is out of all proportion to the bytes
stored: nothing is extracted or decompressed to find out.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tfbench.errors import UserError
from tfbench.figures import format_bytes

MAX_EXPANSION = 100
"""Members Keras writes are stored (1:1); DEFLATE reaches ~1,000:1 only on degenerate data."""
FLOOR_BYTES = 64 << 20
"""Below this, a member or archive may expand as much as it likes: small enough to read safely."""


def check_archive(path: str | Path, location: str | None = None) -> None:
    """Refuse a `.keras` file that is not a whole zip archive, or whose declared size is absurd.

    Args:
        path: the file.
        location: where the error points (the file itself by default, or the preset field naming it).

    Raises:
        UserError: the file is missing, cut short or not an archive, or a member (or the whole)
            declares more than `MAX_EXPANSION` times what it stores and more than `FLOOR_BYTES`.
    """
    path = Path(path)
    where = location or str(path)
    if not path.is_file():
        raise UserError(f"no such model file: {path}" if location else "no such model file", where)
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path.name} is not a whole .keras archive: it is cut short, damaged or another kind of file "
            f"({format_bytes(path.stat().st_size)}, no zip directory at its end)",
            where,
            "copy or save it again",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{path.name} is a damaged .keras archive: {exc}", where, "copy or save it again") from None
    stored = path.stat().st_size
    for info in members:
        if info.file_size > max(FLOOR_BYTES, MAX_EXPANSION * info.compress_size):
            raise _bomb(path, f"its member {info.filename!r} declares", info.file_size, info.compress_size, where)
    declared = sum(info.file_size for info in members)
    if declared > max(FLOOR_BYTES, MAX_EXPANSION * stored):
        raise _bomb(path, "its members declare", declared, stored, where)


def _bomb(path: Path, what: str, declared: int, stored: int, where: str) -> UserError:
    return UserError(
        f"{path.name} is refused: {what} {format_bytes(declared)} from {format_bytes(stored)} stored, "
        f"more than {MAX_EXPANSION}x — not a model Keras saved, and reading it would take that much memory or disk",
        where,
        "use a .keras file saved by keras (model.save), from a source you trust",
    )
