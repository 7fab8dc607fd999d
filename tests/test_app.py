"""Pilot tests of the workbench: real key presses, real Keras summaries computed in workers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from textual.widgets import Input, OptionList, Select, Static

from tfbench.app import make_app
from tfbench.screens.builder import BuilderScreen
from tfbench.screens.dialogs import LayerPicker, PathPrompt
from tfbench.spec import load_experiment
from tfbench.widgets.layer_table import LayerTable

SIZE = (100, 32)


async def type_into(pilot, widget: Input, text: str) -> None:
    """Clear an input and type `text` into it, key by key."""
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*list(text))
    await pilot.pause()


def screen_text(app) -> str:
    """What the terminal shows now, as plain text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, force_terminal=True)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def types(app) -> list[str]:
    return [layer.type for layer in app.experiment.model.layers]


@pytest.mark.slow
@pilot_test
async def test_add_edit_move_delete_layers_and_see_the_summary(runs_dir: Path):
    """Each edit of the stack is summarised again by Keras, and undo/redo walk back and forth."""
    app = make_app("spiral-mlp", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.summary.total_params == 2 * 32 + 32 + 32 * 32 + 32 + 33

        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, LayerPicker)
        await pilot.press(*"dense", "enter")
        await settle(app, pilot)
        assert types(app) == ["Dense", "Dense", "Dense", "Dense"]
        assert app.experiment.model.layers[1].args["units"] == 32
        assert app.summary.total_params == 96 + 1056 + 1056 + 33
        assert app.screen.query_one(LayerTable).row_count == 4

        screen = app.screen
        assert isinstance(screen, BuilderScreen) and screen.selected == 1
        await type_into(pilot, screen.form.query_one("#field-units", Input), "8")
        await settle(app, pilot)
        assert app.experiment.model.layers[1].args["units"] == 8
        assert app.summary.total_params == 96 + (32 * 8 + 8) + (8 * 32 + 32) + 33
        assert "●" in app.title

        await pilot.press("escape", "J")
        await settle(app, pilot)
        assert [layer.args["units"] for layer in app.experiment.model.layers] == [32, 32, 8, 1]
        assert app.summary.total_params == 96 + 1056 + (32 * 8 + 8) + 9
        assert [row.output_shape for row in app.summary.layers][-2:] == [[8], [1]]

        await pilot.press("d")
        await settle(app, pilot)
        assert [layer.args["units"] for layer in app.experiment.model.layers] == [32, 32, 1]
        assert app.summary.total_params == 96 + 1056 + 33

        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert [layer.args["units"] for layer in app.experiment.model.layers] == [32, 32, 8, 1]
        await pilot.press("ctrl+y")
        await settle(app, pilot)
        assert [layer.args["units"] for layer in app.experiment.model.layers] == [32, 32, 1]

        await pilot.press("c")
        await settle(app, pilot)
        assert [layer.args["units"] for layer in app.experiment.model.layers] == [32, 32, 1, 1]  # the selected one


@pytest.mark.slow
@pilot_test
async def test_impossible_stack_shows_its_error_on_the_offending_layer(runs_dir: Path):
    """A Conv2D after Flatten cannot be built: the error sits on that layer, not a summary."""
    app = make_app("digits-mlp", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.summary is not None and app.summary_error is None
        await pilot.press("a", *"conv2d", "enter")
        await settle(app, pilot)
        assert types(app)[:2] == ["Flatten", "Conv2D"]
        assert app.summary is None
        assert "model.layers[1]" in app.summary_error.location
        table = app.screen.query_one(LayerTable)
        assert table.get_row_index("error:model.layers[1]") == 2  # right under the Conv2D row
        totals = str(app.screen.query_one("#totals", Static).render())
        assert totals.startswith("✗") and "model.layers[1]" in totals
        await pilot.press("d")
        await settle(app, pilot)
        assert app.summary_error is None and app.summary.total_params > 0


@pytest.mark.slow
@pilot_test
async def test_invalid_value_shows_inline_and_cannot_be_saved(runs_dir: Path, tmp_path: Path):
    """Letters in `units` are shown under the field; saving is refused until they are fixed."""
    app = make_app("digits-mlp", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "down")
        await pilot.pause()
        form = app.screen.form
        assert form.entry_name == "Dense" and form.location == "model.layers[2]"
        await type_into(pilot, form.query_one("#field-units", Input), "abc")
        message = str(form.query_one("#error-units", Static).render())
        assert "whole number" in message
        assert app.experiment.model.layers[2].args["units"] == 64  # the Experiment kept its value
        assert app.form_errors

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, PathPrompt)

        await type_into(pilot, form.query_one("#field-units", Input), "-3")
        await settle(app, pilot)
        # Outside the range Keras documents for units: refused under the field, before any build.
        assert "must be > 0 (got -3)" in str(form.query_one("#error-units", Static).render())
        assert app.experiment.model.layers[2].args["units"] == 64
        await type_into(pilot, form.query_one("#field-units", Input), "48")
        assert not app.form_errors
        assert app.experiment.model.layers[2].args["units"] == 48
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PathPrompt)


@pytest.mark.slow
@pilot_test
async def test_pick_a_dataset(runs_dir: Path):
    """Choosing `spiral` in the dataset list edits the Experiment and describes the new data."""
    app = make_app("digits-mlp", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        listing = app.screen.query_one("#data-list", OptionList)
        ids = [listing.get_option_at_index(i).id for i in range(listing.option_count)]
        assert "builtin:digits" in ids and "builtin:spiral" in ids
        listing.focus()
        listing.highlighted = ids.index("builtin:spiral")
        await pilot.press("enter")
        await settle(app, pilot, rounds=3)
        assert app.experiment.data.source == "builtin:spiral"
        assert tuple(app.data_info.input_shape) == (2,)
        info = str(app.screen.query_one("#data-info", Static).render())
        assert "builtin:spiral" in info and "2 classes" in info
        assert set(app.screen.preview["label_counts"]) == {"0", "1"} or len(app.screen.preview["label_counts"]) == 2
        assert "█" in screen_text(app)  # the class balance bars

        batch = app.screen.query_one("#pipe-batch_size", Input)
        await type_into(pilot, batch, "16")
        assert app.experiment.data.batch_size == 16


@pytest.mark.slow
@pilot_test
async def test_change_the_optimizer(runs_dir: Path):
    """Choosing SGD in the setup screen replaces Adam, and its form edits SGD's arguments."""
    app = make_app("digits-mlp", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        select = app.screen.query_one("#optimizer-type", Select)
        select.focus()
        await pilot.press("enter")
        await pilot.pause()
        options = [value for _, value in select._options if value is not Select.NULL]
        steps = options.index("SGD") - options.index("Adam")
        await pilot.press(*["down"] * steps, "enter")
        await settle(app, pilot)
        assert app.experiment.train.optimizer.type == "SGD"
        form = app.screen.forms["optimizer"]
        assert form.entry_name == "SGD"
        await type_into(pilot, form.query_one("#field-momentum", Input), "0.9")
        await type_into(pilot, form.query_one("#field-learning_rate", Input), "0.05")
        assert app.experiment.train.optimizer.args == {"momentum": 0.9, "learning_rate": 0.05}
        await type_into(pilot, app.screen.query_one("#run-epochs", Input), "0")
        assert app.experiment.train.epochs == 20
        assert "run-error" in " ".join(w.id or "" for w in app.screen.query(".run-error"))
        assert app.form_errors


@pytest.mark.slow
@pilot_test
async def test_save_a_preset_and_open_it_back_equal(runs_dir: Path, tmp_path: Path):
    """Save writes the edited Experiment; opening that file gives the same Experiment back."""
    app = make_app("digits-cnn", runs_dir=runs_dir)
    target = tmp_path / "mine.toml"
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        await type_into(pilot, app.screen.query_one("#run-epochs", Input), "7")
        assert app.experiment.train.epochs == 7 and app.dirty
        await pilot.press("ctrl+s")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        await type_into(pilot, prompt.query_one("#prompt-path", Input), str(target))
        await pilot.press("enter")
        await pilot.pause()
        assert target.is_file()
        assert not app.dirty and "●" not in app.title
        saved = load_experiment(target)
        assert saved.to_dict() == app.experiment.to_dict()

        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("tab", "tab")  # past the shipped presets to the path input
        prompt = app.screen
        await type_into(pilot, prompt.query_one("#prompt-path", Input), "digits-mlp")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.experiment.name == "digits-mlp"
        await pilot.press("ctrl+o")
        await pilot.pause()
        await type_into(pilot, app.screen.query_one("#prompt-path", Input), str(target))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.experiment.to_dict() == saved.to_dict()
        assert app.preset_path == target


@pytest.mark.slow
@pilot_test
async def test_start_training_from_the_palette_starts_a_runner(runs_dir: Path):
    """ "Start training" in the command palette switches to Train and a runner process trains."""
    from tfbench.engine import control

    experiment = load_experiment("spiral-mlp", ["train.epochs=50"])
    app = make_app(experiment=experiment, runs_dir=runs_dir)
    run_dir = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Start training")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.5)  # the Train screen's follower runs until the run ends: no settle()
            screen = app.screen
            assert type(screen).__name__ == "TrainingScreen"
            assert screen is app.get_screen("train")
            deadline = time.monotonic() + 60
            while screen.run_dir is None and time.monotonic() < deadline:
                await pilot.pause(0.2)
            run_dir = screen.run_dir
            assert run_dir is not None and Path(run_dir).parent == runs_dir
            while not control.runner_alive(run_dir) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert control.runner_alive(run_dir)
            assert load_experiment(Path(run_dir) / "experiment.toml").to_dict() == experiment.to_dict()
    finally:
        if run_dir is not None and control.runner_alive(run_dir):
            try:
                control.send(run_dir, "stop", timeout=30)
            except Exception:
                pass
            deadline = time.monotonic() + 30
            while control.runner_alive(run_dir) and time.monotonic() < deadline:
                time.sleep(0.2)
    assert run_dir is None or not control.runner_alive(run_dir)
