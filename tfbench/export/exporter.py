"""The exporter: a finished run's (or a loaded) model in the chosen formats, each verified and placed.

A trained model is only useful where it can be deployed, and a broken export found on the phone
is the worst kind of failure, so every export is checked the moment it is written: reloaded (or
run through the LiteRT interpreter), compared with the Keras model on a held-out batch, scored on
the validation data, and timed. The checks land in `exports/report.json`, one entry per export.

Every export is written into a temporary folder beside its destination and renamed into place
only once it converted and verified, so a failure never leaves half a file behind. The model, its
data and the reference outputs are prepared once for all the formats of one call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench.data import rows
from tfbench.errors import UserError
from tfbench.export.formats import ExportFormat, ExportJob, check_options, format_names, get_format
from tfbench.export.reference import Reference, reference_data
from tfbench.export.report import merge_report
from tfbench.native_log import import_tensorflow_quietly
from tfbench.rundir import EXPORTS_DIR, find_model, load_bundle, load_model, load_run_experiment


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
        fmt: a format of `tfbench.export.formats` (keras | savedmodel | tflite).
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
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[dict]:
    """Export a finished run's model in several formats, loading the model and data once.

    Args: as `export_model`, with a list of formats; `quantize` applies to the one that takes a
        quantisation (TFLite); `on_error(format, error)`, when given, receives a format's own
        failure and the other formats are still exported.

    Returns:
        One verification report per format exported, in order.

    Raises:
        UserError: as `export_model` (for a format's own failure only without `on_error`).
    """
    if not formats:
        raise UserError("name at least one export format", "--format", f"formats: {', '.join(format_names())}")
    for fmt in formats:
        check_options(fmt)
    # Quantisation belongs to the TFLite export; without one it is a mistake, not a no-op.
    quantized = [fmt for fmt in formats if get_format(fmt).quantized]
    check_options(quantized[0] if quantized else formats[0], quantize, int8_io)
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
        takes = get_format(fmt).quantized
        try:
            reports.append(
                export_loaded(
                    model,
                    fmt,
                    out_dir,
                    reference,
                    quantize=quantize if takes else "none",
                    int8_io=int8_io if takes else False,
                    select_tf_ops=select_tf_ops,
                    bundle=bundle,
                    run_dir=run_dir,
                )
            )
        except Exception as exc:  # noqa: BLE001 - handed to on_error, the other formats go on
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
        chosen = get_format(fmt)
        quantize = spec.tflite_quantization if chosen.quantized else "none"
        int8_io = spec.int8_io if chosen.quantized and quantize == "int8" else False
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
        fmt: a registered format (keras | savedmodel | tflite).
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
    chosen = check_options(fmt, quantize, int8_io)
    out_dir = Path(out_dir)
    ensure_writable(out_dir)
    final = out_dir / chosen.artifact_name(quantize, int8_io)
    job = ExportJob(model, reference, quantize, int8_io, select_tf_ops, bundle)
    started = time.perf_counter()
    checks = _write_verified(chosen, job, final)
    report = {
        "format": fmt,
        "quantization": quantize,
        "int8_io": int8_io,
        "path": _relative(final, run_dir),
        "size_bytes": _size(final),
        "split": reference.split,
        "samples": rows.count(reference.x),
        "metric": reference.metric_name,
        "keras_metric": reference.keras_metric,
        **checks,
        "seconds": round(time.perf_counter() - started, 3),
        "created": time.time(),
    }
    merge_report(out_dir, chosen.report_key(quantize, int8_io), report)
    return report


def _write_verified(fmt: ExportFormat, job: ExportJob, final: Path) -> dict:
    """Write and verify an export in a staging folder beside `final`, then move it into place."""
    writer = fmt.load_writer()
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        artifact = staging / final.name
        writer.write(artifact, job)
        checks = writer.verify(artifact, job)
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
