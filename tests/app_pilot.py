"""Driving the Textual App in tests: one event loop a test, waiting for workers, reading the screen."""

from __future__ import annotations

import asyncio
import functools


def pilot_test(test):
    """Run an async pilot test in its own event loop (no asyncio plugin is installed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


async def wait_finite(app) -> None:
    """Wait for the workers that end by themselves (a directory tree's loader waits forever)."""
    workers = [worker for worker in app.workers if worker.group != "_loader"]
    if workers:
        await app.workers.wait_for_complete(workers)


async def settle(app, pilot, rounds: int = 2) -> None:
    """Let workers finish and their messages land."""
    for _ in range(rounds):
        await pilot.pause()
        await wait_finite(app)
        await pilot.pause()


def cell_width(cell) -> int:
    """The width a DataTable gives a cell's content (a str cell is read as markup, as Textual does)."""
    from rich.cells import cell_len
    from rich.errors import MarkupError
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.cell_len
    try:
        return Text.from_markup(str(cell)).cell_len
    except MarkupError:
        return cell_len(str(cell))


def columns_fit(table) -> bool:
    """Whether every column of a DataTable is measured wide enough for each of its cells."""
    columns = list(table.columns.values())
    for index in range(table.row_count):
        for column, cell in zip(columns, table.get_row_at(index)):
            if column.auto_width and column.content_width < cell_width(cell):
                return False
    return True


async def table_measured(table, timeout: float = 10.0) -> None:
    """Wait until `table` has measured its columns for the rows it holds.

    A DataTable measures new rows only when it is next idle, so under load a screenshot taken
    right after the rows were added shows every column at its label's width. Waiting for a few
    trips through its message queue is not enough (it failed once in CI): this waits for the widths.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not columns_fit(table):
        if loop.time() > deadline:
            raise AssertionError(f"{table!r} never measured its columns")
        await asyncio.sleep(0.01)


async def tables_measured(app) -> None:
    """Wait until every DataTable on the top screen has measured its columns (see `table_measured`)."""
    from textual.widgets import DataTable

    for table in app.screen.query(DataTable):
        await table_measured(table)


def screen_text(app) -> str:
    """What the top screen shows now, as plain text."""
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


def lay_out_and_paint_now(screen) -> None:
    """Lay `screen` out and paint it at once, as its refresh timer does when it fires before a widget
    that has just changed is next idle (under load it often does). Two layout passes: the second is
    the one a scrollbar appearing in a container asks for."""
    screen._refresh_layout(screen.size)
    screen._refresh_layout(screen.size)
    screen._compositor.render_update(full=True)


def widget_text(app, widget) -> list[str]:
    """The lines the top screen shows inside `widget`'s content region (no border), as plain text."""
    region = widget.content_region
    lines = ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]
    return [line[region.x : region.right] for line in lines[region.y : region.bottom]]
