"""The results dialog shows an evaluation whenever it comes: before, while or after the dialog is built."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls

FIXTURES = Path(__file__).parent / "fixtures"
EVALUATION = {
    "split": "validation",
    "samples": 4,
    "label_kind": "categorical",
    "accuracy": 0.75,
    "class_names": ["a", "b"],
    "confusion": [[2, 1], [0, 1]],
    "per_class": [
        {"class": "a", "precision": 1.0, "recall": 2 / 3, "support": 3},
        {"class": "b", "precision": 0.5, "recall": 1.0, "support": 1},
    ],
    "mistakes": [{"index": 2, "true": 0, "true_name": "a", "predicted": 1, "predicted_name": "b", "confidence": 0.9}],
    "errors": 1,
}


def _text(dialog) -> str:
    from rich.console import Console
    from textual.widgets import Static

    console = Console(width=80, record=True, file=io.StringIO())
    console.print(dialog.query_one("#results", Static).content)
    return console.export_text()


async def _caught_up(pilot):
    from tfbench.screens.training import TrainingScreen

    for _ in range(200):
        if isinstance(pilot.app.screen, TrainingScreen) and pilot.app.screen.caught_up:
            return pilot.app.screen
        await pilot.pause(0.02)
    raise AssertionError("the train screen never caught up with its log")


def test_evaluation_that_comes_before_the_dialog_is_built():
    from tfbench.messages import EvaluationReady
    from tfbench.screens.run_dialogs import ResultsDialog

    async def run():
        app = make_app("digits-cnn", watch=FIXTURES / "finished.jsonl", engine_calls=FixedEngineCalls())
        async with app.run_test(size=(100, 32)) as pilot:
            train = await _caught_up(pilot)
            dialog = ResultsDialog(train.state, None, "evaluating on the validation split…")
            app.push_screen(dialog)  # not awaited: the dialog is on top but has no widgets yet
            assert app.screen is dialog and not dialog.is_mounted
            train.on_evaluation_ready(EvaluationReady(EVALUATION))  # must not raise NoMatches
            await pilot.pause()
            assert "accuracy 75.00%" in _text(dialog) and "evaluating" not in _text(dialog)

    asyncio.run(run())


def test_v_then_the_fixed_workbench_evaluation():
    from tfbench.screens.run_dialogs import ResultsDialog

    async def run():
        app = make_app(
            "digits-cnn", watch=FIXTURES / "finished.jsonl", engine_calls=FixedEngineCalls(evaluation=EVALUATION)
        )
        async with app.run_test(size=(100, 32)) as pilot:
            train = await _caught_up(pilot)
            await pilot.press("v")
            for _ in range(200):
                if train.evaluation is not None:
                    break
                await pilot.pause(0.02)
            await pilot.pause()
            assert isinstance(app.screen, ResultsDialog)
            assert train.evaluation["run_dir"] == str(FIXTURES / "finished.jsonl")
            assert "accuracy 75.00%" in _text(app.screen)

    asyncio.run(run())


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_results_are_the_run_summary_then_the_evaluations_own_tables():
    """One rendering of an evaluation: the dialog shows exactly what `tfbench predict` prints under the summary."""
    from tfbench.engine.events import RunState
    from tfbench.evaluation import renderables
    from tfbench.screens.run_dialogs import results_renderable, run_summary

    state = RunState.from_log(FIXTURES / "finished.jsonl")
    summary = _plain(run_summary(state))
    assert "best epoch 8" in summary and "final:" in summary
    shown = _plain(results_renderable(state, EVALUATION))
    predicted = "".join(_plain(part) for part in renderables(EVALUATION))
    assert shown == summary + predicted
    assert "confusion matrix" in shown and "most confident mistakes" in shown
    note = _plain(results_renderable(state, None, "evaluating on the validation split…"))
    assert note.startswith(summary.rstrip("\n")) and "evaluating" in note and "confusion" not in note
