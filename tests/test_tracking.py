"""Runs others can read: `[track]` mirrors a run to TensorBoard's files and to MLflow as it trains,
`tfbench runs export` mirrors a finished one, `tfbench watch tb:LOGDIR` reads a TensorBoard log —
each read back with TensorBoard's and MLflow's own readers, offline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_runs import spiral_preset, write_preset

from tfbench.cli import cli
from tfbench.engine.events import RunState
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.rundir import read_history
from tfbench.spec import experiment_from_dict, load_experiment
from tfbench.tracking.mlflow_runs import flat_params, legal_name
from tfbench.tracking.tensorboard_files import read_scalars
from tfbench.tracking.tensorboard_tail import TensorBoardTail
from tfbench.tracking.tracker import read_tracking

TRACK = """
[track]
tensorboard = true
mlflow = "sqlite:///mlflow.db"
"""


def _metrics_equal(history: list[dict], series: dict[str, dict[int, float]]) -> None:
    """Every epoch's every metric (and learning rate) in `series` equals history.csv's, in float32."""
    keys = [k for k in history[0] if k not in ("epoch", "seconds")]
    assert set(keys) <= set(series), (keys, sorted(series))
    for row in history:
        for key in keys:
            assert np.float32(series[key][row["epoch"]]) == np.float32(row[key]), (key, row["epoch"])


def _mlflow_series(uri: str, run_id: str, keys: list[str]) -> dict[str, dict[int, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return {k: {m.step: m.value for m in client.get_metric_history(run_id, legal_name(k))} for k in keys}


@pytest.fixture
def tracked_run(tmp_path: Path, runs_dir: Path) -> Run:
    """A 4-epoch spiral run with `[track] tensorboard = true` and an MLflow store beside its preset."""
    preset = write_preset(tmp_path, spiral_preset(epochs=4) + TRACK, "tracked.toml")
    run = Run(load_experiment(preset), runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    return run


@pytest.mark.slow
def test_a_tracked_run_reads_back_from_mlflow_and_tensorboard_equal_to_its_history(tracked_run, tmp_path):
    """MLflow's metric history and TensorBoard's event files hold every epoch of history.csv."""
    from mlflow.tracking import MlflowClient

    run_dir = tracked_run.run_dir
    history = read_history(run_dir)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    _metrics_equal(history, read_scalars(run_dir / "tensorboard"))
    record = read_tracking(run_dir)["mlflow"]
    assert record["uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"  # beside the preset, not the working folder
    keys = [k for k in history[0] if k not in ("epoch", "seconds")]
    _metrics_equal(history, _mlflow_series(record["uri"], record["run_id"], keys))
    client = MlflowClient(record["uri"])
    mirrored = client.get_run(record["run_id"])
    assert mirrored.info.status == "FINISHED" and mirrored.info.run_name == run_dir.name
    assert mirrored.data.params["train.optimizer.learning_rate"] == "0.01"
    assert mirrored.data.params["model.layers.0.units"] == "16"
    artifacts = {a.path for a in client.list_artifacts(record["run_id"], "exports")}
    assert "exports/report.json" in artifacts and "exports/model.keras" in artifacts
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the database too


@pytest.mark.slow
def test_runs_export_mirrors_a_finished_run_once(tmp_path, runs_dir):
    """`tfbench runs export` writes a finished run to both; a second export leaves MLflow's copy alone."""
    preset = write_preset(tmp_path, spiral_preset(epochs=3), "plain.toml")
    run = Run(load_experiment(preset), runs_dir=runs_dir)
    assert run.train() == "completed"
    uri = f"sqlite:///{tmp_path / 'exported.db'}"
    logs = tmp_path / "tb"
    args = ["runs", "export", str(runs_dir), "--mlflow", uri, "--tensorboard", str(logs), "--experiment", "spirals"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert f"MLflow run {read_tracking(run.run_dir)['mlflow']['run_id']} in {uri}" in first.output
    history = read_history(run.run_dir)
    _metrics_equal(history, read_scalars(logs / run.run_dir.name))
    record = read_tracking(run.run_dir)["mlflow"]
    _metrics_equal(
        history, _mlflow_series(uri, record["run_id"], [k for k in history[0] if k not in ("epoch", "seconds")])
    )
    again = CliRunner().invoke(cli, args[:5] + ["--experiment", "spirals"])
    assert again.exit_code == 0 and "there already; left as it is" in again.output


def test_runs_export_needs_a_destination_and_a_known_store():
    """No destination, or an MLflow URI MLflow has no store for: one line, exit 2."""
    none = CliRunner().invoke(cli, ["runs", "export", "runs"])
    assert none.exit_code == 2 and "--mlflow URI, --tensorboard DIR" in none.output
    bad = CliRunner().invoke(cli, ["runs", "export", "runs", "--mlflow", "htp://box:5000"])
    assert bad.exit_code == 2 and "--mlflow: unknown tracking URI scheme 'htp'" in bad.output


@pytest.mark.slow
def test_a_tensorboard_log_is_watched_as_a_run(tracked_run):
    """`tfbench watch tb:LOGDIR` folds a TensorBoard log into the live view's state, epoch by epoch."""
    logdir = tracked_run.run_dir / "tensorboard"
    state = RunState.from_events(TensorBoardTail(logdir, poll_seconds=0).read())
    history = read_history(tracked_run.run_dir)
    assert state.epoch_numbers == [1, 2, 3, 4] and state.name == "tensorboard"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [np.float32(v) for v in state.history[key]] == [np.float32(r[key]) for r in history]
    assert state.learning_rates == [pytest.approx(0.01)] * 4
    piped = CliRunner().invoke(cli, ["watch", f"tb:{logdir}"])
    assert piped.exit_code == 0 and piped.output.count("epoch ") == 4 and "val_loss" in piped.output
    missing = CliRunner().invoke(cli, ["watch", f"tb:{tracked_run.run_dir / 'checkpoints'}"])
    assert missing.exit_code == 2 and "no TensorBoard event files here" in missing.output


def test_train_tensorboard_in_an_older_preset_is_track_tensorboard():
    """`train.tensorboard = true` still works: it is `[track] tensorboard = true`, saved that way."""
    exp = experiment_from_dict({"train": {"tensorboard": True}})
    assert exp.track.tensorboard is True
    assert "tensorboard" not in exp.to_dict()["train"] and exp.to_dict()["track"] == {"tensorboard": True}
    assert "track" not in experiment_from_dict({"train": {"tensorboard": False}}).to_dict()


def test_a_tracking_uri_is_checked_and_resolved_against_the_preset(tmp_path):
    """A relative SQLite store is the preset folder's; a server is left alone; a typo is located."""
    preset = write_preset(tmp_path, spiral_preset() + '[track]\nmlflow = "sqlite:///stores/runs.db"\n', "p.toml")
    assert load_experiment(preset).track.mlflow == f"sqlite:///{tmp_path / 'stores' / 'runs.db'}"
    served = experiment_from_dict({"track": {"mlflow": "http://tracking.box:5000"}})
    assert served.track.mlflow == "http://tracking.box:5000"
    with pytest.raises(UserError) as err:
        experiment_from_dict({"track": {"mlflow": "htp://box"}})
    assert err.value.location == "track.mlflow" and "unknown tracking URI scheme" in str(err.value)


def test_parameters_get_names_mlflow_accepts():
    """List indices become path parts; other characters become `_`; long names stay unique."""
    params = flat_params({"model": {"layers": [{"type": "Dense", "units": 8}]}, "train": {"metrics": ["auto"]}})
    assert params == {"model.layers.0.type": "Dense", "model.layers.0.units": "8", "train.metrics": '["auto"]'}
    assert legal_name("val_top-k@5 (x)") == "val_top-k_5 _x_"
    assert legal_name("/a//b/") == "a/b"
    long = legal_name("x" * 300)
    assert len(long) == 250 and long != legal_name("x" * 299 + "y")
    assert not math.isnan(float(flat_params({"lr": 0.001})["lr"]))


@pytest.mark.slow
def test_track_without_its_packages_is_a_located_error_before_any_run_dir(tmp_path, runs_dir):
    """Where tensorboard and mlflow cannot be imported, `[track]` is refused at once, naming the extra."""
    import subprocess
    import sys

    from tiny_runs import REPO, without_modules

    env = without_modules(tmp_path, "tensorboard", "mlflow")
    preset = write_preset(tmp_path, spiral_preset(epochs=1) + TRACK, "tracked.toml")
    done = subprocess.run(
        [sys.executable, "-m", "tfbench", "run", str(preset), "--runs-dir", str(runs_dir), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "track.tensorboard: TensorBoard files are written with the tensorboard package" in done.stderr
    assert "pip install 'tfbench[tensorboard]'" in done.stderr and not list(runs_dir.iterdir())
