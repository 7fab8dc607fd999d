"""Blocks, wrappers, attention and backbones build the same models as plain Keras' Functional API.

Each preset below is written to the preset form of the model grammar (`tfbench.blocks`), validated
offline (backbones with random weights) and compared, total and trainable parameters, with the
same model written in plain Keras in the test. Input sizes are small where the model allows it;
the counts of these models do not depend on the image size.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from tfbench import build
from tfbench.data.info import DataInfo
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict, parse_toml

IMDB = DataInfo("test:imdb", (40,), "binary", 2, ["neg", "pos"], input_dtype="int32")
TOPICS = DataInfo("test:topics", (40,), "categorical", 2, ["a", "b"], input_dtype="int32")


def images(size: int, classes: int = 2, channels: int = 3) -> DataInfo:
    kind = "binary" if classes == 2 else "categorical"
    return DataInfo("test:images", (size, size, channels), kind, classes, [str(i) for i in range(classes)])


def counts(model: keras.Model) -> tuple[int, int]:
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params()), trainable


def validated(toml: str, info: DataInfo) -> build.ModelSummary:
    """The preset as `tfbench validate` sees it: parsed, checked, built offline."""
    exp = experiment_from_dict(parse_toml('name = "t"\n' + toml))
    return build.summarize(exp, info)


def assert_same_counts(summary: build.ModelSummary, model: keras.Model) -> None:
    total, trainable = counts(model)
    assert (summary.total_params, summary.trainable_params) == (total, trainable)
    assert summary.output_shape == [int(d) for d in model.output.shape[1:]]


# -- keras.io: Bidirectional LSTM on IMDB ----------------------------------------------------

BIDIRECTIONAL_IMDB = """
[[model.layers]]
type = "Embedding"
input_dim = 20000
output_dim = 128
[[model.layers]]
type = "Bidirectional"
layer = { type = "LSTM", units = 64, return_sequences = true }
[[model.layers]]
type = "Bidirectional"
layer = { type = "LSTM", units = 64 }
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""


def test_bidirectional_lstm_imdb_matches_keras_io():
    inputs = keras.Input(shape=(40,), dtype="int32")
    x = layers.Embedding(20000, 128)(inputs)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    summary = validated(BIDIRECTIONAL_IMDB, IMDB)
    assert_same_counts(summary, keras.Model(inputs, outputs))
    wrapper, inner = summary.layers[1], summary.layers[2]
    assert (wrapper.kind, wrapper.path, wrapper.depth, wrapper.output_shape) == (
        "wrapper",
        "model.layers[1]",
        0,
        [40, 128],
    )
    assert (inner.kind, inner.type, inner.path, inner.depth) == ("layer", "LSTM", "model.layers[1].layer", 1)


# -- keras.io: image classification from scratch (a small Xception) --------------------------


def small_xception_toml() -> str:
    head = """
[[model.layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[model.layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
strides = 2
padding = "same"
[[model.layers]]
type = "BatchNormalization"
[[model.layers]]
type = "Activation"
activation = "relu"
[[model.layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
padding = "same"
[[model.layers]]
type = "BatchNormalization"
[[model.layers]]
type = "Activation"
activation = "relu"
"""
    block = """
[[model.layers]]
type = "Residual"
layers = [ {{ type = "Activation", activation = "relu" }},
           {{ type = "SeparableConv2D", filters = {n}, kernel_size = 3, padding = "same" }},
           {{ type = "BatchNormalization" }},
           {{ type = "Activation", activation = "relu" }},
           {{ type = "SeparableConv2D", filters = {n}, kernel_size = 3, padding = "same" }},
           {{ type = "BatchNormalization" }},
           {{ type = "MaxPooling2D", pool_size = 3, strides = 2, padding = "same" }} ]
shortcut = [ {{ type = "Conv2D", filters = {n}, kernel_size = 1, strides = 2, padding = "same" }} ]
"""
    tail = """
[[model.layers]]
type = "SeparableConv2D"
filters = 1024
kernel_size = 3
padding = "same"
[[model.layers]]
type = "BatchNormalization"
[[model.layers]]
type = "Activation"
activation = "relu"
[[model.layers]]
type = "GlobalAveragePooling2D"
[[model.layers]]
type = "Dropout"
rate = 0.5
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""
    return head + "".join(block.format(n=n) for n in (128, 256, 512, 728)) + tail


@pytest.mark.slow
def test_small_xception_from_scratch_matches_keras_io():
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(64, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for size in [128, 256, 512, 728]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.SeparableConv2D(1024, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    summary = validated(small_xception_toml(), images(32))
    assert_same_counts(summary, keras.Model(inputs, outputs))
    block = next(row for row in summary.layers if row.kind == "block")
    inside = [row for row in summary.layers if row.path.startswith(block.path + ".")]
    assert block.type == "Residual" and block.name == "add" and len(inside) == 8
    assert block.params == sum(row.params for row in inside)
    assert inside[-1].path == f"{block.path}.shortcut[0]"


# -- the Keras guide's frozen Xception, and TensorFlow's MobileNetV2 transfer tutorial --------

FROZEN_XCEPTION = """
[[model.layers]]
type = "RandomFlip"
mode = "horizontal"
[[model.layers]]
type = "RandomRotation"
factor = 0.1
[[model.layers]]
type = "Xception"
weights = "none"
include_top = false
trainable = false
preprocess = true
[[model.layers]]
type = "GlobalAveragePooling2D"
[[model.layers]]
type = "Dropout"
rate = 0.2
[[model.layers]]
type = "Dense"
units = 1
"""


@pytest.mark.slow
def test_frozen_xception_matches_the_keras_transfer_learning_guide():
    base_model = keras.applications.Xception(weights=None, input_shape=(71, 71, 3), include_top=False)
    base_model.trainable = False
    inputs = keras.Input(shape=(71, 71, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.1)(x)
    x = layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
    x = base_model(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1)(x)
    summary = validated(FROZEN_XCEPTION, images(71))
    assert_same_counts(summary, keras.Model(inputs, outputs))
    backbone = summary.layers[2]
    assert (backbone.kind, backbone.trainable, backbone.params) == ("backbone", False, base_model.count_params())
    nested = [row for row in summary.layers if row.depth == 1]
    assert nested[0].type == "Rescaling" and nested[0].name.endswith("_preprocess")
    assert len(nested) == 1 + len(base_model.layers) - 1 and not any(row.trainable for row in nested[1:])


MOBILENET_V2_TUTORIAL = """
[[model.layers]]
type = "RandomFlip"
mode = "horizontal"
[[model.layers]]
type = "RandomRotation"
factor = 0.2
[[model.layers]]
type = "MobileNetV2"
weights = "none"
include_top = false
trainable = false
preprocess = true
[[model.layers]]
type = "GlobalAveragePooling2D"
[[model.layers]]
type = "Dropout"
rate = 0.2
[[model.layers]]
type = "Dense"
units = 1
"""


@pytest.mark.slow
def test_mobilenet_v2_matches_the_tensorflow_transfer_tutorial():
    base_model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None)
    base_model.trainable = False
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.2)(x)
    x = layers.Rescaling(1.0 / 127.5, offset=-1)(x)  # mobilenet_v2.preprocess_input
    x = base_model(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1)(x)
    assert_same_counts(validated(MOBILENET_V2_TUTORIAL, images(32)), keras.Model(inputs, outputs))


def test_the_backbone_preprocessing_is_the_familys_own():
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for name, module in (
        ("MobileNetV2", keras.applications.mobilenet_v2),
        ("DenseNet121", keras.applications.densenet),
    ):
        from tfbench import backbones

        ((type_name, args),) = backbones.preprocessing_layers(name)
        ours = getattr(layers, type_name)(**args)(pixels)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(module.preprocess_input(pixels.copy())), atol=1e-4)


# -- an Inception-style parallel block and a self-attention text classifier ------------------

INCEPTION = """
[[model.layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[model.layers]]
type = "Parallel"
branches = [
  [ { type = "Conv2D", filters = 64, kernel_size = 1, activation = "relu" } ],
  [ { type = "Conv2D", filters = 48, kernel_size = 1, activation = "relu" },
    { type = "Conv2D", filters = 64, kernel_size = 5, padding = "same", activation = "relu" } ],
  [ { type = "Conv2D", filters = 64, kernel_size = 1, activation = "relu" },
    { type = "Conv2D", filters = 96, kernel_size = 3, padding = "same", activation = "relu" },
    { type = "Conv2D", filters = 96, kernel_size = 3, padding = "same", activation = "relu" } ],
  [ { type = "AveragePooling2D", pool_size = 3, strides = 1, padding = "same" },
    { type = "Conv2D", filters = 32, kernel_size = 1, activation = "relu" } ],
]
[[model.layers]]
type = "GlobalAveragePooling2D"
[[model.layers]]
type = "Dense"
units = 10
activation = "softmax"
"""


def test_inception_style_parallel_block_matches_plain_keras():
    inputs = keras.Input(shape=(16, 16, 3))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    b1 = layers.Conv2D(64, 1, activation="relu")(x)
    b2 = layers.Conv2D(48, 1, activation="relu")(x)
    b2 = layers.Conv2D(64, 5, padding="same", activation="relu")(b2)
    b3 = layers.Conv2D(64, 1, activation="relu")(x)
    b3 = layers.Conv2D(96, 3, padding="same", activation="relu")(b3)
    b3 = layers.Conv2D(96, 3, padding="same", activation="relu")(b3)
    b4 = layers.AveragePooling2D(3, strides=1, padding="same")(x)
    b4 = layers.Conv2D(32, 1, activation="relu")(b4)
    x = layers.concatenate([b1, b2, b3, b4])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    summary = validated(INCEPTION, images(16, classes=10))
    assert_same_counts(summary, keras.Model(inputs, outputs))
    block = summary.layers[1]
    assert (block.kind, block.type, block.output_shape) == ("block", "Parallel", [14, 14, 256])
    assert [row.path for row in summary.layers if row.depth == 1][3] == "model.layers[1].branches[2][0]"


SELF_ATTENTION = """
[[model.layers]]
type = "Embedding"
input_dim = 20000
output_dim = 32
[[model.layers]]
type = "Residual"
layers = [ { type = "MultiHeadAttention", num_heads = 2, key_dim = 32 }, { type = "Dropout", rate = 0.1 } ]
[[model.layers]]
type = "LayerNormalization"
epsilon = 1e-6
[[model.layers]]
type = "Residual"
layers = [ { type = "Dense", units = 32, activation = "relu" }, { type = "Dense", units = 32 },
           { type = "Dropout", rate = 0.1 } ]
[[model.layers]]
type = "LayerNormalization"
epsilon = 1e-6
[[model.layers]]
type = "GlobalAveragePooling1D"
[[model.layers]]
type = "Dropout"
rate = 0.1
[[model.layers]]
type = "Dense"
units = 20
activation = "relu"
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
"""


def test_self_attention_text_classifier_matches_plain_keras():
    inputs = keras.Input(shape=(40,), dtype="int32")
    x = layers.Embedding(20000, 32)(inputs)
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=32)(x, x)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.add([layers.Dropout(0.1)(attention), x]))
    ffn = layers.Dense(32)(layers.Dense(32, activation="relu")(x))
    x = layers.LayerNormalization(epsilon=1e-6)(layers.add([layers.Dropout(0.1)(ffn), x]))
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    summary = validated(SELF_ATTENTION, TOPICS)
    assert_same_counts(summary, keras.Model(inputs, outputs))
    attention_row = summary.layers[2]
    assert (attention_row.type, attention_row.path, attention_row.output_shape) == (
        "MultiHeadAttention",
        "model.layers[1].layers[0]",
        [40, 32],
    )


# -- errors at their places -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "info", "location", "words"),
    [
        (
            '[[model.layers]]\ntype = "Residual"\nlayers = [ { type = "Conv2D", filters = 8, kernel_size = 3 } ]\n'
            '[[model.layers]]\ntype = "Flatten"\n[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n',
            images(8),
            "model.layers[0].merge",
            "shortcut",
        ),
        (
            '[[model.layers]]\ntype = "MobileNetV2"\nweights = "none"\ninclude_top = false\npooling = "avg"\n'
            '[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n',
            images(8),
            "model.layers[0]",
            "Resizing",
        ),
        (
            '[[model.layers]]\ntype = "MobileNetV2"\nweights = "imagenet"\ninclude_top = false\npooling = "avg"\n'
            '[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n',
            images(32, channels=1),
            "model.layers[0]",
            "3 colour channels",
        ),
        (
            '[[model.layers]]\ntype = "Xception"\nweights = "none"\ninclude_top = false\npooling = "avg"\n'
            '[[model.layers]]\ntype = "Dense"\nunits = 2\nactivation = "softmax"\n',
            images(64),
            "model.layers[0]",
            "71×71",
        ),
        (
            '[[model.layers]]\ntype = "Parallel"\nbranches = [ [ { type = "Dense", units = 4 } ], '
            '[ { type = "Flatten" }, '
            '{ type = "Conv2D", filters = 2, kernel_size = 3 } ] ]\n',
            images(8),
            "model.layers[0].branches[1][1]",
            "needs 3-D input",
        ),
    ],
)
def test_build_errors_name_their_place(toml, info, location, words):
    with pytest.raises(UserError) as caught:
        validated(toml, info)
    assert caught.value.location == location
    assert words in f"{caught.value.message} {caught.value.hint}"


def test_the_resizing_layer_a_too_small_backbone_suggests_validates_when_pasted_in():
    import re

    backbone = '{ type = "MobileNetV2", weights = "none", alpha = 0.35, include_top = false, pooling = "avg" }'
    head = '{ type = "Dense", units = 2, activation = "softmax" }'
    with pytest.raises(UserError) as caught:
        validated(f"[model]\nlayers = [ {backbone}, {head} ]\n", images(8))
    suggested = re.search(r"\{ type = \"Resizing\"[^}]*\}", caught.value.hint).group(0)
    summary = validated(f"[model]\nlayers = [ {suggested}, {backbone}, {head} ]\n", images(8))
    size = int(re.search(r"height = (\d+)", suggested).group(1))
    assert summary.layers[0].type == "Resizing" and summary.layers[0].output_shape == [size, size, 3]
    assert summary.output_shape == [2]


def test_a_preset_with_resizing_before_a_backbone_validates():
    preset = """
[[model.layers]]
type = "Resizing"
height = 71
width = 71
[[model.layers]]
type = "Xception"
weights = "none"
include_top = false
pooling = "avg"
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
"""
    summary = validated(preset, images(64))
    assert summary.layers[0].output_shape == [71, 71, 3]
    assert summary.output_shape == [2]


# -- tfbench code: the same models with the Functional API ------------------------------------


def ten_classes(toml: str) -> str:
    """The same model with a 10-class head, for CIFAR-10's shapes."""
    return toml.replace('units = 1\nactivation = "sigmoid"', 'units = 10\nactivation = "softmax"').replace(
        "units = 1\n", 'units = 10\nactivation = "softmax"\n'
    )


NESTED = """
[[model.layers]]
type = "Parallel"
merge = "add"
branches = [ [ { type = "Residual", layers = [ { type = "Conv2D", filters = 3, kernel_size = 1 } ] } ], [] ]
[[model.layers]]
type = "TimeDistributed"
layer = { type = "Dense", units = 4 }
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Dense"
units = 10
activation = "softmax"
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layers_toml", "source"),
    [
        (BIDIRECTIONAL_IMDB, "keras:imdb"),
        (ten_classes(small_xception_toml()), "keras:cifar10"),
        (ten_classes(MOBILENET_V2_TUTORIAL), "keras:cifar10"),
        (INCEPTION, "keras:cifar10"),
        (SELF_ATTENTION, "keras:imdb"),
        (NESTED, "keras:cifar10"),
    ],
    ids=["bidirectional", "small-xception", "mobilenet-v2", "inception", "self-attention", "nested"],
)
def test_tfbench_code_writes_the_same_model_with_the_functional_api(layers_toml, source):
    from tfbench import data
    from tfbench.codegen import generate_script

    exp = experiment_from_dict(parse_toml(f'name = "t"\n[data]\nsource = "{source}"\n' + layers_toml))
    script = generate_script(exp)
    model_part = script.split("def build_model")[1].split("return model")[0]
    assert "keras.Input(" in model_part and "tfbench" not in model_part
    namespace: dict = {"__name__": "generated"}
    exec(compile(script, "train.py", "exec"), namespace)
    theirs = namespace["build_model"]()
    ours = build.build_model(exp, data.describe(exp.data, seed=exp.train.seed), compile=False)
    assert counts(theirs) == counts(ours)
    assert [type(layer).__name__ for layer in theirs.layers] == [type(layer).__name__ for layer in ours.layers]


# -- import layers: a Functional .keras back into blocks --------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("toml", "info"),
    [
        (small_xception_toml(), images(32)),
        (INCEPTION, images(16, classes=10)),
        (SELF_ATTENTION, TOPICS),
        (BIDIRECTIONAL_IMDB, IMDB),
        (NESTED, images(8, classes=10)),
    ],
    ids=["small-xception", "inception", "self-attention", "bidirectional", "nested"],
)
def test_import_layers_turns_a_functional_model_into_the_same_blocks(toml, info, tmp_path):
    exp = experiment_from_dict(parse_toml('name = "t"\n' + toml))
    build.build_model(exp, info, compile=False).save(tmp_path / "m.keras")
    imported = build.import_layers(tmp_path / "m.keras")
    again = experiment_from_dict({"name": "t", "model": {"layers": [c.model_dump() for c in imported]}})
    ours, theirs = build.build_model(exp, info, compile=False), build.build_model(again, info, compile=False)
    assert counts(theirs) == counts(ours)
    assert [type(layer).__name__ for layer in theirs.layers] == [type(layer).__name__ for layer in ours.layers]
    if toml is not NESTED:  # a two-branch Parallel with `add` is the same graph as a Residual
        rows = build.summarize(exp, info).layers
        assert [(r.path, r.type, r.params) for r in build.summarize(again, info).layers] == [
            (r.path, r.type, r.params) for r in rows
        ]


def test_import_layers_reads_a_plain_keras_residual_model(tmp_path):
    inputs = keras.Input(shape=(8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.add([x, y])  # the shortcut first: add is commutative, so it is a Residual
    branches = [layers.Conv2D(4, 1)(x), layers.MaxPooling2D(3, strides=1, padding="same")(x), x]
    x = layers.concatenate(branches)
    outputs = layers.Dense(2, activation="softmax")(layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "plain.keras")
    imported = [c.model_dump() for c in build.import_layers(tmp_path / "plain.keras")]
    assert [entry["type"] for entry in imported] == ["Conv2D", "Residual", "Parallel", "Flatten", "Dense"]
    assert imported[1]["layers"][0]["activation"] == "relu" and "shortcut" not in imported[1]
    assert [len(branch) for branch in imported[2]["branches"]] == [1, 1, 0]
    exp = experiment_from_dict({"name": "t", "model": {"layers": imported}})
    assert (
        build.summarize(exp, images(8)).total_params == keras.saving.load_model(tmp_path / "plain.keras").count_params()
    )
