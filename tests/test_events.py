"""The event log: writing, reading, following a growing file, and folding events into a RunState."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from tfbench.engine import events as ev
from tfbench.engine.events import EventWriter, RunState, follow, read_events


def _write_run(writer: EventWriter, epochs: int = 3, steps: int = 4, status: str = "completed") -> None:
    writer.emit(
        ev.RUN_STARTED,
        experiment={"name": "t"},
        run_dir="x",
        model={"total_params": 10},
        data={},
        steps_per_epoch=steps,
        epochs=epochs,
        initial_epoch=0,
        pid=1,
        resumed=False,
    )
    for epoch in range(1, epochs + 1):
        writer.emit(ev.EPOCH_STARTED, epoch=epoch, epochs=epochs)
        for step in range(1, steps + 1):
            writer.emit(ev.BATCH, epoch=epoch, step=step, steps=steps, logs={"loss": 1.0 / (epoch * step)})
        writer.emit(
            ev.EPOCH_ENDED,
            epoch=epoch,
            logs={"loss": 1.0 / epoch, "val_loss": 1.5 / epoch},
            lr=1e-3,
            seconds=2.0,
            samples_per_sec=100.0,
        )
    writer.emit(
        ev.RUN_ENDED,
        status=status,
        reason="",
        epochs_completed=epochs,
        best={"monitor": "val_loss", "epoch": epochs},
        final={},
        artifacts={"model": "model.keras"},
    )


def test_written_log_reads_back_in_order_with_schema(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    _write_run(writer, epochs=2, steps=3)
    writer.close()
    events = read_events(path)
    assert [e["event"] for e in events][:3] == ["run_started", "epoch_started", "batch"]
    assert events[-1]["event"] == "run_ended"
    assert all(e["v"] == ev.SCHEMA_VERSION and isinstance(e["time"], float) for e in events)
    assert len(events) == 1 + 2 * (1 + 3 + 1) + 1


def test_nan_and_inf_survive_as_json_and_fold_back_to_floats(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit(ev.EPOCH_ENDED, epoch=1, logs={"loss": float("nan"), "val_loss": float("inf")}, lr=0.1, seconds=1.0)
    writer.close()
    line = path.read_text().strip()
    json.loads(line)  # strict JSON: no bare NaN
    assert "NaN" not in line
    state = RunState.from_log(path)
    assert math.isnan(state.history["loss"][0]) and math.isinf(state.history["val_loss"][0])


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.emit(ev.LOG, level="info", message="one")
    writer.close()
    with open(path, "a") as handle:
        handle.write('{"event": "log", "mess')
    assert [e["message"] for e in read_events(path)] == ["one"]


def test_subscribers_receive_events_and_a_broken_one_does_not_stop_emitting(tmp_path):
    got = []
    writer = EventWriter(tmp_path / "events.jsonl")
    writer.subscribe(lambda e: 1 / 0)
    writer.subscribe(got.append)
    writer.emit(ev.LOG, level="info", message="hi")
    writer.close()
    assert got and got[0]["message"] == "hi"


def test_runstate_folds_a_whole_run(tmp_path):
    writer = EventWriter(tmp_path / "events.jsonl")
    _write_run(writer, epochs=3, steps=4)
    writer.close()
    state = RunState.from_log(tmp_path)
    assert state.status == "completed" and state.ended and not state.running
    assert state.epoch_numbers == [1, 2, 3]
    assert state.history["loss"] == [1.0, 0.5, 1.0 / 3]
    assert state.metric_names() == ["loss", "val_loss"]
    assert state.learning_rates == [1e-3] * 3
    assert len(state.batch_loss) == 12
    assert state.batch_x[0] == 0.25 and state.batch_x[-1] == 3.0
    assert state.elapsed() >= 0 and state.finished_at is not None


def test_runstate_eta_from_epoch_pace():
    state = RunState()
    state.apply(ev.make_event(ev.RUN_STARTED, experiment={}, steps_per_epoch=10, epochs=5))
    assert state.eta() is None
    state.apply(ev.make_event(ev.EPOCH_STARTED, epoch=1, epochs=5))
    state.apply(ev.make_event(ev.EPOCH_ENDED, epoch=1, logs={"loss": 1.0}, lr=0.1, seconds=10.0))
    state.apply(ev.make_event(ev.EPOCH_STARTED, epoch=2, epochs=5))
    state.apply(ev.make_event(ev.BATCH, epoch=2, step=5, steps=10, logs={"loss": 0.9}))
    assert state.eta() == 3 * 10.0 + 5.0


def test_paused_resumed_and_settings_change_status_and_log():
    state = RunState()
    state.apply(ev.make_event(ev.RUN_STARTED, experiment={}, steps_per_epoch=10, epochs=5))
    state.apply(ev.make_event(ev.PAUSED, epoch=1, step=3))
    assert state.status == "paused"
    state.apply(ev.make_event(ev.RESUMED, epoch=1, step=3))
    assert state.status == "running"
    state.apply(ev.make_event(ev.SETTING_CHANGED, name="epochs", old=5, new=8))
    assert state.epochs == 8
    assert "epochs: 5 → 8" in state.log[-1].message


def test_resumed_run_replaces_repeated_epochs():
    state = RunState()
    state.apply(ev.make_event(ev.RUN_STARTED, experiment={}, steps_per_epoch=2, epochs=3))
    for epoch in (1, 2):
        state.apply(ev.make_event(ev.EPOCH_ENDED, epoch=epoch, logs={"loss": 1.0 / epoch}, lr=0.1, seconds=1))
    state.apply(ev.make_event(ev.RUN_ENDED, status="stopped", reason="stopped by user"))
    state.apply(
        ev.make_event(ev.RUN_STARTED, experiment={}, steps_per_epoch=2, epochs=3, initial_epoch=1, resumed=True)
    )
    assert state.status == "running" and state.epoch_numbers == [1]
    state.apply(ev.make_event(ev.EPOCH_ENDED, epoch=2, logs={"loss": 0.4}, lr=0.1, seconds=1))
    assert state.epoch_numbers == [1, 2] and state.history["loss"] == [1.0, 0.4]


def test_batch_series_stays_bounded_over_a_long_run():
    state = RunState()
    state.apply(ev.make_event(ev.RUN_STARTED, experiment={}, steps_per_epoch=1000, epochs=100))
    for i in range(100_000):
        state.apply(
            {
                "event": "batch",
                "time": 0.0,
                "v": 1,
                "epoch": i // 1000 + 1,
                "step": i % 1000 + 1,
                "steps": 1000,
                "logs": {"loss": 1.0},
            }
        )
    assert len(state.batch_loss) <= ev.MAX_BATCH_POINTS
    assert len(state.batch_loss) == len(state.batch_x)
    assert state.batch_x == sorted(state.batch_x) and state.batch_x[-1] > 90


def test_follow_sees_lines_appended_by_another_writer(tmp_path):
    path = tmp_path / "events.jsonl"
    seen: list[str] = []
    stop = threading.Event()

    def reader():
        for event in follow(path, stop=stop, poll=0.02):
            seen.append(event["event"])

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.1)  # the file does not exist yet: follow waits for it
    writer = EventWriter(path)
    _write_run(writer, epochs=1, steps=2)
    writer.close()
    thread.join(timeout=5)
    stop.set()
    assert not thread.is_alive()
    assert seen[0] == "run_started" and seen[-1] == "run_ended"


# -- a disk with no room for the log --------------------------------------------------------------

# On a 2 MB tmpfs filled to the last byte once epoch 1 ended: the event log cannot hold a line more.
FILL_EVERYTHING = """
import json, sys
from pathlib import Path
from tfbench.engine.run import Run
from tfbench.spec import load_experiment

disk, preset, seen = Path(sys.argv[1]), sys.argv[2], []

def fill(event):
    seen.append(event["event"])
    if event["event"] == "epoch_ended" and event["epoch"] == 1:
        try:
            with open(disk / "filler", "wb") as out:
                while True:
                    out.write(bytes(4096))
                    out.flush()
        except OSError:
            pass

run = Run(load_experiment(preset), runs_dir=disk / "runs", subscribers=[fill])
status = run.train()
print(json.dumps({"status": status, "reason": run.reason, "ended": run.ended, "last": seen[-1]}))
"""


@pytest.mark.slow
def test_a_run_whose_event_log_the_disk_cannot_hold_still_ends_and_says_the_disk_is_full(tmp_path):
    import subprocess
    import sys

    from test_faults import needs_a_small_tmpfs
    from tiny_runs import digits_preset, runner_env, write_preset

    needs_a_small_tmpfs()
    preset = write_preset(tmp_path, digits_preset(name="full", epochs=3, batch=64), "full.toml")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"mount -t tmpfs -o size=2m tmpfs {disk} && {sys.executable} -c '{FILL_EVERYTHING}' {disk} {preset}"
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, env=dict(runner_env(), TFBENCH_CHECKPOINT_SECONDS="0"), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ended"] and result["last"] == "run_ended", result  # the subscribers still heard the end
    assert result["status"] == "failed" and "disk is full" in result["reason"], result
