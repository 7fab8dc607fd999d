"""The profiler with a verdict: real captures judged input- or compute-bound, the trace format's GPU
plane, the control channel, and a runner that profiles with TensorBoard unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import spiral_preset, tfbench_process, without_modules, write_preset

from tfbench.engine import events as ev
from tfbench.engine.profile_summary import describe, summarize, verdict
from tfbench.engine.xplane import Plane, Trace
from tfbench.spec import experiment_from_dict

SLEEP = 0.005  # the deliberate cost of every sample in the slow pipeline's map
IMAGE = (24, 24, 3)
BATCH = 16
STEPS = 11  # batches an epoch: a capture of 10 steps fits, whatever batch it starts on
CAPTURES = 10


def _bundle(cached: bool):
    """A DataBundle whose map sleeps 5 ms a sample in a `py_function` (cached after the map or not).

    Prefetching and tf.data's own rewrites are off, so the training step waits for every batch the
    slow pipeline makes: what the profile must call input-bound.
    """
    import numpy as np
    import tensorflow as tf

    from tfbench.data.info import DataBundle, DataInfo

    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, *IMAGE), dtype=np.float32)
    y = rng.integers(0, 4, STEPS * BATCH)

    def slow(sample):
        time.sleep(SLEEP)
        return sample

    def load(a, b):
        return tf.ensure_shape(tf.py_function(slow, [a], tf.float32), IMAGE), b

    data = tf.data.Dataset.from_tensor_slices((x, y)).map(load)
    if cached:
        data = data.cache()
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    options.experimental_optimization.map_parallelization = False
    data = data.batch(BATCH).with_options(options)
    info = DataInfo(
        source="builtin:test", input_shape=IMAGE, label_kind="categorical", num_classes=4, sizes={"train": len(x)}
    )
    return DataBundle(train=data, validation=None, info=info, steps_per_epoch=STEPS)


def _model():
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input(IMAGE),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _profiled_run(runs_dir: Path, cached: bool) -> list[dict]:
    """Train 11 epochs, asking through the controls for a 10-step profile in each epoch after the
    first (the first fills the cache and traces the model); return the `profile` events."""
    import keras

    from tfbench.engine.run import Run

    layers = [
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 4, "activation": "softmax"},
    ]  # what `_model` builds, for the run's train.py
    exp = experiment_from_dict(
        {
            "name": "slowmap",
            "model": {"layers": layers},
            "train": {"epochs": CAPTURES + 1, "seed": 1},
            "export": {"formats": []},
        }
    )

    class AskEachEpoch(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.run: Run | None = None

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            if epoch >= 1:
                assert self.run.controls.profile(10, f"epoch-{epoch + 1}")

    asker = AskEachEpoch()
    run = Run(exp, runs_dir=runs_dir, extra_callbacks=[asker])
    asker.run = run
    run.prepare(bundle=_bundle(cached), model=_model())
    assert run.train() == "completed", run.reason
    return [e for e in ev.read_events(run.run_dir) if e["event"] == ev.PROFILE]


@pytest.mark.slow
@pytest.mark.parametrize("cached, kind", [(False, "input"), (True, "compute")])
def test_a_slow_map_is_input_bound_and_the_same_pipeline_cached_is_compute_bound(runs_dir, cached, kind):
    """Ten captures in a row: a 5 ms `py_function` sleep in `map` waits on data; cached, the model computes."""
    profiles = _profiled_run(runs_dir, cached)
    assert [p["command_id"] for p in profiles] == [f"epoch-{e}" for e in range(2, CAPTURES + 2)]
    for profile in profiles:
        assert "error" not in profile, profile.get("error")
        assert profile["steps"] == 10
        split = profile["split"]
        assert sum(split.values()) == pytest.approx(1.0)
        assert profile["verdict"]["kind"] == kind, (split, profile["verdict"])
        run_dir = runs_dir / next(p.name for p in runs_dir.iterdir())
        assert (run_dir / profile["trace"]).is_file() and (run_dir / profile["summary"]).is_file()
    if not cached:
        assert profiles[0]["verdict"]["line"].startswith("input-bound:")
        assert "data.cache" in profiles[0]["verdict"]["line"]
        assert profiles[0]["stages"][0]["stage"] in ("Map", "MapAndBatch", "ParallelMapV2")
        assert profiles[0]["top_ops"][0]["type"] == "EagerPyFunc"  # the sleep, by its self time
    else:
        assert all(p["split"]["input"] < 0.2 for p in profiles)


# -- the trace format, GPU plane included -----------------------------------------------------------------


def _space(with_gpu: bool, kernel_busy: float):
    """An XSpace as TensorFlow writes one: 4 marked 10 ms steps on the host, each running its
    compiled function for 9 ms after waiting 1 ms on data; a GPU whose stream runs kernels for
    `kernel_busy` of each step, then a host-to-device copy."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace(hostnames=["box"])
    host = space.planes.add(id=0, name="/host:CPU")
    names = {1: "train", 2: "EagerExecute", 3: "IteratorGetNextOp::DoCompute", 4: "model/dense/MatMul:MatMul"}
    for key, name in names.items():
        host.event_metadata[key].id, host.event_metadata[key].name = key, name
    for key, name in {1: "step_num", 2: "is_func", 3: "tf_op", 4: "kernel_details"}.items():
        host.stat_metadata[key].id, host.stat_metadata[key].name = key, name
    python = host.lines.add(id=1, name="python", timestamp_ns=0)
    data = host.lines.add(id=2, name="tf_data_iterator_get_next/1", timestamp_ns=0)
    ops = host.lines.add(id=3, name="tf_Compute/1", timestamp_ns=0)
    ms = 1_000_000_000  # picoseconds
    for step in range(4):
        t = step * 10 * ms
        marker = python.events.add(metadata_id=1, offset_ps=t, duration_ps=10 * ms)
        marker.stats.add(metadata_id=1, int64_value=step)
        call = python.events.add(metadata_id=2, offset_ps=t + ms // 2, duration_ps=9 * ms)
        call.stats.add(metadata_id=2, int64_value=1)
        data.events.add(metadata_id=3, offset_ps=t + ms // 2, duration_ps=ms)
        ops.events.add(metadata_id=4, offset_ps=t + 2 * ms, duration_ps=6 * ms)
    if with_gpu:
        gpu = space.planes.add(id=1, name="/device:GPU:0")
        gpu.event_metadata[1].id, gpu.event_metadata[1].name = 1, "ampere_sgemm_64x32_nn"
        gpu.event_metadata[2].id, gpu.event_metadata[2].name = 2, "MemcpyH2D"
        gpu.stat_metadata[1].id, gpu.stat_metadata[1].name = 1, "tf_op"
        gpu.stat_metadata[2].id, gpu.stat_metadata[2].name = 2, "model/dense/MatMul:MatMul"
        stream = gpu.lines.add(id=7, name="Stream #7(Kernel,MemcpyH2D)", timestamp_ns=0)
        gpu.lines.add(id=8, name="XLA Ops", timestamp_ns=0).events.add(metadata_id=1, offset_ps=0, duration_ps=40 * ms)
        for step in range(4):
            t = step * 10 * ms
            copy = stream.events.add(metadata_id=2, offset_ps=t + ms, duration_ps=ms // 2)
            kernel = stream.events.add(metadata_id=1, offset_ps=t + 2 * ms, duration_ps=int(kernel_busy * 10 * ms))
            kernel.stats.add(metadata_id=1, ref_value=2)
            assert copy.duration_ps and kernel.duration_ps
    return space


def _trace(space) -> Trace:
    planes = {p.name: p for p in space.planes}
    devices = [Plane(p) for name, p in planes.items() if name.startswith("/device:GPU:")]
    return Trace(Path("box.xplane.pb"), Plane(planes["/host:CPU"]), devices, list(space.hostnames))


def test_the_step_split_adds_up_and_the_ops_are_named_from_the_trace_format():
    """Input 1 ms, compute 8 ms, host 1 ms (before and after the call) of each 10 ms step; the op by
    its self time."""
    summary = summarize(_trace(_space(with_gpu=False, kernel_busy=0.0)))
    assert summary["steps"] == 4 and summary["step_ms"] == pytest.approx(10.0)
    assert summary["split"] == pytest.approx({"input": 0.10, "compute": 0.80, "host": 0.10})
    assert summary["top_ops"][0] == {"name": "model/dense/MatMul", "type": "MatMul", "ms": 6.0, "share": 1.0}
    assert summary["verdict"]["kind"] == "compute" and summary["devices"] == []


def test_the_gpu_plane_gives_kernel_time_idle_gaps_and_the_verdict():
    """A GPU busy 30 % of each step idles in gaps between steps: host-bound; busy 85 %: compute-bound."""
    idle = summarize(_trace(_space(with_gpu=True, kernel_busy=0.3)))
    (gpu,) = idle["devices"]
    assert gpu["device"] == "GPU:0"
    assert gpu["kernel"] == pytest.approx(0.30) and gpu["memcpy"] == pytest.approx(0.05)
    assert gpu["busy"] == pytest.approx(0.35) and gpu["idle"] == pytest.approx(0.65)
    assert gpu["gaps"] == 12 and gpu["longest_gap_ms"] == pytest.approx(5.0)  # the XLA Ops line is not counted
    assert gpu["top_kernels"] == [{"name": "model/dense/MatMul:MatMul", "share": 1.0}]
    assert idle["verdict"]["kind"] == "host" and "GPU:0 idles 65 %" in idle["verdict"]["line"]
    busy = summarize(_trace(_space(with_gpu=True, kernel_busy=0.78)))
    assert busy["devices"][0]["busy"] == pytest.approx(0.83)
    assert busy["verdict"]["kind"] == "compute" and "GPU:0 is busy 83 %" in busy["verdict"]["line"]
    assert any(line.startswith("GPU:0: kernels 78 %") for line in describe({**busy, "epoch": 2}))


def test_the_verdict_is_judged_on_fractions_of_the_step():
    """The same fractions give the same verdict at any speed; input ≥ 20 % wins over the rest."""
    stages = [{"stage": "Map", "ms": 80.0}]
    assert verdict({"input": 0.2, "compute": 0.1, "host": 0.7}, stages, [])["kind"] == "input"
    assert verdict({"input": 0.19, "compute": 0.5, "host": 0.31}, stages, [])["kind"] == "host"
    line = verdict({"input": 0.58, "compute": 0.35, "host": 0.07}, stages, [])["line"]
    assert line == (
        "input-bound: 58 % of each step waits on data (slowest stage: Map, 80.0 ms a step)"
        " → `data.cache`, `prefetch`, or more parallel calls"
    )


# -- a runner, profiled through its control channel, with TensorBoard unimportable --------------------------


@pytest.mark.slow
def test_a_runner_without_tensorboard_profiles_its_plan_and_a_request_from_the_command_line(tmp_path, runs_dir):
    """`train.profile` and `tfbench profile RUN_DIR` both work where tensorboard cannot be imported."""
    env = without_modules(tmp_path, "tensorboard", "tensorboard_plugin_profile", "xprof")
    probe = subprocess.run([sys.executable, "-c", "import tensorboard"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr
    preset = write_preset(
        tmp_path, spiral_preset(epochs=400, extra="profile = { epoch = 2, steps = 5 }"), "profiled.toml"
    )
    started = tfbench_process("run", str(preset), "--runs-dir", str(runs_dir), "--detach", env=env)
    assert started.returncode == 0, started.stderr
    run_dir = Path(started.stdout.strip().splitlines()[-1])
    try:
        deadline = time.monotonic() + 240
        while not any(e["event"] == ev.PROFILE for e in _events(run_dir)) and time.monotonic() < deadline:
            time.sleep(0.5)
        asked = tfbench_process("profile", str(run_dir), "--steps", "4", "--json", env=env)
        assert asked.returncode == 0, asked.stderr
        requested = json.loads(asked.stdout)
    finally:
        tfbench_process("stop", str(run_dir), env=env)
    planned = next(e for e in _events(run_dir) if e["event"] == ev.PROFILE)
    assert planned["origin"] == "plan" and planned["epoch"] == 2 and planned["steps"] == 5
    assert requested["origin"] == "request" and requested["steps"] == 4 and "error" not in requested
    assert requested["verdict"]["kind"] in ("input", "compute", "host")
    assert (run_dir / requested["summary"]).is_file()
    shown = tfbench_process("profile", str(run_dir), env=env)  # the run has ended: its last profile
    assert shown.returncode == 0 and requested["verdict"]["line"] in shown.stdout


def _events(run_dir: Path) -> list[dict]:
    return ev.read_events(run_dir) if (run_dir / ev.EVENTS_FILE).exists() else []


def test_profile_on_a_run_that_recorded_none_is_one_line(tmp_path):
    """An ended run without a profile: `error:` naming the run and what to do, exit 2."""
    from click.testing import CliRunner

    from tfbench.cli import cli

    run_dir = tmp_path / "done"
    run_dir.mkdir()
    (run_dir / ev.EVENTS_FILE).write_text(ev.encode(ev.make_event(ev.RUN_STARTED, experiment={})) + "\n")
    result = CliRunner().invoke(cli, ["profile", str(run_dir)])
    assert result.exit_code == 2
    assert "recorded no profile" in result.output and "train.profile" in result.output
