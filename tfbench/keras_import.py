"""A loaded Keras model → stack entries (layers, wrappers, blocks), for the builder's "Import layers" — without a UI.

`tfbench.build.import_layers` loads the file with `safe_mode=True` (a model containing code is
refused by Keras, never run) and hands the model here. The graph is read back from the output to
the input: a merge layer (`Add`,
`Concatenate`, …) closes a block whose paths start at the latest tensor they all come from
(a `Residual` for two paths, a `Parallel` for a concatenation or three and more), an attention
layer called on one tensor is self-attention, and `Bidirectional`/`TimeDistributed` keep their
inner layer. Each layer becomes its class name plus the catalog's arguments whose values differ
from their defaults; names and dtypes are left out, and so are settings a preset cannot write
(an initializer object with non-default settings), which then take defaults. Anything else — a
nested model, a layer called twice, a tensor used across a block's boundary — is refused with
the layer's name and why.

Keras is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfbench.errors import UserError

if TYPE_CHECKING:
    from tfbench.spec import Component


def _is_default(value: Any, default: Any) -> bool:
    """Whether a layer's config value is its constructor default (Keras stores tuples and "linear")."""
    if value == default or (value == "linear" and default is None):
        return True
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    if isinstance(value, (list, tuple)) and isinstance(default, int) and value:
        return all(v == default for v in value)
    return False


def _plain_object(value: dict) -> str | None:
    """A serialised Keras object (initializer, regularizer, constraint) as its class name, when the
    class name alone rebuilds it; None when its settings differ from the class's defaults."""
    import keras

    name = value.get("class_name")
    if not isinstance(name, str):
        return None
    for module in (keras.initializers, keras.regularizers, keras.constraints):
        cls = getattr(module, name, None)
        if not isinstance(cls, type):
            continue
        try:
            default_config = cls().get_config()
        except (TypeError, ValueError):
            return None
        return name if default_config == (value.get("config") or {}) else None
    return None


def _import_value(value: Any) -> Any:
    """A layer config value as a preset writes it, or `_UNSET` when a preset cannot express it."""
    if isinstance(value, dict):
        if "class_name" in value:
            if value.get("class_name") == "DTypePolicy":
                return _UNSET
            plain = _plain_object(value)
            return plain if plain is not None else _UNSET
        return _UNSET
    if isinstance(value, tuple):
        return [_import_value(v) for v in value]
    return value


_UNSET = object()


def _serialised_default(value: Any, default: Any) -> bool:
    """Whether a serialised Keras object is what the default's name (`"glorot_uniform"`) gives."""
    import keras

    if not (isinstance(value, dict) and isinstance(default, str)):
        return False
    for getter in (keras.initializers.get, keras.regularizers.get, keras.constraints.get):
        try:
            obj = getter(default)
        except (ValueError, TypeError):
            continue
        if obj is not None and keras.saving.serialize_keras_object(obj) == value:
            return True
    return False


@dataclass
class _Graph:
    """The loaded model's tensors: who makes each one, and in what order."""

    model: Any
    producer: dict[int, Any]  # id(tensor) -> the layer whose output it is
    order: dict[int, int]  # id(tensor) -> its producer's position (the input: -1)
    where: str
    seen: set[int]


def model_entries(model: Any, where: str) -> list[Component]:
    """The stack of a loaded Sequential or Functional model (see the module docstring).

    Args:
        model: a `keras.Model` with one input and one output, loaded with `safe_mode=True`.
        where: the file it came from, for errors.

    Returns:
        The entries as components, first to last (nested entries as plain tables).

    Raises:
        UserError: at the file, naming the layer that does not fit and why.
    """
    import keras

    from tfbench.spec import Component

    if isinstance(model, keras.Sequential):  # a plain stack: its layers in order
        graph = _Graph(model, {}, {}, where, set())
        for layer in _layers(model):
            _refuse_nested(layer, where)
        return [Component(**_entry(graph, layer)) for layer in _layers(model)]
    graph = _graph(model, where)
    entries = _chain(graph, model.inputs[0], model.outputs[0])
    missing = [layer.name for layer in _layers(model) if id(layer) not in graph.seen]
    if missing:
        raise UserError(
            f"layer {missing[0]} does not lead to the model's output along the stack; "
            "only models whose every layer sits in one stack of blocks can be imported",
            where,
        )
    return [Component(**entry) for entry in entries]


def _layers(model: Any) -> list:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _graph(model: Any, where: str) -> _Graph:

    producer: dict[int, Any] = {}
    order: dict[int, int] = {id(model.inputs[0]): -1}
    for i, layer in enumerate(_layers(model)):
        _refuse_nested(layer, where)
        if len(getattr(layer, "_inbound_nodes", None) or []) > 1:  # Keras keeps one node per call
            raise UserError(
                f"layer {layer.name} is called more than once (shared weights), which a stack cannot express", where
            )
        outputs = layer.output
        for tensor in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            producer[id(tensor)] = layer
            order[id(tensor)] = i
    return _Graph(model, producer, order, where, set())


def _refuse_nested(layer: Any, where: str) -> None:
    import keras

    if isinstance(layer, keras.Model):
        raise UserError(
            f"layer {layer.name} is a nested model; write a keras.applications backbone as its "
            'own entry (e.g. type = "MobileNetV2") instead',
            where,
        )


def _inputs_of(layer: Any) -> list:
    inputs = layer.input
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _chain(graph: _Graph, start: Any, end: Any) -> list[dict]:
    """The entries that lead from tensor `start` to tensor `end`, read backwards from `end`."""
    import keras

    entries: list[dict] = []
    tensor = end
    while tensor is not start:
        layer = graph.producer.get(id(tensor))
        if layer is None:
            raise UserError(
                "a path reaches the model's input without passing through its block's start; "
                "only stacks of blocks can be imported",
                graph.where,
            )
        if id(layer) in graph.seen:
            raise UserError(
                f"layer {layer.name} feeds several places, which a stack of blocks cannot express", graph.where
            )
        graph.seen.add(id(layer))
        inputs = _inputs_of(layer)
        if isinstance(layer, keras.layers.Layer) and _is_merge(layer):
            fork = _fork(graph, inputs, start, layer)
            entries.insert(0, _block(graph, layer, [_chain(graph, fork, t) for t in inputs]))
            tensor = fork
            continue
        if len({id(t) for t in inputs}) != 1:
            raise UserError(
                f"layer {layer.name} ({type(layer).__name__}) takes several different inputs, "
                "which a stack cannot express",
                graph.where,
            )
        entries.insert(0, _entry(graph, layer))
        tensor = inputs[0]
    return entries


def _is_merge(layer: Any) -> bool:
    from tfbench import blocks

    return type(layer).__name__ in blocks.MERGES.values()


def _ancestors(graph: _Graph, tensor: Any) -> dict[int, Any]:
    found: dict[int, Any] = {}
    todo = [tensor]
    while todo:
        t = todo.pop()
        if id(t) in found:
            continue
        found[id(t)] = t
        layer = graph.producer.get(id(t))
        if layer is not None:
            todo.extend(_inputs_of(layer))
    return found


def _fork(graph: _Graph, inputs: list, start: Any, merge: Any) -> Any:
    """The latest tensor every path into a merge comes from: the block's input."""
    common = _ancestors(graph, inputs[0])
    for tensor in inputs[1:]:
        theirs = _ancestors(graph, tensor)
        common = {k: v for k, v in common.items() if k in theirs}
    fork = max(common.values(), key=lambda t: graph.order.get(id(t), -1))
    if graph.order.get(id(fork), -1) < graph.order.get(id(start), -1):
        raise UserError(
            f"layer {merge.name} ({type(merge).__name__}) merges a tensor from before its "
            "block begins, which a stack of blocks cannot express",
            graph.where,
        )
    return fork


def _block(graph: _Graph, merge: Any, paths: list[list[dict]]) -> dict:
    from tfbench import blocks

    merge_name = next(k for k, v in blocks.MERGES.items() if v == type(merge).__name__)
    if merge_name == "concatenate" and merge.get_config().get("axis", -1) != -1:
        raise UserError(
            f"layer {merge.name} concatenates on axis {merge.get_config()['axis']}; blocks "
            "concatenate on the last axis",
            graph.where,
        )
    commutative = merge_name not in ("concatenate", "subtract")
    if len(paths) == 2 and merge_name != "concatenate" and (paths[0] or commutative):
        main, shortcut = (paths[1], paths[0]) if not paths[0] else (paths[0], paths[1])
        entry: dict[str, Any] = {"type": "Residual", "layers": main}
        if shortcut:
            entry["shortcut"] = shortcut
        if merge_name != "add":
            entry["merge"] = merge_name
        return entry
    entry = {"type": "Parallel", "branches": paths}
    if merge_name != "concatenate":
        entry["merge"] = merge_name
    return entry


def _entry(graph: _Graph, layer: Any) -> dict:
    """A single-input layer as a table: a wrapper with its inner layer, an attention layer, a layer."""
    import keras

    from tfbench import blocks

    name = type(layer).__name__
    if isinstance(layer, keras.layers.Bidirectional):
        entry: dict[str, Any] = {"type": name, "layer": _entry(graph, layer.forward_layer)}
        entry["layer"].pop("go_backwards", None)
        if layer.merge_mode != "concat":
            entry["merge_mode"] = layer.merge_mode
        return entry
    if isinstance(layer, keras.layers.TimeDistributed):
        return {"type": name, "layer": _entry(graph, layer.layer)}
    if name in blocks.ATTENTION and getattr(keras.layers, name, None) is type(layer):
        entry = {"type": name, **_attention_args(layer, blocks.ATTENTION[name])}
        if _call_kwargs(layer).get("use_causal_mask"):
            entry["use_causal_mask"] = True
        return entry
    return {"type": name, **_layer_args(graph, layer)}


def _call_kwargs(layer: Any) -> dict:
    """The keyword arguments a layer was called with (Keras keeps them on its inbound node)."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    arguments = getattr(nodes[0], "arguments", None) if nodes else None
    return dict(getattr(arguments, "kwargs", None) or {})


def _attention_args(layer: Any, table) -> dict:
    config = layer.get_config()
    args = {}
    for key, _kind, default in table:
        value = config.get(key, default)
        if default is ... or not (_is_default(value, default) or _serialised_default(value, default)):
            value = _import_value(value)
            if value is not _UNSET and value is not None:
                args[key] = value
    return args


def _layer_args(graph: _Graph, layer: Any) -> dict:
    import keras

    from tfbench import catalog

    cls_name = type(layer).__name__
    entry = catalog.get("layers", cls_name)
    if entry is None or getattr(keras.layers, cls_name, None) is not type(layer):
        raise UserError(f"layer {layer.name} is a {cls_name}, which tfbench does not offer", graph.where)
    config = layer.get_config()
    args: dict[str, Any] = {}
    for key, param in entry.params.items():
        if key == "name" or key not in config:
            continue
        value = config[key]
        if not param.required and (
            _is_default(value, param.default)
            or _serialised_default(value, param.default)
            # data_format=None means the global image format, which Keras writes out.
            or (key == "data_format" and param.default is None and value == keras.config.image_data_format())
        ):
            continue
        value = _import_value(value)
        if value is _UNSET or (value is None and not param.required):
            continue
        try:
            catalog.check_value(param, value, f"{layer.name}.{key}")
        except UserError:
            continue  # a value a preset cannot hold: the argument keeps its default
        args[key] = value
    return args
