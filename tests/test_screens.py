"""The workbench's pieces: keyboard navigation, watch mode, NO_COLOR, import, forms and previews."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from rich.console import Console
from textual.widgets import Input, OptionList, Select
from tiny_runs import spiral_info

from tfbench.app import make_app
from tfbench.data.info import DataInfo
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict
from tfbench.widgets.form import format_value, parse_value
from tfbench.widgets.layer_table import format_shape, key_params
from tfbench.widgets.preview import balance_bars, half_block_image

FIXTURES = Path(__file__).parent / "fixtures"
SPIRAL = spiral_info()


def render_text(renderable, width: int = 80) -> str:
    console = Console(width=width, record=True, file=None, force_terminal=False, color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


# -- the App ------------------------------------------------------------------------------------


@pytest.mark.slow
@pilot_test
async def test_function_keys_reach_every_screen_at_80x24(runs_dir: Path):
    """Keyboard alone: F1–F5 switch screens, the tabs follow, and F1 comes back to the builder."""
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        seen = []
        for key in ("f2", "f3", "f4", "f5", "f1"):
            await pilot.press(key)
            await settle(app, pilot)
            seen.append(type(app.screen).__name__)
        assert seen == ["DatasetScreen", "SetupScreen", "TrainingScreen", "RunsScreen", "BuilderScreen"]
        assert app.screen is app.get_screen("model")


@pilot_test
async def test_palette_names_every_action(runs_dir: Path):
    """Every action has a plainly named command palette entry."""
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
    for title in (
        "Start training",
        "Save preset",
        "Open preset",
        "Export model",
        "Add layer",
        "Undo",
        "Redo",
        "Import layers from a .keras model",
        "Show dataset picker",
        "Show runs",
    ):
        assert title in titles


@pilot_test
async def test_watch_opens_the_train_screen_on_a_run(runs_dir: Path):
    """`tfbench watch RUN` opens on the Train screen following that run's log."""
    run_dir = runs_dir / "digits-cnn-20260101-000000"
    run_dir.mkdir()
    shutil.copy(FIXTURES / "finished.jsonl", run_dir / "events.jsonl")
    app = make_app("digits-cnn", runs_dir=runs_dir, watch=run_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(20):
            await pilot.pause(0.1)
            if app.screen.state.ended:
                break
        assert type(app.screen).__name__ == "TrainingScreen"
        assert Path(app.screen.run_dir) == run_dir
        assert app.screen.state.status == "completed"
        assert app.summary is None  # no Keras work is started for a watched run


@pytest.mark.slow
@pilot_test
async def test_no_color_draws_samples_with_shades(runs_dir: Path, monkeypatch):
    """Under NO_COLOR the preview draws grey levels as shade characters instead of colours."""
    monkeypatch.setenv("NO_COLOR", "1")
    info = DataInfo(
        source="builtin:digits",
        input_shape=(8, 8, 1),
        label_kind="categorical",
        num_classes=2,
        class_names=["a", "b"],
        sizes={"train": 2},
    )
    picture = [[[float((x + y) % 8)] for x in range(8)] for y in range(8)]
    engine_calls = FixedEngineCalls(
        info=info, preview_data={"samples": [{"x": picture, "y": 0, "label": "a"}], "label_counts": {"a": 1, "b": 1}}
    )
    app = make_app("digits-mlp", runs_dir=runs_dir, engine_calls=engine_calls)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        assert app.no_color
        from tfbench.screens.dataset import render_preview

        drawn = render_text(render_preview(app.screen.preview, info, colour=not app.no_color))
        assert "▀" not in drawn and any(ch in drawn for ch in "░▒▓█")


@pytest.mark.slow
@pilot_test
async def test_import_layers_from_a_keras_model(runs_dir: Path, tmp_path: Path):
    """Import replaces the stack with a Sequential .keras model's layers (read by Keras in a worker)."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(1)])
    path = tmp_path / "tiny.keras"
    model.save(path)
    app = make_app("spiral-mlp", runs_dir=runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("I")
        await pilot.pause()
        field = app.screen.query_one("#prompt-path", Input)
        field.value = str(path)
        await pilot.press("enter")
        await settle(app, pilot)
        layers = app.experiment.model.layers
        assert [layer.type for layer in layers] == ["Dense", "Dense"]
        assert layers[0].args["units"] == 5 and layers[0].args["activation"] == "tanh"
        assert app.summary.total_params == 2 * 5 + 5 + 5 + 1
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert len(app.experiment.model.layers) == 3


@pytest.mark.slow
@pilot_test
async def test_setup_offers_losses_for_the_label_kind_and_edits_callbacks(runs_dir: Path):
    """Binary labels get binary losses; callbacks are added, edited and removed."""
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        screen = app.screen
        losses = [value for _, value in screen.query_one("#loss", Select)._options]
        assert "binary_crossentropy" in losses and "sparse_categorical_crossentropy" not in losses
        adder = screen.query_one("#callback-add", Select)
        adder.value = "ReduceLROnPlateau"
        await settle(app, pilot)
        assert [c.type for c in app.experiment.train.callbacks] == ["ReduceLROnPlateau"]
        form = screen.forms["callback"]
        assert form.entry_name == "ReduceLROnPlateau"
        form.query_one("#field-patience", Input).value = "4"
        await settle(app, pilot)
        assert app.experiment.train.callbacks[0].args == {"patience": 4}
        screen.query_one("#callbacks", OptionList).focus()
        await pilot.press("x")
        await settle(app, pilot)
        assert app.experiment.train.callbacks == []


@pytest.mark.slow
@pilot_test
async def test_ticking_a_metric_on_the_setup_screen_adds_it_to_the_experiment(runs_dir: Path):
    """The metrics list edits `train.metrics`, keeping the metrics written as tables."""
    from textual.widgets import SelectionList

    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        metrics = app.screen.query_one("#metrics", SelectionList)
        offered = [metrics.get_option_at_index(i).value for i in range(metrics.option_count)]
        choice = next(value for value in offered if value not in metrics.selected)
        metrics.select(choice)
        await settle(app, pilot)
        assert choice in app.experiment.train.metrics


# -- pieces -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,text,value",
    [
        ("int", "12", 12),
        ("float", "1e-3", 0.001),
        ("bool", "true", True),
        ("int_or_tuple", "3", 3),
        ("int_or_tuple", "3, 5", [3, 5]),
        ("int_or_tuple", "(2,2)", [2, 2]),
        ("list", "1, 2", [1, 2]),
        ("str", "same", "same"),
        ("any", "0.5", 0.5),
    ],
)
def test_parse_value(kind, text, value):
    assert parse_value(kind, text) == value


@pytest.mark.parametrize(
    "kind,text", [("int", "1.5"), ("int", "x"), ("float", "fast"), ("bool", "maybe"), ("int_or_tuple", "3, x")]
)
def test_parse_value_rejects(kind, text):
    with pytest.raises(ValueError):
        parse_value(kind, text)


def test_table_text():
    assert key_params({"filters": 32, "kernel_size": [3, 3], "activation": "relu"}) == "32 k=3x3 relu"
    assert format_value([3, 3]) == "3, 3" and format_value(True) == "true"
    assert format_shape([None, 8, 8, 32]) == "8×8×32" and format_shape([10]) == "10"


def test_half_blocks_and_balance_bars():
    picture = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    drawn = half_block_image(picture, colour=True)
    assert drawn.plain == "▀▀\n▀▀"  # three pixel rows fold into two character rows
    bars = render_text(balance_bars({"cat": 10, "dog": 5}, width=10))
    lines = bars.splitlines()
    assert lines[0].count("█") == 10 and lines[1].count("█") == 5 and lines[1].rstrip().endswith("5")


def test_fixed_workbench_fails_like_an_impossible_stack():
    exp = experiment_from_dict(
        {"model": {"layers": [{"type": "Dense", "units": 3}, {"type": "Conv2D", "filters": 2, "kernel_size": 3}]}}
    )
    bench = FixedEngineCalls(info=SPIRAL, failing=("Conv2D",))
    with pytest.raises(Exception) as caught:
        bench.summarize(exp)
    assert caught.value.location == "model.layers[1]"


@pytest.mark.slow
@pilot_test
async def test_browse_for_a_data_file(runs_dir: Path, tmp_path: Path, monkeypatch):
    """The file browser picks a CSV file and makes it the data source, kind and all."""
    work = tmp_path / "work"
    (work / "tables").mkdir(parents=True)
    (work / "tables" / "points.csv").write_text("x,y,label\n1,2,0\n")
    monkeypatch.chdir(work)
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "FileBrowser"
        await pilot.press("down", "enter")  # open the folder
        await settle(app, pilot)
        await pilot.press("down", "enter")  # choose the file in it
        await settle(app, pilot)
        # The shell's relative path, made absolute so a run records where its data is.
        assert app.experiment.data.source == f"csv:{work / 'tables' / 'points.csv'}"
        assert app.screen.query_one("#file-path", Input).value == str(Path("tables") / "points.csv")


@pytest.mark.slow
@pilot_test
async def test_quit_with_unsaved_edits_asks_first(runs_dir: Path):
    """ctrl+q after an edit asks; "n" stays, "y" quits."""
    from tfbench.screens.dialogs import Confirm

    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running  # nothing edited: quits at once
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=SPIRAL))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await settle(app, pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, Confirm)
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert not app.is_running
