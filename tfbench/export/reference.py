"""What every export is checked against, and how outputs are scored — without a UI; TensorFlow lazily.

An export is compared with the Keras model it came from on the same samples (at least
MIN_COMPARED of them): element by element (max |Δ|, and that maximum relative to the largest
output, since a randomly initialised model's outputs can be ~1e-12 and an absolute tolerance alone
says nothing), by top-1 agreement, and by the accuracy (or MAE) both reach on the labels.
`tfbench.evaluation` scores a split with the same sampling and class rules, so an export's accuracy
and `tfbench predict`'s are one number. A model with several outputs is compared output by output
(`Reference.heads`): each has its own labels, kind and metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfbench.data import rows
from tfbench.errors import UserError

if TYPE_CHECKING:
    from tfbench.data.info import DataBundle, DataInfo
    from tfbench.spec import Experiment

MIN_COMPARED = 256
"""Samples every export is compared on at least; a small validation split is topped up from training data."""
MAX_VERIFY_SAMPLES = 2000
"""Validation samples scored per export; enough for a stable accuracy, quick on two cores."""


@dataclass
class Reference:
    """What every export is checked against: validation samples, labels and Keras' outputs."""

    x: Any
    """Up to MAX_VERIFY_SAMPLES validation inputs (numpy)."""
    y: Any
    """Their labels (numpy), or None when the data has none."""
    outputs: Any
    """The Keras model's outputs on `x` (numpy)."""
    label_kind: str
    """categorical | binary | regression."""
    logits: bool
    """Whether the model outputs logits rather than probabilities."""
    split: str
    """Which split `x` came from (validation, test or train)."""
    keras_metric: float | None
    """The Keras model's accuracy (classifiers) or MAE (regressors) on `x`."""
    mask: Any = None
    """Which output positions count (a `mask_zero` model's non-padding positions), or None: all."""
    heads: dict[str, Reference] = field(default_factory=dict)
    """A model with several outputs: each output's own reference (the same `x`), by name."""
    scored: int | None = None
    """How many of the first samples come from `split` and are scored (None: all); the rest only compared."""
    written: Any = None
    """The outputs of the model actually written, when it is a copy of the reference's model (float32
    or Keras-quantised): what the runtime must reproduce (`runtime_diff`)."""
    self_diff: float | None = None
    """How far two Keras calls on the same inputs differ (relative to the largest output) when the model
    draws random numbers at inference (a VAE's sampling): no export can match closer, so its outputs
    are reported but not held to a tolerance. None: the model is deterministic."""

    @property
    def metric_name(self) -> str:
        if self.heads:
            return "per output"  # each output's own metric, in the report's `outputs`
        return "mae" if self.label_kind == "regression" else "accuracy"

    @property
    def samples(self) -> int:
        """How many samples every export is compared on."""
        return rows.count(self.x)

    def compare(self, outputs: Any) -> dict:
        """An export's `outputs` on `x` against Keras': `max_abs_diff`, `relative_diff` (that over the
        largest |output|), `agreement` (top-1, classifiers) and `export_metric` (accuracy or MAE); with several
        outputs, those of each under `outputs` (the largest difference and lowest agreement above)."""
        import numpy as np

        if self.heads:
            return compare_heads(self, outputs)
        outputs = np.asarray(outputs, dtype="float32").reshape(self.outputs.shape)
        delta = np.abs(outputs.astype("float64") - self.outputs.astype("float64"))
        worst = float(delta.max()) if delta.size else 0.0
        checks = {
            "max_abs_diff": worst,
            "relative_diff": relative(worst, self.outputs),
            "compared": self.samples,
            "agreement": agreement(self, outputs),
            "export_metric": score(self, outputs[: self.scored]),
        }
        if self.written is not None:
            written = np.asarray(self.written, dtype="float64").reshape(outputs.shape)
            runtime = float(np.abs(outputs.astype("float64") - written).max()) if written.size else 0.0
            checks["runtime_diff"] = relative(runtime, written)
        return checks

    def identical(self, outputs: Any) -> bool:
        """Whether an export's outputs equal exactly those of the model written (the run's model, or
        its float32 or quantised copy) — every output of a model with several."""
        import numpy as np

        written = self.outputs if self.written is None else self.written
        if isinstance(written, dict):
            return isinstance(outputs, dict) and all(np.array_equal(outputs[k], v) for k, v in written.items())
        return bool(np.array_equal(outputs, written))


def relative(worst: float, reference: Any) -> float:
    """A largest |Δ| over the reference's magnitude (its largest |value|; 0 when both are 0)."""
    import numpy as np

    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    if scale == 0.0:
        return 0.0 if worst == 0.0 else float("inf")
    return worst / scale


def compare_heads(ref: Reference, outputs: Any) -> dict:
    """`Reference.compare` for a model with several outputs: each output against its own reference."""
    if not isinstance(outputs, dict) or set(outputs) != set(ref.heads):
        raise ValueError(
            f"the export gives {sorted(outputs) if isinstance(outputs, dict) else 'one output'}, "
            f"not the model's outputs {sorted(ref.heads)}"
        )
    per = {}
    for name, head in ref.heads.items():
        checks = head.compare(outputs[name])
        per[name] = {**checks, "metric": head.metric_name, "keras_metric": head.keras_metric}
    agreements = [c["agreement"] for c in per.values() if c["agreement"] is not None]
    return {
        "max_abs_diff": max(c["max_abs_diff"] for c in per.values()),
        "relative_diff": max(c["relative_diff"] for c in per.values()),
        "compared": ref.samples,
        "agreement": min(agreements) if agreements else None,
        "export_metric": None,
        "outputs": per,
    }


def take_samples(dataset: Any, limit: int) -> tuple[Any, Any]:
    """Up to `limit` (features, labels) from a batched dataset, as numpy arrays."""
    xs, ys, count = [], [], 0
    for batch in dataset:
        if isinstance(batch, (tuple, list)):
            features, labels = batch[0], batch[1] if len(batch) > 1 else None
        else:
            features, labels = batch, None
        features = rows.as_numpy(features)  # an array, or a dict of named columns or inputs
        xs.append(features)
        if labels is not None:
            ys.append(rows.as_numpy(labels))  # an array, or a label per named output
        count += rows.count(features)
        if count >= limit:
            break
    if not xs:
        return None, None
    x = rows.take(rows.concatenate(xs), 0, limit)
    y = rows.take(rows.concatenate(ys), 0, limit) if ys else None
    return x, y


def outputs_are_logits(model: Any, experiment: Experiment | None = None, info: DataInfo | None = None) -> bool:
    """Whether a classifier outputs logits (so a binary threshold sits at 0, not 0.5).

    The Experiment's resolved loss says so when it can (`from_logits`); otherwise the last
    layer's activation does.
    """
    if experiment is not None and info is not None:
        try:
            from tfbench.build import resolve_loss

            loss = resolve_loss(experiment, info)
        except Exception:  # noqa: BLE001 - fall back to the model itself
            loss = None
        if isinstance(loss, dict):
            return bool(loss.get("from_logits", False))
        if isinstance(loss, str):
            return False
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return activation not in ("softmax", "sigmoid")


def reference_data(model: Any, bundle: DataBundle, experiment: Experiment) -> Reference:
    """Draw the verification samples from the run's validation data and run Keras on them.

    Falls back to the test split, then the training split, when a run has no validation data.

    Raises:
        UserError: the run has no data to verify against.
    """
    split, dataset = "validation", bundle.validation
    if dataset is None:
        split, dataset = ("test", bundle.test) if bundle.test is not None else ("train", bundle.train)
    x, y = take_samples(dataset, MAX_VERIFY_SAMPLES)
    if x is None:
        raise UserError("the run's data is empty; nothing to verify an export against", "data")
    scored = None
    if rows.count(x) < MIN_COMPARED and split != "train" and bundle.train is not None:
        scored = rows.count(x)  # a small split: compare on training samples too, score on the split alone
        extra, _ = take_samples(bundle.train, MIN_COMPARED - scored)
        if extra is not None:
            x = rows.concatenate([x, extra])
    outputs, mask = predict_masked(model, x)
    ref = Reference(
        x=x,
        y=y,
        outputs=outputs,
        label_kind=bundle.info.label_kind,
        logits=outputs_are_logits(model, experiment, bundle.info),
        split=split,
        keras_metric=None,
        mask=mask,
        scored=scored,
        self_diff=inference_noise(model, x, outputs),
    )
    if bundle.info.outputs:
        ref.heads = head_references(ref, experiment, bundle.info)
        return ref
    ref.keras_metric = score(ref, outputs[:scored])
    return ref


NOISE_SAMPLES = 64
"""Samples called twice to tell a model that samples at inference from a deterministic one."""


def inference_noise(model: Any, x: Any, outputs: Any) -> float | None:
    """The relative difference between a second Keras call on the first samples and the first one,
    or None when they are equal (to float rounding): a deterministic model."""
    import numpy as np

    if isinstance(outputs, dict):
        return None  # several outputs: each head is compared; none of the Keras guides' multi-io models samples
    count = min(NOISE_SAMPLES, rows.count(x))
    again = np.asarray(model(rows.take(x, 0, count), training=False), dtype="float64")
    first = np.asarray(outputs[:count], dtype="float64").reshape(again.shape)
    diff = relative(float(np.abs(again - first).max()) if first.size else 0.0, first)
    return diff if diff > 1e-6 else None


def head_references(ref: Reference, experiment: Experiment, info: DataInfo) -> dict[str, Reference]:
    """Each output's own reference: its labels, outputs, kind and logits rule (the same samples)."""
    from tfbench import io_model

    heads = {}
    for part in io_model.parse(experiment.model).outputs:
        out_info = info.outputs[part.name]
        head = Reference(
            x=ref.x,
            y=None if ref.y is None else ref.y[part.name],
            outputs=ref.outputs[part.name],
            label_kind=out_info.label_kind,
            logits=outputs_are_logits(None, io_model.output_view(experiment, part), out_info),
            split=ref.split,
            keras_metric=None,
            scored=ref.scored,
        )
        head.keras_metric = score(head, head.outputs)
        heads[part.name] = head
    return heads


def predict_keras(model: Any, x: Any, batch_size: int = 256) -> Any:
    """The model's outputs on `x` in inference mode, as one numpy array (a dict of them, by output
    name, for a model with several outputs)."""
    parts = [
        rows.as_numpy(model(rows.take(x, i, i + batch_size), training=False))
        for i in range(0, rows.count(x), batch_size)
    ]
    return rows.concatenate(parts)


def predict_masked(model: Any, x: Any, batch_size: int = 256) -> tuple[Any, Any]:
    """The model's outputs on `x` in inference mode, and its output mask (None without one).

    A model whose positions carry a mask (an `Embedding` with `mask_zero`) says which positions
    are padding; Keras leaves them out of its loss and metrics, and so does the evaluation.
    """
    import numpy as np

    outputs, masks = [], []
    masked = True
    for i in range(0, rows.count(x), batch_size):
        out = model(rows.take(x, i, i + batch_size), training=False)
        if isinstance(out, dict):  # several named outputs: each head is scored on its own, unmasked
            return predict_keras(model, x, batch_size), None
        outputs.append(np.asarray(out))
        mask = getattr(out, "_keras_mask", None)
        masked = masked and mask is not None
        if mask is not None:
            masks.append(np.asarray(mask, bool))
    return np.concatenate(outputs), np.concatenate(masks) if masked and masks else None


def predicted_classes(outputs: Any, label_kind: str, logits: bool) -> Any:
    """Class ids from a classifier's outputs: argmax over the last axis, or a threshold for one sigmoid
    unit — one id per sample, or per position for outputs per position."""
    import numpy as np

    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return outputs.argmax(axis=-1)
    threshold = 0.0 if logits else 0.5
    flat = outputs[..., 0] if outputs.ndim >= 2 else outputs
    return (flat > threshold).astype("int64")


def true_classes(labels: Any, num_outputs: int) -> Any:
    """Class ids from labels that may be ids or one-hot rows (per sample or per position); a last axis
    of 1 is dropped."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim >= 2 and labels.shape[-1] > 1 and labels.shape[-1] == num_outputs:
        return labels.argmax(-1)
    if labels.ndim >= 2 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return labels.astype("int64")


def score(ref: Reference, outputs: Any) -> float | None:
    """Accuracy (classifiers) or MAE (regressors) of `outputs` on the reference labels (the first ones)."""
    import numpy as np

    if ref.y is None:
        return None
    outputs = np.asarray(outputs, dtype="float64")[: len(ref.y)]
    if ref.label_kind == "regression":
        target = np.asarray(ref.y, dtype="float64").reshape(outputs.shape)
        return float(np.mean(np.abs(outputs - target)))
    predicted = predicted_classes(outputs, ref.label_kind, ref.logits)
    truth = true_classes(ref.y, outputs.shape[-1] if outputs.ndim > 1 else 1)
    if predicted.size != truth.size:
        return None  # several 0/1 labels per sample against one argmax: no single accuracy
    hits = predicted.reshape(-1) == truth.reshape(-1)
    mask = None if ref.mask is None else np.asarray(ref.mask, bool)[: len(outputs)]
    if mask is not None and mask.size == hits.size:  # padding positions do not count, as in Keras
        hits = hits[mask.reshape(-1)]
    return float(np.mean(hits)) if hits.size else None


def agreement(ref: Reference, outputs: Any) -> float | None:
    """Share of samples whose top-1 class the export and Keras agree on (None for regressors)."""
    import numpy as np

    if ref.label_kind == "regression":
        return None
    mine = predicted_classes(outputs, ref.label_kind, ref.logits)
    theirs = predicted_classes(ref.outputs, ref.label_kind, ref.logits)
    return float(np.mean(mine == theirs))
