"""System sampling: CPU/RAM always, GPUs through NVML when present, never TensorFlow's import."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from tfbench import system
from tfbench.engine.events import SYSTEM, EventWriter, RunState, read_events

REPO = Path(__file__).resolve().parent.parent

MIB = 1024 * 1024
GIB = 1024**3


@pytest.fixture
def fresh_nvml(monkeypatch):
    """Forget any earlier NVML initialisation so a test decides what `import pynvml` finds."""
    monkeypatch.setattr(system, "_nvml_state", {"tried": False, "module": None, "note": ""})

    def install(module):
        monkeypatch.setitem(sys.modules, "pynvml", module)

    return install


def fake_pynvml(init_error: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's `pynvml` with two GPUs, the second one a MIG slice.

    It follows the real API: handles by index, names as bytes (older bindings) or str, memory in
    bytes, power in milliwatts, NVMLError for what a device does not support.
    """
    nvml = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU = 0
    me = os.getpid()

    def nvmlInit():
        if init_error:
            raise NVMLError("Driver Not Loaded")

    def unsupported(*_):
        raise NVMLError("Not Supported")

    nvml.nvmlInit = nvmlInit
    nvml.nvmlDeviceGetCount = lambda: 2
    nvml.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    nvml.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3" if h == "handle0" else "NVIDIA A100-SXM4-40GB"
    nvml.nvmlDeviceGetUtilizationRates = lambda h: (
        types.SimpleNamespace(gpu=87, memory=40) if h == "handle0" else unsupported()
    )
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        used=12 * GIB, total=int(79.6 * GIB), free=int(67.6 * GIB)
    )
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: 61 if h == "handle0" else unsupported()
    nvml.nvmlDeviceGetPowerUsage = lambda h: 312_500 if h == "handle0" else unsupported()
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: (
        [types.SimpleNamespace(pid=me, usedGpuMemory=512 * MIB)] if h == "handle0" else []
    )
    # The same process seen again as a graphics client, memory unknown (WDDM reports None).
    nvml.nvmlDeviceGetGraphicsRunningProcesses = lambda h: (
        [types.SimpleNamespace(pid=me, usedGpuMemory=None)] if h == "handle0" else unsupported()
    )
    return nvml


def test_sample_without_gpu_has_cpu_and_ram(fresh_nvml):
    """No nvidia-ml-py at all: no GPUs and a note, the CPU and RAM fields as numbers."""
    fresh_nvml(None)  # `import pynvml` raises ImportError
    sample = system.sample()
    assert sample["gpus"] == []
    assert "nvidia-ml-py" in sample["gpu_note"]
    assert isinstance(sample["cpu_percent"], float) and 0.0 <= sample["cpu_percent"] <= 100.0
    assert sample["rss_mb"] > 1.0
    assert 0 < sample["ram_used_mb"] <= sample["ram_total_mb"]
    assert sample["tf_memory"] == {} or "tensorflow" in sys.modules
    json.dumps(sample)  # event-ready: plain JSON


def test_sample_without_driver_is_a_note_not_an_error(fresh_nvml):
    fresh_nvml(fake_pynvml(init_error=True))
    sample = system.sample()
    assert sample["gpus"] == []
    assert "Driver Not Loaded" in sample["gpu_note"]
    assert system.describe_devices()[0].startswith("CPU only")


def test_sample_reads_every_gpu_through_nvml(fresh_nvml):
    fresh_nvml(fake_pynvml())
    sample = system.sample()
    assert "gpu_note" not in sample
    first, second = sample["gpus"]
    assert first == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "util": 87.0,
        "mem_used_mb": 12 * 1024.0,
        "mem_total_mb": round(79.6 * 1024, 1),
        "temperature": 61.0,
        "power_w": 312.5,
        "processes": [{"pid": os.getpid(), "name": first["processes"][0]["name"], "mem_mb": 512.0}],
    }
    assert first["processes"][0]["name"] not in ("", "?")  # our own process, named by psutil
    # A MIG slice answers "Not Supported" to utilisation, temperature and power: None, not a crash.
    assert second["name"] == "NVIDIA A100-SXM4-40GB"
    assert second["util"] is None and second["temperature"] is None and second["power_w"] is None
    assert second["mem_total_mb"] > 0 and second["processes"] == []
    json.dumps(sample)


def test_describe_devices_names_gpus_with_memory(fresh_nvml):
    fresh_nvml(fake_pynvml())
    assert system.describe_devices() == [
        "GPU 0: NVIDIA H100 80GB HBM3, 79.6 GiB",
        "GPU 1: NVIDIA A100-SXM4-40GB, 79.6 GiB",
    ]


def test_describe_devices_cpu_only(fresh_nvml):
    fresh_nvml(None)
    (line,) = system.describe_devices()
    assert line.startswith("CPU only: ")
    assert f"{os.cpu_count()} cores" in line and "GiB RAM" in line


def test_sample_is_cheap():
    system.sample()  # the first call initialises NVML (or finds it missing)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        system.sample()
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.005


def test_sampling_never_imports_tensorflow():
    """A fresh interpreter: sampling and describing leave TensorFlow and Keras unimported."""
    code = (
        "import sys, tfbench.system as s\n"
        "s.sample(); s.sample(); s.describe_devices()\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'textual') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_sampling_does_not_initialise_tensorflow():
    """With TensorFlow imported but not initialised, a sample must leave device setup possible."""
    code = (
        "import tensorflow as tf, tfbench.system as s\n"
        "assert s.sample()['tf_memory'] == {}\n"
        "from tfbench.engine.strategy import split_cpu\n"
        "split_cpu(2)\n"  # raises if the sample had initialised the runtime
        "print(len(tf.config.list_logical_devices('CPU')), s.sample()['tf_memory'])\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "2 {}"  # no GPU: TensorFlow keeps no CPU memory stats


def test_sampler_emits_quickly_and_stops_promptly():
    events: list[dict] = []
    got_three = threading.Event()

    def emit(kind, **fields):
        events.append({"event": kind, **fields})
        if len(events) >= 3:
            got_three.set()

    sampler = system.SystemSampler(emit, interval=0.05)
    sampler.start()
    assert got_three.wait(5.0), f"only {len(events)} samples in 5 s"
    start = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - start < 0.5
    assert not sampler.running
    count = len(events)
    time.sleep(0.2)
    assert len(events) == count  # nothing after stop
    assert all(e["event"] == "system" and "cpu_percent" in e and "gpus" in e for e in events)


def test_sampler_with_a_long_interval_stops_at_once():
    """Stopping wakes the thread through an Event instead of waiting out the interval."""
    events = []
    sampler = system.SystemSampler(lambda kind, **f: events.append(kind), interval=60.0)
    sampler.start()
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == ["system"]  # the first sample comes at once
    start = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - start < 0.5


def test_sampler_survives_a_failing_emit():
    calls = []

    def emit(kind, **fields):
        calls.append(kind)
        raise RuntimeError("a broken view")

    sampler = system.SystemSampler(emit, interval=0.02)
    sampler.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert len(calls) >= 3


def test_sampler_feeds_the_event_log(tmp_path):
    """Samples written through an EventWriter fold into `RunState.system`."""
    writer = EventWriter(tmp_path / "events.jsonl")
    sampler = system.SystemSampler(writer.emit, interval=0.02)
    sampler.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(read_events(tmp_path / "events.jsonl")) < 2:
        time.sleep(0.02)
    sampler.stop()
    writer.close()
    events = read_events(tmp_path / "events.jsonl")
    assert len(events) >= 2 and {e["event"] for e in events} == {SYSTEM}
    state = RunState.from_events(events)
    assert state.system["ram_total_mb"] > 0 and isinstance(state.system["gpus"], list)
