"""The model grammar: a stack whose entries may be wrappers, blocks, attention or backbones — without TensorFlow.

An entry of `model.layers` is one of
- a Keras layer by class name (checked against the catalog);
- a wrapper, `Bidirectional` or `TimeDistributed`, with its inner layer under Keras' own argument
  name: `layer = { type = "LSTM", units = 64 }`;
- an attention layer (`MultiHeadAttention`, `Attention`, …), which in a stack attends to itself
  (query = key = value = the incoming tensor);
- a `Residual` block: `x -> merge([layers(x), shortcut(x)])`, the shortcut being x itself unless
  given;
- a `Parallel` block: `x -> merge([branch(x) for each branch])`, an empty branch being x itself;
- a `keras.applications` backbone by class name (see `tfbench.backbones`).

Blocks nest. `parse_stack` turns the written entries into a tree of `Node`s, each knowing where it
is written (`model.layers[4].branches[1][0]`), so every error names its place; layers that would
run code (`Lambda`, `TFSMLayer`) are refused wherever they sit, by the catalog's own rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tfbench import backbones
from tfbench.errors import UserError, close_matches

# Merge names → the Keras merge layer that joins a block's paths.
MERGES = {
    "add": "Add",
    "concatenate": "Concatenate",
    "multiply": "Multiply",
    "average": "Average",
    "maximum": "Maximum",
    "minimum": "Minimum",
    "subtract": "Subtract",
}
BLOCKS = {
    "Residual": {"layers": "list", "shortcut": "list", "merge": "merge", "name": "str"},
    "Parallel": {"branches": "list", "merge": "merge", "name": "str"},
}
DEFAULT_MERGE = {"Residual": "add", "Parallel": "concatenate"}
RNN_LAYERS = {"LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
_BASE_ARGS = (("name", "str", None), ("trainable", "bool", True))
WRAPPERS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "Bidirectional": (("merge_mode", "choice", "concat"),) + _BASE_ARGS,
    "TimeDistributed": _BASE_ARGS,
}
_CHOICES = {"merge_mode": ("concat", "sum", "mul", "ave"), "score_mode": ("dot", "concat")}
_ATTENTION_COMMON = (
    ("dropout", "float", 0.0),
    ("use_bias", "bool", True),
    ("flash_attention", "bool", None),
    ("kernel_initializer", "str", "glorot_uniform"),
    ("bias_initializer", "str", "zeros"),
    ("kernel_regularizer", "str", None),
    ("bias_regularizer", "str", None),
    ("activity_regularizer", "str", None),
    ("kernel_constraint", "str", None),
    ("bias_constraint", "str", None),
    ("use_gate", "bool", False),
    ("seed", "int", None),
)
# Attention layers and their arguments; `use_causal_mask` is passed to the call, not the constructor.
ATTENTION: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "MultiHeadAttention": (
        ("num_heads", "int", ...),
        ("key_dim", "int", ...),
        ("value_dim", "int", None),
        ("output_shape", "int_or_tuple", None),
        ("attention_axes", "int_or_tuple", None),
    )
    + _ATTENTION_COMMON,
    "GroupQueryAttention": (
        ("head_dim", "int", ...),
        ("num_query_heads", "int", ...),
        ("num_key_value_heads", "int", ...),
    )
    + _ATTENTION_COMMON,
    "Attention": (
        ("use_scale", "bool", False),
        ("score_mode", "choice", "dot"),
        ("dropout", "float", 0.0),
        ("seed", "int", None),
    ),
    "AdditiveAttention": (("use_scale", "bool", True), ("dropout", "float", 0.0)),
}
CALL_ARGS = {"use_causal_mask"}
LIST_INPUT_ATTENTION = {"Attention", "AdditiveAttention"}  # called as layer([query, value])


@dataclass(frozen=True)
class Node:
    """One entry of the model tree, as written, with its place.

    Attributes:
        type: the class name as written (`Conv2D`, `Residual`, `MobileNetV2`…).
        kind: `layer`, `wrapper`, `block` or `backbone` (attention layers are `layer`s).
        path: where it is written (`model.layers[4].branches[1][0]`).
        args: its own arguments (constructor arguments; for a block `merge` and `name`), without
            the nested entries.
        inner: a wrapper's inner layer.
        layers: a Residual block's main path.
        shortcut: a Residual block's shortcut (empty: x itself).
        branches: a Parallel block's branches (an empty branch: x itself).
    """

    type: str
    kind: str
    path: str
    args: dict[str, Any] = field(default_factory=dict)
    inner: Node | None = None
    layers: tuple[Node, ...] = ()
    shortcut: tuple[Node, ...] = ()
    branches: tuple[tuple[Node, ...], ...] = ()

    @property
    def merge(self) -> str:
        """A block's merge name (`add`, `concatenate`, …)."""
        return self.args.get("merge", DEFAULT_MERGE.get(self.type, "add"))

    @property
    def is_attention(self) -> bool:
        """Whether the layer attends to itself (called with the same tensor as query and value)."""
        return self.type in ATTENTION

    def children(self) -> Iterator[Node]:
        """The nested nodes, in the order they are written."""
        if self.inner is not None:
            yield self.inner
        yield from self.layers
        yield from self.shortcut
        for branch in self.branches:
            yield from branch


def kind_of(type_name: Any) -> str:
    """Which kind of entry a type name is: `block`, `wrapper`, `backbone` or `layer`."""
    if type_name in BLOCKS:
        return "block"
    if type_name in WRAPPERS:
        return "wrapper"
    if backbones.is_backbone(type_name):
        return "backbone"
    return "layer"


def walk(nodes: tuple[Node, ...] | list[Node], depth: int = 0) -> Iterator[tuple[Node, int]]:
    """Every node of the tree, depth first, a node before its children, with its depth."""
    for node in nodes:
        yield node, depth
        yield from walk(list(node.children()), depth + 1)


def has_blocks(nodes: list[Node]) -> bool:
    """Whether the model is more than a plain stack of layers (the Functional API is needed)."""
    return any(node.kind != "layer" or node.is_attention for node, _ in walk(nodes))


# -- parsing and checking ---------------------------------------------------------------------


def parse_stack(entries: list, base: str = "model.layers") -> list[Node]:
    """The written stack (`Component`s or plain tables) as a checked tree of nodes.

    Raises:
        UserError: the first problem, at its place (`model.layers[4].branches[1][0].filters`).
    """
    return [parse_entry(entry, f"{base}[{i}]") for i, entry in enumerate(entries)]


def parse_entry(entry: Any, path: str) -> Node:
    """One written entry (a `Component` or a plain table) as a checked node.

    Raises:
        UserError: at `path` or below it, saying what is wrong and what to write.
    """
    type_name, args = _type_and_args(entry, path)
    kind = kind_of(type_name)
    if kind == "block":
        return _parse_block(type_name, args, path)
    if kind == "wrapper":
        return _parse_wrapper(type_name, args, path)
    if kind == "backbone":
        backbones.check(type_name, args, path)
        return Node(type_name, "backbone", path, args)
    if type_name in ATTENTION:
        _check_args(type_name, ATTENTION[type_name] + _BASE_ARGS + (("use_causal_mask", "bool", False),), args, path)
        return Node(type_name, "layer", path, args)
    from tfbench import catalog

    catalog.check_component("layers", type_name, args, path)
    return Node(type_name, "layer", path, args)


def _type_and_args(entry: Any, path: str) -> tuple[str, dict[str, Any]]:
    if hasattr(entry, "type") and hasattr(entry, "args"):  # a spec Component
        return entry.type, dict(entry.args)
    if not isinstance(entry, dict):
        raise UserError(f'expected a layer table such as {{ type = "Dense", units = 8 }}, got {entry!r}', path)
    type_name = entry.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise UserError("this layer needs a type (a Keras class name, a block or a backbone)", f"{path}.type")
    return type_name, {k: v for k, v in entry.items() if k != "type"}


def _parse_block(type_name: str, args: dict[str, Any], path: str) -> Node:
    keys = BLOCKS[type_name]
    for key in args:
        if key not in keys:
            hint = close_matches(key, list(keys)) or "valid: " + ", ".join(keys)
            raise UserError(f"{type_name} has no key {key!r}", f"{path}.{key}", hint)
    merge = args.get("merge", DEFAULT_MERGE[type_name])
    if merge not in MERGES:
        hint = close_matches(str(merge), list(MERGES)) or "one of " + ", ".join(MERGES)
        raise UserError(f"{merge!r} is not a merge", f"{path}.merge", hint)
    if "name" in args and not isinstance(args["name"], str):
        raise UserError(f"expected a string, got {args['name']!r}", f"{path}.name")
    own = {k: v for k, v in args.items() if k in ("merge", "name")}
    if type_name == "Residual":
        if "layers" not in args:
            raise UserError(
                "Residual needs 'layers' (its main path)", path, 'layers = [ { type = "Dense", units = 8 } ]'
            )
        layers = _parse_list(args["layers"], f"{path}.layers", allow_empty=False)
        shortcut = _parse_list(args.get("shortcut", []), f"{path}.shortcut", allow_empty=True)
        return Node(type_name, "block", path, own, layers=layers, shortcut=shortcut)
    if "branches" not in args:
        raise UserError(
            "Parallel needs 'branches' (a list of layer lists)",
            path,
            'branches = [ [ { type = "Dense", units = 8 } ], [] ]',
        )
    raw = args["branches"]
    if not isinstance(raw, list) or len(raw) < 2:
        raise UserError("expected a list of at least two branches, each a list of layers", f"{path}.branches")
    branches = tuple(_parse_list(b, f"{path}.branches[{i}]", allow_empty=True) for i, b in enumerate(raw))
    if merge == "subtract" and len(branches) != 2:
        raise UserError("subtract merges exactly two branches", f"{path}.merge")
    return Node(type_name, "block", path, own, branches=branches)


def _parse_list(value: Any, path: str, allow_empty: bool) -> tuple[Node, ...]:
    if not isinstance(value, list):
        raise UserError('expected a list of layers, e.g. [ { type = "Dense", units = 8 } ]', path)
    if not value and not allow_empty:
        raise UserError("expected at least one layer", path)
    return tuple(parse_entry(item, f"{path}[{i}]") for i, item in enumerate(value))


def _parse_wrapper(type_name: str, args: dict[str, Any], path: str) -> Node:
    if "layer" not in args:
        example = "LSTM" if type_name == "Bidirectional" else "Dense"
        raise UserError(f"{type_name} needs its inner 'layer'", path, f'layer = {{ type = "{example}", units = 16 }}')
    inner = parse_entry(args["layer"], f"{path}.layer")
    if inner.kind != "layer" or inner.is_attention:
        what = "an attention layer" if inner.is_attention else f"a {inner.kind}"
        raise UserError(f"{type_name} wraps one plain Keras layer, not {what}", f"{path}.layer.type")
    if type_name == "Bidirectional" and inner.type not in RNN_LAYERS:
        raise UserError(
            f"Bidirectional wraps a recurrent layer, not {inner.type}",
            f"{path}.layer.type",
            "use one of " + ", ".join(sorted(RNN_LAYERS)),
        )
    own = {k: v for k, v in args.items() if k != "layer"}
    _check_args(type_name, WRAPPERS[type_name], own, path)
    return Node(type_name, "wrapper", path, own, inner=inner)


def _check_args(type_name: str, table: tuple[tuple[str, str, Any], ...], args: dict[str, Any], path: str) -> None:
    """Check arguments against a (name, kind, default) table; `...` as default means required."""
    from tfbench import catalog

    accepted = {name: (kind, default) for name, kind, default in table}
    for key, value in args.items():
        if key not in accepted:
            hint = close_matches(key, list(accepted)) or "valid: " + ", ".join(accepted)
            raise UserError(f"{type_name} has no argument {key!r}", f"{path}.{key}", hint)
        kind, default = accepted[key]
        param = catalog.Param(
            name=key,
            kind=kind,
            default=None if default is ... else default,
            required=default is ...,
            choices=_CHOICES.get(key, ()),
        )
        catalog.check_value(param, value, f"{path}.{key}")
    missing = [name for name, (_, default) in accepted.items() if default is ... and name not in args]
    if missing:
        raise UserError(
            f"{type_name} needs {missing[0]!r}" + (f" (also: {', '.join(missing[1:])})" if missing[1:] else ""), path
        )


# -- names ------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """Keras' automatic layer-name stem for a class name (`MaxPooling2D` → `max_pooling2d`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def name_stem(node: Node) -> str:
    """The stem a node's Keras name starts from: a block is named after its merge layer."""
    if node.kind == "block":
        return snake_case(MERGES[node.merge])
    return snake_case(node.type)


def layer_names(nodes: list[Node], taken: set[str] | None = None) -> dict[str, str]:
    """A Keras name for every node, by path: users' names kept, others as a fresh Keras session
    would count them (`dense`, `dense_1`), depth first in written order.

    Raises:
        UserError: at `PATH.name` when a user's name is given twice.
    """
    taken = set(taken or ())
    for node, _ in walk(nodes):
        given = node.args.get("name")
        if isinstance(given, str):
            if given in taken:
                raise UserError(f"the name {given!r} is already taken; layer names must be unique", f"{node.path}.name")
            taken.add(given)
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for node, _ in walk(nodes):
        given = node.args.get("name")
        if isinstance(given, str):
            names[node.path] = given
            continue
        stem = name_stem(node)
        while True:
            n = counts.get(stem, 0)
            counts[stem] = n + 1
            candidate = stem if n == 0 else f"{stem}_{n}"
            if candidate not in taken:
                break
        taken.add(candidate)
        names[node.path] = candidate
    return names
