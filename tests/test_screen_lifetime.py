"""Screens that come and go: timers firing while a screen is taken down, and memory kept per switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens import training
from tfbench.screens.training import TrainingScreen
from tfbench.widgets.curves import Curves

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fast_timers(monkeypatch):
    """The train screen's curve and clock timers firing every millisecond instead of every second."""
    monkeypatch.setattr(training, "CURVE_INTERVAL", 0.001)
    monkeypatch.setattr(training, "CLOCK_INTERVAL", 0.001, raising=False)


def finished_run(runs_dir: Path) -> Path:
    run_dir = runs_dir / "digits-cnn-20260101-000000"
    run_dir.mkdir()
    shutil.copy(FIXTURES / "finished.jsonl", run_dir / "events.jsonl")
    return run_dir


@pilot_test
async def test_a_train_screen_losing_its_widgets_while_its_timers_fire_keeps_the_app(runs_dir: Path, fast_timers):
    """The curves going before their screen does (as on the way out) leaves the timers quiet."""
    app = make_app("digits-cnn", runs_dir=runs_dir, watch=finished_run(runs_dir), engine_calls=FixedEngineCalls())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, TrainingScreen) and screen.state.ended
        await screen.query_one(Curves).remove()
        await pilot.pause(0.1)  # about a hundred ticks of each timer
        assert app.is_running and app.return_code is None
        await pilot.press("f5", "f4", "f1")
        await pilot.pause(0.05)
        assert type(app.screen).__name__ == "BuilderScreen"


@pilot_test
async def test_switching_screens_fast_while_the_train_timers_fire_then_quitting(runs_dir: Path, fast_timers):
    """F4/F5/F1 in quick succession, again and again, then closing the App: no timer finds its
    screen half gone (a `NoMatches` from `_redraw_curves` used to end the App about one time in two)."""
    run_dir = finished_run(runs_dir)
    for _ in range(4):  # the order screens close in on the way out differs from one App to the next
        app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("f4", "f5")
            app.push_screen(TrainingScreen(run_dir))  # one opened from the Runs screen, then closed
            await pilot.pause(0.02)
            await app.pop_screen()
            await pilot.press("f4", "f1")
            await pilot.pause(0.02)
            assert app.screen is app.get_screen("model")
        # Leaving the block closes the App; an error raised by a timer meanwhile is raised here.


def resident_mb() -> float:
    """This process's resident memory after a full collection, in MB."""
    import gc

    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


@pytest.mark.slow  # 200 screen switches: about half a minute on an idle machine
@pilot_test
async def test_switching_screens_does_not_grow_memory(runs_dir: Path):
    """200 switches between Model and Train (F1, F4) keep resident memory within 30 MB of 20
    switches: every rebuilt footer key used to stay reachable, ~1.4 MB a round trip."""
    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)

        async def switch(times: int) -> None:
            for _ in range(times // 2):
                await pilot.press("f4", "f1")
            await settle(app, pilot)
            assert app.screen is app.get_screen("model")

        await switch(20)
        after_20 = resident_mb()
        await switch(180)
        after_200 = resident_mb()
    assert after_200 - after_20 < 30, f"{after_20:.0f} MB after 20 switches, {after_200:.0f} MB after 200"


@pilot_test
async def test_opening_runs_from_the_runs_screen_freezes_nothing_more(runs_dir: Path):
    """Start-up objects are frozen out of the collector once: each train screen opened over the
    Runs screen froze everything alive again, and a frozen object is never collected (~2.4 MB an
    opening, for good)."""
    import gc

    run_dir = finished_run(runs_dir)
    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)

        async def open_and_close(times: int) -> None:
            for _ in range(times):
                app.push_screen(TrainingScreen(run_dir))
                await pilot.pause(0.2)
                await app.pop_screen()
                await pilot.pause()

        await open_and_close(2)
        frozen = gc.get_freeze_count()
        await open_and_close(4)
        assert gc.get_freeze_count() <= frozen
