"""The train screen driving a real runner process: a tiny model trained to the end, and one
paused, resumed and stopped mid-run through the control channel."""

from __future__ import annotations

import asyncio
import time

import pytest
from app_pilot import screen_text

from tfbench.app import make_app
from tfbench.engine.control import runner_alive
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens.run_dialogs import EditRunDialog, ExportDialog
from tfbench.screens.training import TrainingScreen
from tfbench.spec import load_experiment

pytestmark = pytest.mark.slow


async def wait_for(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def spiral_app(runs_dir, epochs: int):
    """The App on the shipped spiral MLP, trained for `epochs`, with runs in `runs_dir`."""
    experiment = load_experiment("spiral-mlp", [f"train.epochs={epochs}"])
    return make_app(experiment=experiment, runs_dir=runs_dir, engine_calls=FixedEngineCalls())


async def start_training(app, pilot) -> TrainingScreen:
    """Ctrl+R, then wait until the runner is through its first batch."""
    await pilot.press("ctrl+r")
    screen = app.get_screen("train")
    await wait_for(pilot, lambda: screen.state.status == "running" and screen.state.step > 0, 120, "training to start")
    return screen


def wait_until_runner_exits(run_dir, what: str) -> None:
    deadline = time.monotonic() + 30
    while runner_alive(run_dir):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_trains_spiral_mlp_to_completion_through_the_runner(runs_dir):
    """Ctrl+R starts a runner; the screen follows it to the end and evaluates the classifier."""
    app = spiral_app(runs_dir, epochs=2)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("ctrl+r")
            screen = app.get_screen("train")
            assert isinstance(screen, TrainingScreen) and app.screen is screen
            await wait_for(pilot, lambda: screen.state.ended, 120, "the run to end")
            assert screen.owns_runner
            assert screen.state.status == "completed", screen.state.reason
            assert screen.state.epoch_numbers == [1, 2]
            assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(screen.state.history)
            assert "COMPLETED" in str(screen.query_one("#progress").render())
            await wait_for(pilot, lambda: screen.evaluation is not None, 90, "the evaluation")
            assert screen.evaluation["label_kind"] == "binary"
            assert sum(map(sum, screen.evaluation["confusion"])) == screen.evaluation["samples"]
            await pilot.press("v")
            await pilot.pause()
            assert "confusion" in screen_text(app).lower()
            await pilot.press("escape")
            await pilot.press("e")  # the export dialog, for an ended run
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ExportDialog)
            assert list(dialog.query_one("#formats").selected) == ["keras"]  # the preset's formats
            dialog.query_one("#export").press()
            await wait_for(pilot, lambda: not dialog.query_one("#export").disabled, 90, "the export")
            await pilot.pause()
            report = screen_text(app)
            assert "export verification" in report and "keras" in report and "failed" not in report, report
            return screen.run_dir

    run_dir = asyncio.run(scenario())
    assert (run_dir / "model.keras").exists()
    assert (run_dir / "exports" / "report.json").exists()
    assert run_dir.parent == runs_dir


def test_pauses_resumes_edits_and_stops_a_run_mid_way(runs_dir):
    """p pauses and resumes the runner, l changes its learning rate and epochs, x stops it; the
    run ends as stopped, not failed."""
    app = spiral_app(runs_dir, epochs=200)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("ctrl+r")
            screen = app.get_screen("train")
            await wait_for(pilot, lambda: len(screen.state.epoch_numbers) >= 1, 120, "the first epoch")
            await pilot.press("p")
            await wait_for(pilot, lambda: screen.state.status == "paused", 30, "the pause")
            await pilot.press("p")
            await wait_for(pilot, lambda: screen.state.status == "running", 30, "the resume")
            await pilot.press("l")  # mid-run edits: learning rate and epochs, through the dialog
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, EditRunDialog)
            dialog.query_one("#lr").value = "0.005"
            dialog.query_one("#epochs").value = "150"
            dialog.query_one("#epochs").focus()
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: (
                    screen.state.epochs == 150 and any("learning_rate" in line.message for line in screen.state.log)
                ),
                30,
                "the edits",
            )
            assert any("0.005" in line.message for line in screen.state.log)
            await pilot.press("x")  # asks first: n keeps it training
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause(0.5)
            assert screen.state.running
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: screen.state.ended, 60, "the stop")
            assert screen.state.status == "stopped"
            assert len(screen.state.epoch_numbers) < 200
            return screen.run_dir

    wait_until_runner_exits(asyncio.run(scenario()), "the runner did not exit after stopping")


def test_leaving_the_app_stops_the_runner_it_started(runs_dir):
    """Quitting without "detach" does not leave a runner training in the background."""
    app = spiral_app(runs_dir, epochs=200)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await start_training(app, pilot)
            return screen.run_dir

    wait_until_runner_exits(asyncio.run(scenario()), "the runner kept going after the app quit")


def test_detach_leaves_the_runner_training(runs_dir):
    """Ctrl+D asks, then quits the App and leaves the run going; `tfbench watch` can pick it up again."""
    from tfbench.engine import control

    app = spiral_app(runs_dir, epochs=200)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await start_training(app, pilot)
            await pilot.press("ctrl+d")
            await pilot.pause()
            assert app.is_running  # asked first
            await pilot.press("y")
            await pilot.pause()
            return screen.run_dir

    run_dir = asyncio.run(scenario())
    try:
        time.sleep(1.0)
        assert runner_alive(run_dir), "a detached runner must keep training"
    finally:
        control.send(run_dir, "stop", timeout=60)


def test_quitting_during_a_run_asks_then_stops_it(runs_dir):
    """Ctrl+Q while the App's own run trains asks; Escape stays (the run goes on), "s" stops the
    run (saved, `stopped`) and quits."""
    from tfbench.engine.events import read_events
    from tfbench.screens.dialogs import Choice

    app = spiral_app(runs_dir, epochs=200)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await start_training(app, pilot)
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, Choice) and app.is_running
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen and app.is_running
            step = screen.state.step, len(screen.state.epoch_numbers)
            await wait_for(
                pilot,
                lambda: (screen.state.step, len(screen.state.epoch_numbers)) != step,
                30,
                "the run to go on after staying",
            )
            assert runner_alive(screen.run_dir)
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause()
            assert not app.is_running
            return screen.run_dir

    run_dir = asyncio.run(scenario())
    wait_until_runner_exits(run_dir, "the runner kept going after 'stop it and quit'")
    ended = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "run_ended"]
    assert [e["status"] for e in ended] == ["stopped"]


def test_quitting_during_a_run_can_leave_it_running_for_watch(runs_dir):
    """Ctrl+Q, then "d": the App quits saying how to follow the run, the runner keeps training,
    and a new App watching the run directory sees it going."""
    from tfbench.engine import control

    app = spiral_app(runs_dir, epochs=200)

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await start_training(app, pilot)
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            assert not app.is_running
            return screen.run_dir

    async def watch(run_dir):
        watcher = make_app("spiral-mlp", runs_dir=runs_dir, watch=run_dir, engine_calls=FixedEngineCalls())
        async with watcher.run_test(size=(100, 32)) as pilot:
            screen = watcher.screen
            await wait_for(pilot, lambda: screen.caught_up and screen.state.running, 30, "the watcher to catch up")
            epochs = len(screen.state.epoch_numbers)
            await wait_for(pilot, lambda: len(screen.state.epoch_numbers) > epochs, 60, "a new epoch while watched")

    run_dir = asyncio.run(scenario())
    try:
        assert runner_alive(run_dir), "a run left running must keep training after the App quit"
        asyncio.run(watch(run_dir))
        assert runner_alive(run_dir)
    finally:
        control.send(run_dir, "stop", timeout=60)
    wait_until_runner_exits(run_dir, "the runner did not stop when asked")
