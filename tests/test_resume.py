"""`tfbench resume`: a killed, stopped or finished run continues to its planned epochs in place."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from tiny_runs import digits_preset, tfbench_here, wait_for_event, write_preset

from tfbench.engine import events as ev
from tfbench.engine.control import read_runner, runner_alive, start_runner
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.rundir import backup_epoch, read_history
from tfbench.spec import load_experiment


def experiment(tmp_path: Path, epochs: int, batch: int = 8):
    """Flatten → softmax on the digits (seed 5), loaded."""
    return load_experiment(write_preset(tmp_path, digits_preset(name="res", epochs=epochs, batch=batch), "res.toml"))


@pytest.fixture
def every_epoch(monkeypatch):
    """Checkpoints and backups at every epoch (the runner processes inherit it)."""
    monkeypatch.setenv("TFBENCH_CHECKPOINT_SECONDS", "0")


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_finishes_the_planned_epochs(tmp_path, runs_dir, every_epoch):
    exp = experiment(tmp_path, epochs=6)
    run_dir = start_runner(exp, runs_dir)
    wait_for_event(run_dir, lambda e: e["event"] == "batch" and e["epoch"] == 3 and e["step"] < 150)
    pid = read_runner(run_dir)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runner_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not runner_alive(run_dir)
    before = ev.read_events(run_dir)
    assert before[-1]["event"] != "run_ended"
    saved = backup_epoch(run_dir)
    assert saved == 2

    result = tfbench_here("resume", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["epochs"] == 6

    events = ev.read_events(run_dir)
    starts = [e for e in events if e["event"] == "run_started"]
    assert [s["resumed"] for s in starts] == [False, True] and starts[1]["initial_epoch"] == saved
    assert events[-1]["event"] == "run_ended" and events[-1]["status"] == "completed"
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4, 5, 6]
    state = ev.RunState.from_events(events)
    assert state.epoch_numbers == [1, 2, 3, 4, 5, 6] and state.status == "completed"
    assert (run_dir / "model.keras").exists()


@pytest.mark.slow
def test_resume_of_a_stopped_run_continues_its_training(tmp_path, runs_dir):
    def stop_in_epoch_two(event):
        if event["event"] == "epoch_ended" and event["epoch"] == 2:
            first.stop()

    exp = experiment(tmp_path, epochs=4, batch=64)
    first = Run(exp, runs_dir=runs_dir, subscribers=[stop_in_epoch_two])
    assert first.train() == "stopped"
    stopped_loss = read_history(first.run_dir)[-1]["loss"]
    done = len(read_history(first.run_dir))

    again = Run(load_experiment(first.run_dir / "experiment.toml"), run_dir=first.run_dir, resume=True)
    assert again.initial_epoch == done
    assert again.train() == "completed"
    rows = read_history(first.run_dir)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    # weights and optimizer state came back: training goes on from where it was, not from scratch
    assert rows[done]["loss"] < stopped_loss


@pytest.mark.slow
def test_resume_refuses_a_finished_run_unless_more_epochs_are_planned(tmp_path, runs_dir):
    exp = experiment(tmp_path, epochs=1, batch=64)
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed"
    with pytest.raises(UserError, match="already finished"):
        Run(exp, run_dir=run.run_dir, resume=True)
    more = Run(exp, run_dir=run.run_dir, resume=True, epochs=2)
    assert more.train() == "completed"
    assert [r["epoch"] for r in read_history(run.run_dir)] == [1, 2]


@pytest.mark.slow
def test_a_finished_runs_backup_holds_its_last_epoch_even_when_best_weights_were_restored(tmp_path, runs_dir):
    """The last backup is written after `fit` returns, from the weights the last epoch ended with."""
    import numpy as np

    from tfbench.rundir import BACKUP_DIR

    # "max" on val_loss makes EarlyStopping's best epoch the worst one, so it restores other weights
    extra = (
        'callbacks = [ { type = "EarlyStopping", monitor = "val_loss", mode = "max", patience = 50, '
        "restore_best_weights = true } ]"
    )
    exp = load_experiment(write_preset(tmp_path, digits_preset(name="bk", epochs=3, batch=64, lr=1e-2, extra=extra)))
    last_epoch_weights = []

    def keep_weights(event):
        if event["event"] == "epoch_ended" and event["epoch"] == 3:
            last_epoch_weights.extend(run.model.get_weights())

    run = Run(exp, runs_dir=runs_dir, subscribers=[keep_weights])
    assert run.train() == "completed"
    assert backup_epoch(run.run_dir) == 3
    restored = run.model.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(restored, last_epoch_weights))  # EarlyStopping restored
    run.model.load_weights(run.run_dir / BACKUP_DIR / "latest.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(run.model.get_weights(), last_epoch_weights))


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    exp = experiment(tmp_path, epochs=1)
    with pytest.raises(UserError, match="not a run directory"):
        Run(exp, run_dir=tmp_path, resume=True)


@pytest.mark.slow
def test_detached_resume_continues_in_the_background(tmp_path, runs_dir):
    def stop_after_epoch_one(event):
        if event["event"] == "epoch_ended" and event["epoch"] == 1:
            first.stop()

    first = Run(experiment(tmp_path, epochs=3, batch=64), runs_dir=runs_dir, subscribers=[stop_after_epoch_one])
    assert first.train() == "stopped"
    result = tfbench_here("resume", first.run_dir, "--detach")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == first.run_dir
    end = wait_for_event(first.run_dir, lambda e: e["event"] == "run_ended" and e["status"] == "completed")
    assert end["epochs_completed"] == 3
    assert [r["epoch"] for r in read_history(first.run_dir)] == [1, 2, 3]
