"""An exports folder's `report.json`, and the tables `tfbench export` prints (and the TUI shows).

`report.json` holds one entry per export, keyed as `formats.report_key` names it (`keras`,
`tflite-int8`, …); writing one export's entry keeps the others. `tfbench export --all` adds the
format × quantisation matrix under MATRIX_KEY: one row per pair tried, ✔ with its figures or ✗
with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.atomic import write_json
from tfbench.export.formats import report_key
from tfbench.figures import format_bytes, format_latency

if TYPE_CHECKING:
    from rich.table import Table

REPORT_FILE = "report.json"
MATRIX_KEY = "matrix"
"""The entry of `report.json` that holds the last `export --all` matrix (not an export)."""


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


def exports_of(reports: dict) -> dict[str, dict]:
    """The export entries of a `report.json` (without the matrix)."""
    return {key: value for key, value in reports.items() if key != MATRIX_KEY and isinstance(value, dict)}


def save_matrix(out_dir: Path, rows: list[dict]) -> Path:
    """Keep an `export --all` matrix in `report.json`."""
    import time

    return merge_report(out_dir, MATRIX_KEY, {"created": time.time(), "rows": rows})


def read_matrix(out_dir: Path) -> list[dict]:
    """The last `export --all` matrix of an exports folder ([] when there is none)."""
    matrix = read_report(out_dir).get(MATRIX_KEY)
    return list(matrix.get("rows", [])) if isinstance(matrix, dict) else []


def report_table(reports: list[dict]) -> Table:
    """A rich table of verification reports, one row per export (fits 80 columns)."""
    from rich import box
    from rich.table import Table

    metric: str = next((str(r["metric"]) for r in reports if r.get("metric")), "accuracy")
    keras = next((r.get("keras_metric") for r in reports if r.get("keras_metric") is not None), None)
    title = "export verification" + (f" (the Keras model: {metric} {_metric_text(metric, keras)})" if keras else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("export", "size", "×", "rel Δ", "agree", metric, "latency"):
        table.add_column(column, justify="left" if column == "export" else "right", no_wrap=True)
    for report in reports:
        ratio = report.get("size_ratio")
        relative = report.get("relative_diff")
        table.add_row(
            report_key(report["format"], report.get("quantization", "none"), report.get("int8_io", False)),
            format_bytes(report["size_bytes"]),
            f"{ratio:.1f}" if ratio else "—",
            f"{relative:.0e}" if relative is not None else f"{report['max_abs_diff']:.1e}",
            "—" if report.get("agreement") is None else f"{report['agreement']:.1%}",
            _metric_text(metric, report.get("export_metric")),
            _latency_text(report),
        )
        for name, head in (report.get("outputs") or {}).items():  # a model with several outputs
            table.add_row(
                f"  ↳ {name}",
                "",
                f"{head['max_abs_diff']:.1e}",
                "—" if head.get("agreement") is None else f"{head['agreement']:.1%}",
                _metric_text(head.get("metric", ""), head.get("export_metric")),
                _metric_text(head.get("metric", ""), head.get("keras_metric")),
                "",
            )
    return table


def _metric_text(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if name == "accuracy" else f"{value:.4g}"


def matrix_table(rows: list[dict]) -> Any:
    """The format × quantisation matrix as a rich renderable: one line per pair, then the reasons.

    Columns: size, how many times smaller than the float `.keras`, max |Δ| relative to the outputs'
    scale, top-1 agreement (or the metric's change for a regressor), latency (median of single-thread
    runs ± half its 10–90 % spread), ✔/✗. Under the table, each ✗'s reason and each flag (slower than
    its float file, layers Keras left float). Fits 80 columns.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="exports: format × quantisation", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("export", "size", "×", "rel Δ", "agree", "latency", ""):
        table.add_column(column, justify="left" if column in ("export", "") else "right", no_wrap=True)
    notes: dict[tuple[bool, str], list[str]] = {}  # one line per distinct note, naming every row it is about
    for row in rows:
        ok = bool(row.get("ok"))
        table.add_row(
            row["key"],
            format_bytes(row["size_bytes"]) if ok else "",
            f"{row['size_ratio']:.1f}" if ok and row.get("size_ratio") else "",
            f"{row['relative_diff']:.0e}" if ok and row.get("relative_diff") is not None else "",
            _agreement_text(row) if ok else "",
            _latency_text(row) if ok else "",
            Text("✔", style="green") if ok else Text("✗", style="red"),
        )
        for note in _row_notes(row):
            notes.setdefault((ok, note), []).append(row["key"])
    text = Text()
    for (ok, note), keys in notes.items():
        text.append(f"{'!' if ok else '✗'} {', '.join(keys)}: ", style="yellow" if ok else "red")
        text.append(note + "\n")
    return Group(table, text) if notes else table


def _agreement_text(row: dict) -> str:
    if row.get("agreement") is not None:
        return f"{row['agreement']:.1%}"
    if row.get("export_metric") is not None and row.get("keras_metric") is not None:
        return f"{row['export_metric'] - row['keras_metric']:+.2g}"
    return "—"


def _latency_text(row: dict) -> str:
    median = row.get("latency_ms")
    if median is None:
        return "—"
    low, high = row.get("latency_p10_ms"), row.get("latency_p90_ms")
    spread = f"±{(high - low) / 2 / median:.0%}" if low is not None and high is not None and median else ""
    return f"{format_latency(median)}{spread}"


def _row_notes(row: dict) -> list[str]:
    if not row.get("ok"):
        return [row.get("reason") or "failed"]
    notes = []
    if row.get("slower_than_float"):
        notes.append("slower than its float file")
    if row.get("not_quantized"):
        share = row.get("quantized_share")
        names = [name.split(",")[0] + ")" if "," in name else name for name in row["not_quantized"]]
        left = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
        notes.append(f"Keras quantised {share:.0%} of the parameters, left float: {left}")
    if row.get("inputs"):
        notes.append(f"takes {row['inputs']['features']} encoded features of {', '.join(row['inputs']['columns'])}")
    return notes
