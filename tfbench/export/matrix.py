"""`tfbench export RUN --all`: every format × quantisation that fits the model, in one matrix — no UI.

Which combination to ship is a trade of size, fidelity and speed that only measurement settles
(Keras' int8 leaves Conv layers float; a quantised file can be slower than its float one; a runtime
may refuse a model or get it wrong), so `--all` writes every pair the registry lists, verifies each
like any export and gathers one row per pair: ✔ with its figures, or ✗ with the reason. The matrix
goes to `report.json` (MATRIX_KEY) beside the exports' own entries.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench.errors import UserError
from tfbench.export.formats import get_format, matrix_cells

ROW_FIELDS = (
    "path",
    "size_bytes",
    "float_keras_bytes",
    "size_ratio",
    "max_abs_diff",
    "relative_diff",
    "runtime_diff",
    "agreement",
    "metric",
    "export_metric",
    "keras_metric",
    "latency_ms",
    "latency_p10_ms",
    "latency_p90_ms",
    "latency_runs",
    "latency_threads",
    "float_latency_ms",
    "slower_than_float",
    "quantized_share",
    "not_quantized",
    "inputs",
)
"""The figures of an export's report a matrix row keeps."""


def export_all(
    run_dir: Path,
    out_dir: Path | None = None,
    after_preprocessing: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Export a finished run in every format × quantisation, verify each, keep the matrix.

    Args:
        run_dir: the run directory.
        out_dir: where the exports go; default `RUN_DIR/exports`.
        after_preprocessing: a table's model after its FeatureSpace (see `export_run`).
        progress: called with each pair's key before it is exported.

    Returns:
        One row per pair: `{"key", "format", "quantization", "ok", "reason", …figures}`.

    Raises:
        UserError: what stops every export (no model, an unwritable folder).
    """
    from tfbench.export.exporter import prepare_run
    from tfbench.export.report import save_matrix

    prepared = prepare_run(run_dir, out_dir, after_preprocessing)
    rows = []
    for fmt, quantize in matrix_cells():
        key = get_format(fmt).report_key(quantize)
        if progress is not None:
            progress(key)
        rows.append(_cell(prepared, fmt, quantize, key))
    save_matrix(prepared.out_dir, rows)
    return rows


def _cell(prepared: Any, fmt: str, quantize: str, key: str) -> dict[str, Any]:
    """One pair's row: its figures, or the reason it was not written."""
    row: dict[str, Any] = {"key": key, "format": fmt, "quantization": quantize, "ok": False, "reason": None}
    chosen = get_format(fmt)
    if chosen.missing_runtime():
        row["reason"] = f"runtime not installed: pip install 'tfbench[{chosen.extra}]'"
        return row
    try:
        report = prepared.export(fmt, quantize)
    except UserError as err:
        row["reason"] = f"{err.message} ({err.hint})" if err.hint else err.message
        return row
    except Exception as exc:  # noqa: BLE001 - one pair's failure is a ✗ row, the others go on
        row["reason"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        return row
    row["ok"] = True
    row.update({name: report[name] for name in ROW_FIELDS if name in report})
    return row
