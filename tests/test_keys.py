"""The one key map: `?` help on every screen, `q` quits asking, Esc closes panels, keys that stop a
run or leave the workbench ask first, and a letter never means "delete" in one place and "quit" in another."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle, widget_text
from rich.console import Console

from tfbench.app import make_app, make_study_app
from tfbench.engine_calls import FixedEngineCalls
from tfbench.keymap import APP, KEYMAP, SCREENS
from tfbench.screens.dialogs import Confirm
from tfbench.screens.keys_help import KeysHelp
from tfbench.screens.training import TrainingScreen

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from write_study import NOW, write_study  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (80, 24)


def spiral_app(runs_dir: Path, watch: Path | None = None):
    return make_app("spiral-mlp", runs_dir=runs_dir, watch=watch, engine_calls=FixedEngineCalls())


async def help_text(app, pilot) -> str:
    """Press `?`, read the help screen's keys, close it with Esc."""
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(app.screen, KeysHelp), f"? opened {type(app.screen).__name__}"
    table = app.screen.query_one("#keys-table")
    console = Console(width=table.content_region.width or 70, file=io.StringIO())
    console.print(table.content)
    text = console.file.getvalue()
    assert widget_text(app, table)[0].strip(), "the help's first line is on screen"
    await pilot.press("escape")
    await pilot.pause()
    assert not isinstance(app.screen, KeysHelp), "Esc closes the help"
    return text


@pytest.mark.slow
@pilot_test
async def test_question_mark_lists_every_key_of_each_screen(runs_dir: Path):
    """On each screen `?` lists its own keys (footer-hidden ones too), the keys that work everywhere and
    the screens' function keys."""
    app = spiral_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for entry in SCREENS:
            await pilot.press(entry.key)
            await settle(app, pilot)
            text = await help_text(app, pilot)
            scopes = [entry.name] + (["data-columns"] if entry.name == "data" and "Label column" in text else [])
            for scope in [*scopes, APP]:
                for key in KEYMAP[scope]:
                    if key.key:
                        assert key.description in text, f"{entry.name}: {key.description!r} missing from ?"
            assert "Runs screen" in text and "Model screen" in text


@pytest.mark.slow
@pilot_test
async def test_question_mark_on_the_study_screen_and_over_a_dialog(tmp_path: Path):
    """The Study screen's keys are in its help; over a dialog `?` lists the dialog's keys."""
    app = make_study_app(write_study(tmp_path / "study"), now=NOW, engine_calls=FixedEngineCalls())
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if type(app.screen).__name__ == "StudyScreen":
                break
        text = await help_text(app, pilot)
        for key in KEYMAP["study"]:
            assert key.description in text
        assert "Stop study  (asks first)" in text
        await pilot.press("s")  # stopping a study asks
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        text = await help_text(app, pilot)
        assert "Yes" in text and "No" in text
        assert isinstance(app.screen, Confirm)  # Esc closed the help, not the question


@pytest.mark.slow
@pilot_test
async def test_q_quits_but_asks_about_unsaved_edits_and_does_nothing_inside_a_dialog(runs_dir: Path):
    app = spiral_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running  # nothing edited, nothing running: quits at once
    app = spiral_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")  # deletes a layer: an unsaved edit (Ctrl+Z brings it back)
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, Confirm)
        await pilot.press("q")  # q inside the question neither quits nor answers
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, Confirm)
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


@pytest.mark.slow
@pilot_test
async def test_escape_closes_the_keys_panel_even_where_the_screen_binds_escape(runs_dir: Path):
    app = spiral_app(runs_dir, watch=FIXTURES / "finished.jsonl")
    async with app.run_test(size=SIZE) as pilot:  # the follower never ends: no waiting for workers
        for key in ("f4", "f1"):  # the Train screen binds Esc itself
            await pilot.press(key)
            await pilot.pause(0.2)
            app.action_show_help_panel()
            await pilot.pause()
            assert app.screen.query("HelpPanel")
            await pilot.press("escape")
            await pilot.pause()
            assert not app.screen.query("HelpPanel"), f"Esc left the keys panel open on {key}"


@pilot_test
async def test_keys_that_stop_a_run_or_leave_ask_and_no_answers_change_nothing(runs_dir: Path):
    """On a running run (a log with no end, followed): x, e and Ctrl+D each open a question; n leaves
    the run as it was and the workbench open."""
    app = spiral_app(runs_dir, watch=FIXTURES / "mid_run_cpu.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.get_screen("train")
        for _ in range(100):
            await pilot.pause(0.05)
            if screen.caught_up:
                break
        screen.state.status = "running"  # the recorded runner is gone: pretend it still trains
        for key in ("x", "e", "ctrl+d"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, Confirm), f"{key} did not ask"
            await pilot.press("n")
            await pilot.pause()
            assert app.is_running and isinstance(app.screen, TrainingScreen)
            assert not screen.export_after_end and not screen.detached
            assert not any(w.group == "control" for w in app.workers), f"{key} sent a command without a yes"


def test_every_key_that_stops_or_leaves_is_marked_as_asking():
    """The help says "(asks first)" for exactly the keys whose actions ask."""
    asking = {"stop", "export", "detach", "stop_study", "quit", "quit_key"}
    for scope, keys in KEYMAP.items():
        for key in keys:
            if key.action in asking:
                assert key.asks, f"{scope}: {key.key} ({key.action}) asks but is not marked"


def test_a_letter_never_deletes_in_one_place_and_leaves_in_another():
    deleting = {"delete_layer", "remove_callback", "drop"}
    leaving = {"detach", "quit", "quit_key"}
    actions: dict[str, set[str]] = {}
    for keys in KEYMAP.values():
        for key in keys:
            for name in filter(None, key.key.split(",")):
                actions.setdefault(name.lower(), set()).add(key.action)
    for name, found in actions.items():
        assert not (found & deleting and found & leaving), f"{name}: {sorted(found)}"


@pilot_test
async def test_palette_offers_help_and_resume(runs_dir: Path):
    app = spiral_app(runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {"Keys of this screen", "Resume run", *(entry.palette for entry in SCREENS)} <= titles


@pilot_test
async def test_every_footer_fits_its_width_and_says_where_the_other_keys_are(runs_dir: Path):
    """At 80 columns each screen's footer shows whole keys, in the key map's order, then `? More keys`
    (clicked, it opens the help); at 200 columns every key fits and nothing is hidden."""
    from tfbench.widgets.footer import KeyFooter, MoreKeys, key_width

    for width in (80, 200):
        app = spiral_app(runs_dir)
        async with app.run_test(size=(width, 24)) as pilot:
            await settle(app, pilot)
            for entry in SCREENS:
                await pilot.press(entry.key)
                await settle(app, pilot)
                footer = app.screen.query_one(KeyFooter)
                keys = footer.keys()
                shown = [k for k in keys if k.display]
                (more,) = footer.query(MoreKeys)
                assert shown == keys[: len(shown)], "keys are hidden from the end"
                used = sum(key_width(k) for k in shown) + (key_width(more) if more.display else 0)
                assert used + 12 <= width, f"{entry.name}: {used} columns of keys at {width}"
                assert more.display == (len(shown) < len(keys)), entry.name
                assert more.display == (width == 80), f"{entry.name} at {width}: {len(shown)} of {len(keys)} keys"
            if width == 80:
                await pilot.click(MoreKeys)
                await pilot.pause()
                assert isinstance(app.screen, KeysHelp)
