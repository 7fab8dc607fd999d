"""Keras datasets from files placed in a temporary Keras cache; TFDS through its own test facilities."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from tfbench import data
from tfbench.errors import UserError
from tfbench.spec import DataSpec


def spec(source, **kw):
    return DataSpec(source=source, batch_size=kw.pop("batch_size", 16), **kw)


# -- keras: -----------------------------------------------------------------------------------


@pytest.fixture
def keras_cache(tmp_path):
    root = tmp_path / "keras-home"
    (root / "datasets").mkdir(parents=True)
    return root


def test_keras_shapes_known_offline_without_files(keras_cache):
    info = data.describe(spec("keras:cifar10", options={"cache_dir": str(keras_cache)}, test="test"))
    assert info.input_shape == (32, 32, 3) and info.num_classes == 10 and info.class_names[0] == "airplane"
    assert info.sizes == {"train": 40000, "validation": 10000, "test": 10000}
    assert info.extra["cached"] is False
    info = data.describe(spec("keras:imdb", options={"maxlen": 80}))
    assert info.input_shape == (80,) and info.input_dtype == "int32" and info.label_kind == "binary"
    assert data.describe(spec("keras:california_housing")).label_shape == (1,)


def test_keras_mnist_from_the_cache(keras_cache):
    rng = np.random.default_rng(0)
    np.savez(
        keras_cache / "datasets" / "mnist.npz",
        x_train=rng.integers(0, 255, (40, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 40),
        x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 10),
    )
    s = spec("keras:mnist", options={"cache_dir": str(keras_cache), "scale": 1 / 255}, test="test")
    assert data.describe(s).extra["cached"] is True
    bundle = data.load(s)
    assert bundle.info.sizes == {"train": 32, "validation": 8, "test": 10}
    x, y = next(iter(bundle.train))
    assert x.shape == (16, 28, 28, 1) and x.dtype.name == "float32" and float(x.numpy().max()) <= 1.0
    assert y.dtype.name == "int32"


def test_keras_fashion_mnist_gz_files(keras_cache):
    folder = keras_cache / "datasets" / "fashion-mnist"
    folder.mkdir()
    for prefix, n in (("train", 20), ("t10k", 5)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = np.full((n, 28, 28), 7, np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 8 + labels.tobytes()))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0" * 16 + images.tobytes()))
    bundle = data.load(spec("keras:fashion_mnist", options={"cache_dir": str(keras_cache)}, validation="test"))
    assert bundle.info.sizes["train"] == 20 and bundle.info.sizes["validation"] == 5
    assert bundle.info.class_names[9] == "Ankle boot"


@pytest.mark.slow
def test_keras_cifar10_extracted_batches(keras_cache):
    folder = keras_cache / "datasets" / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.full((10000, 3072), 5, np.uint8), b"labels": [i % 10 for i in range(10000)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    bundle = data.load(spec("keras:cifar10", options={"cache_dir": str(keras_cache)}, batch_size=256))
    x, y = next(iter(bundle.train))
    assert x.shape == (256, 32, 32, 3) and y.shape == (256,)


def test_keras_imdb_sequences_padded(keras_cache):
    rng = np.random.default_rng(1)

    def ragged(n):
        out = np.empty(n, dtype=object)
        for i in range(n):
            out[i] = [int(v) for v in rng.integers(1, 500, rng.integers(3, 40))]
        return out

    np.savez(
        keras_cache / "datasets" / "imdb.npz",
        x_train=ragged(30),
        y_train=rng.integers(0, 2, 30),
        x_test=ragged(10),
        y_test=rng.integers(0, 2, 10),
    )
    s = spec("keras:imdb", options={"cache_dir": str(keras_cache), "maxlen": 20, "num_words": 100})
    x, y = next(iter(data.load(s).train))
    assert x.shape == (16, 20) and x.dtype.name == "int32" and int(x.numpy().max()) < 100


def test_keras_regression_dataset(keras_cache):
    np.savez(
        keras_cache / "datasets" / "california_housing.npz",
        x=np.ones((50, 8), np.float32),
        y=np.linspace(1e5, 5e5, 50).astype(np.float32),
    )
    bundle = data.load(spec("keras:california_housing", options={"cache_dir": str(keras_cache)}))
    _, y = next(iter(bundle.train))
    assert y.shape == (16, 1) and bundle.info.sizes["train"] == 32  # 40 after Keras' 20% test split


def test_keras_errors(keras_cache):
    with pytest.raises(UserError) as err:
        data.describe(spec("keras:mnsit"))
    assert err.value.location == "data.source" and "mnist" in err.value.hint
    with pytest.raises(UserError) as err:
        data.describe(spec("keras:mnist", validation="valid"))
    assert err.value.location == "data.validation" and "test" in err.value.hint


# -- tfds: ------------------------------------------------------------------------------------


def test_tfds_info_offline_without_download(tmp_path):
    info = data.describe(spec("tfds:mnist", options={"data_dir": str(tmp_path)}))
    assert info.input_shape == (28, 28, 1) and info.num_classes == 10 and info.label_kind == "categorical"
    assert info.extra["prepared"] is False and info.extra["input_key"] == "image"
    text = data.describe(spec("tfds:imdb_reviews", options={"data_dir": str(tmp_path), "sequence_length": 50}))
    assert text.input_shape == (50,) and text.input_dtype == "int32" and text.class_names == ["neg", "pos"]


@pytest.mark.slow
def test_tfds_through_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    s = spec("tfds:mnist", options={"scale": 1 / 255}, test="test")  # TFDS' own folder: mock data writes nothing
    with tfds.testing.mock_data(num_examples=24):
        bundle = data.load(s, one_hot=True)
        x, y = next(iter(bundle.train))
        assert x.shape == (16, 28, 28, 1) and x.dtype.name == "float32" and y.shape == (16, 10)
        assert sum(int(b[0].shape[0]) for b in bundle.test) == 24
        p = data.preview(s, n=2)
        assert len(p["samples"]) == 2 and sum(p["label_counts"].values()) == p["counted"]


def test_tfds_text_is_vectorised(tmp_path):
    import tensorflow_datasets as tfds

    s = spec("tfds:imdb_reviews", options={"max_tokens": 100, "sequence_length": 12})
    with tfds.testing.mock_data(num_examples=20):
        x, y = next(iter(data.load(s).train))
    assert x.shape == (16, 12) and x.dtype.name == "int32" and int(x.numpy().max()) < 100
    assert set(y.numpy().tolist()) <= {0, 1}


def test_tfds_unknown_name_has_close_matches():
    with pytest.raises(UserError) as err:
        data.describe(spec("tfds:mnsit"))
    assert err.value.location == "data.source" and "'mnist'" in err.value.hint


def test_tfds_no_network_explains_how_to_prepare(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from tfbench.data import tfds_source

    def offline(self, *a, **k):
        raise ConnectionError("Could not resolve host: storage.googleapis.com")

    # The network is never touched: the download step itself fails as it does offline.
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    tfds_source._builder.cache_clear()
    with pytest.raises(UserError, match="cannot download") as err:
        data.load(spec("tfds:mnist"))
    assert "tfds build mnist" in err.value.hint and "data_dir" in err.value.hint
    with pytest.raises(UserError, match="not prepared"):
        data.load(spec("tfds:mnist", options={"download": False}))


@pytest.fixture(scope="module")
def tiny_builder():
    import tensorflow_datasets as tfds

    class TinyShapesTfbench(tfds.core.GeneratorBasedBuilder):
        """A real TFDS builder generated locally, so split information is genuine."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(6, 6, 1)),
                        "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(30), "test": self._generate_examples(9)}

        def _generate_examples(self, n):
            for i in range(n):
                yield i, {"image": np.full((6, 6, 1), i % 3, np.uint8), "label": i % 3}

    return TinyShapesTfbench.name


def test_tfds_prepared_locally_with_split_slicing(tmp_path, tiny_builder):
    import tensorflow_datasets as tfds

    tfds.builder(tiny_builder, data_dir=str(tmp_path)).download_and_prepare()  # as `tfds build --data_dir`
    options = {"data_dir": str(tmp_path)}
    bundle = data.load(spec(f"tfds:{tiny_builder}", options=options, batch_size=4))
    assert bundle.info.sizes == {"train": 24, "validation": 6} and bundle.steps_per_epoch == 6
    assert bundle.info.extra["prepared"] is True and bundle.info.class_names == ["a", "b", "c"]
    x, y = next(iter(bundle.train))
    assert np.array_equal(x.numpy()[:, 0, 0, 0], y.numpy())  # image value = its label
    sliced = data.describe(
        spec(f"tfds:{tiny_builder}", options={**options, "split": "train[:50%]"}, validation="train[50%:]", test="test")
    )
    assert sliced.sizes == {"train": 15, "validation": 15, "test": 9}
    with pytest.raises(UserError) as err:
        data.describe(spec(f"tfds:{tiny_builder}", options=options, validation="tset"))
    assert err.value.location == "data.validation" and "test" in err.value.hint
    with pytest.raises(UserError) as err:
        data.describe(spec(f"tfds:{tiny_builder}", options={**options, "label_key": "lbl"}))
    assert err.value.location == "data.options.label_key"


def test_keras_download_failure_says_where_to_put_the_file(keras_cache, monkeypatch):
    import urllib.error

    from keras.src.datasets import boston_housing

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    # Keras' own download step fails as it does offline; the network is never touched.
    monkeypatch.setattr(boston_housing, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(keras_cache))  # Keras' own cache: the only one downloaded into
    with pytest.raises(UserError, match="cannot download keras:boston_housing") as err:
        data.load(spec("keras:boston_housing"))
    assert "boston_housing.npz" in err.value.hint and str(keras_cache / "datasets") in err.value.hint
