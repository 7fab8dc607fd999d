"""Predictions on new data: `tfbench predict RUN_DIR --input PATH [--output FILE]` — without a UI.

A finished run's model scores new raw inputs of the kind it was trained on: rows of a CSV or
Parquet file with the training columns (the model's own preprocessing encodes them), image files
or a folder of them, text files or a folder of them. Each input gives one row — its name, the
predicted class and its probability (or the predicted value) and, where the input carries one,
the true label — written as CSV or JSON lines, or returned for the terminal. When labels are
present the accuracy (or MAE) is reported too. TensorFlow is imported when predicting.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.errors import UserError

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _files(path: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[str | None]]:
    """The input files under `path` (or `path` itself), and each one's class folder name when inside one."""
    if path.is_file():
        return [path], [None]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not found:
        raise UserError(f"holds no {'/'.join(extensions)} files", f"--input ({path})")
    return found, [p.parent.name if p.parent != path else None for p in found]


def _table_inputs(experiment, info, path: Path) -> tuple[Any, list[str], Any]:
    """(raw columns, row names, labels or None) of a table to score."""
    from tfbench.data import table_source
    from tfbench.data.feature_space import plan_of_info
    from tfbench.data.tables import label_values, read_table

    plan = plan_of_info(info)
    if plan is None:
        raise ValueError("a table's DataInfo carries its plan")
    fmt = TABLE_SUFFIXES.get(path.suffix.lower(), experiment.data.kind)
    delimiter = experiment.data.options.get("delimiter", ",")
    table = read_table(str(path), fmt, delimiter, "--input")
    columns = table_source.columns_of(table, plan, "--input")
    if info.outputs:  # a label column per output
        from tfbench.data.table_labels import scoring_labels

        return columns, [str(i + 1) for i in range(table.num_rows)], scoring_labels(table, info, path)
    labels = None
    if plan.label in table.column_names and table[plan.label].null_count == 0:
        labels = label_values(table[plan.label], plan, f"--input ({path.name}, column {plan.label!r})")
    return columns, [str(i + 1) for i in range(table.num_rows)], labels


def _folder_labels(info, classes: list[str | None]):
    """Class ids from the files' class folders, when every file sits in a folder named after a class."""
    if not classes or any(c not in info.class_names for c in classes):
        return None
    return np.array([info.class_names.index(c) for c in classes], np.int32)


def _image_inputs(experiment, info, path: Path) -> tuple[Any, list[str], Any]:
    import tensorflow as tf

    from tfbench.data import images
    from tfbench.data.options import parse_options
    from tfbench.data.pipeline import preprocess_fn

    options = parse_options(images.OPTIONS, experiment.data.options)
    source = images.describe(experiment.data, options, experiment.train.seed)
    height, width, channels = source.input_shape
    files, classes = _files(path, images.EXTENSIONS)
    prep = preprocess_fn(source, options, one_hot=False)
    batch = []
    for file in files:
        image = tf.io.decode_image(tf.io.read_file(str(file)), channels=channels, expand_animations=False)
        batch.append(tf.cast(tf.image.resize(image, (height, width)), tf.float32))
    x = tf.stack(batch)
    if prep is not None:
        x, _ = prep(x, tf.zeros(len(files), tf.int32))
    return np.asarray(x), [str(f) for f in files], _folder_labels(info, classes)


def _text_inputs(experiment, info, path: Path) -> tuple[Any, list[str], Any]:
    import tensorflow as tf

    from tfbench.data import text
    from tfbench.data.options import parse_options

    options = parse_options(text.OPTIONS, experiment.data.options)
    vectorize, _ = text.vectorizer(experiment.data, options, experiment.train.seed)
    files, classes = _files(path, tuple(options.extensions))
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    if vectorize is None:  # the model vectorises the raw texts itself
        return np.asarray(texts, dtype=object), [str(f) for f in files], _folder_labels(info, classes)
    x = np.asarray(vectorize(tf.constant(texts, tf.string)), np.int32)
    return x, [str(f) for f in files], _folder_labels(info, classes)


def _npz_inputs(experiment, info, path: Path) -> tuple[Any, list[str], Any]:
    """An npz of new samples: arrays named as the run's (its inputs'; its labels' when all there)."""
    from tfbench.data import npz_source
    from tfbench.data.info import IONames
    from tfbench.data.named_arrays import scoring_arrays
    from tfbench.data.options import parse_options
    from tfbench.data.rows import count

    options = parse_options(npz_source.OPTIONS, experiment.data.options)
    x, labels = scoring_arrays(str(path), options, IONames(tuple(info.inputs), tuple(info.outputs)), info)
    return x, [str(i + 1) for i in range(count(x))], labels


_INPUTS = {
    "csv": _table_inputs,
    "parquet": _table_inputs,
    "images": _image_inputs,
    "text": _text_inputs,
    "npz": _npz_inputs,
}


def _rows(info, names: list[str], outputs, labels, logits: bool) -> list[dict[str, Any]]:
    """One plain row per input: name, predicted class and probability (or value), and its label."""
    from tfbench.evaluation import probabilities

    rows: list[dict[str, Any]] = []
    if info.label_kind == "regression":
        values = np.asarray(outputs, np.float64).reshape(len(names), -1)[:, 0]
        for i, name in enumerate(names):
            row = {"input": name, "predicted": float(values[i])}
            if labels is not None:
                row["label"] = float(np.asarray(labels).reshape(len(names), -1)[i, 0])
            rows.append(row)
        return rows
    probs = probabilities(outputs, logits)
    for i, name in enumerate(names):
        k = int(probs[i].argmax())
        row = {
            "input": name,
            "predicted": info.class_names[k] if k < len(info.class_names) else str(k),
            "probability": round(float(probs[i, k]), 6),
        }
        if labels is not None:
            row["label"] = info.class_names[int(labels[i])]
        rows.append(row)
    return rows


def _metric(info, rows: list[dict[str, Any]]) -> dict[str, float] | None:
    if not rows or "label" not in rows[0]:
        return None
    if info.label_kind == "regression":
        return {"mae": float(np.mean([abs(r["predicted"] - r["label"]) for r in rows]))}
    return {"accuracy": float(np.mean([r["predicted"] == r["label"] for r in rows]))}


def predict_inputs(run_dir: Path, input_path: Path, with_export: str | None = None) -> dict[str, Any]:
    """Score new raw inputs with a finished run's model.

    Args:
        run_dir: the run directory (its `experiment.toml` and model).
        input_path: a table file, an image or text file, or a folder of them.
        with_export: score with this verified export instead (its `report.json` key: `onnx`,
            `tflite-int8`, …), in its own runtime.

    Returns:
        `{"rows": [{input, predicted, probability | , label?}], "samples": n, "label_kind": …,
        "accuracy" | "mae": … when labels are present}`.

    Raises:
        UserError: a missing input, a run kind that cannot score files, a missing training column.
    """
    from tfbench import data, rundir
    from tfbench.data import rows as sample_rows
    from tfbench.export import quiet_tensorflow
    from tfbench.export.reference import outputs_are_logits
    from tfbench.io_model import data_names

    input_path = Path(input_path).expanduser()
    if not input_path.exists():
        raise UserError("no such file or folder", f"--input ({input_path})")
    run_dir = Path(run_dir)
    model_path = rundir.find_model(run_dir)
    experiment = rundir.load_run_experiment(run_dir)
    reader = _INPUTS.get(experiment.data.kind)
    if reader is None:
        raise UserError(
            f"runs on {experiment.data.kind}: data cannot score new files",
            "--input",
            "use --split to score a split of the run's own data",
        )
    quiet_tensorflow()
    info = data.describe(experiment.data, experiment.train.seed, io=data_names(experiment))
    x, names, labels = reader(experiment, info, input_path)
    if sample_rows.count(x) == 0:
        raise UserError("holds no rows to score", f"--input ({input_path})")
    model = rundir.load_model(model_path)
    outputs = _outputs(run_dir, model, x, with_export)
    if info.outputs:  # a model with several outputs: a prediction (and a metric) per output
        return _several_outputs(
            experiment, info, names, outputs, labels, {"run_dir": str(run_dir), "input": str(input_path)}
        )
    rows = _rows(info, names, outputs, labels, outputs_are_logits(model, experiment, info))
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "input": str(input_path),
        "samples": len(rows),
        "label_kind": info.label_kind,
        "with": with_export or "keras",
        "rows": rows,
    }
    result.update(_metric(info, rows) or {})
    return result


def _outputs(run_dir: Path, model: Any, x: Any, with_export: str | None) -> Any:
    """The Keras model's outputs on `x`, or those of a verified export in its own runtime."""
    from tfbench.export.reference import predict_keras

    if with_export is None:
        return predict_keras(model, x)
    from tfbench.export.runners import export_predictor

    return export_predictor(run_dir, with_export, model)(x)


def _several_outputs(experiment, info, names: list[str], outputs: dict, labels, result: dict) -> dict[str, Any]:
    """One row per input with every output's prediction (`NAME`, `NAME_probability`, `NAME_label`),
    and each output's accuracy or MAE where the input carries its labels."""
    from tfbench import io_model
    from tfbench.export.reference import outputs_are_logits

    rows: list[dict[str, Any]] = [{"input": name} for name in names]
    metrics = {}
    for part in io_model.parse(experiment.model).outputs:
        out_info = info.outputs[part.name]
        logits = outputs_are_logits(None, io_model.output_view(experiment, part), out_info)
        truth = None if labels is None else labels[part.name]
        own = _rows(out_info, names, outputs[part.name], truth, logits)
        for row, mine in zip(rows, own):
            row.update(
                {f"{part.name}_{k}" if k != "predicted" else part.name: v for k, v in mine.items() if k != "input"}
            )
        metrics[part.name] = _metric(out_info, own) or {}
    result.update(samples=len(rows), label_kind="outputs", rows=rows)
    if any(metrics.values()):
        result["outputs"] = metrics
    return result


def write_rows(rows: list[dict[str, Any]], output: Path) -> None:
    """Write prediction rows as CSV (`.csv`) or JSON lines (any other suffix, e.g. `.jsonl`).

    Raises:
        UserError: the file cannot be written.
    """
    output = Path(output)
    try:
        with open(output, "w", newline="", encoding="utf-8") as f:
            if output.suffix.lower() == ".csv":
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["input", "predicted"])
                writer.writeheader()
                writer.writerows(rows)
            else:
                f.writelines(json.dumps(row) + "\n" for row in rows)
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", f"--output ({output})") from None


def summary_line(result: dict[str, Any]) -> str:
    """`344 predictions; accuracy 97.4%` — what the command prints after the rows."""
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
    return text
