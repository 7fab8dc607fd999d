"""What the model's augmentation does to a sample: eight seeded variants — without a UI.

Augmentation in Keras lives in the model: `RandomFlip`, `RandomRotation`, `RandAugment`, … as its
first layers, active only while training. The preview passes one sample through the stack's leading
image-preprocessing layers (the augmentation layers and the `Rescaling`, `Resizing` and `CenterCrop`
among them), eight copies with `training=True` beside the sample itself with `training=False`, so
what a picture shows is what an epoch feeds the layers after them. Every variant comes from a seed
(the preview's seed and its roll number), so the same roll shows the same pictures, and the next
roll shows new ones. The layers are built once per stack and reused; the first preview runs them
eagerly (no tracing to wait for), and `compile` then traces them into one TensorFlow function, which
makes each re-roll ~15× quicker than running them eagerly (measured in `benchmarks/see_inside.py`).
TensorFlow is imported when previewing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfbench.errors import UserError

VARIANTS = 8
AUGMENTING = ("AugMix", "CutMix", "MixUp", "RandAugment")
"""Augmentation layers whose names do not start with `Random`."""
PASSING = ("Rescaling", "Resizing", "CenterCrop", "AutoContrast", "Equalization", "Solarization")
"""Image preprocessing layers that may stand among the augmentation layers at the start of a stack."""


def is_augmentation(type_name: str) -> bool:
    """Whether a layer type changes samples at random while training (`RandomFlip`, `RandAugment`, …)."""
    return type_name.startswith("Random") or type_name in AUGMENTING


def leading_layers(layers: list) -> list:
    """The stack entries the preview runs: the leading image-preprocessing run, up to its last augmentation.

    Args:
        layers: the Experiment's `model.layers` (Components with `type` and `args`).

    Returns:
        Those entries, or an empty list when the stack does not start with an augmentation layer
        (a preprocessing layer or two before it are fine).
    """
    run = []
    for layer in layers:
        if not (is_augmentation(layer.type) or layer.type in PASSING):
            break
        run.append(layer)
    while run and not is_augmentation(run[-1].type):
        run.pop()
    return run


@dataclass
class AugmentPreview:
    """A sample and its variants, with the value range to draw them all in (so a brightness change shows)."""

    original: np.ndarray
    """The sample after the same layers in inference mode (H×W×C)."""
    variants: list[np.ndarray]
    layers: list[str]
    """The layers applied, as `RandomRotation(factor=0.1)`."""
    seed: int
    roll: int
    value_range: tuple[float, float]
    seconds: float


def _described(layer: Any) -> str:
    args = ", ".join(f"{k}={v}" for k, v in layer.args.items() if k != "seed")
    return f"{layer.type}({args})" if args else layer.type


class Augmenter:
    """The leading augmentation layers of one stack, built once (for one input shape), run on demand.

    Raises:
        UserError: the stack does not start with augmentation layers, or one of them cannot be built.
    """

    def __init__(self, layers: list, input_shape: tuple[int, ...]) -> None:

        from tfbench.build import build_layer

        if len(input_shape) != 3:
            raise UserError(
                f"an augmentation preview needs images (H×W×C per sample); this data is {tuple(input_shape)}",
                "data.source",
            )
        self.specs = leading_layers(layers)
        if not self.specs:
            raise UserError(
                "the model does not start with augmentation layers",
                "model.layers[0]",
                "add RandomFlip, RandomRotation, RandomZoom, … as the first layers of the stack",
            )
        self.input_shape = tuple(input_shape)
        self.layers = [build_layer(spec, location=f"model.layers[{i}]") for i, spec in enumerate(self.specs)]
        self._generators = [getattr(layer, "generator", None) for layer in self.layers]
        self._lock = threading.Lock()
        self._compiled: Any = None

    def _augment(self, batch: Any) -> Any:
        for layer in self.layers:
            batch = layer(batch, training=True)
        return batch

    def _inference(self, sample: Any) -> Any:
        """The sample through the layers as inference sees them: augmentation is left out there."""
        for spec, layer in zip(self.specs, self.layers):
            if not is_augmentation(spec.type):
                sample = layer(sample, training=False)
        return sample

    @property
    def compiled(self) -> bool:
        """Whether re-rolls run as one traced TensorFlow function (after `compile`)."""
        return self._compiled is not None

    def compile(self, n: int = VARIANTS) -> float:
        """Trace the layers into one TensorFlow function for batches of `n`, so later rolls are quick.

        Returns:
            The seconds it took (about a second on 2 busy cores: worth it from the second roll on).
        """
        import tensorflow as tf

        start = time.perf_counter()
        with self._lock:
            if self._compiled is None:
                function = tf.function(self._augment)
                function(tf.zeros((n, *self.input_shape), tf.float32))  # traced, and its first run's set-up done
                self._compiled = function
        return time.perf_counter() - start

    def _reseed(self, seed: int) -> None:
        """Put every random layer's seed generator at a state that follows from `seed` alone."""
        for i, generator in enumerate(self._generators):
            if generator is not None and hasattr(generator, "state"):
                generator.state.assign(np.array([seed % 2**31, i], dtype=generator.state.dtype))

    def preview(self, sample: np.ndarray, seed: int = 0, roll: int = 0, n: int = VARIANTS) -> AugmentPreview:
        """`n` variants of `sample` (H×W×C) for roll `roll` of `seed` — the same roll, the same pictures.

        Raises:
            UserError: a sample of another shape than the data's.
        """
        start = time.perf_counter()
        x = np.asarray(sample, dtype=np.float32)
        if x.ndim == len(self.input_shape) - 1:
            x = x[..., None]
        if tuple(x.shape) != self.input_shape:
            raise UserError(f"the sample is {x.shape}; the data's samples are {self.input_shape}", "data.source")
        with self._lock:
            self._reseed(seed * 100_003 + roll)
            batch = np.repeat(x[None], n, axis=0)
            run = self._compiled if self._compiled is not None and n == VARIANTS else self._augment
            batch = np.asarray(run(batch))
            original = np.asarray(self._inference(x[None]))
        low, high = float(np.min(original)), float(np.max(original))
        if high <= low:
            low, high = float(np.min(batch)), float(np.max(batch))
        return AugmentPreview(
            original=original[0],
            variants=[batch[i] for i in range(len(batch))],
            layers=[_described(spec) for spec in self.specs],
            seed=seed,
            roll=roll,
            value_range=(low, high if high > low else low + 1.0),
            seconds=time.perf_counter() - start,
        )


def stack_key(layers: list, input_shape: tuple[int, ...]) -> str:
    """What decides the built layers: the leading entries and the input shape (a cache key)."""
    return repr([(layer.type, sorted(layer.args.items())) for layer in leading_layers(layers)]) + repr(input_shape)
