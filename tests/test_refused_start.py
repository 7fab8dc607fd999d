"""Ctrl+R on a model the Model screen marks ✗ is refused where the user is: no runner, no failed run left."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from textual.widgets import Static
from tiny_runs import spiral_info

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls

SPIRAL = spiral_info()


@pytest.mark.slow
@pilot_test
async def test_ctrl_r_on_a_model_marked_as_failing_is_refused_with_the_reason(runs_dir: Path):
    calls = FixedEngineCalls(info=SPIRAL, failing=("Dense",))  # the summary fails at the first Dense
    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=calls)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot, rounds=3)
        model = app.get_screen("model")
        assert app.screen is model and app.summary_error is not None
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.pause()  # no settling: a runner, had one started, would be followed for good
        assert app.screen is model  # still on the Model screen, not on Train
        totals = str(model.query_one("#totals", Static).render())
        assert totals.startswith("✗ not started: model.layers[0]: Dense cannot follow the layer before it")
        notices = list(app._notifications)  # what the user was told
        assert any(n.title == "Not started: the model does not build" for n in notices)
        assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no run directory, failed or not
        assert getattr(app.get_screen("train"), "run_dir", None) is None
