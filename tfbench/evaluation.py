"""How a finished run's model does on one split — without a UI; TensorFlow is imported lazily.

`tfbench predict RUN_DIR` shows it. An accuracy alone hides where a classifier goes wrong, so a
classifier also gets its confusion matrix and the mistakes it was most sure of (often mislabelled
or ambiguous samples worth a look); a regressor gets MAE, RMSE and its worst residuals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench import rundir
from tfbench.data import rows
from tfbench.errors import UserError
from tfbench.export import quiet_tensorflow
from tfbench.export.reference import outputs_are_logits, predict_masked, take_samples, true_classes

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.measure import Measurement

SPLITS = ("validation", "test", "train")
MAX_MATRIX_CLASSES = 20
"""Above this many classes the confusion matrix is summarised as its most confused pairs."""


def evaluate_run(run_dir: Path, split: str = "validation", k: int = 5) -> dict:
    """Score a finished run's model on one split of its data.

    Args:
        run_dir: a run directory holding `model.keras` and `experiment.toml`.
        split: validation | test | train (the training split is iterated in its shuffled order).
        k: how many mistakes (classifiers) or residuals (regressors) to list.

    Returns:
        Plain data: `run_dir`, `split`, `samples`, `label_kind`, and for classifiers `accuracy`,
        `class_names`, `confusion` (rows: true class, columns: predicted class), `per_class`
        (precision, recall, support) and `mistakes` (most confident first: index, true,
        predicted, confidence); for regressors `mae`, `rmse`, `bias` and `worst` (index, target,
        predicted, residual).

    Raises:
        UserError: no model in the run, an unknown split, or a split the run's data does not have.
    """
    if split not in SPLITS:
        from tfbench.errors import close_matches

        raise UserError(
            f"unknown split {split!r}", "--split", close_matches(split, SPLITS) or f"splits: {', '.join(SPLITS)}"
        )
    if k < 0:
        raise UserError("k must be 0 or more", "--k")
    run_dir = Path(run_dir)
    model_path = rundir.find_model(run_dir)
    quiet_tensorflow()
    experiment = rundir.load_run_experiment(run_dir)
    model = rundir.load_model(model_path)
    bundle = rundir.load_bundle(experiment)
    dataset = getattr(bundle, split)
    if dataset is None:
        hint = (
            "set data.test in the preset to a split of the source"
            if split == "test"
            else ("set data.validation_split or data.validation in the preset")
        )
        raise UserError(f"this run's data has no {split} split", "--split", hint)
    x, y = take_samples(dataset, 10**9)
    if x is None or y is None:
        raise UserError(f"the {split} split is empty", "--split")
    outputs, mask = predict_masked(model, x)
    logits = outputs_are_logits(model, experiment, bundle.info)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "split": split,
        "samples": rows.count(x),
        "label_kind": bundle.info.label_kind,
    }
    if bundle.info.outputs:  # a model with several outputs: a report per output
        result.update(label_kind="outputs", outputs=output_reports(experiment, bundle.info, outputs, y, k))
    elif bundle.info.label_kind == "regression":
        result.update(regression_report(outputs, y, k))
    else:
        result.update(classification_report(outputs, y, bundle.info.class_names, logits, k, mask))
    return result


def output_reports(experiment, info, outputs: dict, labels: dict, k: int = 5) -> dict[str, dict]:
    """Each output's report by name, as a model with that output alone would get it.

    An output trained with a cross-entropy on targets in [0, 1] is scored as the probabilities it
    stands for (its logits through a sigmoid or softmax first).
    """
    from tfbench import build, io_model
    from tfbench.data.labels import loss_family

    reports = {}
    for part in io_model.parse(experiment.model).outputs:
        out_info, view = info.outputs[part.name], io_model.output_view(experiment, part)
        logits = outputs_are_logits(None, view, out_info)
        out, truth = outputs[part.name], labels[part.name]
        report: dict[str, Any] = {"label_kind": out_info.label_kind}
        if out_info.label_kind == "regression":
            family = loss_family(build.resolve_loss(view, out_info))
            if family is not None and logits:
                out = probabilities(out, True)[:, 1:] if family == "binary" else probabilities(out, True)
            report.update(regression_report(out, truth, k))
        else:
            report.update(classification_report(out, truth, out_info.class_names, logits, k))
        reports[part.name] = report
    return reports


def probabilities(outputs, logits: bool):
    """Class probabilities (N, C) from a classifier's outputs; one sigmoid unit becomes two columns."""
    import numpy as np

    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        if logits:
            shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
            return shifted / shifted.sum(axis=-1, keepdims=True)
        return outputs
    p = outputs.reshape(len(outputs))
    if logits:
        p = 1.0 / (1.0 + np.exp(-p))
    return np.stack([1.0 - p, p], axis=1)


def classification_report(
    outputs: Any, labels: Any, class_names: list[str], logits: bool, k: int = 5, mask: Any = None
) -> dict:
    """Accuracy, confusion matrix, per-class precision/recall and the k most confident mistakes.

    Labels per position (a tagger's tokens, a mask's pixels) are scored per position: the matrix
    counts positions, and padding positions (False in the model's `mask`) are left out, as
    Keras leaves them out of its metrics.

    Args:
        outputs: the model's outputs (probabilities or logits), one row per sample.
        labels: class ids or one-hot rows, per sample or per position.
        class_names: a name per class id.
        logits: whether `outputs` are logits.
        k: how many mistakes to list.
        mask: the model's output mask (which positions count), or None.

    Returns:
        The report; for labels per position also `positions` (per sample), `scored` (positions
        counted) and `padding` (positions left out), and each mistake's `position`.
    """
    import numpy as np

    outputs = np.asarray(outputs)
    truth = true_classes(labels, outputs.shape[-1] if outputs.ndim > 1 else 1)
    if outputs.ndim == truth.ndim:  # one sigmoid output per position, without a class axis
        outputs = outputs[..., None]
    positions = tuple(truth.shape[1:])
    keep = np.ones(truth.size, bool)
    if positions and mask is not None and np.shape(mask) == truth.shape:
        keep = np.asarray(mask, bool).reshape(-1)
    index = np.flatnonzero(keep)
    probs = probabilities(outputs.reshape(-1, outputs.shape[-1])[index], logits)
    truth = truth.reshape(-1)[index]
    report = _class_counts(probs, truth, class_names, k)
    for mistake in report["mistakes"]:
        flat = int(index[mistake["index"]])
        mistake["index"] = flat // max(1, int(np.prod(positions)))
        if positions:
            mistake["position"] = [int(i) for i in np.unravel_index(flat % int(np.prod(positions)), positions)]
    if positions:
        report.update(positions=int(np.prod(positions)), scored=int(len(index)), padding=int((~keep).sum()))
    return report


def _class_counts(probs: Any, truth: Any, class_names: list[str], k: int) -> dict:
    """The report's numbers from class probabilities (M, C) and true ids (M,), one row per scored item."""
    import numpy as np

    classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    names = list(class_names) if len(class_names) >= classes else [str(i) for i in range(classes)]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth.clip(0, classes - 1), predicted), 1)
    per_class = []
    for c in range(classes):
        support = int(confusion[c].sum())
        called = int(confusion[:, c].sum())
        hit = int(confusion[c, c])
        per_class.append(
            {
                "class": names[c],
                "precision": hit / called if called else None,
                "recall": hit / support if support else None,
                "support": support,
            }
        )
    confidence = probs[np.arange(len(probs)), predicted]
    wrong = np.flatnonzero(predicted != truth)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    mistakes = [
        {
            "index": int(i),
            "true": int(truth[i]),
            "true_name": names[int(truth[i])] if 0 <= truth[i] < classes else str(int(truth[i])),
            "predicted": int(predicted[i]),
            "predicted_name": names[int(predicted[i])],
            "confidence": float(confidence[i]),
        }
        for i in order
    ]
    return {
        "accuracy": float(np.mean(predicted == truth)) if len(truth) else 0.0,
        "class_names": names,
        "confusion": confusion.tolist(),
        "per_class": per_class,
        "mistakes": mistakes,
        "errors": int(len(wrong)),
    }


def regression_report(outputs, targets, k: int = 5) -> dict:
    """MAE, RMSE, mean residual (bias) and the k samples with the largest absolute residual.

    A sample with several targets is ranked by its mean absolute residual.
    """
    import numpy as np

    outputs = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    targets = np.asarray(targets, dtype="float64").reshape(outputs.shape)
    residual = outputs - targets
    per_sample = np.abs(residual).mean(axis=1)
    order = np.argsort(-per_sample, kind="stable")[:k]

    def scalar(row):
        return float(row[0]) if len(row) == 1 else [float(v) for v in row]

    worst = [
        {
            "index": int(i),
            "target": scalar(targets[i]),
            "predicted": scalar(outputs[i]),
            "residual": scalar(residual[i]),
        }
        for i in order
    ]
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "bias": float(np.mean(residual)),
        "worst": worst,
    }


# -- showing it -------------------------------------------------------------------------------


def renderables(result: dict) -> list:
    """Rich renderables for `tfbench predict`: a headline, then the tables (per output, for several)."""
    from rich.text import Text

    if result.get("outputs"):
        parts: list = []
        for name, report in result["outputs"].items():
            parts.append(Text(f"output {name}", style="bold underline"))
            parts += renderables({**report, "split": result["split"], "samples": result["samples"]})
        return parts
    head = Text()
    head.append(f"{result['split']}: {result['samples']} samples  ")
    if result["label_kind"] == "regression":
        head.append(f"MAE {result['mae']:.4g}  RMSE {result['rmse']:.4g}  bias {result['bias']:+.3g}", style="bold")
        return [head, residuals_table(result)]
    if result.get("positions"):
        padding = f", {result['padding']} padding left out" if result.get("padding") else ""
        head.append(f"× {result['positions']} positions ({result['scored']} scored{padding})  ")
    head.append(f"accuracy {result['accuracy']:.2%}", style="bold")
    head.append(f"  ({result['errors']} wrong)")
    parts = [head]
    if len(result["class_names"]) <= MAX_MATRIX_CLASSES:
        parts.append(ConfusionMatrix(result))
    else:
        parts.append(confused_pairs_table(result))
    parts.append(mistakes_table(result))
    return parts


def confusion_table(result: dict, compact: bool = False, numbered: bool = False):
    """The confusion matrix as a rich table: one row per true class, one column per prediction.

    `compact` drops the padding between columns; `numbered` heads rows and columns with class
    numbers (the legend says which is which), so long class names never cut a count to `…`."""
    from rich import box
    from rich.table import Table

    names = result["class_names"]
    short = [str(c) for c in range(len(names))] if numbered else [_short(n) for n in names]
    table = Table(
        title="confusion matrix (rows: true, columns: predicted)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0) if compact else (0, 1),
        show_edge=not compact,
    )
    table.add_column("true", no_wrap=True)
    for name in short:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("recall", justify="right", no_wrap=True)
    for c, row in enumerate(result["confusion"]):
        cells = [(f"[bold]{n}[/]" if i == c and n else ("·" if n == 0 else f"[red]{n}[/]")) for i, n in enumerate(row)]
        recall = result["per_class"][c]["recall"]
        table.add_row(short[c], *cells, "—" if recall is None else f"{recall:.0%}")
    return table


class ConfusionMatrix:
    """The confusion matrix in the widest form that fits the width it is drawn in: the padded table,
    then one without padding, then one with numbered classes and a legend, so that at 80 columns a
    10-class matrix shows every count whole instead of cutting cells to `…`."""

    def __init__(self, result: dict) -> None:
        self.result = result

    def forms(self) -> list:
        """The forms, widest first; the last one always has numbered classes and its legend."""
        from rich.console import Group
        from rich.text import Text

        legend = Text(
            "classes: " + "  ".join(f"{c} {n}" for c, n in enumerate(self.result["class_names"])), style="dim"
        )
        numbered = Group(confusion_table(self.result, compact=True, numbered=True), legend)
        whole_names = all(_short(n) == n for n in self.result["class_names"])
        compact = [confusion_table(self.result, compact=True)] if whole_names else []
        return [confusion_table(self.result), *compact, numbered]

    def fitting(self, console: Console, options: ConsoleOptions) -> RenderableType:
        """The first form whose natural width fits `options` (the numbered one where none does)."""
        from rich.measure import Measurement

        forms = self.forms()
        unbounded = options.update_width(10_000)
        for form in forms[:-1]:
            if Measurement.get(console, unbounded, form).maximum <= options.max_width:
                return form
        return forms[-1]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fitting(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        wide = options.update_width(10_000)
        sizes = [Measurement.get(console, wide, form) for form in self.forms()]
        return Measurement(min(s.minimum for s in sizes), max(s.maximum for s in sizes)).clamp(
            max_width=options.max_width
        )


def confused_pairs_table(result: dict, n: int = 10):
    """The most frequent (true, predicted) confusions, for datasets with many classes."""
    from rich.table import Table

    names = result["class_names"]
    pairs = [
        (count, t, p) for t, row in enumerate(result["confusion"]) for p, count in enumerate(row) if t != p and count
    ]
    pairs.sort(key=lambda item: -item[0])
    table = Table(title="most confused classes", title_justify="left")
    table.add_column("true")
    table.add_column("predicted")
    table.add_column("count", justify="right")
    for count, t, p in pairs[:n]:
        table.add_row(names[t], names[p], str(count))
    return table


def mistakes_table(result: dict):
    """The mistakes the model was most sure of."""
    from rich.table import Table

    table = Table(title="most confident mistakes", title_justify="left")
    table.add_column("sample", justify="right")
    if result.get("positions"):
        table.add_column("position", justify="right")
    table.add_column("true")
    table.add_column("predicted")
    table.add_column("confidence", justify="right")
    for m in result["mistakes"]:
        where = [", ".join(str(i) for i in m["position"])] if "position" in m else []
        table.add_row(str(m["index"]), *where, m["true_name"], m["predicted_name"], f"{m['confidence']:.1%}")
    return table


def residuals_table(result: dict):
    """The samples a regressor missed by the most."""
    from rich.table import Table

    table = Table(title="worst residuals", title_justify="left")
    for column in ("sample", "target", "predicted", "residual"):
        table.add_column(column, justify="right")
    for w in result["worst"]:
        table.add_row(str(w["index"]), _number(w["target"]), _number(w["predicted"]), _number(w["residual"], sign=True))
    return table


def _short(name: str, width: int = 6) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _number(value, sign: bool = False) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_number(v, sign) for v in value[:3]) + (", …]" if len(value) > 3 else "]")
    return f"{value:+.4g}" if sign else f"{value:.4g}"
