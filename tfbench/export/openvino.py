"""OpenVINO IR: conversion from the model's SavedModel, checked in the OpenVINO runtime — without a UI.

The model is written as a SavedModel (its inference-mode `serve` function), converted with
`openvino.convert_model` and saved as an IR folder: `model.xml` (the graph) and `model.bin` (the
weights; float16 with `--quantize float16`, float32 otherwise — OpenVINO's own default would
halve them silently). It counts as an export only once the OpenVINO runtime has compiled it for
the CPU, run it on the reference samples at float32 precision and timed it on one thread.
Needs `pip install 'tfbench[openvino]'`.

OpenVINO sends usage telemetry from the moment it is imported unless a consent file says no;
tfbench imports it with its telemetry package hidden, so OpenVINO falls back to its own stub and
nothing leaves the machine.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tfbench.data import rows
from tfbench.export.formats import ExportJob
from tfbench.export.refusals import refused, verified_in_runtime
from tfbench.native_log import captured_stderr

XML, BIN = "model.xml", "model.bin"
"""The IR folder's two files."""
CONFIG = {
    "INFERENCE_NUM_THREADS": 1,
    "INFERENCE_PRECISION_HINT": "f32",
    "PERFORMANCE_HINT": "LATENCY",
    "ENABLE_CPU_PINNING": False,
}
"""The CPU plugin's settings for verification and timing: one thread; float32 arithmetic (CPUs with
bfloat16 units would otherwise compute in bfloat16 and drift from the Keras outputs); no pinning
(measured on a busy 2-core machine: a thread pinned to a core other processes use took 4-8 ms a
call where an unpinned one took 0.5 ms, and its figures did not repeat)."""


def import_openvino() -> Any:
    """`import openvino` with its telemetry switched off (its package made unimportable for OpenVINO)."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # None: "not importable"
    import openvino

    return openvino


class OpenVinoIR:
    """`openvino`: an OpenVINO IR folder, verified and timed in the OpenVINO runtime."""

    def write(self, path: Path, job: ExportJob) -> None:
        ov = import_openvino()
        from tfbench.export.onnx import called

        called(job.model, job.reference.x)
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".openvino-", suffix=".tmp", dir=path.parent) as work:
            try:
                with captured_stderr(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    job.model.export(str(Path(work) / "saved_model"), format="tf_saved_model", verbose=False)
                    graph = ov.convert_model(str(Path(work) / "saved_model"))
                    ov.save_model(graph, str(path / XML), compress_to_fp16=job.quantize == "float16")
            except Exception as exc:  # noqa: BLE001 - any converter failure becomes one line
                raise refused("OpenVINO", "openvino", "convert", exc, job.model, job.quantize) from None

    def verify(self, path: Path, job: ExportJob) -> dict:
        runner, checks = verified_in_runtime(lambda: OpenVinoRunner(path), "OpenVINO", "openvino", job)
        checks["runtime"] = f"openvino {runner.version} CPU, f32"
        return checks

    def predictor(self, path: Path) -> Any:
        """Scores inputs in the runtime (one thread)."""
        return OpenVinoRunner(path).predict


OPENVINO_IR = OpenVinoIR()


class OpenVinoRunner:
    """An IR folder compiled for the CPU (one thread, float32), fed arrays or a table's named columns."""

    def __init__(self, path: Path, config: dict[str, Any] | None = None) -> None:
        ov = import_openvino()
        core = ov.Core()
        self.version = ov.get_version().split("-")[0]
        self.compiled = core.compile_model(str(Path(path) / XML), "CPU", config or CONFIG)
        self.request = self.compiled.create_infer_request()
        self.inputs = list(self.compiled.inputs)

    def feed(self, x: Any) -> list[Any]:
        """The compiled model's inputs, in order, from an array or a dict of columns (by name)."""
        import numpy as np

        if not isinstance(x, dict):
            return [np.asarray(x)]
        feed = []
        for port in self.inputs:
            names = {name.split(":")[0] for name in port.get_names()}
            match = next((name for name in names if name in x), None)
            if match is None:
                raise ValueError(f"no column for the OpenVINO input {sorted(names)}")
            feed.append(np.asarray(x[match]))
        return feed

    def run(self, x: Any) -> Any:
        """The first output for a batch."""
        import numpy as np

        result = self.request.infer(self.feed(x))
        return np.asarray(result[self.compiled.outputs[0]]).copy()

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for every sample of `x`, in batches."""
        import numpy as np

        return np.concatenate([self.run(rows.take(x, i, i + batch_size)) for i in range(0, rows.count(x), batch_size)])
