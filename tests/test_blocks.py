"""The model grammar: nested entries, their places in errors, `--set` into them (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from no_network.sitecustomize import pythonpath

from tfbench import blocks
from tfbench.errors import UserError
from tfbench.spec import Experiment, apply_overrides, experiment_from_dict, parse_toml

REPO = Path(__file__).resolve().parent.parent

PRESET = """
name = "nested"
[[model.layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
[[model.layers]]
type = "Residual"
merge = "add"
layers = [ { type = "Conv2D", filters = 8, kernel_size = 3, padding = "same" }, { type = "BatchNormalization" } ]
[[model.layers]]
type = "Parallel"
branches = [ [ { type = "Conv2D", filters = 4, kernel_size = 1 } ],
             [ { type = "Residual", layers = [ { type = "Conv2D", filters = 8, kernel_size = 1 } ] } ],
             [] ]
[[model.layers]]
type = "TimeDistributed"
layer = { type = "Dense", units = 3 }
"""


def error_at(layers: list) -> UserError:
    with pytest.raises(UserError) as caught:
        experiment_from_dict({"name": "t", "model": {"layers": layers}})
    return caught.value


def test_importing_blocks_does_not_import_tensorflow():
    code = (
        "import sys, tfbench.blocks, tfbench.backbones, tfbench.spec; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_a_nested_preset_parses_into_a_tree_with_places():
    exp = experiment_from_dict(parse_toml(PRESET))
    nodes = blocks.parse_stack(exp.model.layers)
    walked = [(node.path, node.kind, depth) for node, depth in blocks.walk(nodes)]
    assert walked == [
        ("model.layers[0]", "layer", 0),
        ("model.layers[1]", "block", 0),
        ("model.layers[1].layers[0]", "layer", 1),
        ("model.layers[1].layers[1]", "layer", 1),
        ("model.layers[2]", "block", 0),
        ("model.layers[2].branches[0][0]", "layer", 1),
        ("model.layers[2].branches[1][0]", "block", 1),
        ("model.layers[2].branches[1][0].layers[0]", "layer", 2),
        ("model.layers[3]", "wrapper", 0),
        ("model.layers[3].layer", "layer", 1),
    ]
    assert nodes[2].merge == "concatenate" and nodes[1].merge == "add" and nodes[2].branches[2] == ()
    names = blocks.layer_names(nodes)
    assert [names[p] for p, _, _ in walked] == [
        "conv2d",
        "add",
        "conv2d_1",
        "batch_normalization",
        "concatenate",
        "conv2d_2",
        "add_1",
        "conv2d_3",
        "time_distributed",
        "dense",
    ]


def test_a_nested_preset_survives_a_toml_round_trip():
    exp = experiment_from_dict(parse_toml(PRESET))
    again = experiment_from_dict(parse_toml(exp.to_toml()))
    assert again.to_dict() == exp.to_dict()


@pytest.mark.parametrize(
    ("layers", "location", "words"),
    [
        (
            [
                {"type": "Dense", "units": 3},
                {"type": "Dense", "units": 3},
                {"type": "Bidirectional", "layer": {"type": "LSTM", "units": "x"}},
            ],
            "model.layers[2].layer.units",
            "integer",
        ),
        (
            [
                {
                    "type": "Parallel",
                    "branches": [
                        [{"type": "Dense", "units": 2}],
                        [{"type": "Conv2D", "filters": 2, "kernel_size": 1, "filterz": 3}],
                    ],
                }
            ],
            "model.layers[0].branches[1][0].filterz",
            "did you mean",
        ),
        (
            [{"type": "Residual", "layers": [{"type": "Dense", "units": 2}], "shortcut": [{"type": "Lambda"}]}],
            "model.layers[0].shortcut[0]",
            "arbitrary Python code",
        ),
        ([{"type": "TimeDistributed", "layer": {"type": "TFSMLayer"}}], "model.layers[0].layer", "SavedModel"),
        (
            [{"type": "Parallel", "branches": [[{"type": "Residual", "layers": [{"type": "Lambda"}]}], []]}],
            "model.layers[0].branches[0][0].layers[0]",
            "arbitrary Python code",
        ),
        ([{"type": "Residual"}], "model.layers[0]", "needs 'layers'"),
        (
            [{"type": "Residual", "layers": [{"type": "Dense", "units": 2}], "merge": "sum"}],
            "model.layers[0].merge",
            "not a merge",
        ),
        ([{"type": "Parallel", "branches": [[]]}], "model.layers[0].branches", "at least two"),
        (
            [{"type": "Bidirectional", "layer": {"type": "Dense", "units": 2}}],
            "model.layers[0].layer.type",
            "recurrent",
        ),
        ([{"type": "Bidirectional"}], "model.layers[0]", "inner 'layer'"),
        ([{"type": "MultiHeadAttention", "num_heads": 2}], "model.layers[0]", "key_dim"),
        ([{"type": "MobileNetV2", "weights": "none", "pooling": "mean"}], "model.layers[0].pooling", "avg"),
        ([{"type": "MobileNetV2", "alpha": "big"}], "model.layers[0].alpha", "number"),
        ([{"type": "VGG16", "preprocess": True}], "model.layers[0].preprocess", "caffe"),
        (
            [
                {
                    "type": "Residual",
                    "layers": [{"type": "Dense", "units": 2, "name": "x"}],
                    "shortcut": [{"type": "Dense", "units": 2, "name": "x"}],
                }
            ],
            "model.layers[0].shortcut[0].name",
            "taken",
        ),
    ],
)
def test_every_error_names_its_place(layers, location, words):
    if location.endswith(".name"):  # names are checked where the build names layers
        with pytest.raises(UserError) as caught:
            blocks.layer_names(blocks.parse_stack(layers))
        err = caught.value
    else:
        err = error_at(layers)
    assert err.location == location
    assert words in f"{err.message} {err.hint}"


def test_set_reaches_nested_values():
    data = parse_toml(PRESET)
    apply_overrides(
        data,
        [
            "model.layers[1].layers[0].filters=128",
            'model.layers[2].branches[1][0].merge="concatenate"',
            "model.layers[3].layer.units=7",
        ],
    )
    exp = experiment_from_dict(data)
    assert exp.model.layers[1].args["layers"][0]["filters"] == 128
    assert exp.model.layers[2].args["branches"][1][0]["merge"] == "concatenate"
    assert exp.model.layers[3].args["layer"]["units"] == 7
    bad = parse_toml(PRESET)
    apply_overrides(bad, ['model.layers[2].branches[0][0].filters="many"'])
    with pytest.raises(UserError) as caught:
        experiment_from_dict(bad)
    assert caught.value.location == "model.layers[2].branches[0][0].filters"
    with pytest.raises(UserError, match="no item 5"):
        apply_overrides(parse_toml(PRESET), ["model.layers[1].layers[5].filters=1"])


@pytest.mark.slow
def test_every_backbone_name_is_a_keras_application():
    code = (
        "import keras, json; from tfbench import backbones; "
        "print(json.dumps(sorted(set(backbones.BACKBONES) ^ {n for n in dir(keras.applications) if n[0].isupper()})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": pythonpath(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_has_blocks_says_when_the_functional_api_is_needed():
    plain = Experiment.model_validate({"model": {"layers": [{"type": "Dense", "units": 2}]}})
    assert not blocks.has_blocks(blocks.parse_stack(plain.model.layers))
    nested = experiment_from_dict(parse_toml(PRESET))
    assert blocks.has_blocks(blocks.parse_stack(nested.model.layers))
