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


async def idle_work_done(widget) -> None:
    """Wait until `widget` has handled its queued messages and the Idle event after them.

    A DataTable measures its columns only when idle; under load a screenshot can come first and
    show every column at its label's width. An Idle is queued behind the message it follows, so
    the second of two round trips through the widget's queue comes after it.
    """
    for _ in range(2):
        done = asyncio.Event()
        widget.call_later(done.set)
        await done.wait()


async def tables_measured(app) -> None:
    """Wait until every DataTable on the top screen has measured its columns (see `idle_work_done`)."""
    from textual.widgets import DataTable

    for table in app.screen.query(DataTable):
        await idle_work_done(table)


def screen_text(app) -> str:
    """What the top screen shows now, as plain text."""
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())
