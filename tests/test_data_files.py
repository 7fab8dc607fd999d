"""npz, CSV, image-folder and text-folder sources on files generated inside the tests."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_runs import tfbench_here

from tfbench import data
from tfbench.errors import UserError
from tfbench.spec import DataSpec


def spec(source, **kw):
    return DataSpec(source=source, batch_size=kw.pop("batch_size", 8), **kw)


# -- npz ------------------------------------------------------------------------------------


def test_npz_with_test_arrays(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x=rng.normal(size=(50, 4)).astype("float32"),
        y=rng.integers(0, 3, 50),
        x_test=np.zeros((10, 4), "float32"),
        y_test=np.zeros(10, "int64"),
    )
    s = spec(f"npz:{path}", test="test")
    info = data.describe(s)
    assert info.input_shape == (4,) and info.label_kind == "categorical" and info.num_classes == 3
    assert info.sizes == {"train": 40, "validation": 10, "test": 10}
    bundle = data.load(s)
    x, y = next(iter(bundle.train))
    assert x.shape == (8, 4) and y.dtype.name == "int32"
    assert sum(int(b[1].shape[0]) for b in bundle.test) == 10


def test_npz_regression_and_custom_names(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, feats=np.ones((20, 3), "float32"), target=np.linspace(0, 1, 20))
    s = spec(f"npz:{path}", options={"x": "feats", "y": "target"})
    info = data.describe(s)
    assert info.label_kind == "regression" and info.label_shape == (1,)
    _, y = next(iter(data.load(s).train))
    assert y.shape == (8, 1)


def test_npz_errors(tmp_path):
    with pytest.raises(UserError, match="no such file") as err:
        data.describe(spec(f"npz:{tmp_path / 'missing.npz'}"))
    assert err.value.location.startswith("data.source")
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((5, 2)), labels=np.zeros(5))
    with pytest.raises(UserError) as err:
        data.describe(spec(f"npz:{path}"))
    assert err.value.location == "data.options.y" and "labels" in err.value.hint
    empty = tmp_path / "e.npz"
    np.savez(empty, x=np.ones((0, 2)), y=np.zeros(0))
    with pytest.raises(UserError, match="empty"):
        data.describe(spec(f"npz:{empty}"))
    with pytest.raises(UserError) as err:
        data.describe(spec(f"npz:{path}", options={"y": "labels"}, validation="valid"))
    assert err.value.location == "data.validation"


# -- csv ------------------------------------------------------------------------------------


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def test_csv_classification_with_text_features_and_normalisation(tmp_path):
    rng = np.random.default_rng(1)
    rows = [
        [round(float(a), 3), round(float(b) * 100, 1), c, s]
        for a, b, c, s in zip(
            rng.normal(size=60),
            rng.normal(size=60),
            rng.choice(["red", "blue"], 60),
            rng.choice(["setosa", "virginica", "other"], 60),
        )
    ]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "colour", "species"], rows)
    s = spec(
        f"csv:{path}",
        batch_size=64,
        options={"label": "species", "normalize": True},
        validation_split=None,
        shuffle=False,
    )
    info = data.describe(s)
    assert info.input_shape == (5,)  # a, b and colour one-hot (blue, red, out-of-vocabulary)
    assert info.label_kind == "categorical" and info.class_names == ["other", "setosa", "virginica"]
    assert info.extra["feature_names"] == ["a", "b", "colour"]
    x, y = next(iter(data.load(s).train))  # the raw columns: the model normalises and encodes them
    assert np.allclose(x["a"].numpy()[:, 0], [r[0] for r in rows])
    assert [v.decode() for v in x["colour"].numpy()[:, 0]] == [r[2] for r in rows]
    assert y.numpy().tolist() == [["other", "setosa", "virginica"].index(r[3]) for r in rows]
    from tfbench.data.feature_space import encoder, plan_of_info

    encoded = encoder(plan_of_info(info))(x).numpy()
    assert np.allclose(encoded[:, :2].mean(axis=0), 0, atol=1e-4) and np.allclose(
        encoded[:, :2].std(axis=0), 1, atol=1e-3
    )
    assert set(np.unique(encoded[:, 2:])) == {0.0, 1.0}


def test_csv_regression_inferred_and_overridable(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["x", "price"], [[i * 0.5, i * 1.5 + 0.25] for i in range(30)])
    assert data.describe(spec(f"csv:{path}")).label_kind == "regression"
    path2 = write_csv(tmp_path / "c.csv", ["x", "grade"], [[i * 0.5, i % 3] for i in range(30)])
    assert data.describe(spec(f"csv:{path2}", options={"label": 1})).label_kind == "categorical"
    info = data.describe(spec(f"csv:{path2}", options={"label_kind": "regression"}))
    assert info.label_kind == "regression" and info.label_shape == (1,)


def test_csv_errors_name_the_column(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["age", "label"], [[1, 0], ["abc", 1], [3, 0]])
    assert data.describe(spec(f"csv:{path}")).extra["table"]["columns"][0]["kind"] == "categorical"
    with pytest.raises(UserError, match="not a number") as err:
        data.describe(spec(f"csv:{path}", options={"columns": {"age": "numeric"}}))
    assert err.value.location == "data.options.columns.age" and "row 3: 'abc'" in err.value.message
    good = write_csv(tmp_path / "g.csv", ["age", "label"], [[1, 0], [2, 1]])
    with pytest.raises(UserError) as err:
        data.describe(spec(f"csv:{good}", options={"label": "lable"}))
    assert err.value.location == "data.options.label" and "label" in err.value.hint
    empty = tmp_path / "empty.csv"
    empty.write_text("age,label\n")
    with pytest.raises(UserError, match="no rows"):
        data.describe(spec(f"csv:{empty}"))
    with pytest.raises(UserError, match="no such file"):
        data.describe(spec(f"csv:{tmp_path / 'nope.csv'}"))


# -- image folders ----------------------------------------------------------------------------


def write_png(path, image):
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(np.asarray(image, np.uint8)).numpy())


def image_folder(root, size=(12, 10), per_class=6, odd_size=None):
    rng = np.random.default_rng(2)
    for c, name in enumerate(["cat", "dog", "fox"]):
        for i in range(per_class):
            shape = odd_size if (odd_size and c == 2 and i == 0) else size
            write_png(root / name / f"{i}.png", rng.integers(0, 255, (*shape, 3)) * 0 + c * 100)
    return root


@pytest.mark.slow
def test_images_folder_decodes_and_trains(tmp_path):
    import keras

    root = image_folder(tmp_path / "imgs")
    s = spec(f"images:{root}", batch_size=4, validation_split=1 / 3)
    info = data.describe(s)
    assert info.input_shape == (12, 10, 3) and info.class_names == ["cat", "dog", "fox"]
    assert info.sizes == {"train": 12, "validation": 6}
    bundle = data.load(s, one_hot=True)
    x, y = next(iter(bundle.train))
    assert x.shape == (4, 12, 10, 3) and y.shape == (4, 3) and x.dtype.name == "float32"
    # Every pixel encodes its class, so labels and images must agree after the shuffle.
    assert np.array_equal(x.numpy()[:, 0, 0, 0] / 100, np.argmax(y.numpy(), axis=1))
    model = keras.Sequential([keras.Input((12, 10, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    model.compile("adam", "categorical_crossentropy")
    model.fit(bundle.train, validation_data=bundle.validation, epochs=1, verbose=0)


def test_images_grayscale_and_resize(tmp_path):
    root = image_folder(tmp_path / "imgs", odd_size=(20, 20))
    s = spec(f"images:{root}", options={"image_size": [8, 8], "color_mode": "grayscale"})
    assert data.describe(s).input_shape == (8, 8, 1)
    x, _ = next(iter(data.load(s).train))
    assert x.shape[1:] == (8, 8, 1)


def test_images_of_different_sizes_need_a_resize(tmp_path):
    root = image_folder(tmp_path / "imgs", odd_size=(20, 20))
    with pytest.raises(UserError, match="different sizes") as err:
        data.describe(spec(f"images:{root}"))
    assert "image_size" in err.value.hint and "fox" in err.value.message


def test_images_folder_errors(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        data.describe(spec(f"images:{tmp_path / 'none'}"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(UserError, match="no class sub-folders"):
        data.describe(spec(f"images:{tmp_path / 'flat'}"))
    (tmp_path / "emptycls" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="holds no"):
        data.describe(spec(f"images:{tmp_path / 'emptycls'}"))


def test_image_header_sizes(tmp_path):
    import tensorflow as tf

    from tfbench.data.images import image_size

    image = np.zeros((7, 9, 3), np.uint8)
    (tmp_path / "a.jpg").write_bytes(tf.io.encode_jpeg(image).numpy())
    (tmp_path / "a.png").write_bytes(tf.io.encode_png(image).numpy())
    assert image_size(str(tmp_path / "a.jpg")) == (7, 9)
    assert image_size(str(tmp_path / "a.png")) == (7, 9)


# -- text folders -----------------------------------------------------------------------------


@pytest.mark.slow
def test_text_folder_vectorises_and_an_lstm_trains(tmp_path):
    import keras

    root = tmp_path / "reviews"
    words = {"pos": "great wonderful loved superb", "neg": "awful boring hated dull"}
    rng = np.random.default_rng(3)
    for label, vocab in words.items():
        (root / label).mkdir(parents=True)
        for i in range(20):
            text = " ".join(rng.choice(vocab.split(), 6)) + " the film"
            (root / label / f"{i}.txt").write_text(text)
    s = spec(f"text:{root}", batch_size=8, options={"max_tokens": 50, "sequence_length": 10})
    info = data.describe(s)
    assert info.input_shape == (10,) and info.input_dtype == "int32" and info.label_kind == "binary"
    assert info.class_names == ["neg", "pos"] and info.sizes == {"train": 32, "validation": 8}
    bundle = data.load(s)
    x, y = next(iter(bundle.train))
    assert x.shape == (8, 10) and x.dtype.name == "int32" and int(x.numpy().max()) < 50
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            keras.layers.Embedding(50, 8),
            keras.layers.LSTM(8),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=8, verbose=0)
    assert history.history["val_accuracy"][-1] >= 0.85


@pytest.mark.slow
def test_a_one_class_text_folder_is_refused_by_the_real_command(tmp_path):
    """`tfbench validate` and `run`: exit 2, one line naming the folder (it used to train at loss 0)."""
    root = tmp_path / "reviews"
    (root / "pos").mkdir(parents=True)
    for i in range(6):
        (root / "pos" / f"{i}.txt").write_text(f"great film number {i}")
    with pytest.raises(UserError, match=r"one class folder \('pos'\); a classifier needs at least two"):
        data.describe(spec(f"text:{root}"))
    preset = tmp_path / "p.toml"
    preset.write_text(
        f'name = "reviews"\n[data]\nsource = "text:{root}"\nbatch_size = 2\n'
        "[data.options]\nmax_tokens = 20\nsequence_length = 4\n"
        '[[model.layers]]\ntype = "Embedding"\ninput_dim = 20\noutput_dim = 4\n'
        '[[model.layers]]\ntype = "GlobalAveragePooling1D"\n'
        '[[model.layers]]\ntype = "Dense"\nunits = 1\nactivation = "sigmoid"\n[train]\nepochs = 1\n'
    )
    for command in (["validate", str(preset)], ["run", str(preset), "--runs-dir", str(tmp_path / "runs"), "--quiet"]):
        result = tfbench_here(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-2000:]
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith(f"error: {preset}: data.source ({root}): has one class folder ('pos')")
        ), result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_preview_of_a_folder_source(tmp_path):
    root = image_folder(tmp_path / "imgs")
    p = data.preview(spec(f"images:{root}", validation_split=None), n=3)
    assert len(p["samples"]) == 3 and p["samples"][0]["x"].shape == (12, 10, 3)
    assert p["label_counts"] == {"cat": 6, "dog": 6, "fox": 6}
