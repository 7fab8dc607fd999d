"""Data presets designed offline, loss-aware labels, common preprocessing options, the dataset listing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tfbench import data
from tfbench.data.info import DataInfo
from tfbench.errors import UserError
from tfbench.spec import Component, DataSpec, load_experiment

PRESETS = {
    "mnist-mlp": ((28, 28, 1), 101_770),
    "mnist-convnet": ((28, 28, 1), 34_826),
    "fashion-mnist-cnn": ((28, 28, 1), None),
    "cifar10-cnn": ((32, 32, 3), None),
    "imdb-lstm": ((200,), None),
    "california-housing": ((8,), None),
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_validates_offline(name, tmp_path, monkeypatch):
    from tfbench import build

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache: nothing downloaded, nothing needed
    exp = load_experiment(name)
    info = data.describe(exp.data, exp.train.seed)
    assert info.extra["cached"] is False
    shape, params = PRESETS[name]
    summary = build.summarize(exp, info)
    assert tuple(summary.input_shape) == shape
    if params is not None:
        assert summary.total_params == params


def info(kind, classes=0, label_shape=()):
    names = [str(i) for i in range(classes)]
    return DataInfo("x:y", (4,), kind, classes, names, label_shape)


def test_needs_one_hot_converts_or_rejects():
    from tfbench.data import needs_one_hot

    assert needs_one_hot("categorical_crossentropy", info("categorical", 10)) is True
    assert needs_one_hot(Component(type="CategoricalCrossentropy"), info("binary", 2)) is True
    assert needs_one_hot("sparse_categorical_crossentropy", info("categorical", 10)) is False
    assert needs_one_hot("categorical_crossentropy", info("categorical", 3, (3,))) is False
    assert needs_one_hot("auto", info("regression", label_shape=(1,))) is False
    with pytest.raises(UserError, match="regression targets") as err:
        needs_one_hot("categorical_crossentropy", info("regression", label_shape=(1,)))
    assert err.value.location == "train.loss" and "mean_squared_error" in err.value.hint
    with pytest.raises(UserError, match="10 classes") as err:
        needs_one_hot("binary_crossentropy", info("categorical", 10))
    assert "sparse_categorical_crossentropy" in err.value.hint
    with pytest.raises(UserError, match="one-hot labels"):
        needs_one_hot("sparse_categorical_crossentropy", info("categorical", 3, (3,)))


def test_loss_family_reads_names_classes_and_component_dicts():
    from tfbench.data.labels import loss_family

    assert loss_family("categorical_crossentropy") == loss_family({"type": "CategoricalCrossentropy"}) == "one_hot"
    assert loss_family(Component(type="CategoricalHinge")) == "one_hot"
    assert loss_family("SparseCategoricalCrossentropy") == "sparse"
    assert loss_family({"type": "BinaryFocalCrossentropy", "gamma": 2.0}) == "binary"
    assert loss_family("mse") is None and loss_family("auto") is None


def test_one_hot_training_does_not_diverge():
    import keras

    bundle = data.load(DataSpec(source="builtin:spiral", batch_size=100), seed=0, one_hot=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(2, "softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(bundle.train, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))


def test_normalize_and_label_scale(tmp_path):
    path = tmp_path / "r.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(50, 10, (100, 3)).astype("float32"), y=rng.uniform(1e5, 5e5, 100))
    s = DataSpec(
        source=f"npz:{path}",
        batch_size=100,
        validation_split=None,
        shuffle=False,
        options={"normalize": True, "label_scale": 1e-5},
    )
    bundle = data.load(s)
    x, y = next(iter(bundle.train))
    assert np.allclose(x.numpy().mean(axis=0), 0, atol=1e-4) and np.allclose(x.numpy().std(axis=0), 1, atol=1e-3)
    assert 1.0 <= float(y.numpy().min()) and float(y.numpy().max()) <= 5.0
    with pytest.raises(UserError) as err:
        data.load(DataSpec(source="builtin:digits", options={"label_scale": 2.0}))
    assert err.value.location == "data.options.label_scale"


def test_resize_option_changes_the_described_shape():
    s = DataSpec(source="builtin:digits", batch_size=4, options={"resize": [16, 16]})
    assert data.describe(s).input_shape == (16, 16, 1)
    x, _ = next(iter(data.load(s).train))
    assert x.shape == (4, 16, 16, 1)
    with pytest.raises(UserError) as err:
        data.load(DataSpec(source="builtin:spiral", options={"resize": [4, 4]}))
    assert err.value.location == "data.options.resize"


def test_file_cache_of_a_stream(tmp_path):
    import tensorflow as tf

    root = tmp_path / "imgs"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(5):
            (root / label / f"{i}.png").write_bytes(tf.io.encode_png(np.full((4, 4, 3), i, np.uint8)).numpy())
    from tfbench.rundir import load_bundle
    from tfbench.spec import experiment_from_dict

    exp = experiment_from_dict(
        {
            "data": {"source": f"images:{root}", "batch_size": 5, "cache": "imgs", "shuffle": False},
            "model": {"layers": [{"type": "Flatten"}]},
        }
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = [y.numpy() for _, y in load_bundle(exp, run_dir).train]
    assert list(run_dir.glob("imgs-train*")), "no cache file written"
    again = [y.numpy() for _, y in load_bundle(exp, run_dir).train]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # Without the run directory (an export, an evaluation) nothing is cached, nothing written.
    assert [y.numpy() for _, y in load_bundle(exp).train][0].tolist() == first[0].tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "run"]


def test_sources_and_listing():
    assert data.sources() == ["builtin", "keras", "tfds", "csv", "parquet", "npz", "images", "text"]
    rows = data.catalog_listing("mnist")
    names = [r["name"] for r in rows]
    assert "keras:mnist" in names and "tfds:mnist" in names and "builtin:digits" not in names
    mnist = next(r for r in rows if r["name"] == "tfds:mnist")
    assert mnist["shape"] == [28, 28, 1] and mnist["classes"] == 10
    every = data.catalog_listing(None)
    assert {r["kind"] for r in every} == {"builtin", "keras", "tfds"} and len(every) > 400
    assert [r["name"] for r in data.catalog_listing("image cifar")] == [
        r["name"]
        for r in every
        if "image" in (r["name"] + r["description"]).lower() and "cifar" in (r["name"] + r["description"]).lower()
    ]


def test_listing_is_quick_and_does_not_import_tensorflow():
    code = (
        "import sys, time\nt = time.time()\nfrom tfbench import data\nrows = data.catalog_listing('')\n"
        "assert len(rows) > 400 and time.time() - t < 3, time.time() - t\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_tfds_catalog_matches_the_installed_tfds():
    import tensorflow_datasets as tfds

    from tfbench.data.tfds_catalog import catalog, catalog_names

    assert catalog()["tfds_version"] == tfds.__version__, "regenerate: python -m tfbench.data.tfds_catalog"
    assert set(tfds.list_builders()) <= set(catalog_names()) | {"tiny_shapes_tfbench"}


def test_datasets_command():
    import json

    from click.testing import CliRunner

    from tfbench.cli import cli

    result = CliRunner().invoke(cli, ["datasets", "fashion"])
    assert result.exit_code == 0, result.output
    assert "keras:fashion_mnist" in result.output and "28x28x1" in result.output
    result = CliRunner().invoke(cli, ["datasets", "spiral", "--json"])
    assert [r["name"] for r in json.loads(result.output)] == ["builtin:spiral"]
    result = CliRunner().invoke(cli, ["datasets", "no-such-dataset-anywhere"])
    assert result.exit_code == 2 and "no dataset matches" in result.output


@pytest.mark.parametrize("width", [80, 100, 160])
def test_datasets_table_fits_the_terminal_and_keeps_names_whole(width):
    from tfbench.data.listing import NAME_WIDTH, format_table

    rows = data.catalog_listing(None)
    lines = format_table(rows, width)
    assert all(len(line) <= width for line in lines)
    starts = {line.split()[0] for line in lines if not line.startswith(" ")}
    assert {r["name"] for r in rows} <= starts, "every name is printed whole at the start of a line"
    long = next(r["name"] for r in rows if len(r["name"]) > NAME_WIDTH)
    assert long in lines and lines[lines.index(long) + 1].startswith(" ")
    assert "tfds:diamonds" in [line.split()[0] for line in lines]
    assert any(line.startswith("tfds:diamonds") and "9 features" in line for line in lines)
    assert any("…" in line for line in lines) and any("regression" in line for line in lines)
