"""Targets in [0, 1] take the probabilistic losses Keras accepts on them; only nonsense is refused.

keras.io's convolutional autoencoder reconstructs its input (`y = "x"`) with binary cross-entropy
on pixels in [0, 1]; KL divergence takes distributions; targets outside a loss's range (negative
pixels, counts below zero for Poisson) are refused with the range found and a loss that fits.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tfbench import build, data
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.spec import load_experiment

# keras.io/examples/vision/autoencoder, on 16x16 images instead of MNIST's 28x28.
AUTOENCODER = """
name = "autoencoder"
[data]
source = "npz:{path}"
batch_size = 32
[data.options]
y = "x"
[[model.layers]]
type = "Conv2D"
filters = 32
kernel_size = [3, 3]
activation = "relu"
padding = "same"
[[model.layers]]
type = "MaxPooling2D"
pool_size = [2, 2]
padding = "same"
[[model.layers]]
type = "Conv2D"
filters = 32
kernel_size = [3, 3]
activation = "relu"
padding = "same"
[[model.layers]]
type = "MaxPooling2D"
pool_size = [2, 2]
padding = "same"
[[model.layers]]
type = "Conv2DTranspose"
filters = 32
kernel_size = [3, 3]
strides = 2
activation = "relu"
padding = "same"
[[model.layers]]
type = "Conv2DTranspose"
filters = 32
kernel_size = [3, 3]
strides = 2
activation = "relu"
padding = "same"
[[model.layers]]
type = "Conv2D"
filters = 1
kernel_size = [3, 3]
activation = "sigmoid"
padding = "same"
[train]
epochs = {epochs}
optimizer = "adam"
loss = "{loss}"
seed = 5
[export]
formats = ["keras"]
"""


def blobs(n: int = 192, seed: int = 0) -> np.ndarray:
    """16x16 grey images of a soft bright disc at a random place: pixels in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:16, :16]
    centres = rng.uniform(4, 12, (n, 2))
    d2 = (rows[None] - centres[:, :1, None]) ** 2 + (cols[None] - centres[:, 1:, None]) ** 2
    return np.exp(-d2 / 8.0)[..., None].astype(np.float32)


def autoencoder(tmp_path: Path, x: np.ndarray, loss: str = "binary_crossentropy", epochs: int = 3) -> Path:
    np.savez(tmp_path / "images.npz", x=x)
    path = tmp_path / "autoencoder.toml"
    path.write_text(AUTOENCODER.format(path=tmp_path / "images.npz", loss=loss, epochs=epochs))
    return path


@pytest.mark.slow
def test_keras_io_conv_autoencoder_trains_with_binary_crossentropy(tmp_path, runs_dir):
    exp = load_experiment(autoencoder(tmp_path, blobs(), epochs=4))
    info = data.describe(exp.data, exp.train.seed)
    assert info.label_kind == "regression" and info.label_shape == (16, 16, 1)
    assert build.summarize(exp, info).output_shape == [16, 16, 1]
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    losses = [row["loss"] for row in run.history]
    assert losses[-1] < losses[0]  # it learns to reconstruct
    assert (run.run_dir / "model.keras").is_file()


@pytest.mark.parametrize("loss", ["kl_divergence", "binary_focal_crossentropy", "poisson"])
def test_other_losses_keras_accepts_on_unit_targets_validate(tmp_path, loss):
    exp = load_experiment(autoencoder(tmp_path, blobs(32), loss=loss))
    assert build.summarize(exp, data.describe(exp.data, exp.train.seed)).output_shape == [16, 16, 1]


@pytest.mark.parametrize(
    ("shift", "loss", "words"),
    [
        (-0.5, "binary_crossentropy", "needs targets in [0, 1]"),
        (0.5, "kl_divergence", "needs targets in [0, 1]"),
        (-0.5, "poisson", "needs targets >= 0"),
    ],
)
def test_targets_outside_a_loss_s_range_are_refused_with_the_range_found(tmp_path, shift, loss, words):
    exp = load_experiment(autoencoder(tmp_path, blobs(32) + shift, loss=loss))
    with pytest.raises(UserError, match=re.escape(words)) as caught:
        build.summarize(exp, data.describe(exp.data, exp.train.seed))
    low = round(float(blobs(32).min()) + shift, 4)
    assert caught.value.location == "train.loss" and f"[{low:.4g}," in caught.value.message
    assert "mean_squared_error" in caught.value.hint


def test_the_autoencoder_script_keeps_the_image_targets(tmp_path):
    """`train.py` reads the targets in their own shape (not flattened), so its model fits them."""
    from tfbench.codegen import generate_script

    exp = load_experiment(autoencoder(tmp_path, blobs(32)))
    namespace: dict = {"__name__": "generated"}
    exec(compile(generate_script(exp), "train.py", "exec"), namespace)
    train, _, _ = namespace["split"](namespace["load_data"]())
    assert train[1].shape[1:] == (16, 16, 1)
    assert namespace["build_model"]().output_shape == (None, 16, 16, 1)
