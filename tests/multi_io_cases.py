"""Models with several inputs and outputs, as presets and as the plain Keras they must build.

The ticket model is the Keras Functional API guide's ("Models with multiple inputs and outputs":
inputs title, body and tags; outputs priority and department), written in the preset form; its
data is the guide's own random data (`ticket_arrays`), saved as an npz whose arrays are named like
the model's inputs and outputs. The reference models are written here from the guide's text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUM_TAGS = 12
NUM_WORDS = 10_000
NUM_DEPARTMENTS = 4

TICKETS = """
name = "tickets"
description = "The Functional API guide's ticket model: three inputs, two outputs."

[data]
source = "npz:tickets.npz"
batch_size = 32

[[model.inputs]]
name = "title"
layers = [ { type = "Embedding", input_dim = 10000, output_dim = 64 }, { type = "LSTM", units = 128 } ]
[[model.inputs]]
name = "body"
layers = [ { type = "Embedding", input_dim = 10000, output_dim = 64 }, { type = "LSTM", units = 32 } ]
[[model.inputs]]
name = "tags"

[model]
merge = "concatenate"

[[model.outputs]]
name = "priority"
layers = [ { type = "Dense", units = 1 } ]
loss = { type = "BinaryCrossentropy", from_logits = true }
loss_weight = 1.0
[[model.outputs]]
name = "department"
layers = [ { type = "Dense", units = 4 } ]
loss = { type = "CategoricalCrossentropy", from_logits = true }
loss_weight = 0.2

[train]
epochs = 2
optimizer = { type = "RMSprop", learning_rate = 1e-3 }
seed = 7
"""


def ticket_arrays(n: int = 1280, seed: int = 0) -> dict[str, np.ndarray]:
    """The guide's random data: word ids for title (10) and body (100), 0/1 tags, a priority in
    [0, 1) and 0/1 department targets (`np.random`'s calls as the guide makes them)."""
    rng = np.random.RandomState(seed)
    return {
        "title": rng.randint(NUM_WORDS, size=(n, 10)),
        "body": rng.randint(NUM_WORDS, size=(n, 100)),
        "tags": rng.randint(2, size=(n, NUM_TAGS)).astype("float32"),
        "priority": rng.random_sample(size=(n, 1)),
        "department": rng.randint(2, size=(n, NUM_DEPARTMENTS)),
    }


def write_tickets(folder: Path, n: int = 1280, preset: str = TICKETS) -> Path:
    """The ticket preset and its npz in `folder`; returns the preset's path."""
    np.savez(folder / "tickets.npz", **ticket_arrays(n))
    path = folder / "tickets.toml"
    path.write_text(preset)
    return path


def guide_ticket_model():
    """The guide's ticket model, in plain Keras, as the guide writes it."""
    import keras
    from keras import layers

    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(NUM_TAGS,), name="tags")
    title_features = layers.Embedding(NUM_WORDS, 64)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    return keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs={"priority": priority_pred, "department": department_pred},
    )


def counts(model) -> tuple[int, int]:
    """(total, trainable) parameters of a Keras model."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params()), trainable


# A small model with two inputs and two heads (a regression and a classification) that trains in
# seconds: for runs, resume, evaluation, prediction, exports and train.py.
SMALL = """
name = "two-heads"
description = "Two inputs, a shared trunk, an age regression head and a 3-class head."

[data]
source = "npz:two_heads.npz"
batch_size = 16

[[model.inputs]]
name = "left"
layers = [ { type = "Dense", units = 8, activation = "relu" } ]
[[model.inputs]]
name = "right"

[[model.layers]]
type = "Dense"
units = 16
activation = "relu"
[[model.layers]]
type = "Dropout"
rate = 0.2

[[model.outputs]]
name = "age"
layers = [ { type = "Dense", units = 1 } ]
[[model.outputs]]
name = "kind"
layers = [ { type = "Dense", units = 3, activation = "softmax" } ]
loss_weight = 0.5

[train]
epochs = EPOCHS
optimizer = { type = "Adam", learning_rate = 1e-2 }
seed = 3
"""


def two_heads_arrays(n: int = 96, seed: int = 4) -> dict[str, np.ndarray]:
    """Learnable data: the age is a linear function of both inputs, the kind a band of it."""
    rng = np.random.RandomState(seed)
    left = rng.normal(size=(n, 5)).astype("float32")
    right = rng.normal(size=(n, 3)).astype("float32")
    age = left[:, :1] * 2.0 + right[:, :1] - 0.5 * left[:, 1:2]
    kind = np.digitize(age[:, 0], [-1.0, 1.0])
    return {"left": left, "right": right, "age": age.astype("float32"), "kind": kind.astype("int64")}


def write_two_heads(folder: Path, epochs: int = 3, n: int = 96) -> Path:
    """The two-heads preset and its npz in `folder`; returns the preset's path."""
    np.savez(folder / "two_heads.npz", **two_heads_arrays(n))
    path = folder / "two_heads.toml"
    path.write_text(SMALL.replace("EPOCHS", str(epochs)))
    return path
