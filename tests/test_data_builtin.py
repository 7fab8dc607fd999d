"""The bundled datasets: exact shapes, determinism, seeded splits, a real fit, lazy TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tfbench import data
from tfbench.data import builtin
from tfbench.errors import UserError
from tfbench.spec import DataSpec

EXPECTED = {
    "digits": ((8, 8, 1), "categorical", 10, (), 1797),
    "spiral": ((2,), "binary", 2, (), 1000),
    "shapes": ((28, 28, 1), "categorical", 3, (), 1500),
    "sine": ((32, 1), "regression", 0, (1,), 2000),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_describe_matches_the_arrays(name):
    shape, kind, classes, label_shape, total = EXPECTED[name]
    info = data.describe(DataSpec(source=f"builtin:{name}", validation_split=0.25))
    assert info.input_shape == shape and info.label_kind == kind
    assert info.num_classes == classes == len(info.class_names)
    assert info.label_shape == label_shape
    assert info.sizes["train"] + info.sizes["validation"] == total
    assert info.sizes["validation"] == round(total * 0.25)
    arrays = builtin.arrays(name)
    assert arrays.x.shape == (total, *shape) and arrays.x.dtype == np.float32
    assert arrays.y.shape == (total, *label_shape)


def test_digits_are_the_real_uci_digits():
    arrays = builtin.arrays("digits")
    assert arrays.x.min() == 0 and arrays.x.max() == 16
    assert np.array_equal(np.unique(arrays.y), np.arange(10))
    assert np.bincount(arrays.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # The first optdigits sample is a 0 with this top row.
    assert arrays.y[0] == 0 and arrays.x[0, 0, :, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_generated_data_is_deterministic_and_sensible():
    a, b = builtin.DATASETS["shapes"].make(), builtin.DATASETS["shapes"].make()
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert 0.0 <= a.x.min() and a.x.max() <= 1.0
    assert np.bincount(a.y).tolist() == [500, 500, 500]
    spiral = builtin.arrays("spiral")
    assert np.bincount(spiral.y).tolist() == [500, 500]
    sine = builtin.arrays("sine")
    # Each label is the step after its window: window i+1 ends with label i.
    assert np.allclose(sine.x[1:, -1, 0], sine.y[:-1, 0])


def test_the_generated_shapes_are_the_same_bit_for_bit_as_every_earlier_version_made_them():
    """Runs, presets' figures and saved splits depend on these exact images; a faster generator must not move them."""
    import hashlib

    shapes = builtin.DATASETS["shapes"].make()
    digest = hashlib.sha256(shapes.x.tobytes() + shapes.y.tobytes()).hexdigest()
    assert digest == "b9825877a48831b2058f39066d7f7e5156ed98e1e4692643cf97b492cec4fe00"


def test_split_follows_the_experiment_seed():
    spec = DataSpec(source="builtin:spiral")
    a = builtin.load(spec, builtin.OPTIONS(), seed=1)
    b = builtin.load(spec, builtin.OPTIONS(), seed=1)
    c = builtin.load(spec, builtin.OPTIONS(), seed=2)
    assert np.array_equal(a.validation.x, b.validation.x)
    assert not np.array_equal(a.validation.x, c.validation.x)
    assert len(a.train) == 800 and len(a.validation) == 200


@pytest.mark.slow
def test_load_gives_batched_pipelines_that_train():
    import keras

    spec = DataSpec(source="builtin:digits", batch_size=128)
    bundle = data.load(spec, seed=0)
    assert bundle.steps_per_epoch == int(np.ceil(1438 / 128))
    x, y = next(iter(bundle.train))
    assert tuple(x.shape) == (128, 8, 8, 1) and tuple(y.shape) == (128,)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 16),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=5, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.85


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    spec = DataSpec(source="builtin:spiral", batch_size=1000, validation_split=None)
    first = [y.numpy() for _, y in data.load(spec, seed=3).train]
    again = data.load(spec, seed=3).train
    epoch1 = next(iter(again))[1].numpy()
    epoch2 = next(iter(again))[1].numpy()
    assert np.array_equal(first[0], epoch1)
    assert not np.array_equal(epoch1, epoch2)


def test_one_hot_labels():
    bundle = data.load(DataSpec(source="builtin:shapes", batch_size=16), one_hot=True)
    _, y = next(iter(bundle.train))
    assert tuple(y.shape) == (16, 3) and np.allclose(y.numpy().sum(axis=1), 1)


def test_unknown_builtin_is_a_located_error():
    with pytest.raises(UserError) as err:
        data.describe(DataSpec(source="builtin:digit"))
    assert err.value.location == "data.source" and "digits" in err.value.hint


def test_unknown_kind_and_option_are_located_errors():
    with pytest.raises(UserError) as err:
        data.describe(DataSpec(source="tfsd:mnist"))
    assert err.value.location == "data.source" and "tfds" in err.value.hint
    with pytest.raises(UserError) as err:
        data.describe(DataSpec(source="builtin:digits", options={"scael": 2}))
    assert err.value.location == "data.options.scael" and "scale" in err.value.hint


def test_data_modules_describe_and_preview_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import importlib\nfrom tfbench import data\nfrom tfbench.spec import DataSpec\n"
        "from tfbench.data.registry import SOURCES\n"
        "for name in [*SOURCES.values(), 'tfbench.data.pipeline', 'tfbench.data.listing', 'tfbench.data.labels']:\n"
        "    importlib.import_module(name)\n"
        "for n in ('digits', 'spiral', 'shapes', 'sine'):\n"
        "    data.describe(DataSpec(source='builtin:' + n))\n"
        "p = data.preview(DataSpec(source='builtin:digits'), n=3)\n"
        "assert len(p['samples']) == 3 and sum(p['label_counts'].values()) == p['counted']\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_every_sample_once_per_epoch_with_a_partial_last_batch(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, x=np.arange(23, dtype=np.float32)[:, None], y=np.arange(23) % 2)
    for prefetch in (True, False):
        bundle = data.load(
            DataSpec(source=f"npz:{path}", batch_size=5, validation_split=None, prefetch=prefetch), seed=1
        )
        train = bundle.train
        epochs = [[b[0].numpy()[:, 0] for b in train] for _ in range(2)]
        for batches in epochs:
            assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
            assert sorted(np.concatenate(batches).tolist()) == list(range(23))
        assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
        y = np.concatenate([b[1].numpy() for b in train])
    unshuffled = data.load(DataSpec(source=f"npz:{path}", batch_size=5, validation_split=None, shuffle=False))
    assert np.concatenate([b[0].numpy()[:, 0] for b in unshuffled.train]).tolist() == list(range(23))
    assert bundle.steps_per_epoch == 5 == int(bundle.train.cardinality()) and set(y.tolist()) == {0, 1}
