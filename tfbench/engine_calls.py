"""The engine calls the workbench makes from its worker threads — without a UI.

The TUI never imports TensorFlow on its UI thread. Its workers call one `EngineCalls`, whose methods
import what they need and return plain data (shapes, counts, strings). Tests and snapshot pictures
pass a `FixedEngineCalls` instead, which answers from fixed data so no TensorFlow runs at all.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfbench.errors import UserError


class EngineCalls:
    """Real answers: Keras builds the model, the data sources describe themselves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._info_cache: dict[str, Any] = {}
        self._samples: dict[str, list[Any]] = {}
        self._augmenters: dict[str, Any] = {}
        self._explainers: dict[str, Any] = {}

    def warm_up(self) -> float:
        """Import TensorFlow and Keras (several seconds) and start its runtime, so the first summary is quick.

        The first tensor sets up TensorFlow's devices (~0.1 s), which the first summary or augmentation
        preview would otherwise wait for.

        Returns:
            The seconds it took.
        """
        start = time.perf_counter()
        import keras  # noqa: F401  (the import is the point)
        import tensorflow

        tensorflow.zeros(())
        return time.perf_counter() - start

    def describe(self, spec, seed: int | None = 42, io=None):
        """The DataInfo of a data source, cached per source, options and named inputs and outputs.

        Raises:
            UserError: the source cannot be described.
        """
        from tfbench import data

        key = repr(sorted(spec.model_dump().items(), key=lambda kv: kv[0])) + repr(seed) + repr(io)
        with self._lock:
            if key in self._info_cache:
                return self._info_cache[key]
        info = data.describe(spec, seed, io=io)
        with self._lock:
            self._info_cache[key] = info
        return info

    def summarize(self, exp):
        """Build the Experiment's model with Keras and return its per-layer summary.

        Raises:
            UserError: located at the layer that cannot stand where it is.
        """
        from tfbench import models
        from tfbench.io_model import data_names

        info = self.describe(exp.data, exp.train.seed, data_names(exp))
        return models.summarize(exp, info)

    def preview(self, spec, n: int = 6) -> dict:
        """A few raw samples and the label counts of a source."""
        from tfbench import data

        return data.preview(spec, n)

    def label_candidates(self, spec) -> list:
        """A table's columns that could be its label, most likely first, each with its reason; [] for others."""
        from tfbench import data

        return data.label_candidates(spec)

    def datasets(self, query: str = "") -> list[dict]:
        """Dataset catalog rows (builtin, Keras, TFDS) matching `query`."""
        from tfbench import data

        return list(data.catalog_listing(query))

    def import_layers(self, path: str | Path) -> list:
        """The layer stack of a Sequential `.keras` model as Components.

        Raises:
            UserError: not a readable Sequential model.
        """
        from tfbench import build

        return list(build.import_layers(path))

    def evaluate(self, run_dir: str | Path, split: str = "validation", k: int = 5) -> dict:
        """Score a finished run's model on one split (`tfbench.evaluation.evaluate_run`).

        Raises:
            UserError: no model in the run, or a split its data does not have.
        """
        from tfbench.evaluation import evaluate_run

        return evaluate_run(Path(run_dir), split=split, k=k)

    def augment(self, exp: Any, index: int = 0, roll: int = 0) -> Any:
        """Eight variants of preview sample `index` through the model's leading augmentation layers.

        The samples and the built layers are kept, so a re-roll only runs the layers.

        Raises:
            UserError: data that is not images, or a stack that does not start with augmentation.
        """
        from tfbench import augment_preview, data

        info = self.describe(exp.data, exp.train.seed)
        shape = tuple(info.input_shape)
        key = augment_preview.stack_key(exp.model.layers, shape)
        with self._lock:
            augmenter = self._augmenters.get(key)
        if augmenter is None:
            augmenter = augment_preview.Augmenter(exp.model.layers, shape)
            with self._lock:
                self._augmenters = {key: augmenter}  # one stack at a time: an edit makes the old one moot
        data_key = repr(exp.data.model_dump())
        if data_key not in self._samples:
            samples = [s["x"] for s in data.preview(exp.data, augment_preview.VARIANTS).get("samples", [])]
            if not samples:
                raise UserError("the data has no samples to preview", "data.source")
            self._samples = {data_key: samples}
        samples = self._samples[data_key]
        return augmenter.preview(samples[index % len(samples)], seed=int(exp.train.seed or 0), roll=roll)

    def ready_rerolls(self, exp: Any) -> float:
        """Trace the augmentation layers a preview built, so its re-rolls are quick; the seconds it took."""
        from tfbench import augment_preview

        info = self.describe(exp.data, exp.train.seed)
        with self._lock:
            augmenter = self._augmenters.get(augment_preview.stack_key(exp.model.layers, tuple(info.input_shape)))
        return augmenter.compile() if augmenter is not None else 0.0

    def explain(
        self, run_dir: str | Path, split: str = "validation", index: int = 0, class_name: str | None = None
    ) -> Any:
        """Grad-CAM, top classes and activations for sample `index` of a run's split (`tfbench.explain`).

        The run's model and samples are kept, so the next sample is quick.

        Raises:
            UserError: no model in the run, a model not on images, or an index past the split's end.
        """
        from tfbench.explain import RunExplainer

        key = str(Path(run_dir).resolve())
        explainer = self._explainers.get(key)
        if explainer is None:
            explainer = RunExplainer(run_dir)
            self._explainers = {key: explainer}
        return explainer.explain_sample(split, index, class_name)


# -- fixed answers ----------------------------------------------------------------------------


@dataclass
class FixedLayerRow:
    """One summary row, as `tfbench.build.LayerRow` has it."""

    index: int
    name: str
    type: str
    output_shape: tuple
    params: int


@dataclass
class FixedSummary:
    """A model summary, as `tfbench.build.ModelSummary` has it."""

    input_shape: tuple
    output_shape: tuple
    layers: list[FixedLayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int = 0


@dataclass
class FixedEngineCalls:
    """Answers from fixed data so screens can be pictured and tested without TensorFlow.

    The summary gives every layer the same output shape and parameter count, unless a layer's type
    is listed in `failing`, which makes the summary fail at that layer like an impossible stack.
    `evaluate` answers with `evaluation` when it is set; left None, a run is really evaluated (a
    test that trains a real run also gets its real evaluation). `augment` answers `augmentation`
    (an `AugmentPreview`) with the roll asked for, and `explain` the explanation at the index asked
    for (of `explanations`, round the list); left empty, they too are computed for real.
    """

    info: Any = None
    preview_data: dict = field(default_factory=dict)
    listing: list[dict] = field(default_factory=list)
    failing: tuple[str, ...] = ()
    params_per_layer: int = 10
    imported: list = field(default_factory=list)
    evaluation: dict | None = None
    augmentation: Any = None
    explanations: list = field(default_factory=list)

    def warm_up(self) -> float:
        return 0.0

    def describe(self, spec, seed: int | None = 42, io=None):
        if self.info is None:
            raise UserError("no data in these fixed engine calls", "data.source")
        return self.info

    def summarize(self, exp) -> FixedSummary:
        rows = []
        for i, layer in enumerate(exp.model.layers):
            if layer.type in self.failing:
                raise UserError(f"{layer.type} cannot follow the layer before it", f"model.layers[{i}]")
            params = self.params_per_layer if layer.type not in ("Flatten", "Dropout") else 0
            shape = (None, int(layer.args.get("units", 10)))
            rows.append(FixedLayerRow(i, f"{layer.type.lower()}_{i}", layer.type, shape, params))
        total = sum(r.params for r in rows)
        in_shape = tuple(self.info.input_shape) if self.info is not None else ()
        out_shape = rows[-1].output_shape if rows else (None, *in_shape)
        return FixedSummary((None, *in_shape), out_shape, rows, total, total, 0)

    def preview(self, spec, n: int = 6) -> dict:
        return self.preview_data

    def label_candidates(self, spec) -> list:
        return EngineCalls().label_candidates(spec)  # reads the file's columns: no TensorFlow

    def datasets(self, query: str = "") -> list[dict]:
        q = query.lower()
        return [row for row in self.listing if q in row["name"].lower()]

    def import_layers(self, path) -> list:
        if not self.imported:
            raise UserError("not a Sequential .keras model", str(path))
        return list(self.imported)

    def evaluate(self, run_dir, split: str = "validation", k: int = 5) -> dict:
        if self.evaluation is None:
            return EngineCalls().evaluate(run_dir, split, k)
        return copy.deepcopy({**self.evaluation, "run_dir": str(run_dir), "split": split})

    def augment(self, exp: Any, index: int = 0, roll: int = 0) -> Any:
        if self.augmentation is None:
            return EngineCalls().augment(exp, index, roll)
        return dataclasses.replace(self.augmentation, roll=roll)

    def ready_rerolls(self, exp: Any) -> float:
        return 0.0

    def explain(
        self, run_dir: str | Path, split: str = "validation", index: int = 0, class_name: str | None = None
    ) -> Any:
        if not self.explanations:
            return EngineCalls().explain(run_dir, split, index, class_name)
        return self.explanations[index % len(self.explanations)]
