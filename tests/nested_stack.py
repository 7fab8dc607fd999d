"""A stack with blocks and a fixed summary of it, for the builder's pilot tests and pictures.

`NestedEngineCalls` answers like `FixedEngineCalls` but gives a summary row for every entry and every
nested layer (by path, with depth, kind and frozen mark, as `tfbench.build.LayerRow` has them), and
a frozen backbone's own layers under it (rows without a path of their own, as `tfbench.build`
gives them), so the builder's tree is drawn from fixed figures without Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfbench import layer_edits
from tfbench.data.info import DataInfo
from tfbench.engine_calls import FixedEngineCalls, FixedSummary
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict
from tfbench.widgets.layer_table import as_entries

LAYERS = [
    {"type": "Rescaling", "scale": 0.00784, "offset": -1.0},
    {"type": "MobileNetV2", "weights": "none", "include_top": False, "trainable": False},
    {
        "type": "Residual",
        "merge": "add",
        "layers": [
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "padding": "same"},
            {"type": "BatchNormalization"},
        ],
        "shortcut": [{"type": "Conv2D", "filters": 32, "kernel_size": 1}],
    },
    {
        "type": "Parallel",
        "merge": "concatenate",
        "branches": [
            [{"type": "Conv2D", "filters": 16, "kernel_size": 1}],
            [{"type": "MaxPooling2D", "pool_size": 3, "strides": 1, "padding": "same"}],
        ],
    },
    {"type": "Reshape", "target_shape": [-1, 48]},
    {"type": "Bidirectional", "merge_mode": "concat", "layer": {"type": "LSTM", "units": 16}},
    {"type": "Dense", "units": 5, "activation": "softmax"},
]

EXPERIMENT = {
    "name": "snap-blocks",
    "description": "Every kind of stack entry, for pictures.",
    "data": {"source": "images:photos", "validation_split": 0.2, "batch_size": 32},
    "model": {"layers": LAYERS},
    "train": {
        "epochs": 5,
        "optimizer": {"type": "Adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "seed": 42,
    },
    "export": {"formats": ["keras"]},
}

INFO = DataInfo(
    source="images:photos",
    input_shape=(96, 96, 3),
    label_kind="categorical",
    num_classes=5,
    class_names=["daisy", "dandelion", "roses", "sunflowers", "tulips"],
    sizes={"train": 2936, "validation": 734},
    description="Flower photos in five folders.",
)

# path → (output shape, params, trainable) of the fixed summary: figures a Keras build of LAYERS
# on 96×96×3 would give (MobileNetV2 without its top: 3×3×1280, 2,257,984 weights).
FIGURES = {
    "model.layers[0]": ((96, 96, 3), 0, True),
    "model.layers[1]": ((3, 3, 1280), 2_257_984, False),
    "model.layers[2]": ((3, 3, 32), 368_672 + 128 + 40_992, True),
    "model.layers[2].layers[0]": ((3, 3, 32), 368_672, True),
    "model.layers[2].layers[1]": ((3, 3, 32), 128, True),
    "model.layers[2].shortcut[0]": ((3, 3, 32), 40_992, True),
    "model.layers[3]": ((3, 3, 48), 528, True),
    "model.layers[3].branches[0][0]": ((3, 3, 16), 528, True),
    "model.layers[3].branches[1][0]": ((3, 3, 32), 0, True),
    "model.layers[4]": ((9, 48), 0, True),
    "model.layers[5]": ((32,), 8_320, True),
    "model.layers[5].layer": ((16,), 4_160, True),
    "model.layers[6]": ((5,), 165, True),
}
# A frozen backbone's own layers, as summary rows right after its row, one deeper, without a path.
BACKBONE_LAYERS = [
    ("Conv1", "Conv2D", (48, 48, 32), 864),
    ("bn_Conv1", "BatchNormalization", (48, 48, 32), 128),
    ("out_relu", "ReLU", (3, 3, 1280), 0),
]


@dataclass
class NestedRow:
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
class NestedEngineCalls(FixedEngineCalls):
    """A FixedEngineCalls whose summary has a row per entry and nested layer, matched by path.

    Entries not in FIGURES get a (10,) output and 10 weights; `fail_at` makes the summary fail
    there like an impossible stack.
    """

    info: object = field(default_factory=lambda: INFO)
    fail_at: str | None = None
    imported: list = field(default_factory=list)

    def summarize(self, exp) -> FixedSummary:
        if self.fail_at is not None:
            raise UserError("Conv2D needs 3 dimensions after the batch, got 1", self.fail_at)
        rows = []
        for node in layer_edits.walk(as_entries(exp.model.layers)):
            if node.is_group:
                continue
            shape, params, trainable = FIGURES.get(node.path, ((10,), 10, True))
            rows.append(
                NestedRow(
                    int(node.steps[0]),
                    f"{node.entry['type'].lower()}_{len(rows)}",
                    node.entry["type"],
                    (None, *shape),
                    params,
                    node.path,
                    node.depth,
                    trainable,
                    node.kind,
                )
            )
            if node.kind == "backbone":
                rows += [
                    NestedRow(int(node.steps[0]), name, kind, (None, *shape), p, "", node.depth + 1, False)
                    for name, kind, shape, p in BACKBONE_LAYERS
                ]
        top = [r for r in rows if r.depth == 0]
        total = sum(r.params for r in top)
        frozen = sum(r.params for r in top if not r.trainable)
        return FixedSummary(
            (None, *INFO.input_shape), top[-1].output_shape if top else (None,), rows, total, total - frozen, frozen
        )


def nested_experiment():
    """The Experiment with every kind of entry."""
    return experiment_from_dict(EXPERIMENT)
