"""Predictions on new data: `tfbench predict RUN_DIR --input PATH [--output FILE]` — without a UI.

A finished run's model scores new raw inputs of the kind it was trained on: rows of a CSV or
Parquet file with the training columns (the model's own preprocessing encodes them), image files
or a folder of them, text files or a folder of them. Each input gives one row — its name, the
predicted class and its probability (or the predicted value) and, where the input carries one,
the true label — written as CSV or JSON lines, or printed for the terminal. A table is read,
scored and written a record batch at a time (`tfbench.data.table_scoring`), so a file larger than
memory scores in flat memory. When labels are present the accuracy (or MAE) is reported over the
rows that have one, with how many had none. TensorFlow is imported when predicting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.data import rows as sample_rows
from tfbench.errors import UserError

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
TABLE_KINDS = ("csv", "parquet")


def _files(path: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[str | None]]:
    """The input files under `path` (or `path` itself), and each one's class folder name when inside one."""
    if path.is_file():
        return [path], [None]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not found:
        raise UserError(f"holds no {'/'.join(extensions)} files", f"--input ({path})")
    return found, [p.parent.name if p.parent != path else None for p in found]


def _table_inputs(experiment, info, path: Path) -> tuple[Any, list[str], Any]:
    """(raw columns, row names, labels per output or None) of a table scored by a model with several
    outputs, read whole (one output's tables stream: `_table_batches`)."""
    from tfbench.data import table_source
    from tfbench.data.feature_space import plan_of_info
    from tfbench.data.table_labels import scoring_labels
    from tfbench.data.tables import read_table

    plan = plan_of_info(info)
    if plan is None:
        raise ValueError("a table's DataInfo carries its plan")
    fmt = TABLE_SUFFIXES.get(path.suffix.lower(), experiment.data.kind)
    delimiter = experiment.data.options.get("delimiter", ",")
    table = read_table(str(path), fmt, delimiter, "--input")
    columns = table_source.columns_of(table, plan, "--input")
    return columns, [str(i + 1) for i in range(table.num_rows)], scoring_labels(table, info)


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
    "csv": _table_inputs,  # several outputs; one output's tables stream
    "parquet": _table_inputs,
    "images": _image_inputs,
    "text": _text_inputs,
    "npz": _npz_inputs,
}
SCORE_ROWS = 8192  # rows a table batch is scored in, at most
LABELLED, UNLABELLED, UNKNOWN = 0, 1, 2  # what each input's label was


@dataclass
class Predictions:
    """One batch of scored inputs, by column — `input`, `predicted`, `probability` (classifiers) and
    `label` (when the inputs carry one; None where a row has none) — plus what the tally needs.

    Columns, not row dicts: a table's batch of 20,000 rows is written by pyarrow without a Python
    object per row.
    """

    columns: dict[str, Any]
    state: np.ndarray | None = None  # per input: LABELLED, UNLABELLED or UNKNOWN
    score: np.ndarray | None = None  # per labelled input: 1/0 correct, or the absolute error
    unknown: str | None = None  # a label text that is not usable (for the note)
    metrics: dict[str, dict[str, float]] | None = None  # several outputs: each one's accuracy or MAE

    def __len__(self) -> int:
        return len(self.columns["input"])

    def rows(self) -> list[dict[str, Any]]:
        """The batch as one plain dict per input (JSON and the terminal)."""
        names = list(self.columns)
        values = [self.columns[n].tolist() if hasattr(self.columns[n], "tolist") else self.columns[n] for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


@dataclass
class Tally:
    """The running count of what was scored: inputs, labelled ones and the metric's sum over them."""

    label_kind: str
    samples: int = 0
    labelled: int = 0
    unlabelled: int = 0
    unknown: int = 0
    example: str | None = None  # a label that is not one of the run's classes
    total: float = 0.0

    def add(self, batch: Predictions) -> None:
        self.samples += len(batch)
        if batch.state is None or batch.score is None:
            return
        self.labelled += int(np.count_nonzero(batch.state == LABELLED))
        self.unlabelled += int(np.count_nonzero(batch.state == UNLABELLED))
        self.unknown += int(np.count_nonzero(batch.state == UNKNOWN))
        self.total += float(np.sum(batch.score))
        self.example = self.example or batch.unknown

    def metric(self) -> dict[str, Any]:
        """`accuracy` or `mae` over the labelled inputs, and how many had no usable label."""
        out: dict[str, Any] = {}
        if self.labelled:
            out["mae" if self.label_kind == "regression" else "accuracy"] = self.total / self.labelled
        if self.labelled or self.unlabelled or self.unknown:
            out.update(labelled=self.labelled, unlabelled=self.unlabelled, unknown_labels=self.unknown)
        if self.example is not None:
            out["unknown_label_example"] = self.example
        return out


@dataclass
class Scoring:
    """New inputs being scored: what they are, their predictions batch by batch, and the tally so far.

    `batches` reads, predicts and yields as it goes (a table is never held whole); `tally` is
    complete once `batches` is exhausted.
    """

    run_dir: str
    input: str
    label_kind: str
    batches: Iterator[Predictions]
    tally: Tally
    with_export: str = "keras"  # what scores: the Keras model, or a verified export's key
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # several outputs: per output

    def head(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "input": self.input, "label_kind": self.label_kind, "with": self.with_export}

    def result(self) -> dict[str, Any]:
        """The summary once every batch is read: `samples` and the metric (per output: `outputs`)."""
        out = {**self.head(), "samples": self.tally.samples, **self.tally.metric()}
        return {**out, "outputs": self.metrics} if self.metrics else out


def predictions(info, names: list[str] | np.ndarray, outputs, labels, logits: bool, unknown=None) -> Predictions:
    """The scored batch: names, predicted class and probability (or value), and each input's label.

    Args:
        labels: None, or per input a class id (`NO_CLASS` for none) or a target (NaN for none).
        unknown: None, or per input the label text where it is not usable (not a class, not a number).
    """
    from tfbench.evaluation import probabilities

    n = len(names)
    if info.label_kind == "regression":
        values = np.asarray(outputs, np.float64).reshape(n, -1)[:, 0]
        columns: dict[str, Any] = {"input": names, "predicted": values}
        if labels is None:
            return Predictions(columns)
        targets = np.asarray(labels, np.float64).reshape(n, -1)[:, 0]
        has = ~np.isnan(targets)
        columns["label"] = _blanked(targets, has)
        return _labelled(columns, has, np.abs(values - targets)[has], unknown)
    probs = probabilities(outputs, logits)
    k = probs.argmax(axis=1)
    classes = np.array([*info.class_names, *(str(i) for i in range(len(info.class_names), probs.shape[1]))])
    columns = {"input": names, "predicted": classes[k], "probability": probs[np.arange(n), k].round(6)}
    if labels is None:
        return Predictions(columns)
    ids = np.asarray(labels, np.int64).reshape(n)
    has = ids >= 0
    columns["label"] = _blanked(classes[np.maximum(ids, 0)], has)
    return _labelled(columns, has, (k == ids)[has], unknown)


def _blanked(values: np.ndarray, has: np.ndarray) -> np.ndarray:
    """`values` as objects, None where an input has no label."""
    out = values.astype(object)
    out[~has] = None
    return out


def _labelled(columns: dict[str, Any], has: np.ndarray, score: np.ndarray, unknown) -> Predictions:
    state = np.where(has, LABELLED, UNLABELLED)
    example = None
    if unknown is not None:
        marked = np.array([u is not None for u in unknown])
        state[marked & ~has] = UNKNOWN
        example = next((u for u in unknown if u is not None), None)
    return Predictions(columns, state, score, example)


def _table_batches(experiment, info, path: Path, score, logits: bool) -> Iterator[Predictions]:
    """Predictions for a table, a record batch at a time, by `score` (a batch of raw columns → outputs)."""
    from tfbench.data.feature_space import plan_of_info
    from tfbench.data.table_scoring import scoring_batches

    plan = plan_of_info(info)
    if plan is None:
        raise UserError("the run's data describes no table", "--input")
    fmt = TABLE_SUFFIXES.get(path.suffix.lower(), experiment.data.kind)
    options = experiment.data.options
    _, reading = scoring_batches(path, fmt, plan, options.get("delimiter", ","), options.get("encoding", "utf-8"))
    done = 0
    for x, label_column in reading:
        labels, unknown = _labels(label_column, plan)
        n = sample_rows.count(x)
        outputs = np.concatenate([score(sample_rows.take(x, i, i + SCORE_ROWS)) for i in range(0, n, SCORE_ROWS)])
        names = np.arange(done + 1, done + n + 1).astype(str)
        done += n
        yield predictions(info, names, outputs, labels, logits, unknown)


def _labels(column, plan) -> tuple[Any, list[str | None] | None]:
    """(targets for scoring, per row the label text where it is there but not usable) of a label column."""
    if column is None:
        return None, None
    from tfbench.data.table_scoring import label_targets

    targets = label_targets(column, plan)
    bad = np.isnan(targets) if plan.label_kind == "regression" else targets < 0
    if not bad.any():
        return targets, None
    texts = column.to_pylist()
    return targets, [str(texts[i]) if b and texts[i] not in (None, "") else None for i, b in enumerate(bad)]


def _scorer(model):
    """The model in inference mode as a traced function (one trace for full batches, one for the rest)."""
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def score(x: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {k: tf.constant(v, tf.string if v.dtype == object else None) for k, v in x.items()}
        return np.asarray(call(tensors))

    return score


def score_inputs(run_dir: Path, input_path: Path, with_export: str | None = None) -> Scoring:
    """Start scoring new raw inputs with a finished run's model; predictions come as `Scoring.batches` is read.

    Args:
        run_dir: the run directory (its `experiment.toml` and model).
        input_path: a table file, an image or text file, or a folder of them.
        with_export: score with this verified export instead (its `report.json` key: `onnx`,
            `tflite-int8`, …), in its own runtime.

    Raises:
        UserError: a missing input, a run kind that cannot score files, a missing training column (a
            cell the model cannot read is raised while `batches` is read).
    """
    from tfbench import data, rundir
    from tfbench.export import quiet_tensorflow
    from tfbench.export.reference import outputs_are_logits
    from tfbench.io_model import data_names

    input_path = Path(input_path).expanduser()
    if not input_path.exists():
        raise UserError("no such file or folder", f"--input ({input_path})")
    run_dir = Path(run_dir)
    model_path = rundir.find_model(run_dir)
    experiment = rundir.load_run_experiment(run_dir)
    table = experiment.data.kind in TABLE_KINDS
    reader = _INPUTS.get(experiment.data.kind)
    if reader is None and not table:
        raise UserError(
            f"runs on {experiment.data.kind}: data cannot score new files",
            "--input",
            "use --split to score a split of the run's own data",
        )
    quiet_tensorflow()
    info = data.describe(experiment.data, experiment.train.seed, io=data_names(experiment))
    model = rundir.load_model(model_path)
    tally = Tally(info.label_kind if not info.outputs else "outputs")
    scoring = Scoring(str(run_dir), str(input_path), tally.label_kind, iter(()), tally, with_export or "keras")
    if info.outputs and reader is not None:  # several outputs: a prediction (and a metric) per output
        x, names, labels = reader(experiment, info, input_path)
        batch = _several_outputs(experiment, info, names, _outputs(run_dir, model, x, with_export), labels)
        scoring.metrics = {name: metric for name, metric in (batch.metrics or {}).items() if metric}
        batches: Iterator[Predictions] = iter([batch])
    elif table:
        score = export_scorer(run_dir, with_export, model) if with_export else _scorer(model)
        batches = _table_batches(experiment, info, input_path, score, outputs_are_logits(model, experiment, info))
    else:
        assert reader is not None  # refused above: a kind that is neither a table nor readable
        x, names, labels = reader(experiment, info, input_path)
        labels = None if labels is None else np.asarray(labels)
        logits = outputs_are_logits(model, experiment, info)
        batches = iter([predictions(info, names, _outputs(run_dir, model, x, with_export), labels, logits)])
    scoring.batches = _counted(batches, tally, input_path)
    return scoring


def _counted(batches: Iterator[Predictions], tally: Tally, path: Path) -> Iterator[Predictions]:
    for batch in batches:
        tally.add(batch)
        yield batch
    if tally.samples == 0:
        raise UserError("holds no rows to score", f"--input ({path})")


def _outputs(run_dir: Path, model: Any, x: Any, with_export: str | None) -> Any:
    """The Keras model's outputs on `x`, or those of a verified export in its own runtime."""
    from tfbench.export.reference import predict_keras

    if with_export is None:
        return predict_keras(model, x)
    return export_scorer(run_dir, with_export, model)(x)


def export_scorer(run_dir: Path, with_export: str, model: Any) -> Any:
    """A verified export's predictor (raw inputs → outputs, in the export's own runtime)."""
    from tfbench.export.runners import export_predictor

    return export_predictor(run_dir, with_export, model)


def _several_outputs(experiment, info, names: list[str], outputs: dict, labels) -> Predictions:
    """One row per input with every output's prediction (`NAME`, `NAME_probability`, `NAME_label`),
    and each output's accuracy or MAE where the input carries its labels (`Predictions.metrics`)."""
    from tfbench import io_model
    from tfbench.export.reference import outputs_are_logits

    columns: dict[str, Any] = {"input": names}
    metrics: dict[str, dict[str, float]] = {}
    for part in io_model.parse(experiment.model).outputs:
        out_info = info.outputs[part.name]
        logits = outputs_are_logits(None, io_model.output_view(experiment, part), out_info)
        truth = None if labels is None or part.name not in labels else np.asarray(labels[part.name])
        own = predictions(out_info, names, outputs[part.name], truth, logits)
        for key, values in own.columns.items():
            if key != "input":
                columns[part.name if key == "predicted" else f"{part.name}_{key}"] = values
        tally = Tally(out_info.label_kind)
        tally.add(own)
        metrics[part.name] = {k: v for k, v in tally.metric().items() if k in ("accuracy", "mae")}
    return Predictions(columns, metrics=metrics)


def predict_inputs(run_dir: Path, input_path: Path, with_export: str | None = None) -> dict[str, Any]:
    """Score new raw inputs with a finished run's model (or `with_export`), all at once (see
    `score_inputs` to stream).

    Returns:
        `{"rows": [{input, predicted, probability | , label?}], "samples": n, "label_kind": …, "with": …,
        "accuracy" | "mae": … over the inputs that have a label, "labelled", "unlabelled",
        "unknown_labels" when the inputs carry labels}`; with several outputs, a prediction per output in
        each row and `"outputs": {name: {"accuracy" | "mae": …}}`.
    """
    scoring = score_inputs(run_dir, input_path, with_export)
    rows = [row for batch in scoring.batches for row in batch.rows()]
    return {**scoring.result(), "rows": rows}
