"""The Runs screen: selecting runs to compare, opening one, noticing new ones."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from app_pilot import screen_text

from tfbench.app import make_app
from tfbench.engine.runs import scan_runs
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens.runs import RunsScreen, differences_table
from tfbench.screens.training import TrainingScreen
from tfbench.widgets.curves import Curves

FIXTURES = Path(__file__).parent / "fixtures"


async def scanned(pilot, screen: RunsScreen) -> None:
    deadline = time.monotonic() + 10
    while not screen.scanned:
        assert time.monotonic() < deadline, "the runs were never listed"
        await pilot.pause(0.02)


@pytest.mark.slow
def test_selecting_runs_overlays_their_curves_and_shows_their_differences(tmp_path):
    runs_dir = tmp_path / "runs"
    shutil.copytree(FIXTURES / "runs_dir", runs_dir)
    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("f5")
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            await scanned(pilot, screen)
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
