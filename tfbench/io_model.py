"""Several inputs and outputs: named inputs, their merge, the shared trunk and the heads — without TensorFlow.

A model written with `[[model.inputs]]` and/or `[[model.outputs]]` keeps the stack metaphor:

- each input, named like the data's array, has its own stack (none: the input itself);
- the inputs' ends meet in `model.merge` (any merge a Residual or Parallel block takes; default
  concatenate);
- `[[model.layers]]` is the shared trunk after the merge, exactly as a plain stack (may be empty);
- each output, named like the labels it predicts, is a head stack after the trunk with its own
  `loss`, `loss_weight` and `metrics` (default: `train.metrics`).

Without them a preset means what it always meant: one input, one stack, one output. `parse` turns
the written model into a `Graph` whose every node knows its place (`model.inputs[1].layers[0]`,
`model.outputs[0].layers[2]`), so errors name it; `output_view` gives the single-output
Experiment one head stands for, so every rule about losses, labels and last layers applies to each
head as it applies to a plain stack, its errors moved to the head's place by `relocated`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfbench import blocks
from tfbench.data.info import IONames
from tfbench.errors import UserError, close_matches

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tfbench.blocks import Node

# `tfbench.spec` calls `check` while it validates, so its types are not imported here (no import
# circle): an Experiment and a ModelSpec are spelled as these names.
Experiment = Any
ModelSpec = Any

DEFAULT_MERGE = "concatenate"
MERGE_PATH = "model.merge"  # the summary row (and error place) of the inputs' merge
DATA_INPUT = "input"  # the name of the data's one input when the model names none (as tfbench.build)
_TRUNK_AT = re.compile(r"^model\.layers\[(\d+)\]")


@dataclass(frozen=True)
class InputPart:
    """One named input and its own stack.

    Attributes:
        name: the input's name (its data array, its Keras `Input` layer).
        index: its place in `model.inputs`.
        nodes: its stack, parsed (paths `model.inputs[i].layers[k]`).
        shape: the written shape override, or None (the data's).
    """

    name: str
    index: int
    nodes: tuple[Node, ...]
    shape: tuple[int, ...] | None = None

    @property
    def path(self) -> str:
        return f"model.inputs[{self.index}]"


@dataclass(frozen=True)
class OutputPart:
    """One named output: its head stack, loss, loss weight and metrics.

    Attributes:
        name: the output's name (its labels' array or column; the key of Keras' logs).
        index: its place in `model.outputs`.
        nodes: its head stack, parsed (paths `model.outputs[j].layers[k]`).
        loss: the loss as written (`"auto"`, a name or a Component).
        loss_weight: its weight in the total loss.
        metrics: its own metrics, or None (`train.metrics`).
    """

    name: str
    index: int
    nodes: tuple[Node, ...]
    loss: Any = "auto"
    loss_weight: float = 1.0
    metrics: tuple[Any, ...] | None = None

    @property
    def path(self) -> str:
        return f"model.outputs[{self.index}]"


@dataclass(frozen=True)
class Graph:
    """A model with several inputs or outputs, as written; no input part: the data's one input,
    no output part: the trunk's end is the one output."""

    inputs: tuple[InputPart, ...]
    merge: str
    trunk: tuple[Node, ...]
    outputs: tuple[OutputPart, ...]

    def nodes(self) -> list[Node]:
        """Every stack's nodes in build order: the inputs' stacks, the trunk, the heads."""
        found = [node for part in self.inputs for node in part.nodes]
        found += list(self.trunk)
        return found + [node for part in self.outputs for node in part.nodes]


def has_several(model: ModelSpec) -> bool:
    """Whether the model is written with named inputs or outputs (`tfbench.io_model`'s form)."""
    return model.inputs is not None or model.outputs is not None


def several_outputs(exp: Experiment) -> bool:
    """Whether the model has named outputs: losses, metrics and labels are per output."""
    return exp.model.outputs is not None


def parse(model: ModelSpec) -> Graph:
    """The written model as a checked `Graph`.

    Raises:
        UserError: at its place (`model.inputs[1].layers[0].units`, `model.merge`, `model.outputs[0].name`).
    """
    inputs = tuple(
        InputPart(
            spec.name,
            i,
            tuple(blocks.parse_stack(spec.layers, f"model.inputs[{i}].layers")),
            tuple(spec.shape) if spec.shape else None,
        )
        for i, spec in enumerate(model.inputs or [])
    )
    trunk = tuple(blocks.parse_stack(model.layers))
    outputs = tuple(
        OutputPart(
            spec.name,
            j,
            tuple(blocks.parse_stack(spec.layers, f"model.outputs[{j}].layers")),
            spec.loss,
            spec.loss_weight,
            tuple(spec.metrics) if spec.metrics is not None else None,
        )
        for j, spec in enumerate(model.outputs or [])
    )
    graph = Graph(inputs, model.merge or DEFAULT_MERGE, trunk, outputs)
    _check_shape(model, graph)
    return graph


def _check_shape(model: ModelSpec, graph: Graph) -> None:
    """Lists that are there hold something, names are unique, the merge fits, the model has an end."""
    for key, parts in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        if getattr(model, key) is not None and not parts:
            raise UserError(f"list at least one {key[:-1]}, or leave model.{key} out", f"model.{key}")
    seen: dict[str, str] = {}
    named: list[InputPart | OutputPart] = [*graph.inputs, *graph.outputs]
    for part in named:
        _check_name(part.name, f"{part.path}.name")
        if part.name in seen:
            raise UserError(
                f"the name {part.name!r} is taken by {seen[part.name]}; inputs and outputs need names of their own",
                f"{part.path}.name",
            )
        seen[part.name] = part.path
    if model.input_shape is not None and graph.inputs:
        raise UserError(
            "model.input_shape is for a model with one input; give each input its own shape",
            "model.input_shape",
            "shape = [...] in its [[model.inputs]] entry",
        )
    if model.merge is not None:
        _check_merge(graph)
    if not graph.outputs and not graph.trunk:
        raise UserError(
            "the model's output comes from the trunk, which has no layers",
            "model.layers",
            "add layers after the merge, or heads as [[model.outputs]]",
        )


def _check_name(name: str, location: str) -> None:
    if not name.strip() or name != name.strip() or "/" in name:
        raise UserError(f"{name!r} cannot name an input or output: use letters, digits and '_'", location)


def _check_merge(graph: Graph) -> None:
    merge = graph.merge
    if merge not in blocks.MERGES:
        hint = close_matches(str(merge), list(blocks.MERGES)) or "one of " + ", ".join(blocks.MERGES)
        raise UserError(f"{merge!r} is not a merge", "model.merge", hint)
    if len(graph.inputs) < 2:
        raise UserError(
            f"model.merge joins several inputs, and this model has {len(graph.inputs)}",
            "model.merge",
            "leave it out, or add [[model.inputs]] entries",
        )
    if merge == "subtract" and len(graph.inputs) != 2:
        raise UserError("subtract merges exactly two inputs", "model.merge")


def check(exp: Experiment) -> None:
    """Check a model with several inputs or outputs: its stacks, names, merge, losses and metrics.

    A model without `model.inputs`/`model.outputs` passes untouched.

    Raises:
        UserError: located at the offending entry (`model.outputs[0].loss`, `train.loss`, …).
    """
    from tfbench import catalog

    if not has_several(exp.model):
        return
    graph = parse(exp.model)
    layer_names(graph)  # names given twice
    if not graph.outputs:
        return
    if not (isinstance(exp.train.loss, str) and exp.train.loss == "auto"):
        raise UserError(
            "each output has its own loss; train.loss is for a model with one output",
            "train.loss",
            "set loss in each [[model.outputs]] entry and leave train.loss out",
        )
    if exp.train.class_weight is not None:
        raise UserError(
            "class weights apply to a model with one output; Keras takes none for several",
            "train.class_weight",
            "leave it out, or weigh the outputs with loss_weight",
        )
    for part in graph.outputs:
        _check_loss_or_metric(catalog, "losses", part.loss, f"{part.path}.loss")
        for i, metric in enumerate(part.metrics or ()):
            _check_loss_or_metric(catalog, "metrics", metric, f"{part.path}.metrics[{i}]")


def _check_loss_or_metric(catalog: Any, kind: str, value: Any, location: str) -> None:
    if isinstance(value, str):
        if value != "auto":
            catalog.check_identifier(kind, value, location)
        return
    catalog.check_component(kind, value.type, value.args, location)


def layer_names(graph: Graph) -> dict[str, str]:
    """A Keras name for every node, by path, unique across the whole model.

    The inputs take their own names; each head's last layer takes its output's name (as the Keras
    guide names them) unless the preset names it; the rest are named as a fresh Keras session
    would count them, in build order.

    Raises:
        UserError: at `PATH.name` when a name is given twice.
    """
    heads = {part.nodes[-1].path: part.name for part in graph.outputs if part.nodes}
    unnamed = {path: name for path, name in heads.items() if not _given_name(graph, path)}
    taken = {part.name for part in graph.inputs} or {DATA_INPUT}
    taken |= set(unnamed.values())
    ordered = [node for part in graph.inputs for node in part.nodes]
    if len(graph.inputs) > 1:  # the merge layer is made after the inputs' stacks, before the trunk
        ordered.append(blocks.Node("Parallel", "block", MERGE_PATH, {"merge": graph.merge}))
    ordered += list(graph.trunk) + [node for part in graph.outputs for node in part.nodes]
    names = blocks.layer_names(ordered, taken)
    names.update(unnamed)
    return names


def _given_name(graph: Graph, path: str) -> bool:
    return any(node.path == path and isinstance(node.args.get("name"), str) for node in graph.nodes())


def data_names(exp: Experiment) -> IONames | None:
    """The named arrays the data must give the model: its inputs' and outputs' names (None: the usual x and y)."""
    model = exp.model
    if not has_several(model):
        return None
    return IONames(
        tuple(part.name for part in model.inputs or ()),
        tuple(part.name for part in model.outputs or ()),
    )


def output_view(exp: Experiment, part: OutputPart) -> Experiment:
    """The single-output Experiment one head stands for: its stack (the trunk's, when the head has
    none), its loss and its metrics — so the rules of a plain stack apply to it (`relocated` moves
    their errors to the head's place)."""
    written = exp.model.outputs[part.index]
    layers = written.layers or exp.model.layers
    model = exp.model.model_copy(update={"layers": layers, "inputs": None, "outputs": None, "merge": None})
    metrics = list(part.metrics) if part.metrics is not None else exp.train.metrics
    train = exp.train.model_copy(update={"loss": part.loss, "metrics": metrics})
    return exp.model_copy(update={"model": model, "train": train})


def relocated(err: UserError, exp: Experiment, part: OutputPart) -> UserError:
    """An error about `output_view`'s Experiment, located in the written model instead."""
    location = err.location or ""
    if location.startswith("train.loss"):
        location = part.path + ".loss" + location[len("train.loss") :]
    elif location.startswith("train.metrics") and part.metrics is not None:
        location = part.path + ".metrics" + location[len("train.metrics") :]
    elif exp.model.outputs[part.index].layers:
        location = _TRUNK_AT.sub(lambda m: f"{part.path}.layers[{m.group(1)}]", location)
    if location == (err.location or ""):
        return err
    return UserError(err.message, location, err.hint)
