"""TFLite: conversion (in a child process where the converter may crash), and the LiteRT interpreter.

Without a UI; TensorFlow and LiteRT are imported when a model is converted or run. A TFLite
export is verified by running it through the LiteRT interpreter on the reference samples (int8
input and output (de)quantised), compared with Keras and timed one sample at a time.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from tfbench.errors import UserError
from tfbench.export.formats import ExportJob
from tfbench.export.latency import LATENCY_RUNS, time_calls
from tfbench.export.reference import Reference, take_samples
from tfbench.native_log import captured_stderr

CALIBRATION_SAMPLES = 200
"""Training samples fed to the int8 calibrator (TFLite's guidance: a few hundred)."""


class TFLiteFile:
    """`tflite`: a TFLite flatbuffer, quantised as asked, checked in the LiteRT interpreter."""

    def write(self, path: Path, job: ExportJob) -> None:
        _one_input_and_output(job)
        job, _ = _encoded(job)
        calibration = calibration_samples(job.bundle, job.reference) if job.quantize == "int8" else None
        content = convert_tflite(job.model, job.reference, job.quantize, job.int8_io, job.select_tf_ops, calibration)
        Path(path).write_bytes(content)

    def verify(self, path: Path, job: ExportJob) -> dict:
        job, note = _encoded(job)
        checks = verify_tflite(path, job.reference)
        if job.select_tf_ops:
            checks["select_tf_ops"] = True
        if note:
            checks["note"] = note
        return checks

    def predictor(self, path: Path) -> Any:
        """Scores inputs in the LiteRT interpreter."""
        return TFLiteRunner(path).predict


def _one_input_and_output(job: ExportJob) -> None:
    """TFLite exports here take one input tensor and give one output (a table's columns encoded first).

    Raises:
        UserError: the model has several named inputs or several outputs.
    """
    from tfbench.data.feature_space import parts

    several_inputs = isinstance(job.reference.x, dict) and parts(job.model) is None  # not a table's columns
    if job.reference.heads or several_inputs:
        raise UserError(
            "a TFLite export takes one input and gives one output; this model has several named inputs or outputs",
            "export.formats",
            "export keras or savedmodel, which take the named inputs and give every output",
        )


def _encoded(job: ExportJob) -> tuple[ExportJob, str | None]:
    """A table's model as TFLite takes it: the layer stack on encoded features, and the report's note."""
    import dataclasses

    from tfbench.data.feature_space import after_preprocessing

    model, reference, note = after_preprocessing(job.model, job.reference)
    if note is None:
        return job, None
    return dataclasses.replace(job, model=model, reference=reference, bundle=None), note


TFLITE = TFLiteFile()


def calibration_samples(bundle: Any, reference: Reference) -> Any:
    """Representative inputs for int8 calibration, drawn from the run's training data."""
    source = getattr(bundle, "train", None)
    if source is not None:
        x, _ = take_samples(source, CALIBRATION_SAMPLES)
        if x is not None:
            return x
    return reference.x[:CALIBRATION_SAMPLES]


def convert_tflite(
    model: Any,
    reference: Reference,
    quantize: str = "none",
    int8_io: bool = False,
    select_tf_ops: bool = False,
    calibration: Any = None,
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer.

    Goes Keras → SavedModel (an ExportArchive with the inference-mode call) → TFLite, the path
    TensorFlow documents for Keras 3. The batch dimension is left free when the converter can;
    recurrent layers (Keras 3 runs them as a loop over a tensor list) only lower to built-in
    TFLite ops with a static shape, so those models are converted for one sample at a time —
    what an on-device model is fed anyway.

    Raises:
        UserError: the model needs ops TFLite lacks (named, with the option that allows them).
    """
    try:
        return _convert(model, reference, quantize, int8_io, select_tf_ops, calibration, batch=None)
    except _NeedsStaticBatch:
        return _convert(model, reference, quantize, int8_io, select_tf_ops, calibration, batch=1)


class _NeedsStaticBatch(Exception):
    """The converter could not lower tensor-list ops with a free batch dimension."""


def _convert(
    model: Any,
    reference: Reference,
    quantize: str,
    int8_io: bool,
    select_tf_ops: bool,
    calibration: Any,
    batch: int | None,
) -> bytes:
    import functools

    import keras
    import numpy as np

    spec = keras.InputSpec(shape=(batch, *reference.x.shape[1:]), dtype=str(reference.x.dtype))
    if hasattr(model, "inputs") and model.inputs:
        shape = tuple(model.inputs[0].shape)
        spec = keras.InputSpec(shape=(batch, *shape[1:]), dtype=model.inputs[0].dtype)
    with tempfile.TemporaryDirectory(prefix=".tflite-", suffix=".tmp") as work:
        saved = os.path.join(work, "saved_model")
        with captured_stderr():
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", functools.partial(model.__call__, training=False), input_signature=[spec])
            archive.write_out(saved, verbose=False)
        options: dict[str, Any] = {"quantize": quantize, "int8_io": int8_io, "select_tf_ops": select_tf_ops}
        if quantize != "int8":
            try:
                with captured_stderr():
                    return convert_saved_model(saved, **options)
            except Exception as exc:  # noqa: BLE001 - turned into a readable error below
                text = str(exc)
                error: Exception = conversion_error(exc, quantize)
        else:
            # int8 calibration runs the model in TFLite's calibrator, which crashes the whole
            # process on some layers (an LSTM segfaults in TF 2.21): calibrate in a child process.
            samples = np.asarray(calibration if calibration is not None else reference.x, dtype="float32")
            np.save(os.path.join(work, "calibration.npy"), samples)
            out = os.path.join(work, "model.tflite")
            failure = _convert_in_child(saved, os.path.join(work, "calibration.npy"), out, options)
            if failure is None:
                return Path(out).read_bytes()
            text = failure
            error = _child_error(text, model)
        if batch is None and "TensorList" in text:
            error = _NeedsStaticBatch()
    raise error from None


def convert_saved_model(
    saved: str, quantize: str = "none", int8_io: bool = False, select_tf_ops: bool = False, calibration: Any = None
) -> bytes:
    """Run the TFLite converter on a SavedModel with the options of one export."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        samples = calibration
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if select_tf_ops:
        ops = [*ops, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.target_spec.supported_ops = ops
    return converter.convert()


_CRASH = "crashed:"


def _convert_in_child(saved: str, samples: str, out: str, options: dict) -> str | None:
    """Convert in a fresh interpreter; None on success, else the error text (or `crashed: SIGNAL`)."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "tfbench.export", saved, samples, out, json.dumps(options)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    except subprocess.TimeoutExpired:
        return f"{_CRASH} the converter did not finish within an hour"
    if done.returncode == 0 and os.path.exists(out):
        return None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return f"{_CRASH} {name}"
    marker = "\nCONVERSION ERROR\n"
    text = done.stderr.split(marker, 1)[1] if marker in done.stderr else done.stderr[-4000:]
    return text.strip() or f"the converter exited with status {done.returncode}"


def _child_error(text: str, model: Any) -> Exception:
    if text.startswith(_CRASH):
        kinds = sorted({type(layer).__name__ for layer in getattr(model, "layers", [])} - {"InputLayer"})
        return UserError(
            f"the TFLite converter {text} while calibrating int8 (a TensorFlow bug with some of: {', '.join(kinds)})",
            "export.tflite_quantization",
            "use --quantize dynamic or float16, which need no calibration",
        )
    return conversion_error(RuntimeError(text), "int8")


def child_main(argv: list[str]) -> int:
    """`python -m tfbench.export SAVED SAMPLES OUT OPTIONS`: one conversion, for `_convert_in_child`."""
    import sys

    saved, samples, out, options = argv
    try:
        import numpy as np

        content = convert_saved_model(saved, calibration=np.load(samples), **json.loads(options))
    except Exception as exc:  # noqa: BLE001 - reported to the parent on stderr
        sys.stderr.write("\nCONVERSION ERROR\n" + str(exc) + "\n")
        errors = getattr(exc, "errors", None)  # the converter's list of what it refused
        if errors:
            sys.stderr.write("\n".join(str(e) for e in errors) + "\n")
        return 1
    Path(out).write_bytes(content)
    return 0


_FLEX_OP = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_SELECT_LINE = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM_LINE = re.compile(r"Custom ops: ([^\n]+)")


def conversion_error(exc: BaseException, quantize: str = "none") -> Exception:
    """Turn a converter exception into a UserError naming the missing ops, or keep it as is.

    Returns:
        A UserError for ops TFLite lacks, a RuntimeError with the first line otherwise.
    """
    text = str(exc)
    ops: list[str] = []
    for line in _SELECT_LINE.findall(text):
        ops.extend(op.strip() for op in line.split(",") if op.strip())
    ops.extend(_FLEX_OP.findall(text))
    for err in getattr(exc, "errors", None) or []:
        name = getattr(getattr(err, "operator", None), "name", "")
        if name:
            ops.append(name.removeprefix("tf."))
    ops = list(dict.fromkeys(ops))
    if ops:
        return UserError(
            f"TFLite has no built-in kernels for: {', '.join(ops)}",
            "export.tflite",
            "allow TensorFlow kernels with `tfbench export RUN_DIR --format tflite --select-tf-ops` "
            "(converter.target_spec.supported_ops += [tf.lite.OpsSet.SELECT_TF_OPS]); the app then "
            "needs the TensorFlow Lite Flex delegate",
        )
    custom = _CUSTOM_LINE.findall(text)
    if custom:
        return UserError(
            f"the model needs custom TFLite ops: {custom[0].strip()}",
            "export.tflite",
            "TFLite can only run them with your own kernels (converter.allow_custom_ops = True)",
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if quantize == "int8":
        return UserError(
            f"int8 conversion failed: {first[:300]}",
            "export.tflite_quantization",
            "some ops have no int8 kernel; try --quantize dynamic or float16",
        )
    return RuntimeError(f"TFLite conversion failed: {first[:500]}")


class TFLiteRunner:
    """Runs a TFLite model through the LiteRT interpreter, (de)quantising int8 input and output."""

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.threads = num_threads or os.cpu_count() or 1
        self._make = lambda: Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter = self._make()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch: int | None = None

    def _quantise(self, x: Any) -> Any:
        import numpy as np

        dtype = self.input["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(np.asarray(x, "float32") / scale + zero), info.min, info.max).astype(dtype)
        return np.asarray(x, dtype=dtype)

    def _dequantise(self, y: Any) -> Any:
        import numpy as np

        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            return (y.astype("float32") - zero) * scale
        return y

    def _run(self, x: Any) -> Any:
        if self._batch != len(x):
            shape = (len(x), *self.input["shape_signature"][1:])
            shape = tuple(int(s) if s > 0 else int(x.shape[i]) for i, s in enumerate(shape))
            self.interpreter.resize_tensor_input(self.input["index"], shape)
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model was converted for, or None when any batch size works."""
        first = int(self.input["shape_signature"][0]) if len(self.input["shape_signature"]) else -1
        return first if first > 0 else None

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for `x` (float numpy), in batches (of the model's fixed batch size, if it has one)."""
        import numpy as np

        fixed = self.fixed_batch
        step = fixed or batch_size
        parts = []
        for i in range(0, len(x), step):
            chunk = self._quantise(x[i : i + step])
            n = len(chunk)
            if fixed and n < fixed:  # pad the last chunk up to the fixed batch, then drop the padding
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, axis=0)])
            parts.append(self._dequantise(self._run(chunk))[:n])
        return np.concatenate(parts)

    def latency_ms(self, sample: Any, runs: int = LATENCY_RUNS) -> dict:
        """Time one single-sample invocation `runs` times (`tfbench.export.latency.time_calls`)."""
        one = self._quantise(sample[:1])
        self._run(one)

        def invoke() -> None:
            self.interpreter.set_tensor(self.input["index"], one)
            self.interpreter.invoke()

        return time_calls(invoke, runs, threads=self.threads)


def verify_tflite(path: Path, reference: Reference) -> dict:
    """Run a TFLite file through the LiteRT interpreter: outputs, agreement, metric, latency."""
    import numpy as np

    with captured_stderr():
        runner = TFLiteRunner(path, num_threads=1)
        outputs = runner.predict(reference.x)
        latency = runner.latency_ms(reference.x)
    checks = reference.compare(outputs)
    checks.update(latency)
    checks["batch_size"] = runner.fixed_batch
    checks["input_dtype"] = np.dtype(runner.input["dtype"]).name
    checks["output_dtype"] = np.dtype(runner.output["dtype"]).name
    return checks
