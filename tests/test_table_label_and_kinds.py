"""A table picked on the Data screen: its label proposed with the reason, kinds that fit, a wrong kind shown inline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from table_screen_data import PENGUINS, experiment, real_table_app
from textual.widgets import Input, Static

from tfbench.screens.dataset import ColumnTable, column_change


def _column_keys(grid) -> list[str]:
    return [str(key.value) for key in grid.rows]


@pytest.mark.slow
@pilot_test
async def test_penguins_picked_with_no_other_input_gets_species_proposed_as_its_label(tmp_path: Path):
    shutil.copyfile(PENGUINS, tmp_path / "penguins.csv")
    app = real_table_app(experiment("builtin:spiral"))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        field = app.screen.query_one("#file-path", Input)
        field.focus()
        field.value = str(tmp_path / "penguins.csv")
        await pilot.press("enter")
        await settle(app, pilot, rounds=3)
        assert app.experiment.data.source == f"csv:{tmp_path / 'penguins.csv'}"
        assert app.experiment.data.options == {"label": "species"}  # not `year`, the last column
        line = str(app.screen.query_one("#label-proposal", Static).render())
        assert "◆ label species — proposed: named like a label" in line
        grid = app.screen.query_one("#table-columns", ColumnTable)
        assert grid.has_focus and _column_keys(grid)[grid.cursor_row] == "species"  # pre-selected
        assert "species" in str(app.screen.query_one("#data-info", Static).render())

        await pilot.press("down", "l")  # the user's own choice, by keyboard
        await settle(app, pilot, rounds=3)
        assert app.experiment.data.options["label"] == "island"
        line = str(app.screen.query_one("#label-proposal", Static).render())
        assert "island — your choice (proposed: species, named like a label)" in line
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert app.experiment.data.options == {"label": "species"}
        await pilot.press("ctrl+z")  # the pick and its proposed label are one edit
        await settle(app, pilot)
        assert app.experiment.data.source == "builtin:spiral"


@pytest.mark.slow
@pilot_test
async def test_a_kind_the_values_do_not_fit_is_an_error_on_that_column_only():
    exp = experiment()
    exp = exp.model_copy(
        update={"data": exp.data.model_copy(update={"options": {"label": "species", "columns": {"island": "numeric"}}})}
    )
    app = real_table_app(exp)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot, rounds=3)
        grid = app.screen.query_one("#table-columns", ColumnTable)
        assert grid.display and grid.row_count == 8  # the whole table stays
        rows = {grid.get_row(key)[0]: grid.get_row(key) for key in grid.rows}
        assert rows["island"][1] == "✗ numeric"
        assert rows["sex"][1] == "categorical" and rows["year"][1] == "numeric"
        errors = str(app.screen.query_one("#column-errors", Static).render())
        assert errors.startswith("✗ island: column 'island' holds values that are not a number (row 2: 'Torgersen')")
        grid.focus()
        grid.move_cursor(row=_column_keys(grid).index("island"))
        await pilot.press("k")  # the next kind that fits: categorical, as inferred
        await settle(app, pilot, rounds=3)
        assert "columns" not in app.experiment.data.options
        assert str(app.screen.query_one("#column-errors", Static).render()) == ""
        rows = {grid.get_row(key)[0]: grid.get_row(key) for key in grid.rows}
        assert rows["island"][1] == "categorical"


def _penguin_columns() -> list[dict]:
    from tfbench import data

    return data.preview(experiment().data, 2)["table"]["columns"]


def test_k_cycles_only_through_kinds_that_fit_the_values():
    columns = _penguin_columns()
    seen: dict[str, list[str]] = {}
    for name in ("sex", "year", "bill_length_mm"):
        options: dict = {"data": {"options": {"label": "species"}}}
        kinds = []
        for _ in range(4):
            column_change(columns, name, "kind")(options)
            kinds.append(options["data"]["options"].get("columns", {}).get(name, "(inferred)"))
        seen[name] = kinds
    assert seen["sex"] == ["text", "drop", "(inferred)", "text"]  # text is never offered "date" or "numeric"
    assert seen["year"] == ["categorical", "drop", "(inferred)", "categorical"]
    assert seen["bill_length_mm"] == ["drop", "(inferred)", "drop", "(inferred)"]  # fractions are no category
