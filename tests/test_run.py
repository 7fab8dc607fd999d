"""The engine's Run, in-process, on real tiny trainings: run directory, events, controls, guards."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from tiny_runs import spiral_preset, write_preset

from tfbench.engine import events as ev
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.rundir import history_csv, new_run_dir, read_history
from tfbench.spec import load_experiment


def experiment(tmp_path: Path, name="tiny", epochs=3, batch=32, lr=1e-2, optimizer="Adam", extra=""):
    """The spiral MLP (seed 7), loaded."""
    text = spiral_preset(name=name, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer, extra=extra)
    return load_experiment(write_preset(tmp_path, text, f"{name}.toml"))


def kinds(events):
    return [e["event"] for e in events]


@pytest.mark.slow
def test_run_leaves_its_directory_and_events_in_order(tmp_path, runs_dir):
    run = Run(experiment(tmp_path), runs_dir=runs_dir)
    assert run.train() == "completed"
    d = run.run_dir
    assert d.parent == runs_dir and d.name.startswith("tiny-")
    for rel in (
        "experiment.toml",
        "events.jsonl",
        "history.csv",
        "model.keras",
        "checkpoints/last.keras",
        "checkpoints/best.keras",
        "checkpoints/backup",
    ):
        assert (d / rel).exists(), rel
    assert load_experiment(d / "experiment.toml") == run.experiment

    events = ev.read_events(d)
    order = kinds(events)
    assert order[0] == "run_started" and order[-1] == "run_ended"
    assert order.count("epoch_started") == 3 and order.count("epoch_ended") == 3
    assert order.count("preflight") == 1 and order.index("preflight") < order.index("epoch_ended")
    assert all(e["v"] == ev.SCHEMA_VERSION and isinstance(e["time"], float) for e in events)
    started = events[0]
    assert started["steps_per_epoch"] == 25 and started["epochs"] == 3 and started["resumed"] is False
    assert started["model"]["total_params"] == 65
    ended = [e for e in events if e["event"] == "epoch_ended"]
    assert [e["epoch"] for e in ended] == [1, 2, 3]
    for e in ended:
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(e["logs"])
        assert e["lr"] == pytest.approx(1e-2) and e["seconds"] > 0 and e["samples_per_sec"] > 0
    batches = [e for e in events if e["event"] == "batch"]
    assert all(1 <= b["step"] <= 25 and "loss" in b["logs"] for b in batches)
    final = events[-1]
    assert final["status"] == "completed" and final["epochs_completed"] == 3
    assert final["best"]["monitor"] == "val_loss" and final["final"] == ended[-1]["logs"]
    assert {"model", "history", "last_checkpoint", "best_checkpoint"} <= set(final["artifacts"])

    rows = read_history(d)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["loss"] == pytest.approx(ended[-1]["logs"]["loss"])
    state = ev.RunState.from_events(events)
    assert state.status == "completed" and state.epoch_numbers == [1, 2, 3]


@pytest.mark.slow
def test_batch_events_are_throttled(tmp_path, runs_dir):
    run = Run(experiment(tmp_path, epochs=2, batch=4), runs_dir=runs_dir)  # 200 steps per epoch
    run.train()
    events = ev.read_events(run.run_dir)
    batches = [e for e in events if e["event"] == "batch"]
    seconds = events[-1]["time"] - events[0]["time"]
    assert len(batches) <= 10 * seconds + 2
    assert len(batches) < 400


@pytest.mark.slow
def test_pause_then_unpause_trains_the_same_steps(tmp_path, runs_dir):
    plain = Run(experiment(tmp_path, name="plain"), runs_dir=runs_dir)
    plain.train()

    paused_for = []

    def pause_in_epoch_two(event):
        if event["event"] == "epoch_started" and event["epoch"] == 2:
            assert run.controls.pause()
        if event["event"] == "paused":
            threading.Timer(0.4, run.controls.unpause).start()
        if event["event"] in ("paused", "resumed"):
            paused_for.append(event)

    run = Run(experiment(tmp_path, name="paused"), runs_dir=runs_dir, subscribers=[pause_in_epoch_two])
    assert run.train() == "completed"
    assert [e["event"] for e in paused_for] == ["paused", "resumed"]
    assert paused_for[0]["epoch"] == 2 and paused_for[1]["paused_seconds"] >= 0.3
    assert int(run.model.optimizer.iterations) == int(plain.model.optimizer.iterations) >= 3 * 25
    assert read_history(run.run_dir)[-1]["epoch"] == 3


def test_stop_saves_a_loadable_checkpoint_and_ends_stopped(tmp_path, runs_dir, monkeypatch):
    import keras

    monkeypatch.setenv("TFBENCH_CHECKPOINT_SECONDS", "0")  # a backup at every epoch

    def stop_in_epoch_two(event):
        if event["event"] == "epoch_started" and event["epoch"] == 2:
            run.stop()

    run = Run(experiment(tmp_path, epochs=5), runs_dir=runs_dir, subscribers=[stop_in_epoch_two])
    assert run.train() == "stopped"
    events = ev.read_events(run.run_dir)
    assert events[-1]["event"] == "run_ended" and events[-1]["status"] == "stopped"
    assert events[-1]["epochs_completed"] == 1
    # the half epoch is neither in the history nor in the resume point
    assert [r["epoch"] for r in read_history(run.run_dir)] == [1]
    from tfbench.rundir import backup_epoch

    assert backup_epoch(run.run_dir) == 1
    model = keras.models.load_model(run.run_dir / "checkpoints" / "last.keras")
    assert model.count_params() == 65


@pytest.mark.slow
def test_live_learning_rate_and_epochs(tmp_path, runs_dir):
    def change(event):
        if event["event"] == "epoch_started" and event["epoch"] == 2:
            run.controls.set("learning_rate", 1e-3)
            run.controls.set("epochs", 4)

    run = Run(experiment(tmp_path, epochs=2), runs_dir=runs_dir, subscribers=[change])
    assert run.train() == "completed"
    events = ev.read_events(run.run_dir)
    changes = [e for e in events if e["event"] == "setting_changed"]
    assert {(c["name"], c["new"]) for c in changes} == {("learning_rate", 1e-3), ("epochs", 4)}
    lrs = [e["lr"] for e in events if e["event"] == "epoch_ended"]
    assert lrs[0] == pytest.approx(1e-2) and lrs[1] == pytest.approx(1e-3)
    assert len(lrs) == 4 and events[-1]["epochs_completed"] == 4
    assert len(events[-1]["changes"]) == 2


@pytest.mark.slow
def test_lowering_epochs_ends_early_as_completed(tmp_path, runs_dir):
    def lower(event):
        if event["event"] == "epoch_started" and event["epoch"] == 1:
            run.controls.set("epochs", 2)

    run = Run(experiment(tmp_path, epochs=6), runs_dir=runs_dir, subscribers=[lower])
    assert run.train() == "completed"
    assert [r["epoch"] for r in read_history(run.run_dir)] == [1, 2]


def test_bad_live_settings_are_user_errors(tmp_path, runs_dir):
    run = Run(experiment(tmp_path), runs_dir=runs_dir)
    with pytest.raises(UserError, match="positive"):
        run.controls.set("learning_rate", -1)
    with pytest.raises(UserError) as err:
        run.controls.set("learnig_rate", 1e-3)
    assert "learning_rate" in str(err.value)
    with pytest.raises(UserError, match="whole number"):
        run.controls.set("epochs", "many")


def test_divergence_fails_with_the_batch_and_keeps_a_good_checkpoint(tmp_path, runs_dir):
    import keras
    import numpy as np

    exp = experiment(tmp_path, name="diverge", epochs=3, optimizer="SGD", lr=1e12)
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "failed"
    end = ev.read_events(run.run_dir)[-1]
    assert end["status"] == "failed"
    assert "NaN" in end["reason"] or "Inf" in end["reason"]
    assert "epoch 1, batch" in end["reason"]
    model = keras.models.load_model(run.run_dir / "checkpoints" / "last.keras")
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert not (run.run_dir / "model.keras").exists()


@pytest.mark.slow
def test_early_stopping_ends_early_stopped(tmp_path, runs_dir):
    extra = 'callbacks = [ { type = "EarlyStopping", monitor = "loss", patience = 0, min_delta = 10.0 } ]'
    run = Run(experiment(tmp_path, epochs=10, extra=extra), runs_dir=runs_dir)
    assert run.train() == "early_stopped"
    end = ev.read_events(run.run_dir)[-1]
    assert end["status"] == "early_stopped" and "EarlyStopping" in end["reason"]
    assert end["epochs_completed"] < 10


@pytest.mark.slow
def test_file_writing_callbacks_default_into_the_run_dir(tmp_path, runs_dir):
    extra = 'callbacks = [ { type = "CSVLogger" }, { type = "ModelCheckpoint" } ]'
    run = Run(experiment(tmp_path, epochs=2, extra=extra), runs_dir=runs_dir)
    assert run.train() == "completed"
    assert (run.run_dir / "keras-log.csv").read_text().count("\n") == 3
    assert (run.run_dir / "checkpoints" / "model-002.keras").exists()


@pytest.mark.slow
def test_tensorboard_without_its_package_is_a_located_user_error(tmp_path, runs_dir):
    import importlib.util

    run = Run(experiment(tmp_path, epochs=1, extra="tensorboard = true"), runs_dir=runs_dir)
    if importlib.util.find_spec("tensorboard") is not None:
        assert run.train() == "completed" and (run.run_dir / "tensorboard").is_dir()
        return
    with pytest.raises(UserError) as err:
        run.prepare()
    assert err.value.location == "track.tensorboard" and "pip install 'tfbench[tensorboard]'" in str(err.value)


def test_bad_data_is_a_user_error_before_any_run_dir(tmp_path, runs_dir):
    exp = experiment(tmp_path).copy_with(['data.source="npz:/nonexistent/file.npz"'])
    run = Run(exp, runs_dir=runs_dir)
    with pytest.raises(UserError):
        run.prepare()
    assert list(runs_dir.iterdir()) == []


def test_run_dirs_are_unique(tmp_path):
    from datetime import datetime

    now = datetime(2025, 1, 2, 3, 4, 5)
    a = new_run_dir(tmp_path, "x", now)
    b = new_run_dir(tmp_path, "x", now)
    assert a.name == "x-20250102-030405" and b.name == "x-20250102-030405-2"


def test_history_csv_round_trips(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5, "lr": 0.01}, {"epoch": 2, "loss": 0.25, "val_loss": 0.3, "lr": 0.01}]
    (tmp_path / "history.csv").write_text(history_csv(rows))
    back = read_history(tmp_path)
    assert back[1] == {"epoch": 2, "loss": 0.25, "lr": 0.01, "val_loss": 0.3}
    assert math.isclose(back[0]["loss"], 0.5)


@pytest.mark.slow
def test_a_mirrored_run_trains_like_a_single_device_run(tmp_path, runs_dir):
    run = Run(experiment(tmp_path, epochs=1, extra='strategy = "mirrored"'), runs_dir=runs_dir)
    assert run.train() == "completed"
    assert type(run.strategy).__name__ == "MirroredStrategy"
    started = ev.read_events(run.run_dir)[0]
    assert started["model"]["total_params"] == 65 and started["steps_per_epoch"] == 25


@pytest.mark.slow
def test_best_checkpoint_holds_the_best_epoch(tmp_path, runs_dir):
    import keras

    run = Run(experiment(tmp_path, epochs=4, lr=0.05), runs_dir=runs_dir)
    assert run.train() == "completed"
    best = ev.read_events(run.run_dir)[-1]["best"]
    model = keras.models.load_model(run.run_dir / "checkpoints" / "best.keras")
    val_loss = model.evaluate(run.bundle.validation, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(best["value"], rel=1e-4)
    saved = [e for e in ev.read_events(run.run_dir) if e["event"] == "checkpoint" and e["kind"] == "best"]
    assert saved[-1]["epoch"] == best["epoch"]


def test_abort_ends_the_record_once_and_at_once(tmp_path, runs_dir):
    def abort_in_epoch_two(event):
        if event["event"] == "epoch_started" and event["epoch"] == 2:
            run.abort("stopped at once")

    run = Run(experiment(tmp_path, epochs=5), runs_dir=runs_dir, subscribers=[abort_in_epoch_two])
    assert run.train() == "stopped"
    run.join(30)
    ended = [e for e in ev.read_events(run.run_dir) if e["event"] == "run_ended"]
    assert len(ended) == 1 and ended[0]["reason"] == "stopped at once"


def test_a_loss_spike_is_a_warning_event(tmp_path):
    from tfbench.engine.callbacks import EventCallback

    run = Run(experiment(tmp_path))
    seen = []
    run.writer = ev.EventWriter(None, [seen.append])
    callback = EventCallback(run)
    callback.epoch = 1
    for step in range(1, 31):
        callback.on_train_batch_end(step - 1, {"loss": 1.0})
    callback.on_train_batch_end(30, {"loss": 50.0})
    warnings = [e for e in seen if e["event"] == "log" and e["level"] == "warning"]
    assert len(warnings) == 1 and "spike" in warnings[0]["message"] and "batch 31" in warnings[0]["message"]
    assert run.diverged_reason is None


def test_out_of_memory_names_the_batch_size_and_what_to_do(tmp_path):
    import tensorflow as tf

    from tfbench.engine.callbacks import failure_reason

    run = Run(experiment(tmp_path, batch=256))
    reason = failure_reason(
        tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"), run.experiment.data.batch_size, 1
    )
    assert "out of memory at batch size 256" in reason
    assert "data.batch_size=128" in reason and "mixed_float16" in reason


def test_a_full_disk_is_recognised_through_the_errors_raised_from_it():
    import errno

    from tfbench.engine.callbacks import disk_full, failure_reason

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("could not save the checkpoint") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
        reason = failure_reason(wrapped, 32, 4)
    assert reason.startswith("the disk is full (epoch 4") and "tfbench resume" in reason
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert failure_reason(PermissionError(errno.EACCES, "Permission denied"), 32, 4).startswith("PermissionError")


@pytest.mark.slow
def test_steps_per_execution_counts_every_batch(tmp_path, runs_dir):
    run = Run(experiment(tmp_path, epochs=2, extra="steps_per_execution = 5"), runs_dir=runs_dir)
    assert run.train() == "completed"
    events = ev.read_events(run.run_dir)
    ended = [e for e in events if e["event"] == "epoch_ended"]
    assert len(ended) == 2
    # 800 samples per epoch, whatever the grouping of batches
    assert all(e["samples_per_sec"] == pytest.approx(800 / e["seconds"], rel=0.01) for e in ended)
    assert all(b["step"] <= b["steps"] for b in events if b["event"] == "batch")
