"""The Study screen, fed recorded study directories (tests/fixtures/write_study.py): pictures of a live
and a finished study, and pilot tests of its actions (open a trial, stop the study, load best.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from app_pilot import lay_out_and_paint_now, pilot_test, screen_text, table_measured, widget_text

from tfbench.app import make_study_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import load_experiment

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from write_study import NOW, write_study  # noqa: E402

SIZE = (110, 34)


def study_app(study_dir: Path):
    app = make_study_app(study_dir, now=NOW, engine_calls=FixedEngineCalls())
    app.blink = False
    return app


async def read_study(pilot) -> None:
    """Wait until the Study screen has read its study."""
    from textual.widgets import DataTable

    from tfbench.screens.study import StudyScreen

    for _ in range(300):
        screen = pilot.app.screen
        if isinstance(screen, StudyScreen) and screen.reads and not screen.reading:
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the Study screen never read its study")
    await table_measured(screen.query_one(DataTable))
    await pilot.pause()


@pytest.mark.slow
@pytest.mark.parametrize("live", [True, False], ids=["live", "finished"])
def test_study_screen_pictures(snap_compare, tmp_path, live):
    """The trials best first, best-so-far curve, objective by learning rate, importances."""
    study_dir = write_study(tmp_path / "study", live=live)
    assert snap_compare(study_app(study_dir), terminal_size=SIZE, run_before=read_study)


@pilot_test
async def test_the_table_lists_every_trial_best_first_with_its_state(tmp_path):
    study_dir = write_study(tmp_path / "study", live=True)
    app = study_app(study_dir)
    async with app.run_test(size=SIZE) as pilot:
        await read_study(pilot)
        screen = app.screen
        assert [r["number"] for r in screen.rows][:3] == [4, 2, 0]
        assert [r["state"] for r in screen.rows].count("running") == 2
        text = screen_text(app)
        assert "6/12 trials" in text and "2 running" in text and "best #4 0.9755" in text
        assert "lr" in text and "units" in text and "rate" in text


@pilot_test
async def test_the_trials_table_painted_before_it_measured_its_rows_still_shows_whole_values(tmp_path, monkeypatch):
    """The screen painting the new rows before the table is idle: every column used to stay as wide as
    its header for good (a trial's lr of 4.0e-03 shown as `4.`), a refresh with the same rows kept it."""
    from textual.widgets import DataTable

    from tfbench.screens.study import StudyScreen

    show_table = StudyScreen._show_table

    def shown_then_painted(screen, snap):
        show_table(screen, snap)
        lay_out_and_paint_now(screen)

    monkeypatch.setattr(StudyScreen, "_show_table", shown_then_painted)
    study_dir = write_study(tmp_path / "study", live=True)
    app = study_app(study_dir)
    async with app.run_test(size=SIZE) as pilot:
        await read_study(pilot)
        table = app.screen.query_one("#trials", DataTable)
        shown = widget_text(app, table)
        rows = [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]
        assert rows and len(shown) > len(rows)
        for cells, line in zip(rows, shown[1:]):  # under the header
            assert all(cell in line for cell in cells), (cells, line)


@pytest.mark.slow
@pilot_test
async def test_enter_opens_the_trial_under_the_cursor_in_a_train_screen(tmp_path):
    from tfbench.screens.training import TrainingScreen

    study_dir = write_study(tmp_path / "study", live=True)
    app = study_app(study_dir)
    async with app.run_test(size=SIZE) as pilot:
        await read_study(pilot)
        await pilot.press("down")  # the second best: trial #2
        await pilot.press("enter")
        for _ in range(50):  # the train screen follows a live log: its tail never completes
            if isinstance(app.screen, TrainingScreen):
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, TrainingScreen)
        assert Path(app.screen.run_dir) == (study_dir / "trial-0002").resolve()


@pilot_test
async def test_b_loads_best_toml_into_the_workbench(tmp_path):
    study_dir = write_study(tmp_path / "study")
    app = study_app(study_dir)
    async with app.run_test(size=SIZE) as pilot:
        await read_study(pilot)
        await pilot.press("b")
        await pilot.pause()
        best = load_experiment(study_dir / "best.toml")
        assert app.experiment == best and app.preset_path == study_dir / "best.toml"
        assert best.model.layers[2].args["units"] == 128 and best.export.formats == ["keras"]


DRIVER = """
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: (open(sys.argv[1], "w").write("stopped"), sys.exit(0)))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
@pilot_test
async def test_s_stops_the_study_process_as_ctrl_c_would(tmp_path):
    import json
    import socket

    study_dir = write_study(tmp_path / "study", live=True)
    flag = tmp_path / "flag"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(flag)], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "ready"
        (study_dir / "tune.json").write_text(json.dumps({"pid": driver.pid, "host": socket.gethostname()}))
        app = study_app(study_dir)
        async with app.run_test(size=SIZE) as pilot:
            await read_study(pilot)
            await pilot.press("s")  # asks first: n keeps the study going
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause()
            assert driver.poll() is None and not flag.exists()
            await pilot.press("s", "y")
            await pilot.pause()
        assert driver.wait(10) == 0 and flag.read_text() == "stopped"
    finally:
        if driver.poll() is None:
            driver.kill()
    # nobody left to stop: the screen says so instead of signalling anything
    app = study_app(study_dir)
    async with app.run_test(size=SIZE) as pilot:
        await read_study(pilot)
        await pilot.press("s", "y")
        await pilot.pause()
        assert any("No `tfbench tune` process" in n.message for n in app._notifications)
