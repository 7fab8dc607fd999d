"""The Experiment: load, validate, dump and override presets; every mistake is located."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_runs import write_preset

from tfbench import spec
from tfbench.errors import UserError
from tfbench.spec import Component, Experiment

GOOD = """\
name = "tiny"
description = "A small preset for tests."

[data]
source = "builtin:spiral"
validation_split = 0.25
batch_size = 16

[[model.layers]]
type = "Dense"
units = 8
activation = "relu"

[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"

[train]
epochs = 3
optimizer = { type = "Adam", learning_rate = 1e-3 }
schedule = { type = "ExponentialDecay", initial_learning_rate = 0.01, decay_steps = 100, decay_rate = 0.9 }
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy", { type = "AUC", curve = "PR" }]
seed = 7
callbacks = [ { type = "EarlyStopping", monitor = "val_loss", patience = 2, restore_best_weights = true } ]

[export]
formats = ["keras", "tflite"]
tflite_quantization = "dynamic"
"""


def load_error(tmp_path: Path, text: str, overrides: list[str] | None = None) -> UserError:
    path = write_preset(tmp_path, text)
    with pytest.raises(UserError) as info:
        spec.load_experiment(path, overrides)
    return info.value


def located(err: UserError, tmp_path: Path) -> str:
    """The location inside the file (the part after `preset.toml: `)."""
    prefix = f"{tmp_path / 'preset.toml'}: "
    assert err.location.startswith(prefix), err.location
    return err.location[len(prefix) :]


# -- load / dump -------------------------------------------------------------------------------


def test_load_reads_every_section(tmp_path):
    exp = spec.load_experiment(write_preset(tmp_path, GOOD))
    assert exp.name == "tiny" and exp.data.kind == "builtin" and exp.data.target == "spiral"
    assert [layer.type for layer in exp.model.layers] == ["Dense", "Dense"]
    assert exp.model.layers[0].args == {"units": 8, "activation": "relu"}
    assert exp.train.optimizer.args == {"learning_rate": 1e-3}
    assert exp.train.schedule.type == "ExponentialDecay"
    assert exp.train.metrics[0] == "accuracy" and exp.train.metrics[1].args == {"curve": "PR"}
    assert exp.train.callbacks[0].args["patience"] == 2
    assert exp.export.formats == ["keras", "tflite"]


def test_dump_then_load_gives_the_same_experiment(tmp_path):
    exp = spec.load_experiment(write_preset(tmp_path, GOOD))
    saved = spec.save_experiment(exp, tmp_path / "again.toml")
    again = spec.load_experiment(saved)
    assert again == exp
    assert again.to_toml() == exp.to_toml()


@pytest.mark.parametrize("name", spec.shipped_presets())
def test_shipped_presets_validate_and_round_trip(name):
    exp = spec.load_experiment(name)
    assert spec.experiment_from_dict(spec.parse_toml(exp.to_toml())) == exp


def test_defaults_make_a_valid_experiment():
    exp = Experiment()
    assert exp.train.optimizer == Component.of("Adam", learning_rate=1e-3)
    assert spec.experiment_from_dict(exp.to_dict()) == exp


def test_dump_leaves_out_empty_data_options_but_keeps_given_ones():
    exp = Experiment()
    assert "options" not in exp.to_dict()["data"]
    assert "[data.options]" not in exp.to_toml()
    again = spec.experiment_from_dict(spec.parse_toml(exp.to_toml()))
    assert again == exp and again.data.options == {}
    with_options = exp.copy_with(['data.options.label="y"'])
    assert with_options.to_dict()["data"]["options"] == {"label": "y"}
    assert spec.experiment_from_dict(spec.parse_toml(with_options.to_toml())) == with_options


def test_importing_spec_does_not_import_tensorflow():
    code = (
        "import sys; from tfbench import spec; spec.load_experiment('digits-cnn'); "
        "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# -- overrides ---------------------------------------------------------------------------------


def test_overrides_change_values(tmp_path):
    path = write_preset(tmp_path, GOOD)
    exp = spec.load_experiment(
        path,
        [
            "train.epochs=5",
            "model.layers[1].units=32",
            "train.optimizer.learning_rate=1e-4",
            'train.loss="mse"',
            "data.shuffle=false",
            'train.metrics=["mae"]',
        ],
    )
    assert exp.train.epochs == 5
    assert exp.model.layers[1].args["units"] == 32
    assert exp.train.optimizer.args["learning_rate"] == pytest.approx(1e-4)
    assert exp.train.loss == "mse" and exp.train.metrics == ["mae"] and exp.data.shuffle is False


def test_override_of_a_default_section_starts_from_its_defaults(tmp_path):
    """A preset without [train].optimizer still takes train.optimizer.learning_rate=… (the default Adam)."""
    exp = spec.load_experiment(
        write_preset(tmp_path, '[[model.layers]]\ntype = "Dense"\nunits = 1\n'), ["train.optimizer.learning_rate=1e-4"]
    )
    assert exp.train.optimizer.type == "Adam"
    assert exp.train.optimizer.args["learning_rate"] == pytest.approx(1e-4)


def test_optimizer_in_keras_string_form_is_that_optimizer_with_its_defaults(tmp_path):
    """`optimizer = "adam"` is read as Keras reads it; --set can still reach its arguments."""
    text = GOOD.replace('optimizer = { type = "Adam", learning_rate = 1e-3 }', 'optimizer = "adam"')
    path = write_preset(tmp_path, text)
    exp = spec.load_experiment(path)
    assert exp.train.optimizer.type == "Adam" and exp.train.optimizer.args == {}
    assert spec.load_experiment(path, ['train.optimizer="rmsprop"']).train.optimizer.type == "RMSprop"
    assert spec.load_experiment(path, ["train.optimizer=SGD"]).train.optimizer.type == "SGD"
    tuned = spec.load_experiment(path, ["train.optimizer.learning_rate=1e-4"]).train.optimizer
    assert tuned.type == "Adam" and tuned.args["learning_rate"] == pytest.approx(1e-4)
    assert spec.experiment_from_dict(Experiment.model_validate(exp.to_dict()).to_dict()) == exp
    err = load_error(tmp_path, text, ["train.optimizer=adamm"])
    assert located(err, tmp_path) == "train.optimizer" and "'Adam'" in err.hint


def test_copy_with_validates():
    exp = spec.load_experiment("digits-mlp")
    assert exp.copy_with(["train.epochs=2"]).train.epochs == 2
    with pytest.raises(UserError) as info:
        exp.copy_with(["train.epochs=0"])
    assert info.value.location == "train.epochs"


@pytest.mark.parametrize(
    "override, location, words",
    [
        ("train.epoch=5", "train.epoch", "did you mean 'epochs'?"),
        ("train.epochs=abc", "train.epochs", "expected an integer, got 'abc'"),
        ("model.layers[1].unit=3", "model.layers[1].unit", "did you mean 'units'?"),
        ("model.layers[1].units=abc", "model.layers[1].units", "expected an integer"),
        ("train.optimizer.type=Adamm", "train.optimizer", "did you mean 'Adam'"),
    ],
)
def test_bad_override_values_are_located(tmp_path, override, location, words):
    err = load_error(tmp_path, GOOD, [override])
    assert located(err, tmp_path) == location
    assert words in str(err)


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.epochs", "expected KEY=VALUE"),
        ("model.layers[9].units=3", "no item 9"),
        ("train.epochs.x=3", "inside a value"),
        ("train..epochs=3", "dotted key"),
    ],
)
def test_bad_override_keys_name_the_override(tmp_path, override, words):
    err = load_error(tmp_path, GOOD, [override])
    assert err.location.startswith("--set ")
    assert words in err.message


# -- bad presets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, location, words",
    [
        # unknown keys, with close matches
        (("", 'nam = "x"\n'), "nam", "did you mean 'name'?"),
        (("[train]\n", "[train]\nepoch = 3\n"), "train.epoch", "did you mean 'epochs'?"),
        (("batch_size = 16", "batchsize = 16"), "data.batchsize", "did you mean 'batch_size'?"),
        (("[export]", "[exprt]"), "exprt", "did you mean 'export'?"),
        # unknown Keras names
        (('type = "Dense"\nunits = 8', 'type = "Dens"\nunits = 8'), "model.layers[0]", "did you mean 'Dense'?"),
        (('type = "Adam"', 'type = "Adamm"'), "train.optimizer", "unknown optimizer 'Adamm'"),
        (('"ExponentialDecay"', '"ExponentialDecy"'), "train.schedule", "did you mean 'ExponentialDecay'"),
        (
            ('"sparse_categorical_crossentropy"', '"sparse_categorical_crossentropi"'),
            "train.loss",
            "did you mean 'sparse_categorical_crossentropy'",
        ),
        (('["accuracy"', '["acuracy"'), "train.metrics[0]", "did you mean 'accuracy'"),
        (('"EarlyStopping"', '"EarlyStoping"'), "train.callbacks[0]", "did you mean 'EarlyStopping'?"),
        # Keras arguments
        (("units = 8", "unit = 8"), "model.layers[0].unit", "did you mean 'units'?"),
        (("units = 8", 'units = "abc"'), "model.layers[0].units", "expected an integer, got 'abc'"),
        (('activation = "relu"', 'activation = "relu2"'), "model.layers[0].activation", "'relu'"),
        (('units = 8\nactivation = "relu"', 'activation = "relu"'), "model.layers[0]", "needs 'units'"),
        (('curve = "PR"', 'curve = "PRR"'), "train.metrics[1].curve", "did you mean 'PR'?"),
        (("patience = 2", 'patience = "two"'), "train.callbacks[0].patience", "expected an integer"),
        (
            ("learning_rate = 1e-3", 'learning_rate = { class_name = "X" }'),
            "train.optimizer.learning_rate",
            "table is not accepted",
        ),
        # wrong types and out-of-range values
        (("epochs = 3", 'epochs = "three"'), "train.epochs", "expected an integer, got 'three'"),
        (("epochs = 3", "epochs = 0"), "train.epochs", "must be at least 1, got 0"),
        (("validation_split = 0.25", "validation_split = 1.5"), "data.validation_split", "must be less than 1"),
        (("batch_size = 16", "batch_size = 0"), "data.batch_size", "must be at least 1"),
        (("seed = 7", "seed = -1"), "train.seed", "must be at least 0"),
        (
            ('tflite_quantization = "dynamic"', 'tflite_quantization = "int4"'),
            "export.tflite_quantization",
            "got 'int4'",
        ),
        (('formats = ["keras", "tflite"]', 'formats = ["caffe"]'), "export.formats[0]", "got 'caffe'"),
        (('name = "tiny"', 'name = "has space"'), "name", "use letters"),
        (('source = "builtin:spiral"', 'source = "spiral"'), "data.source", "expected KIND:NAME"),
        (("[data]\n", "data = 3\n[data2]\n"), "data", "expected a table, got 3"),
        (("seed = 7", "seed = 7\nshuffle = 1"), "train.shuffle", "unknown key"),
    ],
)
def test_every_bad_preset_gets_a_located_user_error(tmp_path, change, location, words):
    old, new = change
    assert old in GOOD or old == ""
    text = new + GOOD if old == "" else GOOD.replace(old, new, 1)
    err = load_error(tmp_path, text)
    assert located(err, tmp_path) == location
    assert words in str(err)


def test_lambda_layer_is_rejected(tmp_path):
    text = GOOD.replace('type = "Dense"\nunits = 8\nactivation = "relu"', 'type = "Lambda"\nfunction = "x"')
    err = load_error(tmp_path, text)
    assert located(err, tmp_path) == "model.layers[0]"
    assert "not allowed" in err.message and "arbitrary Python code" in err.message


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    err = load_error(tmp_path, 'name = "x"\n[data\nsource = 1\n')
    assert err.location == str(tmp_path / "preset.toml")
    assert "TOML syntax error" in err.message and "line 2" in err.message


@pytest.mark.parametrize("text", ["", "  \n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    err = load_error(tmp_path, text)
    assert err.location == str(tmp_path / "preset.toml") and "empty" in err.message


@pytest.mark.parametrize("data", [b"\x00\x01\x02binary", b"\xff\xfe\xfd not utf-8"])
def test_binary_file(tmp_path, data):
    path = tmp_path / "preset.toml"
    path.write_bytes(data)
    with pytest.raises(UserError) as info:
        spec.load_experiment(path)
    assert info.value.location == str(path) and "binary file" in info.value.message


def test_missing_preset_suggests_shipped_names(tmp_path):
    with pytest.raises(UserError) as info:
        spec.load_experiment("digits-cnm")
    assert "'digits-cnn'" in info.value.hint
    with pytest.raises(UserError, match="folder"):
        spec.load_experiment(tmp_path)


def test_validation_errors_are_one_line(tmp_path):
    """The CLI prints `error: …` on one line: no message carries a newline."""
    for text in ("", 'epochs = "x"', '[[model.layers]]\ntype = "Dens"\n', "[train]\nepochs = 0\n"):
        err = load_error(tmp_path, text)
        assert "\n" not in str(err)
