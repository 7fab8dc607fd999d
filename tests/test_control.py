"""Reaching runner processes: detached runs, the control channel, signals and stale channels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from tiny_runs import runner_env, spiral_preset, wait_for_event, write_preset

from tfbench.engine import events as ev
from tfbench.engine.control import read_runner, runner_alive, send, start_runner
from tfbench.errors import UserError
from tfbench.rundir import read_history
from tfbench.spec import load_experiment


def ctl_preset(tmp_path: Path, name="ctl", epochs=3, batch=32) -> Path:
    """The spiral MLP (seed 3) written as `NAME.toml`."""
    return write_preset(tmp_path, spiral_preset(name=name, epochs=epochs, batch=batch, seed=3), f"{name}.toml")


@contextmanager
def headless_run(preset: Path, runs_dir: Path, *args: str):
    """`tfbench run PRESET` in a child process (text pipes, cwd beside the preset); killed if left running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfbench", "run", str(preset), "--runs-dir", str(runs_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runner_env(),
        cwd=preset.parent,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_detached_run_outlives_its_launcher_and_obeys_the_channel(tmp_path, runs_dir):
    preset = ctl_preset(tmp_path, epochs=400, batch=8)
    launcher = subprocess.run(
        [sys.executable, "-m", "tfbench", "run", str(preset), "--detach", "--runs-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert launcher.returncode == 0, launcher.stderr
    run_dir = Path(launcher.stdout.strip())
    assert run_dir.parent == runs_dir and (run_dir / "experiment.toml").exists()
    # the launcher has exited; the runner, in its own session, trains on
    wait_for_event(run_dir, lambda e: e["event"] == "epoch_ended" and e["epoch"] >= 1)
    record = read_runner(run_dir)
    assert runner_alive(run_dir) and os.getsid(record["pid"]) != os.getsid(0)

    ack = send(run_dir, "pause", timeout=30)
    assert ack["ok"] and ack["event"]["event"] == "paused"
    done = len([e for e in ev.read_events(run_dir) if e["event"] == "epoch_ended"])
    time.sleep(1.0)
    assert len([e for e in ev.read_events(run_dir) if e["event"] == "epoch_ended"]) == done
    assert send(run_dir, "pause")["note"] == "already paused"

    ack = send(run_dir, "set", learning_rate=1e-3)
    assert ack["event"]["name"] == "learning_rate" and ack["event"]["new"] == 1e-3
    ack = send(run_dir, "set", learning_rate=2e-3, epochs=300)
    assert [a["event"]["name"] for a in ack["acks"]] == ["learning_rate", "epochs"]
    assert ack["event"]["old"] == 400 and ack["event"]["new"] == 300
    with pytest.raises(UserError, match="positive"):
        send(run_dir, "set", learning_rate=-1)

    assert send(run_dir, "unpause")["event"]["event"] == "resumed"
    ack = send(run_dir, "stop", timeout=60)
    assert ack["event"]["event"] == "run_ended" and ack["event"]["status"] == "stopped"

    deadline = time.monotonic() + 30
    while runner_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not runner_alive(run_dir)
    assert read_runner(run_dir)["exit_code"] == 130
    assert (run_dir / "checkpoints" / "last.keras").exists() and read_history(run_dir)
    with pytest.raises(UserError, match="already ended"):
        send(run_dir, "pause", timeout=5)


@pytest.mark.slow
def test_start_runner_returns_the_run_dir_and_the_run_completes(tmp_path, runs_dir):
    exp = load_experiment(ctl_preset(tmp_path, name="bg", epochs=2))
    run_dir = start_runner(exp, runs_dir)
    assert run_dir.is_dir() and read_runner(run_dir)["pid"]
    end = wait_for_event(run_dir, lambda e: e["event"] == "run_ended")
    assert end["status"] == "completed" and end["epochs_completed"] == 2
    assert load_experiment(run_dir / "experiment.toml") == exp


@pytest.mark.slow
def test_runner_with_a_bad_preset_records_the_failure(tmp_path, runs_dir):
    exp = load_experiment(ctl_preset(tmp_path, name="bad")).copy_with(['data.source="npz:/nonexistent.npz"'])
    run_dir = start_runner(exp, runs_dir)
    end = wait_for_event(run_dir, lambda e: e["event"] == "run_ended")
    assert end["status"] == "failed" and "data" in end["reason"]


def test_send_to_a_dead_runner_is_a_stale_error_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text(ev.encode(ev.make_event("run_started", epochs=3)) + "\n")
    (run_dir / "runner.json").write_text(json.dumps({"pid": gone.pid, "create_time": 1.0}))
    t0 = time.monotonic()
    with pytest.raises(UserError, match="stale channel"):
        send(run_dir, "pause", timeout=30)
    assert time.monotonic() - t0 < 2.0
    assert not runner_alive(run_dir)


def test_send_refuses_unknown_commands_and_plain_folders(tmp_path):
    with pytest.raises(UserError, match="unknown command"):
        send(tmp_path, "explode")
    with pytest.raises(UserError, match="not a run directory"):
        send(tmp_path, "pause")


@pytest.mark.slow
def test_sigint_stops_a_headless_run_with_exit_130_and_history(tmp_path, runs_dir):
    preset = ctl_preset(tmp_path, name="sig", epochs=400, batch=8)
    with headless_run(preset, runs_dir) as proc:
        for line in proc.stdout:  # plain lines: stdout is not a terminal
            if line.split()[:2] == ["epoch", "2/400"]:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopping after this batch" in err
    (run_dir,) = runs_dir.iterdir()
    assert len(read_history(run_dir)) >= 2
    end = ev.read_events(run_dir)[-1]
    assert end["event"] == "run_ended" and end["status"] == "stopped" and "SIGINT" in end["reason"]
    assert "run stopped" in out


@pytest.mark.slow
def test_a_second_sigint_stops_at_once_with_exit_130(tmp_path, runs_dir):
    # Batches of 1 and a large validation share make the graceful stop's last validation slow,
    # so the second Ctrl+C lands while the first is still being honoured.
    preset = ctl_preset(tmp_path, name="twice", epochs=50, batch=1)
    with headless_run(preset, runs_dir, "--set", "data.validation_split=0.9") as proc:
        for line in proc.stdout:
            if line.startswith("pre-flight"):
                break
        proc.send_signal(signal.SIGINT)
        for line in proc.stderr:
            if "stopping after this batch" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "stopping at once" in err
    (run_dir,) = runs_dir.iterdir()
    ended = [e for e in ev.read_events(run_dir) if e["event"] == "run_ended"]
    assert len(ended) == 1 and ended[0]["status"] == "stopped" and "twice" in ended[0]["reason"]
    assert (run_dir / "checkpoints" / "last.keras").exists()
    assert read_runner(run_dir)["exit_code"] == 130
