"""The train screen of a model with several outputs: `O` picks whose curves show (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import pilot_test, screen_text
from test_training_screen import Host, caught_up

from tfbench.screens.training import TrainingScreen
from tfbench.widgets.curves import Curves

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.slow
@pilot_test
async def test_the_output_key_cycles_through_each_outputs_curves_and_back():
    screen = TrainingScreen(FIXTURES / "two_heads_run.jsonl", bell=False)
    async with Host(screen).run_test(size=(120, 36)) as pilot:
        await caught_up(pilot, screen)
        curves = screen.query_one(Curves)
        assert screen.check_action("next_output", ()) is True
        for _ in range(50):  # the footer redraws its keys after the log's first events are read
            if "O Output" in screen_text(pilot.app):
                break
            await pilot.pause(0.05)
        assert "O Output" in screen_text(pilot.app)  # the footer offers the key
        for _ in range(100):  # the curves of a log read whole are drawn (in a thread) once it is read
            if "kind_loss" in curves.render().plain:
                break
            await pilot.pause(0.05)
        assert "kind_loss" in curves.render().plain and "kind_accuracy" not in curves.render().plain
        seen = []
        for _ in range(3):
            await pilot.press("O")
            await pilot.pause()
            seen.append(curves.output)
            if curves.output == "kind":
                picture = curves.render().plain
                assert "kind_accuracy" in picture and "age_mae" not in picture
        assert seen == ["age", "kind", None]


@pilot_test
async def test_a_single_output_run_offers_no_output_key():
    screen = TrainingScreen(FIXTURES / "finished.jsonl", bell=False)
    async with Host(screen).run_test(size=(120, 36)) as pilot:
        await caught_up(pilot, screen)
        assert screen.check_action("next_output", ()) is False
        await pilot.press("O")
        assert screen.query_one(Curves).output is None
