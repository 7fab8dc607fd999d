"""The exporter: a finished run's (or a loaded) model in the chosen formats, each verified and placed.

A trained model is only useful where it can be deployed, and a broken export found on the phone
is the worst kind of failure, so every export is checked the moment it is written: loaded by its
own runtime (Keras, TensorFlow, LiteRT, ONNX Runtime, OpenVINO), compared with the float Keras
model on the reference samples, scored on the validation data, sized against the float `.keras`
file and timed. The checks land in `exports/report.json`, one entry per export.

Every export is written into a temporary folder beside its destination and renamed into place
only once it converted and verified, so a failure — a converter's or a runtime's refusal — never
leaves a file behind. The model, its data, the reference outputs and the model's float32 and
Keras-quantised copies are prepared once for all the formats of one call.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.data import rows
from tfbench.errors import UserError
from tfbench.export.formats import ExportFormat, ExportJob, check_options, check_runtime, format_names, get_format
from tfbench.export.latency import single_thread_tensorflow
from tfbench.export.reference import Reference, predict_keras, reference_data
from tfbench.export.report import merge_report, read_report
from tfbench.export.variants import ModelVariants, without_preprocessing
from tfbench.native_log import import_tensorflow_quietly
from tfbench.rundir import EXPORTS_DIR, find_model, load_bundle, load_model, load_run_experiment

if TYPE_CHECKING:
    from tfbench.data.info import DataBundle
    from tfbench.spec import Experiment


def export_model(
    run_dir: Path,
    fmt: str,
    quantize: str = "none",
    int8_io: bool = False,
    out_dir: Path | None = None,
    select_tf_ops: bool = False,
    after_preprocessing: bool = False,
) -> dict:
    """Export a finished run's model in one format and verify the export.

    Args:
        run_dir: a run directory holding `model.keras` and `experiment.toml`.
        fmt: a format of `tfbench.export.formats` (keras | savedmodel | tflite | onnx | openvino).
        quantize: a quantisation the format takes (`ExportFormat.quantizations`).
        int8_io: with TFLite int8, make the model's input and output int8 too.
        out_dir: where the export goes; default `RUN_DIR/exports`.
        select_tf_ops: let TFLite fall back to TensorFlow kernels for ops it lacks.
        after_preprocessing: a table's model without its preprocessing (takes the encoded features).

    Returns:
        The verification report of the export (also merged into `OUT_DIR/report.json`).

    Raises:
        UserError: no model in the run, an unwritable folder, an unknown format or
            quantisation, a missing runtime, or a model the format's converter or runtime refuses.
    """
    return export_run(
        run_dir, [fmt], quantize, int8_io, out_dir, select_tf_ops, after_preprocessing=after_preprocessing
    )[0]


def export_run(
    run_dir: Path,
    formats: list[str],
    quantize: str = "none",
    int8_io: bool = False,
    out_dir: Path | None = None,
    select_tf_ops: bool = False,
    on_error: Callable[[str, Exception], None] | None = None,
    after_preprocessing: bool = False,
) -> list[dict]:
    """Export a finished run's model in several formats, loading the model and data once.

    Args: as `export_model`, with a list of formats; `quantize` applies to the formats that take
        it (the others are exported unquantised); `on_error(format, error)`, when given, receives a
        format's own failure and the other formats are still exported.

    Returns:
        One verification report per format exported, in order.

    Raises:
        UserError: as `export_model` (for a format's own failure only without `on_error`).
    """
    if not formats:
        raise UserError("name at least one export format", "--format", f"formats: {', '.join(format_names())}")
    for fmt in formats:
        check_options(fmt)
    takes = [fmt for fmt in formats if quantize in get_format(fmt).quantizations]
    check_options(takes[0] if takes else formats[0], quantize, int8_io)
    for fmt in formats:
        check_runtime(fmt)
    prepared = prepare_run(run_dir, out_dir, after_preprocessing)
    reports = []
    for fmt in formats:
        chosen = get_format(fmt)
        mine = quantize if quantize in chosen.quantizations else "none"
        try:
            reports.append(prepared.export(fmt, mine, int8_io=int8_io and mine == "int8", select_tf_ops=select_tf_ops))
        except Exception as exc:  # noqa: BLE001 - handed to on_error, the other formats go on
            if on_error is None:
                raise
            on_error(fmt, exc)
    return reports


@dataclass
class PreparedRun:
    """A run's model, data and reference, loaded once for every export of one call."""

    variants: ModelVariants
    reference: Reference
    bundle: Any
    out_dir: Path
    run_dir: Path | None = None
    inputs: dict | None = None
    """What the exported model takes, when it is not the run's model's own inputs (after preprocessing)."""
    float_bytes: int | None = None
    """The size of the float `.keras` file of the exported model: what every size is compared with."""

    def export(self, fmt: str, quantize: str = "none", int8_io: bool = False, select_tf_ops: bool = False) -> dict:
        """Write, verify and place one export (see `export_loaded`)."""
        return export_loaded(
            self.variants.source,
            fmt,
            self.out_dir,
            self.reference,
            quantize=quantize,
            int8_io=int8_io,
            select_tf_ops=select_tf_ops,
            bundle=self.bundle,
            run_dir=self.run_dir,
            variants=self.variants,
            extra={"inputs": self.inputs} if self.inputs else None,
            float_bytes=self.float_bytes,
        )


def prepare_run(run_dir: Path, out_dir: Path | None = None, after_preprocessing: bool = False) -> PreparedRun:
    """Load a finished run's model, data and reference once (TensorFlow on one thread, for timings).

    Raises:
        UserError: no model, an unwritable folder, or `after_preprocessing` for a model without a table's.
    """
    run_dir = Path(run_dir)
    model_path = find_model(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / EXPORTS_DIR
    ensure_writable(out_dir)
    quiet_tensorflow()
    single_thread_tensorflow()
    experiment = load_run_experiment(run_dir)
    model = load_model(model_path)
    bundle = load_bundle(experiment)
    reference = reference_data(model, bundle, experiment)
    inputs = None
    if after_preprocessing:
        model, reference, inputs = without_preprocessing(model, reference)
    return PreparedRun(
        ModelVariants(model), reference, bundle, out_dir, run_dir, inputs, float_keras_bytes(model, out_dir)
    )


def auto_export(
    run_dir: Path, experiment: Experiment, model: Any, bundle: DataBundle, emit: Callable[..., Any]
) -> list[dict]:
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
        variants = ModelVariants(model)
        float_bytes = float_keras_bytes(model, out_dir)
    except Exception as exc:  # noqa: BLE001 - the run must survive whatever goes wrong here
        emit("log", level="error", message=f"export skipped: {_describe(exc)}")
        return reports
    for fmt in spec.formats:
        chosen = get_format(fmt)
        converter = chosen.quantized and not chosen.keras_quantized  # `tflite_quantization` is the converter's
        quantize = spec.tflite_quantization if converter else "none"
        int8_io = spec.int8_io if converter and quantize == "int8" else False
        try:
            report = export_loaded(
                model,
                fmt,
                out_dir,
                reference,
                quantize=quantize,
                int8_io=int8_io,
                bundle=bundle,
                run_dir=run_dir,
                variants=variants,
                float_bytes=float_bytes,
            )
        except Exception as exc:  # noqa: BLE001 - log it; the run is kept either way
            emit(
                "log", level="error", message=f"export {chosen.report_key(quantize, int8_io)} failed: {_describe(exc)}"
            )
            continue
        emit("export", format=fmt, path=report["path"], report=report)
        reports.append(report)
    return reports


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


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
        raise UserError(
            f"cannot write exports here: {reason}", str(folder), "choose another folder with --out"
        ) from None


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


# -- writing one export -----------------------------------------------------------------------


def export_loaded(
    model: Any,
    fmt: str,
    out_dir: Path,
    reference: Reference,
    *,
    quantize: str = "none",
    int8_io: bool = False,
    select_tf_ops: bool = False,
    bundle: DataBundle | None = None,
    run_dir: Path | None = None,
    variants: ModelVariants | None = None,
    extra: dict | None = None,
    float_bytes: int | None = None,
) -> dict:
    """Export an in-memory model, verify it, move it into place and record its report.

    Args: `model` and the `reference` (`reference_data`) it is verified against; `fmt`, a registered
        format, and its `quantize`; `int8_io` and `select_tf_ops` (TFLite); `bundle`, whose training
        data calibrates TFLite int8; `run_dir`, against which the report's paths are relative;
        `variants`, the call's float32 and quantised copies of `model` (made here when not given);
        `extra`, entries added to the report; `float_bytes`, the float `.keras` size every size is
        compared with (measured when not given). `out_dir` holds the export and `report.json`.

    Returns:
        The verification report.

    Raises:
        UserError: a bad option, an unwritable folder, a missing runtime, or a model the format's
            converter or runtime refuses (or computes wrongly).
    """
    chosen = check_options(fmt, quantize, int8_io)
    check_runtime(fmt)
    out_dir = Path(out_dir)
    ensure_writable(out_dir)
    variants = variants or ModelVariants(model)
    keras_quantize = quantize if chosen.uses_keras_quantization(quantize) else "none"
    final = out_dir / chosen.artifact_name(quantize, int8_io)
    started = time.perf_counter()
    job, notes = _job(chosen, variants, reference, keras_quantize, ExportJob(model, reference, quantize, int8_io))
    job.select_tf_ops, job.bundle = select_tf_ops, bundle
    checks = _write_verified(chosen, job, final)
    float_bytes = float_bytes or float_keras_bytes(variants.source, out_dir)
    report = {
        **_file_fields(fmt, job, keras_quantize, final, run_dir, float_bytes),
        **_reference_fields(reference),
        **notes,
        **(extra or {}),
        **checks,
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.time(),
    }
    report.update(slower_than_float(out_dir, chosen, quantize, report))
    merge_report(out_dir, chosen.report_key(quantize, int8_io), report)
    return report


def _job(
    fmt: ExportFormat, variants: ModelVariants, reference: Reference, keras_quantize: str, job: ExportJob
) -> tuple[ExportJob, dict]:
    """The job with the model to write (the source, its float32 or its Keras-quantised copy) and the
    report's notes on it; a copy's own outputs are what its runtime must reproduce."""
    written, notes = variants.get(fmt.float32, keras_quantize)
    if written is not variants.source:
        reference = dataclasses.replace(reference, written=predict_keras(written, reference.x))
    return dataclasses.replace(job, model=written, reference=reference, source=variants.source), notes


def _file_fields(
    fmt: str, job: ExportJob, keras_quantize: str, final: Path, run_dir: Path | None, float_bytes: int
) -> dict:
    size = _size(final)
    quantized_by = ("keras" if keras_quantize != "none" else "converter") if job.quantize != "none" else None
    return {
        "format": fmt,
        "quantization": job.quantize,
        "quantized_by": quantized_by,
        "int8_io": job.int8_io,
        "path": _relative(final, run_dir),
        "size_bytes": size,
        "float_keras_bytes": float_bytes,
        "size_ratio": float_bytes / size if size else None,
    }


def _reference_fields(reference: Reference) -> dict:
    return {
        "split": reference.split,
        "samples": rows.count(reference.x),
        "metric": reference.metric_name,
        "keras_metric": reference.keras_metric,
    }


def slower_than_float(out_dir: Path, fmt: ExportFormat, quantize: str, report: dict) -> dict:
    """`{"float_latency_ms", "slower_than_float"}` for a quantised export whose float export of the
    same format is in `report.json` (a quantisation that makes a file slower is worth knowing)."""
    if quantize == "none" or report.get("latency_ms") is None:
        return {}
    floating = read_report(out_dir).get(fmt.report_key("none"), {})
    if floating.get("latency_ms") is None:
        return {}
    return {
        "float_latency_ms": floating["latency_ms"],
        "slower_than_float": report["latency_ms"] > floating["latency_ms"],
    }


def float_keras_bytes(model: Any, out_dir: Path) -> int:
    """The size of `model` saved as a float `.keras` file: the yardstick of every export's size."""
    with tempfile.TemporaryDirectory(prefix=".float-keras-", suffix=".tmp", dir=out_dir) as work:
        path = Path(work) / "model.keras"
        model.save(str(path))
        return path.stat().st_size


RUNTIME_TOLERANCE = {"float": 1e-3, "keras": 5e-2}
"""How far (relative to the largest output) a runtime may stray from the model it was given: a float
model, or a Keras-quantised one. A converter's own quantisation has no such model to match."""


def check_fidelity(fmt: ExportFormat, job: ExportJob, checks: dict) -> None:
    """Refuse an export whose runtime does not compute what the model it was given computes.

    A runtime can load a file and still get it wrong (a quantised graph mis-lowered); such a file
    is no export, whatever its size. A model that samples at inference (a VAE) differs from itself
    call to call; its exports' differences are reported, not refused. A float export must also still
    be the run's model (its float32 or inference copy may differ only by float16 rounding).

    Raises:
        UserError: the runtime's outputs stray beyond RUNTIME_TOLERANCE.
    """
    if job.quantize != "none" and not fmt.uses_keras_quantization(job.quantize):
        return
    noise = job.reference.self_diff
    if noise is not None:
        checks["inference_noise"] = noise  # the model samples at inference: reported, not held to a tolerance
        return
    what = "the model" if job.quantize == "none" else f"the Keras-{job.quantize} model"
    runtime = checks.get("runtime_diff", checks.get("relative_diff"))
    strays = [(runtime, RUNTIME_TOLERANCE["float" if job.quantize == "none" else "keras"])]
    if job.quantize == "none":
        strays.append((checks.get("relative_diff"), RUNTIME_TOLERANCE["keras"]))
    for diff, limit in strays:
        if diff is not None and diff > limit:
            agree = checks.get("agreement")
            raise UserError(
                f"{fmt.name}'s runtime computes {what} wrongly: outputs differ by {diff:.1e} of their scale"
                + (f" (top-1 agrees on {agree:.1%})" if agree is not None else ""),
                f"--format {fmt.name}",
                "export another format or quantisation; this file was not kept",
            )


def _write_verified(fmt: ExportFormat, job: ExportJob, final: Path) -> dict:
    """Write and verify an export in a staging folder beside `final`, then move it into place."""
    writer = fmt.load_writer()
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        artifact = staging / final.name
        writer.write(artifact, job)
        checks = writer.verify(artifact, job)
        check_fidelity(fmt, job, checks)
        _place(artifact, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checks


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
