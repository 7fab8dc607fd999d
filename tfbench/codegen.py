"""Experiment → a standalone, readable plain-Keras script — without a UI or TensorFlow.

`tfbench code PRESET` prints it and every run directory gets it as `train.py`, so a learner can
read exactly what tfbench did — data loading, the layer stack, compile, fit with the callbacks,
save — and run it where tfbench is not installed. The script imports only NumPy, TensorFlow and
Keras (and `tensorflow_datasets` for a `tfds:` source, pyarrow for a table). It resolves the same
choices tfbench makes (`loss = "auto"`, one-hot labels, the seeded validation split) and writes
them out literally. The data part is each source kind's own (`loader_code`, via the registry).
The bundled datasets are inlined: the generators are copied from `tfbench.data.builtin`, and the
digits are read from the `.npz` file the script names.
"""

from __future__ import annotations

from typing import Any

from tfbench import adapt, training_loop, user_code

MAX_SHUFFLE_BUFFER = 100_000  # tfbench.data.pipeline's default cap
_MODULE_OF_ARG = (
    ("initializer", "initializers"),
    ("regularizer", "regularizers"),
    ("constraint", "constraints"),
)
_LAYER_ARGS = {"layer", "backward_layer"}


def generate_script(experiment, loop: bool = False) -> str:
    """A standalone Python script that trains the Experiment with plain Keras.

    Args:
        experiment: the Experiment (a validated `tfbench.spec.Experiment`).
        loop: train with an explicit `tf.GradientTape` loop instead of `fit` (`tfbench.training_loop`).

    Returns:
        The script's source text. It accepts `--epochs N` and `--output PATH` and prints the
        model's parameter count before training.

    Raises:
        tfbench.errors.UserError: the data source cannot be described (e.g. a missing file), so the choices that
            depend on it (`loss = "auto"`, the input shape) cannot be written out.
    """
    from tfbench import data, models
    from tfbench.io_model import data_names

    exp = experiment
    info = data.describe(exp.data, seed=exp.train.seed, io=data_names(exp))
    one_hot = models.needs_one_hot(exp, info)
    loss, metrics = _loss_and_metrics(exp, info)
    code = data.registry.source_module(exp.data.kind).loader_code(exp, info)
    sections = [
        _header(exp),
        user_code.script_imports(exp.code.modules if exp.code else None),
        _settings(exp, info, one_hot),
        _data_section(exp, info, one_hot, code),
        _model_section(exp, info, loss, metrics, compiled=not loop),
        training_loop.main_section(exp, loss, metrics, code) if loop else _main_section(exp, code),
    ]
    return "\n\n\n".join(s.strip("\n") for s in sections if s) + "\n"


def _loss_and_metrics(exp, info) -> tuple[Any, Any]:
    """The resolved loss and metrics; with several outputs, each a dict by output name."""
    from tfbench import io_graph, io_model
    from tfbench.build import resolve_loss, resolve_metrics

    if io_model.several_outputs(exp):
        return io_graph.losses(exp, info), io_graph.metrics(exp, info)
    return resolve_loss(exp, info), resolve_metrics(exp, info)


# -- header and settings ----------------------------------------------------------------------


def _rule(title: str) -> str:
    """A section comment of the generated script, 79 columns wide."""
    text = f"# -- {title} "
    return text + "-" * (79 - len(text))


def _header(exp) -> str:
    title = f"{exp.name}: {exp.description}" if exp.description else exp.name
    return f'''#!/usr/bin/env python
"""{title}

A standalone plain-Keras script equivalent to the tfbench experiment {exp.name!r}: the same data
split, model, loss, optimizer and callbacks. It needs NumPy, TensorFlow and Keras — not tfbench.

    python train.py [--epochs N] [--output model.keras]
"""

import argparse
import os

import numpy as np
import tensorflow as tf
import keras'''


def _settings(exp, info, one_hot: bool | dict[str, bool]) -> str:
    data, train = exp.data, exp.train
    lines = [_rule("settings, from the experiment")]
    lines.append(f"SEED = {train.seed!r}")
    lines.append(f"EPOCHS = {train.epochs!r}")
    if train.fine_tune is not None:
        lines.append(f"FINE_TUNE_AFTER = {train.fine_tune.after_epoch!r}  # the last epoch with the backbone frozen")
    lines.append(f"BATCH_SIZE = {data.batch_size!r}")
    if not data.validation:
        lines.append(f"VALIDATION_SPLIT = {data.validation_split!r}  # fraction of the training data held out")
    if isinstance(one_hot, dict):  # several outputs: the class count of each whose labels become one-hot
        classes = {name: info.outputs[name].num_classes for name, flag in one_hot.items() if flag}
        if classes:
            lines.append(f"ONE_HOT = {classes!r}  # these outputs' labels are one-hot encoded for their loss")
    elif info.is_classification:
        lines.append(f"CLASS_NAMES = {list(info.class_names)!r}")
        if one_hot:
            lines.append(f"NUM_CLASSES = {info.num_classes!r}  # labels are one-hot encoded for the loss")
    if train.class_weight == "balanced":
        lines.append('CLASS_WEIGHT = "balanced"  # n / (classes * n_c) over the training labels')
    elif train.class_weight is not None:
        from tfbench.data.class_weights import resolve

        lines.append(f"CLASS_WEIGHT = {resolve(train.class_weight, info)!r}  # class id: weight in the loss")
    return "\n".join(lines)


# -- data -------------------------------------------------------------------------------------


def _data_section(exp, info, one_hot: bool | dict[str, bool], code) -> str:
    """The data part: the kind's own loader code (asked of its module), the split and `to_dataset`."""
    parts = [_rule("data") + "\n" + code.text.lstrip("\n")]
    if not code.streamed:
        parts.append(_named_split_function(exp) if info.outputs else _split_function(exp))
    parts.append(code.pipeline or _pipeline_function(exp, info, one_hot, code.streamed))
    return "\n\n\n".join(p.strip("\n") for p in parts)


def _split_function(exp) -> str:
    data = exp.data
    if data.validation:
        also_test = f", test on {data.test!r}" if data.test else ""
        return f'''def split(named):
    """Train on the "train" split, validate on {data.validation!r}{also_test}."""
    return named["train"], named[{data.validation!r}], {f"named[{data.test!r}]" if data.test else "None"}'''
    if not data.validation_split:
        test = f"named[{data.test!r}]" if data.test else "None"
        return f'''def split(named):
    """Train on all of the "train" split (no validation data)."""
    return named["train"], None, {test}'''
    test = f"named[{data.test!r}]" if data.test else "None"
    return f'''def split(named):
    """Hold out a seeded VALIDATION_SPLIT of the training data (the samples tfbench holds out)."""
    x, y = named["train"]
    order = np.random.default_rng(SEED).permutation(len(y))
    k = min(len(y) - 1, max(1, int(round(len(y) * VALIDATION_SPLIT))))
    train, validation = np.sort(order[k:]), np.sort(order[:k])

    def rows(index):  # a table's x is a dict of named columns
        return {{name: column[index] for name, column in x.items()}} if isinstance(x, dict) else x[index]

    return (rows(train), y[train]), (rows(validation), y[validation]), {test}'''


def _split_arg(data, split: str) -> str:
    """The `split=` argument of a `to_dataset` call: it names the split's cache file, when there is one."""
    return f', split="{split}"' if data.cache_file else ""


def _label_steps(one_hot: bool | dict[str, bool]) -> list[str]:
    """The labels' preprocessing: one-hot class ids (with several outputs, of the outputs that need it)."""
    if isinstance(one_hot, dict):
        if not any(one_hot.values()):
            return []
        one_hot_some = "tf.one_hot(tf.cast(v, tf.int32), ONE_HOT[name]) if name in ONE_HOT else v"
        return [f"y = {{name: {one_hot_some} for name, v in y.items()}}"]
    return ["y = tf.one_hot(tf.cast(y, tf.int32), NUM_CLASSES)"] if one_hot else []


def _pipeline_function(exp, info, one_hot: bool | dict[str, bool], streamed: bool) -> str:
    """`to_dataset`: preprocess → cache → shuffle → batch → prefetch (tfbench.data.pipeline's order)."""
    from tfbench.data import registry
    from tfbench.data.options import parse_options

    data = exp.data
    options = parse_options(registry.source_module(data.kind).OPTIONS, data.options)
    steps = []
    # Bundled arrays are float32 already; other sources may hold bytes (0-255 images) or ints.
    float_input = info.input_dtype.startswith("float") and data.kind != "builtin" and not info.inputs
    if float_input or options.scale is not None or options.resize is not None:
        steps.append("x = tf.cast(x, tf.float32)")
    if options.resize is not None:
        steps.append(f"x = tf.image.resize(x, {list(options.resize)!r})")
    if options.scale is not None:
        steps.append(f"x = x * {options.scale!r}")
    steps += _label_steps(one_hot)
    file_cache = data.cache_file
    lines = ["def to_dataset(part, training, split):" if file_cache else "def to_dataset(part, training):"]
    lines.append('    """Batched tf.data pipeline: preprocess, cache, shuffle (training only), batch, prefetch."""')
    if streamed:
        lines.append("    ds = part")
    else:
        lines.append("    x, y = part")
        lines.append("    ds = tf.data.Dataset.from_tensor_slices((x, y))")
    if steps:
        lines.append("")
        lines.append("    def preprocess(x, y):")
        lines.extend(f"        {s}" for s in steps)
        lines.append("        return x, y")
        lines.append("")
        lines.append("    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)")
    if data.cache is True:
        lines.append("    ds = ds.cache()")
    elif file_cache:  # one file per split, as tfbench names them, beside where this script runs
        braces = file_cache.replace("{", "{{").replace("}", "}}")
        lines.append(f"    cache = f{braces + '-{split}'!r}")
        lines.append("    os.makedirs(os.path.dirname(cache) or '.', exist_ok=True)")
        lines.append("    ds = ds.cache(cache)")
    if data.shuffle:
        if data.shuffle_buffer:
            buffer = repr(data.shuffle_buffer)
        elif streamed:
            buffer = repr(MAX_SHUFFLE_BUFFER)
        elif info.outputs:  # a label array per output
            buffer = f"min(len(next(iter(y.values()))), {MAX_SHUFFLE_BUFFER})"
        else:
            buffer = f"min(len(y), {MAX_SHUFFLE_BUFFER})"
        lines.append("    if training:")
        lines.append(f"        ds = ds.shuffle({buffer}, seed=SEED, reshuffle_each_iteration=True)")
    lines.append("    ds = ds.batch(BATCH_SIZE)")
    if data.prefetch:
        lines.append("    ds = ds.prefetch(tf.data.AUTOTUNE)")
    lines.append("    return ds")
    return "\n".join(lines)


# -- the model --------------------------------------------------------------------------------


def _py(value: Any) -> str:
    """A TOML value as Python source."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def _arg(key: str, value: Any) -> str:
    """A constructor argument as Keras takes it; component tables become objects."""
    if isinstance(value, dict) and "type" in value:
        rest = {k: v for k, v in value.items() if k != "type"}
        if key in _LAYER_ARGS:
            return _call(f"keras.layers.{value['type']}", rest)
        for suffix, module in _MODULE_OF_ARG:
            if key.endswith(suffix):
                return _call(f"keras.{module}.{value['type']}", rest)
        return _py({"class_name": value["type"], "config": rest})
    return _py(value)


def _call(func: str, args: dict[str, Any]) -> str:
    return f"{func}(" + ", ".join(f"{k}={_arg(k, v)}" for k, v in args.items()) + ")"


def _loss_or_metric(module: str, value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    args = {k: v for k, v in value.items() if k != "type"}
    return _call(user_code.qualified(module, value["type"], f"keras.{module}.{value['type']}"), args)


def _model_section(exp, info, loss, metrics, compiled: bool = True) -> str:
    from tfbench import io_model

    if io_model.has_several(exp.model):
        return _graph_model_section(exp, info, loss, metrics)
    train = exp.train
    shape = tuple(exp.model.input_shape) if exp.model.input_shape else tuple(info.input_shape)
    dtype = info.input_dtype or "float32"
    lines = [_rule("model"), "def build_model():"]
    lines.append('    """The layer stack on a keras.Input, compiled with the optimizer, loss and metrics."""')
    dtype_arg = "" if dtype == "float32" else f", dtype={dtype!r}"
    lines.append(f'    inputs = keras.Input(shape={shape!r}{dtype_arg}, name="input")')
    lines.extend(_stack_lines(exp))
    model_class = user_code.qualified("models", exp.model.class_, "keras.Model")  # model.class: the user's own
    lines.append(f"    model = {model_class}(inputs, x, name={exp.name!r})")
    if compiled:  # the loop script makes its optimizer, loss and metrics itself
        lines += _compile_lines(train, loss, metrics, train.optimizer.args, train.schedule)
    lines.append("    return model")
    if train.fine_tune is not None:
        lines += ["", ""] + _fine_tune_function(train, loss, metrics)
    adapting = adapt.script_functions(exp)  # layers that learn from data: the run's own functions
    return "\n".join(lines) + (f"\n\n\n{adapting}" if adapting else "")


def _compile_lines(train, loss, metrics, optimizer_args: dict, schedule, loss_weights=None) -> list[str]:
    """`model.compile(...)` with the optimizer (and its schedule), loss, metrics and speed switches.

    With several outputs `loss` and `metrics` are dicts by output name, and `loss_weights` is given.
    """
    optimizer_args = dict(optimizer_args)
    if schedule is not None:
        optimizer_args["learning_rate"] = _Raw(_call(f"keras.optimizers.schedules.{schedule.type}", schedule.args))
    optimizer = (
        f"keras.optimizers.{train.optimizer.type}("
        + ", ".join(f"{k}={v.text if isinstance(v, _Raw) else _arg(k, v)}" for k, v in optimizer_args.items())
        + ")"
    )
    lines = ["    model.compile("]
    lines.append(f"        optimizer={optimizer},")
    if isinstance(metrics, dict):
        lines += _per_output_compile(loss, metrics, loss_weights or {})
    else:
        metric_text = "[" + ", ".join(_loss_or_metric("metrics", m) for m in metrics) + "]"
        lines.append(f"        loss={_loss_or_metric('losses', loss)},")
        lines.append(f"        metrics={metric_text},")
    if train.jit_compile != "auto":
        lines.append(f"        jit_compile={train.jit_compile!r},")
    if train.steps_per_execution != 1:
        lines.append(f"        steps_per_execution={train.steps_per_execution!r},")
    lines.append("    )")
    return lines


def _fine_tune_function(train, loss, metrics, loss_weights=None) -> list[str]:
    """`fine_tune(model)`: unfreeze the backbones as `tfbench.engine.fine_tune.unfreeze` does, compile again.

    The new optimizer is the same class with the same arguments and the fine-tuning rate as a
    constant (a schedule is dropped), as the engine's `recompile` makes it.
    """
    spec = train.fine_tune
    how = "all its layers" if spec.unfreeze == "all" else f"its top {spec.unfreeze} layers"
    lines = [
        "def fine_tune(model):",
        f'    """Unfreeze the backbone ({how}) and compile again with the fine-tuning rate.',
        "",
        "    Keras needs a compile after `trainable` changes. The backbone was called with training=False,",
        '    so its BatchNormalization layers stay in inference mode."""',
        "    for backbone in [layer for layer in model.layers if isinstance(layer, keras.Model)]:",
        "        backbone.trainable = True",
    ]
    if spec.unfreeze != "all":
        lines.append(
            f"        for layer in backbone.layers[:-{int(spec.unfreeze)}]:  # only the top {spec.unfreeze} train"
        )
        lines.append("            layer.trainable = False")
    args = dict(train.optimizer.args) | {"learning_rate": float(spec.learning_rate)}
    return lines + _compile_lines(train, loss, metrics, args, None, loss_weights)


# -- several inputs and outputs ---------------------------------------------------------------


def _named_split_function(exp) -> str:
    """`split` for x and y that may be dicts of named arrays (several inputs, several outputs)."""
    data = exp.data
    test = f"named[{data.test!r}]" if data.test else "None"
    if data.validation:
        return f'''def split(named):
    """Train on the "train" split, validate on {data.validation!r}."""
    return named["train"], named[{data.validation!r}], {test}'''
    if not data.validation_split:
        return f'''def split(named):
    """Train on all of the "train" split (no validation data)."""
    return named["train"], None, {test}'''
    return f'''def split(named):
    """Hold out a seeded VALIDATION_SPLIT of the training data (the samples tfbench holds out)."""
    x, y = named["train"]

    def rows(part, index):  # a dict of arrays named like the model's inputs or outputs, or one array
        return {{name: array[index] for name, array in part.items()}} if isinstance(part, dict) else part[index]

    n = len(next(iter(y.values()))) if isinstance(y, dict) else len(y)
    order = np.random.default_rng(SEED).permutation(n)
    k = min(n - 1, max(1, int(round(n * VALIDATION_SPLIT))))
    train, validation = np.sort(order[k:]), np.sort(order[:k])
    return (rows(x, train), rows(y, train)), (rows(x, validation), rows(y, validation)), {test}'''


def _per_output_compile(loss: dict, metrics: dict, weights: dict) -> list[str]:
    """The loss, loss_weights and metrics arguments of `compile` as dicts by output name."""
    lines = ["        loss={"]
    lines += [f"            {name!r}: {_loss_or_metric('losses', value)}," for name, value in loss.items()]
    lines.append("        },")
    if weights:
        lines.append(f"        loss_weights={weights!r},")
    lines.append("        metrics={")
    for name, values in metrics.items():
        lines.append(f"            {name!r}: [" + ", ".join(_loss_or_metric("metrics", m) for m in values) + "],")
    lines.append("        },")
    return lines


def _graph_model_section(exp, info, loss, metrics) -> str:
    """`build_model()` for named inputs and outputs: each input's stack, the merge, the trunk, each head."""
    from tfbench import blocks, io_graph, io_model

    graph = io_model.parse(exp.model)
    train = exp.train
    lines = [_rule("model"), "def build_model():"]
    lines.append('''    """Each named input through its own stack, merged; the shared trunk; a head per output."""''')
    writer = _GraphWriter(None)
    float32 = io_graph.float32_paths(exp, graph)
    ends = _graph_inputs(exp, info, graph, writer, float32, lines)
    if len(ends) > 1:
        lines.append(f"    x = keras.layers.{blocks.MERGES[graph.merge]}()([{', '.join(ends)}])  # model.merge")
    elif ends[0] != "x":
        lines.append(f"    x = {ends[0]}")
    writer.float32_paths = float32
    lines += writer.sequence(list(graph.trunk), "x", "x", "    ")
    for part in graph.outputs:
        target = _variable(part.name, part.index, "output")
        nodes = list(part.nodes)
        if nodes and not isinstance(nodes[-1].args.get("name"), str):  # the head's last layer: the output's name
            nodes[-1] = _renamed(nodes[-1], part.name)
        lines += writer.sequence(nodes, "x", target, "    ") or [f"    {target} = x"]
    if graph.outputs:
        pairs = ", ".join(f"{p.name!r}: {_variable(p.name, p.index, 'output')}" for p in graph.outputs)
        lines.append(f"    outputs = {{{pairs}}}")
    else:
        lines.append("    outputs = x")
    model_inputs = "inputs" if graph.inputs else f"inputs[{io_model.DATA_INPUT!r}]"
    lines.append(f"    model = keras.Model({model_inputs}, outputs, name={exp.name!r})")
    weights = io_graph.loss_weights(exp) if graph.outputs else None
    lines += _compile_lines(train, loss, metrics, train.optimizer.args, train.schedule, weights)
    lines.append("    return model")
    if train.fine_tune is not None:
        lines += ["", ""] + _fine_tune_function(train, loss, metrics, weights)
    return "\n".join(lines)


def _graph_inputs(exp, info, graph, writer, float32, lines: list[str]) -> list[str]:
    """`inputs = {name: keras.Input(...)}` and each input's stack; the variables holding their ends."""
    from tfbench.io_model import DATA_INPUT

    if not graph.inputs:
        shape = tuple(exp.model.input_shape) if exp.model.input_shape else tuple(info.input_shape)
        dtype = "" if info.input_dtype == "float32" else f", dtype={info.input_dtype!r}"
        lines.append(f"    inputs = {{{DATA_INPUT!r}: keras.Input(shape={shape!r}{dtype}, name={DATA_INPUT!r})}}")
        lines.append(f"    x = inputs[{DATA_INPUT!r}]")
        return ["x"]
    lines.append("    inputs = {")
    for part in graph.inputs:
        known = info.inputs[part.name]
        shape = tuple(part.shape or known.shape)
        dtype = "" if known.dtype == "float32" else f", dtype={known.dtype!r}"
        lines.append(f"        {part.name!r}: keras.Input(shape={shape!r}{dtype}, name={part.name!r}),")
    lines.append("    }")
    ends = []
    for part in graph.inputs:
        target = _variable(part.name, part.index, "features")
        writer.float32_paths = float32
        lines += writer.sequence(list(part.nodes), f"inputs[{part.name!r}]", target, "    ")
        ends.append(target)
    return ends


def _variable(name: str, index: int, what: str) -> str:
    """A readable Python variable for an input's or output's tensor (`title_features`)."""
    import keyword

    stem = name if name.isidentifier() and not keyword.iskeyword(name) else f"{what}{index}"
    return f"{stem}_{what}"


def _renamed(node, name: str):
    """The node with a Keras layer name (the output's, for a head's last layer)."""
    import dataclasses

    if node.kind == "block":  # a block's name is its merge layer's: only the graph writer names that
        return node
    return dataclasses.replace(node, args={**node.args, "name": name})


def _stack_lines(exp) -> list[str]:
    """The model's entries as Functional-API lines, from `inputs` to `x` (blocks become merges)."""
    from tfbench import blocks

    nodes = blocks.parse_stack(exp.model.layers)
    last = nodes[-1]
    float32 = last.path if exp.train.mixed_precision != "off" and last.kind == "layer" else None
    writer = _GraphWriter(float32)
    return writer.sequence(nodes, "inputs", "x", "    ")


class _GraphWriter:
    """Writes a node tree as `x = Layer(...)(x)` lines; each block's inputs get their own names."""

    def __init__(self, float32_path: str | None):
        self.float32_paths = frozenset({float32_path} if float32_path else ())
        self.blocks = 0
        self.backbones = 0

    def sequence(self, nodes, source: str, target: str, indent: str) -> list[str]:
        lines: list[str] = []
        for node in nodes:
            lines += self.node(node, source, target, indent)
            source = target
        if not nodes and source != target:
            lines.append(f"{indent}{target} = {source}")
        return lines

    def node(self, node, source: str, target: str, indent: str) -> list[str]:
        from tfbench import blocks

        if node.kind == "block":
            return self.block(node, source, target, indent)
        if node.kind == "backbone":
            return self.backbone(node, source, target, indent)
        args = {k: v for k, v in node.args.items() if k not in blocks.CALL_ARGS}
        if node.kind == "wrapper":
            args = {"layer": node.inner.args | {"type": node.inner.type}, **args}
        if node.path in self.float32_paths and "dtype" not in args:
            args["dtype"] = "float32"  # the final layer computes in float32 for a stable loss
        layer = _call(user_code.qualified("layers", node.type, f"keras.layers.{node.type}"), args)
        if not node.is_attention:
            return [f"{indent}{target} = {layer}({source})"]
        causal = ", use_causal_mask=True" if node.args.get("use_causal_mask") else ""
        inputs = f"[{source}, {source}]" if node.type in blocks.LIST_INPUT_ATTENTION else f"{source}, {source}"
        return [f"{indent}{target} = {layer}({inputs}{causal})  # self-attention: query = value = {source}"]

    def block(self, node, source: str, target: str, indent: str) -> list[str]:
        from tfbench import blocks

        self.blocks += 1
        n = self.blocks
        block_input = f"block{n}_input"
        lines = [f"{indent}{block_input} = {source}  # {node.type} block ({node.path})"]
        if node.type == "Residual":
            paths = [(node.layers, f"block{n}_main"), (node.shortcut, f"block{n}_shortcut")]
        else:
            paths = [(branch, f"block{n}_branch{i}") for i, branch in enumerate(node.branches)]
        for path_nodes, name in paths:
            lines += self.sequence(path_nodes, block_input, name, indent)
        merged = ", ".join(name for _, name in paths)
        lines.append(f"{indent}{target} = keras.layers.{blocks.MERGES[node.merge]}()([{merged}])")
        return lines

    def backbone(self, node, source: str, target: str, indent: str) -> list[str]:
        from tfbench import backbones

        self.backbones += 1
        name = "backbone" if self.backbones == 1 else f"backbone{self.backbones}"
        lines = []
        if node.args.get("preprocess"):
            for type_name, args in backbones.preprocessing_layers(node.type):
                lines.append(
                    f"{indent}{target} = {_call(f'keras.layers.{type_name}', args)}({source})"
                    f"  # {node.type}'s expected input scaling"
                )
                source = target
        args = {k: v for k, v in node.args.items() if k not in ("trainable", "preprocess", "weights")}
        weights = node.args.get("weights", "imagenet")
        args["weights"] = _Raw("None" if weights == "none" else repr(weights))
        args["input_shape"] = _Raw(f"tuple({source}.shape[1:])")
        call = (
            f"keras.applications.{node.type}("
            + ", ".join(f"{k}={v.text if isinstance(v, _Raw) else _arg(k, v)}" for k, v in args.items())
            + ")"
        )
        lines.append(f"{indent}{name} = {call}")
        if node.args.get("trainable", True):
            lines.append(f"{indent}{target} = {name}({source})")
        else:
            lines.append(
                f"{indent}{name}.trainable = False  # frozen, and run in inference mode (BatchNormalization too)"
            )
            lines.append(f"{indent}{target} = {name}({source}, training=False)")
        return lines


class _Raw:
    """Source text to emit as it is."""

    def __init__(self, text: str):
        self.text = text


def _callbacks_code(exp) -> list[str]:
    out = []
    has_tensorboard = False
    for component in exp.train.callbacks:
        args = dict(component.args)
        if component.type == "ModelCheckpoint":
            args.setdefault("filepath", "checkpoints/model-{epoch:03d}.keras")
        elif component.type == "CSVLogger":
            args.setdefault("filename", "keras-log.csv")
        elif component.type == "TensorBoard":
            args.setdefault("log_dir", "tensorboard")
            has_tensorboard = True
        elif component.type == "BackupAndRestore":
            args.setdefault("backup_dir", "backup")
        out.append(_call(user_code.qualified("callbacks", component.type, f"keras.callbacks.{component.type}"), args))
    if exp.train.tensorboard and not has_tensorboard:
        out.append('keras.callbacks.TensorBoard(log_dir="tensorboard")')
    return out


def _class_weight_lines(setting) -> list[str]:
    """`main()`'s `class_weight` for fit: "balanced" from the training labels, or CLASS_WEIGHT."""
    if setting == "balanced":
        return [
            "    counts = np.bincount(np.asarray(train[1]).reshape(-1).astype(int))",
            "    class_weight = {i: len(train[1]) / (np.count_nonzero(counts) * c) for i, c in enumerate(counts) if c}",
        ]
    return ["    class_weight = CLASS_WEIGHT"] if setting is not None else []


def _fit_lines(exp) -> list[str]:
    """`model.fit` on the training pipeline; with `[train.fine_tune]`, the Keras guide's two fits."""
    lines = [
        "    # One pass of the repeated training data per epoch, as tfbench trains: each epoch then gets the",
        "    # shuffled order the run had (a fresh pass per epoch reshuffles differently). shuffle=False:",
        "    # the tf.data pipeline already shuffles the training data every epoch.",
        "    steps = int(train_ds.cardinality())",
        "    data = dict(x=train_ds.repeat(), steps_per_epoch=steps) if steps > 0 else dict(x=train_ds)",
        "    fit = dict(validation_data=validation_ds, callbacks=callbacks, shuffle=False, verbose=2"
        + (", class_weight=class_weight)" if exp.train.class_weight is not None else ")"),
    ]
    if exp.train.fine_tune is None:
        return lines + ["    model.fit(**data, epochs=args.epochs, **fit)"]
    return lines + [
        "    # Transfer learning, then fine-tuning: the frozen model trains up to FINE_TUNE_AFTER, then the",
        "    # backbone unfreezes and training goes on from that epoch with the fine-tuning rate.",
        "    model.fit(**data, epochs=min(FINE_TUNE_AFTER, args.epochs), **fit)",
        "    if args.epochs > FINE_TUNE_AFTER:",
        "        fine_tune(model)",
        "        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)",
        '        print(f"trainable params after the switch: {trainable}")',
        "        model.fit(**data, epochs=args.epochs, initial_epoch=FINE_TUNE_AFTER, **fit)",
    ]


def _main_section(exp, code) -> str:
    train, data = exp.train, exp.data
    streamed = code.streamed
    lines = [_rule("training"), "def main():"]
    lines.append("    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])")
    lines.append(
        '    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs to train (default: %(default)s)")'
    )
    lines.append('    parser.add_argument("--output", default="model.keras", help="where to save the trained model")')
    lines.append("    args = parser.parse_args()")
    lines.append("")
    if train.mixed_precision != "off":
        lines.append(f"    keras.mixed_precision.set_global_policy({train.mixed_precision!r})")
    if train.seed is not None:
        lines.append("    keras.utils.set_random_seed(SEED)  # Python, NumPy and TensorFlow")
    if train.deterministic:
        lines.append("    tf.config.experimental.enable_op_determinism()")
    if streamed:
        lines.append("    train, validation, test = load_splits()")
    else:
        lines.append("    train, validation, test = split(load_data())")
        lines.extend(code.after_split)
    lines.append(f"    train_ds = to_dataset(train, training=True{_split_arg(data, 'train')})")
    lines.append(
        "    validation_ds = None if validation is None else "
        f"to_dataset(validation, training=False{_split_arg(data, 'validation')})"
    )
    lines.append("")
    if train.strategy == "mirrored":
        lines.append("    with tf.distribute.MirroredStrategy().scope():  # one replica per GPU")
        lines.append("        model = build_model()")
    else:
        lines.append("    model = build_model()")
    lines += adapt.script_lines(exp, _split_arg(data, "train"))
    lines.append("    model.summary()")
    lines.append('    print(f"params: {model.count_params()}")')
    callbacks = _callbacks_code(exp)
    if callbacks:
        lines.append("    callbacks = [")
        lines.extend(f"        {c}," for c in callbacks)
        lines.append("    ]")
    else:
        lines.append("    callbacks = []")
    lines.extend(_class_weight_lines(train.class_weight))
    lines += _fit_lines(exp)
    if data.test:
        lines.append("    if test is not None:")
        lines.append(
            f'        print("test:", model.evaluate(to_dataset(test, training=False{_split_arg(data, "test")}), '
            "return_dict=True, verbose=0))"
        )
    lines.extend(code.before_save)
    lines.append("    model.save(args.output)")
    lines.append('    print(f"saved {args.output}")')
    lines.append("")
    lines.append("")
    lines.append('if __name__ == "__main__":')
    lines.append("    main()")
    return "\n".join(lines)
