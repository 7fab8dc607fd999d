"""Fine-tuning: a frozen backbone unfreezes at its epoch, recompiles and trains on in the same run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from tiny_runs import tfbench_here, wait_for_event, write_preset

from tfbench.engine import events as ev
from tfbench.engine import fine_tune
from tfbench.engine.control import read_runner, runner_alive, start_runner
from tfbench.errors import UserError
from tfbench.rundir import backup_epoch, read_history
from tfbench.spec import FineTuneSpec, experiment_from_dict, load_experiment, parse_toml

pytestmark = pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")

PRESET = """
name = "tune"
[data]
source = "npz:{data}"
batch_size = 16
validation_split = 0.25
[[model.layers]]
type = "MobileNetV2"
weights = "none"
alpha = 0.35
include_top = false
pooling = "avg"
trainable = false
[[model.layers]]
type = "Dense"
units = 3
activation = "softmax"
[train]
epochs = {epochs}
optimizer = {{ type = "Adam", learning_rate = 1e-3 }}
loss = "sparse_categorical_crossentropy"
seed = 3
fine_tune = {{ after_epoch = {after}, unfreeze = {unfreeze}, learning_rate = 1e-5 }}
"""


def preset(epochs: int = 2, after: int = 1, unfreeze: str = '"all"', data: str = "pictures.npz") -> str:
    return PRESET.format(epochs=epochs, after=after, unfreeze=unfreeze, data=data)


def pictures(folder: Path) -> str:
    """Forty 32×32 grey pictures of three classes, the smallest input a MobileNetV2 takes."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(40) % 3
    x = rng.normal(0, 1, (40, 32, 32, 1)).astype("float32") + y[:, None, None, None]
    path = folder / "pictures.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def test_phases_and_the_epochs_each_fit_runs():
    spec = FineTuneSpec(after_epoch=3)
    assert [fine_tune.phase(spec, e) for e in (1, 3, 4, 9)] == ["transfer", "transfer", "fine_tune", "fine_tune"]
    assert fine_tune.phase(None, 5) == "transfer"
    assert fine_tune.fit_until(spec, 0, 10) == 3 and fine_tune.fit_until(spec, 3, 10) == 10
    assert fine_tune.fit_until(spec, 0, 3) == 3 and fine_tune.fit_until(None, 0, 10) == 10


def test_unfreeze_the_top_layers_and_recompile_with_the_new_rate():
    from tfbench import build
    from tfbench.data.info import DataInfo

    exp = experiment_from_dict(parse_toml(preset(unfreeze="12")))
    model = build.build_model(exp, DataInfo("test:pictures", (32, 32, 1), "categorical", 3, ["a", "b", "c"]))
    (backbone,) = fine_tune.backbones(model)
    assert fine_tune.switch_due(exp.train.fine_tune, model, 1) and not fine_tune.switch_due(
        exp.train.fine_tune, model, 0
    )
    before, after = fine_tune.switch(model, exp.train.fine_tune)
    assert before == 3 + 3 * model.layers[-1].kernel.shape[0]  # the new head alone
    assert after > before
    assert [layer.trainable for layer in backbone.layers[-12:]] == [True] * 12
    assert not any(layer.trainable for layer in backbone.layers[:-12])
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    assert not fine_tune.switch_due(exp.train.fine_tune, model, 1)


def test_fine_tuning_needs_a_frozen_backbone_and_an_epoch_after_the_switch():
    with pytest.raises(UserError) as caught:
        experiment_from_dict(parse_toml(preset(epochs=2, after=2)))
    assert caught.value.location == "train.fine_tune.after_epoch"
    with pytest.raises(UserError) as caught:
        experiment_from_dict(parse_toml(preset().replace("trainable = false", "trainable = true")))
    assert caught.value.location == "train.fine_tune"


@pytest.mark.slow
def test_a_kill_after_the_switch_resumes_in_the_fine_tuning_phase(tmp_path, runs_dir, monkeypatch):
    """The run unfreezes after epoch 1 (the event log's trainable count grows, the rate drops); a
    kill -9 in epoch 3 resumes from the epoch-2 backup, unfreezes again before it goes on, and
    finishes. Only the top 3 backbone layers unfreeze, which keeps the traced gradient small."""
    monkeypatch.setenv("TFBENCH_CHECKPOINT_SECONDS", "0")  # a backup at every epoch
    exp = load_experiment(
        write_preset(tmp_path, preset(epochs=4, after=1, unfreeze="3", data=pictures(tmp_path)), "tune.toml")
    )
    run_dir = start_runner(exp, runs_dir)
    wait_for_event(run_dir, lambda e: e["event"] == "epoch_started" and e["epoch"] == 3, timeout=240)
    os.kill(read_runner(run_dir)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runner_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backup_epoch(run_dir) == 2
    first = ev.read_events(run_dir)
    (change,) = [e for e in first if e["event"] == "setting_changed" and e["name"] == "trainable_params"]
    assert change["epoch"] == 1 and change["new"] > change["old"]  # unfrozen after epoch 1
    rates = [e.get("lr") for e in first if e["event"] == "epoch_ended"]
    assert rates[0] == pytest.approx(1e-3) and rates[1] == pytest.approx(1e-5)
    result = tfbench_here("resume", run_dir, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "completed"
    events = ev.read_events(run_dir)
    resumed_at = max(i for i, e in enumerate(events) if e["event"] == "run_started")
    after_resume = events[resumed_at:]
    assert any(e["event"] == "setting_changed" and e["name"] == "trainable_params" for e in after_resume)
    rates = [e.get("lr") for e in after_resume if e["event"] == "epoch_ended"]
    assert rates and all(r == pytest.approx(1e-5) for r in rates)
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4]
