"""Pictures side by side, each with a caption, drawn as large as the widget's space allows.

Half blocks everywhere (`tfbench.pictures`), in the palette the terminal can show: truecolor, the 16
ANSI colours, or shade characters under NO_COLOR. Where the optional `textual-image` package found a
terminal that speaks the kitty or sixel graphics protocol (`tfbench.widgets.graphics`), each picture
is a real image at full resolution instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widget import Widget
from textual.widgets import Label, Static

from tfbench import pictures
from tfbench.pictures import Palette
from tfbench.widgets import graphics


@dataclass
class Shown:
    """One picture of a grid: an image (any values, or H×W×3 uint8), its caption, and its value range."""

    image: np.ndarray
    caption: str = ""
    value_range: tuple[float, float] | None = None


def palette_of(app: object) -> Palette:
    """The palette the App's terminal shows: mono under NO_COLOR, standard with 16 colours, else truecolor."""
    console = getattr(app, "console", None)
    return pictures.palette_for(getattr(console, "color_system", "truecolor"), bool(getattr(app, "no_color", False)))


def grid_layout(
    count: int, shape: tuple[int, ...], width: int, height: int, most: float = 4.0, gap: int = 1
) -> tuple[int, int, int]:
    """How to lay out `count` pictures of `shape` in width × height cells, each with a caption line.

    Returns:
        (pictures per row, columns a picture may take, rows a picture may take), chosen so the
        pictures are as large as they can be.
    """
    best = (1, 1, 1, -1.0)
    for across in range(1, max(1, count) + 1):
        down = math.ceil(count / across)
        cols = (width - gap * (across - 1)) // across
        rows = (height - down * 2) // down  # a caption and a blank line under each row
        if cols < 1 or rows < 1:
            continue
        h, w = pictures.fit(shape, cols, rows, most)
        scale = w / max(1, int(shape[1]))
        if scale > best[3] + 1e-9:
            best = (across, cols, rows, scale)
    return best[0], best[1], best[2]


def picture_table(shown: list[Shown], width: int, height: int, palette: Palette, most: float = 4.0) -> Table:
    """The pictures in rows, each with its caption under it, fitted to width × height cells."""
    table = Table.grid(padding=(0, 1, 1, 0))
    if not shown:
        return table
    shape = np.shape(shown[0].image)
    across, cols, rows = grid_layout(len(shown), shape, width, height, most)
    for _ in range(across):
        table.add_column(no_wrap=True)
    cells = []
    for item in shown:
        cell = pictures.picture(item.image, cols, rows, palette, item.value_range, most)
        cell.append("\n" + item.caption[: max(cols, 1)], style="bold")
        cells.append(cell)
    for start in range(0, len(cells), across):
        row = cells[start : start + across]
        table.add_row(*row, *[Text("")] * (across - len(row)))
    return table


class PictureGrid(Widget):
    """A grid of captioned pictures that redraws itself to fit its size (see `show`)."""

    DEFAULT_CSS = """
    PictureGrid {
        height: 1fr;
    }
    PictureGrid > Static {
        width: 100%;
    }
    PictureGrid Grid {
        grid-size: 3;
        grid-gutter: 1;
        height: auto;
    }
    PictureGrid Grid Vertical {
        height: auto;
    }
    PictureGrid Grid Vertical > .picture {
        height: 12;
    }
    """

    def __init__(self, *, most: float = 4.0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.shown: list[Shown] = []
        self.most = most

    def compose(self) -> ComposeResult:
        yield Static("", classes="half-blocks")

    def show(self, shown: list[Shown]) -> None:
        """Draw these pictures (in place of any before)."""
        self.shown = list(shown)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        if graphics.available():
            self._draw_images()
            return
        width, height = self.size.width, self.size.height
        table = picture_table(self.shown, max(width, 4), max(height, 3), palette_of(self.app), self.most)
        self.query_one(".half-blocks", Static).update(table)

    def _draw_images(self) -> None:
        """Full-resolution images through the terminal's graphics protocol (kitty or sixel)."""
        self.query(".images").remove()
        grid = Grid(classes="images")
        self.mount(grid)
        for item in self.shown:
            rgb = (
                pictures.to_rgb(item.image, item.value_range)
                if np.asarray(item.image).dtype != np.uint8
                else item.image
            )
            grid.mount(Vertical(graphics.image_widget(rgb, classes="picture"), Label(item.caption)))
