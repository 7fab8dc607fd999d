"""`tfbench watch RUN_DIR`: the train screen following a log that another process appends to."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tfbench.app import WorkbenchApp, make_app
from tfbench.engine.events import RunState
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens.training import TrainingScreen

FIXTURES = Path(__file__).parent / "fixtures"

# Appends a recorded log line by line, a few milliseconds apart, like a runner would.
WRITER = """
import sys, time
source, target, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(source) as src, open(target, "a") as out:
    for line in src:
        out.write(line)
        out.flush()
        time.sleep(delay)
"""


@pytest.mark.slow
def test_watch_follows_a_log_another_process_is_writing(tmp_path):
    run_dir = tmp_path / "runs" / "digits-cnn-20261026-093320"
    run_dir.mkdir(parents=True)
    (run_dir / "events.jsonl").write_text("")
    source = FIXTURES / "early_stopped.jsonl"
    expected = RunState.from_log(source)
    app = make_app("digits-cnn", runs_dir=run_dir.parent, watch=run_dir, engine_calls=FixedEngineCalls())

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(source), str(run_dir / "events.jsonl"), "0.01"]
            )
            try:
                seen_running = False
                deadline = time.monotonic() + 60
                while not screen.state.ended:
                    assert time.monotonic() < deadline, "the watch never saw the run end"
                    seen_running |= screen.state.status == "running" and 0 < len(screen.state.epoch_numbers) < 11
                    await pilot.pause(0.05)
            finally:
                writer.wait(timeout=30)
            assert seen_running, "the screen only caught up at the end instead of following along"
            assert screen.state.status == "early_stopped"
            assert screen.state.history == expected.history
            assert not screen.owns_runner  # a watched run is never stopped by leaving the view

    asyncio.run(scenario())


def test_cli_watch_opens_the_app_on_the_run(monkeypatch, tmp_path):
    run_dir = tmp_path / "digits-cnn-20261026-093320"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text((FIXTURES / "finished.jsonl").read_text())
    (run_dir / "experiment.toml").write_text(
        (FIXTURES / "runs_dir" / "digits-cnn-20261026-093320" / "experiment.toml").read_text()
    )
    opened = []
    monkeypatch.setattr(WorkbenchApp, "run", lambda self, *a, **k: opened.append(self))
    from tfbench import cli as cli_module
    from tfbench.cli import cli

    monkeypatch.setattr(cli_module, "stdout_is_a_terminal", lambda: True)  # CliRunner's output is not one

    result = CliRunner().invoke(cli, ["watch", str(run_dir), "--no-bell"])
    assert result.exit_code == 0, result.output
    (app,) = opened
    assert app.watch_dir == run_dir and app.runs_dir == tmp_path
    assert callable(app.watch)  # Textual's watcher is still the App's own, not shadowed by the run folder
    assert app.experiment.name == "digits-cnn"
    assert app.bell_enabled is False


def dead_runner(run_dir: Path) -> None:
    """A `runner.json` naming a process that has exited (as after kill -9)."""
    import json

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run_dir / "runner.json").write_text(json.dumps({"pid": gone.pid, "create_time": time.time() - 60}))


def cut_run(tmp_path: Path) -> Path:
    """A run whose log lost its `run_ended` line and whose runner is dead."""
    run_dir = tmp_path / "digits-cnn-20261026-093320"
    run_dir.mkdir()
    lines = (FIXTURES / "finished.jsonl").read_text().splitlines(keepends=True)
    assert '"run_ended"' in lines[-1]
    (run_dir / "events.jsonl").write_text("".join(lines[:-1]))
    dead_runner(run_dir)
    return run_dir


def watch_plainly(run_dir: Path) -> subprocess.CompletedProcess:
    """`tfbench watch RUN` with its output going to a pipe, not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "tfbench", "watch", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )


def test_watch_without_a_terminal_prints_plain_lines_and_exits_when_the_run_ended(tmp_path):
    run_dir = tmp_path / "digits-cnn-20261026-093320"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text((FIXTURES / "finished.jsonl").read_text())
    expected = RunState.from_log(run_dir / "events.jsonl")
    result = watch_plainly(run_dir)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == len(expected.epoch_numbers)
    assert lines[-1].startswith(f"run {expected.status}")


def test_watch_without_a_terminal_ends_on_a_cut_log_whose_runner_is_dead(tmp_path):
    run_dir = cut_run(tmp_path)
    result = watch_plainly(run_dir)
    assert result.returncode == 1, result.stderr
    assert "\x1b" not in result.stdout
    assert "epoch " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("run interrupted: its runner is gone")


def test_the_train_screen_marks_a_run_whose_runner_died_interrupted(tmp_path, monkeypatch):
    """A log without its end and a dead runner is not shown RUNNING forever."""
    from app_pilot import screen_text

    from tfbench.screens import training

    monkeypatch.setattr(training, "CLOCK_INTERVAL", 0.05)
    run_dir = cut_run(tmp_path)
    app = make_app("digits-cnn", runs_dir=run_dir.parent, watch=run_dir, engine_calls=FixedEngineCalls())

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = app.screen
            deadline = time.monotonic() + 20
            while screen.state.status != "interrupted":
                assert time.monotonic() < deadline, f"still {screen.state.status}"
                await pilot.pause(0.05)
            await pilot.pause()
            text = screen_text(app)
            assert "INTERRUPTED" in text and "RUNNING" not in text
            assert "tfbench resume" in text

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_run_with_stdout_closed_trains_and_saves(tmp_path):
    """`tfbench run … >&-`: no stdout at all, yet the run trains, saves and exits 0."""
    import shlex

    runs = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "tfbench",
        "run",
        "spiral-mlp",
        "--set",
        "train.epochs=1",
        "--set",
        "export.formats=[]",
        "--runs-dir",
        str(runs),
    ]
    result = subprocess.run(
        ["sh", "-c", shlex.join(command) + " >&-"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = runs.iterdir()
    assert (run_dir / "model.keras").is_file()
