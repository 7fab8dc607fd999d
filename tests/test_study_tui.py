"""A study from the workbench: ctrl+t opens "New study", its rows are checked as `tfbench tune` checks
them, Start launches the real `tfbench tune` under the runs folder and the Study screen follows its
trials to the end; quitting while it runs asks (stop / leave running / stay) — in the pilot and in a
real terminal at 80×24. Tiny on purpose: the spiral MLP, one epoch, two trials, one worker."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import runner_env
from tmux_terminal import TMUX, Terminal

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens.dialogs import Choice
from tfbench.screens.study import StudyScreen
from tfbench.screens.study_dialog import NewStudyDialog, SpaceRow, entry_of, row_of
from tfbench.spec import load_experiment, save_experiment
from tfbench.study.launch import STUDIES_DIR, launch_state, study_process_running
from tfbench.study.study import StudyDir

SPACE = {
    "train.optimizer.learning_rate": {"float": [1e-4, 1e-2], "log": True},
    "model.layers[0].units": {"int": [8, 64], "step": 8},
    "train.optimizer.type": {"choice": ["Adam", "RMSprop"]},
    "train.optimizer.beta_1": {"float": [0.8, 0.99], "step": 0.01},
    "model.layers[0].use_bias": {"choice": [True, False]},
}


def test_a_presets_space_reads_into_form_rows_and_back_unchanged():
    """Each kind of `[tune.space]` entry, shown as a row's kind and text, reads back as the same entry."""
    rows = {path: row_of(entry) for path, entry in SPACE.items()}
    assert rows["model.layers[0].units"] == ("int", "8, 64, step 8")
    assert rows["train.optimizer.type"] == ("choice", "Adam, RMSprop")
    assert rows["train.optimizer.learning_rate"][0] == "log-float"
    assert {path: entry_of(*row) for path, row in rows.items()} == SPACE


def test_a_tune_process_that_ended_before_its_study_existed_is_explained_by_its_error_line(tmp_path: Path):
    """What the Study screen shows for a started study without `study.toml`: starting, then `tune`'s error."""

    from tfbench.engine.control import launch

    study_dir = tmp_path / "study"
    script = "import time, sys; time.sleep(1); print('error: tune.objective: name a logged metric'); sys.exit(2)"
    process = launch([sys.executable, "-c", script], study_dir)
    assert launch_state(study_dir) == "starting"
    process.wait(timeout=30)
    wait_until(lambda: not study_process_running(study_dir), 10, "the process to be seen gone")
    assert launch_state(study_dir) == "error: tune.objective: name a logged metric"
    (study_dir / "runner.log").write_text("Traceback (most recent call last):\n")
    assert "ended before it opened the study; see" in str(launch_state(study_dir))


async def wait_for(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def spiral_app(runs_dir: Path):
    experiment = load_experiment("spiral-mlp", ["train.epochs=1"])
    return make_app(experiment=experiment, runs_dir=runs_dir, engine_calls=FixedEngineCalls())


async def open_dialog_with_two_trials(app, pilot) -> NewStudyDialog:
    """ctrl+t, then 2 trials in the form (the learning-rate row it suggests is the space)."""
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: isinstance(app.screen, NewStudyDialog), 10, "the New study dialog")
    dialog = app.screen
    dialog.query_one("#study-trials").value = "2"
    await pilot.pause()
    return dialog


@pytest.mark.slow
def test_a_study_started_from_the_workbench_shows_its_trials_finishing_on_the_study_screen(runs_dir: Path):
    app = spiral_app(runs_dir)

    async def scenario() -> Path:
        async with app.run_test(size=(80, 24)) as pilot:
            dialog = await open_dialog_with_two_trials(app, pilot)
            (row,) = dialog.query(SpaceRow)
            assert row.path == "train.optimizer.learning_rate" and row.kind == "log-float"
            values = row.query_one(".space-values")
            values.value = "0, 0.1"  # a log range from 0: refused inline, as `tfbench tune` refuses it
            await pilot.pause()
            assert "log = true needs a lower bound above 0" in str(dialog.row_errors[row])
            await pilot.click("#study-start")
            assert isinstance(app.screen, NewStudyDialog) and not (runs_dir / STUDIES_DIR).exists()
            values.value = "1e-3, 1e-1"
            await pilot.pause()
            assert dialog.row_errors[row] == ""
            await pilot.click("#study-start")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), 10, "the Study screen")
            screen = app.screen
            (study_dir,) = (runs_dir / STUDIES_DIR).iterdir()
            assert screen.study_dir == study_dir
            await pilot.press("ctrl+q")  # the study runs: quitting asks, and Esc stays
            await wait_for(pilot, lambda: isinstance(app.screen, Choice), 10, "the quit question")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, 10, "the Study screen again")
            finished = lambda: screen.snapshot is not None and screen.snapshot["done"] == 2  # noqa: E731
            await wait_for(pilot, finished, 240, "two finished trials on the Study screen")
            assert [r["state"] for r in screen.rows] == ["finished", "finished"]
            await wait_for(pilot, lambda: not study_process_running(study_dir), 60, "tfbench tune to end")
            await pilot.press("ctrl+q")  # nothing runs now: no question
            await pilot.pause()
            assert not isinstance(app.screen, Choice)
            return study_dir

    study_dir = asyncio.run(scenario())
    study = StudyDir.load(study_dir)
    assert len(study.finished()) == 2 and (study_dir / "best.toml").is_file()
    assert [p.path for p in study.settings.params] == ["train.optimizer.learning_rate"]
    assert all(1e-3 <= t.params["train.optimizer.learning_rate"] <= 1e-1 for t in study.trials())


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["d", "s"], ids=["leave-running", "stop"])
def test_quitting_while_a_study_runs_leaves_it_running_or_stops_it_as_answered(runs_dir: Path, answer: str):
    app = spiral_app(runs_dir)

    async def scenario() -> Path:
        async with app.run_test(size=(80, 24)) as pilot:
            await open_dialog_with_two_trials(app, pilot)
            await pilot.click("#study-start")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), 10, "the Study screen")
            study_dir = app.screen.study_dir
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, Choice), 10, "the quit question")
            await pilot.press(answer)
            await pilot.pause()
            return study_dir

    study_dir = asyncio.run(scenario())
    try:
        if answer == "d":
            assert study_process_running(study_dir), "left running, the study outlives the workbench"
        else:
            wait_until(lambda: not study_process_running(study_dir), 60, "the stopped study's process to end")
            driver = study_dir / "tune.json"
            if driver.exists():  # it had begun driving the study: it says it was interrupted
                assert json.loads(driver.read_text())["result"] == "interrupted"
    finally:
        from tfbench.study.launch import stop_study_process

        stop_study_process(study_dir)
        wait_until(lambda: not study_process_running(study_dir), 60, "the study's process to end")


@pytest.mark.slow
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed: this test drives tfbench in a real terminal")
def test_a_study_started_in_a_real_terminal_at_80x24_shows_its_trials(tmp_path: Path):
    """The real `tfbench` in tmux at 80×24: ctrl+t, two trials, Enter starts, the trials finish on screen."""
    save_experiment(load_experiment("spiral-mlp", ["train.epochs=1"]), tmp_path / "spiral.toml")
    command = [sys.executable, "-m", "tfbench", "spiral.toml"]
    env = {**runner_env(), "TMPDIR": str(tmp_path)}
    with Terminal(tmp_path, command, (80, 24), cwd=tmp_path, env=env) as terminal:
        terminal.wait_for("Model F1", timeout=120)
        terminal.keys("C-t")
        terminal.wait_for("New study of spiral-mlp", timeout=30)
        for key in ("Tab", "Tab", "Tab", "Tab", "BSpace", "2"):  # path, kind, values, ✕, then trials: 2
            terminal.keys(key)
            time.sleep(0.3)  # typed, not pasted
        terminal.wait_for("trials 2 ", timeout=30)
        terminal.keys("Enter")
        terminal.wait_for("Stop study", timeout=30)  # the Study screen's footer
        terminal.wait_for("2/2 trials", timeout=240)
        terminal.wait_for("complete", timeout=60)  # the study's line, whole at 80 columns
        screen = terminal.text()
        assert screen.count("finished") == 2, screen
        (study_dir,) = (tmp_path / "runs" / STUDIES_DIR).iterdir()
        wait_until(lambda: not study_process_running(study_dir), 60, "tfbench tune to end")
        terminal.keys("q")
        deadline = time.monotonic() + 30
        while terminal.process.is_running() and terminal.process.status() != "zombie":
            assert time.monotonic() < deadline, f"q did not quit:\n{terminal.text()}"
            time.sleep(0.1)
    assert len(StudyDir.load(study_dir).finished()) == 2
