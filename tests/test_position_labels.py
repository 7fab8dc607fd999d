"""Labels per position — a tagger's tags, a segmentation mask's pixels — are classes per position.

Integer ids shaped like the model's per-position output train with the class losses Keras uses
for them, are scored per position (padding left out, as Keras leaves it out), and the loss
advice never sends a tagger to mean squared error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfbench import build, data
from tfbench.data.info import DataInfo
from tfbench.data.labels import infer_label_kind, labels_are_one_hot
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.spec import load_experiment

TOKENS, STEPS, TAGS = 40, 12, 5

TAGGER = """
name = "tagger"
[data]
source = "npz:{path}"
validation_split = 0.2
batch_size = 32
{options}
[[model.layers]]
type = "Embedding"
input_dim = {tokens}
output_dim = 16
mask_zero = true
[[model.layers]]
type = "Bidirectional"
layer = {{ type = "GRU", units = 16, return_sequences = true }}
[[model.layers]]
type = "TimeDistributed"
layer = {{ type = "Dense", units = {tags}, activation = "softmax" }}
[train]
epochs = {epochs}
optimizer = {{ type = "Adam", learning_rate = 0.01 }}
loss = "{loss}"
seed = 3
[export]
formats = ["keras"]
"""


def tag_data(n: int = 480, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Padded token sequences (0 = padding) and a tag per token that depends on it and on the token
    before it, so the recurrent layer has something to learn; one tag in ten is random (the best
    accuracy is about 0.92, so two models can be compared below their ceiling); padding is tagged 0."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, STEPS), np.int32)
    y = np.zeros((n, STEPS), np.int32)
    for i in range(n):
        length = int(rng.integers(4, STEPS + 1))
        tokens = rng.integers(1, TOKENS, length)
        before = np.concatenate([[0], tokens[:-1]])
        x[i, :length] = tokens
        tags = 1 + (tokens % 2 + 2 * (before >= TOKENS // 2))
        noisy = rng.random(length) < 0.1
        y[i, :length] = np.where(noisy, rng.integers(1, TAGS, length), tags)
    return x, y


def tagger_preset(tmp_path: Path, y: np.ndarray, epochs: int = 8, loss: str = "auto", options: str = "") -> Path:
    x, _ = tag_data(len(y))
    np.savez(tmp_path / "tags.npz", x=x, y=y)
    path = tmp_path / "tagger.toml"
    text = TAGGER.format(
        path=tmp_path / "tags.npz", tokens=TOKENS, tags=TAGS, epochs=epochs, loss=loss, options=options
    )
    path.write_text(text)
    return path


def test_ids_per_position_masks_and_one_hot_per_position_are_read_as_classes():
    ids = np.random.default_rng(0).integers(0, 5, (30, 12))
    assert infer_label_kind(ids) == ("categorical", 5, (12,))
    masks = np.random.default_rng(0).integers(0, 2, (30, 8, 8, 1))
    assert infer_label_kind(masks) == ("binary", 2, (8, 8))  # the mask's channel of 1 is dropped
    one_hot = np.eye(4, dtype=np.int64)[np.random.default_rng(0).integers(0, 4, (30, 12))]
    assert infer_label_kind(one_hot) == ("categorical", 4, (12, 4))
    assert infer_label_kind(ids.astype(np.float32))[0] == "regression"  # floats stay targets unless told
    assert infer_label_kind(ids.astype(np.float32), "categorical") == ("categorical", 5, (12,))
    # Ids at 10 positions of 10 classes are ids, because the source says so.
    square = DataInfo("npz:x", (10,), "categorical", 10, label_shape=(10,), extra={"label_encoding": "ids"})
    assert not labels_are_one_hot(square)


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    """One tagger trained by tfbench (auto loss), its data and its run."""
    tmp_path = tmp_path_factory.mktemp("tagger")
    x, y = tag_data()
    run = Run(load_experiment(tagger_preset(tmp_path, y)), runs_dir=tmp_path / "runs")
    assert run.train() == "completed", run.reason
    return run, x, y


def plain_keras_tagger(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, epochs: int) -> float:
    """The same tagger written in plain Keras, trained on the same split: its last validation accuracy."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((STEPS,), dtype="int32")
    h = keras.layers.Embedding(TOKENS, 16, mask_zero=True)(inputs)
    h = keras.layers.Bidirectional(keras.layers.GRU(16, return_sequences=True))(h)
    out = keras.layers.TimeDistributed(keras.layers.Dense(TAGS, activation="softmax"))(h)
    model = keras.Model(inputs, out)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=epochs, batch_size=32, verbose=0)
    return history.history["val_accuracy"][-1]


@pytest.mark.slow
def test_a_tagger_trains_within_2_percent_of_plain_keras(tagger_run):
    from tfbench.data.splits import holdout_indices

    run, x, y = tagger_run
    assert build.resolve_loss(run.experiment, run.bundle.info) == "sparse_categorical_crossentropy"
    ours = run.history[-1]["val_accuracy"]
    train, val = holdout_indices(len(y), 0.2, 3)
    theirs = plain_keras_tagger(x, y, train, val, epochs=len(run.history))
    assert theirs > 0.8  # the task is learnt, so the comparison means something
    print(f"tagger val_accuracy: tfbench {ours:.4f}, plain Keras {theirs:.4f}")
    assert abs(ours - theirs) <= 0.02, (ours, theirs)


def test_predict_scores_a_tagger_per_position_without_the_padding(tagger_run):
    from tfbench.evaluation import evaluate_run, renderables

    run, x, y = tagger_run
    result = evaluate_run(run.run_dir)
    val = result["samples"]
    assert result["positions"] == STEPS and result["scored"] + result["padding"] == val * STEPS
    assert result["padding"] > 0 and np.sum(result["confusion"]) == result["scored"]
    assert result["accuracy"] == pytest.approx(run.history[-1]["val_accuracy"], abs=1e-4)  # Keras' masked metric
    assert all(len(m["position"]) == 1 and 0 <= m["position"][0] < STEPS for m in result["mistakes"])
    assert "positions" in str(renderables(result)[0])
    report = json.loads((run.run_dir / "exports" / "report.json").read_text())["keras"]
    assert report["keras_metric"] == pytest.approx(result["accuracy"], abs=1e-6)  # the export's check: one number


@pytest.mark.slow
def test_one_hot_tags_per_position_train_with_categorical_crossentropy(tmp_path):
    _, y = tag_data(160)
    path = tagger_preset(tmp_path, np.eye(TAGS, dtype=np.int32)[y], epochs=1)
    exp = load_experiment(path)
    info = data.describe(exp.data, exp.train.seed)
    assert info.label_shape == (STEPS, TAGS) and build.resolve_loss(exp, info) == "categorical_crossentropy"
    run = Run(exp, runs_dir=tmp_path / "runs")
    assert run.train() == "completed", run.reason
    assert 0.0 <= run.history[-1]["val_accuracy"] <= 1.0


def test_loss_advice_reads_float_tags_as_classes_and_never_suggests_mse(tmp_path):
    """Tags stored as floats are targets to the data; the model's class axis says they are classes."""
    _, y = tag_data(64)
    for loss in ("sparse_categorical_crossentropy", "auto"):
        exp = load_experiment(tagger_preset(tmp_path, y.astype(np.float32), loss=loss))
        info = data.describe(exp.data, exp.train.seed)
        with pytest.raises(UserError) as caught:
            build.summarize(exp, info)
        assert 'label_kind = "categorical"' in caught.value.hint, caught.value
        assert "mean_squared_error" not in str(caught.value)
    told = load_experiment(
        tagger_preset(tmp_path, y.astype(np.float32), options='[data.options]\nlabel_kind = "categorical"')
    )
    assert build.summarize(told, data.describe(told.data, told.train.seed)).output_shape == [STEPS, TAGS]


def test_class_weights_are_refused_for_labels_per_position():
    """Keras weighs a sample by one class; per position it would pick an arbitrary position's class."""
    from tfbench.data.class_weights import resolve

    per_position = DataInfo("npz:x", (12,), "categorical", 5, list("abcde"), (12,), extra={"label_encoding": "ids"})
    with pytest.raises(UserError, match="classes per position") as caught:
        resolve("balanced", per_position)
    assert caught.value.location == "train.class_weight"
    one_hot = DataInfo("npz:x", (4,), "categorical", 3, list("abc"), (3,), extra={"label_encoding": "one_hot"})
    assert resolve({"a": 2.0}, one_hot) == {0: 2.0, 1: 1.0, 2: 1.0}


@pytest.mark.slow
def test_a_segmentation_mask_trains_per_pixel_and_is_scored_per_pixel(tmp_path, runs_dir):
    """8x8 images whose mask marks the bright pixels: a per-pixel sigmoid convnet, binary labels."""
    from tfbench.evaluation import evaluate_run

    rng = np.random.default_rng(1)
    x = rng.random((120, 8, 8, 1)).astype(np.float32)
    masks = (x > 0.5).astype(np.int64)  # (n, 8, 8, 1) ids, as keras.io's segmentation masks come
    np.savez(tmp_path / "seg.npz", x=x, y=masks)
    (tmp_path / "seg.toml").write_text(f"""
name = "seg"
[data]
source = "npz:{tmp_path / "seg.npz"}"
batch_size = 16
[[model.layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
padding = "same"
activation = "relu"
[[model.layers]]
type = "Conv2D"
filters = 1
kernel_size = 1
activation = "sigmoid"
[train]
epochs = 6
optimizer = {{ type = "Adam", learning_rate = 0.05 }}
seed = 1
[export]
formats = ["keras"]
""")
    exp = load_experiment(tmp_path / "seg.toml")
    info = data.describe(exp.data, exp.train.seed)
    assert (info.label_kind, info.label_shape) == ("binary", (8, 8))
    assert build.resolve_loss(exp, info) == "binary_crossentropy"
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    assert run.history[-1]["val_accuracy"] > 0.9
    result = evaluate_run(run.run_dir)
    assert result["positions"] == 64 and result["scored"] == result["samples"] * 64
    assert result["accuracy"] == pytest.approx(run.history[-1]["val_accuracy"], abs=1e-4)
