"""Experiment + DataInfo → a Keras model, or an error naming the layer that cannot stand where it is.

The same code gives the builder screen's live summary (`summarize`, run in a worker thread, never
compiled) and the runner's compiled model (`build_model`), so a stack the summary accepts is the
stack that trains. Every user mistake becomes a `UserError` located at the Experiment field it
concerns (`model.layers[2].kernel_size`), before any training starts.

Importing this module does not import TensorFlow: Keras is imported inside the functions, because
the CLI and the engine import this module on paths (`tfbench --help`) that must stay instant.

Global state: Keras keeps its global state (layer-name counters, the dtype policy) per thread. The
builder names layers itself (`dense`, `dense_1`, … as a fresh Keras session would), so repeated
summaries give the same names, and sets the mixed-precision policy only while it builds, restoring
the previous policy afterwards, so one process can build several models without one leaking its
policy into the next. Nothing here calls `keras.backend.clear_session()`: clearing in one thread
while another trains is harmful; the caller decides when a session may be cleared.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.data.feature_space import raw_columns_model
from tfbench.data.labels import classes_hint, labels_are_one_hot, loss_family, loss_name
from tfbench.data.labels import needs_one_hot as labels_need_one_hot
from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

    from tfbench.blocks import Node
    from tfbench.data.info import DataInfo
    from tfbench.spec import Component, Experiment, TrainSpec

# What each input rank means, for messages such as "Conv2D needs 3-D input per sample (height,
# width, channels)".
_AXES_BY_FAMILY = {
    "1d": "(steps, channels)",
    "2d": "(height, width, channels)",
    "3d": "(depth, height, width, channels)",
    "rnn": "(timesteps, features)",
}
# Layers over 1, 2 or 3 spatial axes plus channels, whose input rank is exactly that.
_SPATIAL = re.compile(r"(Conv|Pooling|Cropping|ZeroPadding|UpSampling|SpatialDropout|Transpose)([123])D$")
_INPUT_NAME = "input"  # the model's input layer (codegen writes the same name)
_RNN_TYPES = {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D"}


@dataclass
class LayerRow:
    """One layer of a summary: what it is, what it gives, what it costs.

    Attributes:
        index: position in `model.layers` (0-based) of the entry the row belongs to (a nested
            layer shares its entry's index).
        name: the Keras layer name (`conv2d`, `dense_1`, …).
        type: the Keras class name, as in the preset.
        output_shape: one sample's output shape (no batch dimension); None when unknown.
        params: number of weights (trainable and not).
        path: where the entry is written in the Experiment (`model.layers[4].branches[1][0]`);
            empty for a layer the stack implies.
        depth: 0 for an entry of the stack, 1 for a layer inside it, and so on.
        trainable: False for a frozen layer or block (e.g. a backbone with `trainable = false`).
        kind: `layer`, `wrapper` (Bidirectional, TimeDistributed), `block` (Residual, Parallel)
            or `backbone` (a keras.applications model); a block's row comes before its layers'
            rows and its `params` are the block's total.
    """

    index: int
    name: str
    type: str
    output_shape: list[int | None] | None
    params: int
    path: str = ""
    depth: int = 0
    trainable: bool = True
    kind: str = "layer"


@dataclass
class ModelSummary:
    """A model's shapes and sizes as plain data, for the builder screen, events and `validate --json`.

    Attributes:
        input_shape: one sample's input shape (no batch dimension).
        output_shape: one sample's output shape.
        layers: a row per layer of the stack, in order.
        total_params / trainable_params / non_trainable_params: weight counts.
        inputs / outputs: a model with several named inputs or outputs: each one's sample shape
            by name (then `input_shape`/`output_shape` are the first one's); empty otherwise.
    """

    input_shape: list
    output_shape: list
    layers: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    inputs: dict[str, list] = field(default_factory=dict)
    outputs: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready data: the `model` field of `run_started` and of `tfbench validate --json`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSummary:
        """Inverse of `to_dict` (a replayed `run_started` event back into a summary)."""
        data = dict(data)
        data["layers"] = [LayerRow(**row) for row in data.get("layers", [])]
        return cls(**data)


# -- losses, metrics and labels ----------------------------------------------------------------


def _component_dict(value: str | Component | dict) -> str | dict:
    """A string stays a string; a component becomes `{"type": …, **args}`."""
    if isinstance(value, (str, dict)):
        return value
    return {"type": value.type, **value.args}


def _final_activation(exp: Experiment) -> str | None:
    """The activation the stack ends with (`softmax`, `sigmoid`…), or None for a linear output."""
    if not exp.model.layers:
        return None
    last = exp.model.layers[-1]
    inner = last.args.get("layer")
    if last.type == "TimeDistributed" and isinstance(inner, dict):  # the wrapped layer decides
        from tfbench.spec import Component

        last = Component(**inner)
    if last.type == "Softmax":
        return "softmax"
    activation = last.args.get("activation")  # Dense, Conv… and the Activation layer alike
    if not isinstance(activation, str) or activation == "linear":
        return None
    return activation


def resolve_loss(exp: Experiment, info: DataInfo) -> str | dict:
    """The loss to compile with: the user's, or for "auto" one that fits the labels and last layer.

    "auto" gives sparse categorical crossentropy for class ids (binary labels with a 2-unit softmax
    included), categorical crossentropy for labels that are already one-hot, binary crossentropy
    for 0/1 labels and mean squared error for regression. When the
    stack ends without an activation (logits), the class form with `from_logits = true` is used.

    Args:
        exp: the Experiment (its `train.loss` and the last layer's activation are read).
        info: the data's description.

    Returns:
        A Keras loss name, or a component dict `{"type": "SparseCategoricalCrossentropy", …}`.
    """
    loss = exp.train.loss
    if not (isinstance(loss, str) and loss == "auto"):
        return _component_dict(loss)
    activation = _final_activation(exp)
    if info.label_kind == "regression":
        return "mean_squared_error"
    if labels_are_one_hot(info):
        if activation is None:
            return {"type": "CategoricalCrossentropy", "from_logits": True}
        return "categorical_crossentropy"
    if info.label_kind == "binary" and _output_units(exp) != 2:
        if activation is None:
            return {"type": "BinaryCrossentropy", "from_logits": True}
        return "binary_crossentropy"
    if activation is None:
        return {"type": "SparseCategoricalCrossentropy", "from_logits": True}
    return "sparse_categorical_crossentropy"


def _output_units(exp: Experiment) -> int | None:
    """The `units` of the last layer when it says so (Dense and friends)."""
    for layer in reversed(exp.model.layers):
        units = layer.args.get("units")
        if isinstance(units, int):
            return units
        if layer.type not in {"Activation", "Softmax", "Dropout"}:
            return None
    return None


def resolve_metrics(exp: Experiment, info: DataInfo) -> list:
    """The metrics to compile with; each "auto" becomes accuracy for classifiers, MAE for regression.

    Binary classifiers that output logits get `BinaryAccuracy(threshold=0)`, since plain accuracy
    would threshold logits at 0.5.

    Returns:
        Metric names and component dicts, without duplicates, in the user's order.
    """
    out: list = []
    for metric in exp.train.metrics:
        if isinstance(metric, str) and metric == "auto":
            if not info.is_classification:
                items: list = ["mae"]
            else:
                loss = resolve_loss(exp, info)
                logits = isinstance(loss, dict) and bool(loss.get("from_logits"))
                binary = loss_family(loss) == "binary"
                items = [{"type": "BinaryAccuracy", "threshold": 0.0}] if (logits and binary) else ["accuracy"]
        else:
            items = [_component_dict(metric)]
        for item in items:
            if item not in out:
                out.append(item)
    return out


def needs_one_hot(exp: Experiment, info: DataInfo) -> bool:
    """Whether integer class labels must be one-hot encoded for the Experiment's loss.

    Resolves an "auto" loss, then asks `tfbench.data.labels.needs_one_hot`, the one place that
    decides (categorical crossentropy, its focal variant and categorical hinge on class ids); the
    data pipeline then maps labels with `num_classes` depth.

    Raises:
        UserError: at `train.loss`, when the loss cannot fit the labels (a class loss on regression
            targets, a binary loss on more than two classes, a sparse loss on one-hot labels).
    """
    return labels_need_one_hot(resolve_loss(exp, info), info, declared_width=declared_width(exp.model.layers))


# Layers after the last Dense/Conv that keep its width: the stack's output width is still that layer's.
_WIDTH_KEEPING = {
    "Activation",
    "ActivityRegularization",
    "AlphaDropout",
    "BatchNormalization",
    "Dropout",
    "ELU",
    "GaussianDropout",
    "GaussianNoise",
    "LayerNormalization",
    "LeakyReLU",
    "PReLU",
    "ReLU",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "UnitNormalization",
}


def declared_width(layers: list[Component]) -> int | None:
    """The output width a stack declares: its last layer's `units` or `filters` (inside a
    `TimeDistributed`, its inner layer's), past layers that keep the width; None when unknown."""
    for entry in reversed(layers):
        if entry.type in _WIDTH_KEEPING:
            continue
        args = entry.args
        if entry.type == "TimeDistributed" and isinstance(args.get("layer"), dict):
            args = args["layer"]
        width = args.get("units", args.get("filters"))
        return width if isinstance(width, int) else None
    return None


# -- layers -------------------------------------------------------------------------------------


def _arg_named(message: str, args: dict) -> str | None:
    """The argument a Keras error message is about, when it names one of the given arguments."""
    for key in args:
        if re.search(rf"`{re.escape(key)}`|\b{re.escape(key)}=", message):
            return key
    for key in args:
        if re.search(rf"\b{re.escape(key)}\b", message):
            return key
    return None


def clean_message(message: Any) -> str:
    """Keras' message without ANSI colours, the call-argument trailer and trailing blank lines."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(message))
    message = message.split("\n\nArguments received by")[0]
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        lines = lines[1:]
    return " ".join(lines)


def build_layer(component: Component, name: str | None = None, location: str | None = None) -> keras.layers.Layer:
    """One Keras layer from its component: `getattr(keras.layers, type)(**args)`.

    The catalog has already said the type is an offered layer; this only constructs it.

    Args:
        component: the layer's class name and constructor arguments.
        name: a layer name used when the component does not set one.
        location: where the component sits (`model.layers[2]`), for errors.

    Returns:
        The unbuilt layer.

    Raises:
        UserError: the type is not a Keras layer, or Keras refuses the arguments (located at the
            argument the message names, when it names one).
    """
    import keras

    from tfbench import user_code

    location = location or "layer"
    cls = getattr(keras.layers, component.type, None)
    own = user_code.find("layers", component.type) if cls is None else None  # a layer of the preset's code
    cls = own.cls if own is not None else cls
    if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
        raise UserError(f"{component.type!r} is not a Keras layer", location)
    # Plain values only (the catalog refuses tables), so nothing here deserialises an object.
    args = dict(component.args)
    if name is not None and "name" not in args and user_code.accepts(cls, "name"):
        args["name"] = name
    if own is not None:
        try:
            return cls(**args)
        except Exception as exc:  # whatever the user's constructor raises: one line naming it and where
            raise user_code.constructor_error(own, exc, location) from None
    try:
        return cls(**args)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        message = clean_message(exc)
        arg = _arg_named(message, component.args)
        where = f"{location}.{arg}" if arg else location
        raise UserError(f"{component.type}: {message}", where) from None


def _rank_problem(component: Component, layer: Any, shape: tuple) -> str | None:
    """A plain-words message when the layer's input spec refuses the incoming rank, else None."""
    ndim = len(shape)
    spec = getattr(layer, "input_spec", None)
    if isinstance(spec, (list, tuple)):
        spec = spec[0] if spec else None
    want_exact = getattr(spec, "ndim", None)
    want_min = getattr(spec, "min_ndim", None)
    want_max = getattr(spec, "max_ndim", None)
    spatial = _SPATIAL.search(component.type)
    if spatial and not component.type.startswith("ConvLSTM"):
        # Keras only asks Conv1D for "at least 3 dims" but then fails on 4: the rank is exact.
        want_exact, want_min, want_max = int(spatial.group(2)) + 2, None, None
    if want_exact is None and want_min is None and want_max is None:
        return None
    fits = (
        (want_exact is None or ndim == want_exact)
        and (want_min is None or ndim >= want_min)
        and (want_max is None or ndim <= want_max)
    )
    if fits:
        return None
    want = want_exact if want_exact is not None else (want_min if want_min is not None else want_max)
    if want is None:  # nothing wanted: `fits` held
        return None
    per_sample = want - 1
    gets = _shape_text(shape[1:])
    axes = _axes_for(component.type, per_sample)
    what = f"{per_sample}-D input per sample" + (f" {axes}" if axes else "")
    if not axes and want_exact is None and want_min is not None and ndim < want_min:
        what = f"at least {what}"
    return f"{component.type} needs {what} but gets {gets}: add a Reshape or Flatten earlier"


def _axes_for(type_name: str, per_sample: int) -> str | None:
    if type_name in _RNN_TYPES and per_sample == 2:
        return _AXES_BY_FAMILY["rnn"]
    match = re.search(r"([123])D$", type_name)
    if match and int(match.group(1)) + 1 == per_sample:
        return _AXES_BY_FAMILY[f"{match.group(1)}d"]
    return None


def _shape_text(shape) -> str:
    dims = [("None" if d is None else str(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _window_problem(component: Component, shape: tuple, message: str) -> tuple[str, str | None]:
    """A plain-words message for a kernel or pool window larger than its input."""
    args = component.args
    arg = next((k for k in ("kernel_size", "pool_size", "cropping", "size") if k in args), None)
    spatial = _shape_text(shape[1:-1]) if len(shape) > 2 else _shape_text(shape[1:])
    if arg:
        window = args[arg]
        text = (
            f"{component.type} {arg} {window!r} is larger than its input {spatial}: "
            'use a smaller window, padding = "same", or fewer downsampling layers before it'
        )
    else:
        text = f"{component.type} would give an empty output from input {spatial}: {message}"
    return text, arg


def _call_layer(component: Component, layer: Any, x: Any, location: str) -> Any:
    """Call a layer on the symbolic tensor, turning shape refusals into located user errors."""
    problem = _rank_problem(component, layer, tuple(x.shape))
    if problem:
        raise UserError(problem, location)
    try:
        return layer(x)
    except UserError:
        raise
    except Exception as exc:  # Keras raises ValueError/TypeError, TF sometimes others
        message = clean_message(exc)
        if "zero or negative" in message or "negative dimension" in message.lower():
            text, arg = _window_problem(component, tuple(x.shape), message)
            raise UserError(text, f"{location}.{arg}" if arg else location) from None
        arg = _arg_named(message, component.args)
        where = f"{location}.{arg}" if arg else location
        raise UserError(
            f"{component.type} cannot take input {_shape_text(tuple(x.shape)[1:])}: {message}", where
        ) from None


def _input_shape(exp: Experiment, info: DataInfo) -> tuple:
    """One sample's input shape: the model's override, else the data's."""
    if exp.model.input_shape:
        return tuple(exp.model.input_shape)
    shape = tuple(info.input_shape or ())
    if not shape and info.input_dtype != "string":  # raw text is one string per sample: shape ()
        raise UserError("the data has no known input shape; set model.input_shape", "model.input_shape")
    return shape


def _input_dtype(info: DataInfo) -> str:
    return info.input_dtype or "float32"


class _Policy:
    """Set Keras' dtype policy while building and restore the previous one afterwards."""

    def __init__(self, name: str):
        self.name = name
        self.previous = None

    def __enter__(self) -> _Policy:
        import keras

        if self.name and self.name != "off":
            self.previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(self.name)
        return self

    def __exit__(self, *exc) -> None:
        import keras

        if self.previous is not None:
            keras.config.set_dtype_policy(self.previous)


@dataclass
class _Built:
    """A node as built: the Keras layer its row describes (a block's merge layer, a backbone's
    model), the output tensor, the weights it counts and the nested parts, for the summary."""

    node: Node | None  # None for a layer the entry implies (preprocessing, a backbone's layers)
    layer: Any
    output: Any
    weights: list
    parts: list[_Built] = field(default_factory=list)


@dataclass
class _Context:
    names: dict[str, str]
    load_weights: bool
    float32_paths: frozenset[str]  # under mixed precision, the last layer (of each output) computes in float32


def _stack(exp: Experiment, info: DataInfo, load_weights: bool = False) -> tuple[Any, Any, list[_Built]]:
    """Build the entries on `keras.Input`, depth first: (inputs, outputs, built entries).

    Backbones get their pretrained weights only with `load_weights` (a run); summaries and
    validation build them with random weights, which give the same shapes and counts.
    """
    import keras

    from tfbench import backbones, blocks

    if not exp.model.layers:
        raise UserError("the model has no layers; add at least one", "model.layers")
    nodes = blocks.parse_stack(exp.model.layers)
    shape = _input_shape(exp, info)
    inputs = keras.Input(shape=shape, dtype=_input_dtype(info), name=_INPUT_NAME)
    last = nodes[-1]
    mixed = exp.train.mixed_precision != "off" and last.kind == "layer" and "dtype" not in last.args
    ctx = _Context(blocks.layer_names(nodes, {_INPUT_NAME}), load_weights, frozenset({last.path} if mixed else ()))
    outputs, built = _apply_sequence(nodes, inputs, ctx)
    backbones.check_unfreeze(
        exp.train.fine_tune, [(b.node.type, b.layer) for b in built if b.node and b.node.kind == "backbone"]
    )
    return inputs, outputs, built


def _apply_sequence(nodes, x: Any, ctx: _Context) -> tuple[Any, list[_Built]]:
    built = []
    for node in nodes:
        part = _apply(node, x, ctx)
        built.append(part)
        x = part.output
    return x, built


def _apply(node: Node, x: Any, ctx: _Context) -> _Built:
    if node.kind == "block":
        return _apply_block(node, x, ctx)
    if node.kind == "wrapper":
        return _apply_wrapper(node, x, ctx)
    if node.kind == "backbone":
        return _apply_backbone(node, x, ctx)
    return _apply_layer(node, x, ctx)


def _component(node: Node, drop: tuple[str, ...] = ()) -> Component:
    from tfbench.spec import Component

    return Component(type=node.type, **{k: v for k, v in node.args.items() if k not in drop})


def _apply_layer(node: Node, x: Any, ctx: _Context) -> _Built:
    from tfbench import blocks

    component = _component(node, tuple(blocks.CALL_ARGS))
    if node.path in ctx.float32_paths:
        component = type(component)(type=component.type, **component.args, dtype="float32")
    layer = build_layer(component, name=ctx.names[node.path], location=node.path)
    if node.is_attention:
        out = _call_attention(node, layer, x)
    else:
        out = _call_layer(component, layer, x, node.path)
    return _Built(node, layer, out, list(layer.weights))


def _call_attention(node: Node, layer: Any, x: Any) -> Any:
    """Self-attention: the incoming tensor is query, key and value."""
    from tfbench import blocks

    causal = bool(node.args.get("use_causal_mask", False))
    if len(x.shape) < 3:  # Keras accepts a flat tensor here, then fails in the first batch
        size = x.shape[-1] if len(x.shape) == 2 and x.shape[-1] is not None else "N"
        raise UserError(
            f"{node.type} needs a sequence (steps, features) per sample but gets {_shape_text(tuple(x.shape)[1:])}",
            node.path,
            f"put a Reshape with target_shape = [{size}, 1], or an Embedding, before it",
        )
    try:
        if node.type in blocks.LIST_INPUT_ATTENTION:
            return layer([x, x], use_causal_mask=causal)
        return layer(x, x, use_causal_mask=causal)
    except Exception as exc:  # noqa: BLE001 - Keras' shape refusals come as several types
        raise UserError(
            f"{node.type} cannot attend over input {_shape_text(tuple(x.shape)[1:])}: {clean_message(exc)}",
            node.path,
            "attention needs a sequence (steps, features) per sample, e.g. after an Embedding",
        ) from None


def _apply_wrapper(node: Node, x: Any, ctx: _Context) -> _Built:
    import keras

    inner_node = node.inner
    if inner_node is None:
        raise UserError(f"{node.type} wraps a layer: give it one", node.path)
    inner_component = _component(inner_node)
    inner = build_layer(inner_component, name=ctx.names[inner_node.path], location=inner_node.path)
    cls = getattr(keras.layers, node.type)
    try:
        wrapper = cls(layer=inner, name=ctx.names[node.path], **{k: v for k, v in node.args.items() if k != "name"})
    except (ValueError, TypeError) as exc:
        raise UserError(f"{node.type}: {clean_message(exc)}", node.path) from None
    try:
        out = wrapper(x)
    except Exception as exc:  # noqa: BLE001 - Keras' shape refusals come as several types
        message = clean_message(exc)
        arg = _arg_named(message, inner_component.args)
        where = f"{inner_node.path}.{arg}" if arg else node.path
        raise UserError(
            f"{node.type}({inner_node.type}) cannot take input {_shape_text(tuple(x.shape)[1:])}: {message}", where
        ) from None
    weights = list(wrapper.weights)
    inner_part = _Built(inner_node, inner, out, weights)
    return _Built(node, wrapper, out, weights, [inner_part])


def _apply_block(node: Node, x: Any, ctx: _Context) -> _Built:
    import keras

    from tfbench import blocks

    if node.type == "Residual":
        main, main_parts = _apply_sequence(node.layers, x, ctx)
        short, short_parts = _apply_sequence(node.shortcut, x, ctx)
        outs, parts, labels = [main, short], main_parts + short_parts, ["layers", "shortcut"]
    else:
        outs, parts, labels = [], [], []
        for i, branch in enumerate(node.branches):
            out, branch_parts = _apply_sequence(branch, x, ctx)
            outs.append(out)
            parts += branch_parts
            labels.append(f"branches[{i}]")
    merge = getattr(keras.layers, blocks.MERGES[node.merge])(name=ctx.names[node.path])
    try:
        out = merge(outs)
    except Exception:  # noqa: BLE001 - Keras' shape refusals come as several types
        shapes = ", ".join(f"{label} give {_shape_text(tuple(o.shape)[1:])}" for label, o in zip(labels, outs))
        hint = (
            'give the paths the same shape, e.g. a shortcut = [ { type = "Conv2D", filters = N, '
            "kernel_size = 1 } ] projection"
            if node.merge != "concatenate"
            else "the paths must agree on every axis but the last"
        )
        raise UserError(f"{node.type} cannot {node.merge} its paths: {shapes}", f"{node.path}.merge", hint) from None
    weights = [w for part in parts for w in part.weights] + list(merge.weights)
    return _Built(node, merge, out, weights, parts)


def _apply_backbone(node: Node, x: Any, ctx: _Context) -> _Built:
    """A keras.applications model as one entry; frozen ones are called with `training=False`."""
    import keras

    from tfbench import backbones

    name = ctx.names[node.path]
    parts = []
    if node.args.get("preprocess"):
        for i, (type_name, args) in enumerate(backbones.preprocessing_layers(node.type)):
            layer = getattr(keras.layers, type_name)(name=f"{name}_preprocess" + (f"_{i}" if i else ""), **args)
            x = layer(x)
            parts.append(_Built(None, layer, x, list(layer.weights)))
    args = dict(node.args)
    args.setdefault("name", name)
    model = backbones.build(node.type, args, tuple(x.shape)[1:], node.path, ctx.load_weights)
    out = model(x, training=False) if not model.trainable else model(x)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            parts.append(_Built(None, layer, getattr(layer, "output", None), list(layer.weights)))
    weights = [w for p in parts if p.layer not in model.layers for w in p.weights] + list(model.weights)
    return _Built(node, model, out, weights, parts)


def _sample_shape(tensor: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in tuple(tensor.shape)[1:]]


def _count(weights) -> int:
    import math

    seen: set[int] = set()
    total = 0
    for w in weights:
        if id(w) not in seen:
            seen.add(id(w))
            total += math.prod(int(d) for d in w.shape)
    return int(total)


def _rows(built: list[_Built], rows: list[LayerRow], index: int | None = None, depth: int = 0) -> None:
    """Summary rows depth first, a block's row before its layers' rows."""
    for i, part in enumerate(built):
        node = part.node
        top = i if index is None else index
        shape = _sample_shape(part.output) if hasattr(part.output, "shape") else None
        rows.append(
            LayerRow(
                index=top,
                name=part.layer.name,
                type=node.type if node else type(part.layer).__name__,
                output_shape=shape,
                params=_count(part.weights),
                path=node.path if node else "",
                depth=depth,
                trainable=bool(part.layer.trainable),
                kind=node.kind if node else "layer",
            )
        )
        _rows(part.parts, rows, top, depth + 1)


def _summary_of(inputs: Any, outputs: Any, built: list[_Built]) -> ModelSummary:
    import keras

    model = keras.Model(inputs, outputs)
    rows: list[LayerRow] = []
    _rows(built, rows)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return ModelSummary(
        input_shape=_sample_shape(inputs),
        output_shape=_sample_shape(outputs),
        layers=rows,
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
    )


def check_output(exp: Experiment, info: DataInfo, output_shape: list[int | None]) -> None:
    """Check that the stack's last layer fits the labels and the loss, before any training.

    Args:
        exp: the Experiment (its loss and last layer).
        info: the data's label kind, classes and label shape.
        output_shape: one sample's output shape, as the built stack gives it.

    Raises:
        UserError: located at `model.layers[LAST]`, saying what the layer should give, or at
            `train.loss` when the loss cannot fit the labels (see `tfbench.data.labels.needs_one_hot`).
    """
    if exp.model.class_ is not None:
        return  # a model class of the user's own computes its loss from the outputs as it sees fit
    last = len(exp.model.layers) - 1
    where = f"model.layers[{last}]"
    activation = _final_activation(exp)
    loss = resolve_loss(exp, info)
    out = list(output_shape)
    if activation == "softmax" and (out[-1] if out else 1) == 1:
        raise UserError(
            "softmax over 1 output always gives 1.0, so the model cannot learn",
            where,
            'use activation = "sigmoid" for two classes, or one unit per class with softmax',
        )
    labels_need_one_hot(loss, info, output_shape=out)  # a loss that cannot fit: UserError at train.loss
    if info.label_kind == "regression":
        _check_regression_output(out, info, activation if loss_family(loss) != "one_hot" else None, where)
    elif info.is_classification:
        _check_class_output(out, info, loss, where)


def _check_regression_output(out: list[int | None], info: DataInfo, activation: str | None, where: str) -> None:
    """Regression targets: the output's shape must be the target's, and softmax cannot fit them."""
    shape_text = _shape_text(out)
    expected = list(info.label_shape) or [1]
    if out != expected and not (not info.label_shape and out == []):
        raise UserError(
            f"the data has regression targets of shape {_shape_text(expected)} per sample but the "
            f"model outputs {shape_text}",
            where,
            classes_hint(info, out)
            or f"end with a layer giving {_shape_text(expected)}, e.g. Dense with units = {expected[-1]}"
            + (" after a Flatten or pooling layer" if len(out) > len(expected) else ""),
        )
    if activation == "softmax":
        raise UserError(
            "softmax outputs sum to 1, which does not fit regression targets",
            where,
            "use no activation (linear) on the last layer",
        )


def _check_class_output(out: list[int | None], info: DataInfo, loss: str | dict, where: str) -> None:
    """Class labels: one output axis more than the labels per sample, and one unit per class."""
    units = out[-1] if out else 1
    family = loss_family(loss)
    label_dims = list(info.label_shape)
    if info.label_kind == "binary" and label_dims and out == label_dims:
        return  # several 0/1 labels per sample (multi-label), one sigmoid output each
    # Labels already one-hot (k classes on the last axis) stand for one class id per position.
    one_hot_given = family == "one_hot" and labels_are_one_hot(info)
    per_sample = label_dims[:-1] if one_hot_given else label_dims
    if len(out) != len(per_sample) + 1:
        raise UserError(
            f"the model outputs {_shape_text(out)} per sample but each label is "
            + ("one class id" if not per_sample else f"a class id per position {_shape_text(per_sample)}"),
            where,
            "add a Flatten or GlobalAveragePooling layer before the last Dense"
            if len(out) > len(per_sample) + 1
            else "end with one output per class",
        )
    if info.label_kind == "binary":
        _check_binary_units(units, family, loss, where)
        return
    classes = info.num_classes
    if classes and units != classes:
        raise UserError(
            f"the data has {classes} classes but the last layer gives {units} outputs",
            where,
            f"set units = {classes}",
        )


def _check_binary_units(units: int | None, family: str | None, loss: str | dict, where: str) -> None:
    """Two classes: 1 sigmoid output or 2 softmax outputs, and a binary loss needs the single one."""
    if units not in (1, 2):
        raise UserError(
            f"the data has 2 classes but the model gives {units} outputs",
            where,
            "use units = 1 with sigmoid, or units = 2 with softmax",
        )
    if family == "binary" and units != 1:
        raise UserError(
            f"binary labels with {loss_name(loss)} need 1 output but the model gives {units}",
            where,
            "use units = 1 with sigmoid, or units = 2 with softmax and sparse_categorical_crossentropy",
        )


def summarize(exp: Experiment, info: DataInfo) -> ModelSummary:
    """Build the layer stack on `keras.Input` (no compile) and describe it layer by layer.

    Safe to call repeatedly from a worker thread: it names layers itself, restores the dtype policy
    and never clears the Keras session.

    Args:
        exp: the Experiment whose `model.layers` (and speed switches) are built.
        info: the data's description (input shape, labels).

    Returns:
        The summary: shapes, per-layer params, totals.

    Raises:
        UserError: located at the layer that cannot stand where it is (`model.layers[1]`, or
            `model.layers[1].kernel_size`), or at the last layer when it does not fit the data.
    """
    with _Policy(exp.train.mixed_precision):
        inputs, outputs, built = _stack(exp, info)
    summary = _summary_of(inputs, outputs, built)
    check_output(exp, info, summary.output_shape)
    return summary


# -- compiling ----------------------------------------------------------------------------------


def _make(module: Any, value: str | dict, location: str) -> Any:
    """A loss or metric as Keras takes it: a name stays a name, a component dict becomes the object."""
    if isinstance(value, str):
        return value
    from tfbench import user_code

    args = {k: v for k, v in value.items() if k != "type"}
    obj = getattr(module, value["type"], None)
    kind = module.__name__.rsplit(".", 1)[-1]
    own = user_code.find(kind, value["type"]) if obj is None else None  # a class of the preset's code
    if own is not None:
        try:
            return own.cls(**args)
        except Exception as exc:  # noqa: BLE001 - the user's constructor: one line naming it and where
            raise user_code.constructor_error(own, exc, location) from None
    if obj is None:
        raise UserError(f"{value['type']!r} is not in keras.{kind}", location)
    if not isinstance(obj, type):
        if args:
            raise UserError(f"{value['type']} is a function and takes no arguments here", location)
        return obj
    try:
        return obj(**args)
    except (ValueError, TypeError) as exc:
        message = clean_message(exc)
        arg = _arg_named(message, args)
        raise UserError(f"{value['type']}: {message}", f"{location}.{arg}" if arg else location) from None


def build_optimizer(train: TrainSpec) -> Any:
    """The optimizer, with `train.schedule` (a `keras.optimizers.schedules` class) as its learning rate.

    Raises:
        UserError: located at `train.optimizer` or `train.schedule` when Keras refuses the arguments.
    """
    import keras

    args = dict(train.optimizer.args)
    if train.schedule is not None:
        schedule_cls = getattr(keras.optimizers.schedules, train.schedule.type, None)
        if not isinstance(schedule_cls, type):
            raise UserError(f"{train.schedule.type!r} is not a Keras learning-rate schedule", "train.schedule")
        try:
            args["learning_rate"] = schedule_cls(**train.schedule.args)
        except (ValueError, TypeError) as exc:
            message = clean_message(exc)
            arg = _arg_named(message, train.schedule.args)
            raise UserError(
                f"{train.schedule.type}: {message}", "train.schedule" + (f".{arg}" if arg else "")
            ) from None
    cls = getattr(keras.optimizers, train.optimizer.type, None)
    if not (isinstance(cls, type) and issubclass(cls, keras.optimizers.Optimizer)):
        raise UserError(f"{train.optimizer.type!r} is not a Keras optimizer", "train.optimizer")
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        message = clean_message(exc)
        arg = _arg_named(message, train.optimizer.args)
        raise UserError(f"{train.optimizer.type}: {message}", "train.optimizer" + (f".{arg}" if arg else "")) from None


def build_model(exp: Experiment, info: DataInfo, compile: bool = True, load_weights: bool = True) -> keras.Model:
    """The Experiment's model: a Functional model from `keras.Input`, compiled unless asked not to.

    Backbones with `weights = "imagenet"` are fetched through Keras' cache (`KERAS_HOME`) unless
    `load_weights` is False (shapes and counts alone).

    The loss and metrics are resolved (`resolve_loss`, `resolve_metrics`); `train.jit_compile` and
    `train.steps_per_execution` go to `compile`. With mixed precision the policy is set while the
    model is built and restored afterwards, the last layer computes in float32, and `compile` wraps
    the optimizer in a loss-scale optimizer for `mixed_float16`. Call `apply_seed` first when the
    weights must be reproducible.

    Args:
        exp: the Experiment.
        info: the data's description.
        compile: compile with the optimizer, loss and metrics (False for export or inspection).
        load_weights: give backbones their pretrained weights (False: random, no download).

    Returns:
        A `keras.Model`, named after the Experiment.

    Raises:
        UserError: located at the layer, optimizer, schedule, loss or metric Keras refuses, or at the
            last layer when it does not fit the data.
    """
    import keras

    with _Policy(exp.train.mixed_precision):
        inputs, outputs, built = _stack(exp, info, load_weights=load_weights)
        check_output(exp, info, _sample_shape(outputs))
        model = _functional(exp, inputs, outputs)
        model = raw_columns_model(model, info)  # a table's model takes its raw named columns
    if not compile:
        return model
    train = exp.train
    optimizer = build_optimizer(train)
    loss = _make(keras.losses, resolve_loss(exp, info), "train.loss")
    metrics = [
        _make(keras.metrics, metric, f"train.metrics[{i}]") for i, metric in enumerate(resolve_metrics(exp, info))
    ]
    try:
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            jit_compile=train.jit_compile,
            steps_per_execution=train.steps_per_execution,
        )
    except (ValueError, TypeError) as exc:
        raise UserError(f"cannot compile the model: {clean_message(exc)}", "train") from None
    return model


def _functional(exp: Experiment, inputs: Any, outputs: Any) -> Any:
    """The Functional model: `keras.Model`, or the preset's own subclass `model.class`, whose
    train_step/test_step then drive fit."""
    import keras

    from tfbench import user_code

    if exp.model.class_ is None:
        return keras.Model(inputs, outputs, name=exp.name)
    found = user_code.find("models", exp.model.class_)
    if found is None:
        raise UserError(f"{exp.model.class_!r} is not imported: the preset's code is not allowed", "model.class")
    try:
        return found.cls(inputs=inputs, outputs=outputs, name=exp.name)
    except Exception as exc:  # noqa: BLE001 - the user's constructor: one line naming it and where
        raise user_code.constructor_error(found, exc, "model.class") from None


def apply_seed(train: TrainSpec) -> None:
    """Seed Python, NumPy and TensorFlow (`keras.utils.set_random_seed`) and, when asked, make ops deterministic.

    Op determinism (`train.deterministic`) is process-wide and cannot be switched off again; it
    makes some GPU ops slower and others raise, so it is opt-in.
    """
    import keras

    if train.seed is not None:
        keras.utils.set_random_seed(int(train.seed))
    if train.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


# -- the pieces a model with several inputs and outputs is built from (tfbench.io_graph) -------


def data_input(exp: Experiment, info: DataInfo) -> Any:
    """The `keras.Input` of a model with the data's one input (the override's shape, else the data's)."""
    import keras

    return keras.Input(shape=_input_shape(exp, info), dtype=_input_dtype(info), name=_INPUT_NAME)


def build_stack(
    nodes: list[Node] | tuple[Node, ...], x: Any, names: dict[str, str], load_weights: bool, float32: frozenset[str]
) -> tuple[Any, list[Any]]:
    """Build a parsed stack on tensor `x`: (its output, the built entries for `summary_rows`).

    Args:
        names: the Keras name of every node by path (`tfbench.blocks.layer_names`).
        load_weights: give backbones their pretrained weights.
        float32: the paths of the layers that compute in float32 under mixed precision.
    """
    return _apply_sequence(nodes, x, _Context(names, load_weights, float32))


def summary_rows(built: list[Any], index: int | None = None, depth: int = 0) -> list[LayerRow]:
    """The summary rows of entries built by `build_stack` (`index`: the row's own, else its place)."""
    rows: list[LayerRow] = []
    _rows(built, rows, index, depth)
    return rows


def weight_count(weights: list[Any]) -> int:
    """How many numbers `weights` hold, each variable counted once."""
    return _count(weights)


def sample_shape(tensor: Any) -> list[int | None]:
    """One sample's shape of a symbolic tensor (no batch axis)."""
    return _sample_shape(tensor)


def shape_text(shape: Any) -> str:
    """`(8, 8, 3)` as messages write a shape."""
    return _shape_text(shape)


def dtype_policy(name: str) -> Any:
    """A context in which Keras builds with the mixed-precision policy `name` (`off`: the current)."""
    return _Policy(name)


def keras_object(module: Any, value: str | dict, location: str) -> Any:
    """A loss or metric as Keras takes it (see `resolve_loss`): a name, or the object a component makes."""
    return _make(module, value, location)


# -- importing an existing model ----------------------------------------------------------------


def import_layers(path: str | Path) -> list[Component]:
    """The entries of a saved `.keras` model, as a preset writes them: layers, wrappers and blocks.

    A Sequential model or a Functional one that fits the model grammar (`tfbench.blocks`: chains,
    residual and parallel merges, self-attention, wrappers) becomes its stack; see
    `tfbench.keras_import.model_entries`.

    Raises:
        UserError: the file cannot be read or holds code, or a layer does not fit the grammar
            (named, with why).
    """
    from tfbench.keras_import import model_entries

    model, where = _load_for_import(Path(path))
    return model_entries(model, where)


def _load_for_import(path: Path) -> tuple[Any, str]:
    """A `.keras` file loaded with `safe_mode=True` (code is refused, never run), and its name."""
    import keras

    from tfbench.keras_archive import check_archive

    where = str(path)
    check_archive(path)  # cut short, not an archive, or declaring gigabytes: refused before Keras opens it
    try:
        model = keras.saving.load_model(where, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - every load failure is the user's file
        message = clean_message(exc)
        if "arbitrary code" in message or "safe_mode" in message:
            raise UserError(
                "the model contains Python code (a Lambda layer or custom object); "
                "tfbench never loads code from a model file",
                where,
            ) from None
        raise UserError(f"cannot load this model: {message}", where) from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError("only models with one input and one output can be imported", where)
    return model, where
