"""The catalog: in step with the installed Keras, importable without it, safe, and helpful when wrong."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfbench import catalog
from tfbench.catalog import Param, generate
from tfbench.errors import UserError

# Arguments a class needs together that the signature alone cannot say (one of two is required).
EXTRA_ARGS = {
    "CategoryEncoding": {"num_tokens": 4},
    "Discretization": {"num_bins": 4},
    "Reshape": {"target_shape": [4]},
    "Permute": {"dims": [1]},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": [4]},
    "IoU": {"target_class_ids": [0]},
    "OneHotIoU": {"target_class_ids": [0]},
    "PiecewiseConstantDecay": {"boundaries": [10], "values": [0.1, 0.01]},
}
SAMPLE = {"int": 2, "float": 0.5, "int_or_tuple": 2, "list": [2], "str": "x", "any": 0.5, "bool": True}


def _error(kind: str, name: str, args: dict, location: str = "model.layers[2]") -> UserError:
    with pytest.raises(UserError) as info:
        catalog.check_component(kind, name, args, location)
    return info.value


# -- the cache ---------------------------------------------------------------------------------


def test_cache_matches_the_installed_keras():
    """catalog.json is exactly what the installed Keras generates (regenerate when it is not)."""
    fresh = generate.render(generate.generate())
    cached = catalog.CATALOG_PATH.read_text(encoding="utf-8")
    assert fresh == cached, (
        f"tfbench/catalog/catalog.json is out of date with the installed Keras; run `{catalog.REGENERATE_COMMAND}`"
    )


def test_cache_is_small_sorted_and_names_its_keras_version():
    """The packaged file stays small and deterministic, and records the Keras it came from."""
    import keras

    assert catalog.CATALOG_PATH.stat().st_size < 600_000
    data = json.loads(catalog.CATALOG_PATH.read_text(encoding="utf-8"))
    for kind in catalog.KINDS:
        rows = [row["name"] for row in data["kinds"][kind]]
        assert rows == sorted(rows), kind
    assert catalog.keras_version() == keras.__version__


def test_importing_the_catalog_does_not_import_keras_or_tensorflow():
    """The UI and the validator read the catalog without paying for Keras' import (or the generator)."""
    code = (
        "import sys; from tfbench import catalog; "
        "catalog.check_component('layers', 'Dense', {'units': 3}, 'x'); catalog.search('layers', 'conv'); "
        "bad = [m for m in ('tensorflow', 'keras', 'tfbench.catalog.generate') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kinds_hold_what_a_keras_user_expects():
    """The common classes of every kind are there, by class name and by alias."""
    layers = set(catalog.names("layers"))
    assert {
        "Dense",
        "Conv2D",
        "LSTM",
        "GRU",
        "Dropout",
        "BatchNormalization",
        "Flatten",
        "Embedding",
        "MaxPooling2D",
        "Rescaling",
        "Reshape",
        "GlobalAveragePooling2D",
    } <= layers
    assert {"Adam", "SGD", "RMSprop", "AdamW"} <= set(catalog.names("optimizers"))
    assert {"ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay"} <= set(catalog.names("schedules"))
    assert {
        "EarlyStopping",
        "ReduceLROnPlateau",
        "ModelCheckpoint",
        "CSVLogger",
        "TensorBoard",
        "BackupAndRestore",
        "TerminateOnNaN",
        "SwapEMAWeights",
    } <= set(catalog.names("callbacks"))
    assert catalog.get("losses", "mse").name == "MeanSquaredError"
    assert catalog.get("losses", "sparse_categorical_crossentropy").name == "SparseCategoricalCrossentropy"
    assert catalog.get("metrics", "mae").name == "MeanAbsoluteError"
    assert catalog.get("layers", "AvgPool2D").name == "AveragePooling2D"
    for ident in ("accuracy", "acc"):
        assert catalog.get("metrics", ident).category == catalog.IDENTIFIER_CATEGORY
    assert catalog.get("layers", "NoSuchLayer") is None
    dense = catalog.get("layers", "Dense")
    assert dense.category == "Core" and dense.help
    units = dense.params["units"]
    assert (units.kind, units.required) == ("int", True)
    assert "relu" in dense.params["activation"].choices
    assert dense.params["kernel_initializer"].default == "glorot_uniform"
    assert catalog.get("layers", "Conv2D").params["padding"].choices == ("valid", "same")
    assert catalog.get("callbacks", "EarlyStopping").params["mode"].choices == ("auto", "min", "max")


def test_layers_table_and_search():
    """`tfbench layers` rows and the picker's search put the likeliest match first."""
    rows = catalog.layers_table()
    assert len(rows) == len(catalog.names("layers"))
    assert all(isinstance(cell, str) for row in rows for cell in row)
    assert catalog.search("layers", "conv2d")[0].name == "Conv2D"
    assert catalog.search("layers", "dropout")[0].name == "Dropout"
    assert all("Pooling" in e.name or "Pool" in e.category for e in catalog.search("layers", "pooling"))
    assert catalog.search("layers", "zzzz-nothing") == []
    assert len(catalog.search("optimizers", "")) == len(catalog.names("optimizers"))


# -- safety ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, name, words",
    [
        ("layers", "Lambda", "arbitrary Python code"),
        ("layers", "TFSMLayer", "SavedModel"),
        ("layers", "Bidirectional", "wraps another layer"),
        ("layers", "TimeDistributed", "wraps another layer"),
        ("layers", "RNN", "wraps another layer"),
        ("layers", "Add", "several inputs"),
        ("layers", "Concatenate", "several inputs"),
        ("layers", "MultiHeadAttention", "several inputs"),
        ("layers", "InputLayer", "input comes from the data"),
        ("layers", "LSTMCell", "cell"),
        ("callbacks", "LambdaCallback", "arbitrary Python code"),
        ("callbacks", "LearningRateScheduler", "Python function"),
        ("callbacks", "RemoteMonitor", "network"),
        ("optimizers", "LossScaleOptimizer", "wraps another optimizer"),
    ],
)
def test_code_running_and_object_taking_classes_are_neither_offered_nor_accepted(kind, name, words):
    """No preset can make tfbench run code: such classes are absent and refused with the reason."""
    assert name not in catalog.names(kind)
    assert catalog.get(kind, name) is None
    err = _error(kind, name, {})
    assert "not allowed" in err.message and words in err.message
    assert err.location == "model.layers[2]"


def test_no_entry_takes_an_object_argument():
    """Arguments that hold layers, functions or dtype policies are left out of every entry."""
    for kind in catalog.KINDS:
        for entry in catalog.entries(kind):
            assert not set(entry.params) & generate.OBJECT_PARAMS, (kind, entry.name)
            assert entry.category != "Merging"


@pytest.mark.parametrize(
    "value",
    [
        {"class_name": "GlorotUniform", "config": {}},
        [{"class_name": "x"}],
    ],
)
def test_tables_as_argument_values_are_refused(value):
    """A TOML table would reach Keras deserialization, so it never gets past the catalog."""
    err = _error("layers", "Dense", {"units": 3, "kernel_initializer": value})
    assert "table is not accepted" in err.message
    assert err.location.startswith("model.layers[2].kernel_initializer")


def test_an_omitted_object_argument_is_refused_with_its_reason():
    err = _error("layers", "Dense", {"units": 3, "dtype": "float32"})
    assert err.location == "model.layers[2].dtype"
    assert "cannot be set from a preset" in err.message


def test_files_callbacks_write_default_into_the_run_directory():
    """ModelCheckpoint, BackupAndRestore and CSVLogger need no path in a preset."""
    for name, arg in (("ModelCheckpoint", "filepath"), ("BackupAndRestore", "backup_dir"), ("CSVLogger", "filename")):
        param = catalog.get("callbacks", name).params[arg]
        assert not param.required and "run directory" in param.help
        catalog.check_component("callbacks", name, {}, "train.callbacks[0]")


# -- in step with Keras --------------------------------------------------------------------------


def _minimal_args(entry) -> dict:
    args = {n: p.default for n, p in entry.params.items() if p.default is not None}
    for n, p in entry.params.items():
        if p.required:
            args[n] = p.choices[0] if p.choices else SAMPLE[p.kind]
    args.update(EXTRA_ARGS.get(entry.name, {}))
    return args


def _keras_module(kind: str):
    import keras

    return {
        "layers": keras.layers,
        "optimizers": keras.optimizers,
        "schedules": keras.optimizers.schedules,
        "losses": keras.losses,
        "metrics": keras.metrics,
        "callbacks": keras.callbacks,
    }[kind]


@pytest.mark.parametrize("kind", catalog.KINDS)
def test_every_entry_constructs_in_keras_with_its_defaults(kind, tmp_path):
    """Every offered class is built by Keras from the catalog's defaults plus minimal required args."""
    module = _keras_module(kind)
    failures = []
    for entry in catalog.entries(kind):
        if entry.category == catalog.IDENTIFIER_CATEGORY:
            continue
        args = _minimal_args(entry)
        for arg in ("filepath", "backup_dir", "filename", "log_dir"):
            if arg in entry.params:
                args[arg] = "m.keras" if arg == "filepath" else arg  # inside the run directory
        catalog.check_component(kind, entry.name, args, "x")  # the catalog accepts its own defaults
        args = catalog.resolve_run_paths(kind, entry.name, args, tmp_path)
        try:
            getattr(module, entry.name)(**args)
        except Exception as exc:  # noqa: BLE001 - collected so one run lists every mismatch
            failures.append(f"{entry.name}({args}): {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_common_layers_run_on_a_real_input():
    """A sample of common layers, built from catalog arguments, runs on a tiny batch."""
    import keras
    import numpy as np

    stacks = {
        (8, 8, 1): [
            ("Conv2D", {"filters": 2, "kernel_size": 3, "padding": "same", "activation": "relu"}),
            ("MaxPooling2D", {}),
            ("BatchNormalization", {}),
            ("Flatten", {}),
            ("Dropout", {"rate": 0.1}),
            ("Dense", {"units": 3, "activation": "softmax"}),
        ],
        (5, 4): [("LSTM", {"units": 3, "return_sequences": True}), ("GRU", {"units": 2}), ("Dense", {"units": 1})],
    }
    for shape, layers in stacks.items():
        built = []
        for i, (name, args) in enumerate(layers):
            catalog.check_component("layers", name, args, f"model.layers[{i}]")
            built.append(getattr(keras.layers, name)(**args))
        model = keras.Sequential([keras.Input(shape), *built])
        out = model(np.zeros((2, *shape), "float32"))
        assert out.shape[0] == 2


def test_every_loss_and_metric_identifier_resolves_in_keras():
    """Each string alias is one Keras' own `get()` (or compile, for accuracy/crossentropy) accepts."""
    import keras

    for kind, module in (("losses", keras.losses), ("metrics", keras.metrics)):
        for entry in catalog.entries(kind):
            if entry.category == catalog.IDENTIFIER_CATEGORY:
                continue
            for alias in entry.aliases:
                assert module.get(alias) is not None, (kind, alias)


# -- helpful errors ----------------------------------------------------------------------------


def test_misspelt_class_name_gets_close_matches():
    err = _error("layers", "Dens", {"units": 3})
    assert err.location == "model.layers[2]"
    assert "unknown layer 'Dens'" in err.message and "'Dense'" in err.hint
    err = _error("optimizers", "Adamm", {}, "train.optimizer")
    assert err.location == "train.optimizer" and "'Adam'" in err.hint
    err = _error("callbacks", "EarlyStoping", {}, "train.callbacks[0]")
    assert "'EarlyStopping'" in err.hint


def test_misspelt_argument_gets_close_matches():
    err = _error("layers", "Dense", {"unit": 3})
    assert err.location == "model.layers[2].unit"
    assert "did you mean 'units'?" in err.hint


def test_wrong_types_say_what_was_expected():
    err = _error("layers", "Dense", {"units": "abc"})
    assert (err.location, err.message) == ("model.layers[2].units", "expected an integer, got 'abc'")
    assert "expected an integer" in _error("layers", "Dense", {"units": True}).message
    assert "expected an integer" in _error("layers", "Dense", {"units": 2.5}).message
    assert "true or false" in _error("layers", "Dense", {"units": 2, "use_bias": "yes"}).message
    assert "expected a number" in _error("layers", "Dropout", {"rate": "half"}).message
    err = _error("layers", "Conv2D", {"filters": 2, "kernel_size": [3, "x"]})
    assert err.location == "model.layers[2].kernel_size" and "list of integers" in err.message


@pytest.mark.parametrize("name", ["Resizing", "CenterCrop", "RandomCrop"])
def test_an_integer_described_as_part_of_a_shape_is_an_integer(name):
    """ "Integer, the height of the output shape." names an int; the word "shape" does not make it a list."""
    entry = catalog.get("layers", name)
    assert (entry.params["height"].kind, entry.params["width"].kind) == ("int", "int")
    catalog.check_component("layers", name, {"height": 71, "width": 71}, "model.layers[0]")
    err = _error("layers", name, {"height": [71], "width": 71}, "model.layers[0]")
    assert err.location == "model.layers[0].height" and "expected an integer" in err.message


def test_ints_are_fine_where_floats_are_expected_and_lists_where_tuples_are():
    catalog.check_component("layers", "Dropout", {"rate": 0}, "x")
    catalog.check_component("optimizers", "Adam", {"learning_rate": 1}, "x")
    catalog.check_component("layers", "Conv2D", {"filters": 2, "kernel_size": [3, 3], "strides": 1}, "x")
    catalog.check_component("callbacks", "ModelCheckpoint", {"save_freq": 100}, "x")
    catalog.check_component("callbacks", "ModelCheckpoint", {"save_freq": "epoch"}, "x")


def test_bad_choices_get_close_matches():
    err = _error("layers", "Dense", {"units": 3, "activation": "relu2"})
    assert err.location == "model.layers[2].activation"
    assert "'relu2' is not a valid activation" in err.message and "'relu'" in err.hint
    err = _error("layers", "Conv2D", {"filters": 2, "kernel_size": 3, "padding": "sam"})
    assert "'same'" in err.hint
    err = _error("callbacks", "ModelCheckpoint", {"save_freq": "epoc"})
    assert "'epoch'" in err.hint
    err = _error("layers", "Dense", {"units": 3, "activation": 1})
    assert "expected one of" in err.message


def test_missing_required_argument_is_named():
    err = _error("layers", "Dense", {})
    assert err.location == "model.layers[2]"
    assert "needs 'units'" in err.message and "integer" in err.hint
    err = _error("schedules", "ExponentialDecay", {"initial_learning_rate": 0.1}, "train.schedule")
    assert "needs 'decay_steps'" in err.message and "decay_rate" in err.message


def test_identifiers():
    for kind, ident in (
        ("losses", "mse"),
        ("losses", "sparse_categorical_crossentropy"),
        ("losses", "ce"),
        ("metrics", "accuracy"),
        ("metrics", "acc"),
        ("metrics", "AUC"),
    ):
        catalog.check_identifier(kind, ident, "train.loss")
    with pytest.raises(UserError) as info:
        catalog.check_identifier("losses", "msee", "train.loss")
    assert info.value.location == "train.loss" and "'mse'" in info.value.hint
    with pytest.raises(UserError) as info:
        catalog.check_identifier("metrics", "acuracy", "train.metrics[0]")
    assert "'accuracy'" in info.value.hint
    err = _error("metrics", "acc", {}, "train.metrics[0]")
    assert 'write it as a string: "acc"' in err.hint


def test_check_value_directly():
    """The TUI's parameter form checks one field at a time."""
    param = Param(name="units", kind="int", default=None, required=True)
    catalog.check_value(param, 4, "f")
    with pytest.raises(UserError, match="expected an integer"):
        catalog.check_value(param, "4", "f")
    anything = Param(name="x", kind="any", default=None, required=False)
    catalog.check_value(anything, [1, [2.5, "a"]], "f")
    with pytest.raises(UserError, match="table"):
        catalog.check_value(anything, {"a": 1}, "f")


def test_a_table_names_a_class_keras_exports():
    """`type = …` must be a class Keras exports (build uses getattr); string names say so."""
    err = _error("losses", "mse", {}, "train.loss")
    assert "class name" in err.message and 'type = "MeanSquaredError"' in err.hint
    catalog.check_component("layers", "AvgPool2D", {"pool_size": 2}, "x")
    for kind in catalog.KINDS:
        module = _keras_module(kind)
        for entry in catalog.entries(kind):
            for alias in entry.aliases:
                try:
                    catalog.check_component(kind, alias, _minimal_args(entry), "x")
                except UserError:
                    continue
                assert getattr(module, alias) is getattr(module, entry.name), (kind, alias)
