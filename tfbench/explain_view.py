"""An `Explanation` drawn for a terminal: the image, the heat map over it, the top classes, activations.

The same rich renderables are printed by `tfbench predict --explain` and shown in the workbench's
Explain view, in the palette the terminal can show (`tfbench.pictures`). Under NO_COLOR the heat map
is drawn on its own in shade characters (a colour overlay would mean nothing in grey). No TensorFlow.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tfbench import pictures
from tfbench.pictures import Palette

TOP_WIDTH = 28
"""Columns the top-classes list takes beside the pictures."""
PICTURE_ROWS = 10
"""The most rows the image and the heat map take (so both fit a 24-line terminal with the headline)."""
THUMB_COLUMNS, THUMB_ROWS = 8, 4
"""The most cells one activation thumbnail takes."""
NAME_WIDTH = 16


def headline(explanation: Any) -> Text:
    """`validation sample 3 · true circle · predicted circle 97.1%` (the class explained, when asked for)."""
    text = Text()
    text.append(explanation.source or "image", style="bold")
    if explanation.label is not None:
        text.append(f" · true {explanation.label}")
    best_name, best_p = explanation.top[0]
    text.append(f" · predicted {best_name} {best_p:.1%}", style="bold")
    if explanation.target_name != best_name:
        text.append(f" · explaining {explanation.target_name}")
    return text


def top_classes(explanation: Any, width: int = TOP_WIDTH) -> Text:
    """One line per top class: name, a bar of its probability, the percentage."""
    text = Text()
    name_width = min(12, max(len(name) for name, _ in explanation.top))
    bar_width = max(4, width - name_width - 8)
    for i, (name, p) in enumerate(explanation.top):
        if i:
            text.append("\n")
        style = "bold" if name == explanation.target_name else ""
        text.append(f"{name[:name_width]:<{name_width}} ", style=style)
        text.append("█" * max(0, round(p * bar_width)), style="green" if name == explanation.target_name else "blue")
        text.append(f" {p:6.1%}")
    return text


def heat_picture(explanation: Any, columns: int, rows: int, palette: Palette) -> Text:
    """The heat map over the image in colour; the heat map alone in shades under `mono`."""
    if palette == "mono":
        return pictures.picture(explanation.heat, columns, rows, palette, (0.0, 1.0))
    return pictures.picture(explanation.overlay, columns, rows, palette)


def _captioned(picture: Text, caption: str) -> Text:
    picture.append("\n" + caption, style="bold")
    return picture


def pictures_row(explanation: Any, width: int, palette: Palette) -> Table:
    """The image and its heat map side by side, and the top classes beside them."""
    columns = max(4, (width - TOP_WIDTH - 4) // 2)
    image = pictures.picture(explanation.image, columns, PICTURE_ROWS, palette)
    heat = heat_picture(explanation, columns, PICTURE_ROWS, palette)
    method = "Grad-CAM" if explanation.method == "grad-cam" else "saliency"
    row, col = explanation.peak
    grid = Table.grid(padding=(0, 2, 0, 0))
    for _ in range(3):
        grid.add_column(no_wrap=True)
    grid.add_row(
        _captioned(image, "image"),
        _captioned(heat, f"{method} · {explanation.layer}"[:columns]),
        Group(top_classes(explanation), Text(f"\npeak at row {row}, column {col}", style="dim")),
    )
    return grid


def activations_table(explanation: Any, width: int, palette: Palette) -> Table:
    """A row per layer: its name and shape, then its strongest feature maps as thumbnails."""
    table = Table.grid(padding=(0, 1, 1, 0))
    table.add_column(width=NAME_WIDTH, no_wrap=True)
    per_row = max(1, (width - NAME_WIDTH - 1) // (THUMB_COLUMNS + 1))
    for _ in range(per_row):
        table.add_column(no_wrap=True)
    for layer in explanation.activations:
        name = Text(layer.name[:NAME_WIDTH], style="bold")
        name.append("\n" + "×".join(str(d) for d in layer.shape), style="dim")
        thumbs = [
            pictures.picture(m, THUMB_COLUMNS, THUMB_ROWS, palette, (0.0, 1.0), most=2.0) for m in layer.maps[:per_row]
        ]
        table.add_row(name, *thumbs, *[Text("")] * (per_row - len(thumbs)))
    return table


def explanation_renderable(explanation: Any, width: int, palette: Palette) -> Group:
    """The whole Explain view for `width` columns: headline, pictures and top classes, activations."""
    parts: list[Any] = [headline(explanation), pictures_row(explanation, width, palette)]
    if explanation.activations:
        parts += [
            Text("activations (strongest channels)", style="bold"),
            activations_table(explanation, width, palette),
        ]
    return Group(*parts)
