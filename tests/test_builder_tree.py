"""Pilot tests of the builder's tree: real key presses over a stack with blocks, a fixed summary.

The summary comes from `NestedEngineCalls` (no Keras), so these tests are about the screen: which
row is where, what each key does to the Experiment, and that undo/redo walk every edit back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from nested_stack import LAYERS, NestedEngineCalls, NestedRow, nested_experiment
from textual.widgets import Input, OptionList

from tfbench.app import make_app
from tfbench.screens.builder import BlockPicker, BuilderScreen
from tfbench.screens.dialogs import LayerPicker, PathPrompt
from tfbench.spec import Component
from tfbench.widgets.block_form import BlockForm
from tfbench.widgets.form import ParamForm
from tfbench.widgets.layer_table import LayerTable, tree_rows

SIZE = (80, 24)


def app_on(engine_calls: NestedEngineCalls | None = None):
    app = make_app(
        experiment=nested_experiment(), runs_dir=Path("runs-not-used"), engine_calls=engine_calls or NestedEngineCalls()
    )
    app.blink = False
    return app


def layers(app) -> list[dict]:
    return [layer.model_dump() for layer in app.experiment.model.layers]


def keys(app) -> list[str]:
    table = app.screen.query_one(LayerTable)
    return [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]


async def go_to(pilot, path: str) -> None:
    """Press down (from the top) until the row of `path` is under the cursor."""
    app = pilot.app
    table = app.screen.query_one(LayerTable)
    table.move_cursor(row=0)
    await pilot.pause()
    for _ in range(table.row_count):
        if table.cursor_key == path:
            return
        await pilot.press("down")
        await pilot.pause()
    raise AssertionError(f"no row {path}: {keys(app)}")


def test_tree_rows_match_summary_rows_by_path():
    """Figures land on the entry whose path the summary row names, nested ones included."""
    summary = NestedEngineCalls().summarize(nested_experiment())
    rows = {row.key: row for row in tree_rows(LAYERS, summary.layers, folded={"model.layers[1]"})}
    assert rows["model.layers[2].shortcut[0]"].params == "40,992"
    assert rows["model.layers[2].shortcut[0]"].label == "  └ Conv2D"  # under the last child: no line
    assert rows["model.layers[3].branches[0][0]"].label == "│ └ Conv2D"  # a branch follows: a line
    assert rows["model.layers[5].layer"].shape == "16"
    assert rows["model.layers[1]"].frozen and rows["model.layers[1]"].label == "▸ MobileNetV2"
    assert not any(key.startswith("inner:") for key in rows)  # the folded backbone hides its layers
    unfolded = [row.key for row in tree_rows(LAYERS, summary.layers)]
    assert unfolded[2:5] == [f"inner:model.layers[1]|{j}" for j in range(3)]
    # A row whose path names no entry (a block's merge layer, say) goes under the entry around it.
    merge = NestedRow(3, "concatenate", "Concatenate", (None, 3, 3, 48), 0, "model.layers[3].merge", 1)
    keyed = [row.key for row in tree_rows(LAYERS, [*summary.layers, merge], folded={"model.layers[1]"})]
    assert keyed[keyed.index("model.layers[3].branches[1][0]") + 1] == "inner:model.layers[3]|0"
    # Top-level rows only (a summary from before nested rows): the nested entries show no figures.
    top = [row for row in summary.layers if row.depth == 0]
    rows = {row.key: row for row in tree_rows(LAYERS, top)}
    assert rows["model.layers[2]"].params == f"{409_792:,}" and rows["model.layers[2].layers[0]"].params == ""


@pytest.mark.slow
@pilot_test
async def test_navigate_the_tree_and_edit_a_nested_layer():
    """Down walks into blocks; the form edits the row's own entry; undo and redo walk it back."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, BuilderScreen)
        assert keys(app)[:3] == ["model.layers[0]", "model.layers[1]", "model.layers[2]"]  # backbone folded
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert screen.selected_steps == (2, "layers", 0)
        assert isinstance(screen.form, ParamForm) and screen.form.location == "model.layers[2].layers[0]"
        units = screen.form.query_one("#field-filters", Input)
        units.focus()
        units.value = ""
        await pilot.press("6", "4")
        await settle(app, pilot)
        assert layers(app)[2]["layers"][0]["filters"] == 64
        assert layers(app)[2]["shortcut"] == LAYERS[2]["shortcut"]
        await pilot.press("escape", "ctrl+z")
        await settle(app, pilot)
        assert layers(app)[2]["layers"][0]["filters"] == 32
        await pilot.press("ctrl+y")
        await settle(app, pilot)
        assert layers(app)[2]["layers"][0]["filters"] == 64


@pytest.mark.slow
@pilot_test
async def test_edit_a_wrappers_inner_layer_and_the_wrapper_itself():
    """The Bidirectional's LSTM has its own form; the wrapper's form sets merge_mode."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await go_to(pilot, "model.layers[5].layer")
        assert isinstance(screen.form, ParamForm) and screen.form.entry_name == "LSTM"
        field = screen.form.query_one("#field-units", Input)
        field.focus()
        field.value = ""
        await pilot.press("4", "8")
        await settle(app, pilot)
        assert layers(app)[5] == {
            "type": "Bidirectional",
            "merge_mode": "concat",
            "layer": {"type": "LSTM", "units": 48},
        }
        await pilot.press("escape")
        await go_to(pilot, "model.layers[5]")
        assert isinstance(screen.form, BlockForm) and "merge_mode" in screen.form.fields
        screen.form.query_one("#field-merge_mode").value = "sum"
        await settle(app, pilot)
        assert layers(app)[5]["merge_mode"] == "sum" and layers(app)[5]["layer"]["units"] == 48
        await pilot.press("escape", "ctrl+z", "ctrl+z")
        await settle(app, pilot)
        assert layers(app)[5] == LAYERS[5]


@pytest.mark.slow
@pilot_test
async def test_add_a_block_and_a_layer_inside_a_branch():
    """b adds a Parallel below the selection; B a third branch; A a Dense inside that branch."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[4]")
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, BlockPicker)
        listing = app.screen.query_one(OptionList)
        listing.highlighted = [listing.get_option_at_index(i).id for i in range(listing.option_count)].index("Parallel")
        await pilot.press("enter")
        await settle(app, pilot)
        assert layers(app)[5] == {"type": "Parallel", "branches": [[], []]}
        assert app.screen.selected_steps == (5,)
        await pilot.press("B")
        await settle(app, pilot)
        assert layers(app)[5]["branches"] == [[], [], []]
        assert app.screen.query_one(LayerTable).cursor_key == "model.layers[5].branches[2]"
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, LayerPicker)
        await pilot.press(*"dense", "enter")
        await settle(app, pilot)
        assert layers(app)[5]["branches"][2] == [{"type": "Dense", "units": 32}]
        assert app.screen.selected_steps == (5, "branches", 2, 0)
        await pilot.press("ctrl+z", "ctrl+z", "ctrl+z")
        await settle(app, pilot)
        assert layers(app) == LAYERS
        await pilot.press("ctrl+y", "ctrl+y", "ctrl+y")
        await settle(app, pilot)
        assert layers(app)[5]["branches"][2] == [{"type": "Dense", "units": 32}]


@pytest.mark.slow
@pilot_test
async def test_move_a_layer_into_and_out_of_a_block():
    """> takes the Reshape into the Parallel above it (its last branch); < brings it back out."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[4]")
        await pilot.press("greater_than_sign")
        await settle(app, pilot)
        assert [e["type"] for e in layers(app)[3]["branches"][1]] == ["MaxPooling2D", "Reshape"]
        assert app.screen.query_one(LayerTable).cursor_key == "model.layers[3].branches[1][1]"
        await pilot.press("less_than_sign")
        await settle(app, pilot)
        assert layers(app) == LAYERS
        await go_to(pilot, "model.layers[5].layer")
        await pilot.press("less_than_sign")  # out of a wrapper: unwrapped
        await settle(app, pilot)
        assert layers(app)[5] == {"type": "LSTM", "units": 16}
        await pilot.press("ctrl+z", "ctrl+z")
        await settle(app, pilot)
        assert [e["type"] for e in layers(app)[3]["branches"][1]] == ["MaxPooling2D", "Reshape"]
        before = layers(app)
        await go_to(pilot, "model.layers[0]")
        await pilot.press("less_than_sign")  # a move that does not fit is refused, and changes nothing
        await settle(app, pilot)
        assert layers(app) == before


@pytest.mark.slow
@pilot_test
async def test_fold_and_unfold_blocks_and_the_backbone():
    """The backbone starts folded; right unfolds it; f folds a Residual; left on a child folds its block."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[1]")
        assert "inner:model.layers[1]|0" not in keys(app)
        await pilot.press("right")
        await pilot.pause()
        assert keys(app)[2:5] == [f"inner:model.layers[1]|{j}" for j in range(3)]
        await pilot.press("left")
        await pilot.pause()
        assert "inner:model.layers[1]|0" not in keys(app)
        await go_to(pilot, "model.layers[2]")
        await pilot.press("f")
        await pilot.pause()
        assert "model.layers[2].layers[0]" not in keys(app) and "model.layers[3]" in keys(app)
        await pilot.press("f")
        await pilot.pause()
        await go_to(pilot, "model.layers[3].branches[1][0]")
        await pilot.press("left")
        await pilot.pause()
        assert "model.layers[3].branches[0]" not in keys(app)
        assert app.screen.query_one(LayerTable).cursor_key == "model.layers[3]"
        await pilot.press("A")  # a layer added inside the folded Parallel unfolds it to show it
        await pilot.pause()
        await pilot.press(*"dense", "enter")
        await settle(app, pilot)
        assert app.screen.query_one(LayerTable).cursor_key == "model.layers[3].branches[1][1]"


@pytest.mark.slow
@pilot_test
async def test_an_error_shows_on_the_nested_entry_it_names():
    """A summary failing at `branches[1][0].pool_size` marks that MaxPooling2D, its message under it."""
    app = app_on(NestedEngineCalls(fail_at="model.layers[3].branches[1][0].pool_size"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        rows = keys(app)
        at = rows.index("model.layers[3].branches[1][0]")
        assert rows[at + 1] == "error:model.layers[3].branches[1][0]"
        await go_to(pilot, "model.layers[3]")
        await pilot.press("f")  # folded: the error moves to the block row hiding it
        await pilot.pause()
        assert "error:model.layers[3]" in keys(app)


@pytest.mark.slow
@pilot_test
async def test_import_shows_nested_entries_as_a_tree_and_errors_inline():
    """An imported stack with a Residual is drawn as a tree; a refused file says why on screen."""
    imported = [Component(type="Residual", layers=[{"type": "Dense", "units": 4}]), Component(type="Dense", units=2)]
    app = app_on(NestedEngineCalls(imported=imported))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("I")
        await pilot.pause()
        assert isinstance(app.screen, PathPrompt)
        app.screen.query_one(Input).value = __file__
        await pilot.press("enter")
        await settle(app, pilot, rounds=3)
        assert keys(app) == ["model.layers[0]", "model.layers[0].layers[0]", "model.layers[1]"]
    failing = app_on(NestedEngineCalls())  # imports nothing: a refusal
    async with failing.run_test(size=SIZE) as pilot:
        await settle(failing, pilot)
        await pilot.press("I")
        await pilot.pause()
        failing.screen.query_one(Input).value = __file__
        await pilot.press("enter")
        await settle(failing, pilot, rounds=3)
        totals = str(failing.screen.query_one("#totals").render())
        assert "not a Sequential .keras model" in totals
        assert layers(failing) == LAYERS


@pytest.mark.slow
@pilot_test
async def test_command_palette_runs_the_builders_edits():
    """ctrl+p offers "Move into block"; choosing it moves the selected Reshape into the Parallel."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[4]")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"move into block")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        assert [e["type"] for e in layers(app)[3]["branches"][1]] == ["MaxPooling2D", "Reshape"]


@pytest.mark.slow
@pilot_test
async def test_a_backbones_own_layer_selects_its_backbone():
    """The cursor on a row of the unfolded backbone's layers edits (and would delete) the backbone."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[1]")
        await pilot.press("right", "down")
        await pilot.pause()
        assert app.screen.query_one(LayerTable).cursor_key == "inner:model.layers[1]|0"
        assert app.screen.selected_steps == (1,)
        assert isinstance(app.screen.form, BlockForm) and app.screen.form.entry_name == "MobileNetV2"


@pytest.mark.slow
@pilot_test
async def test_a_bad_block_value_shows_under_its_field_and_blocks_saving():
    """A backbone's alpha was a number and stays one: letters show an error under it, saving waits."""
    experiment = nested_experiment()
    app = make_app(
        experiment=experiment.copy_with(["model.layers[1].alpha=1.0"]),
        runs_dir=Path("runs-not-used"),
        engine_calls=NestedEngineCalls(),
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[1]")
        form = app.screen.form
        assert isinstance(form, BlockForm) and "alpha" in form.fields
        field = form.query_one("#field-alpha", Input)
        field.focus()
        field.value = "half"
        await pilot.pause()
        assert form.errors.get("alpha") and app.form_errors
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, PathPrompt)
        field.value = "0.5"
        await settle(app, pilot)
        assert layers(app)[1]["alpha"] == 0.5 and not app.form_errors


@pytest.mark.slow
@pilot_test
async def test_p_puts_the_backbones_preprocessing_inside_the_model():
    """p on MobileNetV2 sets preprocess = true (its [-1, 1] scaling inside the model); undo takes it out."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[1]")
        await pilot.press("p")
        await settle(app, pilot)
        assert layers(app)[1]["preprocess"] is True
        assert app.screen.form.query_one("#field-preprocess").value is True
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert "preprocess" not in layers(app)[1]
        await go_to(pilot, "model.layers[2]")
        await pilot.press("p")  # not a backbone: the key does nothing here
        await settle(app, pilot)
        assert layers(app)[2] == LAYERS[2]


@pytest.mark.slow
@pilot_test
async def test_the_grammars_refusal_shows_under_the_block_forms_field():
    """A merge_mode Keras does not have is refused by the grammar; the message sits under merge_mode."""
    app = app_on()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await go_to(pilot, "model.layers[5]")
        form = app.screen.form
        assert isinstance(form, BlockForm)
        form.query_one("#field-merge_mode", Input).value = "average"
        await settle(app, pilot)
        assert "merge_mode" in form.errors and app.form_errors
        assert layers(app)[5]["merge_mode"] == "concat"  # the Experiment kept its value
        form.query_one("#field-merge_mode", Input).value = "ave"
        await settle(app, pilot)
        assert layers(app)[5]["merge_mode"] == "ave" and not form.errors and not app.form_errors
