"""The Data screen for a table: the file's own columns, the label picked there, kinds changed with undo."""

from __future__ import annotations

from app_pilot import pilot_test, screen_text, settle
from table_screen_data import table_app


async def _columns(app, pilot):
    await pilot.press("f2")
    await settle(app, pilot)
    grid = app.screen.query_one("#table-columns")
    grid.focus()
    await settle(app, pilot)
    return grid


@pilot_test
async def test_the_columns_show_kinds_missing_and_distinct_counts():
    app = table_app()
    async with app.run_test(size=(100, 32)) as pilot:
        grid = await _columns(app, pilot)
        rows = {grid.get_row(key)[0]: grid.get_row(key) for key in grid.rows}
        assert rows["species"][1] == "◆ label"
        assert rows["island"][1:] == ["categorical", "0", "3"]
        assert rows["sex"][2] == "11"  # NA cells counted as missing
        text = screen_text(app)
        assert "bill_length_mm" in text and "Torgersen" in text  # raw rows under the file's names


@pilot_test
async def test_label_kind_and_drop_are_written_to_the_experiment_with_undo():
    app = table_app()
    async with app.run_test(size=(100, 32)) as pilot:
        grid = await _columns(app, pilot)
        island = list(grid.rows).index(next(k for k in grid.rows if k.value == "island"))
        grid.move_cursor(row=island)
        await pilot.press("l")
        await settle(app, pilot)
        assert app.experiment.data.options["label"] == "island"
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert app.experiment.data.options["label"] == "species"
        grid.move_cursor(row=list(grid.rows).index(next(k for k in grid.rows if k.value == "year")))
        await pilot.press("k")  # numeric → categorical
        await settle(app, pilot)
        assert app.experiment.data.options["columns"] == {"year": "categorical"}
        await pilot.press("x")
        await settle(app, pilot)
        assert app.experiment.data.options["columns"] == {"year": "drop"}
        await pilot.press("ctrl+z", "ctrl+z")
        await settle(app, pilot)
        assert "columns" not in app.experiment.data.options
