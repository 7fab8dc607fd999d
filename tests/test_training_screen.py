"""The train screen and its widgets, on recorded and growing event logs (no TensorFlow)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from app_pilot import pilot_test, screen_text
from textual.app import App

from tfbench.engine.events import RunState, read_events
from tfbench.event_tail import EventTail
from tfbench.figures import format_clock as clock
from tfbench.screens.run_dialogs import EditRunDialog
from tfbench.screens.training import TrainingScreen
from tfbench.widgets.curves import Chart, Curves, Series, downsample, run_charts, smooth
from tfbench.widgets.gpu import system_text
from tfbench.widgets.progress_panel import progress_text

FIXTURES = Path(__file__).parent / "fixtures"


class Host(App):
    """A bare App around one train screen."""

    def __init__(self, screen: TrainingScreen):
        super().__init__()
        self.train_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.train_screen)


async def caught_up(pilot, screen: TrainingScreen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not screen.caught_up:
        assert time.monotonic() < deadline, "the screen never read the whole log"
        await pilot.pause(0.02)


# -- pure parts -----------------------------------------------------------------------------------


def test_downsample_keeps_the_shape_and_the_last_point():
    x = [float(i) for i in range(10_000)]
    y = [math.sin(i / 500) for i in range(10_000)]
    xs, ys = downsample(x, y, 120)
    assert len(xs) == len(ys) == 120
    assert xs[-1] == 9999.0 and ys[-1] == y[-1]
    assert xs == sorted(xs)
    assert max(ys) > 0.95 and min(ys) < -0.95


def test_downsample_drops_nan_and_leaves_short_series_alone():
    xs, ys = downsample([1, 2, 3], [0.5, math.nan, 0.25], 100)
    assert (xs, ys) == ([1, 3], [0.5, 0.25])


def test_smoothing_is_an_ema_that_passes_nan_through():
    out = smooth([1.0, 0.0, math.nan, 0.0], weight=0.5)
    assert out[:2] == [1.0, 0.5] and math.isnan(out[2]) and out[3] == 0.25


def test_charts_of_a_run_cover_loss_metrics_and_learning_rate():
    state = RunState.from_log(FIXTURES / "mid_run_gpu.jsonl")
    charts = run_charts(state)
    assert [c.title for c in charts] == ["loss", "accuracy", "learning rate"]
    assert [s.label for s in charts[0].series] == ["batch", "loss", "val_loss"]
    assert [s.label for s in charts[1].series] == ["accuracy", "val_accuracy"]
    assert charts[2].series[0].y[-1] == pytest.approx(0.0005)  # the mid-run LR change


def test_system_text_shows_gpus_or_cpu_and_ram():
    gpu = system_text(RunState.from_log(FIXTURES / "mid_run_gpu.jsonl").system).plain
    assert "A100" in gpu and "util" in gpu and "63°C" in gpu and "212 W" in gpu and "peak 10.9G" in gpu
    cpu = system_text(RunState.from_log(FIXTURES / "mid_run_cpu.jsonl").system).plain
    assert "no GPU" in cpu and "CPU" in cpu and "RAM" in cpu and "GPU 0" not in cpu
    assert "no system sample" in system_text({}).plain


def test_progress_text_says_why_a_run_failed_and_when_it_is_paused():
    failed = RunState.from_log(FIXTURES / "failed_nan.jsonl")
    text = progress_text(failed, None).plain
    assert "FAILED" in text and "loss is NaN at epoch 4" in text and "ETA —" in text
    paused = progress_text(RunState.from_log(FIXTURES / "paused.jsonl"), None).plain
    assert "PAUSED" in paused and "press p to resume" in paused
    done = progress_text(RunState.from_log(FIXTURES / "finished.jsonl"), None).plain
    assert "COMPLETED" in done and "best val_loss" in done and "at epoch 8" in done


def test_progress_clock_uses_the_given_now():
    state = RunState.from_log(FIXTURES / "mid_run_gpu.jsonl")
    assert f"elapsed {clock(state.elapsed())}" in progress_text(state, None).plain
    assert "elapsed 1:05:00" in progress_text(state, state.started + 3900).plain


def test_event_tail_returns_only_complete_new_lines(tmp_path):
    log = tmp_path / "events.jsonl"
    tail = EventTail(tmp_path)
    assert tail.read() == []  # no log yet
    lines = (FIXTURES / "finished.jsonl").read_text().splitlines(keepends=True)
    with open(log, "w") as handle:
        handle.write(lines[0] + lines[1][:10])
        handle.flush()
        assert [e["event"] for e in tail.read()] == ["run_started"]
        handle.write(lines[1][10:])
        handle.flush()
        assert [e["event"] for e in tail.read()] == ["preflight"]
        assert tail.read() == []
    tail.close()


def test_batch_events_fold_into_bounded_series():
    """100,000 batch events leave at most MAX_BATCH_POINTS points, spread over the whole run."""
    from tfbench.engine.events import MAX_BATCH_POINTS, make_event

    state = RunState()
    state.apply(make_event("run_started", experiment={"name": "x"}, steps_per_epoch=1000, epochs=100))
    for i in range(100_000):
        epoch, step = divmod(i, 1000)
        state.apply(
            {
                "event": "batch",
                "time": 1.0 + i,
                "epoch": epoch + 1,
                "step": step + 1,
                "steps": 1000,
                "logs": {"loss": 1.0 / (i + 1)},
            }
        )
    assert 0 < len(state.batch_loss) <= MAX_BATCH_POINTS
    assert len(state.batch_x) == len(state.batch_loss)
    assert state.batch_x[0] < 1.0 and state.batch_x[-1] > 99.0
    assert len(state.log) <= 200


def test_screens_and_widgets_do_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tfbench.screens.training, tfbench.screens.runs, tfbench.widgets.curves, "
        "tfbench.widgets.gpu; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the screen -----------------------------------------------------------------------------------


@pilot_test
async def test_replays_a_finished_log_into_the_same_state_as_folding_it():
    screen = TrainingScreen(FIXTURES / "finished.jsonl", bell=False)
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        await caught_up(pilot, screen)
        expected = RunState.from_log(FIXTURES / "finished.jsonl")
        assert screen.state.status == "completed"
        assert screen.state.history == expected.history
        assert screen.state.events_seen == len(read_events(FIXTURES / "finished.jsonl"))
        assert screen.runner_is_alive is False  # a replay: the clock is the log's own


@pytest.mark.slow
@pilot_test
async def test_follows_a_growing_log_and_redraws_curves_at_most_twice_a_second(tmp_path):
    lines = (FIXTURES / "finished.jsonl").read_text().splitlines(keepends=True)
    log = tmp_path / "events.jsonl"
    log.write_text("".join(lines[:5]))
    screen = TrainingScreen(tmp_path, bell=False, poll=0.02)
    stop = threading.Event()

    def append() -> None:  # ~50 events a second, like a fast model's batches and more
        with open(log, "a") as handle:
            for line in lines[5:]:
                if stop.wait(0.02):
                    return
                handle.write(line)
                handle.flush()

    async with Host(screen).run_test(size=(100, 32)) as pilot:
        curves = screen.query_one(Curves)
        await caught_up(pilot, screen)
        writer = threading.Thread(target=append)
        start = time.monotonic()
        builds = curves.builds
        writer.start()
        try:
            while not screen.state.ended:
                assert time.monotonic() - start < 30, "the screen never saw the run end"
                await pilot.pause(0.05)
        finally:
            stop.set()
            writer.join()
        seconds = time.monotonic() - start
        assert screen.state.status == "completed"
        assert screen.state.events_seen == len(lines)
        assert curves.builds - builds <= seconds * 2 + 2
        assert screen.caught_up


@pilot_test
async def test_toggles_change_the_curves_and_say_so():
    screen = TrainingScreen(FIXTURES / "finished.jsonl", bell=True)
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        await caught_up(pilot, screen)
        curves = screen.query_one(Curves)
        curves.redraw()
        await pilot.pause()
        before = curves.render().plain
        await pilot.press("a")
        await pilot.pause()
        assert curves.ascii_mode and "*" in curves.render().plain
        assert not any(0x2800 <= ord(ch) <= 0x28FF for ch in curves.render().plain)  # no braille
        await pilot.press("g", "o", "b")
        await pilot.pause()
        assert curves.log_scale and curves.smoothing and not screen.bell
        assert "(log)" in curves.render().plain and curves.render().plain != before
        info = str(screen.query_one("#run-info").render())
        assert "log:on" in info and "bell:off" in info


@pilot_test
async def test_controls_on_an_ended_run_say_there_is_nothing_to_control():
    screen = TrainingScreen(FIXTURES / "finished.jsonl", bell=False)
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        await caught_up(pilot, screen)
        await pilot.press("p", "l", "x")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TrainingScreen)  # no dialog for an ended run
        assert any("no run is going" in str(n.message) for n in pilot.app._notifications)


@pilot_test
async def test_failed_run_rings_no_bell_on_replay_but_a_live_one_would():
    screen = TrainingScreen(FIXTURES / "failed_nan.jsonl", bell=True)
    rings = []
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        pilot.app.bell = lambda: rings.append(1)
        await caught_up(pilot, screen)
        assert screen.state.status == "failed" and screen.diverged
        assert rings == []  # replaying an old failure is not news


@pilot_test
async def test_live_failure_rings_the_bell(tmp_path):
    lines = (FIXTURES / "failed_nan.jsonl").read_text().splitlines(keepends=True)
    log = tmp_path / "events.jsonl"
    log.write_text("".join(lines[:10]))
    screen = TrainingScreen(tmp_path, bell=True, poll=0.02)
    rings = []
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        pilot.app.bell = lambda: rings.append(1)
        await caught_up(pilot, screen)
        with open(log, "a") as handle:
            handle.write("".join(lines[10:]))
        for _ in range(200):
            if screen.state.ended:
                break
            await pilot.pause(0.02)
        assert screen.state.status == "failed"
        assert len(rings) == 2  # the NaN batch, then the run's end


@pilot_test
async def test_edit_dialog_returns_only_what_changed():
    results = []

    class DialogHost(App):
        def on_mount(self):
            self.push_screen(EditRunDialog(0.001, 12), results.append)

    async with DialogHost().run_test(size=(80, 24)) as pilot:
        dialog = pilot.app.screen
        dialog.query_one("#lr").value = "bad"
        await pilot.click("#apply")
        await pilot.pause()
        assert "positive number" in str(dialog.query_one("#error").render())
        dialog.query_one("#lr").value = "0.001"
        dialog.query_one("#epochs").value = "20"
        dialog.query_one("#epochs").focus()
        await pilot.press("enter")
        await pilot.pause()
    assert results == [{"epochs": 20}]


def test_empty_charts_show_the_placeholder():
    curves = Curves(placeholder="nothing yet")
    curves.set_charts([Chart("loss", [Series("loss", [], [])])])
    assert curves.dirty


@pilot_test
async def test_a_picture_built_in_a_worker_is_the_one_built_in_place():
    screen = TrainingScreen(FIXTURES / "finished.jsonl", bell=False)
    async with Host(screen).run_test(size=(100, 32)) as pilot:
        await caught_up(pilot, screen)
        curves = screen.query_one(Curves)
        curves.set_charts(run_charts(screen.state))
        curves.redraw()
        in_place = curves.render().plain
        curves.set_charts(run_charts(screen.state))
        builds = curves.builds
        curves.redraw_soon()
        curves.redraw_soon()  # one build at a time: the second call is a no-op
        for _ in range(200):  # the follow worker never completes, so wait on the build itself
            if curves.builds > builds:
                break
            await pilot.pause(0.02)
        await pilot.pause()
        assert curves.builds == builds + 1 and not curves.dirty
        assert curves.render().plain == in_place
        assert "val_loss" in in_place


@pilot_test
async def test_before_any_run_the_train_screen_says_there_is_none_and_how_to_start(runs_dir: Path):
    """Nothing is waiting before a run: the screen says there is no run yet and names Ctrl+R."""
    from tfbench.app import make_app
    from tfbench.engine_calls import FixedEngineCalls

    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        text = screen_text(app)
        assert "NO RUN" in text and "ctrl+r" in text
        assert "waiting" not in text.lower()
