"""The workbench asks before a preset's own code is imported, shows its files' SHA-256, asks again
when they change, and never imports code by following a run or listing runs."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle

from tfbench.app import make_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.screens.code_consent import CodeConsent
from tfbench.screens.dialogs import LayerPicker

FIXTURES = Path(__file__).parent / "fixtures" / "code"
PRESET = """
name = "own"
[code]
modules = ["code/sentinel.py"]
[data]
source = "builtin:spiral"
[[model.layers]]
type = "Scale"
factor = 2.0
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""


def code_preset(folder: Path) -> Path:
    (folder / "code").mkdir()
    shutil.copy(FIXTURES / "sentinel.py", folder / "code" / "sentinel.py")
    with open(folder / "code" / "sentinel.py", "a") as module:  # a version of its own: never imported before
        module.write(f"\n# {folder}\n")
    path = folder / "own.toml"
    path.write_text(PRESET)
    return path


def imported(folder: Path) -> bool:
    return (folder / "code" / "sentinel.imported").exists()


@pilot_test
async def test_opening_a_preset_with_code_asks_first_and_declining_imports_nothing(tmp_path):
    preset = code_preset(tmp_path)
    app = make_app(engine_calls=FixedEngineCalls(), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        app._open(str(preset))
        await pilot.pause()
        assert isinstance(app.screen, CodeConsent)
        shown = str(app.screen.query_one("#code-files").render())
        assert str(preset.parent / "code" / "sentinel.py") in shown
        assert hashlib.sha256((tmp_path / "code" / "sentinel.py").read_bytes()).hexdigest() in shown
        assert not imported(tmp_path)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not imported(tmp_path)
        assert app.experiment.name != "own"
        assert not any(name.startswith("tfbench_code_sentinel") for name in sys.modules)


@pytest.mark.slow
@pilot_test
async def test_allowing_imports_once_per_version_and_the_picker_lists_the_modules_classes(tmp_path):
    from tfbench import catalog

    preset = code_preset(tmp_path)
    app = make_app(engine_calls=FixedEngineCalls(), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        app._open(str(preset))
        await pilot.pause()
        await pilot.click("#code-allow")
        await settle(app, pilot, rounds=4)
        assert imported(tmp_path)
        assert app.experiment.name == "own"
        scale = catalog.get("layers", "Scale")
        assert scale is not None and scale.module == "sentinel.py" and "factor" in scale.params
        picker = LayerPicker()
        app.push_screen(picker)
        await pilot.pause()
        await pilot.press(*"scale")
        await pilot.pause()
        listing = picker.query_one("#picker-list")
        first = str(listing.get_option_at_index(0).prompt)
        assert first.startswith("Scale") and "[sentinel.py] Multiplies its input" in first
        await pilot.press("escape")
        await pilot.pause()
        app._open(str(preset))  # the same files again: no question
        await pilot.pause()
        assert not isinstance(app.screen, CodeConsent)
        await settle(app, pilot)
        code = tmp_path / "code" / "sentinel.py"
        code.write_text(code.read_text() + "\n# changed\n")
        app._open(str(preset))  # changed: asked again
        await pilot.pause()
        assert isinstance(app.screen, CodeConsent)
        await pilot.press("escape")


@pilot_test
async def test_a_preset_with_code_given_at_start_is_not_imported_before_the_answer(tmp_path):
    preset = code_preset(tmp_path)
    app = make_app(preset=str(preset), engine_calls=FixedEngineCalls(), runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, CodeConsent)
        assert not imported(tmp_path)
        assert "not imported" in str(app.summary_error)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not imported(tmp_path)
        assert app.experiment.name == "digits-cnn"


@pytest.mark.slow
@pilot_test
async def test_following_a_run_with_code_and_the_runs_screen_import_nothing(tmp_path):
    import subprocess

    from tiny_runs import REPO, runner_env

    from tfbench.spec import load_experiment

    preset = code_preset(tmp_path)
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfbench",
            "run",
            str(preset),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--quiet",
            "--allow-code",
            "--set",
            "train.epochs=1",
        ],
        capture_output=True,
        text=True,
        env=runner_env(),
        cwd=REPO,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    [run_dir] = list((tmp_path / "runs").iterdir())
    marks = [tmp_path / "code" / "sentinel.imported", run_dir / "code" / "sentinel.imported"]
    for mark in marks:
        mark.unlink(missing_ok=True)
    experiment = load_experiment(run_dir / "experiment.toml")
    app = make_app(experiment=experiment, runs_dir=tmp_path / "runs", watch=run_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(50):  # the train screen follows the run's log to its end
            await pilot.pause(0.1)
            if getattr(app.screen, "state", None) is not None and app.screen.state.ended:
                break
        assert app.screen.state.status == "completed"
        await pilot.press("f5")  # the Runs screen lists it
        await pilot.pause(1.0)
        await pilot.press("f1")  # the Model screen: no summary of a preset whose code is not imported
        await pilot.pause(1.0)
        assert not isinstance(app.screen, CodeConsent)  # following a run asks nothing and imports nothing
    assert not any(mark.exists() for mark in marks)
    digest = hashlib.sha256((run_dir / "code" / "sentinel.py").read_bytes()).hexdigest()
    assert not any(digest[:16] in name for name in sys.modules)
