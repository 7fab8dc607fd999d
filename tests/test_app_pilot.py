"""The pilot helpers wait on what a picture needs, not on a count of event-loop turns."""

from __future__ import annotations

from app_pilot import columns_fit, pilot_test, table_measured
from textual.app import App
from textual.widgets import DataTable


@pilot_test
async def test_a_table_is_measured_only_once_it_is_idle_and_table_measured_waits_for_it():
    class TableApp(App):
        def compose(self):
            yield DataTable()

    app = TableApp()
    async with app.run_test(size=(60, 10)):
        table = app.query_one(DataTable)
        table.add_columns("state", "best")
        table.add_row("finished", "0.9755")  # wider than the labels
        assert not columns_fit(table)  # as a screenshot taken now would show: "finis", "0.97"
        await table_measured(table)
        assert columns_fit(table)
        assert [c.content_width for c in table.columns.values()] == [8, 6]
