"""Layers that learn from data — `Normalization`, `Discretization`, `TextVectorization`, the lookups — learn it
from the training split, before the first epoch, at their place in the stack. Without a UI.

keras.io adapts such a layer on the training data before it trains (`layer.adapt(train_ds)`); a
layer deeper in a stack adapts on the training data as the layers before it give it. A run does
the same right after building its model (`adapt_model`), on the training split read in order
(never the shuffled pipeline `fit` iterates: that would move the run's data order by an epoch),
so the `.keras` file and every export carry what was learnt. `train.py` adapts with the very
functions a run uses (`layers_to_adapt`, `adapt_layer`, copied into the script). A layer given its
statistics (`mean`/`variance`, `bin_boundaries`, `vocabulary`) is left as it was given. A resumed
run takes the learnt state from its own checkpoint instead of learning it again, so it continues
with exactly the preprocessing its weights were trained behind.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench import blocks
from tfbench.adaptable import adaptable_nodes
from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras
    import tensorflow as tf

    from tfbench.spec import Experiment

SAVED_STATE = ("checkpoints/last.keras", "model.keras")
"""Where a resumed run finds the state its layers learnt (relative to the run directory)."""

# -- what train.py copies: keep these two functions self-contained (keras and nothing else) ----


def layers_to_adapt(model: keras.Model) -> list:
    """The layers of `model` that learn from data (they have `adapt`) and were not given what they
    learn (`mean`/`variance`, `bin_boundaries`, `vocabulary`), in stack order."""
    given = {
        "Normalization": ("mean", "variance"),
        "Discretization": ("bin_boundaries",),
        "TextVectorization": ("vocabulary",),
        "StringLookup": ("vocabulary",),
        "IntegerLookup": ("vocabulary",),
    }
    found = []
    for layer in model.layers:
        if not callable(getattr(layer, "adapt", None)):
            continue
        config = layer.get_config()
        if not any(config.get(key) is not None for key in given.get(type(layer).__name__, ())):
            found.append(layer)
    return found


def adapt_layer(model: keras.Model, layer: keras.layers.Layer, features: tf.data.Dataset) -> None:
    """Adapt `layer` on `features` (batches of the model's input) as the layers before it give them,
    in inference mode — keras.io's `layer.adapt(train_ds)`, at the layer's place in the stack."""
    import keras

    if len(model.inputs) == 1 and layer.input is model.inputs[0]:
        layer.adapt(features)
        return
    before = keras.Model(model.inputs, layer.input)
    layer.adapt(features.map(lambda x: before(x, training=False)))


# -- a run ----------------------------------------------------------------------------------------


def adapt_model(experiment: Experiment, model: Any, run_dir: Path | None = None, resuming: bool = False) -> list[dict]:
    """Teach the model's layers that learn from data, before its first epoch (or its checkpoint's state).

    Args:
        experiment: the run's Experiment (its data, read again in order, and its stack's paths).
        model: the built model; a table's model is its preprocessing → layer stack, and the stack's
            layers adapt on the preprocessed columns.
        run_dir: the run directory, when resuming.
        resuming: take the state from the run's checkpoint (`SAVED_STATE`) rather than the data.

    Returns:
        One record per layer taught: `{"path", "name", "type", "samples" | "restored"}`.

    Raises:
        UserError: located at the layer that cannot adapt on this data, saying why.
    """
    from tfbench.data.feature_space import parts

    found = parts(model)
    preprocessing, stack = found if found is not None else (None, model)
    layers = layers_to_adapt(stack)
    if not layers:
        return []
    paths = stack_paths(experiment)
    saved = _saved_state(run_dir) if resuming and run_dir is not None else None
    if saved is not None:
        return [_restore(layer, saved, paths) for layer in layers]
    features, samples = training_features(experiment, preprocessing)
    records = []
    for layer in layers:
        path = paths.get(layer.name, layer.name)
        try:
            adapt_layer(stack, layer, features)
        except Exception as exc:  # noqa: BLE001 - Keras and TensorFlow refuse data with several types
            raise UserError(f"{type(layer).__name__} cannot adapt on the training data: {_reason(exc)}", path) from None
        records.append({"path": path, "name": layer.name, "type": type(layer).__name__, "samples": samples})
    return records


def _reason(exc: Exception) -> str:
    """The first line of a Keras or TensorFlow refusal (what was wrong), without the call's arguments."""
    text = str(exc).split("\n\nArguments received by")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def stack_paths(experiment: Experiment) -> dict[str, str]:
    """Each layer's Keras name → where it is written (`model.layers[0]`), as `tfbench.build` names them."""
    nodes = blocks.parse_stack(experiment.model.layers)
    return {name: path for path, name in blocks.layer_names(nodes, {"input"}).items()}


def training_features(experiment: Experiment, preprocessing: Any = None) -> tuple[Any, int | None]:
    """The training split's inputs, batched and in order, as the layer stack takes them; and its size.

    The split, preprocessing and batches are the run's (`rundir.load_bundle`), read without the
    shuffle and without a file cache, so adapting neither moves the run's data order nor writes
    beside it. A table's raw columns go through its preprocessing first.
    """
    from tfbench import rundir

    unshuffled = experiment.model_copy(update={"data": experiment.data.model_copy(update={"shuffle": False})})
    bundle = rundir.load_bundle(unshuffled)
    features = bundle.train.map(lambda x, *_: x)
    if preprocessing is not None:
        features = features.map(lambda x: preprocessing(x, training=False))
    return features, bundle.info.sizes.get("train")


def _saved_state(run_dir: Path) -> Any:
    """The run's own saved model (its layers' learnt state), or None before any was written."""
    import keras

    for rel in SAVED_STATE:
        path = Path(run_dir) / rel
        if path.is_file():
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    return None


def _find(model: Any, name: str) -> Any:
    """The layer called `name` in `model` or in a model nested in it (a table's layer stack)."""
    for layer in getattr(model, "layers", []):
        if layer.name == name:
            return layer
        inner = _find(layer, name)
        if inner is not None:
            return inner
    return None


def _restore(layer: Any, saved_model: Any, paths: dict[str, str]) -> dict:
    """Give `layer` the state its namesake in the saved model learnt: variables, vocabulary, bins."""
    import tempfile

    path = paths.get(layer.name, layer.name)
    saved = _find(saved_model, layer.name)
    if saved is None or type(saved) is not type(layer):
        raise UserError(f"the run's checkpoint has no {type(layer).__name__} {layer.name!r} to resume with", path)
    store: dict[str, Any] = {}
    saved.save_own_variables(store)
    layer.load_own_variables(store)  # Normalization's mean and variance (and its finalize_state)
    if callable(getattr(saved, "save_assets", None)):
        with tempfile.TemporaryDirectory() as folder:  # a lookup's vocabulary (and idf weights)
            saved.save_assets(folder)
            layer.load_assets(folder)
    if getattr(saved, "bin_boundaries", None) is not None:  # Discretization keeps its bins in its config
        layer.bin_boundaries = list(saved.bin_boundaries)
    return {"path": path, "name": layer.name, "type": type(layer).__name__, "restored": SAVED_STATE[0]}


def described(records: list[dict]) -> list[str]:
    """One line per layer taught, for the run's summary and progress: "… adapted on N training samples"."""
    lines = []
    for r in records:
        if "restored" in r:
            lines.append(f"{r['path']} {r['type']}: state from the run's checkpoint")
        else:
            count = f"{r['samples']:,}" if isinstance(r.get("samples"), int) else "the"
            lines.append(f"{r['path']} {r['type']} adapted on {count} training samples")
    return lines


# -- the script -------------------------------------------------------------------------------------


def script_functions(experiment: Experiment) -> str:
    """`layers_to_adapt` and `adapt_layer` as `train.py` carries them, or "" when nothing adapts."""
    if not adaptable_nodes(experiment.model.layers):
        return ""
    sources = [textwrap.dedent(inspect.getsource(f)) for f in (layers_to_adapt, adapt_layer)]
    return "\n\n".join(s.replace("    import keras\n\n", "") for s in sources)


def script_lines(experiment: Experiment, split_arg: str) -> list[str]:
    """`main()`'s lines that adapt the built model on the training split in order, as a run does."""
    if not adaptable_nodes(experiment.model.layers):
        return []
    return [
        "    # Layers that learn from data (Normalization, lookups…) learn it from the training split first,",
        "    # in order, each on the data as the layers before it give it — as keras.io adapts them.",
        f"    features = to_dataset(train, training=False{split_arg}).map(lambda x, *_: x)",
        "    for layer in layers_to_adapt(model):",
        "        adapt_layer(model, layer, features)",
    ]
