"""An exports folder's `report.json`, and the verification table `tfbench export` prints.

`report.json` holds one entry per export, keyed as `formats.report_key` names it (`keras`,
`tflite-int8`, …); writing one export's entry keeps the others.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfbench.atomic import write_json
from tfbench.export.formats import report_key
from tfbench.figures import format_bytes, format_latency

REPORT_FILE = "report.json"


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
            format_bytes(report["size_bytes"]),
            f"{report['max_abs_diff']:.1e}",
            "—" if report.get("agreement") is None else f"{report['agreement']:.1%}",
            _metric_text(metric, report.get("export_metric")),
            _metric_text(metric, report.get("keras_metric")),
            format_latency(report.get("latency_ms")),
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
