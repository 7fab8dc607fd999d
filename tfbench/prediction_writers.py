"""Writing predictions as they are scored: CSV, JSON lines, one JSON object, terminal text — no TensorFlow.

`tfbench predict --input` hands these the batches of `tfbench.prediction.Scoring` as they come,
so nothing here holds more than one batch: CSV goes through pyarrow's CSV writer (no Python object
per row), the `--json` object is written in pieces, and the terminal's columns take their widths
from the first batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tfbench.errors import UserError
from tfbench.prediction import Predictions, Scoring


def write_batches(batches: Iterable[Predictions], output: Path) -> None:
    """Write predictions as they come: CSV (`.csv`) or JSON lines (any other suffix, e.g. `.jsonl`).

    Raises:
        UserError: the file cannot be written.
    """
    output = Path(output)
    try:
        if output.suffix.lower() == ".csv":
            _write_csv(batches, output)
            return
        with open(output, "w", encoding="utf-8") as f:
            for batch in batches:
                f.writelines(json.dumps(row) + "\n" for row in batch.rows())
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", f"--output ({output})") from None


def _write_csv(batches: Iterable[Predictions], output: Path) -> None:
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    writer = None
    try:
        for batch in batches:
            predicted = batch.columns.get("predicted")
            numbers = isinstance(predicted, np.ndarray) and predicted.dtype.kind == "f"  # a regressor's values
            floats = ("probability", "predicted", "label") if numbers else ("probability",)
            texts = ("input", "predicted", "label")
            table = pa.table(  # several outputs' columns (`age`, `kind_probability`): their own types
                {
                    name: pa.array(values, pa.float64() if name in floats else pa.string() if name in texts else None)
                    for name, values in batch.columns.items()
                }
            )
            writer = writer or csv.CSVWriter(str(output), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        output.write_text("input,predicted\n", encoding="utf-8")


def write_rows(rows: list[dict[str, Any]], output: Path) -> None:
    """Write prediction rows (plain dicts, all with the same keys) as CSV or JSON lines, like `write_batches`."""
    columns = {name: [row[name] for row in rows] for name in (rows[0] if rows else {"input": [], "predicted": []})}
    write_batches([Predictions(columns)], output)


def json_chunks(scoring: Scoring) -> Iterator[str]:
    """`predict --input --json`'s one JSON object, in pieces as the rows are scored (rows before totals)."""
    yield json.dumps(scoring.head())[:-1] + ', "rows": ['
    first = True
    for batch in scoring.batches:
        for row in batch.rows():
            yield ("" if first else ", ") + json.dumps(row)
            first = False
    tail = {k: v for k, v in scoring.result().items() if k not in scoring.head()}
    yield "], " + json.dumps(tail)[1:]


def text_lines(batches: Iterable[Predictions]) -> Iterator[str]:
    """The rows as aligned text for the terminal, a header first; column widths from the first batch."""
    widths: dict[str, int] | None = None
    for batch in batches:
        cells = [{k: _cell(v) for k, v in row.items()} for row in batch.rows()]
        if widths is None and cells:
            widths = {k: max(len(k), *(len(c.get(k, "")) for c in cells)) for k in cells[0]}
            yield "  ".join(k.ljust(w) for k, w in widths.items()).rstrip()
        for row in cells:
            yield "  ".join(row.get(k, "").ljust(w) for k, w in (widths or {}).items()).rstrip()


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_line(result: dict[str, Any]) -> str:
    """`344 predictions; accuracy 97.4%` — what the command prints after the rows.

    When some rows had no label (or one the run does not know), the metric covers the others and
    the line says how many: `406 predictions; MAE 2.31 over 398 labelled rows; 8 had no label`.
    """
    text = f"{result['samples']:,} predictions"
    for name, metric in (result.get("outputs") or {}).items():  # a model with several outputs
        text += "".join(
            f"; {name} {k} {v:.1%}" if k == "accuracy" else f"; {name} MAE {v:.4g}" for k, v in metric.items()
        )
    if result.get("with", "keras") != "keras":
        text += f" with the {result['with']} export"
    if "accuracy" in result:
        text += f"; accuracy {result['accuracy']:.1%}"
    elif "mae" in result:
        text += f"; MAE {result['mae']:.4g}"
    missing, unknown = result.get("unlabelled", 0), result.get("unknown_labels", 0)
    if missing or unknown:
        text += f" over {result['labelled']:,} labelled rows" if result.get("labelled") else "; no usable labels"
    if missing:
        text += f"; {missing:,} had no label"
    if unknown:
        what = "a number" if result.get("label_kind") == "regression" else "one of the run's classes"
        example = result.get("unknown_label_example")
        text += f"; {unknown:,} had a label that is not {what}" + (f" (e.g. {example!r})" if example else "")
    return text
