"""The Data screen for a table: the file's own columns, the label picked there, kinds changed with undo."""

from __future__ import annotations

import pytest
from app_pilot import lay_out_and_paint_now, pilot_test, screen_text, settle, widget_text
from table_screen_data import table_app


async def _columns(app, pilot):
    await pilot.press("f2")
    await settle(app, pilot)
    grid = app.screen.query_one("#table-columns")
    grid.focus()
    await settle(app, pilot)
    return grid


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pilot_test
async def test_the_columns_laid_out_before_the_table_measured_them_still_show(monkeypatch):
    """The screen laying out the new columns table before the table is idle: it used to stay 0 lines
    tall for good (a table's columns came up empty), or show each column cut to its header."""
    from tfbench.screens.dataset import DatasetScreen

    draw_columns = DatasetScreen._draw_columns

    def drawn_then_painted(screen):
        draw_columns(screen)
        lay_out_and_paint_now(screen)

    monkeypatch.setattr(DatasetScreen, "_draw_columns", drawn_then_painted)
    app = table_app()
    async with app.run_test(size=(100, 32)) as pilot:
        grid = await _columns(app, pilot)
        await pilot.pause(0.1)
        assert grid.size.height == grid.row_count + 1  # the header and every column of the file
        shown = widget_text(app, grid)
        for index, line in enumerate(shown[1:]):
            assert all(cell in line for cell in grid.get_row_at(index)), (grid.get_row_at(index), line)
