"""Every screen and dialog at a classic 80×24 terminal and at 120×40, drawn from fixed data.

The pictures reuse the fixed workbench of test_snapshots_workbench (a `FixedEngineCalls`, a steady
cursor, no clock) and the recorded logs and runs of test_snapshots_training. A size that another
snapshot file already draws for a screen or dialog is not drawn again here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from app_pilot import pilot_test, screen_text, widget_text
from test_snapshots_training import (
    EVALUATION,
    FIXTURES,
    opened,
    recorded_app,
    replayed,
    results_shown,
    two_runs_selected,
)
from test_snapshots_workbench import fixed_app, steps

from tfbench.user_code import ModuleFile

SMALL = pytest.param((80, 24), id="80x24")
LARGE = pytest.param((120, 40), id="120x40")
BOTH = [SMALL, LARGE]
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def fixed_presets(monkeypatch):
    """The open dialog lists these instead of the shipped presets, which change over time."""
    monkeypatch.setattr("tfbench.spec.shipped_presets", lambda: ["digits-cnn", "digits-mlp", "spiral-mlp"])


def test_model_screen_large(snap_compare):
    """The model builder at 120×40 (80×24 is in test_snapshots_workbench)."""
    assert snap_compare(fixed_app(), terminal_size=(120, 40), run_before=steps())


@pytest.mark.parametrize("size", BOTH)
@pytest.mark.parametrize("key", ["f2", "f3"], ids=["data", "setup"])
def test_workbench_screen(snap_compare, key, size):
    """The Data and Setup screens over the fixed Experiment."""
    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps(key))


@pytest.mark.parametrize("size", BOTH)
def test_train_screen_finished(snap_compare, size):
    """The Train screen replaying a finished run's log."""
    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=size, run_before=replayed)


@pytest.mark.parametrize("size", BOTH)
def test_runs_screen(snap_compare, size):
    """The Runs screen over three recorded runs, two of them selected."""

    assert snap_compare(recorded_app(runs_dir=FIXTURES / "runs_dir"), terminal_size=size, run_before=two_runs_selected)


@pytest.mark.parametrize("size", BOTH)
@pytest.mark.parametrize(
    "keys",
    [("a", "c", "o", "n", "v"), ("ctrl+s",), ("ctrl+o", *"no-such.toml", "enter"), ("?",)],
    ids=["layer_picker", "save_preset", "open_preset_refused", "keys_help"],
)
def test_workbench_dialog(snap_compare, keys, size):
    """The Model screen's dialogs: layer picker, save and open (a missing file refused inline), keys help."""
    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps(*keys))


def test_block_picker_large(snap_compare):
    """The block picker at 120×40 (80×24 is in test_snapshots_builder)."""
    assert snap_compare(fixed_app(), terminal_size=(120, 40), run_before=steps("b"))


@pytest.mark.parametrize("size", BOTH)
def test_file_browser(snap_compare, tmp_path, monkeypatch, size):
    """The file browser for data files and folders, over a fixed folder."""
    for name in ("images/cats", "images/dogs"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "points.csv").write_text("x,y\n")
    (tmp_path / "arrays.npz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps("f2", "b", "down"))


@pytest.mark.parametrize("size", BOTH)
def test_quit_confirm(snap_compare, size):
    """Quitting with unsaved edits asks first."""
    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps("d", "ctrl+q"))


@pytest.mark.parametrize("size", BOTH)
def test_quit_choice(snap_compare, size):
    """The three answers to quitting while a run trains: stop it, leave it running, stay."""
    from tfbench.app import QUIT_ANSWERS
    from tfbench.screens.dialogs import Choice

    async def ask(pilot) -> None:
        question = "digits-cnn-20261026-093320 is still training. Stop it (it saves first), or leave it running?"
        pilot.app.push_screen(Choice(question, QUIT_ANSWERS))

    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps(then=ask))


@pytest.mark.parametrize("size", BOTH)
def test_code_consent(snap_compare, size):
    """A preset's own Python files, each with its SHA-256, before anything is imported."""
    from tfbench.screens.code_consent import CodeConsent

    data = b"import keras\n"
    files = [ModuleFile(Path(f"/presets/code/{n}.py"), data, hashlib.sha256(data).hexdigest()) for n in ("a", "b")]

    async def ask(pilot) -> None:
        pilot.app.push_screen(CodeConsent(files))

    assert snap_compare(fixed_app(), terminal_size=size, run_before=steps(then=ask))


@pytest.mark.parametrize("size", BOTH)
def test_edit_run(snap_compare, size):
    """`l` mid-run: the learning rate the run uses now and its total epochs."""

    async def run_before(pilot):
        await opened(pilot, "l", "EditRunDialog")

    assert snap_compare(recorded_app(watch=FIXTURES / "mid_run_gpu.jsonl"), terminal_size=size, run_before=run_before)


def test_export_large(snap_compare):
    """The export dialog with its recorded format × quantisation matrix at 120×40."""

    async def run_before(pilot):
        await opened(pilot, "e", "ExportDialog")

    assert snap_compare(
        recorded_app(watch=FIXTURES / "digits-cnn-exported"), terminal_size=(120, 40), run_before=run_before
    )


@pytest.mark.parametrize("size", BOTH)
def test_results(snap_compare, size):
    """`v` on a finished digits run: the summary and a 10-class confusion matrix with every count whole."""
    assert snap_compare(recorded_app(watch=FIXTURES / "finished.jsonl"), terminal_size=size, run_before=results_shown)


@pytest.mark.parametrize("size", BOTH)
def test_study_screen(snap_compare, tmp_path, size):
    """A live study: trials best first, best-so-far curve, objective by learning rate."""
    from test_study_screen import read_study, study_app, write_study

    study_dir = write_study(tmp_path / "study", live=True)
    assert snap_compare(study_app(study_dir), terminal_size=size, run_before=read_study)


@pilot_test
async def test_a_ten_class_confusion_matrix_shows_every_count_whole_at_80x24():
    """Scrolled through, the results dialog at 80×24 shows all 100 counts of a 10-class matrix, none cut."""
    from textual.containers import VerticalScroll

    app = recorded_app(watch=FIXTURES / "finished.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await results_shown(pilot)
        box = app.screen.query_one("#results-box", VerticalScroll)
        seen: list[str] = []
        while True:
            seen += widget_text(app, box)
            if box.scroll_y >= box.max_scroll_y:
                break
            box.scroll_to(y=box.scroll_y + 1, animate=False)
            await pilot.pause()
        rows = {}
        for line in seen:
            cells = line.split()
            if len(cells) == 12 and cells[0].isdigit() and cells[-1].endswith("%"):
                rows[int(cells[0])] = cells[1:11]
        assert sorted(rows) == list(range(10)), screen_text(app)
        for c in range(10):
            assert rows[c] == [str(n) if n else "·" for n in EVALUATION["confusion"][c]]
        assert not any("…" in line for line in seen if line.split() and line.split()[0].isdigit())


@pytest.mark.parametrize("names", [[str(c) for c in range(10)], CIFAR], ids=["digits", "cifar10"])
@pytest.mark.parametrize("width", [48, 60])
def test_a_ten_class_confusion_matrix_narrower_than_its_padded_table_keeps_every_count(names, width):
    """Where the padded table does not fit, a tighter or numbered one (with a legend) shows every count whole."""
    from rich.console import Console

    from tfbench.evaluation import ConfusionMatrix

    console = Console(width=width, record=True, color_system=None)
    console.print(ConfusionMatrix({**EVALUATION, "class_names": names}))
    lines = console.export_text().splitlines()
    rows = [line.split() for line in lines if line.split() and line.split()[-1].endswith("%")]
    assert [row[1:11] for row in rows] == [[str(n) if n else "·" for n in row] for row in EVALUATION["confusion"]]
    assert not any("…" in line for line in lines), "\n".join(lines)
    assert all(name in " ".join(lines) for name in names)
