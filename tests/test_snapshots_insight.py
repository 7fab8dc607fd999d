"""Pictures of the augmentation preview and the Explain view, in truecolor, 16 colours and NO_COLOR.

Both draw fixed arrays (`insight_pictures`) that a `FixedEngineCalls` hands out, so no TensorFlow
runs. The palette follows the terminal: Textual's colour system is pinned per picture (a 16-colour
terminal gets the nearest of the 16 ANSI colours per pixel), and NO_COLOR gets shade characters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import wait_finite
from insight_pictures import augmentation, explanation

from tfbench.app import make_app
from tfbench.data.info import DataInfo
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict

FIXTURES = Path(__file__).parent / "fixtures"
EXPERIMENT = {
    "name": "snap-shapes",
    "data": {"source": "builtin:shapes", "validation_split": 0.2, "batch_size": 64},
    "model": {
        "layers": [
            {"type": "RandomFlip", "mode": "vertical"},
            {"type": "RandomTranslation", "height_factor": 0.1, "width_factor": 0.1},
            {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ]
    },
    "train": {"epochs": 5, "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "seed": 42},
}
INFO = DataInfo(
    source="builtin:shapes",
    input_shape=(28, 28, 1),
    label_kind="categorical",
    num_classes=3,
    class_names=["circle", "square", "triangle"],
    sizes={"train": 1200, "validation": 300},
    description="1,500 28x28 drawings of circles, squares and triangles.",
    extra={"prepared": True},
)
EVALUATION = {
    "samples": 300,
    "label_kind": "categorical",
    "accuracy": 0.96,
    "class_names": ["circle", "square", "triangle"],
    "confusion": [[98, 2, 0], [3, 96, 1], [1, 5, 94]],
    "per_class": [
        {"class": n, "precision": 0.96, "recall": 0.96, "support": 100} for n in ("circle", "square", "triangle")
    ],
    "mistakes": [
        {"index": 4, "true": 2, "true_name": "triangle", "predicted": 1, "predicted_name": "square", "confidence": 0.9}
    ],
    "errors": 12,
}
PALETTES = ["truecolor", "standard", "mono"]


@pytest.fixture
def palette(request, monkeypatch):
    """Pin the terminal's colour system (truecolor or 16 colours) or set NO_COLOR, per picture."""
    monkeypatch.setattr("textual.constants.COLOR_SYSTEM", "standard" if request.param == "standard" else "truecolor")
    if request.param == "mono":
        monkeypatch.setenv("NO_COLOR", "1")
    return request.param


def _app(**kwargs):
    calls = FixedEngineCalls(
        info=INFO, evaluation=EVALUATION, augmentation=augmentation(), explanations=[explanation()]
    )
    app = make_app(experiment=experiment_from_dict(EXPERIMENT), engine_calls=calls, **kwargs)
    app.blink = False
    return app


async def _shown(pilot, dialog: str, ready) -> None:
    """Wait until `dialog` is on top and `ready(screen)` holds, with its workers done."""
    for _ in range(300):
        screen = pilot.app.screen
        if type(screen).__name__ == dialog and ready(screen):
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError(f"the {dialog} never showed its pictures")
    ours = [worker for worker in pilot.app.workers if worker.node is pilot.app.screen]
    if ours:  # an empty list would mean every worker, and the watched log's follower never ends
        await pilot.app.workers.wait_for_complete(ours)
    await pilot.pause()
    await pilot.pause()


async def _augment(pilot) -> None:
    await wait_finite(pilot.app)
    await pilot.press("g")
    await _shown(pilot, "AugmentDialog", lambda screen: screen.preview is not None)


async def _explain(pilot) -> None:
    from tfbench.screens.training import TrainingScreen

    for _ in range(200):
        if isinstance(pilot.app.screen, TrainingScreen) and pilot.app.screen.caught_up:
            break
        await pilot.pause(0.02)
    await pilot.press("v")
    await _shown(pilot, "ResultsDialog", lambda screen: screen.evaluation is not None)
    await pilot.press("x")
    await _shown(pilot, "ExplainDialog", lambda screen: screen.explanation is not None)


@pytest.mark.parametrize("palette", PALETTES, indirect=True)
def test_augmentation_preview_80x24(snap_compare, palette):
    """`g` on the Model screen: the sample and eight variants, the layers that made them, the keys."""
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_augment)


def test_augmentation_preview_larger(snap_compare, monkeypatch):
    """At 120×40 the pictures grow to the sample's own size."""
    monkeypatch.setattr("textual.constants.COLOR_SYSTEM", "truecolor")
    assert snap_compare(_app(), terminal_size=(120, 40), run_before=_augment)


@pytest.mark.parametrize("palette", PALETTES, indirect=True)
def test_explain_view_80x24(snap_compare, palette):
    """`x` in the results: the image, its Grad-CAM, the top classes and the first layers' activations."""
    assert snap_compare(_app(watch=FIXTURES / "finished.jsonl"), terminal_size=(80, 24), run_before=_explain)


def test_explain_view_larger(snap_compare, monkeypatch):
    """At 120×40 every layer's thumbnails show below the pictures."""
    monkeypatch.setattr("textual.constants.COLOR_SYSTEM", "truecolor")
    assert snap_compare(_app(watch=FIXTURES / "finished.jsonl"), terminal_size=(120, 40), run_before=_explain)
