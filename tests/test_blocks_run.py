"""Models with blocks train, save and export: digits-resnet end to end, backbones offline.

The `.keras` files are loaded in a fresh interpreter that cannot import tfbench, so they hold
nothing but Keras' own layers (no custom objects).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from no_network.sitecustomize import pythonpath
from tiny_runs import tfbench_here

from tfbench import build
from tfbench.data.info import DataInfo
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict, load_experiment

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
    pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square"),
]

FROZEN_MOBILENET = [
    {
        "type": "MobileNetV2",
        "weights": "none",
        "include_top": False,
        "trainable": False,
        "preprocess": True,
        "alpha": 0.35,
    },
    {"type": "GlobalAveragePooling2D"},
    {"type": "Dense", "units": 2, "activation": "softmax"},
]
PICTURES = DataInfo("test:pictures", (32, 32, 3), "categorical", 2, ["a", "b"])


def plain_keras(code: str, cwd: Path) -> str:
    """Run code in an interpreter where tfbench cannot be imported; its last stdout line."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=pythonpath())  # the network guard only
    guard = f"import sys; sys.path = [p for p in sys.path if p not in ('', '.', {str(REPO)!r})]\n"
    out = subprocess.run(
        [sys.executable, "-c", guard + code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_digits_resnet_trains_offline_and_exports_plain_keras_and_float_tflite(tmp_path):
    result = tfbench_here("run", "digits-resnet", "--runs-dir", tmp_path, "--set", "train.epochs=8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("digits-resnet-")]
    report = json.loads((run_dir / "exports" / "report.json").read_text())
    assert report["keras"]["keras_metric"] >= 0.95
    assert report["tflite"]["quantization"] == "none" and report["tflite"]["max_abs_diff"] <= 1e-4
    summary = build.summarize(
        load_experiment("digits-resnet"),
        DataInfo("builtin:digits", (8, 8, 1), "categorical", 10, [str(i) for i in range(10)]),
    )
    line = plain_keras(
        "import json, keras\n"
        f"m = keras.saving.load_model({str(run_dir / 'model.keras')!r})\n"
        "print(json.dumps([m.count_params(), sorted({type(l).__name__ for l in m.layers}), 'tfbench' in sys.modules]))",
        tmp_path,
    )
    params, types, tfbench_loaded = json.loads(line)
    assert params == summary.total_params and not tfbench_loaded
    assert "Add" in types and "Conv2D" in types
    saved = tfbench_here("export", run_dir, "--format", "savedmodel", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert json.loads((run_dir / "exports" / "report.json").read_text())["savedmodel"]["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_a_frozen_backbone_reloads_in_plain_keras_and_stays_in_inference_mode(tmp_path):
    exp = experiment_from_dict({"name": "frozen", "model": {"layers": FROZEN_MOBILENET}})
    model = build.build_model(exp, PICTURES)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", pixels)
    expected = np.asarray(model(pixels, training=False))
    model.save(str(tmp_path / "m.keras"))
    line = plain_keras(
        "import json, keras, numpy as np\n"
        "m = keras.saving.load_model('m.keras')\n"
        "x = np.load('x.npy')\n"
        "a, b = np.asarray(m(x, training=False)), np.asarray(m(x, training=True))\n"
        "np.save('y.npy', a)\n"
        "print(json.dumps([float(np.abs(a - b).max()), len(m.trainable_weights)]))",
        tmp_path,
    )
    train_vs_infer, trainable = json.loads(line)
    # BatchNormalization inside the frozen backbone ignores training=True: same outputs.
    assert train_vs_infer < 1e-6
    assert trainable == 2  # only the new Dense head trains
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)


@pytest.mark.slow
def test_imagenet_weights_offline_and_uncached_say_which_file_and_the_ways_out(tmp_path):
    layers = [dict(FROZEN_MOBILENET[0], weights="imagenet"), *FROZEN_MOBILENET[1:]]
    exp = experiment_from_dict({"name": "offline", "model": {"layers": layers}})
    summary = build.summarize(exp, PICTURES)  # validation never needs the weights
    assert summary.layers[0].kind == "backbone"
    with pytest.raises(UserError) as caught:
        build.build_model(exp, PICTURES)
    err = caught.value
    assert err.location == "model.layers[0].weights"
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5" in err.message
    assert 'weights = "none"' in err.hint and "local" in err.hint


@pytest.mark.slow
def test_a_local_weights_file_is_loaded_and_a_missing_one_is_named(tmp_path):
    source = experiment_from_dict({"name": "src", "model": {"layers": FROZEN_MOBILENET}})
    backbone = build.build_model(source, PICTURES, compile=False).layers[2]
    path = tmp_path / "backbone.weights.h5"
    backbone.save_weights(str(path))
    layers = [dict(FROZEN_MOBILENET[0], weights=str(path)), *FROZEN_MOBILENET[1:]]
    loaded = build.build_model(experiment_from_dict({"name": "local", "model": {"layers": layers}}), PICTURES)
    for mine, theirs in zip(loaded.layers[2].weights, backbone.weights):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    layers[0]["weights"] = str(tmp_path / "missing.h5")
    with pytest.raises(UserError, match="no such weights file") as caught:
        build.build_model(experiment_from_dict({"name": "local", "model": {"layers": layers}}), PICTURES)
    assert caught.value.location == "model.layers[0].weights"


@pytest.mark.slow
def test_images_mobilenet_validates_offline_on_an_image_folder(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(3):
            png = tf.io.encode_png(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
            (tmp_path / "photos" / cls / f"{i}.png").write_bytes(png.numpy())
    result = tfbench_here(
        "validate",
        "images-mobilenet",
        "--json",
        "--set",
        f'data.source="images:{tmp_path / "photos"}"',
        "--set",
        "data.options.image_size=[32, 32]",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["params"]["trainable"] == 1280 * 2 + 2
    backbone = out["layers"][2]
    assert (backbone["type"], backbone["kind"], backbone["path"]) == ("MobileNetV2", "backbone", "model.layers[2]")
