"""Snapshot pictures of the Data screen for a table (penguins.csv, its columns and raw rows)."""

from __future__ import annotations

import pytest
from table_screen_data import table_app
from test_snapshots_workbench import steps


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (100, 32)], ids=["80x24", "100x32"])
def test_table_data_screen(snap_compare, size):
    """The file's own columns under their names, each column's kind and counts, the label marked."""

    async def focus_columns(pilot):
        pilot.app.screen.query_one("#table-columns").focus()

    assert snap_compare(table_app(), terminal_size=size, run_before=steps("f2", then=focus_columns))
