"""A DataTable whose columns are measured before it is laid out or drawn, not when it is next idle.

Textual's `DataTable` measures the cells of new rows only when its own message queue runs dry. A
screen that lays out or paints in between (its refresh timer fires first, which happens under load)
sees the table as it was: every auto-width column as wide as its header, and a `height: auto` table
as tall as before. Two Textual caches then keep that picture after the table has measured: its
rendered cells are cached per update count, not per column width (a trial's `lr` of 4.0e-03 stayed
`4.`), and a widget's box model is cached per layout count, which a layout asked for while another
is pending does not advance (the Data screen's column table stayed 0 lines tall). Neither healed
until the rows changed again. This table measures as soon as anything asks for its size or its
picture, the same way Textual would, so what it lays out and draws always fits the rows it holds.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.protocol import is_renderable
from rich.text import Text, TextType
from textual.geometry import Region, Size
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey


def shown_cell(cell: object, height: int) -> RenderableType:
    """A cell as the table draws it in a row `height` lines tall (what Textual's cell formatter makes).

    Args:
        cell: the cell's value.
        height: the row's height in lines (0: not known yet).

    Returns:
        The renderable the table measures and draws.
    """
    if cell is None:
        return Text()
    if isinstance(cell, str):
        content = "\n".join(cell.split("\n")[:height]) if height else cell
        return Text.from_markup(content, end="")
    if isinstance(cell, float):
        return Text(f"{cell:.2f}", end="")
    if not is_renderable(cell):
        return Text(str(cell), end="")
    return cell  # type: ignore[return-value]  # is_renderable checked it is one


class FittedTable(DataTable):
    """A `DataTable` that is measured for the rows it holds whenever it is laid out or drawn.

    Every change to its rows or columns marks it unmeasured; the next layout or paint measures the
    auto-width columns and the scrollable size first. Rows are one fixed height (no `height=None`).
    """

    measured = False  # the columns and the scrollable size fit the rows as they are now

    # -- what changes the measures ---------------------------------------------------------------

    def add_row(self, *cells: CellType, **kwargs: Any) -> RowKey:
        self.measured = False
        return super().add_row(*cells, **kwargs)

    def add_column(self, label: TextType, **kwargs: Any) -> ColumnKey:
        self.measured = False
        return super().add_column(label, **kwargs)

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, **kwargs: Any) -> None:
        self.measured = False
        super().update_cell(row_key, column_key, value, **kwargs)

    def remove_row(self, row_key: RowKey | str) -> None:
        self.measured = False
        super().remove_row(row_key)

    def remove_column(self, column_key: ColumnKey | str) -> None:
        self.measured = False
        super().remove_column(column_key)

    def clear(self, columns: bool = False) -> FittedTable:
        self.measured = False
        super().clear(columns)
        return self

    # -- measuring ------------------------------------------------------------------------------------

    def measure_rows(self) -> None:
        """Fit the auto-width columns to their labels and cells, and the scrollable size to the table."""
        if self.measured:
            return
        self.measured = True
        console = self.app.console
        rows = [(self.rows[key], self.get_row(key)) for key in self.rows]
        for index, column in enumerate(self.ordered_columns):
            if column.auto_width:
                column.content_width = max(
                    [measure(console, column.label, 1)]
                    + [measure(console, shown_cell(cells[index], row.height), 1) for row, cells in rows]
                )
        labels = [measure(console, row.label, 1) for row, _ in rows if row.label is not None]
        label_width = max(labels) + 2 * self.cell_padding if labels and self.show_row_labels else 0
        width = sum(column.get_render_width(self) for column in self.ordered_columns) + label_width
        height = sum(row.height for row, _ in rows) + (self.header_height if self.show_header else 0)
        self.virtual_size = Size(width, height)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        self.measure_rows()
        return super().get_content_width(container, viewport)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self.measure_rows()
        return super().get_content_height(container, viewport, width)

    def render_lines(self, crop: Region) -> list[Strip]:
        self.measure_rows()
        return super().render_lines(crop)
