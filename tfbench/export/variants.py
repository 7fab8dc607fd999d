"""The models an export call writes: the run's model, its float32 copy, and Keras-quantised copies — no UI.

Keras 3 quantises its own models (`model.quantize("int8" | "int4" | "float8")`): Dense, EinsumDense
and Embedding weights (int4: Dense and EinsumDense) become narrow integers with per-channel scales,
while layers without a quantised form (Conv, recurrent, normalisation) stay float — silently, with a
warning per layer. Here the quantisation is applied to a copy (the run's model is never changed) and
the layers it left float are named, with their share of the parameters, so the report says how much
of the model the size figure is about.

A mixed-precision model computes in float16 but the runtimes (ONNX Runtime, OpenVINO, LiteRT) are
judged against float32 outputs and some refuse mixed graphs, so those formats get a float32 copy:
the same architecture and weights with every mixed policy replaced by float32. Their copy also
leaves out the training-only random layers (RandomFlip, RandomRotation, GaussianNoise, …): they
pass inputs through at inference, but their graphs keep random and image-transform ops that ONNX
and OpenVINO have no kernels for.
"""

from __future__ import annotations

import warnings
from typing import Any

from tfbench.errors import UserError


class ModelVariants:
    """One export call's models, each made once: the source, its float32 copy, its quantised copies."""

    def __init__(self, model: Any) -> None:
        self.source = model
        self._made: dict[tuple[bool, str], tuple[Any, dict[str, Any]]] = {}

    def get(self, float32: bool, quantize: str) -> tuple[Any, dict[str, Any]]:
        """The model to write (cast to float32 when asked and needed, then Keras-quantised unless
        `quantize` is "none") and what the report says about it.

        Raises:
            UserError: Keras quantises no layer of the model in that mode.
        """
        key = (float32 and (is_mixed(self.source) or bool(augmenting_layers(self.source))), quantize)
        if key not in self._made:
            base, notes = inference_copy(self.source) if key[0] else (self.source, {})
            if quantize != "none":
                base, layer_notes = quantized_copy(base, quantize)
                notes.update(layer_notes)
            self._made[key] = (base, notes)
        return self._made[key]


def all_layers(model: Any) -> list[Any]:
    """Every layer inside `model`, nested models and wrappers included (leaves and containers)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def is_mixed(model: Any) -> bool:
    """Whether any layer computes in a different dtype than its weights (a mixed-precision policy)."""
    for layer in all_layers(model):
        policy = getattr(layer, "dtype_policy", None)
        if policy is not None and policy.compute_dtype != policy.variable_dtype:
            return True
    return False


def _float32_policies(config: Any) -> Any:
    """A serialised model's config with every mixed dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(config.get("config", {}).get("name", "")).startswith(
            "mixed_"
        ):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    return config


AUGMENTING = ("GaussianNoise", "GaussianDropout", "AlphaDropout")
"""Layers (besides `Random*` but RandomCrop) that only act in training and are identity at inference."""


def augmenting_layers(model: Any) -> list[Any]:
    """The training-only random layers inside `model` (RandomCrop crops at inference too: kept)."""
    return [
        layer
        for layer in all_layers(model)
        if (type(layer).__name__.startswith("Random") and type(layer).__name__ != "RandomCrop")
        or type(layer).__name__ in AUGMENTING
    ]


def inference_copy(model: Any) -> tuple[Any, dict[str, Any]]:
    """A copy for a runtime: float32 throughout, training-only random layers left out; and its notes."""
    import keras

    dropped = {id(layer) for layer in augmenting_layers(model)}
    notes: dict[str, Any] = {}
    if is_mixed(model):
        model, notes["cast_to_float32"] = float32_copy(model), True
    if not dropped:
        return model, notes
    dropped = {layer.name for layer in augmenting_layers(model)}

    def clone(layer: Any) -> Any:
        if layer.name in dropped:
            return keras.layers.Identity(name=layer.name)
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    weights = {layer.name: layer.get_weights() for layer in all_layers(model) if layer.name not in dropped}
    for layer in all_layers(copy):
        if layer.weights and not _has_sublayers(layer) and layer.name in weights:
            layer.set_weights(weights[layer.name])
    notes["left_out"] = [f"{layer.name} ({type(layer).__name__})" for layer in augmenting_layers(model)]
    return copy, notes


def float32_copy(model: Any) -> Any:
    """The same architecture and weights computing in float32 throughout."""
    import keras

    config = _float32_policies(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def fresh_copy(model: Any) -> Any:
    """An independent copy of `model` (same config and weights) that can be changed in place."""
    import keras

    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    copy.set_weights(model.get_weights())
    return copy


def quantized_copy(model: Any, mode: str) -> tuple[Any, dict[str, Any]]:
    """A copy of `model` quantised by Keras in `mode`, and the report's notes on it.

    Returns:
        (the quantised copy, `{"quantized_layers": n, "quantized_share": fraction of the
        parameters, "not_quantized": ["conv2d (Conv2D, 9,248 params)", …]}`).

    Raises:
        UserError: no layer of the model has a quantised form in `mode`.
    """
    copy = fresh_copy(model)
    with warnings.catch_warnings():  # one "does not have a `quantize` method" warning per layer: reported below
        warnings.simplefilter("ignore")
        try:
            copy.quantize(mode)
        except (ValueError, NotImplementedError, TypeError) as exc:
            raise UserError(f"Keras cannot quantise this model to {mode}: {_first_line(exc)}", "--quantize") from None
    done, left, total, covered = [], [], 0, 0
    for original, layer in zip(all_layers(model), all_layers(copy)):
        if _has_sublayers(layer):
            continue
        params = sum(_size(w) for w in original.trainable_weights)
        total += params
        if getattr(layer, "quantization_mode", None) == mode:
            done.append(layer.name)
            covered += params
        elif params:
            left.append(f"{layer.name} ({type(layer).__name__}, {params:,} params)")
    if not done:
        raise UserError(
            f"Keras quantises none of this model's layers to {mode} (no Dense, EinsumDense or Embedding layer)",
            "--quantize",
            "use TFLite's converter: --format tflite --quantize dynamic (it quantises Conv layers too)",
        )
    return copy, {
        "quantized_layers": len(done),
        "quantized_share": covered / total if total else 0.0,
        "not_quantized": left,
    }


def _has_sublayers(layer: Any) -> bool:
    return any(True for _ in layer._flatten_layers(include_self=False, recursive=False))


def _size(weight: Any) -> int:
    size = 1
    for dim in weight.shape:
        size *= int(dim)
    return size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def without_preprocessing(model: Any, reference: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A table's model after its FeatureSpace: the layer stack, the reference on encoded features,
    and what the export then takes (`{"after_preprocessing": True, "features": n, "columns": [...]}`).

    Raises:
        UserError: the model has no table preprocessing to leave out.
    """
    from tfbench.data.feature_space import after_preprocessing

    stack, encoded, note = after_preprocessing(model, reference)
    if note is None:
        raise UserError(
            "the model has no table preprocessing to leave out", "--after-preprocessing", "export it without the flag"
        )
    columns = sorted(reference.x) if isinstance(reference.x, dict) else []
    return stack, encoded, {"after_preprocessing": True, "features": int(encoded.x.shape[1]), "columns": columns}
