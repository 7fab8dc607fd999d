"""The builder's tree of a model with several inputs and outputs: each input's stack, the merge, the
trunk and each head — pure rows, pilot tests of real key presses, and pictures at 80×24 and larger.

The summary comes from `TicketEngineCalls` (no Keras); `test_fixed_ticket_figures_are_what_keras_builds`
checks its figures against a real build of the Functional API guide's ticket model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from multi_io_cases import write_tickets
from multi_io_tree import FIGURES, TicketEngineCalls, ticket_experiment
from test_snapshots_workbench import steps
from textual.widgets import Input

from tfbench.app import make_app
from tfbench.screens.builder import BuilderScreen
from tfbench.screens.dialogs import LayerPicker
from tfbench.widgets.form import ParamForm
from tfbench.widgets.layer_table import LayerTable, model_entries, tree_rows

SIZE = (80, 24)
ORDER = [
    "model.inputs[0]",
    "model.inputs[0].layers[0]",
    "model.inputs[0].layers[1]",
    "model.inputs[1]",
    "model.inputs[1].layers[0]",
    "model.inputs[1].layers[1]",
    "model.inputs[2]",
    "model.merge",
    "model.outputs[0]",
    "model.outputs[0].layers[0]",
    "model.outputs[1]",
    "model.outputs[1].layers[0]",
]


def ticket_app(engine_calls: TicketEngineCalls | None = None):
    app = make_app(
        experiment=ticket_experiment(), runs_dir=Path("runs-not-used"), engine_calls=engine_calls or TicketEngineCalls()
    )
    app.blink = False
    return app


def keys(app) -> list[str]:
    table = app.screen.query_one(LayerTable)
    return [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]


async def go_to(pilot, path: str) -> None:
    """Press down (from the top) until the row of `path` is under the cursor."""
    table = pilot.app.screen.query_one(LayerTable)
    table.move_cursor(row=0)
    await pilot.pause()
    for _ in range(table.row_count):
        if table.cursor_key == path:
            return
        await pilot.press("down")
        await pilot.pause()
    raise AssertionError(f"no row {path}: {keys(pilot.app)}")


def test_fixed_ticket_figures_are_what_keras_builds(tmp_path):
    from tfbench import data, models
    from tfbench.io_model import data_names
    from tfbench.spec import load_experiment

    exp = load_experiment(write_tickets(tmp_path, n=16))
    summary = models.summarize(exp, data.describe(exp.data, exp.train.seed, io=data_names(exp)))
    assert {r.path: (r.kind, tuple(r.output_shape), r.params) for r in summary.layers} == FIGURES


def test_tree_rows_show_each_input_the_merge_and_each_head():
    exp = ticket_experiment()
    summary = TicketEngineCalls().summarize(exp)
    rows = tree_rows(model_entries(exp.model), summary.layers)
    assert [r.key for r in rows] == ORDER
    by_key = {r.key: r for r in rows}
    assert by_key["model.inputs[0]"].label == "▾ in title" and by_key["model.inputs[0]"].shape == "10"
    assert by_key["model.inputs[0].layers[1]"].label == "└ LSTM" and by_key["model.inputs[0].layers[1]"].shape == "128"
    assert by_key["model.inputs[2]"].args == "the input as is"
    assert (by_key["model.merge"].label, by_key["model.merge"].args, by_key["model.merge"].shape) == (
        "merge",
        "concatenate",
        "172",
    )
    assert by_key["model.outputs[1]"].args == "×0.2 CategoricalCrossentropy"
    assert by_key["model.outputs[1]"].params == "692"
    folded = tree_rows(model_entries(exp.model), summary.layers, folded={"model.inputs[0]"})
    assert "model.inputs[0].layers[0]" not in [r.key for r in folded]
    assert next(r for r in folded if r.key == "model.inputs[0]").label == "▸ in title"


def test_an_error_at_the_merge_marks_the_merge_row():
    exp = ticket_experiment()
    rows = tree_rows(model_entries(exp.model), (), error_location="model.merge", error="cannot concatenate")
    keys_ = [r.key for r in rows]
    assert keys_[keys_.index("model.merge") + 1] == "error:model.merge"


@pytest.mark.slow
@pilot_test
async def test_edit_a_layer_of_an_input_stack_and_undo_it():
    app = ticket_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, BuilderScreen)
        assert keys(app) == ORDER
        await go_to(pilot, "model.inputs[1].layers[1]")
        assert isinstance(screen.form, ParamForm) and screen.form.location == "model.inputs[1].layers[1]"
        units = screen.form.query_one("#field-units", Input)
        units.focus()
        units.value = ""
        await pilot.press("6", "4")
        await settle(app, pilot)
        assert app.experiment.model.inputs[1].layers[1].args["units"] == 64
        assert app.experiment.model.inputs[0].layers[1].args["units"] == 128  # the other stacks as they were
        await pilot.press("escape", "ctrl+z")
        await settle(app, pilot)
        assert app.experiment.model.inputs[1].layers[1].args["units"] == 32


@pytest.mark.slow
@pilot_test
async def test_add_and_delete_a_layer_in_a_head():
    """A on an output's row adds a layer to its head; d deletes it; the trunk stays empty."""
    app = ticket_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.outputs[1]")
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, LayerPicker)
        await pilot.press(*"dropout", "enter")
        await settle(app, pilot)
        head = [c.type for c in app.experiment.model.outputs[1].layers]
        assert head == ["Dense", "Dropout"] and app.experiment.model.layers == []
        assert app.screen.query_one(LayerTable).cursor_key == "model.outputs[1].layers[1]"
        await pilot.press("d")
        await settle(app, pilot)
        assert [c.type for c in app.experiment.model.outputs[1].layers] == ["Dense"]


@pytest.mark.slow
@pilot_test
async def test_the_merge_row_takes_no_edits_and_inputs_fold():
    app = ticket_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = app.experiment.to_dict()
        await go_to(pilot, "model.merge")
        await pilot.press("d", "K", "c")
        await settle(app, pilot)
        assert app.experiment.to_dict() == before
        assert app.screen.check_action("add_layer", ()) is False
        await go_to(pilot, "model.inputs[0]")
        await pilot.press("left")
        await pilot.pause()
        assert "model.inputs[0].layers[0]" not in keys(app)
        await pilot.press("right")
        await pilot.pause()
        assert "model.inputs[0].layers[0]" in keys(app)


# -- pictures -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_builder_several_inputs_and_outputs(snap_compare):
    """The ticket model's tree: three inputs (two with stacks), the merge, two heads with their losses."""
    assert snap_compare(ticket_app(), terminal_size=(110, 34), run_before=steps())


@pytest.mark.slow
def test_builder_several_inputs_and_outputs_80x24(snap_compare):
    """The same tree at 80×24, the body input's LSTM selected with its form."""
    assert snap_compare(ticket_app(), terminal_size=(80, 24), run_before=steps(*["down"] * 5))


@pytest.mark.slow
def test_builder_several_inputs_merge_error_80x24(snap_compare):
    """A merge that cannot be made: the merge row marked, the message under it."""
    workbench = TicketEngineCalls(fail_at="model.merge")
    assert snap_compare(ticket_app(workbench), terminal_size=(80, 24), run_before=steps())
