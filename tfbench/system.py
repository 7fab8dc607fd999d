"""What the machine is doing while a run trains: GPUs, TensorFlow's device memory, CPU and RAM.

Without a UI. The runner samples every few seconds and emits each sample as a `system` event
(see `tfbench.engine.events`), which the TUI's GPU panel and `tfbench watch` show. GPUs are read
through NVML (`pynvml` from nvidia-ml-py), imported only when present; a box without GPUs, without
the NVIDIA driver or without nvidia-ml-py is a normal state reported as `gpus: []` and a
`gpu_note`, never an error. TensorFlow's own memory counters are read only when TensorFlow is
already imported *and* initialised: sampling must never pay TensorFlow's import nor initialise its
devices behind the run's back (that would forbid later device configuration such as `split_cpu`).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import psutil

MB = 1024 * 1024
GIB = 1024**3

_nvml_lock = threading.Lock()
_nvml_state: dict[str, Any] = {"tried": False, "module": None, "note": ""}
_process: psutil.Process | None = None


# -- NVML ---------------------------------------------------------------------------------------


def _nvml():
    """The initialised `pynvml` module, or None with the reason kept in `_nvml_state["note"]`.

    NVML is initialised once per process: `nvmlInit` costs milliseconds and the driver either is
    there or is not, so a failure is remembered instead of retried on every sample.
    """
    with _nvml_lock:
        if _nvml_state["tried"]:
            return _nvml_state["module"]
        _nvml_state["tried"] = True
        try:
            import pynvml
        except ImportError:
            _nvml_state["note"] = "GPU monitoring needs nvidia-ml-py (pip install nvidia-ml-py)"
            return None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            _nvml_state["note"] = f"no NVIDIA GPU driver found ({_nvml_message(error)})"
            return None
        except Exception as error:  # a broken install is still just "no GPU data"
            _nvml_state["note"] = f"NVML unavailable ({error})"
            return None
        _nvml_state["module"] = pynvml
        return pynvml


def _nvml_message(error: Exception) -> str:
    try:
        return str(error)
    except Exception:  # NVMLError.__str__ itself calls into the library
        return type(error).__name__


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _try(call: Callable[[], Any]) -> Any:
    """One NVML query, or None where the device does not support it (MIG, consumer cards, …)."""
    try:
        return call()
    except Exception:
        return None


def _process_name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except Exception:  # gone, or another user's process inside a container
        return "?"


def _gpu_processes(pynvml, handle) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for query in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        procs = _try(functools.partial(getattr(pynvml, query), handle)) or []
        for proc in procs:
            pid = int(getattr(proc, "pid", 0) or 0)
            used = getattr(proc, "usedGpuMemory", None)
            mem_mb = round(used / MB, 1) if isinstance(used, int) else None
            entry = found.setdefault(pid, {"pid": pid, "name": _process_name(pid), "mem_mb": mem_mb})
            if entry["mem_mb"] is None and mem_mb is not None:
                entry["mem_mb"] = mem_mb
    return list(found.values())


def _gpu(pynvml, index: int) -> dict[str, Any] | None:
    handle = _try(lambda: pynvml.nvmlDeviceGetHandleByIndex(index))
    if handle is None:
        return None
    util = _try(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
    memory = _try(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
    temperature = _try(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    power = _try(lambda: pynvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
    name = _try(lambda: pynvml.nvmlDeviceGetName(handle))
    return {
        "index": index,
        "name": _text(name) if name is not None else f"GPU {index}",
        "util": float(util.gpu) if util is not None else None,
        "mem_used_mb": round(memory.used / MB, 1) if memory is not None else None,
        "mem_total_mb": round(memory.total / MB, 1) if memory is not None else None,
        "temperature": float(temperature) if temperature is not None else None,
        "power_w": round(power / 1000.0, 1) if power is not None else None,
        "processes": _gpu_processes(pynvml, handle),
    }


def _gpus() -> tuple[list[dict[str, Any]], str]:
    """Every GPU NVML sees (the whole box, whatever CUDA_VISIBLE_DEVICES says) and a note."""
    pynvml = _nvml()
    if pynvml is None:
        return [], _nvml_state["note"]
    count = _try(pynvml.nvmlDeviceGetCount)
    if not count:
        return [], "no NVIDIA GPU on this machine" if count == 0 else "NVML could not count the GPUs"
    gpus = [gpu for gpu in (_gpu(pynvml, i) for i in range(count)) if gpu is not None]
    return gpus, "" if gpus else "NVML could not read the GPUs"


# -- TensorFlow ---------------------------------------------------------------------------------


def _tf_memory() -> dict[str, dict[str, float]]:
    """TensorFlow's current/peak memory per GPU, only if TF is imported and already initialised.

    `tf.config.experimental.get_memory_info` initialises the TF runtime when it is not yet, which
    would freeze device configuration the run may still be doing; so the eager context's handle
    is checked first. The CPU keeps no such statistics, so only GPUs appear.
    """
    tf = sys.modules.get("tensorflow")
    context = sys.modules.get("tensorflow.python.eager.context")
    if tf is None or context is None:
        return {}
    try:
        if getattr(context.context(), "_context_handle", None) is None:
            return {}
        memory = {}
        for device in tf.config.list_logical_devices("GPU"):
            name = device.name.split("device:")[-1]  # "/device:GPU:0" -> "GPU:0"
            info = _try(functools.partial(tf.config.experimental.get_memory_info, name))
            if info:
                memory[name] = {
                    "current_mb": round(info["current"] / MB, 1),
                    "peak_mb": round(info["peak"] / MB, 1),
                }
        return memory
    except Exception:
        return {}


# -- the sample ---------------------------------------------------------------------------------


def sample() -> dict[str, Any]:
    """One system sample: the fields of a `system` event.

    Cheap (a few /proc reads and, with GPUs, a few NVML calls) and never raises: whatever cannot
    be read is left out or None.

    Returns:
        cpu_percent (whole machine, since the previous sample; 0.0 on the very first),
        process_cpu_percent (this process; may exceed 100 on several cores), rss_mb (this
        process), ram_used_mb, ram_total_mb, gpus (see the `system` event), tf_memory
        ({"GPU:0": {current_mb, peak_mb}}), and gpu_note when there are no GPU data.
    """
    global _process
    result: dict[str, Any] = {}
    try:
        if _process is None:
            _process = psutil.Process(os.getpid())
        result["cpu_percent"] = float(psutil.cpu_percent(interval=None))
        result["process_cpu_percent"] = float(_process.cpu_percent(interval=None))
        result["rss_mb"] = round(_process.memory_info().rss / MB, 1)
        memory = psutil.virtual_memory()
        result["ram_used_mb"] = round((memory.total - memory.available) / MB, 1)
        result["ram_total_mb"] = round(memory.total / MB, 1)
    except Exception:
        result.setdefault("cpu_percent", 0.0)
    try:
        gpus, note = _gpus()
    except Exception as error:
        gpus, note = [], f"GPU monitoring failed ({error})"
    result["gpus"] = gpus
    if note:
        result["gpu_note"] = note
    result["tf_memory"] = _tf_memory()
    return result


def describe_devices() -> list[str]:
    """Human lines about the compute devices, for the GPU panel before any sample arrives.

    Returns:
        One line per GPU ("GPU 0: NVIDIA H100 80GB HBM3, 79.6 GiB"), or a single line starting
        "CPU only" with the core count and RAM (and why no GPU is listed, when known).
    """
    try:
        gpus, note = _gpus()
    except Exception as error:
        gpus, note = [], str(error)
    if gpus:
        lines = []
        for gpu in gpus:
            total = gpu.get("mem_total_mb")
            size = f", {total * MB / GIB:.1f} GiB" if total else ""
            lines.append(f"GPU {gpu['index']}: {gpu['name']}{size}")
        return lines
    try:
        cores = psutil.cpu_count(logical=True) or 0
        ram = psutil.virtual_memory().total / GIB
        line = f"CPU only: {cores} cores, {ram:.1f} GiB RAM"
    except Exception:
        line = "CPU only"
    return [line + (f" — {note}" if note else "")]


class SystemSampler:
    """Emits a `system` event every `interval` seconds from a daemon thread.

    A daemon thread so a forgotten sampler never keeps a finished runner alive; `stop` wakes it
    through an Event, so stopping takes no longer than one sample.

    Args:
        emit: called as `emit("system", **sample())`, e.g. `EventWriter.emit`. Its errors are
            swallowed: monitoring must never disturb training.
        interval: seconds between samples; the first is taken at once.
    """

    def __init__(self, emit: Callable[..., Any], interval: float = 5.0):
        self.emit = emit
        self.interval = max(0.01, float(interval))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling (a second call while running does nothing)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tfbench-system-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait (briefly) for the thread to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, self.interval))
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.emit("system", **sample())
            except Exception:
                pass
            if self._stop.wait(self.interval):
                break
