"""`tfbench tune` with real worker processes and real signals: SIGKILL of a worker and of the study, then
`--resume`, loses no trial and completes exactly the planned count; two processes share one storage,
and the survivor of a kill -9 finishes the other's trial; `watch` ends on a study nobody runs; the
pool never starts more workers than trials are left; a disk that fills stops the study with one
line, and `--resume` finishes it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
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


def watch(study_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """`tfbench watch STUDY_DIR` without a terminal, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "tfbench", "watch", str(study_dir)],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class WorkerCount:
    """The most trial workers a `tune` process had alive at once, sampled every 50 ms while it runs."""

    def __init__(self, proc: subprocess.Popen):
        self.most = 0
        self._thread = threading.Thread(target=self._sample, args=(proc,), daemon=True)
        self._thread.start()

    def _sample(self, proc: subprocess.Popen) -> None:
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                workers = [c for c in parent.children() if "tfbench.study.workers" in " ".join(c.cmdline())]
            except psutil.Error:
                workers = []
            self.most = max(self.most, len(workers))
            time.sleep(0.05)


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


@pytest.mark.slow
def test_sigkill_of_a_worker_and_of_tune_ends_watch_then_resume_keeps_every_trial_and_completes_twelve(tmp_path):
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
    watched = watch(study_dir)  # nobody runs the study now: watch says so and ends
    assert watched.returncode == 1, watched.stdout[-2000:] + watched.stderr[-2000:]
    assert "nobody is running this study" in watched.stdout and f"tfbench tune --resume {study_dir}" in watched.stdout
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_ctrl_c_lets_the_running_trials_save_watch_ends_and_resume_starts_no_more_workers_than_trials_left(tmp_path):
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
    watched = watch(study_dir)  # a stopped study: watch says so and ends (0, as for a stopped run)
    assert watched.returncode == 0 and "the study was stopped" in watched.stdout, watched.stdout[-2000:]
    left = 3 - len(ended(study_dir))
    resumed = subprocess.Popen(
        tune("--resume", str(study_dir), "--parallel", "20"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
    )
    count = WorkerCount(resumed)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert len(ended(study_dir)) == 3
    assert 1 <= count.most <= left, (count.most, left)


def children_of(pid: int) -> set[int]:
    try:
        return {c.pid for c in psutil.Process(pid).children()}
    except psutil.Error:
        return set()


@pytest.mark.slow
def test_the_survivor_of_two_tune_processes_finishes_the_trial_of_the_one_killed_mid_trial(tmp_path):
    journal = tmp_path / "shared.journal"
    sets = ["--set", "train.epochs=3", "--set", "data.batch_size=64"]
    procs = {
        name: subprocess.Popen(
            tune(
                "digits-mlp",
                "--trials",
                "4",
                *sets,
                "--storage",
                str(journal),
                "--study",
                "shared",
                "--study-dir",
                str(tmp_path / name),
            ),  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=runner_env(),
            cwd=tmp_path,
        )
        for name in ("survivor", "victim")
    }
    victim = procs["victim"]
    try:
        # kill -9 the victim while its worker is in the middle of a trial (frozen, so it cannot finish first)
        def victims_trial() -> dict | None:
            mine = children_of(victim.pid)
            for row in rows(tmp_path / "victim"):
                pid = StudyDir.load(tmp_path / "victim").study.trials[row["number"]].user_attrs.get("pid")
                if row["state"] == "running" and row["epochs"] >= 1 and pid in mine:
                    os.kill(pid, signal.SIGSTOP)
                    if next(r for r in rows(tmp_path / "victim") if r["number"] == row["number"])["state"] == "running":
                        return row
                    os.kill(pid, signal.SIGCONT)
            return None

        frozen = wait_until(victims_trial, 240, victim, "a trial of the victim in its second epoch")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        out, err = procs["survivor"].communicate(timeout=420)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert procs["survivor"].returncode == 0, err[-3000:]
    trials = rows(tmp_path / "survivor")
    assert [r for r in trials if r["state"] in ("running", "waiting")] == []
    assert len([r for r in trials if r["state"] in ("finished", "pruned")]) == 4
    lost = next(r for r in trials if r["number"] == frozen["number"])
    assert lost["state"] == "interrupted" and "ended before the trial did" in lost["reason"]
    retry = next(r for r in trials if r["retry_of"] == frozen["number"])
    assert retry["state"] in ("finished", "pruned") and retry["params"] == lost["params"]
    assert Path(retry["run_dir"]).parent == tmp_path / "survivor"  # the survivor ran it
    watched = watch(tmp_path / "victim")  # the victim's directory shows the study the survivor completed
    assert watched.returncode == 0 and len(re.findall(r"^trial \d+/4 ", watched.stdout, re.M)) == 4


GRID = """
[tune]
objective = "val_accuracy"
sampler = "grid"
pruner = "none"
[tune.space]
"model.layers[2].units" = { choice = [16, 32] }
"""


@pytest.mark.slow
def test_tune_starts_no_more_workers_than_trials_left_and_a_two_point_grid_trains_each_point_once(tmp_path):
    shipped = (Path(__file__).resolve().parent.parent / "presets" / "digits-mlp.toml").read_text()
    preset = tmp_path / "grid.toml"
    preset.write_text(shipped.split("[tune]")[0].split("# `tfbench tune")[0] + GRID)
    proc = subprocess.Popen(
        tune(
            str(preset),
            "--trials",
            "5",
            "--parallel",
            "6",
            "--set",
            "train.epochs=1",
            "--set",
            "data.batch_size=64",
            "--study-dir",
            str(tmp_path / "study"),
        ),  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runner_env(),
        cwd=tmp_path,
    )
    count = WorkerCount(proc)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "note: the grid has 2 points: 2 trials, not 5" in out
    assert 1 <= count.most <= 2, count.most
    trials = rows(tmp_path / "study")
    assert sorted(r["params"]["model.layers[2].units"] for r in trials) == [16, 32]
    assert all(r["state"] == "finished" for r in trials)


# -- a full disk -----------------------------------------------------------------------------------

FILL_THEN_FREE = """
set -u
mount -t tmpfs -o size=600k tmpfs "$DISK" || exit 90
# a disk already full when the study starts
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null
"$PY" -m tfbench tune digits-mlp $SETS --study-dir "$DISK/early" >"$OUT/early.out" 2>"$OUT/early.err"
echo $? >"$OUT/early.rc"; ls "$DISK" >"$OUT/early.ls"; rm "$DISK/filler"
# a disk that fills in the middle of the study (the first trial's run takes half of it)
"$PY" -m tfbench tune digits-mlp $SETS --study-dir "$DISK/study" >"$OUT/full.out" 2>"$OUT/full.err"
echo $? >"$OUT/full.rc"; cp -r "$DISK/study" "$OUT/at-full"
# space freed: --resume finishes it
mount -o remount,size=64m "$DISK"
"$PY" -m tfbench tune --resume "$DISK/study" >"$OUT/resume.out" 2>"$OUT/resume.err"
echo $? >"$OUT/resume.rc"; cp -r "$DISK/study" "$OUT/kept"
"""


def journal_records(study_dir: Path) -> list[dict]:
    """Every line of a study's journal, decoded: fails on a cut or glued line."""
    data = (study_dir / "study.journal").read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.slow
def test_a_disk_that_fills_stops_the_study_with_one_line_and_resume_finishes_it_with_every_record(tmp_path):
    from test_faults import needs_a_small_tmpfs

    needs_a_small_tmpfs()
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    sets = "--trials 3 --set train.epochs=1 --set data.batch_size=64"
    env = dict(runner_env(), DISK=str(disk), OUT=str(out), PY=sys.executable, SETS=sets)
    env["TFBENCH_STUDY_STALE_SECONDS"] = "10"  # a trial whose owner never got written is judged soon
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FILL_THEN_FREE],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    def result(step: str) -> tuple[int, str, list[str]]:
        err = (out / f"{step}.err").read_text()
        return int((out / f"{step}.rc").read_text()), (out / f"{step}.out").read_text(), err.splitlines()

    code, _, err = result("early")  # full before anything was written: nothing half-made is left
    assert code == 1 and len(err) == 1 and err[0].startswith("error: the disk is full"), err
    assert "nothing of it was kept" in err[0] and "early" not in (out / "early.ls").read_text()
    code, printed, err = result("full")  # full in the middle: one line, and how to go on
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("error: the disk is full") and f"tfbench tune --resume {disk}/study" in err[0]
    assert "Traceback" not in printed
    journal_records(out / "at-full")
    kept_before = {r["number"]: r for r in ended(out / "at-full")}
    code, printed, err = result("resume")
    assert code == 0, err[-20:]
    journal_records(out / "kept")  # never appended to a cut line
    after = rows(out / "kept")
    assert len([r for r in after if r["state"] in ("finished", "pruned")]) == 3
    assert [r for r in after if r["state"] in ("running", "waiting", "failed")] == []
    for number, row in kept_before.items():  # what had finished is kept as it was
        again = next(r for r in after if r["number"] == number)
        assert (again["state"], again["value"], again["params"]) == (row["state"], row["value"], row["params"])
    for row in after:  # every trial's record readable: its run directory's history and end
        if row["state"] in ("finished", "pruned"):
            run_dir = out / "kept" / Path(row["run_dir"]).name
            end = [e for e in ev.read_events(run_dir) if e["event"] == "run_ended"]
            assert end and end[-1]["status"] in ("completed", "stopped") and (run_dir / "history.csv").exists()
    assert any(r["state"] == "interrupted" for r in after)  # the trial the disk stopped went back, and ran again


def test_grid_ids_name_one_point_in_every_asking_process(tmp_path):
    """Each worker has its own sampler seed; the grid sampler shuffles its points with it, so a grid id
    must not depend on it, or two workers given trials 0 and 1 train the same point."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from tfbench.study.space import Param, TuneSettings
    from tfbench.study.study import make_sampler

    points = tuple(range(8))
    settings = TuneSettings("val_loss", "minimize", 8, "grid", "none", [Param("u", "choice", choices=points)])
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "grid.journal")))
    optuna.create_study(study_name="grid", storage=storage)
    asked = []
    for seed in range(8):  # a process per trial, each with its own seed
        study = optuna.load_study(study_name="grid", storage=storage, sampler=make_sampler(settings, seed))
        asked.append(study.ask().suggest_categorical("u", list(points)))
    assert sorted(asked) == list(points)
