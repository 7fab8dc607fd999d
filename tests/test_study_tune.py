"""`tfbench tune` with real worker processes and real signals: SIGKILL of a worker and of the study, then
`--resume`, loses no trial and completes exactly the planned count; two processes share one storage."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tiny_runs import runner_env

from tfbench.engine import events as ev
from tfbench.study.study import BEST_FILE, StudyDir, pid_alive

# Tiny trials: two epochs of the digits MLP, its shipped three-parameter space.
TRIAL_SETS = ["--set", "train.epochs=2", "--set", "data.batch_size=64"]


def tune(*args: str) -> list[str]:
    return [sys.executable, "-m", "tfbench", "tune", *args]


def rows(study_dir: Path) -> list[dict]:
    return StudyDir.load(study_dir).rows() if (study_dir / "study.toml").exists() else []


def wait_until(predicate, timeout: float, proc: subprocess.Popen | None = None, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"tune ended ({proc.returncode}) before {what}: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def ended(study_dir: Path) -> list[dict]:
    return [r for r in rows(study_dir) if r["state"] in ("finished", "pruned")]


def freeze_a_trial_in_its_second_epoch(study_dir: Path) -> dict | None:
    """A running trial past its first epoch, with its worker stopped (SIGSTOP) so it cannot finish
    before the test kills it; None (the worker let go again) if it finished meanwhile."""
    row = next((r for r in rows(study_dir) if r["state"] == "running" and r["epochs"] >= 1), None)
    if row is None:
        return None
    pid = StudyDir.load(study_dir).study.trials[row["number"]].user_attrs["pid"]
    os.kill(pid, signal.SIGSTOP)
    if next(r for r in rows(study_dir) if r["number"] == row["number"])["state"] == "running":
        return {**row, "pid": pid}
    os.kill(pid, signal.SIGCONT)
    return None


def test_sigkill_of_a_worker_and_of_tune_then_resume_keeps_every_trial_and_completes_twelve(tmp_path):
    study_dir = tmp_path / "study"
    proc = subprocess.Popen(
        tune("digits-mlp", "--trials", "12", "--parallel", "2", *TRIAL_SETS, "--study-dir", str(study_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
    )
    try:
        # kill -9 one worker in the middle of a trial, once a trial has finished
        wait_until(lambda: len(ended(study_dir)) >= 1, 180, proc, "the first trial")
        victim = wait_until(
            lambda: freeze_a_trial_in_its_second_epoch(study_dir), 120, proc, "a trial in its second epoch"
        )
        os.kill(victim["pid"], signal.SIGKILL)
        # then kill -9 the study itself after about five trials
        wait_until(lambda: len(ended(study_dir)) >= 5, 240, proc, "five trials")
        workers = [
            StudyDir.load(study_dir).study.trials[r["number"]].user_attrs["pid"]
            for r in rows(study_dir)
            if r["state"] == "running"
        ]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_until(lambda: not any(pid_alive(p) for p in workers), 20, what="the workers to die with tune")
    before = {r["number"]: r for r in ended(study_dir)}
    assert 5 <= len(before) < 12
    interrupted = [r for r in rows(study_dir) if r["state"] == "interrupted"]
    assert any(r["number"] == victim["number"] for r in interrupted)  # given back by the pool when its worker died

    resumed = subprocess.run(
        tune("--resume", str(study_dir), "--parallel", "2"),
        capture_output=True,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
        timeout=420,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = rows(study_dir)
    done = [r for r in after if r["state"] in ("finished", "pruned")]
    assert len(done) == 12
    for number, row in before.items():  # every finished trial kept, as it was
        again = next(r for r in after if r["number"] == number)
        assert (again["state"], again["value"], again["params"]) == (row["state"], row["value"], row["params"])
    retried = {r["retry_of"] for r in after if r["retry_of"] is not None}
    assert {r["number"] for r in after if r["state"] == "interrupted"} <= retried
    for row in done:  # each an ordinary run directory that ended and kept its record
        end = [e for e in ev.read_events(Path(row["run_dir"])) if e["event"] == "run_ended"]
        assert end and end[-1]["status"] in ("completed", "stopped")
        assert (Path(row["run_dir"]) / "history.csv").exists()
    best = max(r["value"] for r in done if r["state"] == "finished")
    header = (study_dir / BEST_FILE).read_text().splitlines()[0]
    assert float(re.search(r"val_accuracy (\S+)$", header).group(1)) == best
    assert "best: trial #" in resumed.stdout and len(re.findall(r"^trial \d+/12 ", resumed.stdout, re.M)) == 12 - len(
        before
    )


def test_two_tune_processes_on_one_journal_split_the_trials_and_run_none_twice(tmp_path):
    journal = tmp_path / "shared.journal"
    procs = [
        subprocess.Popen(
            tune(
                "digits-mlp",
                "--trials",
                "6",
                *TRIAL_SETS,
                "--storage",
                str(journal),
                "--study",
                "shared",
                "--study-dir",
                str(tmp_path / name),
                "--json",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=runner_env(),
            cwd=tmp_path,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=420) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    trials = StudyDir.load(tmp_path / "a").rows()
    done = [r for r in trials if r["state"] in ("finished", "pruned")]
    assert len(done) == 6 and [r["state"] for r in trials if r not in done] == []
    by_dir = {name: {int(p.name.split("-")[1]) for p in (tmp_path / name).glob("trial-*")} for name in ("a", "b")}
    assert by_dir["a"] and by_dir["b"], by_dir  # both processes ran some
    assert not by_dir["a"] & by_dir["b"] and by_dir["a"] | by_dir["b"] == {r["number"] for r in done}
    for row in done:  # each trial ran exactly once: one run_started in one run directory
        starts = [e for e in ev.read_events(Path(row["run_dir"])) if e["event"] == "run_started"]
        assert len(starts) == 1


def test_ctrl_c_stops_starting_trials_lets_the_running_ones_save_and_resume_finishes(tmp_path):
    study_dir = tmp_path / "study"
    # trials long enough (20 epochs) that Ctrl+C finds them running
    sets = ["--set", "train.epochs=20", "--set", "data.batch_size=64"]
    proc = subprocess.Popen(
        tune("digits-mlp", "--trials", "3", "--parallel", "2", *sets, "--study-dir", str(study_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
    )
    try:
        wait_until(
            lambda: any(r["state"] == "running" and r["epochs"] >= 1 for r in rows(study_dir)),
            120,
            proc,
            "a running trial",
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and f"tfbench tune --resume {study_dir}" in err
    stopped = [r for r in rows(study_dir) if r["state"] == "interrupted"]
    assert stopped and not [r for r in rows(study_dir) if r["state"] == "running"]
    for row in stopped:  # saved as a stopped run, then queued again
        end = [e for e in ev.read_events(Path(row["run_dir"])) if e["event"] == "run_ended"]
        assert end[-1]["status"] == "stopped" and (Path(row["run_dir"]) / "checkpoints" / "last.keras").exists()
    waiting = {r["retry_of"] for r in rows(study_dir) if r["state"] == "waiting"}
    assert waiting == {r["number"] for r in stopped}
    resumed = subprocess.run(
        tune("--resume", str(study_dir)), capture_output=True, text=True, env=runner_env(), cwd=tmp_path, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(ended(study_dir)) == 3
