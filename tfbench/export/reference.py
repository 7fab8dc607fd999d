"""What every export is checked against, and how outputs are scored — without a UI; TensorFlow lazily.

An export is compared with the Keras model it came from on the same samples (at least
MIN_COMPARED of them): element by element (max |Δ|, and that maximum relative to the largest
output, since a randomly initialised model's outputs can be ~1e-12 and an absolute tolerance alone
says nothing), by top-1 agreement, and by the accuracy (or MAE) both reach on the labels.
`tfbench.evaluation` scores a split with the same sampling and class rules, so an export's accuracy
and `tfbench predict`'s are one number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfbench.data import rows
from tfbench.errors import UserError

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
    scored: int | None = None
    """How many of the first samples come from `split` and are scored (None: all); the rest only compared."""
    written: Any = None
    """The outputs of the model actually written, when it is a copy of the reference's model (float32
    or Keras-quantised): what the runtime must reproduce (`runtime_diff`)."""

    @property
    def metric_name(self) -> str:
        return "mae" if self.label_kind == "regression" else "accuracy"

    @property
    def samples(self) -> int:
        """How many samples every export is compared on."""
        return rows.count(self.x)

    def compare(self, outputs: Any) -> dict:
        """An export's `outputs` on `x` against Keras': `max_abs_diff`, `relative_diff` (that over the
        largest |output|), `agreement` (top-1, classifiers) and `export_metric` (accuracy or MAE)."""
        import numpy as np

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


def relative(worst: float, reference: Any) -> float:
    """A largest |Δ| over the reference's magnitude (its largest |value|; 0 when both are 0)."""
    import numpy as np

    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    if scale == 0.0:
        return 0.0 if worst == 0.0 else float("inf")
    return worst / scale


def take_samples(dataset, limit: int) -> tuple[Any, Any]:
    """Up to `limit` (features, labels) from a batched dataset, as numpy arrays."""
    import numpy as np

    xs, ys, count = [], [], 0
    for batch in dataset:
        if isinstance(batch, (tuple, list)):
            features, labels = batch[0], batch[1] if len(batch) > 1 else None
        else:
            features, labels = batch, None
        features = rows.as_numpy(features)  # an array, or a table's dict of named columns
        xs.append(features)
        if labels is not None:
            ys.append(np.asarray(labels))
        count += rows.count(features)
        if count >= limit:
            break
    if not xs:
        return None, None
    x = rows.take(rows.concatenate(xs), 0, limit)
    y = np.concatenate(ys)[:limit] if ys else None
    return x, y


def outputs_are_logits(model, experiment=None, info=None) -> bool:
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


def reference_data(model, bundle, experiment=None) -> Reference:
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
    outputs = predict_keras(model, x)
    ref = Reference(
        x=x,
        y=y,
        outputs=outputs,
        label_kind=bundle.info.label_kind,
        logits=outputs_are_logits(model, experiment, bundle.info),
        split=split,
        keras_metric=None,
        scored=scored,
    )
    ref.keras_metric = score(ref, outputs[:scored])
    return ref


def predict_keras(model, x, batch_size: int = 256):
    """The model's outputs on `x` in inference mode, as one numpy array."""
    import numpy as np

    parts = [
        np.asarray(model(rows.take(x, i, i + batch_size), training=False)) for i in range(0, rows.count(x), batch_size)
    ]
    return np.concatenate(parts)


def predicted_classes(outputs, label_kind: str, logits: bool):
    """Class ids from a classifier's outputs (argmax, or a threshold for one sigmoid unit)."""
    import numpy as np

    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return outputs.argmax(axis=-1)
    threshold = 0.0 if logits else 0.5
    return (outputs.reshape(len(outputs)) > threshold).astype("int64")


def true_classes(labels, num_outputs: int):
    """Class ids from labels that may be ids or one-hot rows."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim >= 2 and labels.shape[-1] > 1 and labels.shape[-1] == num_outputs:
        return labels.argmax(-1)
    return labels.reshape(len(labels)).astype("int64")


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
    return float(np.mean(predicted == truth))


def agreement(ref: Reference, outputs) -> float | None:
    """Share of samples whose top-1 class the export and Keras agree on (None for regressors)."""
    import numpy as np

    if ref.label_kind == "regression":
        return None
    mine = predicted_classes(outputs, ref.label_kind, ref.logits)
    theirs = predicted_classes(ref.outputs, ref.label_kind, ref.logits)
    return float(np.mean(mine == theirs))
