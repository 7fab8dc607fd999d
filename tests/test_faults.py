"""Nothing lost, nothing doubled, no tracebacks: real runner processes, real signals, real damage.

Each test stands for one defect a hostile or clumsy user found: a stopped run that resumed from
scratch, SIGHUP that lost the record, a killed run that could not be finished, two resumes in one
directory, a checkpoint interval that lost the first 30 s, a full disk called "completed", damaged
files that crashed `runs` and `resume`, and a resume that trained differently from the run it
continued.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import (
    REPO,
    digits_preset,
    images_preset,
    png_folder,
    runner_env,
    spiral_preset,
    tfbench_here,
    wait_for_event,
    write_preset,
)

from tfbench.engine import events as ev
from tfbench.engine.control import read_runner, runner_alive
from tfbench.rundir import BACKUP_DIR, HISTORY_FILE, backup_epoch, read_history

EVERY_EPOCH = {"TFBENCH_CHECKPOINT_SECONDS": "0"}  # a backup at every epoch
RUNNER_EVERY_EPOCH = dict(runner_env(), **EVERY_EPOCH)


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m tfbench ARGS` in a child process that keeps running."""
    return subprocess.Popen(
        [sys.executable, "-m", "tfbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or runner_env(),
        cwd=REPO,
    )


def only_run(runs_dir: Path) -> Path:
    """The one run directory in `runs_dir` (waits for it to appear: a loaded machine imports slowly)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = [p for p in runs_dir.glob("*") if p.is_dir()] if runs_dir.exists() else []
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no run directory in {runs_dir}")


def long_preset(tmp_path: Path, epochs: int = 400) -> Path:
    """Flatten → softmax on the digits with short epochs (batch 64), written as `long.toml`."""
    return write_preset(tmp_path, digits_preset(name="long", epochs=epochs, batch=64), "long.toml")


def killed(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    proc.send_signal(sig)
    proc.communicate(timeout=60)


def rows_without_seconds(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(run_dir)]


# -- stop by any means, then resume --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_saves_and_keeps_every_completed_epoch_for_resume(tmp_path, runs_dir, sig):
    proc = start("run", str(long_preset(tmp_path)), "--runs-dir", str(runs_dir), "--quiet")
    run_dir = only_run(runs_dir)
    try:
        wait_for_event(run_dir, lambda e: e["event"] == "epoch_ended" and e["epoch"] >= 3)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    end = ev.read_events(run_dir)[-1]
    assert end["event"] == "run_ended" and end["status"] == "stopped"
    assert (run_dir / "model.keras").exists() and read_runner(run_dir).get("exited")
    done = len(read_history(run_dir))
    assert done >= 3 and backup_epoch(run_dir) == done  # the backup holds the last completed epoch
    if sig != signal.SIGHUP:
        return
    result = tfbench_here("resume", run_dir, "--epochs", done + 2, "--json")
    assert result.returncode == 0, result.stderr
    assert [r["epoch"] for r in read_history(run_dir)] == list(range(1, done + 3))
    assert [e for e in ev.read_events(run_dir) if e["event"] == "run_started"][-1]["initial_epoch"] == done


@pytest.mark.slow
def test_tfbench_stop_on_a_detached_run_then_resume_keeps_the_whole_history(tmp_path, runs_dir):
    launched = tfbench_here("run", long_preset(tmp_path), "--runs-dir", runs_dir, "--detach")
    assert launched.returncode == 0, launched.stderr
    run_dir = Path(launched.stdout.strip())
    wait_for_event(run_dir, lambda e: e["event"] == "epoch_ended" and e["epoch"] >= 2)
    stopped = tfbench_here("stop", run_dir)
    assert stopped.returncode == 0, stopped.stderr
    done = len(read_history(run_dir))
    assert backup_epoch(run_dir) == done
    result = tfbench_here("resume", run_dir, "--epochs", done + 1)
    assert result.returncode == 0, result.stderr
    assert [r["epoch"] for r in read_history(run_dir)] == list(range(1, done + 2))


def test_a_resume_that_fails_at_once_leaves_history_as_it_was(stopped_runs, runs_dir):
    run_dir = copy_of(stopped_runs, runs_dir)
    before = (run_dir / HISTORY_FILE).read_bytes()
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        if (run_dir / BACKUP_DIR / name).exists():
            (run_dir / BACKUP_DIR / name).write_text("{not json")
    result = tfbench_here("resume", run_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "backup is damaged" in result.stderr
    assert (run_dir / HISTORY_FILE).read_bytes() == before


# -- killed at any moment ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_killed_after_its_last_backup_is_finished_by_resume(tmp_path, runs_dir):
    env = RUNNER_EVERY_EPOCH
    proc = start("run", str(long_preset(tmp_path, epochs=3)), "--runs-dir", str(runs_dir), "--quiet", env=env)
    run_dir = only_run(runs_dir)
    wait_for_event(run_dir, lambda e: e["event"] == "checkpoint" and e["kind"] == "backup" and e["epoch"] == 3)
    killed(proc)
    # what a kill between the last backup and the final model leaves
    for name in ("model.keras", "train.py", "exports"):
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    events = [e for e in ev.read_events(run_dir) if e["event"] != "run_ended"]
    (run_dir / "events.jsonl").write_text("".join(ev.encode(e) + "\n" for e in events))

    result = tfbench_here("resume", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "completed"
    assert (run_dir / "model.keras").exists() and (run_dir / "train.py").exists()
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]
    exported = tfbench_here("export", run_dir, "--format", "keras")
    assert exported.returncode == 0, exported.stderr


@pytest.mark.slow
def test_a_run_killed_while_writing_its_file_cache_is_finished_by_resume(tmp_path, runs_dir):
    """kill -9 in the first epoch leaves TensorFlow's cache lock file; the resume must not trip on it."""
    root = png_folder(tmp_path / "imgs", per_class=300)
    preset = write_preset(tmp_path, images_preset(root, epochs=2, batch=1, extra_data='cache = "cache/imgs"'))
    proc = start("run", str(preset), "--runs-dir", str(runs_dir), "--quiet")
    run_dir = only_run(runs_dir)
    deadline = time.monotonic() + 180
    while not list(run_dir.glob("cache/imgs-train*.lockfile")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed(proc)
    assert list(run_dir.glob("cache/imgs-train*.lockfile")), "the kill did not land while the cache was written"
    result = tfbench_here("resume", run_dir, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "completed"
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2]
    assert (run_dir / "cache" / "imgs-train.index").exists() and not list(run_dir.glob("cache/*.lockfile"))


@pytest.mark.slow
def test_a_second_resume_at_the_same_time_is_refused(tmp_path, runs_dir):
    run_dir = stopped_run(long_preset(tmp_path), runs_dir, after=1)
    first, second = start("resume", str(run_dir), "--quiet"), start("resume", str(run_dir), "--quiet")
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        refused, trainer = (first, second) if first.poll() is not None else (second, first)
        _, err = refused.communicate(timeout=30)
        assert refused.returncode == 2, err
        assert "Traceback" not in err and ("another tfbench process" in err or "still training" in err)
        assert trainer.poll() is None  # the other one trains on
        wait_for_event(run_dir, lambda e: e["event"] == "run_started" and e["resumed"])
        killed(trainer, signal.SIGTERM)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    starts = [e for e in ev.read_events(run_dir) if e["event"] == "run_started"]
    assert len(starts) == 2  # the first run and one resume: the refused one wrote nothing
    epochs = [r["epoch"] for r in read_history(run_dir)]
    assert epochs == sorted(set(epochs))


@pytest.mark.slow
def test_a_kill_in_the_first_seconds_loses_at_most_a_few_seconds(tmp_path, runs_dir):
    env = runner_env()
    env.pop("TFBENCH_CHECKPOINT_SECONDS", None)
    proc = start("run", str(long_preset(tmp_path)), "--runs-dir", str(runs_dir), "--quiet", env=env)
    run_dir = only_run(runs_dir)
    wait_for_event(run_dir, lambda e: e["event"] == "epoch_ended" and e["epoch"] >= 8)
    killed(proc)
    rows = read_history(run_dir)
    saved = backup_epoch(run_dir)
    lost = sum(r["seconds"] for r in rows if r["epoch"] > saved)
    assert saved >= 1 and lost <= max(max(r["seconds"] for r in rows), 5.0)


def test_a_nan_after_good_epochs_keeps_the_last_good_checkpoint_with_its_epoch(tmp_path, runs_dir):
    import keras
    import numpy as np

    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment

    def blow_up(event):
        if event["event"] == "epoch_ended" and event["epoch"] == 3:
            run.controls.set("learning_rate", 1e30)

    preset = spiral_preset(name="nan", epochs=8, optimizer="SGD", lr=0.05)  # plain SGD: a huge rate overflows
    exp = load_experiment(write_preset(tmp_path, preset, "nan.toml"))
    run = Run(exp, runs_dir=runs_dir, subscribers=[blow_up])
    assert run.train() == "failed"
    assert "NaN" in run.reason or "Inf" in run.reason
    kept = int(run.reason.split("(epoch ")[1].split(")")[0])
    assert kept >= 3 and kept == backup_epoch(run.run_dir)
    model = keras.models.load_model(run.run_dir / "checkpoints" / "last.keras")
    assert all(np.isfinite(w).all() for w in model.get_weights())


# -- a full disk -----------------------------------------------------------------------------------


def needs_a_small_tmpfs() -> None:
    """Skip unless this machine lets a test mount its own tmpfs (user and mount namespaces)."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True).returncode
        != 0
    ):
        pytest.skip("needs unshare (user and mount namespaces) for a small tmpfs")


@pytest.mark.slow
def test_a_full_disk_is_not_a_completed_run_and_leaves_no_temporary_files(tmp_path):
    needs_a_small_tmpfs()
    preset = write_preset(
        tmp_path,
        digits_preset(name="full", epochs=3, batch=64) + '\n[export]\nformats = ["keras", "savedmodel"]\n',
        "full.toml",
    )
    disk = tmp_path / "disk"
    disk.mkdir()
    # Once the last epoch's backup is written, the runner is frozen and the disk filled but for
    # 24 KB: enough for the event log, too little for the final model (28 KB) and the exports.
    script = (
        f"mount -t tmpfs -o size=2m tmpfs {disk} && "
        f"{sys.executable} -m tfbench run {preset} --runs-dir {disk}/runs --quiet & pid=$!; "
        f'while ! grep -qs \'"kind":"backup","path":"checkpoints/backup","epoch":3\' {disk}/runs/*/events.jsonl;'
        f" do sleep 0.01; done; kill -STOP $pid; dd if=/dev/zero of={disk}/reserve bs=4k count=6 2>/dev/null;"
        f" dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null; rm {disk}/reserve; kill -CONT $pid;"
        f" wait $pid; code=$?; rm -f {disk}/filler; cp -r {disk}/runs {tmp_path}/kept; exit $code"
    )
    env = RUNNER_EVERY_EPOCH
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=REPO,
    )
    run_dir = only_run(tmp_path / "kept")
    end = ev.read_events(run_dir)[-1]
    assert result.returncode == 1, result.stderr[-2000:]
    assert end["event"] == "run_ended" and end["status"] == "failed" and "could not write" in end["reason"]
    leftovers = [p.name for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


# The disk fills the moment epoch `at`'s backup is written, in the training thread (an event
# subscriber). At the last epoch, `last.keras` follows it after `fit`: that save fails, not only
# the final model. Before the last epoch, the next epoch's saves fail inside `fit`.
FILL_AFTER_A_BACKUP = """
import sys
from pathlib import Path
from tfbench.engine.run import Run
from tfbench.spec import load_experiment

disk, preset, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def fill(event):
    if event["event"] == "checkpoint" and event["kind"] == "backup" and event["epoch"] == at:
        (disk / "reserve").write_bytes(bytes(24 * 1024))
        try:
            with open(disk / "filler", "wb") as out:
                while True:
                    out.write(bytes(4096))
                    out.flush()
        except OSError:
            pass
        (disk / "reserve").unlink()

run = Run(load_experiment(preset), runs_dir=disk / "runs", subscribers=[fill])
print(run.train())
"""


@pytest.mark.slow
def test_a_disk_that_fills_before_the_last_checkpoint_ends_a_failed_run_that_resume_finishes(tmp_path):
    needs_a_small_tmpfs()
    preset = write_preset(tmp_path, digits_preset(name="full", epochs=3, batch=64), "full.toml")
    disk = tmp_path / "disk"
    disk.mkdir()
    run_dir, end = run_on_a_disk_that_fills(tmp_path, preset, disk, at=3)
    assert "could not write checkpoints/last.keras" in end["reason"] and "tfbench resume" in end["reason"]
    resumed = tfbench_here("resume", run_dir, env=EVERY_EPOCH)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ev.read_events(run_dir)[-1]["status"] == "completed" and (run_dir / "model.keras").exists()
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]


@pytest.mark.slow
def test_a_disk_that_fills_in_the_middle_of_fit_says_so_and_resume_continues(tmp_path):
    needs_a_small_tmpfs()
    preset = write_preset(tmp_path, digits_preset(name="full", epochs=5, batch=64), "full.toml")
    disk = tmp_path / "disk"
    disk.mkdir()
    run_dir, end = run_on_a_disk_that_fills(tmp_path, preset, disk, at=2)
    assert "disk is full" in end["reason"] and "tfbench resume" in end["reason"], end["reason"]
    assert "Errno" not in end["reason"], end["reason"]
    kept = [r["epoch"] for r in read_history(run_dir)]
    assert kept[:2] == [1, 2], kept
    resumed = tfbench_here("resume", run_dir, env=EVERY_EPOCH)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ev.read_events(run_dir)[-1]["status"] == "completed" and (run_dir / "model.keras").exists()
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4, 5]


def run_on_a_disk_that_fills(tmp_path: Path, preset: Path, disk: Path, at: int) -> tuple[Path, dict]:
    """Train `preset` on a 2 MB tmpfs that fills at epoch `at`'s backup; free it again, and give
    the run directory (copied out) and its last event."""
    script = (
        f"mount -t tmpfs -o size=2m tmpfs {disk} && {sys.executable} -c '{FILL_AFTER_A_BACKUP}' {disk} {preset} {at};"
        f" code=$?; rm -f {disk}/filler; cp -r {disk}/runs {tmp_path}/kept; exit $code"
    )
    env = RUNNER_EVERY_EPOCH
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=REPO,
    )
    assert result.returncode == 0 and result.stdout.split()[-1] == "failed", result.stderr[-2000:]
    run_dir = only_run(tmp_path / "kept")
    end = ev.read_events(run_dir)[-1]
    assert end["event"] == "run_ended" and end["status"] == "failed", end
    assert [p.name for p in run_dir.rglob("*") if ".tmp" in p.name] == []
    return run_dir, end


# -- damaged files -------------------------------------------------------------------------------


def stopped_run(preset: Path, runs_dir: Path, after: int) -> Path:
    """A run of `preset` stopped after epoch `after` (in this process)."""
    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment

    def stop_after(event):
        if event["event"] == "epoch_ended" and event["epoch"] == after:
            run.stop()

    run = Run(load_experiment(preset), runs_dir=runs_dir, subscribers=[stop_after])
    assert run.train() == "stopped"
    return run.run_dir


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory) -> Path:
    """A runs directory holding one run of the digits softmax stopped after 2 of its 6 epochs."""
    folder = tmp_path_factory.mktemp("stopped")
    preset = write_preset(folder, digits_preset(name="dmg", epochs=6, batch=64), "dmg.toml")
    stopped_run(preset, folder / "runs", after=2)
    return folder / "runs"


def copy_of(runs: Path, runs_dir: Path) -> Path:
    """Copy the runs in `runs` into `runs_dir` and give the one run directory there."""
    shutil.copytree(runs, runs_dir, dirs_exist_ok=True)
    return only_run(runs_dir)


DAMAGE = {
    "history bytes": (HISTORY_FILE, os.urandom(300)),
    "history row": (HISTORY_FILE, None),  # a row `abc,def` appended
    "events bytes": ("events.jsonl", None),  # random bytes appended
    "runner pid": ("runner.json", b'{"pid": "abc"}'),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_resume_of_a_run_with_a_damaged_file_never_tracebacks(stopped_runs, runs_dir, damage):
    from click.testing import CliRunner

    from tfbench.cli import cli

    run_dir = copy_of(stopped_runs, runs_dir)
    name, data = DAMAGE[damage]
    path = run_dir / name
    if damage == "history row":
        path.write_text(path.read_text() + "abc,def\n")
    elif damage == "events bytes":
        path.write_bytes(path.read_bytes() + os.urandom(300) + b"\n")
    else:
        path.write_bytes(data)
    listed = CliRunner().invoke(cli, ["runs", str(runs_dir), "--json"], catch_exceptions=False)
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["status"] == "damaged"
    result = CliRunner().invoke(cli, ["resume", str(run_dir), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4, 5, 6]


def test_runs_marks_a_damaged_run_and_still_lists_the_others(tmp_path):
    from click.testing import CliRunner

    from tfbench.cli import cli

    runs = tmp_path / "runs"
    shutil.copytree(REPO / "tests" / "fixtures" / "runs_dir", runs)
    broken = sorted(runs.iterdir())[0]
    (broken / "events.jsonl").write_bytes(os.urandom(2000) + b"\n" + os.urandom(500) + b"\n")
    result = CliRunner().invoke(cli, ["runs", str(runs), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert len(rows) == 3 and rows[broken.name]["status"] == "damaged" and "events.jsonl" in rows[broken.name]["reason"]
    assert all(row["status"] != "damaged" for name, row in rows.items() if name != broken.name)
    table = CliRunner().invoke(cli, ["runs", str(runs)], catch_exceptions=False)
    assert table.exit_code == 0 and "damaged" in table.output


def test_a_damaged_model_is_called_damaged_not_missing(stopped_runs, runs_dir):
    from click.testing import CliRunner

    from tfbench.cli import cli

    run_dir = copy_of(stopped_runs, runs_dir)
    (run_dir / "model.keras").write_bytes(os.urandom(4000))
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "keras"], catch_exceptions=False)
    assert result.exit_code == 2 and "damaged" in result.output and "not found" not in result.output.lower()


# -- exact resume ----------------------------------------------------------------------------------


def cut_first_save(backup: Path) -> None:
    """A kill during the very first save: a cut weights file (as found in CI: 96 bytes), nothing else."""
    for path in backup.iterdir():
        if path.name != "latest.weights.h5":
            path.unlink()
    os.truncate(backup / "latest.weights.h5", 96)


def cut_weights(backup: Path) -> None:
    """The newest weights file cut short (a kill during a save that wrote it in place)."""
    os.truncate(backup / "latest.weights.h5", 96)


def weights_ahead_of_metadata(backup: Path) -> None:
    """A kill between a save's weights and its metadata: epoch 8's weights, epoch 7's metadata."""
    shutil.copyfile(backup / "training_metadata.json.bkp", backup / "training_metadata.json")


@pytest.fixture(scope="module")
def uninterrupted_digits_mlp(tmp_path_factory) -> tuple[Path, dict]:
    """digits-mlp for 10 epochs, a backup at every epoch, uninterrupted: its run directory and the
    `--json` summary it ended on (trained in this process)."""
    runs = tmp_path_factory.mktemp("uninterrupted")
    plain = tfbench_here(
        "run", "digits-mlp", "--set", "train.epochs=10", "--runs-dir", runs, "--json", env=EVERY_EPOCH, cwd=REPO
    )
    assert plain.returncode == 0, plain.stderr
    return only_run(runs), json.loads(plain.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def killed_after_epoch_8(tmp_path_factory) -> Path:
    """A runs directory holding digits-mlp (10 epochs, every epoch saved) killed -9 after epoch 8's save."""
    runs = tmp_path_factory.mktemp("killed") / "runs"
    proc = start(
        "run", "digits-mlp", "--set", "train.epochs=10", "--runs-dir", str(runs), "--quiet", env=RUNNER_EVERY_EPOCH
    )
    try:
        run_dir = only_run(runs)
        wait_for_event(run_dir, lambda e: e["event"] == "checkpoint" and e["kind"] == "backup" and e["epoch"] == 8)
        killed(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not runner_alive(run_dir)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_left, continues_after",
    [
        (None, 8),
        (cut_first_save, 0),
        (cut_weights, 7),
        (weights_ahead_of_metadata, 7),
    ],
    ids=["after-the-save", "during-the-first-save", "weights-cut", "weights-ahead-of-metadata"],
)
def test_a_run_killed_after_epoch_8_and_resumed_has_the_uninterrupted_history(
    runs_dir, uninterrupted_digits_mlp, killed_after_epoch_8, kill_left, continues_after
):
    """digits-mlp (Dropout: its seed state matters too), every epoch saved, CPU, one seed. Killed
    after epoch 8's save, or in the state a kill in the middle of a save leaves: the resume goes on
    from the newest whole backup, exactly."""
    run_dir = copy_of(killed_after_epoch_8, runs_dir)
    if kill_left is not None:
        kill_left(run_dir / BACKUP_DIR)
    assert backup_epoch(run_dir) == continues_after
    resumed = tfbench_here("resume", run_dir, "--quiet", env=EVERY_EPOCH)
    assert resumed.returncode == 0, resumed.stderr
    assert [e["initial_epoch"] for e in ev.read_events(run_dir) if e["event"] == "run_started"] == [0, continues_after]
    assert rows_without_seconds(run_dir) == rows_without_seconds(uninterrupted_digits_mlp[0])


@pytest.mark.slow
def test_the_runs_own_train_py_ends_on_the_runs_final_val_loss(tmp_path, uninterrupted_digits_mlp):
    """train.py repeats its training data as the run does, so every epoch sees the run's order."""
    import re

    run_dir, summary = uninterrupted_digits_mlp
    script = subprocess.run(
        [sys.executable, str(run_dir / "train.py"), "--epochs", "10", "--output", str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=180,
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stderr[-2000:]
    printed = re.findall(r"val_loss: ([0-9.]+)", script.stdout + script.stderr)
    assert len(printed) == 10 and printed[-1] == f"{summary['final']['val_loss']:.4f}"
