"""The ticket model in the workbench, with a fixed summary of it, for the builder's pilot tests and pictures.

`TicketEngineCalls` answers like `FixedEngineCalls`, with a summary row for each input, each layer
of each stack, the merge and each output (by path, with depth and kind, as `tfbench.io_graph`
gives them) and the figures Keras gives the Functional API guide's ticket model
(`test_io_model.py` checks them against a real build), so the tree is drawn without Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multi_io_cases import TICKETS

from tfbench import layer_edits
from tfbench.data.info import DataInfo, InputInfo
from tfbench.engine_calls import FixedEngineCalls, FixedSummary
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict, parse_toml
from tfbench.widgets.layer_table import model_entries

INFO = DataInfo(
    source="npz:tickets.npz",
    input_shape=(10,),
    label_kind="regression",
    label_shape=(1,),
    sizes={"train": 1024, "validation": 256},
    description="The arrays 'title', 'body', 'tags', 'priority', 'department' of tickets.npz.",
    input_dtype="int32",
    inputs={"title": InputInfo((10,), "int32"), "body": InputInfo((100,), "int32"), "tags": InputInfo((12,))},
    outputs={
        "priority": DataInfo("'priority' of npz:tickets.npz", (), "regression", label_shape=(1,)),
        "department": DataInfo("'department' of npz:tickets.npz", (), "regression", label_shape=(4,)),
    },
)

# path → (kind, output shape, params): what a Keras build of the ticket model gives.
FIGURES = {
    "model.inputs[0]": ("input", (10,), 0),
    "model.inputs[0].layers[0]": ("layer", (10, 64), 640_000),
    "model.inputs[0].layers[1]": ("layer", (128,), 98_816),
    "model.inputs[1]": ("input", (100,), 0),
    "model.inputs[1].layers[0]": ("layer", (100, 64), 640_000),
    "model.inputs[1].layers[1]": ("layer", (32,), 12_416),
    "model.inputs[2]": ("input", (12,), 0),
    "model.merge": ("merge", (172,), 0),
    "model.outputs[0]": ("output", (1,), 173),
    "model.outputs[0].layers[0]": ("layer", (1,), 173),
    "model.outputs[1]": ("output", (4,), 692),
    "model.outputs[1].layers[0]": ("layer", (4,), 692),
}


@dataclass
class TreeRow:
    """One summary row, as `tfbench.build.LayerRow` has it."""

    index: int
    name: str
    type: str
    output_shape: tuple
    params: int
    path: str = ""
    depth: int = 0
    trainable: bool = True
    kind: str = "layer"


@dataclass
class MultiSummary(FixedSummary):
    """A FixedSummary with the named inputs' and outputs' shapes, as `ModelSummary` has them."""

    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


@dataclass
class TicketEngineCalls(FixedEngineCalls):
    """Fixed answers for the ticket model: a row per input, stack layer, merge and output.

    Entries not in FIGURES (added in a test) get a (10,) output and 10 weights; `fail_at` makes the
    summary fail there like an impossible stack.
    """

    info: object = field(default_factory=lambda: INFO)
    fail_at: str | None = None

    def summarize(self, exp) -> MultiSummary:
        if self.fail_at is not None:
            raise UserError("Concatenate needs inputs that agree on every axis but the last", self.fail_at)
        rows = []
        for node in layer_edits.walk_model(model_entries(exp.model)):
            if node.is_group:
                continue
            kind, shape, params = FIGURES.get(node.path, (node.kind, (10,), 10))
            type_name = {"input": "Input", "output": "Output", "merge": "Concatenate"}.get(kind)
            name = node.name if node.is_part else f"{node.entry['type'].lower()}_{len(rows)}"
            rows.append(
                TreeRow(
                    0, name, type_name or node.entry["type"], (None, *shape), params, node.path, node.depth, True, kind
                )
            )
        total = 1_392_097 + sum(r.params for r in rows if r.path not in FIGURES and r.depth == 1)
        return MultiSummary(
            (None, 10),
            (None, 1),
            rows,
            total,
            total,
            0,
            inputs={"title": [10], "body": [100], "tags": [12]},
            outputs={"priority": [1], "department": [4]},
        )


def ticket_experiment():
    """The ticket model's Experiment, its data path as written (the fixed calls never read it)."""
    return experiment_from_dict(parse_toml(TICKETS), source=str(Path("tickets.toml")))
