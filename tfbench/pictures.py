"""Image arrays drawn in a terminal with half blocks — without a UI and without TensorFlow.

One character cell shows two pixels stacked (`▀`: the top pixel is its colour, the bottom one its
background), so a 28×28 drawing takes 28 columns and 14 rows. Three palettes cover every terminal:
`truecolor` (any RGB; rich turns it into 256 colours where that is all there is), `standard` (the 16
ANSI colours, each pixel its nearest, for 16-colour terminals) and `mono` (no colour at all, as
NO_COLOR asks: shade characters ` ░▒▓█` carry the grey level of each cell). The workbench's
augmentation preview and Explain view, and `tfbench predict --explain`, all draw through here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from rich.color import Color, ColorSystem
from rich.style import Style
from rich.text import Text

Palette = Literal["truecolor", "standard", "mono"]
SHADES = " ░▒▓█"
PALETTES: tuple[Palette, ...] = ("truecolor", "standard", "mono")


def palette_for(color_system: str | None, no_color: bool = False) -> Palette:
    """The palette for a console's colour system (`rich.console.Console.color_system`) and NO_COLOR."""
    if no_color or color_system is None:
        return "mono"
    return "standard" if color_system in ("standard", "windows") else "truecolor"


def to_rgb(image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """An image (H×W, H×W×1, H×W×3 or H×W×4 of any numbers) as H×W×3 uint8 for drawing.

    Args:
        image: the pixel values.
        value_range: the values that become black and white; None: the image's own least and most.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3:
        raise ValueError(f"an image has 2 or 3 axes, not {pixels.ndim}")
    channels = pixels.shape[-1]
    if channels == 4:
        pixels = pixels[..., :3]
    elif channels != 3:
        pixels = np.repeat(pixels.mean(axis=-1, keepdims=True), 3, axis=-1)
    finite = pixels[np.isfinite(pixels)]
    if value_range is None:
        value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    low, high = value_range
    span = (high - low) or 1.0
    scaled = np.nan_to_num((pixels - low) / span, nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jet(values: np.ndarray) -> np.ndarray:
    """The jet colour map (dark blue → cyan → yellow → dark red) of values in [0, 1], as uint8 RGB."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # red, green, blue peak where jet has them
    rgb = np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-pixel resampling to height × width (pictures this small need nothing finer)."""
    h, w = rgb.shape[:2]
    rows = np.minimum((np.arange(height) + 0.5) * h / max(1, height), h - 1).astype(int)
    cols = np.minimum((np.arange(width) + 0.5) * w / max(1, width), w - 1).astype(int)
    return rgb[rows][:, cols]


def fit(shape: tuple[int, ...], columns: int, rows: int, most: float = 4.0) -> tuple[int, int]:
    """The pixel size (height, width) an image of `shape` is drawn at within columns × rows cells.

    The aspect ratio is kept (a cell is one pixel wide and two tall), and an image is enlarged at most
    `most` times: an 8×8 digit may grow, a photo only shrinks.
    """
    h, w = int(shape[0]), int(shape[1])
    scale = min(most, columns / max(1, w), 2 * rows / max(1, h))
    return max(1, int(h * scale)), max(1, int(w * scale))


@lru_cache(maxsize=4096)
def _style(top: tuple[int, int, int], bottom: tuple[int, int, int], standard: bool) -> Style:
    up, down = Color.from_rgb(*top), Color.from_rgb(*bottom)
    if standard:
        up, down = up.downgrade(ColorSystem.STANDARD), down.downgrade(ColorSystem.STANDARD)
    return Style(color=up, bgcolor=down)


def half_blocks(rgb: np.ndarray, palette: Palette = "truecolor") -> Text:
    """Draw an H×W×3 uint8 image, one line per two pixel rows.

    Args:
        rgb: what `to_rgb` gives (draw it at the size it should take: see `fit` and `resize`).
        palette: truecolor, standard (16 colours) or mono (shade characters, no colour).
    """
    pixels = np.asarray(rgb, dtype=np.uint8)
    h, w = pixels.shape[:2]
    if h % 2:
        pixels = np.concatenate([pixels, np.zeros((1, w, 3), np.uint8)])
    text = Text(no_wrap=True, overflow="crop")
    grey = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    for top in range(0, h, 2):
        if top:
            text.append("\n")
        if palette == "mono":
            levels = (grey[top] + grey[top + 1]) / 2.0
            text.append("".join(SHADES[min(4, int(level * 4.999))] for level in levels))
            continue
        upper, lower = pixels[top], pixels[top + 1]
        for x in range(w):
            style = _style(tuple(int(v) for v in upper[x]), tuple(int(v) for v in lower[x]), palette == "standard")
            text.append("▀", style=style)
    return text


def picture(
    image: np.ndarray,
    columns: int,
    rows: int,
    palette: Palette = "truecolor",
    value_range: tuple[float, float] | None = None,
    most: float = 4.0,
) -> Text:
    """An image of any values drawn as large as `columns` × `rows` cells allow (see `fit`)."""
    array = np.asarray(image)
    drawn = array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] == 3
    rgb = array if drawn else to_rgb(array, value_range)
    height, width = fit(rgb.shape, columns, rows, most)
    return half_blocks(resize(rgb, height, width), palette)
