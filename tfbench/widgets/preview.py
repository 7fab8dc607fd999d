"""Data previews drawn in the terminal: images in half-block characters, class balance bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.text import Text

SHADES = " ░▒▓█"


def _grid(sample: Any) -> list[list[float]]:
    """A sample as rows of grey levels 0..1 (colour channels averaged)."""
    rows = sample.tolist() if hasattr(sample, "tolist") else sample
    grid: list[list[float]] = []
    for row in rows:
        line = []
        for px in row:
            if isinstance(px, (list, tuple)):
                px = sum(px) / max(1, len(px))
            line.append(float(px))
        grid.append(line)
    flat = [v for line in grid for v in line]
    if not flat:
        return []
    low, high = min(flat), max(flat)
    span = (high - low) or 1.0
    return [[(v - low) / span for v in line] for line in grid]


def half_block_image(sample: Any, width: int = 14, colour: bool = True) -> Text:
    """Draw a 2-D (or HxWxC) sample with `▀`: each character shows two pixel rows.

    Args:
        sample: nested lists or an array of pixel values.
        width: the most characters across; larger images are sampled down.
        colour: grey-level colours; without colour, shade characters stand in.

    Returns:
        Rich text, one line per two pixel rows.
    """
    grid = _grid(sample)
    if not grid:
        return Text("")
    h, w = len(grid), len(grid[0])
    step = max(1, -(-w // width))
    grid = [line[::step] for line in grid[::step]]
    h, w = len(grid), len(grid[0])
    text = Text()
    for top in range(0, h, 2):
        for x in range(w):
            up = grid[top][x]
            down = grid[top + 1][x] if top + 1 < h else 0.0
            if colour:
                a, b = int(up * 255), int(down * 255)
                text.append("▀", style=f"rgb({a},{a},{a}) on rgb({b},{b},{b})")
            else:
                text.append(SHADES[min(4, int((up + down) / 2 * 4.999))])
        text.append("\n")
    text.rstrip()
    return text


def balance_bars(counts: dict[str, int] | Sequence[tuple[str, int]], width: int = 30) -> Group:
    """A horizontal bar per class, scaled to the largest, with its count.

    Args:
        counts: class name → samples.
        width: characters for the longest bar.
    """
    items = list(counts.items()) if isinstance(counts, dict) else list(counts)
    if not items:
        return Group(Text("no labels to count"))
    label_width = min(12, max(len(str(name)) for name, _ in items))
    top = max(int(c) for _, c in items) or 1
    lines = []
    for name, count in items:
        filled = round(int(count) / top * width)
        line = Text(f"{str(name)[:label_width]:>{label_width}} ")
        line.append("█" * filled, style="green")
        line.append(f" {int(count):,}")
        lines.append(line)
    return Group(*lines)
