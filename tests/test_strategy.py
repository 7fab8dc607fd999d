"""Distribution: TF_CONFIG checks, the chief, and real mirrored and multi-worker trainings.

Logical devices and multi-worker strategies must be set up before TensorFlow initialises, so
every training here runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from no_network.sitecustomize import pythonpath

from tfbench.engine import strategy
from tfbench.errors import UserError
from tfbench.spec import TrainSpec

REPO = Path(__file__).resolve().parent.parent

# Trains a tiny Dense model on fixed random data under `train.strategy = argv[1]` and prints one
# JSON line. "mirrored" also trains the same model on the default strategy for comparison.
TRAIN_SCRIPT = r"""
import json, os, sys, tempfile
from tfbench.engine import strategy as s
from tfbench.spec import TrainSpec

kind = sys.argv[1]
if kind == "mirrored":
    s.split_cpu(2)
chosen = s.make_strategy(TrainSpec(strategy=kind))

import numpy as np
import tensorflow as tf
import keras

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32") + 0.1).astype("float32")


def train(under):
    data = s.with_data_sharding(tf.data.Dataset.from_tensor_slices((x, y)).batch(16))
    with under.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    history = model.fit(data, epochs=2, verbose=0, validation_data=data)
    weights = model.get_weights()
    saved = None
    if s.is_chief():  # Keras' own formats save without collectives: the chief saves alone
        saved = os.path.join(tempfile.mkdtemp(), "model.keras")
        model.save(saved)
        saved = [list(w.shape) for w in keras.saving.load_model(saved).get_weights()]
    evaluated = model.evaluate(data, verbose=0, return_dict=True)  # all workers again, together
    return {
        "strategy": s.describe_strategy(under),
        "replica_batch": s.replica_batch_size(16, under),
        "loss": history.history["loss"],
        "val_loss": history.history["val_loss"],
        "evaluated": evaluated["loss"],
        "saved": saved,
        "shapes": [list(w.shape) for w in weights],
        "weights": [float(w.sum()) for w in weights],
    }


result = {"run": train(chosen), "chief": s.is_chief()}
if kind == "mirrored":
    result["single"] = train(tf.distribute.get_strategy())
    result["auto"] = s.describe_strategy(s.make_strategy(TrainSpec(strategy="auto")))
    s.split_cpu(2)  # already split: nothing to do
    try:
        s.split_cpu(3)
        result["late_split"] = "allowed"
    except RuntimeError as error:
        result["late_split"] = str(error)
print("RESULT " + json.dumps(result), flush=True)
"""


def tf_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=pythonpath(REPO))
    env.update(extra)
    return env


def start(script: Path, kind: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), kind],
        cwd=REPO,
        env=tf_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: list[subprocess.Popen], timeout: float) -> list[dict]:
    """Each process's RESULT line; kills them all if any runs past `timeout`."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert proc.returncode == 0 and lines, f"exit {proc.returncode}\n{err[-3000:]}"
            results.append(json.loads(lines[-1][len("RESULT ") :]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(workers: list[str], index: int, task_type: str = "worker", **cluster) -> str:
    return json.dumps({"cluster": {"worker": workers, **cluster}, "task": {"type": task_type, "index": index}})


# -- TF_CONFIG and the chief --------------------------------------------------------------------

WORKERS = ["127.0.0.1:2222", "127.0.0.1:2223"]


def test_multi_worker_without_tf_config_is_a_user_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError) as caught:
        strategy.make_strategy(TrainSpec(strategy="multi_worker"))
    assert caught.value.location == "train.strategy"
    assert "TF_CONFIG" in caught.value.message and "cluster" in caught.value.hint


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no 'cluster'"),
        ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "no 'worker'"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
        ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "not 'host:port'"),
        ('{"cluster": {"worker": ["h:1"]}}', "no 'task'"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "task.type 'chief'"),
        ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}', "outside"),
    ],
)
def test_invalid_tf_config_is_located_at_the_strategy(monkeypatch, text, complaint):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(UserError) as caught:
        strategy.make_strategy(TrainSpec(strategy="multi_worker"))
    assert caught.value.location == "train.strategy"
    assert complaint in caught.value.message


def test_parse_tf_config_accepts_a_cluster():
    env = {"TF_CONFIG": tf_config(WORKERS, 1)}
    assert strategy.parse_tf_config(environ=env) == {
        "cluster": {"worker": WORKERS},
        "task": {"type": "worker", "index": 1},
    }
    assert strategy.parse_tf_config(environ={}) is None
    ipv6 = {"TF_CONFIG": tf_config(["[::1]:2222"], 0)}
    assert strategy.parse_tf_config(environ=ipv6)["cluster"]["worker"] == ["[::1]:2222"]


def test_is_chief():
    assert strategy.is_chief(environ={})
    assert strategy.is_chief(environ={"TF_CONFIG": tf_config(WORKERS, 0)})
    assert not strategy.is_chief(environ={"TF_CONFIG": tf_config(WORKERS, 1)})
    with_chief = {"chief": ["127.0.0.1:2221"]}
    assert strategy.is_chief(environ={"TF_CONFIG": tf_config(WORKERS, 0, "chief", **with_chief)})
    assert not strategy.is_chief(environ={"TF_CONFIG": tf_config(WORKERS, 0, **with_chief)})
    evaluator = {"evaluator": ["127.0.0.1:2224"]}
    assert not strategy.is_chief(environ={"TF_CONFIG": tf_config(WORKERS, 0, "evaluator", **evaluator)})


def test_only_the_chief_saves_into_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    assert strategy.worker_dir(run_dir, environ={}) == run_dir
    other = strategy.worker_dir(run_dir, environ={"TF_CONFIG": tf_config(WORKERS, 1)})
    assert other != run_dir and other.is_dir() and not other.is_relative_to(run_dir)
    assert "worker1" in other.name
    other.rmdir()


def test_replica_batch_size_is_the_global_batch_split():
    import tensorflow as tf

    assert strategy.replica_batch_size(32, tf.distribute.get_strategy()) == 32
    with pytest.raises(UserError) as caught:
        strategy.replica_batch_size(2, type("FourReplicas", (), {"num_replicas_in_sync": 4})())
    assert caught.value.location == "data.batch_size"


def test_importing_strategy_does_not_import_tensorflow():
    code = "import sys, tfbench.engine.strategy\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- real trainings -----------------------------------------------------------------------------


def assert_same_training(run: dict, single: dict) -> None:
    """Same shapes; and since the batch is global, the same losses and weights up to rounding."""
    assert run["shapes"] == single["shapes"] == [[4, 3], [3], [3, 1], [1]]
    for key in ("loss", "val_loss", "evaluated"):
        assert run[key] == pytest.approx(single[key], rel=1e-3)
    assert run["weights"] == pytest.approx(single["weights"], rel=1e-3, abs=1e-4)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> dict:
    """The training script's result under "mirrored": the mirrored run and the same model trained on the
    default strategy (`single`), the reference the multi-worker run is compared with too."""
    script = tmp_path_factory.mktemp("mirrored") / "train.py"
    script.write_text(TRAIN_SCRIPT)
    (result,) = finish([start(script, "mirrored")], timeout=120)
    return result


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus(mirrored):
    result = mirrored
    run, single = result["run"], result["single"]
    assert run["strategy"]["type"] == "MirroredStrategy"
    assert run["strategy"]["replicas"] == 2
    assert [d.rsplit("/", 1)[-1] for d in run["strategy"]["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert run["replica_batch"] == 8 and single["replica_batch"] == 16
    assert single["strategy"]["replicas"] == 1
    assert_same_training(run, single)
    # "auto" mirrors GPUs only: on CPUs it is the default strategy.
    assert result["auto"]["replicas"] == 1 and result["auto"]["type"] != "MirroredStrategy"
    assert "before TensorFlow initialises" in result["late_split"]
    assert result["chief"] is True and run["saved"] == run["shapes"]


@pytest.mark.slow
def test_multi_worker_on_loopback(tmp_path, mirrored):
    """Two local workers train together; the same model trained alone on the default strategy (in
    the mirrored script's process) is what they are compared with.

    Two processes importing TensorFlow at once.
    """
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    procs = [
        start(script, "multi_worker", TF_CONFIG=tf_config(workers, 0)),
        start(script, "multi_worker", TF_CONFIG=tf_config(workers, 1)),
    ]
    first, second = finish(procs, timeout=90)
    alone = mirrored["single"]
    assert alone["strategy"]["replicas"] == 1
    for worker in (first, second):
        assert worker["run"]["strategy"]["type"] == "CollectiveAllReduceStrategy"
        assert worker["run"]["strategy"]["replicas"] == 2
        assert worker["run"]["replica_batch"] == 8
        assert_same_training(worker["run"], alone)
    assert first["chief"] is True and second["chief"] is False
    assert first["run"]["saved"] == alone["shapes"] and second["run"]["saved"] is None
    # Every worker holds the same synchronised model and reports the same global metrics.
    assert first["run"]["weights"] == pytest.approx(second["run"]["weights"], rel=1e-6)
    assert first["run"]["loss"] == pytest.approx(second["run"]["loss"], rel=1e-6)
