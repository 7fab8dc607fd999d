"""Scoring with an exported file in its own runtime: `tfbench predict RUN --with FORMAT` — no UI.

The deployed artefact's answers are what matter, not the Keras model's, so `--with` loads the
export that `report.json` names (by its key: `onnx`, `tflite-int8`, `openvino-float16`, …) in
its runtime and scores with it. An export made after a table's preprocessing takes encoded
features: the run's own preprocessing encodes the raw columns first, as a deployment would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench.errors import UserError
from tfbench.rundir import EXPORTS_DIR


def export_entry(run_dir: Path, key: str) -> dict[str, Any]:
    """The `report.json` entry of a run's export `key`.

    Raises:
        UserError: the run has no such verified export (naming those it has, or how to make it).
    """
    from tfbench.export.report import exports_of, read_report

    reports = exports_of(read_report(Path(run_dir) / EXPORTS_DIR))
    if key not in reports:
        have = ", ".join(sorted(reports)) or "none"
        fmt, _, quantize = key.partition("-")
        make = f"tfbench export {run_dir} --format {fmt}" + (f" --quantize {quantize}" if quantize else "")
        raise UserError(f"the run has no {key} export (it has: {have})", "--with", f"make it with `{make}`")
    entry = reports[key]
    if not (Path(run_dir) / entry["path"]).exists():
        raise UserError(f"the {key} export is gone: {entry['path']}", "--with", "export it again")
    return entry


def export_predictor(run_dir: Path, key: str, model: Any = None) -> Callable[[Any], Any]:
    """A function scoring inputs (an array or a table's columns) with the run's export `key`.

    Args:
        run_dir: the run directory.
        key: the export's `report.json` key.
        model: the run's Keras model, needed when the export comes after a table's preprocessing.
    """
    entry = export_entry(run_dir, key)
    path = Path(run_dir) / entry["path"]
    predict = _runtime(entry["format"], path)
    after = (entry.get("inputs") or {}).get("after_preprocessing") or "encoded features" in entry.get("note", "")
    if not after:
        return predict
    from tfbench.data.feature_space import parts

    found = parts(model) if model is not None else None
    if found is None:
        raise UserError(f"the {key} export takes encoded features and the run's model has no preprocessing", "--with")
    preprocessing = found[0]

    def encoded(x: Any) -> Any:
        from tfbench.export.reference import predict_keras

        return predict(predict_keras(preprocessing, x))

    return encoded


def _runtime(fmt: str, path: Path) -> Callable[[Any], Any]:
    """The runtime's scoring function for one export file (or folder), from its format's writer."""
    from tfbench.export.formats import check_runtime, get_format

    check_runtime(fmt)
    writer = get_format(fmt).load_writer()
    if not hasattr(writer, "predictor"):
        raise UserError(f"tfbench cannot score with {fmt} exports", "--with")
    return writer.predictor(path)
