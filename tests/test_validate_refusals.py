"""What would fail in the first batch or while loading is refused by `validate`, in one line at its
place: attention over a flat tensor, a damaged backbone weights file, `unfreeze` beyond the
backbone; and `.keras` files that are cut short or declare absurd sizes are refused before Keras
opens them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_runs import tfbench_here, write_preset

from tfbench.cli import cli
from tfbench.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")

DIGITS = """
name = "refuse"
[data]
source = "builtin:{source}"
batch_size = 64
{layers}
[train]
epochs = 1
"""


def layers_toml(*entries: str) -> str:
    return "\n".join(f"[[model.layers]]\n{entry.strip()}" for entry in entries)


def validate(tmp_path: Path, text: str):
    """`tfbench validate` on a preset's text, in this process: (exit code, stdout, stderr)."""
    preset = write_preset(tmp_path, text, "p.toml")
    result = CliRunner().invoke(cli, ["validate", str(preset)])
    return result.exit_code, result.stdout, result.stderr


def assert_one_error_line(code: int, err: str, where: str, *words: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert f"{where}: " in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


# -- attention needs a sequence ---------------------------------------------------------------------

MHA = 'type = "MultiHeadAttention"\nnum_heads = 2\nkey_dim = 8'
SOFTMAX = 'type = "Dense"\nunits = 10\nactivation = "softmax"'


@pytest.mark.slow
def test_validate_refuses_multi_head_attention_on_a_flat_tensor_in_one_line(tmp_path):
    preset = write_preset(
        tmp_path, DIGITS.format(source="digits", layers=layers_toml('type = "Flatten"', MHA, SOFTMAX))
    )
    for args in (["validate"], ["run", "--runs-dir", "runs", "--quiet"]):
        result = tfbench_here(args[0], str(preset), *args[1:], cwd=tmp_path)
        assert_one_error_line(result.returncode, result.stderr, "model.layers[1]", "MultiHeadAttention", "Reshape")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run marked failed


HELD_OUT_FLAT = {
    "after a Dense on 2-D points": (
        "spiral",
        ['type = "Dense"\nunits = 8', MHA, 'type = "Dense"\nunits = 1\nactivation = "sigmoid"'],
        "model.layers[1]",
    ),
    "inside a Residual block": (
        "digits",
        ['type = "Flatten"', f'type = "Residual"\nlayers = [ {{ {MHA.replace(chr(10), ", ")} }} ]', SOFTMAX],
        "model.layers[1].layers[0]",
    ),
    "a dot-product Attention": ("digits", ['type = "Flatten"', 'type = "Attention"', SOFTMAX], "model.layers[1]"),
    "a causal one in a Parallel branch": (
        "digits",
        [
            'type = "Flatten"',
            'type = "Parallel"\nmerge = "concatenate"\nbranches = [ [ { type = "MultiHeadAttention", num_heads = 1, '
            'key_dim = 4, use_causal_mask = true } ], [ { type = "Dense", units = 4 } ] ]',
            SOFTMAX,
        ],
        "model.layers[1].branches[0][0]",
    ),
}


@pytest.mark.parametrize("case", list(HELD_OUT_FLAT))
def test_every_attention_over_a_flat_tensor_is_refused_at_its_place(tmp_path, case):
    source, entries, where = HELD_OUT_FLAT[case]
    code, _, err = validate(tmp_path, DIGITS.format(source=source, layers=layers_toml(*entries)))
    assert_one_error_line(code, err, where, "needs a sequence (steps, features)")


@pytest.mark.slow
def test_the_reshape_the_error_suggests_validates_and_trains(tmp_path, runs_dir):
    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment

    entries = ['type = "Flatten"', 'type = "Reshape"\ntarget_shape = [64, 1]', MHA, 'type = "Flatten"', SOFTMAX]
    text = DIGITS.format(source="digits", layers=layers_toml(*entries))
    code, out, err = validate(tmp_path, text)
    assert code == 0, err
    run = Run(load_experiment(write_preset(tmp_path, text, "ok.toml")), runs_dir=runs_dir)
    assert run.train() == "completed"


# -- backbone weights files ---------------------------------------------------------------------------

BACKBONE = """
name = "bb"
[data]
source = "npz:{data}"
batch_size = 16
[[model.layers]]
type = "MobileNetV2"
weights = "{weights}"
alpha = 0.35
include_top = false
pooling = "avg"
trainable = false
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
[train]
epochs = {epochs}
seed = 3
{fine_tune}
"""


def pictures(folder: Path) -> Path:
    """Sixteen 32×32 colour pictures of two classes."""
    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    path = folder / "pictures.npz"
    np.savez(path, x=rng.normal(0, 1, (16, 32, 32, 3)).astype("float32") + y[:, None, None, None], y=y)
    return path


def backbone_preset(folder: Path, weights: str, epochs: int = 1, fine_tune: str = "") -> str:
    return BACKBONE.format(data=pictures(folder), weights=weights, epochs=epochs, fine_tune=fine_tune)


@pytest.fixture(scope="module")
def good_weights(tmp_path_factory) -> Path:
    """The weights of the backbone BACKBONE builds, saved by Keras."""
    import keras

    path = tmp_path_factory.mktemp("weights") / "mobilenet.weights.h5"
    keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None).save_weights(
        path
    )
    return path


def damaged_weights(kind: str, good: Path, folder: Path) -> Path:
    data = good.read_bytes()
    make = {
        "empty.h5": b"",
        "random.h5": np.random.default_rng(1).bytes(5000),
        "cut.weights.h5": data[: len(data) // 3],
        "cut.keras": b"PK\x03\x04" + data[:4000],
    }
    path = folder / kind
    path.write_bytes(make[kind])
    return path


@pytest.mark.parametrize("kind", ["empty.h5", "random.h5", "cut.weights.h5", "cut.keras"])
def test_validate_refuses_a_damaged_backbone_weights_file_in_one_line(tmp_path, good_weights, kind):
    path = damaged_weights(kind, good_weights, tmp_path)
    code, _, err = validate(tmp_path, backbone_preset(tmp_path, str(path)))
    assert_one_error_line(code, err, "model.layers[0].weights", path.name)


def test_run_with_an_empty_weights_file_is_one_line_not_a_traceback(tmp_path, good_weights):
    path = damaged_weights("empty.h5", good_weights, tmp_path)
    preset = write_preset(tmp_path, backbone_preset(tmp_path, str(path)))
    result = tfbench_here("run", str(preset), "--runs-dir", "runs", "--quiet", cwd=tmp_path)
    assert_one_error_line(result.returncode, result.stderr, "model.layers[0].weights", "empty.h5")


@pytest.mark.slow
def test_good_weights_validate_and_weights_for_another_model_are_one_line_at_run(tmp_path, good_weights):
    code, _, err = validate(tmp_path, backbone_preset(tmp_path, str(good_weights)))
    assert code == 0, err
    import keras

    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(other)
    from tfbench import build
    from tfbench.data.info import DataInfo
    from tfbench.spec import experiment_from_dict, parse_toml

    exp = experiment_from_dict(parse_toml(backbone_preset(tmp_path, str(other))))
    with pytest.raises(UserError) as caught:
        build.build_model(exp, DataInfo("test:pictures", (32, 32, 3), "categorical", 2, ["a", "b"]))
    assert caught.value.location == "model.layers[0].weights" and "\n" not in str(caught.value)


# -- unfreeze beyond the backbone ---------------------------------------------------------------------


@pytest.mark.slow
def test_unfreeze_more_layers_than_the_backbone_has_is_refused(tmp_path):
    import keras

    shape = (32, 32, 3)
    backbone = keras.applications.MobileNetV2(
        input_shape=shape, alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    layers = len(backbone.layers)
    tune = "fine_tune = {{ after_epoch = 1, unfreeze = {n} }}"
    for n in (layers + 1, 10_000):
        code, _, err = validate(tmp_path, backbone_preset(tmp_path, "none", epochs=2, fine_tune=tune.format(n=n)))
        assert_one_error_line(code, err, "train.fine_tune.unfreeze", f"({layers})", f"at most {layers}")
    for n in (layers, 1):
        code, _, err = validate(tmp_path, backbone_preset(tmp_path, "none", epochs=2, fine_tune=tune.format(n=n)))
        assert code == 0, err


# -- .keras archives ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    import keras

    path = tmp_path_factory.mktemp("keras") / "small.keras"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.save(path)
    return path


def bomb(path: Path, member: str = "config.json", megabytes: int = 300, mode: str = "w") -> Path:
    """A zip (new, or `mode="a"` added to) with a member that inflates to `megabytes` of zeros from ~1/1000 of it."""
    with zipfile.ZipFile(path, mode, compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(member, "w", force_zip64=True) as handle:
            block = bytes(1 << 20)
            for _ in range(megabytes):
                handle.write(block)
    return path


def test_import_of_a_cut_keras_file_says_it_is_cut_not_missing(tmp_path, saved_model):
    from tfbench.build import import_layers

    cut = tmp_path / "cut.keras"
    cut.write_bytes(saved_model.read_bytes()[: saved_model.stat().st_size // 2])
    with pytest.raises(UserError) as caught:
        import_layers(cut)
    message = str(caught.value)
    assert "cut short" in message and "not found" not in message.lower() and caught.value.location == str(cut)
    assert [c.type for c in import_layers(saved_model)] == ["Dense", "Dense"]  # a whole one still imports


def test_import_of_a_keras_file_declaring_gigabytes_is_refused_before_it_is_opened(tmp_path):
    from tfbench.build import import_layers

    path = bomb(tmp_path / "bomb.keras")
    assert path.stat().st_size < 2 << 20
    with pytest.raises(UserError) as caught:
        import_layers(path)
    assert "refused" in str(caught.value) and "300.0 MB" in str(caught.value).replace("MiB", "MB")


@pytest.mark.slow
def test_predict_on_a_run_whose_model_declares_gigabytes_is_one_line(tmp_path, saved_model):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "experiment.toml").write_text(
        DIGITS.format(source="digits", layers=layers_toml('type = "Flatten"', SOFTMAX))
    )
    (run_dir / "model.keras").write_bytes(saved_model.read_bytes())  # a genuine model, with a bomb member added
    bomb(run_dir / "model.keras", "assets/x.bin", mode="a")
    result = tfbench_here("predict", str(run_dir), cwd=tmp_path)
    assert_one_error_line(result.returncode, result.stderr, "model.keras", "assets/x.bin", "refused")
