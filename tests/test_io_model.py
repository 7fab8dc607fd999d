"""Several inputs and outputs: the preset form builds the models plain Keras' Functional API builds.

The presets are written in the `[[model.inputs]]` / `model.merge` / `[[model.outputs]]` form,
validated as `tfbench validate` does (their data an npz whose arrays are named like the inputs and
outputs) and compared — total and trainable parameters, output shapes — with the same models
written in plain Keras from the keras.io texts they come from.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from keras import layers
from multi_io_cases import TICKETS, counts, guide_ticket_model, write_tickets

from tfbench import build, data, models
from tfbench.cli import cli
from tfbench.errors import UserError
from tfbench.io_model import data_names
from tfbench.spec import experiment_from_dict, load_experiment, parse_toml


def validated(path, overrides=()):
    """The preset as `tfbench validate` sees it: loaded, its data described, its model built offline."""
    exp = load_experiment(path, list(overrides))
    info = data.describe(exp.data, exp.train.seed, io=data_names(exp))
    return exp, models.summarize(exp, info)


# -- the Functional API guide's ticket model ------------------------------------------------------


def test_ticket_model_has_the_guides_parameter_counts(tmp_path):
    _, summary = validated(write_tickets(tmp_path, n=64))
    assert (summary.total_params, summary.trainable_params) == counts(guide_ticket_model())
    assert summary.total_params == 1_392_097
    assert summary.inputs == {"title": [10], "body": [100], "tags": [12]}
    assert summary.outputs == {"priority": [1], "department": [4]}


def test_ticket_model_summary_shows_inputs_merge_trunk_and_heads(tmp_path):
    _, summary = validated(write_tickets(tmp_path, n=64))
    rows = [(r.kind, r.path, r.depth, r.output_shape, r.params) for r in summary.layers]
    assert rows == [
        ("input", "model.inputs[0]", 0, [10], 0),
        ("layer", "model.inputs[0].layers[0]", 1, [10, 64], 640_000),
        ("layer", "model.inputs[0].layers[1]", 1, [128], 98_816),
        ("input", "model.inputs[1]", 0, [100], 0),
        ("layer", "model.inputs[1].layers[0]", 1, [100, 64], 640_000),
        ("layer", "model.inputs[1].layers[1]", 1, [32], 12_416),
        ("input", "model.inputs[2]", 0, [12], 0),
        ("merge", "model.merge", 0, [172], 0),
        ("output", "model.outputs[0]", 0, [1], 173),
        ("layer", "model.outputs[0].layers[0]", 1, [1], 173),
        ("output", "model.outputs[1]", 0, [4], 692),
        ("layer", "model.outputs[1].layers[0]", 1, [4], 692),
    ]
    # The heads' last layers are named after their outputs, as the guide names them.
    names = {r.path: r.name for r in summary.layers}
    assert names["model.outputs[0].layers[0]"] == "priority"
    assert names["model.merge"] == "concatenate"


def test_ticket_model_builds_a_dict_in_dict_out_keras_model(tmp_path):
    exp = load_experiment(write_tickets(tmp_path, n=64))
    info = data.describe(exp.data, exp.train.seed, io=data_names(exp))
    model = models.build_model(exp, info)
    assert sorted(model.input_names if hasattr(model, "input_names") else [t.name for t in model.inputs]) == [
        "body",
        "tags",
        "title",
    ]
    x = {"title": np.zeros((2, 10), "int32"), "body": np.zeros((2, 100), "int32"), "tags": np.zeros((2, 12))}
    out = model.predict(x, verbose=0)
    assert {k: v.shape for k, v in out.items()} == {"priority": (2, 1), "department": (2, 4)}
    assert counts(model) == counts(guide_ticket_model())


def test_validate_prints_each_input_the_merge_and_each_head(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(write_tickets(tmp_path, n=64))], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "inputs title (10,), body (100,), tags (12,)" in result.output
    for line in ("Input title", "Concatenate", "Output priority", "Output department"):
        assert line in result.output
    assert "1,392,097 total, 1,392,097 trainable" in result.output
    as_json = json.loads(
        CliRunner().invoke(cli, ["validate", str(tmp_path / "tickets.toml"), "--json"], catch_exceptions=False).output
    )
    assert as_json["params"] == {"total": 1_392_097, "trainable": 1_392_097}
    assert as_json["outputs"] == {"priority": [1], "department": [4]}
    assert [r["kind"] for r in as_json["layers"]].count("input") == 3


# -- errors name their place; --set reaches the stacks ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ("model.inputs[1].layers[0].output_dim=-4", "model.inputs[1].layers[0].output_dim"),
        ("model.inputs[1].layers[1].unitz=4", "model.inputs[1].layers[1].unitz"),
        ('model.outputs[0].loss="binary_crossentropi"', "model.outputs[0].loss"),
        ('model.outputs[1].metrics=["acuracy"]', "model.outputs[1].metrics[0]"),
        ('model.merge="concat"', "model.merge"),
        ('model.outputs[1].name="title"', "model.outputs[1].name"),
        ('model.outputs[1].layers[0].name="title"', "model.outputs[1].layers[0].name"),
        ('train.loss="mse"', "train.loss"),
        ("model.outputs[0].loss_weight=-1", "model.outputs[0].loss_weight"),
    ],
)
def test_mistakes_in_inputs_and_outputs_name_their_place(tmp_path, change, location):
    path = write_tickets(tmp_path, n=16)
    with pytest.raises(UserError) as caught:
        validated(path, [change])
    assert caught.value.location.endswith(location), str(caught.value)


def test_unknown_key_in_an_input_suggests_the_right_one():
    text = TICKETS.replace('name = "tags"', 'name = "tags"\nlayer = []')
    with pytest.raises(UserError) as caught:
        experiment_from_dict(parse_toml(text))
    assert caught.value.location == "model.inputs[2].layer"
    assert "layers" in (caught.value.hint or "")


def test_a_head_that_does_not_fit_its_labels_is_refused_at_the_head(tmp_path):
    path = write_tickets(tmp_path, n=16)
    with pytest.raises(UserError) as caught:
        validated(path, ["model.outputs[1].layers[0].units=3"])
    assert caught.value.location.endswith("model.outputs[1].layers[0]")
    assert "(4,)" in caught.value.message


def test_an_array_the_npz_lacks_is_named_at_its_input(tmp_path):
    path = write_tickets(tmp_path, n=16)
    with pytest.raises(UserError) as caught:
        validated(path, ['model.inputs[2].name="tag"'])
    assert caught.value.location.endswith("model.inputs[2].name")
    assert "'tags'" in (caught.value.hint or "")


def test_set_reaches_a_layer_inside_an_input_stack(tmp_path):
    exp, summary = validated(write_tickets(tmp_path, n=16), ["model.inputs[1].layers[1].units=64"])
    assert exp.model.inputs[1].layers[1].args["units"] == 64
    assert {r.path: r.output_shape for r in summary.layers}["model.inputs[1].layers[1]"] == [64]


def test_a_plain_preset_means_what_it_meant():
    exp = experiment_from_dict(parse_toml('[[model.layers]]\ntype = "Dense"\nunits = 2\n'))
    assert set(exp.to_dict()["model"]) == {"layers"}
    assert data_names(exp) is None


def test_a_plain_data_source_refuses_named_inputs():
    text = TICKETS.replace('source = "npz:tickets.npz"', 'source = "builtin:digits"')
    exp = experiment_from_dict(parse_toml(text))
    with pytest.raises(UserError) as caught:
        data.describe(exp.data, exp.train.seed, io=data_names(exp))
    assert caught.value.location == "model.inputs"


# -- held-out: other keras.io models with several inputs or outputs --------------------------------

# keras.io/guides/training_with_built_in_methods, "Passing data to multi-input, multi-output models".
SCORE_AND_CLASS = """
name = "score-and-class"
[data]
source = "npz:data.npz"
[[model.inputs]]
name = "img_input"
layers = [ { type = "Conv2D", filters = 3, kernel_size = 3 }, { type = "GlobalMaxPooling2D" } ]
[[model.inputs]]
name = "ts_input"
layers = [ { type = "Conv1D", filters = 3, kernel_size = 3 }, { type = "GlobalMaxPooling1D" } ]
[[model.outputs]]
name = "score_output"
layers = [ { type = "Dense", units = 1 } ]
loss = "mean_squared_error"
[[model.outputs]]
name = "class_output"
layers = [ { type = "Dense", units = 5 } ]
loss = "categorical_crossentropy"
[train]
optimizer = { type = "RMSprop", learning_rate = 1e-3 }
"""


def test_training_guides_score_and_class_model(tmp_path):
    rng = np.random.RandomState(1)
    np.savez(
        tmp_path / "data.npz",
        img_input=rng.random_sample((40, 32, 32, 3)),
        ts_input=rng.random_sample((40, 20, 10)),
        score_output=rng.random_sample((40, 1)),
        class_output=rng.random_sample((40, 5)),
    )
    (tmp_path / "p.toml").write_text(SCORE_AND_CLASS)
    _, summary = validated(tmp_path / "p.toml")
    image_input = keras.Input(shape=(32, 32, 3), name="img_input")
    timeseries_input = keras.Input(shape=(None, 10), name="ts_input")
    x1 = layers.GlobalMaxPooling2D()(layers.Conv2D(3, 3)(image_input))
    x2 = layers.GlobalMaxPooling1D()(layers.Conv1D(3, 3)(timeseries_input))
    x = layers.concatenate([x1, x2])
    score_output = layers.Dense(1, name="score_output")(x)
    class_output = layers.Dense(5, name="class_output")(x)
    reference = keras.Model([image_input, timeseries_input], [score_output, class_output])
    assert (summary.total_params, summary.trainable_params) == counts(reference)
    assert summary.outputs == {"score_output": [1], "class_output": [5]}


# keras.io/examples/structured_data/structured_data_classification_from_scratch (its first
# version): a named input per feature, each normalised, concatenated, one sigmoid output.
FEATURES = """
name = "heart"
[data]
source = "npz:heart.npz"
options = { y = "target" }
[[model.inputs]]
name = "age"
layers = [ { type = "Normalization", mean = 54.4, variance = 81.7 } ]
[[model.inputs]]
name = "trestbps"
layers = [ { type = "Normalization", mean = 131.7, variance = 306.8 } ]
[[model.inputs]]
name = "thal"
layers = [ { type = "Embedding", input_dim = 5, output_dim = 3 }, { type = "Flatten" } ]
[[model.layers]]
type = "Dense"
units = 32
activation = "relu"
[[model.layers]]
type = "Dropout"
rate = 0.5
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""


def test_one_input_per_feature_and_one_output_uses_the_plain_loss_rules(tmp_path):
    rng = np.random.RandomState(2)
    np.savez(
        tmp_path / "heart.npz",
        age=rng.normal(54, 9, (50, 1)),
        trestbps=rng.normal(131, 17, (50, 1)),
        thal=rng.randint(5, size=(50, 1)),
        target=rng.randint(2, size=50),
    )
    (tmp_path / "p.toml").write_text(FEATURES)
    exp, summary = validated(tmp_path / "p.toml")
    age, trestbps, thal = (keras.Input((1,), name=n) for n in ("age", "trestbps", "thal"))
    x = layers.concatenate(
        [
            layers.Normalization(mean=54.4, variance=81.7)(age),
            layers.Normalization(mean=131.7, variance=306.8)(trestbps),
            layers.Flatten()(layers.Embedding(5, 3)(thal)),
        ]
    )
    out = layers.Dense(1, activation="sigmoid")(layers.Dropout(0.5)(layers.Dense(32, activation="relu")(x)))
    assert (summary.total_params, summary.trainable_params) == counts(keras.Model([age, trestbps, thal], out))
    info = data.describe(exp.data, exp.train.seed, io=data_names(exp))
    assert build.resolve_loss(exp, info) == "binary_crossentropy"
    assert summary.outputs == {} and list(summary.inputs) == ["age", "trestbps", "thal"]


# Blocks nest inside input and output stacks; the inputs meet in an add; one input's own data,
# two heads (a regression and a classification) after a shared trunk.
NESTED = """
name = "nested"
[data]
source = "npz:nested.npz"
[[model.inputs]]
name = "left"
layers = [ { type = "Parallel", branches = [ [ { type = "Dense", units = 8 } ], [ { type = "Dense", units = 8 } ] ] } ]
[[model.inputs]]
name = "right"
layers = [ { type = "Dense", units = 16, activation = "relu" } ]
[model]
merge = "add"
[[model.layers]]
type = "Residual"
layers = [ { type = "Dense", units = 16, activation = "relu" } ]
[[model.outputs]]
name = "age"
layers = [ { type = "Dense", units = 1 } ]
[[model.outputs]]
name = "kind"
layers = [ { type = "Residual", layers = [ { type = "Dense", units = 16 } ] },
           { type = "Dense", units = 3, activation = "softmax" } ]
metrics = ["accuracy"]
"""


def nested_npz(path, n: int = 60) -> None:
    rng = np.random.RandomState(3)
    np.savez(
        path,
        left=rng.normal(size=(n, 5)),
        right=rng.normal(size=(n, 7)),
        age=rng.normal(size=(n, 1)),
        kind=rng.randint(3, size=n),
    )


def test_blocks_nest_in_input_and_output_stacks(tmp_path):
    nested_npz(tmp_path / "nested.npz")
    (tmp_path / "p.toml").write_text(NESTED)
    exp, summary = validated(tmp_path / "p.toml")
    left, right = keras.Input((5,), name="left"), keras.Input((7,), name="right")
    a = layers.Concatenate()([layers.Dense(8)(left), layers.Dense(8)(left)])
    b = layers.Dense(16, activation="relu")(right)
    x = layers.Add()([a, b])
    x = layers.Add()([layers.Dense(16, activation="relu")(x), x])
    age = layers.Dense(1)(x)
    k = layers.Add()([layers.Dense(16)(x), x])
    kind = layers.Dense(3, activation="softmax")(k)
    assert (summary.total_params, summary.trainable_params) == counts(keras.Model([left, right], [age, kind]))
    paths = [r.path for r in summary.layers]
    assert "model.inputs[0].layers[0].branches[1][0]" in paths
    assert "model.outputs[1].layers[0].layers[0]" in paths
    info = data.describe(exp.data, exp.train.seed, io=data_names(exp))
    assert models.needs_one_hot(exp, info) == {"age": False, "kind": False}
    assert {o: i.label_kind for o, i in info.outputs.items()} == {"age": "regression", "kind": "categorical"}


def test_inputs_that_cannot_be_added_are_refused_at_the_merge(tmp_path):
    nested_npz(tmp_path / "nested.npz")
    (tmp_path / "p.toml").write_text(NESTED)
    with pytest.raises(UserError) as caught:
        validated(tmp_path / "p.toml", ["model.inputs[1].layers[0].units=12"])
    assert caught.value.location.endswith("model.merge")
    assert "left gives (16,), right gives (12,)" in caught.value.message
