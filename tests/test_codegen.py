"""`tfbench code`: the standalone plain-Keras script of every shipped offline preset runs and matches."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import runner_env

from tfbench.codegen import generate_script
from tfbench.spec import load_experiment

OFFLINE_PRESETS = ["digits-cnn", "digits-mlp", "spiral-mlp", "shapes-cnn", "sine-rnn"]

# Run each script as `python train.py` would, one after another in one interpreter (TensorFlow starts
# once), and prove after each that it never imported tfbench. Each script's output follows its own
# header line on stdout and on stderr.
RUNNER = """
import json, os, runpy, sys, traceback
for name, path, *args in json.loads(sys.argv[1]):
    for stream in (sys.stdout, sys.stderr):
        print(f"=== {name} ===", file=stream, flush=True)
    os.chdir(os.path.dirname(path))
    sys.argv = [path, *args]
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException:
        traceback.print_exc()
        print("=== failed ===", flush=True)
        continue
    leaked = sorted(m for m in sys.modules if m == "tfbench" or m.startswith("tfbench."))
    print(f"the script imported {leaked}" if leaked else "no tfbench imported", flush=True)
"""


def run_scripts(scripts: dict[str, tuple[Path, list[str]]]) -> dict[str, subprocess.CompletedProcess]:
    """Run each named `train.py` with its arguments in one child interpreter; each one's result by name.

    A script's return code is 1 when it raised (its traceback ends its stderr), else 0.
    """
    import json

    plan = [[name, str(path), *args] for name, (path, args) in scripts.items()]
    child = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(plan)], env=runner_env(), capture_output=True, text=True, timeout=900
    )
    assert child.returncode == 0, child.stderr[-3000:]

    def sections(text: str) -> dict[str, str]:
        parts = re.split(r"^=== (\S+) ===\n", text, flags=re.M)
        return dict(zip(parts[1::2], parts[2::2]))

    out, err = sections(child.stdout), sections(child.stderr)
    return {
        name: subprocess.CompletedProcess(
            name, int("=== failed ===" in out.get(name, "=== failed ===")), out.get(name, ""), err.get(name, "")
        )
        for name in scripts
    }


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Every offline preset's script run for one epoch, and the fine-tune preset's for two, in one child."""
    scripts = {}
    for preset in OFFLINE_PRESETS:
        folder = tmp_path_factory.mktemp(preset)
        (folder / "train.py").write_text(generate_script(load_experiment(preset)))
        scripts[preset] = (folder / "train.py", ["--epochs", "1", "--output", str(folder / "out.keras")])
    folder = tmp_path_factory.mktemp("fine-tune")
    (folder / "train.py").write_text(generate_script(load_experiment(_fine_tune_preset(folder, "12"))))
    scripts["fine-tune"] = (folder / "train.py", ["--epochs", "2", "--output", str(folder / "out.keras")])
    results = run_scripts(scripts)
    return {name: (path.parent, results[name]) for name, (path, _) in scripts.items()}


def _namespace(script: str) -> dict:
    """The script's functions and settings, without running its main()."""
    namespace: dict = {"__name__": "generated"}
    exec(compile(script, "train.py", "exec"), namespace)
    return namespace


@pytest.mark.slow
@pytest.mark.parametrize("preset", OFFLINE_PRESETS)
def test_generated_script_runs_and_builds_the_same_model(preset, script_runs):
    from tfbench import data
    from tfbench.build import summarize

    exp = load_experiment(preset)
    script = generate_script(exp)
    ast.parse(script)
    assert "tfbench" not in "\n".join(line for line in script.splitlines() if "import" in line)
    folder, result = script_runs[preset]
    assert (folder / "train.py").read_text() == script
    assert result.returncode == 0, result.stderr[-3000:]
    expected = summarize(exp, data.describe(exp.data, seed=exp.train.seed)).total_params
    params = int(re.search(r"^params: (\d+)$", result.stdout, re.M).group(1))
    assert params == expected
    assert re.search(r"^\d+/\d+ - .* - loss: [\d.]+ .* - val_loss: [\d.]+", result.stdout, re.M)  # one epoch
    assert (folder / "out.keras").is_file()
    assert "no tfbench imported" in result.stdout


@pytest.mark.parametrize("preset", OFFLINE_PRESETS)
def test_script_holds_out_the_same_validation_samples(preset):
    """The script's data and split are tfbench's, sample for sample."""
    from tfbench import data

    exp = load_experiment(preset)
    ns = _namespace(generate_script(exp))
    train, validation, test = ns["split"](ns["load_data"]())
    bundle = data.load(exp.data, seed=exp.train.seed)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in bundle.validation])
    np.testing.assert_array_equal(validation[0], np.concatenate(xs))
    np.testing.assert_array_equal(validation[1], np.concatenate(ys))
    assert len(train[1]) == bundle.info.sizes["train"] and test is None


def test_script_reads_like_keras():
    script = generate_script(load_experiment("digits-cnn"))
    assert 'keras.Input(shape=(8, 8, 1), name="input")' in script
    assert "keras.layers.Conv2D(filters=32, kernel_size=3, padding='same', activation='relu')(x)" in script
    assert "keras.optimizers.Adam(learning_rate=0.001)" in script
    assert "loss='sparse_categorical_crossentropy'" in script
    assert "keras.callbacks.EarlyStopping(monitor='val_loss', patience=5, restore_best_weights=True)" in script
    assert "EPOCHS = 30" in script and "BATCH_SIZE = 64" in script
    assert "digits.npz" in script and Path(re.search(r"\"DIGITS_FILE\", '([^']+)'", script).group(1)).is_file()


def test_auto_loss_and_schedule_are_written_out():
    exp = load_experiment(
        "spiral-mlp",
        [
            'train.loss="auto"',
            'model.layers[2].activation="linear"',
            'train.metrics=["auto"]',
            'train.schedule={type="CosineDecay", initial_learning_rate=0.01, decay_steps=100}',
        ],
    )
    script = generate_script(exp)
    assert "loss=keras.losses.BinaryCrossentropy(from_logits=True)" in script
    assert "metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)]" in script
    assert "learning_rate=keras.optimizers.schedules.CosineDecay(initial_learning_rate=0.01, decay_steps=100)" in script
    ns = _namespace(script)
    model = ns["build_model"]()
    assert model.loss.from_logits is True


def test_categorical_crossentropy_gets_one_hot_labels():
    exp = load_experiment("digits-mlp", ['train.loss="categorical_crossentropy"'])
    ns = _namespace(generate_script(exp))
    assert ns["NUM_CLASSES"] == 10
    train, _, _ = ns["split"](ns["load_data"]())
    x, y = next(iter(ns["to_dataset"](train, training=False)))
    assert tuple(y.shape) == (ns["BATCH_SIZE"], 10)


def test_npz_source_script(tmp_path):
    rng = np.random.default_rng(0)
    file = tmp_path / "points.npz"
    np.savez(file, x=rng.normal(size=(50, 3)).astype("float32"), y=rng.integers(0, 3, 50))
    preset = tmp_path / "p.toml"
    preset.write_text(f"""
name = "points"
[data]
source = "npz:{file}"
batch_size = 8
[[model.layers]]
type = "Dense"
units = 3
activation = "softmax"
""")
    exp = load_experiment(preset)
    ns = _namespace(generate_script(exp))
    train, validation, _ = ns["split"](ns["load_data"]())
    assert len(train[1]) + len(validation[1]) == 50
    assert ns["build_model"]().count_params() == 3 * 3 + 3


# -- other sources ----------------------------------------------------------------------------


def _preset(tmp_path: Path, source: str, layers: str, extra: str = "") -> Path:
    path = tmp_path / "preset.toml"
    path.write_text(f'name = "p"\n[data]\nsource = "{source}"\nbatch_size = 4\n{extra}\n{layers}')
    return path


DENSE_3 = '[[model.layers]]\ntype = "Dense"\nunits = 3\nactivation = "softmax"\n'


def test_csv_source_script_reads_the_same_numbers(tmp_path):
    """The script's FeatureSpace encodes the validation rows exactly as the model tfbench builds does."""
    from tfbench import build, data

    rows = [
        [i * 0.5, (10 - i) % 7, ["red", "green", "blue"][i % 3], ["cat", "dog", "eel"][(i * 7) % 3]] for i in range(30)
    ]
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("a,b,colour,species\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    exp = load_experiment(
        _preset(tmp_path, f"csv:{csv_file}", DENSE_3, '[data.options]\nlabel = "species"\nnormalize = true')
    )
    ns = _namespace(generate_script(exp))
    _, validation, _ = ns["split"](ns["load_data"]())
    assert ns["CLASS_NAMES"] == ["cat", "dog", "eel"]
    bundle = data.load(exp.data, seed=exp.train.seed)
    model = build.build_model(exp, bundle.info, compile=False)
    preprocessing = next(layer for layer in model.layers if layer.name == "preprocessing")
    xs, ys = zip(*[(preprocessing(x).numpy(), y.numpy()) for x, y in bundle.validation])
    script_x, script_y = zip(*[(x.numpy(), y.numpy()) for x, y in ns["to_dataset"](validation, training=False)])
    np.testing.assert_allclose(np.concatenate(script_x), np.concatenate(xs), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(script_y), np.concatenate(ys))
    assert ns["build_model"]().count_params() == (2 + 3 + 1) * 3 + 3  # a, b, colour one-hot + OOV


def test_keras_source_script_builds_without_the_data(monkeypatch):
    import keras

    exp = load_experiment("digits-cnn", ['data.source="keras:mnist"', "model.layers[0].scale=0.00392"])
    script = generate_script(exp)
    # The script's text names the Keras download; this test only reads that text and builds the
    # model. The download is replaced by one that fails, so a call to it could not pass unseen.
    assert "keras.datasets.mnist.load_data()" in script
    assert "x = x[..., None]" in script and "x = tf.cast(x, tf.float32)" in script

    def no_download():
        raise AssertionError("building the model must not load the data")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_download)
    ns = _namespace(script)
    assert ns["build_model"]().input_shape == (None, 28, 28, 1)
    with pytest.raises(AssertionError, match="must not load the data"):
        ns["load_data"]()  # the replacement is the one the script would call


def test_images_folder_script_loads_and_builds(tmp_path):
    import tensorflow as tf

    for c, name in enumerate(["a", "b", "c"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(4):
            image = np.full((6, 5, 3), c * 100, np.uint8)
            (tmp_path / "imgs" / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    layers = '[[model.layers]]\ntype = "Flatten"\n' + DENSE_3
    exp = load_experiment(_preset(tmp_path, f"images:{tmp_path / 'imgs'}", layers))
    ns = _namespace(generate_script(exp))
    train, validation, test = ns["load_splits"]()
    x, y = next(iter(ns["to_dataset"](train, training=True)))
    assert tuple(x.shape[1:]) == (6, 5, 3) and x.dtype == tf.float32
    assert ns["build_model"]().count_params() == 6 * 5 * 3 * 3 + 3


def _class_folders(root: Path, kind: str, per_class: int = 10) -> None:
    """Three classes of distinct files: each image's pixels (each text's words) name its file."""
    import tensorflow as tf

    for c, name in enumerate(["a", "b", "c"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            if kind == "images":
                image = np.full((4, 4, 3), c * per_class + i, np.uint8)
                (root / name / f"{i:02d}.png").write_bytes(tf.io.encode_png(image).numpy())
            else:
                (root / name / f"{i:02d}.txt").write_text(f"class {name} file {i} " + "word " * (i % 3))


@pytest.mark.parametrize("kind", ["images", "text"])
def test_folder_script_holds_out_the_run_s_files_from_every_class(tmp_path, kind):
    """`validation_split` on a class folder: the script validates on the very files the run holds out."""
    from tfbench import data

    _class_folders(tmp_path / "folder", kind)
    layers = '[[model.layers]]\ntype = "Flatten"\n' + DENSE_3
    extra = "validation_split = 0.3" + ("\n[data.options]\nsequence_length = 6" if kind == "text" else "")
    exp = load_experiment(_preset(tmp_path, f"{kind}:{tmp_path / 'folder'}", layers, extra))
    ns = _namespace(generate_script(exp))
    if kind == "images":
        _, validation, _ = ns["load_splits"]()
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in validation])
        x, y = np.stack(xs), np.array(ys)
    else:
        _, validation, _ = ns["vectorize"](*ns["split"](ns["load_data"]()))
        x, y = validation
    bundle = data.load(exp.data, seed=exp.train.seed)
    run_x, run_y = (np.concatenate(part) for part in zip(*[(a.numpy(), b.numpy()) for a, b in bundle.validation]))
    assert len(set(y.tolist())) == 3  # every class, not the last files of the sorted list
    np.testing.assert_array_equal(y, run_y)
    np.testing.assert_array_equal(x, run_x)


def test_tfds_script_names_the_splits():
    exp = load_experiment("digits-cnn", ['data.source="tfds:mnist"'])
    script = generate_script(exp)
    # Exact counts when TFDS knows the split's size, else percentages — as tfbench slices it.
    assert re.search(r"train = tfds.load\('mnist', split='train\[:(48000|80%)\]', shuffle_files=False\)", script)
    assert re.search(r"validation = tfds.load\('mnist', split='train\[(48000|80%):\]'", script)
    ast.parse(script)


def test_nested_components_and_speed_switches(tmp_path):
    """Recurrent, regularised and normalising layers under mixed precision match tfbench's model."""
    import keras

    from tfbench import data
    from tfbench.build import build_model

    preset = tmp_path / "p.toml"
    preset.write_text("""
name = "nested"
[data]
source = "builtin:sine"
[[model.layers]]
type = "LSTM"
units = 4
[[model.layers]]
type = "Dense"
units = 8
activation = "relu"
kernel_initializer = "he_normal"
kernel_regularizer = "l2"
[[model.layers]]
type = "BatchNormalization"
[[model.layers]]
type = "Dense"
units = 1
[train]
mixed_precision = "mixed_bfloat16"
jit_compile = false
steps_per_execution = 2
callbacks = [{ type = "ReduceLROnPlateau", monitor = "val_loss", factor = 0.5, patience = 2 }]
""")
    exp = load_experiment(preset)
    script = generate_script(exp)
    assert "keras.layers.LSTM(units=4)(inputs)" in script
    assert "kernel_initializer='he_normal', kernel_regularizer='l2'" in script
    assert "keras.layers.Dense(units=1, dtype='float32')" in script
    assert "jit_compile=False," in script and "steps_per_execution=2," in script
    assert "keras.mixed_precision.set_global_policy('mixed_bfloat16')" in script
    ns = _namespace(script)
    previous = keras.config.dtype_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        theirs = ns["build_model"]()
    finally:
        keras.config.set_dtype_policy(previous)
    ours = build_model(exp, data.describe(exp.data, seed=exp.train.seed))
    assert theirs.count_params() == ours.count_params()
    assert [type(layer).__name__ for layer in theirs.layers] == [type(layer).__name__ for layer in ours.layers]
    assert theirs.layers[-1].dtype_policy.compute_dtype == "float32"


# -- fine-tuning: the Keras guide's two fits ---------------------------------------------------

FINE_TUNE = """
name = "tune"
[data]
source = "npz:{data}"
batch_size = 16
validation_split = 0.25
[[model.layers]]
type = "MobileNet"
weights = "none"
alpha = 0.25
include_top = false
pooling = "avg"
trainable = false
[[model.layers]]
type = "Dense"
units = 3
activation = "softmax"
[train]
epochs = 2
optimizer = {{ type = "Adam", learning_rate = 1e-3 }}
loss = "sparse_categorical_crossentropy"
seed = 3
fine_tune = {{ after_epoch = 1, unfreeze = {unfreeze}, learning_rate = 1e-5 }}
"""


def _fine_tune_preset(tmp_path: Path, unfreeze: str) -> Path:
    """Thirty-two 32×32 grey pictures of three classes, the smallest input a MobileNet takes (the smallest one)."""
    rng = np.random.default_rng(0)
    y = np.arange(32) % 3
    np.savez(tmp_path / "pictures.npz", x=rng.normal(0, 1, (32, 32, 32, 1)).astype("float32"), y=y)
    path = tmp_path / "preset.toml"
    path.write_text(FINE_TUNE.format(data=tmp_path / "pictures.npz", unfreeze=unfreeze))
    return path


def _switched_by_the_engine(exp) -> tuple[int, int]:
    from tfbench import build, data
    from tfbench.engine import fine_tune

    model = build.build_model(exp, data.describe(exp.data, seed=exp.train.seed))
    return fine_tune.switch(model, exp.train.fine_tune)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
@pytest.mark.parametrize("unfreeze", ['"all"', "12"])
def test_fine_tune_function_unfreezes_as_the_engine_does(unfreeze, tmp_path):
    exp = load_experiment(_fine_tune_preset(tmp_path, unfreeze))
    ns = _namespace(generate_script(exp))
    model = ns["build_model"]()
    count = lambda: sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # noqa: E731
    before = count()
    ns["fine_tune"](model)
    assert (before, count()) == _switched_by_the_engine(exp)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    assert ns["FINE_TUNE_AFTER"] == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")
def test_fine_tune_script_fits_frozen_then_unfrozen(script_runs):
    folder, result = script_runs["fine-tune"]
    exp = load_experiment(folder / "preset.toml")
    assert (folder / "train.py").read_text() == generate_script(exp)
    assert result.returncode == 0, result.stderr[-3000:]
    after = int(re.search(r"^trainable params after the switch: (\d+)$", result.stdout, re.M).group(1))
    before, expected = _switched_by_the_engine(exp)
    assert after == expected > before
    # The frozen fit to epoch 1 (Keras names no epoch when a fit has one), then on from initial_epoch=1.
    assert len(re.findall(r"^\d+/\d+ - .* - loss: [\d.]+ .* - val_loss: [\d.]+", result.stdout, re.M)) == 2
    assert re.findall(r"^Epoch (\d+)/(\d+)$", result.stdout, re.M) == [("2", "2")]
    assert (folder / "out.keras").is_file() and "no tfbench imported" in result.stdout
