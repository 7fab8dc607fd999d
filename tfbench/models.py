"""Which builder makes an Experiment's model — the entry point the engine, the CLI and the workbench call.

A plain stack is `tfbench.build`'s; a model written with several named inputs or outputs
(`[[model.inputs]]`, `[[model.outputs]]`) is `tfbench.io_graph`'s, which builds each of its
stacks with `tfbench.build`. Both give the same things (a Functional model, a `ModelSummary`,
which labels must be one-hot), so a caller never needs to know which form a preset uses.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfbench import build, io_graph, io_model

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tfbench.data.info import DataInfo
    from tfbench.spec import Experiment


def build_model(exp: Experiment, info: DataInfo, compile: bool = True, load_weights: bool = True) -> Any:
    """The Experiment's Keras model (see `tfbench.build.build_model`).

    Raises:
        UserError: located at the layer, merge, head, optimizer, loss or metric Keras refuses.
    """
    if io_model.has_several(exp.model):
        return io_graph.build_model(exp, info, compile, load_weights)
    return build.build_model(exp, info, compile, load_weights)


def summarize(exp: Experiment, info: DataInfo) -> build.ModelSummary:
    """The model's shapes and sizes, built but never compiled (see `tfbench.build.summarize`).

    Raises:
        UserError: located at the layer that cannot stand where it is, or that does not fit the data.
    """
    if io_model.has_several(exp.model):
        return io_graph.summarize(exp, info)
    return build.summarize(exp, info)


def needs_one_hot(exp: Experiment, info: DataInfo) -> bool | dict[str, bool]:
    """Whether integer class labels must be one-hot for the loss; with several outputs, per output name.

    Raises:
        UserError: at the loss (`train.loss`, `model.outputs[1].loss`) when it cannot fit the labels.
    """
    if io_model.several_outputs(exp):
        return io_graph.needs_one_hot(exp, info)
    return build.needs_one_hot(exp, info)
