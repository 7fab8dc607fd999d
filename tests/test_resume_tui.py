"""Resume from the workbench: a run started with Ctrl+R, stopped with x (and its question), resumed
with r on the Train screen, continues in its own directory to its planned epochs, losing no epoch
and repeating none — in the pilot and in a real terminal at 80×24."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import runner_env
from tmux_terminal import TMUX, Terminal

from tfbench.app import make_app
from tfbench.engine.control import runner_alive
from tfbench.engine.events import read_events
from tfbench.engine_calls import FixedEngineCalls
from tfbench.rundir import read_history
from tfbench.screens.dialogs import Confirm
from tfbench.spec import load_experiment, save_experiment

pytestmark = pytest.mark.slow
EPOCHS = 150  # ~0.1 s an epoch: long enough to stop mid-way, short enough to finish


async def wait_for(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def assert_history_whole(run_dir: Path, epochs: int) -> None:
    """history.csv and the log's ended epochs hold every epoch once; the log has both starts."""
    assert [row["epoch"] for row in read_history(run_dir)] == list(range(1, epochs + 1))
    events = read_events(run_dir)
    starts = [e for e in events if e["event"] == "run_started"]
    assert [s["resumed"] for s in starts] == [False, True]
    ended = [e["status"] for e in events if e["event"] == "run_ended"]
    assert ended == ["stopped", "completed"]
    kept = starts[1]["initial_epoch"]
    first = [e["epoch"] for e in events[: events.index(starts[1])] if e["event"] == "epoch_ended"]
    second = [e["epoch"] for e in events[events.index(starts[1]) :] if e["event"] == "epoch_ended"]
    assert first[:kept] == list(range(1, kept + 1)) and second == list(range(kept + 1, epochs + 1))


def test_stop_then_resume_from_the_train_screen_continues_the_history(runs_dir: Path):
    experiment = load_experiment("spiral-mlp", [f"train.epochs={EPOCHS}"])
    app = make_app(experiment=experiment, runs_dir=runs_dir, engine_calls=FixedEngineCalls())

    async def scenario() -> Path:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+r")
            screen = app.get_screen("train")
            await wait_for(pilot, lambda: len(screen.state.epoch_numbers) >= 2, 120, "two epochs")
            await pilot.press("r")  # a running run does not resume
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, Confirm)
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.state.status == "stopped", 60, "the stop")
            stopped_at = len(screen.state.epoch_numbers)
            assert stopped_at < EPOCHS
            await wait_for(pilot, lambda: not runner_alive(screen.run_dir), 30, "the runner to exit")
            await pilot.press("r")
            await wait_for(pilot, lambda: screen.state.running, 120, "the resumed runner")
            assert screen.owns_runner
            await wait_for(pilot, lambda: screen.state.status == "completed", 180, "the resumed run to finish")
            assert screen.state.epoch_numbers == list(range(1, EPOCHS + 1))
            return screen.run_dir

    run_dir = asyncio.run(scenario())
    assert_history_whole(run_dir, EPOCHS)
    assert len(list(runs_dir.iterdir())) == 1  # resumed in place, not a new run


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed: this test drives tfbench in a real terminal")
def test_stop_and_resume_in_a_real_terminal_at_80x24(tmp_path: Path):
    """The real `tfbench` in tmux at 80×24: Ctrl+R, x then y, r, and the run completes in place."""
    runs = tmp_path / "runs"  # the workbench's runs folder: ./runs
    save_experiment(load_experiment("spiral-mlp", [f"train.epochs={EPOCHS}"]), tmp_path / "spiral.toml")
    command = [sys.executable, "-m", "tfbench", "spiral.toml"]
    env = {**runner_env(), "TMPDIR": str(tmp_path)}
    with Terminal(tmp_path, command, (80, 24), cwd=tmp_path, env=env) as terminal:
        terminal.wait_for("Model F1", timeout=120)
        terminal.keys("C-r")
        terminal.wait_for("epoch 2/", timeout=180)
        terminal.keys("x")
        terminal.wait_for("Keep training", timeout=30)
        terminal.keys("y")
        terminal.wait_for("STOPPED", timeout=60)
        (run_dir,) = runs.iterdir()
        deadline = time.monotonic() + 30
        while runner_alive(run_dir):
            assert time.monotonic() < deadline, "the stopped runner did not exit"
            time.sleep(0.2)
        terminal.keys("r")
        terminal.wait_for("COMPLETED", timeout=240)
        terminal.keys("q")
        deadline = time.monotonic() + 30
        while terminal.process.is_running() and terminal.process.status() != "zombie":
            assert time.monotonic() < deadline, f"q did not quit:\n{terminal.text()}"
            time.sleep(0.1)
    assert_history_whole(run_dir, EPOCHS)
