"""How numbers, sizes and durations are written, for every view (the TUI, `tfbench run`, `runs`).

One home, so a value reads the same in the live view, the run table and a log file. Plain
Python: no TensorFlow, no Textual.
"""

from __future__ import annotations

import math
from typing import Any


def format_number(value: float | None) -> str:
    """A metric value in four significant digits; "nan" and "—" where there is none."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def format_metric(value: Any) -> str:
    """A metric value in a few characters for a progress line (`0.1234`, `1.2e-05`, `nan`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:
        return "nan"
    if number == 0 or 1e-3 <= abs(number) < 1e4:
        return f"{number:.4f}"
    return f"{number:.3g}"


def format_duration(seconds: float | None) -> str:
    """Seconds as `1h02m`, `3m05s` or `12s` (a run's length in a table)."""
    if seconds is None:
        return "—"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_clock(seconds: float | None) -> str:
    """Seconds as `h:mm:ss` or `m:ss` (elapsed time, ETA); a dash when unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_megabytes(value: Any) -> str:
    """A memory size given in MB as `512M` or `1.5G`; `?` when it is not a number."""
    try:
        mb = float(value)
    except (TypeError, ValueError):
        return "?"
    return f"{mb / 1024:.1f}G" if mb >= 1024 else f"{mb:.0f}M"


def format_latency(ms: float | None) -> str:
    """`0.0038` → `3.8 µs`; None → `—`."""
    if ms is None:
        return "—"
    if ms < 0.1:
        return f"{ms * 1000:.1f} µs"
    return f"{ms:.2f} ms"


def format_bytes(size: int) -> str:
    """`26740` → `26.1 KiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover
