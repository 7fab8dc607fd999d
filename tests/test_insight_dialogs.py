"""The augmentation preview and Explain dialogs, driven with keys: rolls, samples, classes, mistakes, errors."""

from __future__ import annotations

import asyncio

import pytest
from insight_pictures import augmentation, explanation
from test_snapshots_insight import EVALUATION, EXPERIMENT, FIXTURES, INFO

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict


class CountingCalls(FixedEngineCalls):
    """Fixed answers that remember what was asked."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.asked: list[tuple] = []

    def augment(self, exp, index: int = 0, roll: int = 0):
        self.asked.append(("augment", index, roll))
        return super().augment(exp, index, roll)

    def explain(self, run_dir, split: str = "validation", index: int = 0, class_name: str | None = None):
        self.asked.append(("explain", index, class_name))
        return super().explain(run_dir, split, index, class_name)


async def _until(pilot, check, what: str) -> None:
    for _ in range(400):
        if check():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never: {what}")


def _static(screen, selector: str) -> str:
    from textual.widgets import Static

    return str(screen.query_one(selector, Static).render())


@pytest.mark.slow
def test_augment_keys_roll_and_step_through_samples_from_the_model_and_data_screens():
    calls = CountingCalls(info=INFO, augmentation=augmentation())

    async def run():
        app = make_app(experiment=experiment_from_dict(EXPERIMENT), engine_calls=calls)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("g")
            await _until(pilot, lambda: getattr(app.screen, "preview", None) is not None, "a preview")
            dialog = app.screen
            assert "roll 0 (seed 42) · RandomFlip(mode=vertical)" in _static(dialog, "#augment-status")
            await pilot.press("r")
            await _until(pilot, lambda: dialog.preview.roll == 1, "the re-roll")
            await pilot.press("n", "n", "p")
            await _until(pilot, lambda: ("augment", 1, 1) in calls.asked[3:], "the next sample")
            assert calls.asked == [
                ("augment", 0, 0),
                ("augment", 0, 1),
                ("augment", 1, 1),
                ("augment", 2, 1),
                ("augment", 1, 1),
            ]
            await _until(pilot, lambda: "sample 2 · roll 1" in _static(dialog, "#augment-status"), "sample 2 shown")
            await pilot.press("escape")
            await pilot.app.workers.wait_for_complete([w for w in app.workers if w.node is dialog] or None)
            app.action_show("data")
            await pilot.pause()
            await pilot.press("g")
            await _until(
                pilot, lambda: type(app.screen).__name__ == "AugmentDialog", "the preview from the Data screen"
            )

    asyncio.run(run())


@pytest.mark.slow
def test_a_stack_without_augmentation_says_so_inside_the_preview():
    plain = {**EXPERIMENT, "model": {"layers": EXPERIMENT["model"]["layers"][2:]}}
    calls = FixedEngineCalls(info=INFO)  # no fixed picture: the real layers are asked

    async def run():
        app = make_app(experiment=experiment_from_dict(plain), engine_calls=calls)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("g")
            dialog = app.screen
            await _until(pilot, lambda: _static(dialog, "#augment-error") != "", "an error line")
            error = _static(dialog, "#augment-error")
            assert "model.layers[0]" in error and "does not start with augmentation layers" in error
            assert "Traceback" not in error and dialog.preview is None

    asyncio.run(run())


@pytest.mark.slow
def test_explain_from_the_results_steps_images_mistakes_and_classes():
    calls = CountingCalls(info=INFO, evaluation=EVALUATION, explanations=[explanation()])

    async def run():
        from tfbench.screens.training import TrainingScreen

        app = make_app(
            experiment=experiment_from_dict(EXPERIMENT), engine_calls=calls, watch=FIXTURES / "finished.jsonl"
        )
        async with app.run_test(size=(100, 32)) as pilot:
            await _until(pilot, lambda: isinstance(app.screen, TrainingScreen) and app.screen.caught_up, "the log read")
            await pilot.press("v")
            await _until(pilot, lambda: getattr(app.screen, "evaluation", None) is not None, "the evaluation")
            await pilot.press("x")
            await _until(pilot, lambda: getattr(app.screen, "explanation", None) is not None, "an explanation")
            dialog = app.screen
            assert dialog.index == 4  # the evaluation's confident mistake comes first
            await pilot.press("n")
            await _until(pilot, lambda: ("explain", 5, None) in calls.asked, "the next image")
            await pilot.press("c")
            await _until(pilot, lambda: ("explain", 5, "square") in calls.asked, "the next class")
            await pilot.press("m")
            await _until(pilot, lambda: ("explain", 4, None) in calls.asked[2:], "back to the mistake")
            assert calls.asked == [
                ("explain", 4, None),
                ("explain", 5, None),
                ("explain", 5, "square"),
                ("explain", 4, None),
            ]
            await _until(pilot, lambda: "explained in" in _static(dialog, "#explain-status"), "the status")

    asyncio.run(run())


def test_explaining_a_run_without_a_model_says_so_inline(tmp_path):
    calls = FixedEngineCalls(info=INFO, evaluation=EVALUATION)  # no fixed explanation: the run is loaded

    async def run():
        from tfbench.screens.explain_dialog import ExplainDialog

        app = make_app(experiment=experiment_from_dict(EXPERIMENT), engine_calls=calls)
        async with app.run_test(size=(100, 32)) as pilot:
            dialog = ExplainDialog(tmp_path)
            await app.push_screen(dialog)
            await _until(pilot, lambda: _static(dialog, "#explain-error") != "", "an error")
            assert "has no trained model (model.keras)" in _static(dialog, "#explain-error")
            assert "Traceback" not in _static(dialog, "#explain-error")

    asyncio.run(run())
