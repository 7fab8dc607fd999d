"""Pictures of the train screen replaying recorded event logs, and of the Runs screen.

Each replays a fixture log (tests/fixtures/*.jsonl) at 100x32 with the cursor blink off; elapsed
time is measured against the log's last event (no runner is alive), so the pictures never change.
The train screen's dialogs are opened with its keys; the results dialog's evaluation comes from the
`FixedEngineCalls` (EVALUATION below), not from a model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import tables_measured

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (100, 32)


# A digits classifier's evaluation on its 360 validation samples, as `evaluate_run` reports it.
CONFUSION = [
    [36, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 35, 0, 0, 0, 0, 0, 0, 1, 0],
    [0, 0, 35, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 34, 0, 1, 0, 0, 1, 0],
    [0, 0, 0, 0, 36, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 36, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 36, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 35, 0, 1],
    [0, 3, 0, 0, 0, 1, 0, 0, 31, 0],
    [0, 0, 0, 1, 0, 1, 0, 0, 1, 33],
]
EVALUATION = {
    "samples": 360,
    "label_kind": "categorical",
    "accuracy": sum(CONFUSION[c][c] for c in range(10)) / 360,
    "class_names": [str(c) for c in range(10)],
    "confusion": CONFUSION,
    "per_class": [
        {
            "class": str(c),
            "precision": CONFUSION[c][c] / sum(row[c] for row in CONFUSION),
            "recall": CONFUSION[c][c] / sum(CONFUSION[c]),
            "support": sum(CONFUSION[c]),
        }
        for c in range(10)
    ],
    "mistakes": [
        {"index": i, "true": t, "true_name": str(t), "predicted": p, "predicted_name": str(p), "confidence": c}
        for i, t, p, c in [
            (212, 8, 1, 0.987),
            (57, 9, 5, 0.954),
            (301, 3, 8, 0.921),
            (148, 7, 9, 0.874),
            (26, 1, 8, 0.803),
        ]
    ],
    "errors": 360 - sum(CONFUSION[c][c] for c in range(10)),
}


def recorded_app(**kwargs):
    """The workbench on digits-cnn with the fixed evaluation and a steady cursor."""
    app = make_app("digits-cnn", engine_calls=FixedEngineCalls(evaluation=EVALUATION), **kwargs)
    app.blink = False
    return app


async def replayed(pilot) -> None:
    """Wait until the train screen has read its whole log, then draw the curves."""
    from tfbench.screens.training import TrainingScreen
    from tfbench.widgets.curves import Curves

    for _ in range(200):
        screen = pilot.app.screen
        if isinstance(screen, TrainingScreen) and screen.caught_up:
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the train screen never caught up with its log")
    screen.query_one(Curves).redraw()
    await pilot.pause()


@pytest.mark.parametrize(
    "log",
    ["mid_run_gpu", "mid_run_cpu", "paused", "finished", "early_stopped", "failed_nan"],
)
def test_train_screen_replays(snap_compare, log):
    """The train screen for a run mid-way (with and without a GPU), paused, finished, early-stopped and failed."""
    assert snap_compare(recorded_app(watch=FIXTURES / f"{log}.jsonl"), terminal_size=SIZE, run_before=replayed)


def test_train_screen_ascii_log_scale(snap_compare):
    """ASCII markers and log-scale axes, for fonts without braille."""

    async def run_before(pilot):
        await replayed(pilot)
        await pilot.press("a", "g")
        await pilot.pause()

    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=SIZE, run_before=run_before)


async def two_runs_selected(pilot) -> None:
    """F5, the runs listed, the first and third selected (their curves overlaid), the tables measured."""
    from tfbench.screens.runs import RunsScreen

    await pilot.press("f5")
    for _ in range(200):
        if isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.scanned:
            break
        await pilot.pause(0.02)
    await pilot.press("space", "down", "down", "space")
    await tables_measured(pilot.app)
    await pilot.pause()


@pytest.mark.slow
def test_runs_screen_three_runs(snap_compare):
    """Three runs, two selected: their curves overlaid and their Experiments' differences."""

    assert snap_compare(recorded_app(runs_dir=FIXTURES / "runs_dir"), terminal_size=SIZE, run_before=two_runs_selected)


async def opened(pilot, key: str, dialog: str) -> None:
    """Replay the log, press the train screen's `key` and wait until `dialog` is on top."""
    await replayed(pilot)
    await pilot.press(key)
    for _ in range(100):
        if type(pilot.app.screen).__name__ == dialog:
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError(f"{key!r} did not open the {dialog}")
    await pilot.pause()


def test_edit_run_dialog(snap_compare):
    """`l` mid-run: the learning rate the run uses now (halved at epoch 3) and its total epochs."""

    async def run_before(pilot):
        await opened(pilot, "l", "EditRunDialog")

    assert snap_compare(recorded_app(watch=FIXTURES / "mid_run_gpu.jsonl"), terminal_size=SIZE, run_before=run_before)


def test_export_dialog(snap_compare):
    """`e` on a finished run: the Experiment's formats (keras, tflite) ticked, dynamic quantisation,
    and no matrix yet."""

    async def run_before(pilot):
        await opened(pilot, "e", "ExportDialog")

    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=SIZE, run_before=run_before)


def test_export_dialog_shows_the_format_by_quantisation_matrix(snap_compare):
    """`e` on a run exported with `--all`: the recorded matrix from its report.json, at 80x24."""

    async def run_before(pilot):
        await opened(pilot, "e", "ExportDialog")

    app = recorded_app(watch=FIXTURES / "digits-cnn-exported")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def results_shown(pilot) -> None:
    """`v` on a finished classifier: wait for the (fixed) evaluation to replace "evaluating…"."""
    from tfbench.screens.training import TrainingScreen

    await opened(pilot, "v", "ResultsDialog")
    train = next(s for s in pilot.app.screen_stack if isinstance(s, TrainingScreen))
    for _ in range(200):
        if train.evaluation is not None:
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the evaluation never arrived")
    await pilot.pause()


def test_results_dialog(snap_compare):
    """`v` on a finished run: best epoch and metrics, accuracy, then the confusion matrix."""
    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=SIZE, run_before=results_shown)


def test_results_dialog_scrolled(snap_compare):
    """The results dialog scrolled to its end: the most confident mistakes."""

    async def run_before(pilot):
        await results_shown(pilot)
        pilot.app.screen.query_one("#results-box").scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=SIZE, run_before=run_before)
