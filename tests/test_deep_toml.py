"""A preset nested hundreds deep is a user's mistake: one line and exit 2, an inline message in the TUI."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from textual.widgets import Input, Static
from tiny_runs import tfbench_process

from tfbench.spec import TOO_DEEP

REPO = Path(__file__).resolve().parent.parent
DEPTH = 500
NESTINGS = {
    "arrays": "x = " + "[" * DEPTH + "]" * DEPTH + "\n",
    "inline-tables": "x = " + "{ a = " * DEPTH + "1" + " }" * DEPTH + "\n",
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("nesting", sorted(NESTINGS))
def test_validate_and_run_say_it_in_one_line(tmp_path, command, nesting):
    preset = tmp_path / "deep.toml"
    preset.write_text(NESTINGS[nesting])
    result = tfbench_process(command, str(preset), cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {preset}: {TOO_DEEP}"
    assert "Traceback" not in result.stdout + result.stderr


def test_a_deep_override_says_it_in_one_line(tmp_path):
    result = tfbench_process(
        "validate", "digits-cnn", "--set", "train.epochs=" + "[" * DEPTH + "]" * DEPTH, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: [[[[") and TOO_DEEP in line


@pytest.mark.slow
@pilot_test
async def test_opening_it_in_the_workbench_shows_the_message_in_the_dialog(runs_dir: Path, tmp_path: Path):
    """Ctrl+O on the file: the dialog stays open with the message under the path; the App lives on."""
    from tfbench.app import make_app
    from tfbench.screens.dialogs import PathPrompt

    preset = tmp_path / "deep.toml"
    preset.write_text(NESTINGS["arrays"])
    app = make_app("digits-mlp", runs_dir=runs_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, PathPrompt)
        prompt.query_one("#prompt-path", Input).value = str(preset)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is prompt and app.is_running
        message = str(prompt.query_one("#prompt-error", Static).render())
        assert TOO_DEEP in message and str(preset) in message
        assert app.experiment.name == "digits-mlp"
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, PathPrompt)
