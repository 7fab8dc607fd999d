"""A model with several inputs or outputs → a Functional Keras model, its summary and its compile.

The graph is the one `tfbench.io_model` parses: each named input (`keras.Input(name=…)`) through
its own stack, the inputs' ends merged (`model.merge`), the shared trunk, and a head per named
output. The model takes a dict of inputs and gives a dict of outputs keyed by their names, as the
Keras Functional API guide writes its ticket model, so Keras' logs name each output's loss and
metrics (`priority_loss`, `val_department_accuracy`) and the `.keras` file loads in plain Keras.
Each head's last layer is named after its output, unless the preset names it.

Each head is checked and compiled by the rules of a plain stack (`tfbench.build`), applied to the
single-output Experiment it stands for (`io_model.output_view`), with errors at the head's place.
Importing this module does not import TensorFlow; Keras is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tfbench import blocks, build, io_model
from tfbench.data.feature_space import raw_columns_model
from tfbench.data.labels import loss_family
from tfbench.data.labels import needs_one_hot as labels_need_one_hot
from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

    from tfbench.data.info import DataInfo
    from tfbench.io_model import Graph, OutputPart
    from tfbench.spec import Experiment


@dataclass
class _Part:
    """One named input or output as built: its tensor and its stack's built entries."""

    name: str
    path: str
    index: int
    tensor: Any
    built: list = field(default_factory=list)


@dataclass
class _Built:
    """The whole graph as built, for the model and its summary."""

    inputs: dict[str, Any]
    input_parts: list[_Part]
    merge: Any  # the merge layer, None with one input
    merged: Any
    trunk: list
    trunk_out: Any
    outputs: list[_Part]


def float32_paths(exp: Experiment, graph: Graph) -> frozenset[str]:
    """Under mixed precision, each output's last layer computes in float32 (a stable loss)."""
    if exp.train.mixed_precision == "off":
        return frozenset()
    ends = [part.nodes[-1] for part in graph.outputs if part.nodes]
    if len(ends) < len(graph.outputs) or not graph.outputs:
        ends += list(graph.trunk[-1:])
    return frozenset(node.path for node in ends if node.kind == "layer" and "dtype" not in node.args)


def _inputs(exp: Experiment, info: DataInfo, graph: Graph) -> dict[str, Any]:
    """A `keras.Input` per named input (the written shape, else the data's), or the data's one input."""
    import keras

    if not graph.inputs:
        return {io_model.DATA_INPUT: build.data_input(exp, info)}
    tensors = {}
    for part in graph.inputs:
        known = info.inputs.get(part.name)
        if known is None:
            raise UserError(f"the data has no input named {part.name!r}", f"{part.path}.name")
        shape = part.shape or known.shape
        tensors[part.name] = keras.Input(shape=tuple(shape), dtype=known.dtype, name=part.name)
    return tensors


def _merge(graph: Graph, names: dict[str, str], ends: list[_Part]) -> tuple[Any, Any]:
    """(merge layer, merged tensor) of the inputs' ends; one input: (None, its end)."""
    import keras

    if len(ends) == 1:
        return None, ends[0].tensor
    layer = getattr(keras.layers, blocks.MERGES[graph.merge])(name=names[io_model.MERGE_PATH])
    try:
        return layer, layer([part.tensor for part in ends])
    except Exception:  # noqa: BLE001 - Keras' shape refusals come as several types
        shapes = ", ".join(f"{part.name} gives {build.shape_text(tuple(part.tensor.shape)[1:])}" for part in ends)
        hint = (
            "the inputs' ends must agree on every axis but the last"
            if graph.merge == "concatenate"
            else "give the inputs' stacks the same output shape"
        )
        raise UserError(f"cannot {graph.merge} the inputs: {shapes}", "model.merge", hint) from None


def _graph(exp: Experiment, info: DataInfo, load_weights: bool) -> _Built:
    """Build every stack on its input, depth first in build order."""
    graph = io_model.parse(exp.model)
    names = io_model.layer_names(graph)
    float32 = float32_paths(exp, graph)
    tensors = _inputs(exp, info, graph)
    ends = []
    for part in graph.inputs:
        out, built = build.build_stack(part.nodes, tensors[part.name], names, load_weights, float32)
        ends.append(_Part(part.name, part.path, part.index, out, built))
    if not graph.inputs:
        ends.append(_Part(io_model.DATA_INPUT, "", 0, tensors[io_model.DATA_INPUT]))
    merge, merged = _merge(graph, names, ends)
    trunk_out, trunk = build.build_stack(graph.trunk, merged, names, load_weights, float32)
    outputs = []
    for head in graph.outputs:
        out, built = build.build_stack(head.nodes, trunk_out, names, load_weights, float32)
        outputs.append(_Part(head.name, head.path, head.index, out, built))
    return _Built(tensors, ends if graph.inputs else [], merge, merged, trunk, trunk_out, outputs)


def _keras_model(exp: Experiment, built: _Built) -> keras.Model:
    import keras

    inputs = built.inputs if len(built.inputs) > 1 or built.input_parts else next(iter(built.inputs.values()))
    outputs = {part.name: part.tensor for part in built.outputs} if built.outputs else built.trunk_out
    return keras.Model(inputs, outputs, name=exp.name)


# -- checks against the labels ------------------------------------------------------------------


def check_outputs(exp: Experiment, info: DataInfo, shapes: dict[str, list[int | None]]) -> None:
    """Check each head against its output's labels and loss, as a plain stack's last layer is checked.

    Raises:
        UserError: at the head's place (`model.outputs[1].layers[0]`, `model.outputs[1].loss`).
    """
    for part in io_model.parse(exp.model).outputs:
        out_info = _output_info(info, part)
        try:
            build.check_output(io_model.output_view(exp, part), out_info, shapes[part.name])
        except UserError as err:
            raise io_model.relocated(err, exp, part) from None


def _output_info(info: DataInfo, part: OutputPart) -> DataInfo:
    found = info.outputs.get(part.name)
    if found is None:
        raise UserError(f"the data has no labels named {part.name!r}", f"{part.path}.name")
    return found


def needs_one_hot(exp: Experiment, info: DataInfo) -> dict[str, bool]:
    """Per output name, whether its integer class labels must be one-hot for its loss.

    Raises:
        UserError: at `model.outputs[j].loss` when a loss cannot fit its output's labels.
    """
    answer = {}
    for part in io_model.parse(exp.model).outputs:
        out_info = _output_info(info, part)
        loss = build.resolve_loss(io_model.output_view(exp, part), out_info)
        view = io_model.output_view(exp, part)
        width = build.declared_width(view.model.layers)
        answer[part.name] = labels_need_one_hot(loss, out_info, f"{part.path}.loss", declared_width=width)
    return answer


def losses(exp: Experiment, info: DataInfo) -> dict[str, Any]:
    """Per output name: its resolved loss (a name or a component dict), `"auto"` chosen from its labels."""
    return {
        part.name: build.resolve_loss(io_model.output_view(exp, part), _output_info(info, part))
        for part in io_model.parse(exp.model).outputs
    }


def metrics(exp: Experiment, info: DataInfo) -> dict[str, list]:
    """Per output name: its resolved metrics (its own, else `train.metrics`; `"auto"` from its labels).

    An output trained with a cross-entropy on targets in [0, 1] (probabilities, multi-hot rows) has
    no automatic metric: neither accuracy nor the MAE of its logits would mean anything.
    """
    found = {}
    for part in io_model.parse(exp.model).outputs:
        view, out_info = io_model.output_view(exp, part), _output_info(info, part)
        if out_info.label_kind == "regression" and loss_family(build.resolve_loss(view, out_info)) is not None:
            kept = [m for m in view.train.metrics if m != "auto"]
            view = view.model_copy(update={"train": view.train.model_copy(update={"metrics": kept})})
        found[part.name] = build.resolve_metrics(view, out_info)
    return found


def loss_weights(exp: Experiment) -> dict[str, float]:
    """Per output name: its weight in the total loss."""
    return {part.name: float(part.loss_weight) for part in exp.model.outputs or ()}


# -- the summary ----------------------------------------------------------------------------------


def summarize(exp: Experiment, info: DataInfo) -> build.ModelSummary:
    """The model's summary: each input and its stack, the merge, the trunk, each head — never compiled.

    Raises:
        UserError: located at the layer that cannot stand where it is, the merge, or a head that
            does not fit its labels.
    """
    with build.dtype_policy(exp.train.mixed_precision):
        built = _graph(exp, info, load_weights=False)
    model = _keras_model(exp, built)
    shapes = {part.name: build.sample_shape(part.tensor) for part in built.outputs}
    if built.outputs:
        check_outputs(exp, info, shapes)
    else:
        build.check_output(exp, info, build.sample_shape(built.trunk_out))
    trainable = build.weight_count(model.trainable_weights)
    non_trainable = build.weight_count(model.non_trainable_weights)
    inputs = {name: build.sample_shape(t) for name, t in built.inputs.items()}
    first_out = next(iter(shapes.values())) if shapes else build.sample_shape(built.trunk_out)
    return build.ModelSummary(
        input_shape=next(iter(inputs.values())),
        output_shape=first_out,
        layers=_rows(built),
        total_params=trainable + non_trainable,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        inputs=inputs if built.input_parts else {},
        outputs=shapes,
    )


def _rows(built: _Built) -> list[build.LayerRow]:
    """Input rows with their stacks under them, the merge, the trunk, output rows with their heads."""
    rows: list[build.LayerRow] = []
    for part in built.input_parts:
        tensor = built.inputs[part.name]
        rows.append(_part_row(part, "input", "Input", build.sample_shape(tensor), 0))
        rows += build.summary_rows(part.built, part.index, 1)
    if built.merge is not None:
        rows.append(
            build.LayerRow(
                0,
                built.merge.name,
                type(built.merge).__name__,
                build.sample_shape(built.merged),
                0,
                io_model.MERGE_PATH,
                0,
                True,
                "merge",
            )
        )
    rows += build.summary_rows(built.trunk)
    for part in built.outputs:
        params = build.weight_count([w for entry in part.built for w in entry.weights])
        rows.append(_part_row(part, "output", "Output", build.sample_shape(part.tensor), params))
        rows += build.summary_rows(part.built, part.index, 1)
    return rows


def _part_row(part: _Part, kind: str, type_name: str, shape: list, params: int) -> build.LayerRow:
    return build.LayerRow(part.index, part.name, type_name, shape, params, part.path, 0, True, kind)


# -- the model --------------------------------------------------------------------------------------


def build_model(exp: Experiment, info: DataInfo, compile: bool = True, load_weights: bool = True) -> keras.Model:
    """The Experiment's model with several inputs or outputs, compiled unless asked not to.

    Each output compiles with its own loss (`loss_weight` in `loss_weights`) and metrics, keyed by
    its name; a model with one output compiles as a plain stack does (`tfbench.build.build_model`).

    Raises:
        UserError: located at the layer, merge, head, loss or metric Keras refuses.
    """
    with build.dtype_policy(exp.train.mixed_precision):
        built = _graph(exp, info, load_weights=load_weights)
        if built.outputs:
            check_outputs(exp, info, {part.name: build.sample_shape(part.tensor) for part in built.outputs})
        else:
            build.check_output(exp, info, build.sample_shape(built.trunk_out))
        model = raw_columns_model(_keras_model(exp, built), info)  # a table's model takes its raw columns
    if compile:
        _compile(model, exp, info)
    return model


def _compile(model: keras.Model, exp: Experiment, info: DataInfo) -> None:
    import keras

    train = exp.train
    if exp.model.outputs is None:
        loss: Any = build.keras_object(keras.losses, build.resolve_loss(exp, info), "train.loss")
        metric_list: list[Any] | dict[str, list[Any]] = [
            build.keras_object(keras.metrics, m, f"train.metrics[{i}]")
            for i, m in enumerate(build.resolve_metrics(exp, info))
        ]
        weights = None
    else:
        graph = io_model.parse(exp.model)
        resolved = losses(exp, info)
        loss = {p.name: build.keras_object(keras.losses, resolved[p.name], f"{p.path}.loss") for p in graph.outputs}
        per_output = metrics(exp, info)
        metric_list = {
            p.name: [
                build.keras_object(keras.metrics, m, _metric_place(p, i)) for i, m in enumerate(per_output[p.name])
            ]
            for p in graph.outputs
        }
        weights = loss_weights(exp)
    try:
        model.compile(
            optimizer=build.build_optimizer(train),
            loss=loss,
            loss_weights=weights,
            metrics=metric_list,
            jit_compile=train.jit_compile,
            steps_per_execution=train.steps_per_execution,
        )
    except (ValueError, TypeError) as exc:
        raise UserError(f"cannot compile the model: {build.clean_message(exc)}", "train") from None


def _metric_place(part: OutputPart, i: int) -> str:
    return f"{part.path}.metrics[{i}]" if part.metrics is not None else f"train.metrics[{i}]"
