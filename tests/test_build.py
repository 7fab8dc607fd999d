"""Build: Experiment + DataInfo → Keras model and summary, on real Keras with tiny shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfbench import build
from tfbench.build import LayerRow, ModelSummary
from tfbench.data.info import DataInfo
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict, load_experiment

REPO = Path(__file__).resolve().parent.parent

DIGITS = DataInfo("builtin:digits", (8, 8, 1), "categorical", 10, [str(i) for i in range(10)])
POINTS = DataInfo("builtin:spiral", (2,), "binary", 2, ["a", "b"])
SERIES = DataInfo("builtin:sine", (4,), "regression", 0, label_shape=(1,))
CLASSES3 = DataInfo("test:three", (4,), "categorical", 3, ["a", "b", "c"])

DIGITS_CNN = [
    {"type": "Rescaling", "scale": 0.0625},
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
    {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def make(layers: list[dict], **train) -> build.Experiment:
    """A validated Experiment with these layers and train settings."""
    return experiment_from_dict({"name": "t", "model": {"layers": layers}, "train": train})


def dense_head(units: int, activation: str | None = None) -> list[dict]:
    last = {"type": "Dense", "units": units}
    if activation:
        last["activation"] = activation
    return [{"type": "Dense", "units": 8, "activation": "relu"}, last]


def error_of(exp, info) -> UserError:
    with pytest.raises(UserError) as caught:
        build.summarize(exp, info)
    return caught.value


# -- import hygiene ---------------------------------------------------------------------------


def test_importing_build_does_not_import_tensorflow():
    code = "import sys, tfbench.build; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


# -- summary ----------------------------------------------------------------------------------


def test_summary_of_the_digits_cnn():
    summary = build.summarize(make(DIGITS_CNN), DIGITS)
    assert summary.input_shape == [8, 8, 1]
    assert summary.output_shape == [10]
    assert [(r.index, r.name, r.type, r.output_shape, r.params) for r in summary.layers] == [
        (0, "rescaling", "Rescaling", [8, 8, 1], 0),
        (1, "conv2d", "Conv2D", [6, 6, 16], 3 * 3 * 1 * 16 + 16),
        (2, "flatten", "Flatten", [576], 0),
        (3, "dense", "Dense", [10], 576 * 10 + 10),
    ]
    assert summary.total_params == summary.trainable_params == 160 + 5770
    assert summary.non_trainable_params == 0


def test_summary_is_repeatable_and_json_ready():
    exp = make(DIGITS_CNN)
    first = build.summarize(exp, DIGITS)
    second = build.summarize(exp, DIGITS)
    assert first == second  # same layer names every time: no global counters leak in
    data = json.loads(json.dumps(first.to_dict()))
    assert data["layers"][1] == {
        "index": 1,
        "name": "conv2d",
        "type": "Conv2D",
        "output_shape": [6, 6, 16],
        "params": 160,
        "path": "model.layers[1]",
        "depth": 0,
        "trainable": True,
        "kind": "layer",
    }
    assert ModelSummary.from_dict(data) == first


def test_summary_counts_non_trainable_weights_and_keeps_user_names():
    layers = [
        {"type": "Dense", "units": 4, "name": "hidden"},
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ]
    summary = build.summarize(make(layers), CLASSES3)
    assert [r.name for r in summary.layers] == ["hidden", "batch_normalization", "dense"]
    assert summary.layers[1].params == 16  # gamma, beta trainable; moving mean/variance not
    assert summary.non_trainable_params == 8
    assert summary.total_params == summary.trainable_params + 8


def test_summary_in_a_worker_thread_matches_the_main_thread():
    # The builder screen summarises in a thread worker while the app keeps its own thread.
    from concurrent.futures import ThreadPoolExecutor

    exp = make(DIGITS_CNN, mixed_precision="mixed_float16")
    with ThreadPoolExecutor(2) as pool:
        in_threads = list(pool.map(lambda _: build.summarize(exp, DIGITS), range(4)))
    assert all(summary == build.summarize(exp, DIGITS) for summary in in_threads)


def test_model_input_shape_overrides_the_data():
    exp = experiment_from_dict(
        {
            "name": "t",
            "model": {"input_shape": [64], "layers": [{"type": "Reshape", "target_shape": [8, 8, 1]}] + DIGITS_CNN},
        }
    )
    summary = build.summarize(exp, DIGITS)
    assert summary.input_shape == [64]
    assert summary.layers[0].output_shape == [8, 8, 1]


# -- located errors ---------------------------------------------------------------------------


def test_conv_on_flat_input_names_the_layer():
    flat = DataInfo("builtin:x", (64,), "categorical", 10)
    err = error_of(make(DIGITS_CNN[1:]), flat)
    assert err.location == "model.layers[0]"
    assert err.message == (
        "Conv2D needs 3-D input per sample (height, width, channels) but gets (64,): add a Reshape or Flatten earlier"
    )


def test_rnn_after_flatten_names_the_layer():
    layers = [
        {"type": "Flatten"},
        {"type": "LSTM", "units": 4},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[1]"
    assert "LSTM needs 2-D input per sample (timesteps, features) but gets (64,)" in err.message


def test_conv1d_on_images_is_refused_with_its_axes():
    layers = [{"type": "Conv1D", "filters": 3, "kernel_size": 3}, *DIGITS_CNN[2:]]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[0]"
    assert "Conv1D needs 2-D input per sample (steps, channels) but gets (8, 8, 1)" in err.message


def test_keras_call_error_is_located_at_the_argument_it_names():
    layers = [{"type": "Reshape", "target_shape": [7, 7]}, *DIGITS_CNN[2:]]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[0].target_shape"
    assert err.message.startswith("Reshape cannot take input (8, 8, 1)")


def test_kernel_larger_than_its_input_names_the_argument():
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": 9}, *DIGITS_CNN[2:]]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[0].kernel_size"
    assert "larger than its input (8, 8)" in err.message


def test_pool_larger_than_its_input_names_the_argument():
    layers = [DIGITS_CNN[1], {"type": "MaxPooling2D", "pool_size": 7}, *DIGITS_CNN[2:]]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[1].pool_size"
    assert "larger than its input (6, 6)" in err.message


def test_keras_constructor_error_is_located_at_the_argument():
    # Passes the catalog's checks (a list of ints, each in range) but Keras refuses it.
    err = error_of(make([{"type": "Conv2D", "filters": 8, "kernel_size": [3, 3, 3]}]), DIGITS)
    assert err.location == "model.layers[0].kernel_size"
    assert "tuple of 2 integers" in err.message


def test_a_count_below_its_documented_range_is_refused_before_keras():
    with pytest.raises(UserError) as caught:
        make([{"type": "Flatten"}, {"type": "Dense", "units": -3}])
    assert caught.value.location.endswith("model.layers[1].units")
    assert "must be > 0 (got -3)" in caught.value.message


def test_layer_names_must_be_unique():
    layers = [{"type": "Flatten", "name": "dense"}, {"type": "Dense", "units": 10, "name": "dense"}]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[1].name"
    err = error_of(make([{"type": "Flatten", "name": "input"}, *DIGITS_CNN[3:]]), DIGITS)
    assert err.location == "model.layers[0].name"
    names = [
        r.name for r in build.summarize(make([{"type": "Flatten", "name": "dense"}, *DIGITS_CNN[3:]]), DIGITS).layers
    ]
    assert names == ["dense", "dense_1"]


def test_empty_stack_is_an_error():
    err = error_of(make([]), DIGITS)
    assert err.location == "model.layers"


# -- the last layer must fit the data ----------------------------------------------------------


def test_too_few_classes_in_the_last_layer_is_caught_before_training():
    layers = DIGITS_CNN[:-1] + [{"type": "Dense", "units": 3, "activation": "softmax"}]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[3]"
    assert "10 classes" in err.message and "3 outputs" in err.message
    with pytest.raises(UserError) as caught:
        build.build_model(make(layers), DIGITS)
    assert caught.value.location == "model.layers[3]"


def test_missing_flatten_before_the_classifier_is_caught():
    layers = [DIGITS_CNN[1], {"type": "Dense", "units": 10, "activation": "softmax"}]
    err = error_of(make(layers), DIGITS)
    assert err.location == "model.layers[1]"
    assert "(6, 6, 10)" in err.message and "Flatten" in err.hint


def test_regression_output_must_match_the_targets():
    err = error_of(make(dense_head(10)), SERIES)
    assert err.location == "model.layers[1]"
    assert "(1,)" in err.message and "(10,)" in err.message
    assert build.summarize(make(dense_head(1)), SERIES).output_shape == [1]


def test_binary_labels_take_one_sigmoid_or_two_softmax_outputs():
    assert build.summarize(make(dense_head(1, "sigmoid")), POINTS).output_shape == [1]
    assert build.summarize(make(dense_head(2, "softmax")), POINTS).output_shape == [2]
    err = error_of(make(dense_head(1, "softmax")), POINTS)
    assert err.location == "model.layers[1]" and "softmax over 1 output" in err.message
    err = error_of(make(dense_head(3, "softmax")), POINTS)
    assert err.location == "model.layers[1]" and "3 outputs" in err.message
    err = error_of(make(dense_head(2, "softmax"), loss="binary_crossentropy"), POINTS)
    assert "need 1 output" in err.message


def test_classification_loss_on_regression_targets_is_located_at_the_loss():
    err = error_of(make(dense_head(1), loss="sparse_categorical_crossentropy"), SERIES)
    assert err.location == "train.loss"


def test_label_shapes_beyond_one_class_id():
    multi_label = DataInfo("x", (4,), "binary", 2, label_shape=(5,))
    assert build.summarize(make(dense_head(5, "sigmoid")), multi_label).output_shape == [5]
    one_hot = DataInfo("x", (4,), "categorical", 3, label_shape=(3,))
    exp = make(dense_head(3, "softmax"), loss="categorical_crossentropy")
    assert build.summarize(exp, one_hot).output_shape == [3]
    per_step = DataInfo("x", (6, 4), "categorical", 3, label_shape=(6,))
    assert build.summarize(make(dense_head(3, "softmax")), per_step).output_shape == [6, 3]
    err = error_of(make([{"type": "Flatten"}, *dense_head(3, "softmax")]), per_step)
    assert err.location == "model.layers[2]" and "a class id per position (6,)" in err.message


# -- losses, metrics, labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "layers", "loss", "metrics"),
    [
        (CLASSES3, dense_head(3, "softmax"), "sparse_categorical_crossentropy", ["accuracy"]),
        (CLASSES3, dense_head(3), {"type": "SparseCategoricalCrossentropy", "from_logits": True}, ["accuracy"]),
        (POINTS, dense_head(1, "sigmoid"), "binary_crossentropy", ["accuracy"]),
        (
            POINTS,
            dense_head(1),
            {"type": "BinaryCrossentropy", "from_logits": True},
            [{"type": "BinaryAccuracy", "threshold": 0.0}],
        ),
        (POINTS, dense_head(2, "softmax"), "sparse_categorical_crossentropy", ["accuracy"]),
        (SERIES, dense_head(1), "mean_squared_error", ["mae"]),
    ],
)
def test_auto_loss_and_metrics_follow_the_labels(info, layers, loss, metrics):
    exp = make(layers)
    assert build.resolve_loss(exp, info) == loss
    assert build.resolve_metrics(exp, info) == metrics
    assert build.needs_one_hot(exp, info) is False


def test_user_loss_and_metrics_are_kept():
    exp = make(dense_head(1), loss={"type": "Huber", "delta": 0.5}, metrics=["auto", "mse", "mae"])
    assert build.resolve_loss(exp, SERIES) == {"type": "Huber", "delta": 0.5}
    assert build.resolve_metrics(exp, SERIES) == ["mae", "mse"]


def test_one_hot_only_for_categorical_crossentropy_on_class_ids():
    head = dense_head(3, "softmax")
    assert build.needs_one_hot(make(head, loss="categorical_crossentropy"), CLASSES3)
    assert build.needs_one_hot(make(head, loss={"type": "CategoricalCrossentropy"}), CLASSES3)
    assert not build.needs_one_hot(make(head, loss="sparse_categorical_crossentropy"), CLASSES3)
    assert not build.needs_one_hot(make(head), CLASSES3)
    one_hot_labels = DataInfo("x", (4,), "categorical", 3, label_shape=(3,))
    assert not build.needs_one_hot(make(head, loss="categorical_crossentropy"), one_hot_labels)
    with pytest.raises(UserError, match="regression targets"):  # an impossible pair is an error, not False
        build.needs_one_hot(make(dense_head(1), loss="categorical_crossentropy"), SERIES)


def test_one_hot_labels_get_categorical_crossentropy_and_impossible_pairs_fail_at_the_loss():
    one_hot = DataInfo("x", (4,), "categorical", 3, ["a", "b", "c"], label_shape=(3,))
    exp = make(dense_head(3, "softmax"))
    assert build.resolve_loss(exp, one_hot) == "categorical_crossentropy"
    assert build.resolve_loss(make(dense_head(3)), one_hot) == {"type": "CategoricalCrossentropy", "from_logits": True}
    assert build.summarize(exp, one_hot).output_shape == [3] and not build.needs_one_hot(exp, one_hot)
    assert build.needs_one_hot(make(dense_head(3, "softmax"), loss="categorical_hinge"), CLASSES3)
    per_step = DataInfo("x", (6, 4), "categorical", 3, label_shape=(6,))
    assert build.needs_one_hot(make(dense_head(3, "softmax"), loss="categorical_crossentropy"), per_step)
    impossible = [
        (make(dense_head(3, "softmax"), loss="sparse_categorical_crossentropy"), one_hot, "one-hot labels"),
        (make(dense_head(3, "softmax"), loss={"type": "BinaryCrossentropy"}), CLASSES3, "3 classes"),
        (make(dense_head(1), loss="categorical_crossentropy"), SERIES, "regression targets"),
    ]
    for exp, info, words in impossible:
        for call in (build.needs_one_hot, build.summarize):
            with pytest.raises(UserError, match=words) as caught:
                call(exp, info)
            assert caught.value.location == "train.loss" and caught.value.hint


# -- compiled models ---------------------------------------------------------------------------


def _blobs(n: int = 96, seed: int = 0):
    """Three separable clusters in 4-D: a classifier learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(0, 0.3, (n, 4)) + np.eye(3, 4)[y] * 2).astype("float32")
    return x, y


@pytest.mark.slow
def test_compiled_model_trains_and_loss_goes_down():
    exp = make(dense_head(3, "softmax"), optimizer={"type": "Adam", "learning_rate": 0.05}, seed=1)
    build.apply_seed(exp.train)
    model = build.build_model(exp, CLASSES3)
    assert model.name == "t"
    x, y = _blobs()
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] * 0.7
    assert history["accuracy"][-1] > 0.8


@pytest.mark.slow
def test_one_hot_model_trains_on_one_hot_labels():
    exp = make(dense_head(3, "softmax"), loss="categorical_crossentropy", seed=1)
    model = build.build_model(exp, CLASSES3)
    x, y = _blobs(32)
    history = model.fit(x, np.eye(3)[y], epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()


def test_optimizer_and_schedule_reach_the_model():
    import keras

    exp = make(
        dense_head(3, "softmax"),
        optimizer={"type": "SGD", "momentum": 0.5},
        schedule={"type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
    )
    model = build.build_model(exp, CLASSES3)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.momentum == 0.5
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.ExponentialDecay)
    assert float(schedule(10)) == pytest.approx(0.05)


def test_schedule_error_is_located():
    exp = make(
        dense_head(3, "softmax"),
        schedule={"type": "PiecewiseConstantDecay", "boundaries": [10, 20], "values": [0.1]},
    )
    with pytest.raises(UserError) as caught:
        build.build_model(exp, CLASSES3)
    assert caught.value.location.startswith("train.schedule")


def test_loss_component_becomes_a_keras_object():
    import keras

    exp = make(dense_head(1), loss={"type": "Huber", "delta": 0.5}, metrics=["mae", {"type": "RootMeanSquaredError"}])
    model = build.build_model(exp, SERIES)
    assert isinstance(model.loss, keras.losses.Huber)


@pytest.mark.slow
def test_jit_compile_and_steps_per_execution_reach_the_model():
    model = build.build_model(make(dense_head(3, "softmax"), jit_compile=True, steps_per_execution=4), CLASSES3)
    assert model.jit_compile is True
    assert model.steps_per_execution == 4
    model = build.build_model(make(dense_head(3, "softmax"), jit_compile=False), CLASSES3)
    assert model.jit_compile is False and model.steps_per_execution == 1
    x, y = _blobs(32)
    model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.slow
def test_mixed_precision_build_leaves_the_global_policy_as_it_was():
    import keras

    before = keras.config.dtype_policy().name
    exp = make(dense_head(3, "softmax"), mixed_precision="mixed_float16")
    model = build.build_model(exp, CLASSES3)
    assert keras.config.dtype_policy().name == before
    assert model.layers[1].dtype_policy.name == "mixed_float16"
    assert model.layers[-1].dtype_policy.name == "float32"  # the output layer computes in float32
    assert model.outputs[0].dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x, y = _blobs(32)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()
    plain = build.build_model(make(dense_head(3, "softmax")), CLASSES3)
    assert all(layer.dtype_policy.name == before for layer in plain.layers)
    summary = build.summarize(make(dense_head(3, "softmax"), mixed_precision="mixed_bfloat16"), CLASSES3)
    assert summary.total_params == plain.count_params()
    assert keras.config.dtype_policy().name == before


def _train_weights(seed: int) -> list[np.ndarray]:
    # Dropout and shuffling draw random numbers too, not only the initial weights.
    exp = make(
        [{"type": "Dense", "units": 8, "activation": "relu"}, {"type": "Dropout", "rate": 0.3}]
        + dense_head(3, "softmax")[1:],
        seed=seed,
    )
    build.apply_seed(exp.train)
    model = build.build_model(exp, CLASSES3)
    x, y = _blobs(48)
    model.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
    return [np.array(w) for w in model.get_weights()]


@pytest.mark.slow
def test_same_seed_gives_identical_weights():
    first, second, other = _train_weights(7), _train_weights(7), _train_weights(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.slow
def test_deterministic_switch_enables_op_determinism():
    # Op determinism is process-wide and permanent, so it is checked in its own interpreter.
    code = (
        "from tfbench.build import apply_seed; from tfbench.spec import TrainSpec\n"
        "from tensorflow.python.framework import config\n"
        "apply_seed(TrainSpec(seed=3)); a = config.is_op_determinism_enabled()\n"
        "apply_seed(TrainSpec(seed=3, deterministic=True)); print(a, config.is_op_determinism_enabled())\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]


# -- layers one by one and imported -------------------------------------------------------------


def test_build_layer_gives_one_keras_layer():
    import keras

    from tfbench.spec import Component

    layer = build.build_layer(Component.of("Dense", units=5, activation="relu"))
    assert isinstance(layer, keras.layers.Dense) and layer.units == 5
    with pytest.raises(UserError) as caught:
        build.build_layer(Component.of("Dropout", rate=2.0), location="model.layers[4]")
    assert caught.value.location == "model.layers[4].rate"


def test_import_layers_round_trip(tmp_path):
    exp = make(
        [
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Flatten"},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Dense", "units": 10, "activation": "softmax", "kernel_initializer": "he_normal"},
        ]
    )
    model = build.build_model(exp, DIGITS, compile=False)
    path = tmp_path / "m.keras"
    model.save(path)
    components = build.import_layers(path)
    assert [c.type for c in components] == ["Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert components[0].args == {"filters": 4, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}
    assert components[3].args == {"rate": 0.25}
    assert components[4].args["kernel_initializer"] == "HeNormal"
    again = experiment_from_dict({"name": "t", "model": {"layers": [c.model_dump() for c in components]}})
    assert build.summarize(again, DIGITS) == build.summarize(exp, DIGITS)


def test_import_layers_refuses_what_a_stack_cannot_hold_and_code(tmp_path):
    import keras

    inputs = keras.Input((4,))
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Add(name="b")([keras.layers.Dense(4)(a), inputs])  # reaches back past a
    keras.Model(inputs, keras.layers.Concatenate()([b, a])).save(tmp_path / "across.keras")
    with pytest.raises(UserError, match="layer b .*before its block begins"):
        build.import_layers(tmp_path / "across.keras")
    shared = keras.layers.Dense(4, name="shared")
    keras.Model(inputs, shared(shared(inputs))).save(tmp_path / "shared.keras")
    with pytest.raises(UserError, match="shared is called more than once"):
        build.import_layers(tmp_path / "shared.keras")
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)]).save(tmp_path / "code.keras")
    with pytest.raises(UserError, match="never loads code"):
        build.import_layers(tmp_path / "code.keras")
    with pytest.raises(UserError, match="no such model file"):
        build.import_layers(tmp_path / "missing.keras")


# -- shipped presets ---------------------------------------------------------------------------


def test_shipped_digits_presets_build():
    cnn = build.summarize(load_experiment("digits-cnn"), DIGITS)
    assert cnn.output_shape == [10] and cnn.layers[-1].type == "Dense"
    mlp = build.summarize(load_experiment("digits-mlp"), DIGITS)
    assert mlp.layers[0].output_shape == [64]


def test_layer_row_is_plain_data():
    row = LayerRow(0, "dense", "Dense", [3], 15)
    assert json.loads(json.dumps(ModelSummary([4], [3], [row], 15, 15, 0).to_dict()))["layers"][0]["params"] == 15
