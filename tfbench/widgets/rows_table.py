"""A table that draws only the rows on screen, for lists of thousands that are refiltered per keystroke.

Textual's `DataTable` builds and measures every row it holds when rows change (about a second for a
thousand rows on a busy machine), so a filter that replaces the rows at each keystroke cannot keep
up. This table takes rows whose cells are already made and measured, keeps them in a list, and
renders a line only when it is on screen: replacing a thousand rows costs a pass over their widths.
A fixed header names the columns; a cursor row, zebra stripes and the keys and mouse of a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Row:
    """One row: its key, its cells (already styled), and each cell's width in terminal cells."""

    key: str
    cells: tuple[Text, ...]
    widths: tuple[int, ...]

    @classmethod
    def of(cls, key: str, cells: list[Text]) -> Row:
        """A row of these cells, measured."""
        return cls(key, tuple(cells), tuple(cell.cell_len for cell in cells))


class RowsTable(ScrollView, can_focus=True):
    """A list of rows under a fixed header, drawn a screen at a time.

    Columns are sized to the widest cell among the rows it holds now; the cursor stays on the same
    row key when the rows are replaced, when that row is still there.
    """

    COMPONENT_CLASSES = {"rows-table--header", "rows-table--cursor", "rows-table--even"}
    DEFAULT_CSS = """
    RowsTable { background: $surface; }
    RowsTable > .rows-table--header { text-style: bold; color: $text-accent; }
    RowsTable > .rows-table--cursor { background: $block-cursor-blurred-background; }
    RowsTable:focus > .rows-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    RowsTable > .rows-table--even { background: $surface-lighten-1 30%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor moved to another row (`key` is None when there are no rows)."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    class RowSelected(Message):
        """Enter (or a click on the cursor's row) chose the row `key`."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(
        self, labels: list[str], right: set[int] | None = None, optional: tuple[int, ...] = (), **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]  # the Widget keywords: id, classes, name
        self.labels = list(labels)
        self.right = right or set()  # the columns whose cells align right
        self.optional = optional  # columns left out, in this order, while the rows are wider than the table
        self.hidden: set[int] = set()
        self.rows: list[Row] = []
        self.widths = [len(label) for label in self.labels]
        self.cursor = 0
        self.repaints = 0  # how many times the rows were replaced (tests and benchmarks read it)

    # -- content ----------------------------------------------------------------------------------

    def set_labels(self, labels: list[str]) -> None:
        """New header labels (a sort marker), the same columns."""
        self.labels = list(labels)
        self._measure()
        self.refresh()

    def set_rows(self, rows: list[Row]) -> None:
        """Show these rows; the cursor stays on its row when that row is among them."""
        current = self.cursor_key
        self.rows = rows
        index = next((i for i, row in enumerate(rows) if row.key == current), None) if current else None
        self.cursor = index if index is not None else min(self.cursor, max(len(rows) - 1, 0))
        self._measure()
        self.repaints += 1
        self._follow_cursor()
        self.refresh()
        if self.cursor_key != current:
            self.post_message(self.RowHighlighted(self.cursor_key))

    def replace_row(self, row: Row) -> None:
        """Redraw one row in place (same key), for a changed mark or tag."""
        for i, old in enumerate(self.rows):
            if old.key == row.key:
                self.rows[i] = row
                self._measure()
                self.refresh()
                return

    def _measure(self) -> None:
        widths = [len(label) for label in self.labels]
        for row in self.rows:
            widths = [max(a, b) for a, b in zip(widths, row.widths, strict=False)]
        self.hidden = set()
        room = self.size.width - 1  # a vertical scrollbar may take a column
        for column in self.optional:
            if room <= 0 or sum(w + 2 for i, w in enumerate(widths) if i not in self.hidden) <= room:
                break
            self.hidden.add(column)
        self.widths = widths
        shown = sum(w + 2 for i, w in enumerate(widths) if i not in self.hidden)
        self.virtual_size = Size(shown, len(self.rows) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._measure()
        self.refresh()

    @property
    def cursor_key(self) -> str | None:
        """The key of the cursor's row, or None when there are no rows."""
        return self.rows[self.cursor].key if 0 <= self.cursor < len(self.rows) else None

    # -- moving -------------------------------------------------------------------------------------

    def move_to(self, index: int) -> None:
        """Put the cursor on row `index` (clamped) and keep it in view."""
        if not self.rows:
            return
        before = self.cursor
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._follow_cursor()
        self.refresh()
        if self.cursor != before:
            self.post_message(self.RowHighlighted(self.cursor_key))

    def _follow_cursor(self) -> None:
        visible = max(self.size.height - 1, 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(self.size.height - 2, 1))

    def action_jump(self, index: int) -> None:
        self.move_to(len(self.rows) - 1 if index < 0 else index)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.RowSelected(self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = int(self.scroll_offset.y) + offset.y - 1
        if index < len(self.rows):
            if index == self.cursor:
                self.action_select()
            self.move_to(index)

    # -- drawing ------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("rows-table--header")
            cells = [Text(label) for label in self.labels]
        else:
            index = int(scroll_y) + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, base)
            style = base
            if index == self.cursor:
                style = base + self.get_component_rich_style("rows-table--cursor")
            elif index % 2:
                style = base + self.get_component_rich_style("rows-table--even")
            cells = list(self.rows[index].cells)
        strip = Strip(self._segments(cells, style)).crop(int(scroll_x), int(scroll_x) + width)
        return strip.extend_cell_length(width, style)

    def _segments(self, cells: list[Text], style: Style) -> list[Segment]:
        segments: list[Segment] = []
        for column, (cell, width) in enumerate(zip(cells, self.widths, strict=False)):
            if column in self.hidden:
                continue
            pad = width - cell.cell_len
            text = cell.copy()
            text.truncate(width, overflow="ellipsis")
            if column in self.right:
                text = Text(" " * max(pad, 0)) + text
            else:
                text.pad_right(max(pad, 0))
            segments.append(Segment(" ", style))
            segments.extend(
                Segment(seg.text, style + seg.style if seg.style else style)
                for seg in text.render(self.app.console)
                if seg.text != "\n"
            )
            segments.append(Segment(" ", style))
        return segments
