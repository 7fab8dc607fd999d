"""`tfbench watch RUN_DIR`: the train screen following a log that another process appends to."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from tfbench.app import WorkbenchApp, make_app
from tfbench.engine.events import RunState
from tfbench.screens.training import TrainingScreen
from tfbench.workbench import FixedWorkbench

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


def test_watch_follows_a_log_another_process_is_writing(tmp_path):
    run_dir = tmp_path / "runs" / "digits-cnn-20261026-093320"
    run_dir.mkdir(parents=True)
    (run_dir / "events.jsonl").write_text("")
    source = FIXTURES / "early_stopped.jsonl"
    expected = RunState.from_log(source)
    app = make_app("digits-cnn", runs_dir=run_dir.parent, watch=run_dir, workbench=FixedWorkbench())

    async def scenario():
        async with app.run_test(size=(100, 32)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(run_dir / "events.jsonl"), "0.01"])
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
    from tfbench.cli import cli

    result = CliRunner().invoke(cli, ["watch", str(run_dir), "--no-bell"])
    assert result.exit_code == 0, result.output
    (app,) = opened
    assert app.watch == run_dir and app.runs_dir == tmp_path
    assert app.experiment.name == "digits-cnn"
    assert app.bell_enabled is False
