"""ONNX: conversion through Keras' own exporter (tf2onnx), checked in ONNX Runtime — without a UI.

`model.export(path, format="onnx")` writes the file but never runs it, and it happily writes
graphs ONNX Runtime then refuses (a table's string lookups become ops no ONNX runtime has). So an
ONNX export counts only once ONNX Runtime has loaded it, run it on the reference samples and timed
it on one thread; a refusal is one `UserError` (see `refusals`). Needs `pip install 'tfbench[onnx]'`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from tfbench.data import rows
from tfbench.export.formats import ExportJob
from tfbench.export.refusals import refused, verified_in_runtime
from tfbench.native_log import captured_stderr

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "object",
    "tensor(bool)": "bool",
}


class OnnxFile:
    """`onnx`: an ONNX graph written by tf2onnx, verified and timed in ONNX Runtime."""

    def write(self, path: Path, job: ExportJob) -> None:
        called(job.model, job.reference.x)
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        try:
            with captured_stderr(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                job.model.export(str(path), format="onnx", verbose=False)
        except Exception as exc:  # noqa: BLE001 - any converter failure becomes one line
            raise refused("tf2onnx", "onnx", "convert", exc, job.model, job.quantize) from None

    def verify(self, path: Path, job: ExportJob) -> dict:
        runner, checks = verified_in_runtime(lambda: OnnxRunner(path), "ONNX Runtime", "onnx", job)
        checks["opset"] = runner.opset
        checks["runtime"] = f"onnxruntime {runner.version}"
        return checks

    def predictor(self, path: Path) -> Any:
        """Scores inputs in the runtime (one thread)."""
        return OnnxRunner(path).predict


ONNX_FILE = OnnxFile()


def called(model: Any, x: Any) -> None:
    """Call a model once on one sample, so Keras knows its input signature (a fresh copy has none)."""
    model(rows.take(x, 0, 1), training=False)


class OnnxRunner:
    """An ONNX file in an ONNX Runtime session on one thread, fed arrays or a table's named columns."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnx
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.version = ort.__version__
        model = onnx.load(str(path), load_external_data=False)
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)

    def feed(self, x: Any) -> dict[str, Any]:
        """The session's inputs from an array (one input) or a dict of columns (by name)."""
        import numpy as np

        feed = {}
        for i, spec in enumerate(self.inputs):
            if isinstance(x, dict):
                name = spec.name if spec.name in x else spec.name.split(":")[0]
                if name not in x:
                    raise ValueError(f"the ONNX graph asks for an input that is no column of the table: {spec.name}")
                value = x[name]
            else:
                if i:
                    raise ValueError(f"the ONNX graph takes {len(self.inputs)} inputs; got one array")
                value = x
            dtype = _DTYPES.get(spec.type, "float32")
            feed[spec.name] = np.asarray(value).astype(dtype) if dtype != "object" else np.asarray(value, object)
        return feed

    def run(self, x: Any) -> Any:
        """The first output for a batch."""
        return self.session.run(None, self.feed(x))[0]

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for every sample of `x`, in batches."""
        import numpy as np

        return np.concatenate([self.run(rows.take(x, i, i + batch_size)) for i in range(0, rows.count(x), batch_size)])
