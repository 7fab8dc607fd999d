"""`tfbench predict`'s numbers: accuracy, confusion matrix, confident mistakes, residuals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_export import make_run

from tfbench import evaluation
from tfbench.errors import UserError

# Keras warns that a finite tf.data pipeline "ran out of data" after fit/evaluate on it.
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


def train_run(run_dir: Path, preset: str, epochs: int) -> Path:
    """Train a shipped preset briefly with the real builder and data, saved as a run directory."""
    return make_run(run_dir, preset, epochs=epochs)


# -- the numbers, on hand-made outputs -------------------------------------------------------


def test_confusion_matrix_and_confident_mistakes():
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # true 0, right
            [0.1, 0.8, 0.1],  # true 0, wrong (0.8 sure)
            [0.2, 0.7, 0.1],  # true 1, right
            [0.3, 0.3, 0.4],  # true 1, wrong (0.4 sure)
            [0.05, 0.9, 0.05],  # true 2, wrong (0.9 sure)
            [0.1, 0.1, 0.8],  # true 2, right
        ]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    report = evaluation.classification_report(probs, labels, ["a", "b", "c"], logits=False, k=2)
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["confusion"] == [[1, 1, 0], [0, 1, 1], [0, 1, 1]]
    assert [m["index"] for m in report["mistakes"]] == [4, 1]
    assert report["mistakes"][0] == {
        "index": 4,
        "true": 2,
        "true_name": "c",
        "predicted": 1,
        "predicted_name": "b",
        "confidence": 0.9,
    }
    assert report["per_class"][1] == {"class": "b", "precision": pytest.approx(1 / 3), "recall": 0.5, "support": 2}
    assert report["errors"] == 3


def test_one_hot_labels_and_logits_give_the_same_report():
    logits = np.log(np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]]))
    one_hot = np.array([[1, 0], [1, 0], [0, 1]])
    from_logits = evaluation.classification_report(logits, one_hot, ["x", "y"], logits=True)
    from_probs = evaluation.classification_report(np.exp(logits), np.array([0, 0, 1]), ["x", "y"], logits=False)
    assert from_logits["confusion"] == from_probs["confusion"] == [[1, 1], [1, 0]]
    assert from_logits["mistakes"][0]["confidence"] == pytest.approx(0.8)


def test_single_sigmoid_unit_is_a_two_class_matrix():
    outputs = np.array([[0.9], [0.2], [0.6], [0.1]])
    report = evaluation.classification_report(outputs, np.array([1, 0, 0, 1]), ["arm 0", "arm 1"], logits=False)
    assert report["confusion"] == [[1, 1], [1, 1]]
    assert report["mistakes"][0]["confidence"] == pytest.approx(0.9)  # index 3 predicted 0 with p=0.9
    assert report["mistakes"][0]["index"] == 3


def test_regression_report():
    outputs = np.array([[1.0], [2.0], [3.5], [-1.0]])
    targets = np.array([[1.0], [2.5], [3.0], [1.0]])
    report = evaluation.regression_report(outputs, targets, k=2)
    assert report["mae"] == pytest.approx((0 + 0.5 + 0.5 + 2) / 4)
    assert report["rmse"] == pytest.approx(np.sqrt((0 + 0.25 + 0.25 + 4) / 4))
    assert report["bias"] == pytest.approx((0 - 0.5 + 0.5 - 2) / 4)
    assert report["worst"][0] == {"index": 3, "target": 1.0, "predicted": -1.0, "residual": -2.0}
    assert len(report["worst"]) == 2


# -- real runs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("runs") / "digits", "digits-mlp", epochs=5)


@pytest.mark.slow
def test_evaluate_a_trained_classifier(digits_run):
    result = evaluation.evaluate_run(digits_run, k=3)
    assert result["split"] == "validation" and result["samples"] == 359
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 359
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 359)
    assert result["accuracy"] > 0.8
    assert len(result["mistakes"]) == 3
    confidences = [m["confidence"] for m in result["mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(m["true"] != m["predicted"] for m in result["mistakes"])


def test_evaluation_renders_at_80_columns(digits_run):
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    for part in evaluation.renderables(evaluation.evaluate_run(digits_run)):
        console.print(part)
    text = console.export_text()
    assert "confusion matrix" in text and "most confident mistakes" in text and "accuracy" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.slow
def test_evaluate_a_trained_regressor(tmp_path):
    run = train_run(tmp_path / "sine", "sine-rnn", epochs=2)
    result = evaluation.evaluate_run(run, k=4)
    assert result["label_kind"] == "regression" and result["samples"] == 400
    assert 0 < result["mae"] <= result["rmse"]
    residuals = [abs(w["residual"]) for w in result["worst"]]
    assert residuals == sorted(residuals, reverse=True) and len(residuals) == 4
    assert residuals[0] >= result["mae"]


def test_missing_split_and_bad_split(digits_run):
    with pytest.raises(UserError, match="no test split") as info:
        evaluation.evaluate_run(digits_run, split="test")
    assert info.value.location == "--split"
    with pytest.raises(UserError, match="unknown split") as info:
        evaluation.evaluate_run(digits_run, split="valdation")
    assert "validation" in info.value.hint


def test_run_without_model(tmp_path):
    with pytest.raises(UserError, match="no trained model"):
        (tmp_path / "experiment.toml").write_text('name = "x"\n')
        evaluation.evaluate_run(tmp_path)
