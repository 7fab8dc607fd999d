"""Pictures of the train screen replaying recorded event logs, and of the Runs screen.

Each replays a fixture log (tests/fixtures/*.jsonl) at 100x32 with the cursor blink off; elapsed
time is measured against the log's last event (no runner is alive), so the pictures never change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tfbench.app import make_app
from tfbench.workbench import FixedWorkbench

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (100, 32)


def _app(**kwargs):
    app = make_app("digits-cnn", workbench=FixedWorkbench(), **kwargs)
    app.blink = False
    return app


async def _replayed(pilot) -> None:
    """Wait until the train screen has read its whole log, then draw the curves."""
    from tfbench.screens.training import TrainingScreen
    from tfbench.widgets.curves import Curves

    for _ in range(200):
        screen = pilot.app.screen
        if isinstance(screen, TrainingScreen) and screen.caught_up:
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the train screen never caught up with its log")
    screen.query_one(Curves).redraw()
    await pilot.pause()


@pytest.mark.parametrize(
    "log",
    ["mid_run_gpu", "mid_run_cpu", "paused", "finished", "early_stopped", "failed_nan"],
)
def test_train_screen_replays(snap_compare, log):
    """The train screen for a run mid-way (with and without a GPU), paused, finished, early-stopped and failed."""
    assert snap_compare(_app(watch=FIXTURES / f"{log}.jsonl"), terminal_size=SIZE, run_before=_replayed)


def test_train_screen_ascii_log_scale(snap_compare):
    """ASCII markers and log-scale axes, for fonts without braille."""

    async def run_before(pilot):
        await _replayed(pilot)
        await pilot.press("a", "g")
        await pilot.pause()

    assert snap_compare(_app(watch=FIXTURES / "finished.jsonl"), terminal_size=SIZE, run_before=run_before)


def test_runs_screen_three_runs(snap_compare):
    """Three runs, two selected: their curves overlaid and their Experiments' differences."""

    async def run_before(pilot):
        from tfbench.screens.runs import RunsScreen

        await pilot.press("f5")
        for _ in range(200):
            if isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.scanned:
                break
            await pilot.pause(0.02)
        await pilot.press("space", "down", "down", "space")
        await pilot.pause()

    assert snap_compare(_app(runs_dir=FIXTURES / "runs_dir"), terminal_size=SIZE, run_before=run_before)
