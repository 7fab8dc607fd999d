"""Screens that come and go: timers firing while a screen is taken down, and memory kept per switch
(in a pilot, and in a real terminal: tmux)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from tmux_terminal import TMUX, Terminal

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens import training
from tfbench.screens.training import NO_CURVES, TrainingScreen
from tfbench.widgets.curves import Curves

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_SHOWN = "Arguments"  # the Model screen's layer table heading
SUMMARY_SHOWN = " params · "  # the Model screen's totals, once Keras has built the model


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pilot_test
async def test_switching_screens_builds_no_new_widgets(runs_dir: Path):
    """Switching between Model and Train (F1, F4) shows the widgets each screen already has: every
    switch rebuilt both screens' footer keys (a dozen widgets each), and Textual's render caches
    kept every widget drawn, ~850 objects a switch until the caches were full (~16 MB)."""
    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)

        async def switch(times: int) -> None:
            for _ in range(times // 2):
                await pilot.press("f4", "f1")
            await settle(app, pilot)
            assert app.screen is app.get_screen("model")

        await switch(4)  # the train screen composed
        screens = [app.get_screen("model"), app.get_screen("train")]
        before = [list(screen.walk_children()) for screen in screens]
        await switch(20)
        for screen, widgets in zip(screens, before):
            new = [widget for widget in screen.walk_children() if not any(widget is old for old in widgets)]
            assert not new, f"{type(screen).__name__}: {len(new)} widgets built anew, {new[:3]}"


@pytest.mark.slow
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed: this test drives tfbench in a real terminal")
def test_a_thousand_screen_switches_in_a_real_terminal_keep_the_tui_within_30_mb(tmp_path: Path):
    """The real `tfbench` in tmux at 100×32, nothing running: after 1,000 switches between Model
    and Train (F1, F4), each waited for on the screen, its resident memory is within 30 MB of what
    it was after 100 (TensorFlow's import and the first summary are done by then)."""
    tfbench = Path(sys.executable).with_name("tfbench")
    command = [str(tfbench)] if tfbench.exists() else [sys.executable, "-m", "tfbench"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its native log too
    with Terminal(tmp_path, command, (100, 32), cwd=tmp_path, env=env) as terminal:
        terminal.wait_for(SUMMARY_SHOWN, timeout=300)  # TensorFlow imported, the model built

        def switch(times: int) -> None:
            for _ in range(times // 2):
                terminal.keys("F4")
                terminal.wait_for(NO_CURVES)
                terminal.keys("F1")
                terminal.wait_for(MODEL_SHOWN)
            terminal.wait_quiet()

        switch(100)
        after_100 = terminal.resident_mb()
        switch(900)
        after_1000 = terminal.resident_mb()
    assert after_1000 - after_100 < 30, f"{after_100:.0f} MB after 100 switches, {after_1000:.0f} MB after 1,000"


@pytest.mark.slow
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
