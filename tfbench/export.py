"""Exporters and their verification — without a UI; TensorFlow is imported lazily.

A trained model is only useful where it can be deployed, and a broken export found on the phone
is the worst kind of failure, so every export is checked the moment it is written: reloaded (or
run through the LiteRT interpreter), compared with the Keras model on a held-out batch, scored on
the validation data, and timed. The checks land in `exports/report.json`, one entry per export.

Every export is written into a temporary folder beside its destination and renamed into place
only once it converted and verified, so a failure never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tfbench.data import rows
from tfbench.data.feature_space import after_preprocessing
from tfbench.atomic import write_json
from tfbench.errors import UserError, close_matches
from tfbench.native_log import captured_stderr, import_tensorflow_quietly

FORMATS = ("keras", "savedmodel", "tflite")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
EXPORTS_DIR = "exports"
REPORT_FILE = "report.json"
MODEL_FILE = "model.keras"
EXPERIMENT_FILE = "experiment.toml"

HELD_OUT_BATCH = 64
"""Samples in the held-out batch on which outputs are compared element by element."""
MAX_VERIFY_SAMPLES = 2000
"""Validation samples scored per export; enough for a stable accuracy, quick on two cores."""
CALIBRATION_SAMPLES = 200
"""Training samples fed to the int8 calibrator (TFLite's guidance: a few hundred)."""
LATENCY_RUNS = 50
"""Timed single-sample invocations of the LiteRT interpreter, after a warm-up."""


# -- names and options ------------------------------------------------------------------------

def check_options(fmt: str, quantize: str = "none", int8_io: bool = False) -> None:
    """Check a format and a quantisation before any work is done.

    Raises:
        UserError: an unknown format or quantisation, or an option that does not apply.
    """
    if fmt not in FORMATS:
        hint = close_matches(str(fmt), FORMATS) or f"formats: {', '.join(FORMATS)}"
        raise UserError(f"unknown export format {fmt!r}", "--format", hint)
    if quantize not in QUANTIZATIONS:
        hint = close_matches(str(quantize), QUANTIZATIONS) or f"choices: {', '.join(QUANTIZATIONS)}"
        raise UserError(f"unknown quantisation {quantize!r}", "--quantize", hint)
    if quantize != "none" and fmt != "tflite":
        raise UserError(
            f"quantisation applies to TFLite only, not to {fmt}", "--quantize", "use --format tflite"
        )
    if int8_io and quantize != "int8":
        raise UserError("int8 input/output needs int8 quantisation", "--int8-io", "add --quantize int8")


def artifact_name(fmt: str, quantize: str = "none", int8_io: bool = False) -> str:
    """The file (or folder) name an export gets inside the exports folder."""
    if fmt == "keras":
        return MODEL_FILE
    if fmt == "savedmodel":
        return "saved_model"
    if quantize == "none":
        return "model.tflite"
    return f"model.{quantize}{'-io' if int8_io else ''}.tflite"


def report_key(fmt: str, quantize: str = "none", int8_io: bool = False) -> str:
    """The key of an export's entry in `report.json` (`tflite`, `tflite-int8`, …)."""
    if fmt != "tflite" or quantize == "none":
        return fmt
    return f"tflite-{quantize}{'-io' if int8_io else ''}"


# -- the public entry points -----------------------------------------------------------------

def export_model(
    run_dir: Path,
    fmt: str,
    quantize: str = "none",
    int8_io: bool = False,
    out_dir: Path | None = None,
    select_tf_ops: bool = False,
) -> dict:
    """Export a finished run's model in one format and verify the export.

    Args:
        run_dir: a run directory holding `model.keras` and `experiment.toml`.
        fmt: keras | savedmodel | tflite.
        quantize: TFLite quantisation: none | dynamic | float16 | int8.
        int8_io: with int8, make the model's input and output int8 too.
        out_dir: where the export goes; default `RUN_DIR/exports`.
        select_tf_ops: let TFLite fall back to TensorFlow kernels for ops it lacks.

    Returns:
        The verification report of the export (also merged into `OUT_DIR/report.json`).

    Raises:
        UserError: no model in the run, an unwritable folder, an unknown format or
            quantisation, or ops TFLite lacks.
    """
    return export_run(run_dir, [fmt], quantize, int8_io, out_dir, select_tf_ops)[0]


def export_run(
    run_dir: Path,
    formats: list[str],
    quantize: str = "none",
    int8_io: bool = False,
    out_dir: Path | None = None,
    select_tf_ops: bool = False,
    on_error: Callable[[str, UserError], None] | None = None,
) -> list[dict]:
    """Export a finished run's model in several formats, loading the model and data once.

    Args: as `export_model`, with a list of formats; `quantize` applies to the TFLite one;
        `on_error(format, error)`, when given, receives a format's UserError and the other
        formats are still exported.

    Returns:
        One verification report per format exported, in order.

    Raises:
        UserError: as `export_model` (for a format's own failure only without `on_error`).
    """
    if not formats:
        raise UserError("name at least one export format", "--format", f"formats: {', '.join(FORMATS)}")
    for fmt in formats:
        check_options(fmt)
    # Quantisation belongs to the TFLite export; without one it is a mistake, not a no-op.
    check_options("tflite" if "tflite" in formats else formats[0], quantize, int8_io)
    run_dir = Path(run_dir)
    model_path = find_model(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / EXPORTS_DIR
    ensure_writable(out_dir)

    quiet_tensorflow()
    experiment = load_run_experiment(run_dir)
    model = load_model(model_path)
    bundle = load_bundle(experiment)
    reference = reference_data(model, bundle, experiment)
    reports = []
    for fmt in formats:
        try:
            reports.append(export_loaded(
                model,
                fmt,
                out_dir,
                reference,
                quantize=quantize if fmt == "tflite" else "none",
                int8_io=int8_io if fmt == "tflite" else False,
                select_tf_ops=select_tf_ops,
                bundle=bundle,
                run_dir=run_dir,
            ))
        except UserError as exc:
            if on_error is None:
                raise
            on_error(fmt, exc)
    return reports


def auto_export(run_dir: Path, experiment, model, bundle, emit: Callable[..., Any]) -> list[dict]:
    """Export a just-finished run per its Experiment's `[export]` section.

    Called by the engine at the end of a run. A failure is logged as an event and never raised:
    the run and its model are already saved, and an export can be retried with `tfbench export`.

    Args:
        run_dir: the run directory.
        experiment: the Experiment that ran.
        model: the trained Keras model.
        bundle: the run's DataBundle (validation data for the checks, training data for int8).
        emit: the run's event emitter, `emit(kind, **fields)`.

    Returns:
        The reports of the exports that succeeded.
    """
    run_dir = Path(run_dir)
    spec = experiment.export
    reports: list[dict] = []
    if not spec.formats:
        return reports
    try:
        out_dir = run_dir / EXPORTS_DIR
        ensure_writable(out_dir)
        quiet_tensorflow()
        reference = reference_data(model, bundle, experiment)
    except Exception as exc:  # noqa: BLE001 - the run must survive whatever goes wrong here
        emit("log", level="error", message=f"export skipped: {_describe(exc)}")
        return reports
    for fmt in spec.formats:
        quantize = spec.tflite_quantization if fmt == "tflite" else "none"
        int8_io = spec.int8_io if fmt == "tflite" and quantize == "int8" else False
        try:
            report = export_loaded(
                model, fmt, out_dir, reference, quantize=quantize, int8_io=int8_io,
                bundle=bundle, run_dir=run_dir,
            )
        except Exception as exc:  # noqa: BLE001 - log it; the run is kept either way
            emit("log", level="error", message=f"export {report_key(fmt, quantize, int8_io)} failed: {_describe(exc)}")
            continue
        emit("export", format=fmt, path=report["path"], report=report)
        reports.append(report)
    return reports


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


# -- run directory checks ---------------------------------------------------------------------

def find_model(run_dir: Path) -> Path:
    """The trained model of a run directory.

    Raises:
        UserError: the folder does not exist or holds no `model.keras`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("no such run directory", str(run_dir))
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise UserError(
            "this run directory has no trained model (model.keras)",
            str(run_dir),
            "the run may have failed before saving; see its events.jsonl, or run the preset again",
        )
    if not (run_dir / EXPERIMENT_FILE).is_file():
        raise UserError("this run directory has no experiment.toml", str(run_dir))
    return model_path


def ensure_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it.

    Raises:
        UserError: the folder cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot write exports here: {reason}", str(folder), "choose another folder with --out") from None


def load_run_experiment(run_dir: Path):
    """The Experiment a run recorded."""
    from tfbench.spec import load_experiment

    return load_experiment(Path(run_dir) / EXPERIMENT_FILE)


def load_model(path: Path):
    """Load a `.keras` model for inference.

    Raises:
        UserError: the file is not a loadable Keras model.
    """
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
        raise UserError(f"cannot load the model: {type(exc).__name__}: {exc}", str(path)) from None


def load_bundle(experiment):
    """The run's data, split and batched as it was for training (one-hot labels where the loss needs them).

    Raises:
        UserError: the data cannot be loaded (a moved file, no network for a download…).
    """
    from tfbench import data
    from tfbench.build import needs_one_hot

    seed = experiment.train.seed
    info = data.describe(experiment.data, seed)
    return data.load(experiment.data, seed, one_hot=needs_one_hot(experiment, info))


def quiet_tensorflow() -> None:
    """Keep TensorFlow's and absl's chatter off the terminal (the converter is very talkative)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass
    import_tensorflow_quietly()  # TensorFlow's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


# -- reference outputs ------------------------------------------------------------------------

@dataclass
class Reference:
    """What every export is checked against: validation samples, labels and Keras' outputs."""

    x: Any
    """Up to MAX_VERIFY_SAMPLES validation inputs (numpy)."""
    y: Any
    """Their labels (numpy), or None when the data has none."""
    outputs: Any
    """The Keras model's outputs on `x` (numpy)."""
    label_kind: str
    """categorical | binary | regression."""
    logits: bool
    """Whether the model outputs logits rather than probabilities."""
    split: str
    """Which split `x` came from (validation, test or train)."""
    keras_metric: float | None
    """The Keras model's accuracy (classifiers) or MAE (regressors) on `x`."""

    @property
    def held_out(self):
        return rows.take(self.x, 0, HELD_OUT_BATCH)

    @property
    def metric_name(self) -> str:
        return "mae" if self.label_kind == "regression" else "accuracy"


def take_samples(dataset, limit: int) -> tuple[Any, Any]:
    """Up to `limit` (features, labels) from a batched dataset, as numpy arrays."""
    import numpy as np

    xs, ys, count = [], [], 0
    for batch in dataset:
        if isinstance(batch, (tuple, list)):
            features, labels = batch[0], batch[1] if len(batch) > 1 else None
        else:
            features, labels = batch, None
        features = rows.as_numpy(features)
        xs.append(features)
        if labels is not None:
            ys.append(np.asarray(labels))
        count += rows.count(features)
        if count >= limit:
            break
    if not xs:
        return None, None
    x = rows.take(rows.concatenate(xs), 0, limit)
    y = np.concatenate(ys)[:limit] if ys else None
    return x, y


def outputs_are_logits(model, experiment=None, info=None) -> bool:
    """Whether a classifier outputs logits (so a binary threshold sits at 0, not 0.5).

    The Experiment's resolved loss says so when it can (`from_logits`); otherwise the last
    layer's activation does.
    """
    if experiment is not None and info is not None:
        try:
            from tfbench.build import resolve_loss

            loss = resolve_loss(experiment, info)
        except Exception:  # noqa: BLE001 - fall back to the model itself
            loss = None
        if isinstance(loss, dict):
            return bool(loss.get("from_logits", False))
        if isinstance(loss, str):
            return False
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return activation not in ("softmax", "sigmoid")


def reference_data(model, bundle, experiment=None) -> Reference:
    """Draw the verification samples from the run's validation data and run Keras on them.

    Falls back to the test split, then the training split, when a run has no validation data.

    Raises:
        UserError: the run has no data to verify against.
    """
    split, dataset = "validation", bundle.validation
    if dataset is None:
        split, dataset = ("test", bundle.test) if bundle.test is not None else ("train", bundle.train)
    x, y = take_samples(dataset, MAX_VERIFY_SAMPLES)
    if x is None:
        raise UserError("the run's data is empty; nothing to verify an export against", "data")
    outputs = predict_keras(model, x)
    ref = Reference(
        x=x,
        y=y,
        outputs=outputs,
        label_kind=bundle.info.label_kind,
        logits=outputs_are_logits(model, experiment, bundle.info),
        split=split,
        keras_metric=None,
    )
    ref.keras_metric = score(ref, outputs)
    return ref


def predict_keras(model, x, batch_size: int = 256):
    """The model's outputs on `x` in inference mode, as one numpy array."""
    import numpy as np

    parts = [np.asarray(model(rows.take(x, i, i + batch_size), training=False))
             for i in range(0, rows.count(x), batch_size)]
    return np.concatenate(parts)


def predicted_classes(outputs, label_kind: str, logits: bool):
    """Class ids from a classifier's outputs (argmax, or a threshold for one sigmoid unit)."""
    import numpy as np

    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return outputs.argmax(axis=-1)
    threshold = 0.0 if logits else 0.5
    return (outputs.reshape(len(outputs)) > threshold).astype("int64")


def true_classes(labels, num_outputs: int):
    """Class ids from labels that may be ids or one-hot rows."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim >= 2 and labels.shape[-1] > 1 and labels.shape[-1] == num_outputs:
        return labels.argmax(-1)
    return labels.reshape(len(labels)).astype("int64")


def score(ref: Reference, outputs) -> float | None:
    """Accuracy (classifiers) or MAE (regressors) of `outputs` on the reference labels."""
    import numpy as np

    if ref.y is None:
        return None
    outputs = np.asarray(outputs, dtype="float64")
    if ref.label_kind == "regression":
        target = np.asarray(ref.y, dtype="float64").reshape(outputs.shape)
        return float(np.mean(np.abs(outputs - target)))
    predicted = predicted_classes(outputs, ref.label_kind, ref.logits)
    truth = true_classes(ref.y, outputs.shape[-1] if outputs.ndim > 1 else 1)
    return float(np.mean(predicted == truth))


def agreement(ref: Reference, outputs) -> float | None:
    """Share of samples whose top-1 class the export and Keras agree on (None for regressors)."""
    import numpy as np

    if ref.label_kind == "regression":
        return None
    mine = predicted_classes(outputs, ref.label_kind, ref.logits)
    theirs = predicted_classes(ref.outputs, ref.label_kind, ref.logits)
    return float(np.mean(mine == theirs))


# -- writing one export -----------------------------------------------------------------------

def export_loaded(
    model,
    fmt: str,
    out_dir: Path,
    reference: Reference,
    *,
    quantize: str = "none",
    int8_io: bool = False,
    select_tf_ops: bool = False,
    bundle=None,
    run_dir: Path | None = None,
) -> dict:
    """Export an in-memory model, verify it, move it into place and record its report.

    Args:
        model: the Keras model.
        fmt: keras | savedmodel | tflite.
        out_dir: the exports folder (created; `report.json` lives there).
        reference: samples and Keras outputs to verify against (`reference_data`).
        quantize: TFLite quantisation.
        int8_io: int8 input and output (with int8).
        select_tf_ops: allow TensorFlow kernels for ops TFLite lacks.
        bundle: the DataBundle; its training data calibrates int8.
        run_dir: when given, the report's paths are relative to it.

    Returns:
        The verification report.

    Raises:
        UserError: a bad option, an unwritable folder, or ops TFLite lacks.
    """
    check_options(fmt, quantize, int8_io)
    out_dir = Path(out_dir)
    ensure_writable(out_dir)
    name = artifact_name(fmt, quantize, int8_io)
    final = out_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir))
    started = time.perf_counter()
    table_note = None
    try:
        artifact = staging / name
        if fmt == "keras":
            model.save(str(artifact))
            checks = verify_keras(artifact, reference)
        elif fmt == "savedmodel":
            with captured_stderr():
                model.export(str(artifact), format="tf_saved_model", verbose=False)
            checks = verify_savedmodel(artifact, reference)
        else:
            model, reference, table_note = after_preprocessing(model, reference)  # a table: TFLite takes encoded features
            bundle = None if table_note else bundle
            calibration = calibration_samples(bundle, reference) if quantize == "int8" else None
            content = convert_tflite(model, reference, quantize, int8_io, select_tf_ops, calibration)
            artifact.write_bytes(content)
            checks = verify_tflite(artifact, reference)
        _place(artifact, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    where = _relative(final, run_dir)
    report = {
        "format": fmt,
        "quantization": quantize,
        "int8_io": int8_io,
        "path": where,
        "size_bytes": _size(final),
        "split": reference.split,
        "samples": rows.count(reference.x),
        "metric": reference.metric_name,
        "keras_metric": reference.keras_metric,
        **checks,
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.time(),
    }
    if fmt == "tflite" and select_tf_ops:
        report["select_tf_ops"] = True
    if fmt == "tflite" and table_note:
        report["note"] = table_note
    merge_report(out_dir, report_key(fmt, quantize, int8_io), report)
    return report


def _place(artifact: Path, final: Path) -> None:
    """Rename a finished export over its destination (a folder is swapped, then the old removed)."""
    if final.is_dir() and not final.is_symlink():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(artifact, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(artifact, final)


def _relative(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(Path(base).resolve()))
        except ValueError:
            pass
    return str(path)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_report(out_dir: Path) -> dict:
    """The merged verification reports of an exports folder ({} when there are none)."""
    path = Path(out_dir) / REPORT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_report(out_dir: Path, key: str, report: dict) -> Path:
    """Set one export's entry in `report.json`, keeping the others."""
    reports = read_report(out_dir)
    reports[key] = report
    return write_json(Path(out_dir) / REPORT_FILE, reports)


def _comparison(reference: Reference, outputs) -> dict:
    import numpy as np

    outputs = np.asarray(outputs, dtype="float32").reshape(reference.outputs.shape)
    held = rows.count(reference.held_out)
    delta = np.abs(outputs[:held].astype("float64") - reference.outputs[:held].astype("float64"))
    return {
        "max_abs_diff": float(delta.max()) if delta.size else 0.0,
        "agreement": agreement(reference, outputs),
        "export_metric": score(reference, outputs),
    }


# -- keras ------------------------------------------------------------------------------------

def verify_keras(path: Path, reference: Reference) -> dict:
    """Reload a `.keras` file and compare its outputs with the model it came from."""
    import numpy as np

    reloaded = load_model(path)
    outputs = predict_keras(reloaded, reference.x)
    checks = _comparison(reference, outputs)
    checks["identical"] = bool(np.array_equal(outputs, reference.outputs))
    checks["latency_ms"] = None
    return checks


# -- SavedModel -------------------------------------------------------------------------------

SERVING_SIGNATURE = "serving_default"


def savedmodel_predictor(path: Path) -> Callable[[Any], Any]:
    """A function serving a SavedModel's default signature, as a client would call it."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if SERVING_SIGNATURE not in loaded.signatures:
        raise RuntimeError(f"the SavedModel has no {SERVING_SIGNATURE!r} signature")
    serve = loaded.signatures[SERVING_SIGNATURE]
    specs = serve.structured_input_signature[1]

    def predict(x):
        parts = []
        for i in range(0, rows.count(x), 256):
            batch = rows.take(x, i, i + 256)
            named = batch if isinstance(batch, dict) else {name: batch for name in specs}  # one input, or a table's columns
            result = serve(**{name: tf.constant(named[name], dtype=spec.dtype) for name, spec in specs.items()})
            parts.append(np.asarray(next(iter(result.values()))))
        return np.concatenate(parts)

    predict.loaded = loaded  # keep the trackable objects alive with the function
    return predict


def verify_savedmodel(path: Path, reference: Reference) -> dict:
    """Load a SavedModel, call its serving signature and compare with Keras."""
    predict = savedmodel_predictor(path)
    checks = _comparison(reference, predict(reference.x))
    checks["signature"] = SERVING_SIGNATURE
    checks["latency_ms"] = None
    return checks


# -- TFLite -----------------------------------------------------------------------------------

def calibration_samples(bundle, reference: Reference):
    """Representative inputs for int8 calibration, drawn from the run's training data."""
    source = getattr(bundle, "train", None)
    if source is not None:
        x, _ = take_samples(source, CALIBRATION_SAMPLES)
        if x is not None:
            return x
    return reference.x[:CALIBRATION_SAMPLES]


def convert_tflite(
    model,
    reference: Reference,
    quantize: str = "none",
    int8_io: bool = False,
    select_tf_ops: bool = False,
    calibration=None,
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


def _convert(model, reference, quantize, int8_io, select_tf_ops, calibration, batch: int | None) -> bytes:
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
        options = {"quantize": quantize, "int8_io": int8_io, "select_tf_ops": select_tf_ops}
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
            text = _convert_in_child(saved, os.path.join(work, "calibration.npy"), out, options)
            if text is None:
                return Path(out).read_bytes()
            error = _child_error(text, model)
        if batch is None and "TensorList" in text:
            error = _NeedsStaticBatch()
    raise error from None


def convert_saved_model(saved: str, quantize: str = "none", int8_io: bool = False,
                        select_tf_ops: bool = False, calibration=None) -> bytes:
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


def _child_error(text: str, model) -> Exception:
    if text.startswith(_CRASH):
        kinds = sorted({type(layer).__name__ for layer in getattr(model, "layers", [])} - {"InputLayer"})
        return UserError(
            f"the TFLite converter {text} while calibrating int8 (a TensorFlow bug with some of: "
            f"{', '.join(kinds)})",
            "export.tflite_quantization",
            "use --quantize dynamic or float16, which need no calibration",
        )
    return conversion_error(RuntimeError(text), "int8")


def _child_main(argv: list[str]) -> int:
    """`python -m tfbench.export SAVED SAMPLES OUT OPTIONS`: one conversion, for `_convert_in_child`."""
    import sys

    saved, samples, out, options = argv
    try:
        import numpy as np

        content = convert_saved_model(saved, calibration=np.load(samples), **json.loads(options))
    except Exception as exc:  # noqa: BLE001 - reported to the parent on stderr
        sys.stderr.write("\nCONVERSION ERROR\n" + str(exc) + "\n")
        if getattr(exc, "errors", None):
            sys.stderr.write("\n".join(str(e) for e in exc.errors) + "\n")
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
        self._make = lambda: Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter = self._make()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch: int | None = None

    def _quantise(self, x):
        import numpy as np

        dtype = self.input["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(np.asarray(x, "float32") / scale + zero), info.min, info.max).astype(dtype)
        return np.asarray(x, dtype=dtype)

    def _dequantise(self, y):
        import numpy as np

        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            return (y.astype("float32") - zero) * scale
        return y

    def _run(self, x):
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

    def predict(self, x, batch_size: int = 256):
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

    def latency_ms(self, sample, runs: int = LATENCY_RUNS) -> dict:
        """Median and 90th-percentile time of one single-sample invocation, in milliseconds."""
        import numpy as np

        one = self._quantise(sample[:1])
        for _ in range(3):
            self._run(one)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.set_tensor(self.input["index"], one)
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000)
        return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)), "runs": runs}


def verify_tflite(path: Path, reference: Reference) -> dict:
    """Run a TFLite file through the LiteRT interpreter: outputs, agreement, metric, latency."""
    import numpy as np

    with captured_stderr():
        runner = TFLiteRunner(path)
        outputs = runner.predict(reference.x)
        latency = runner.latency_ms(reference.x)
    checks = _comparison(reference, outputs)
    checks["latency_ms"] = latency["p50"]
    checks["latency_p90_ms"] = latency["p90"]
    checks["batch_size"] = runner.fixed_batch
    checks["input_dtype"] = np.dtype(runner.input["dtype"]).name
    checks["output_dtype"] = np.dtype(runner.output["dtype"]).name
    return checks


# -- showing reports --------------------------------------------------------------------------

def report_table(reports: list[dict]):
    """A rich table of verification reports, one row per export (fits 80 columns)."""
    from rich import box
    from rich.table import Table

    metric = next((r.get("metric") for r in reports if r.get("metric")), "accuracy")
    table = Table(title="export verification", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("export", "size", "max |Δ|", "agree", metric, "keras", "latency"):
        table.add_column(column, justify="left" if column == "export" else "right", no_wrap=True)
    for report in reports:
        table.add_row(
            report_key(report["format"], report.get("quantization", "none"), report.get("int8_io", False)),
            human_size(report["size_bytes"]),
            f"{report['max_abs_diff']:.1e}",
            "—" if report.get("agreement") is None else f"{report['agreement']:.1%}",
            _metric_text(metric, report.get("export_metric")),
            _metric_text(metric, report.get("keras_metric")),
            human_time(report.get("latency_ms")),
        )
    return table


def _metric_text(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if name == "accuracy" else f"{value:.4g}"


def human_time(ms: float | None) -> str:
    """`0.0038` → `3.8 µs`; None → `—`."""
    if ms is None:
        return "—"
    if ms < 0.1:
        return f"{ms * 1000:.1f} µs"
    return f"{ms:.2f} ms"


def human_size(size: int) -> str:
    """`26740` → `26.1 KiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


if __name__ == "__main__":
    import sys

    sys.exit(_child_main(sys.argv[1:]))
