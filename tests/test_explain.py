"""Where a model looks: Grad-CAM, top classes and activations, with real Keras on the bundled shapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_export import make_run
from tiny_runs import png_bytes

from tfbench.cli import cli
from tfbench.errors import UserError
from tfbench.explain import Explainer, RunExplainer, feature_path

pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    """`shapes-cnn` trained for five epochs (about 90 % validation accuracy)."""
    return make_run(tmp_path_factory.mktemp("runs") / "shapes-cnn-20260101-000000", "shapes-cnn", epochs=5)


@pytest.fixture(scope="module")
def explainer(shapes_run) -> RunExplainer:
    return RunExplainer(shapes_run)


def _drawn_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The rows and columns the shape covers: its pixels are 0.6 to 1 bright, the noise around 0.05."""
    rows, cols = np.nonzero(image[..., 0] > 0.3)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


@pytest.mark.slow
def test_the_grad_cam_peak_falls_on_the_drawn_shape(explainer):
    x, _ = explainer.samples("validation")
    inside = 0
    for index in range(50):
        explanation = explainer.explain_sample("validation", index)
        top, left, bottom, right = _drawn_box(x[index])
        row, col = explanation.peak
        inside += top <= row <= bottom and left <= col <= right
        assert explanation.method == "grad-cam" and explanation.layer == "conv2d_1"
    assert inside >= 40, f"the peak was on the shape for {inside} of 50 images"


@pytest.mark.slow
def test_a_sample_is_explained_with_its_classes_heat_map_and_activations(explainer):
    explanation = explainer.explain_sample("validation", 3)
    assert explanation.heat.shape == (28, 28) and explanation.overlay.shape == (28, 28, 3)
    assert float(explanation.heat.max()) == pytest.approx(1.0)
    assert [name for name, _ in explanation.top][0] == explanation.target_name
    assert sum(p for _, p in explanation.top) == pytest.approx(1.0, abs=1e-5)  # three classes, all shown
    assert explanation.label in ("circle", "square", "triangle")
    assert [m.name for m in explanation.activations] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]
    assert all(len(m.maps) == 6 and m.maps[0].shape == m.shape[:2] for m in explanation.activations)
    other = next(name for name, _ in explanation.top if name != explanation.target_name)
    asked = explainer.explain_sample("validation", 3, other)
    assert asked.target_name == other and not np.allclose(asked.cam, explanation.cam)


@pytest.mark.slow
def test_an_image_file_is_read_as_the_model_saw_its_kind(explainer, tmp_path):
    x, _ = explainer.samples("validation")
    grey = np.round(x[5, ..., 0] * 255).astype(np.uint8)
    path = tmp_path / "drawing.png"
    path.write_bytes(png_bytes(np.repeat(grey[..., None], 3, axis=-1)))
    from_file = explainer.explain_file(path)
    from_split = explainer.explain_sample("validation", 5)
    np.testing.assert_allclose(from_file.image, x[5], atol=1 / 255 + 1e-6)
    assert from_file.target_name == from_split.target_name and from_file.source == "drawing.png"
    assert from_file.top[0][1] == pytest.approx(from_split.top[0][1], abs=0.02)


@pytest.mark.slow
def test_mistakes_in_what_to_explain_name_the_option(explainer, tmp_path):
    cases = {
        "--class": lambda: explainer.explain_sample("validation", 0, "hexagon"),
        "--index": lambda: explainer.explain_sample("validation", 10_000),
        "--split": lambda: explainer.explain_sample("test", 0),
    }
    for where, call in cases.items():
        with pytest.raises(UserError) as caught:
            call()
        assert caught.value.location == where
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3), np.float32))
    for name, message in {
        "bad.png": "not a readable image",
        "wrong.npy": "the model takes",
        "no.png": "no such",
    }.items():
        with pytest.raises(UserError, match=message):
            explainer.explain_file(tmp_path / name)


@pytest.mark.slow
def test_predict_explain_prints_json_and_saves_the_heat_map(shapes_run, tmp_path):
    png = tmp_path / "heat.png"
    args = ["predict", str(shapes_run), "--explain", "--index", "2", "--json", "--output", str(png)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["source"] == "validation sample 2" and report["method"] == "grad-cam"
    assert report["heat_shape"] == [11, 11] and len(report["top"]) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = CliRunner().invoke(cli, ["predict", str(shapes_run), "--explain", "--index", "2"])
    assert printed.exit_code == 0 and "Grad-CAM · conv2d_1" in printed.output and "activations" in printed.output
    refused = CliRunner().invoke(cli, ["predict", str(shapes_run), "--index", "2"])
    assert refused.exit_code == 2 and "add --explain" in refused.output


# -- models built here, untrained -----------------------------------------------------------------


def test_a_model_without_convolutions_gets_a_saliency_map():
    import keras

    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    explanation = Explainer(model, ["a", "b"]).explain(np.random.default_rng(0).random((12, 12, 1)))
    assert explanation.method == "saliency" and explanation.layer == "input"
    assert explanation.heat.shape == (12, 12) and explanation.activations == []


def test_a_convolution_inside_a_backbone_is_found_by_walking_into_it():
    import keras

    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", name="inner_conv")(inputs)
    features = keras.layers.ReLU(name="inner_relu")(features)
    backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(features), name="backbone")
    model = keras.Sequential([keras.Input((16, 16, 3)), backbone, keras.layers.Dense(3, "softmax")])
    assert [layer.name for layer in feature_path(model)] == ["backbone", "inner_relu"]
    explanation = Explainer(model, ["x", "y", "z"]).explain(np.random.default_rng(1).random((16, 16, 3)))
    assert explanation.layer == "backbone/inner_relu" and explanation.cam.shape == (16, 16)


def test_a_model_that_does_not_take_images_is_refused():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")])
    with pytest.raises(UserError, match="needs a model on images"):
        Explainer(model, ["a", "b"])
