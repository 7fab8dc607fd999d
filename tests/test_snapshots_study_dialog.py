"""Snapshot pictures of the "New study" dialog (ctrl+t) over the fixed workbench of
test_snapshots_workbench: the suggested learning-rate row with a second row refused inline at 80×24,
and a preset's own `[tune]` space at 120×40."""

from __future__ import annotations

import copy
from pathlib import Path

from test_snapshots_workbench import EXPERIMENT, INFO, steps

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict

TUNE = {
    "objective": "val_accuracy",
    "trials": 12,
    "sampler": "tpe",
    "pruner": "median",
    "space": {
        "train.optimizer.learning_rate": {"float": [1e-4, 1e-2], "log": True},
        "model.layers[1].filters": {"int": [8, 32], "step": 8},
        "train.optimizer.type": {"choice": ["Adam", "RMSprop"]},
        "model.layers[3].rate": {"float": [0.0, 0.5]},
    },
}


def dialog_app(tune: dict | None = None):
    """The fixed workbench (its Experiment with `tune` as its `[tune]`), with a steady cursor."""
    data = copy.deepcopy(EXPERIMENT)
    if tune is not None:
        data["tune"] = tune
    app = make_app(
        experiment=experiment_from_dict(data),
        runs_dir=Path("runs-not-used"),
        engine_calls=FixedEngineCalls(info=INFO),
    )
    app.blink = False
    return app


async def type_a_misspelt_path(pilot) -> None:
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.press(*"model.layers[1].filter")


def test_new_study_dialog_80x24(snap_compare):
    """The suggested learning-rate row, and an added row whose misspelt path is refused under it."""
    assert snap_compare(dialog_app(), terminal_size=(80, 24), run_before=steps("ctrl+t", then=type_a_misspelt_path))


def test_new_study_dialog_with_the_presets_tune_space_120x40(snap_compare):
    """A preset's `[tune]`: its four parameters (log float, stepped int, choice, float), trials and objective."""
    assert snap_compare(dialog_app(TUNE), terminal_size=(120, 40), run_before=steps("ctrl+t"))
