"""Fine-tuning a transfer-learning model, as the Keras guide does it — without a UI.

`[train.fine_tune]` says when (`after_epoch`), how much (`unfreeze = "all"` or the backbone's top
N layers) and how fast (`learning_rate`). The run trains the frozen model up to that epoch, then
unfreezes the backbone, recompiles with the new rate (Keras needs a compile after `trainable`
changes) and continues in the same run directory. The backbone was called with `training=False`,
so its BatchNormalization layers stay in inference mode after the unfreeze. A resumed run whose
backup is past the switch unfreezes before it continues, so its optimizer state fits again.

Pure functions over a model and the spec; Keras is imported lazily.
"""

from __future__ import annotations

from typing import Any

TRANSFER = "transfer"
FINE_TUNE = "fine_tune"


def phase(spec: Any, epoch: int) -> str:
    """The phase epoch number `epoch` (1-based) trains in: "transfer" or "fine_tune"."""
    if spec is None or epoch <= spec.after_epoch:
        return TRANSFER
    return FINE_TUNE


def fit_until(spec: Any, completed: int, target: int) -> int:
    """The `epochs` to give `fit` after `completed` epochs: the switch epoch while it is ahead."""
    if spec is not None and completed < spec.after_epoch < target:
        return spec.after_epoch
    return target


def backbones(model: Any) -> list:
    """The nested models (keras.applications backbones) among a model's layers."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def switch_due(spec: Any, model: Any, completed: int) -> bool:
    """Whether to unfreeze now: the switch epoch is done and a backbone is still frozen."""
    return (
        spec is not None
        and completed >= spec.after_epoch
        and any(not backbone.trainable for backbone in backbones(model))
    )


def unfreeze(model: Any, how: str | int) -> None:
    """Make the backbones trainable: all their layers, or only the top `how` of each."""
    for backbone in backbones(model):
        backbone.trainable = True
        if how != "all":
            for layer in backbone.layers[: max(0, len(backbone.layers) - int(how))]:
                layer.trainable = False


def recompile(model: Any, learning_rate: float) -> None:
    """Compile again with the same optimizer class, loss and metrics and the new learning rate."""
    import keras

    config = model.get_compile_config()
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", None)  # a mixed-precision LossScaleOptimizer
    base = inner if inner is not None else optimizer
    base_config = base.get_config()
    base_config["learning_rate"] = float(learning_rate)
    fresh = type(base).from_config(base_config)
    if inner is not None:
        fresh = keras.optimizers.LossScaleOptimizer(fresh)
    config["optimizer"] = keras.saving.serialize_keras_object(fresh)
    model.compile_from_config(config)


def trainable_count(model: Any) -> int:
    """Trainable parameters, the figure the event log shows changing at the switch."""
    import math

    return int(sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights))


def switch(model: Any, spec: Any) -> tuple[int, int]:
    """Unfreeze and recompile: (trainable parameters before, after)."""
    before = trainable_count(model)
    unfreeze(model, spec.unfreeze)
    recompile(model, spec.learning_rate)
    return before, trainable_count(model)


def switch_if_due(spec: Any, model: Any, completed: int, record: Any) -> None:
    """Unfreeze and recompile once the switch epoch is done (also for a resumed run past it).

    `record(name, old, new, command_id)` logs the change, so the event log shows the trainable
    count moving at the switch.
    """
    if switch_due(spec, model, completed):
        before, after = switch(model, spec)
        record("trainable_params", before, after, None)
