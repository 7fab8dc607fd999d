"""The Runs screen: selecting runs to compare, opening one, noticing new ones."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from app_pilot import screen_text
from many_runs import make_runs

from tfbench.app import make_app
from tfbench.engine.runs import scan_runs
from tfbench.engine.runs_query import filter_runs
from tfbench.engine_calls import FixedEngineCalls
from tfbench.run_notes import read_notes
from tfbench.screens.runs import RunsScreen, differences_table
from tfbench.screens.training import TrainingScreen
from tfbench.widgets.curves import Curves
from tfbench.widgets.rows_table import RowsTable

FIXTURES = Path(__file__).parent / "fixtures"


async def scanned(pilot, screen: RunsScreen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not screen.scanned:
        assert time.monotonic() < deadline, "the runs were never listed"
        await pilot.pause(0.02)


async def runs_shown(pilot, timeout: float = 10) -> RunsScreen:
    """F5, then wait until the Runs screen has listed its runs."""
    await pilot.press("f5")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await scanned(pilot, screen, timeout)
    return screen


def fixture_runs(tmp_path: Path) -> Path:
    """A copy of the fixture runs folder (the tests write tags and notes into it)."""
    runs_dir = tmp_path / "runs"
    shutil.copytree(FIXTURES / "runs_dir", runs_dir)
    return runs_dir


@pytest.mark.slow
def test_selecting_runs_overlays_their_curves_and_shows_their_differences(tmp_path):
    runs_dir = fixture_runs(tmp_path)
    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await runs_shown(pilot)
            assert len(screen.runs) == 3
            assert [r.name for r in screen.compared_runs()] == [screen.runs[0].name]  # the cursor's run
            await pilot.press("space", "down", "down", "space")
            await pilot.pause()
            assert screen.selected == [screen.runs[0].name, screen.runs[2].name]
            overlay = screen.query_one("#overlay", Curves)
            assert overlay.builds >= 1
            text = screen_text(app)
            assert "optimizer.learn" in text and "0.01" in text and "#2" in text
            await pilot.press("space")  # unselect the third again
            await pilot.pause()
            assert screen.selected == [screen.runs[0].name]

            # A run that appears later shows up on refresh.
            shutil.copytree(runs_dir / screen.runs[0].name, runs_dir / "digits-cnn-20261027-000000")
            screen.scanned = False
            await pilot.press("r")
            await scanned(pilot, screen)
            assert len(screen.runs) == 4

            await pilot.press("up", "up", "up", "enter")
            await pilot.pause(0.2)
            train = app.screen
            assert isinstance(train, TrainingScreen)
            assert train.run_dir == screen.runs[0].path
            deadline = time.monotonic() + 10
            while not train.caught_up:
                assert time.monotonic() < deadline
                await pilot.pause(0.02)
            assert train.state.status == "completed"

    asyncio.run(scenario())


def test_differences_need_two_runs():
    runs = scan_runs(FIXTURES / "runs_dir")
    assert "select two or more" in differences_table(runs[:1]).plain
    table = differences_table(runs)
    assert [c.header for c in table.columns] == ["setting", "#1", "#2", "#3"]


def runs_app(runs_dir: Path):
    return make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())


async def typed(pilot, text: str) -> None:
    for ch in text:
        await pilot.press(ch)
    await pilot.pause()


def shown_names(screen: RunsScreen) -> list[str]:
    return [row.run.name for row in screen.shown]


def test_slash_filters_the_runs_and_a_bad_term_keeps_the_last_good_filter(tmp_path):
    runs_dir = fixture_runs(tmp_path)
    app = runs_app(runs_dir)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await runs_shown(pilot)
            names = [r.name for r in screen.runs]
            await pilot.press("slash")
            await typed(pilot, "status:early")
            assert shown_names(screen) == [names[1]]
            assert "1 of 3 runs" in screen_text(app)
            field = screen.query_one("#prompt-input")
            field.value = "status:early val_accuracy>"  # not finished: an error naming the term, the table as it was
            await pilot.pause()
            text = screen_text(app)
            assert "val_accuracy>: no value after >" in text
            assert shown_names(screen) == [names[1]]
            field.value = "train.optimizer.learning_rate>=1e-3"
            await pilot.pause()
            assert "no value" not in screen_text(app)
            assert shown_names(screen) == names  # every fixture run's rate is at least 1e-3
            field.value = "train.optimizer.learning_rate>1e-3"
            await pilot.pause()
            assert shown_names(screen) == [names[2]]
            await pilot.press("enter")  # the filter stays; the table has the keys again
            assert screen.query_one("#runs").has_focus
            await pilot.press("escape")  # closes the filter line and clears the filter
            await pilot.pause()
            assert shown_names(screen) == names
            assert not screen.query_one("#prompt").display

    asyncio.run(scenario())


def test_sorting_cycles_columns_and_flips_the_order_shown_in_the_header(tmp_path):
    runs_dir = fixture_runs(tmp_path)
    app = runs_app(runs_dir)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await runs_shown(pilot)
            assert "started ▲" in screen_text(app)
            await pilot.press("s", "s", "s")  # started → status → epochs → best
            await pilot.pause()
            assert screen.sort_column == "best"
            by_best = sorted(screen.runs, key=lambda r: r.best_value)
            assert shown_names(screen) == [r.name for r in by_best]
            assert "best val_loss ▲" in screen_text(app)
            await pilot.press("S")
            await pilot.pause()
            assert shown_names(screen) == [r.name for r in reversed(by_best)]
            assert "best val_loss ▼" in screen_text(app)
            assert "by best descending" in screen_text(app)

    asyncio.run(scenario())


def test_tags_and_a_note_set_on_the_runs_screen_land_in_the_run_directory(tmp_path):
    runs_dir = fixture_runs(tmp_path)
    app = runs_app(runs_dir)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await runs_shown(pilot)
            target = screen.runs[1]
            await pilot.press("down", "t")
            await typed(pilot, "baseline small-lr")
            screen.scanned = False
            await pilot.press("enter")
            await scanned(pilot, screen)
            assert read_notes(target.path).tags == ["baseline", "small-lr"]
            assert "baseline small-lr" in screen_text(app)
            await pilot.press("n")
            await typed(pilot, "lr too high")
            screen.scanned = False
            await pilot.press("enter")
            await scanned(pilot, screen)
            assert read_notes(target.path).note == "lr too high"
            assert "note: lr too high" in screen_text(app)
            await pilot.press("t")
            await typed(pilot, " two:words!")
            await pilot.press("enter")
            assert "a tag is one word" in screen_text(app)  # refused inline; nothing written
            assert read_notes(target.path).tags == ["baseline", "small-lr"]
            await pilot.press("escape", "slash")
            await typed(pilot, "tag:baseline")
            assert shown_names(screen) == [target.name]

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_thousand_runs_list_filter_and_sort_in_the_runs_screen(tmp_path):
    runs_dir = tmp_path / "runs"
    make_runs(runs_dir, 1000)
    app = runs_app(runs_dir)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await runs_shown(pilot, timeout=120)
            assert len(screen.shown) == 1000
            await pilot.press("slash")
            query = "status:completed train.optimizer.learning_rate>=1e-3 val_accuracy>0.95"
            screen.query_one("#prompt-input").value = query
            await pilot.pause()
            expected = [r.name for r in filter_runs(screen.runs, query)]
            assert shown_names(screen) == expected and 0 < len(expected) < 1000
            table = screen.query_one(RowsTable)
            await pilot.press("enter", "down", "down")
            chosen = table.cursor_key
            await pilot.press("s", "s", "s")  # sort by best
            await pilot.pause()
            values = [row.run.best_value for row in screen.shown]
            assert values == sorted(values)
            assert table.cursor_key == chosen  # the cursor keeps its run through a new order

    asyncio.run(scenario())
