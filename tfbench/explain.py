"""Where a model looks: its top classes, a Grad-CAM heat map and per-layer activations — without a UI.

Grad-CAM follows keras.io's recipe: the feature map of the last convolution (and of the layers after
it that keep its size: batch norm, activation, a residual add) is weighted by the gradient of the
class score, averaged over the map, and what is left above zero is where the model found evidence
for that class. The score is taken before the final softmax or sigmoid, as the recipe does, so a
confident prediction still has gradients. A last convolution inside a backbone is found by walking
into the nested Functional model. The layers are run once, eagerly, under a gradient tape; each
layer whose output is wanted has its `call` wrapped for that pass (Keras has no forward hooks),
which reaches a feature map inside a backbone as easily as one in the stack. A model without a
convolution gets a plain gradient saliency map instead.

`tfbench predict RUN --explain` prints an `Explanation`; the workbench's Explain view draws one.
TensorFlow is imported when explaining.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfbench.errors import UserError
from tfbench.pictures import jet, to_rgb

MAPS_PER_LAYER = 6
"""Activation thumbnails shown per layer: the channels with the largest mean activation."""
LAYERS_SHOWN = 6
"""Layers whose activations are shown; a deeper model shows this many, spread over its depth."""
HEAT_ALPHA = 0.45
"""How strongly the heat map's colours cover the image in the overlay."""


@dataclass
class LayerMaps:
    """The strongest feature maps of one layer, each scaled to [0, 1] over the layer's shown maps."""

    name: str
    shape: tuple[int, ...]
    channels: list[int]
    maps: list[np.ndarray]


@dataclass
class Explanation:
    """What a model made of one image: plain numbers and arrays, ready to draw or save."""

    image: np.ndarray
    """The model's input (H×W×C), as it was given to the model."""
    heat: np.ndarray
    """Grad-CAM at the image's size (H×W, 0..1)."""
    cam: np.ndarray
    """Grad-CAM at the feature map's own size, before it was enlarged."""
    overlay: np.ndarray
    """The image in grey under the heat map's colours (H×W×3 uint8)."""
    peak: tuple[int, int]
    """The (row, column) of the image the heat map is highest at."""
    target: int
    target_name: str
    top: list[tuple[str, float]]
    """The most probable classes, best first, with their probabilities."""
    layer: str
    """Where the heat map comes from: a layer name (`mobilenetv2/out_relu` inside a backbone)."""
    method: str
    """`grad-cam`, or `saliency` for a model without a convolution."""
    activations: list[LayerMaps] = field(default_factory=list)
    label: str | None = None
    """The image's true class, when known."""
    source: str = ""
    """Where the image came from (`validation sample 3`, a file name)."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The numbers, without the arrays (what `--json` prints)."""
        return {
            "source": self.source,
            "label": self.label,
            "target": self.target_name,
            "top": [{"class": name, "probability": round(p, 6)} for name, p in self.top],
            "layer": self.layer,
            "method": self.method,
            "peak": list(self.peak),
            "heat_shape": list(self.cam.shape),
            "activations": [
                {"layer": m.name, "shape": list(m.shape), "channels": m.channels} for m in self.activations
            ],
            "seconds": round(self.seconds, 4),
        }


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """The image in grey with the heat map's jet colours over it (H×W×3 uint8)."""
    grey = to_rgb(image).astype(np.float64).mean(axis=-1, keepdims=True)
    mixed = (1.0 - alpha) * grey + alpha * jet(heat).astype(np.float64)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


# -- finding the feature map ---------------------------------------------------------------------


def _spatial(layer: Any) -> tuple[int, int] | None:
    """A layer's output height and width, when its output is a batch of feature maps (rank 4)."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return None
    return (shape[1], shape[2]) if len(shape) == 4 else None


def _is_conv(layer: Any) -> bool:
    return "Conv" in type(layer).__name__ and _spatial(layer) is not None


def _inner_layers(model: Any) -> list:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def feature_path(model: Any) -> list | None:
    """The layers from `model` down to the feature map Grad-CAM weighs, or None without a convolution.

    The map is the last convolution's output, carried on through the layers after it that keep its
    height and width. A backbone (a nested model) whose output is no longer a map is walked into.
    """
    import keras

    layers = _inner_layers(model)
    last = None
    for i, layer in enumerate(layers):
        nested = isinstance(layer, keras.Model) and feature_path(layer) is not None
        if _is_conv(layer) or nested:
            last = i
    if last is None:
        return None
    found = layers[last]
    if isinstance(found, keras.Model) and _spatial(found) is None:
        inner = feature_path(found)
        return [found, *inner] if inner else None
    size = _spatial(found)
    end = last
    for j in range(last + 1, len(layers)):
        if _spatial(layers[j]) != size:
            break
        end = j
    return [layers[end]]


def activation_layers(model: Any, most: int = LAYERS_SHOWN) -> list:
    """The stack's layers whose outputs are feature maps, at most `most`, spread over the depth."""
    maps = [layer for layer in _inner_layers(model) if _spatial(layer) is not None]
    if len(maps) <= most:
        return maps
    picks = sorted({int(round(i)) for i in np.linspace(0, len(maps) - 1, most)})
    return [maps[i] for i in picks]


@contextmanager
def _capturing(layers: list, outputs: dict[int, Any]) -> Iterator[None]:
    """While inside, each of `layers` stores what it returns in `outputs[id(layer)]`."""
    patched: list[Any] = []
    try:
        for layer in layers:
            if id(layer) in {id(p) for p in patched}:
                continue
            original = layer.call

            def call(*args: Any, _original: Any = original, _key: int = id(layer), **kwargs: Any) -> Any:
                result = _original(*args, **kwargs)
                outputs[_key] = result
                return result

            layer.call = call
            patched.append(layer)
        yield
    finally:
        for layer in patched:
            del layer.call  # the class's own `call` shows through again


@contextmanager
def _scores(model: Any) -> Iterator[str | None]:
    """While inside, the model returns class scores before its final softmax or sigmoid.

    Yields the activation taken off ("softmax", "sigmoid"), or None when the outputs were scores already.
    """
    import keras

    last = _inner_layers(model)[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    if name not in ("softmax", "sigmoid"):
        yield None
        return
    last.activation = keras.activations.linear
    try:
        yield name
    finally:
        last.activation = activation


def _probabilities(scores: np.ndarray, removed: str | None, logits: bool) -> np.ndarray:
    """Class probabilities (C,) from one sample's scores; a single sigmoid unit gives two classes."""
    from tfbench.evaluation import probabilities

    return probabilities(scores[None, :], logits or removed is not None)[0]


# -- explaining ----------------------------------------------------------------------------------


class Explainer:
    """Explains images for one loaded model; keep one to explain many images quickly.

    Args:
        model: a Keras classifier on images (input H×W×C).
        class_names: a name per class id.
        logits: whether the model's outputs are logits (when it has no final softmax or sigmoid).
    """

    def __init__(self, model: Any, class_names: list[str], logits: bool = False) -> None:
        shape = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else ()
        if len(shape) != 3:
            raise UserError(
                f"explaining needs a model on images (H×W×C per sample); this one takes {shape}", "--explain"
            )
        self.model = model
        self.class_names = list(class_names)
        self.logits = logits
        self.path = feature_path(model)
        self.maps = activation_layers(model)
        self._lock = threading.Lock()  # the model's layers are patched during a pass
        self._cell_grid: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def layer_name(self) -> str:
        """Where the heat map comes from, e.g. `conv2d_1` or `mobilenetv2_1.00_96/out_relu`."""
        return "/".join(layer.name for layer in self.path) if self.path else "input"

    def _name(self, k: int) -> str:
        return self.class_names[k] if k < len(self.class_names) else str(k)

    def explain(
        self, x: np.ndarray, class_index: int | None = None, top_k: int = 3, label: str | None = None, source: str = ""
    ) -> Explanation:
        """Explain one image (H×W×C, as the model takes it) for `class_index`, or the predicted class.

        Raises:
            UserError: an image of another shape than the model's input, or an unknown class.
        """
        import tensorflow as tf

        start = time.perf_counter()
        x = np.asarray(x, dtype=np.float32)
        expected = tuple(self.model.inputs[0].shape[1:])
        if tuple(x.shape) != expected:
            raise UserError(f"the image is {x.shape}; the model takes {expected}", "--input")
        target_layer = self.path[-1] if self.path else None
        captured: dict[int, Any] = {}
        with self._lock, _capturing([*self.maps, *([target_layer] if target_layer else [])], captured):
            with _scores(self.model) as removed, tf.GradientTape() as tape:
                batch = tf.constant(x[None])
                if target_layer is None:
                    tape.watch(batch)
                scores = self.model(batch, training=False)
                scores = tf.reshape(scores, (1, -1))
                probs = _probabilities(scores.numpy()[0].astype(np.float64), removed, self.logits)
                target = int(np.argmax(probs)) if class_index is None else int(class_index)
                if not 0 <= target < len(probs):
                    raise UserError(f"no class {target}: the model has {len(probs)}", "--class")
                if scores.shape[-1] == 1:  # one sigmoid unit: class 1 is its score, class 0 the opposite
                    score = scores[0, 0] if target == 1 else -scores[0, 0]
                else:
                    score = scores[0, target]
            source_map = batch if target_layer is None else captured[id(target_layer)]
            gradient = tape.gradient(score, source_map)
        cam, method = self._heat(source_map, gradient, target_layer is None)
        grid = self._grid(x) if target_layer is not None else ((0.0, 1.0), (0.0, 1.0))
        heat = _enlarge(cam, x.shape[:2], grid)
        strongest = np.unravel_index(int(np.argmax(cam)), cam.shape)
        peak = tuple(
            int(np.clip(round(offset + stride * i), 0, size - 1))
            for i, (offset, stride), size in zip(strongest, grid, x.shape[:2])
        )
        order = np.argsort(-probs, kind="stable")[: max(1, top_k)]
        return Explanation(
            image=x,
            heat=heat,
            cam=cam,
            overlay=overlay(x, heat),
            peak=(peak[0], peak[1]),
            target=target,
            target_name=self._name(target),
            top=[(self._name(int(k)), float(probs[k])) for k in order],
            layer=self.layer_name,
            method=method,
            activations=[_layer_maps(layer, captured.get(id(layer))) for layer in self.maps if id(layer) in captured],
            label=label,
            source=source,
            seconds=time.perf_counter() - start,
        )

    def _grid(self, x: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
        """Where the feature map's cells sit over the image: (offset, stride) in pixels, per axis.

        A map made with "valid" convolutions covers less than the whole image, so stretching it over
        the image would move every cell outwards. The centre of each cell is measured instead, once:
        the input pixels whose gradient reaches two inner cells (a quarter in from each side) on a
        noise image, weighted by that gradient, give where the cells sit and how far apart.
        """
        if self._cell_grid is None:
            import tensorflow as tf

            assert self.path, "a model without a feature map is explained by saliency, with no cell grid"

            probe = tf.constant(np.random.default_rng(0).normal(0.0, 1.0, (1, *x.shape)).astype(np.float32))
            captured: dict[int, Any] = {}
            target = self.path[-1]
            with self._lock, _capturing([target], captured), tf.GradientTape(persistent=True) as tape:
                tape.watch(probe)
                self.model(probe, training=False)
                feature = captured[id(target)]
                h, w = int(feature.shape[1]), int(feature.shape[2])
                cells = [(h // 4, w // 4), (h - 1 - h // 4, w - 1 - w // 4)]
                picked = [tf.reduce_sum(feature[0, r, c, :]) for r, c in cells]
            centres = [_centre(tape.gradient(value, probe)) for value in picked]
            del tape
            grid = []
            for axis, (n, size) in enumerate(((h, x.shape[0]), (w, x.shape[1]))):
                (i1, i2), (c1, c2) = (cells[0][axis], cells[1][axis]), (centres[0][axis], centres[1][axis])
                if i2 == i1 or c1 is None or c2 is None:  # one cell, or a gradient that reached nothing
                    stride = size / n
                    grid.append(((stride - 1) / 2, stride))
                else:
                    stride = (c2 - c1) / (i2 - i1)
                    grid.append((c1 - stride * i1, stride))
            self._cell_grid = (grid[0], grid[1])
        return self._cell_grid

    @staticmethod
    def _heat(feature_map: Any, gradient: Any, saliency: bool) -> tuple[np.ndarray, str]:
        """Grad-CAM from a feature map and its gradient (or a saliency map from the input's), in [0, 1]."""
        values = np.asarray(feature_map)[0].astype(np.float64)
        grads = np.zeros_like(values) if gradient is None else np.asarray(gradient)[0].astype(np.float64)
        if saliency:
            cam = np.abs(grads).max(axis=-1)
            method = "saliency"
        else:
            weights = grads.mean(axis=(0, 1))
            cam = np.maximum(values @ weights, 0.0)
            method = "grad-cam"
        top = cam.max()
        return (cam / top if top > 0 else cam).astype(np.float32), method


def _centre(gradient: Any) -> tuple[float | None, float | None]:
    """The gradient-weighted centre (row, column) of an input gradient, in pixels; None where it is all zero."""
    weight = np.abs(np.asarray(gradient)[0]).sum(axis=-1)
    total = weight.sum()
    if total <= 0:
        return None, None
    rows, cols = np.indices(weight.shape)
    return float((weight * rows).sum() / total), float((weight * cols).sum() / total)


def _interpolated(line: np.ndarray, where: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """One row of cells' values at the positions `where` (in cell units)."""
    return np.interp(where, cells, line)


def _enlarge(
    cam: np.ndarray, size: tuple[int, int], grid: tuple[tuple[float, float], tuple[float, float]]
) -> np.ndarray:
    """The heat map at the image's pixels (bilinear between cell centres, level beyond the outer ones)."""
    heat = cam.astype(np.float64)
    for axis, ((offset, stride), n) in enumerate(zip(grid, size)):
        where = (np.arange(n) - offset) / (stride or 1.0)
        cells = np.arange(heat.shape[axis])
        heat = np.apply_along_axis(_interpolated, axis, heat, where, cells)
    top = heat.max()
    return np.clip(heat / top if top > 0 else heat, 0.0, 1.0).astype(np.float32)


def _layer_maps(layer: Any, output: Any, most: int = MAPS_PER_LAYER) -> LayerMaps:
    """A layer's strongest channels (by mean activation), scaled together to [0, 1]."""
    values = np.asarray(output)[0].astype(np.float64)
    order = np.argsort(-values.mean(axis=(0, 1)), kind="stable")[:most]
    chosen = values[..., order]
    low, high = float(chosen.min()), float(chosen.max())
    scaled = (chosen - low) / ((high - low) or 1.0)
    return LayerMaps(
        name=layer.name,
        shape=tuple(int(d) for d in values.shape),
        channels=[int(c) for c in order],
        maps=[scaled[..., i].astype(np.float32) for i in range(scaled.shape[-1])],
    )


# -- a run's model and images ------------------------------------------------------------------


class RunExplainer:
    """A finished run's model and data, loaded once, explaining its images or image files.

    Raises:
        UserError: no model in the run, or a model that does not take images.
    """

    SAMPLES = 1000
    """The most samples of a split kept for browsing."""

    def __init__(self, run_dir: str | Path) -> None:
        from tfbench import data, rundir
        from tfbench.export import quiet_tensorflow
        from tfbench.export.reference import outputs_are_logits

        quiet_tensorflow()
        self.run_dir = Path(run_dir)
        model_path = rundir.find_model(self.run_dir)
        self.experiment = rundir.load_run_experiment(self.run_dir)
        self.info = data.describe(self.experiment.data, self.experiment.train.seed)
        if self.info.label_kind == "regression":
            raise UserError("explaining needs a classifier; this run is a regression", "--explain")
        model = rundir.load_model(model_path)
        self.explainer = Explainer(model, self.info.class_names, outputs_are_logits(model, self.experiment, self.info))
        self._bundle: Any = None
        self._splits: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def _data(self) -> Any:
        from tfbench import rundir

        if self._bundle is None:
            self._bundle = rundir.load_bundle(self.experiment)
        return self._bundle

    def samples(self, split: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Up to `SAMPLES` images of a split of the run's data, and their class ids.

        Raises:
            UserError: a split the run's data does not have, or an empty one.
        """
        from tfbench.export.reference import take_samples, true_classes

        if split not in self._splits:
            dataset = getattr(self._data(), split, None) if split in ("train", "validation", "test") else None
            if dataset is None:
                raise UserError(f"this run's data has no {split} split", "--split")
            x, y = take_samples(dataset, self.SAMPLES)
            if x is None:
                raise UserError(f"the {split} split is empty", "--split")
            classes = None if y is None else true_classes(y, len(self.info.class_names))
            self._splits[split] = (np.asarray(x), classes)
        return self._splits[split]

    def explain_sample(self, split: str = "validation", index: int = 0, class_name: str | None = None) -> Explanation:
        """Explain sample `index` of a split (counted from 0).

        Raises:
            UserError: an index past the split's end, an unknown class or split.
        """
        x, y = self.samples(split)
        if not 0 <= index < len(x):
            raise UserError(f"the {split} split has samples 0 to {len(x) - 1}", "--index")
        label = None if y is None else self._class_name(int(np.asarray(y[index]).reshape(-1)[0]))
        return self.explainer.explain(
            x[index], self.class_index(class_name), label=label, source=f"{split} sample {index}"
        )

    def explain_file(self, path: str | Path, class_name: str | None = None) -> Explanation:
        """Explain an image file (or a `.npy` array of the model's input shape).

        Raises:
            UserError: a missing or unreadable file, or an array of another shape.
        """
        from tfbench.explain_input import read_image

        x = read_image(Path(path), tuple(self.explainer.model.inputs[0].shape[1:]), self._input_range)
        label = Path(path).parent.name if Path(path).parent.name in self.info.class_names else None
        return self.explainer.explain(x, self.class_index(class_name), label=label, source=Path(path).name)

    def _input_range(self) -> tuple[float, float]:
        """The least and most input value over a few training batches: where an image file's 0-255 go."""
        x, _ = self.samples("train")
        return float(np.min(x)), float(np.max(x))

    def _class_name(self, k: int) -> str:
        names = self.info.class_names
        return names[k] if 0 <= k < len(names) else str(k)

    def class_index(self, class_name: str | None) -> int | None:
        """The id of a class given by name (or number), None for "the predicted class".

        Raises:
            UserError: a class the run does not have.
        """
        if class_name is None:
            return None
        names = self.info.class_names
        if class_name in names:
            return names.index(class_name)
        if class_name.isdigit() and int(class_name) < max(len(names), 1):
            return int(class_name)
        from tfbench.errors import close_matches

        hint = close_matches(class_name, names) or f"classes: {', '.join(names[:20])}"
        raise UserError(f"no class {class_name!r}", "--class", hint)


def explain_run(
    run_dir: str | Path,
    input_path: str | Path | None = None,
    split: str = "validation",
    index: int = 0,
    class_name: str | None = None,
) -> Explanation:
    """Explain one image for a finished run: an image file, or sample `index` of a split.

    Raises:
        UserError: see `RunExplainer`.
    """
    explainer = RunExplainer(run_dir)
    if input_path is not None:
        return explainer.explain_file(input_path, class_name)
    return explainer.explain_sample(split, index, class_name)


def save_overlay(explanation: Explanation, path: Path) -> None:
    """Write the heat map over the image as a PNG, enlarged so a 28-pixel drawing is worth looking at.

    Raises:
        UserError: a name that does not end in `.png`, or a folder that cannot be written.
    """
    import tensorflow as tf

    if path.suffix.lower() != ".png":
        raise UserError("the heat map is saved as a PNG: name the file something.png", "--output")
    rgb = explanation.overlay
    scale = max(1, 224 // max(rgb.shape[:2]))
    enlarged = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    try:
        path.write_bytes(tf.io.encode_png(enlarged).numpy())
    except OSError as exc:
        raise UserError(f"cannot write it: {exc.strerror}", f"--output ({path})") from None
