"""The train screen: a live, calm and cheap view of one run, and its controls.

The screen never trains. `start(experiment)` launches a runner process through the engine's
control module; then one small thread worker tails the run's `events.jsonl` and posts what it read
(at most ~10 messages a second, each waiting for the previous one to be folded, so a huge log
cannot flood the event loop or memory). The screen folds events into a `RunState` on the UI
thread and every panel draws itself from it (`show(state)`, nvitop's way); the headline updates
with every message, the plotext curves at most once a second.
Pause, resume, stop and live edits go back through `tfbench.engine.control.send` in workers.
No TensorFlow here: exports and evaluation run in workers that import what they need.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher
from textual.worker import Worker, WorkerState

from tfbench.engine.events import BATCH, PROFILE, RunState
from tfbench.keymap import bindings
from tfbench.messages import ActionFailed, EvaluationReady, EventsRead, RunnerStarted
from tfbench.screens.dialogs import Confirm
from tfbench.screens.frame import frame_top
from tfbench.screens.run_dialogs import EditRunDialog, ExportDialog, ResultsDialog
from tfbench.tracking.tensorboard_tail import open_tail
from tfbench.widgets.curves import Curves
from tfbench.widgets.event_log import EventLogPane
from tfbench.widgets.footer import KeyFooter
from tfbench.widgets.gpu import SystemPanel
from tfbench.widgets.profile_panel import DevicePlanePanel, ProfilePanel
from tfbench.widgets.progress_panel import ProgressPanel
from tfbench.widgets.run_info import RunInfo, current_learning_rate

CURVE_INTERVAL = 1.0  # seconds between curve rebuilds at most: a plotext build costs 20-50 ms on
# 2 cores, and at 2 Hz the view took ~10% of a core from the runner (benchmarks/ui_lag.py)
POLL_INTERVAL = 0.1  # seconds between looks at the log (≤ 10 messages a second)
CLOCK_INTERVAL = 1.0  # seconds between updates of the elapsed time while nothing else happens
NO_CURVES = "the curves of a run show here"
WAITING = "waiting for the first results…"
RESUMABLE = ("stopped", "interrupted", "failed")  # statuses `r` continues (`tfbench resume`)
PANELS = (
    "#progress, #curves, #profile, #system, #device-plane, #run-info, #events"  # what the timers and messages draw on
)
PROFILE_STEPS = 10  # steps the Profile key captures
PROFILE_TIMEOUT = 600.0  # seconds the capture may take (a paused run captures once it goes on)


_START_UP = {"frozen": False}


def freeze_start_up_objects() -> None:
    """Move what start-up allocated (Textual, rich, the catalog) out of the collector's sight, once.

    It removes the ~150 ms full collections seen while training. Once per process: a frozen object
    is never collected, so freezing again with every train screen opened from the Runs screen kept
    each earlier one's garbage for good (~2.4 MB an opening).
    """
    if not _START_UP["frozen"]:
        gc.collect()
        gc.freeze()
        _START_UP["frozen"] = True


# -- the screen -----------------------------------------------------------------------------------


class TrainingScreen(Screen):
    """Live view of one run: progress, curves, system, events; start, pause, stop, edit, export.

    Args:
        run_dir: a run to follow from the start (`tfbench watch`); None waits for `start()`.
        clock: returns "now" for elapsed time; return None to measure against the log's last
            event instead. By default: the wall clock while the run's runner process is alive,
            else the log's last event (a replayed log looks the same whenever it is drawn).
        poll: seconds between looks at the log (default `POLL_INTERVAL`).
        bell: ring the terminal bell when a run ends or diverges; None: the App's
            `bell_enabled` attribute (`tfbench watch --no-bell` clears it), else on.
    """

    CSS_PATH = "training.tcss"

    KEYS = "train"
    BINDINGS = bindings(KEYS)

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        clock: Callable[[], float | None] | None = None,
        poll: float | None = None,
        bell: bool | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.clock = clock
        self.runner_is_alive = False
        self.poll = poll if poll is not None else POLL_INTERVAL
        self.bell = bell
        self.experiment = None
        self.state = RunState()
        self.evaluation: dict[str, Any] | None = None
        self.caught_up = False  # the follower has read everything that was in the log
        self.owns_runner = False  # this screen started the runner (so it stops it on exit)
        self.detached = False
        self.export_after_end = False
        self.diverged = False
        self.auto_evaluate = True  # evaluate a classifier when its run ends while watched
        self._generation = 0
        self._stop_follow = threading.Event()
        self._consumed = threading.Event()
        self._starting = False
        self._pending_start = None
        self._repeating: list[Timer] = []
        self._gone_seen = False  # the last look found the runner gone while the log says it runs

    @classmethod
    def for_app(cls, app: Any) -> TrainingScreen:
        """The workbench's Train screen, following the run the App was opened on (`tfbench watch`)."""
        return cls(run_dir=app.watch_dir)

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield from frame_top("train")
        yield ProgressPanel(now=self._now, id="progress")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="curves", id="views"):
                yield Curves(NO_CURVES if self.run_dir is None else WAITING, id="curves")
                yield ProfilePanel(id="profile")
            with Vertical(id="side"):
                yield SystemPanel(id="system")
                yield DevicePlanePanel(id="device-plane")
                yield RunInfo(id="run-info")
        yield EventLogPane(id="events")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.bell is None:
            self.bell = bool(getattr(self.app, "bell_enabled", True))
        self._refresh_text()
        self._repeating = [
            self.set_interval(CURVE_INTERVAL, self._redraw_curves, name="curves"),
            self.set_interval(CLOCK_INTERVAL, self._tick, name="clock"),
        ]
        if self._pending_start is not None:
            experiment, self._pending_start = self._pending_start, None
            self.start(experiment)
        elif self.run_dir is not None:
            self.follow_run(self.run_dir)
        self.call_after_refresh(self._freeze_gc)

    def _freeze_gc(self) -> None:
        freeze_start_up_objects()

    def on_screen_suspend(self) -> None:
        for timer in self._repeating:  # nothing to redraw while another screen is shown
            timer.pause()

    def on_screen_resume(self) -> None:
        for timer in self._repeating:
            timer.resume()
        self._redraw_curves()
        self._tick()

    def whole(self) -> bool:
        """Whether every panel is there to draw on: False while the screen is being taken down,
        when a timer or a message can still arrive after some of its widgets have gone (and a
        NoMatches raised there would end the App)."""
        return self.is_attached and len(self.query(PANELS)) == PANELS.count(",") + 1

    def on_unmount(self) -> None:
        for timer in self._repeating:
            timer.stop()
        self._stop_follow.set()
        self._consumed.set()
        if self.owns_runner and not self.detached and self.state.running and self.run_dir is not None:
            try:
                from tfbench.engine import control

                control.send(self.run_dir, "stop", timeout=2.0)
            except Exception:
                pass  # the runner is gone already or cannot answer; nothing left to stop

    # -- following a log -------------------------------------------------------------------------

    def follow_run(self, run_dir: Path) -> None:
        """Show the run in `run_dir` from its first event and keep following it."""
        self._stop_follow.set()
        self._consumed.set()
        self._generation += 1
        self._stop_follow = threading.Event()
        self._consumed = threading.Event()
        self.run_dir = Path(run_dir)
        self.state = RunState()
        self.evaluation = None
        self.caught_up = False
        self.diverged = False
        self._gone_seen = False
        self.owns_runner = False  # a run chosen to watch is not ours to stop on exit
        self._refresh_text()
        self.run_worker(
            partial(self._follow, self.run_dir, self._stop_follow, self._consumed, self._generation),
            thread=True,
            exclusive=True,
            exit_on_error=False,
            group="follow",
            name="follow events",
        )

    def _follow(self, run_dir: Path, stop: threading.Event, consumed: threading.Event, generation: int) -> None:
        """Worker: post what the log gained, one message at a time, until told to stop."""
        with open_tail(run_dir, chunk_bytes=1 << 18) as tail:  # a run's log, or a TensorBoard log folder
            caught_up = False
            while not stop.is_set():
                events = tail.read()
                if events:
                    more = len(events) > 0 and not caught_up
                    consumed.clear()
                    self.post_message(EventsRead(events, caught_up, generation))
                    while not consumed.wait(0.2):  # back-pressure: one message in flight
                        if stop.is_set():
                            return
                    if more:
                        continue  # replaying what was already there: read on at once
                else:
                    if not caught_up:
                        caught_up = True
                        self.post_message(EventsRead([], True, generation))
                stop.wait(self.poll)

    def on_events_read(self, message: EventsRead) -> None:
        if message.generation != self._generation:
            return
        was_ended, outputs = self.state.ended, self.state.outputs
        try:
            for event in message.events:
                self.state.apply(event)
                if event.get("event") == BATCH and not self.diverged:
                    loss = (event.get("logs") or {}).get("loss")
                    if loss in ("nan", "inf", "-inf") or (isinstance(loss, float) and not math.isfinite(loss)):
                        self.diverged = True
                        if message.caught_up:
                            self._ring()
        finally:
            self._consumed.set()
        if any(event.get("event") == PROFILE for event in message.events):
            self._profile_arrived(live=message.caught_up)
        if message.caught_up and not self.caught_up:
            self.caught_up = True
            self._check_runner()
        if message.events:
            self._refresh_text()
        if self.state.outputs != outputs:  # a model with several outputs: the output picker's key
            self.refresh_bindings()
        if not was_ended and self.state.ended:
            self._run_ended(live=message.caught_up)

    def _run_ended(self, live: bool) -> None:
        if live:
            self._ring()
            self.notify(
                f"run {self.state.status.replace('_', ' ')}" + (f": {self.state.reason}" if self.state.reason else ""),
                severity="error" if self.state.status == "failed" else "information",
            )
            if self.auto_evaluate and self._classifier() and self.state.status != "failed":
                self._evaluate()
        if self.export_after_end:
            self.export_after_end = False
            self.action_export()

    def _ring(self) -> None:
        if self.bell:
            self.app.bell()

    def _classifier(self) -> bool:
        data = self.state.data or {}
        kinds = [o.get("label_kind") for o in (data.get("outputs") or {}).values()] or [data.get("label_kind")]
        return any(kind in ("categorical", "binary") for kind in kinds)  # several outputs: any classifier

    # -- drawing -------------------------------------------------------------------------------

    def _now(self) -> float | None:
        if self.clock is not None:
            return self.clock()
        return time.time() if self.runner_is_alive else None

    def _check_runner(self) -> None:
        if self.run_dir is None or not self.state.running:
            self.runner_is_alive = False
            return
        from tfbench.engine.control import runner_alive, runner_gone

        self.runner_is_alive = runner_alive(self.run_dir)
        if not self.caught_up or self.runner_is_alive or not runner_gone(self.run_dir, self.state.pid):
            self._gone_seen = False
            return
        if not self._gone_seen:  # once more first: the runner's last lines may still be on their way
            self._gone_seen = True
            return
        self.state.status = "interrupted"
        self.state.reason = f"its runner is gone and the log has no end: `tfbench resume {self.run_dir}` continues it"
        self._refresh_text()

    def _refresh_text(self) -> None:
        if not self.whole():
            return
        self.query_one(ProgressPanel).following = self.run_dir is not None
        self.query_one(Curves).set_placeholder(WAITING if self.run_dir is not None else NO_CURVES)
        curves = self.query_one(Curves)
        self.query_one(RunInfo).flags = [
            ("log", curves.log_scale),
            ("smooth", curves.smoothing),
            ("ascii", curves.ascii_mode),
            ("bell", bool(self.bell)),
        ]
        for panel in self.query(PANELS):  # every panel draws itself from the one RunState
            panel.show(self.state)  # type: ignore[attr-defined]  # each panel has show(); they share no type yet

    def _redraw_curves(self) -> None:
        if self.whole():
            self.query_one(Curves).redraw_soon()

    def _tick(self) -> None:
        self._check_runner()
        if self.state.running and self.whole():
            self.query_one(ProgressPanel).show(self.state)

    # -- starting and controlling ----------------------------------------------------------------

    def start(self, experiment) -> None:
        """Start a runner process for `experiment` and follow its log.

        Args:
            experiment: the `Experiment` to run; the runs directory is the App's `runs_dir`.
        """
        if not self.is_mounted:  # the App switches here and starts at once: start when shown
            self._pending_start = experiment
            return
        if self.state.running and self.run_dir is not None:
            self.notify("a run is going already: stop it first", severity="warning")
            return
        if self._starting:
            return
        self.experiment = experiment
        self._starting = True
        self.query_one(ProgressPanel).update(Text(" starting the runner…", style="dim"))
        runs_dir = Path(getattr(self.app, "runs_dir", None) or "runs")
        self._start_runner(experiment, runs_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="start")
    def _start_runner(self, experiment, runs_dir: Path) -> None:
        from tfbench.engine.control import start_runner

        try:
            run_dir = start_runner(experiment, runs_dir, extra_args=code_arguments(experiment, self.app))
        except Exception as exc:  # UserError for a bad set-up; anything else still must not crash the UI
            self.post_message(ActionFailed(f"could not start: {exc}"))
            return
        self.post_message(RunnerStarted(Path(run_dir)))

    def on_runner_started(self, message: RunnerStarted) -> None:
        self._starting = False
        self.detached = False
        self.follow_run(message.run_dir)
        self.owns_runner = True

    def on_action_failed(self, message: ActionFailed) -> None:
        self._starting = False
        if message.text.startswith("profile:") and self.whole():
            self.query_one(ProfilePanel).capturing = 0
        self.notify(message.text, severity="error", timeout=8)
        self._refresh_text()

    def _send(self, command: str, **args: Any) -> None:
        if self.run_dir is None or not self.state.running:
            self.notify("no run is going", severity="warning")
            return
        self.run_worker(
            partial(self._send_worker, self.run_dir, command, args),
            thread=True,
            exit_on_error=False,
            group="control",
            name=f"control {command}",
        )

    def _send_worker(self, run_dir: Path, command: str, args: dict[str, Any]) -> None:
        """Worker: one command, or for `set` one command per setting (the channel's rule)."""
        calls = [(command, {name: value}) for name, value in args.items()] if command == "set" else [(command, args)]
        timeout = PROFILE_TIMEOUT if command == "profile" else 10.0  # a capture answers once judged
        for name, call_args in calls:
            try:
                from tfbench.engine import control

                reply = control.send(run_dir, name, timeout=timeout, **call_args)
            except Exception as exc:  # a stale channel (UserError) or a runner that went away
                self.post_message(ActionFailed(f"{name}: {exc}"))
                return
            if isinstance(reply, dict) and reply.get("ok") is False:
                self.post_message(ActionFailed(f"{name}: {reply.get('error') or reply}"))
                return

    def action_start(self) -> None:
        if self.experiment is None:
            self.notify("nothing to start: set up an Experiment first", severity="warning")
            return
        self.start(self.experiment)

    def action_pause(self) -> None:
        self._send("resume" if self.state.status == "paused" else "pause")

    def action_stop(self) -> None:
        """Stop the run after its current batch (it saves first), once the user says so."""
        self._ask_then("Stop", "r resumes it later from its last save", lambda: self._send("stop"))

    def _ask_then(self, verb: str, after: str, then: Callable[[], None]) -> None:
        """Ask before `verb` is done to the running run; `then` runs on yes."""
        if self.run_dir is None or not self.state.running:
            self.notify("no run is going", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                then()

        question = f"{verb} {self.run_dir.name}? It saves first; {after}."
        self.app.push_screen(Confirm(question, yes=verb, no="Keep training"), answered)

    def _stop_and_export(self) -> None:
        self.export_after_end = True
        self._send("stop")
        self.notify("stopping; the export dialog opens when the run has ended")

    def action_export(self) -> None:
        """Stop and export a running run (asking first); open the export dialog for an ended one."""
        if self.state.running:
            self._ask_then("Stop", "the export dialog opens when it has ended", self._stop_and_export)
            return
        if self.run_dir is None or not self.state.ended:
            self.notify("no run to export", severity="warning")
            return
        if self.state.status == "failed":
            self.notify("the run failed: nothing worth exporting", severity="warning")
            return
        export = self.state.experiment.get("export") or {}
        self.app.push_screen(
            ExportDialog(self.run_dir, export.get("formats"), export.get("tflite_quantization", "none"))
        )

    def action_detach(self) -> None:
        """Leave the run going and quit, once the user says so (unsaved edits are named in the question)."""
        if self.run_dir is None or not self.state.running:
            self.notify("no run is going: q quits", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.exit(message=self.leave_running())

        unsaved = " Unsaved edits of the Experiment are lost." if getattr(self.app, "dirty", False) else ""
        question = f"Leave {self.run_dir.name} training and quit? `tfbench watch` follows it.{unsaved}"
        self.app.push_screen(Confirm(question, yes="Leave running, quit", no="Stay"), answered)

    def action_resume(self) -> None:
        """Continue this screen's run (stopped, interrupted or failed) in its own directory and follow it."""
        if self.run_dir is None or self.state.status not in RESUMABLE:
            what = self.state.status.replace("_", " ") if self.run_dir is not None else "no run"
            self.notify(f"{what}: only a stopped, interrupted or failed run resumes", severity="warning")
            return
        if self._starting:
            return
        self._starting = True
        self.notify(f"resuming {self.run_dir.name}…")
        self._resume_runner(self.run_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="start")
    def _resume_runner(self, run_dir: Path) -> None:
        from tfbench.engine.control import resume_runner
        from tfbench.rundir import EXPERIMENT_FILE
        from tfbench.spec import load_experiment

        try:
            extra = code_arguments(load_experiment(run_dir / EXPERIMENT_FILE), self.app)
            resume_runner(run_dir, extra_args=extra)
        except Exception as exc:  # UserError says why; anything else still must not crash the UI
            self.post_message(ActionFailed(f"could not resume: {exc}"))
            return
        self.post_message(RunnerStarted(run_dir))

    def live_run(self) -> Path | None:
        """The run this screen started, while it trains (paused counts): quitting must ask about it."""
        if self.owns_runner and not self.detached and self.state.running and self.run_dir is not None:
            return self.run_dir
        return None

    def leave_running(self) -> str:
        """Let the run go on after the App quits; returns the line that says how to follow it."""
        self.detached = True
        return f"detached; the run goes on: tfbench watch {self.run_dir}"

    def action_edit(self) -> None:
        if not self.state.running:
            self.notify("no run is going", severity="warning")
            return
        self.app.push_screen(EditRunDialog(current_learning_rate(self.state), self.state.epochs), self._edited)

    def _edited(self, changes: dict | None) -> None:
        if changes:  # one worker sends them one by one, in order
            self._send("set", **changes)

    def action_profile(self) -> None:
        """Show the Profile panel (again: back to the curves); on a running run, capture a new profile."""
        views = self.query_one("#views", ContentSwitcher)
        views.current = "curves" if views.current == "profile" else "profile"
        self.query_one("#side").display = views.current == "curves"  # the profile takes the width
        if views.current == "curves":
            return
        panel = self.query_one(ProfilePanel)
        if self.state.running and self.runner_is_alive and not panel.capturing:
            panel.capturing = PROFILE_STEPS
            self._send("profile", steps=PROFILE_STEPS)
        elif not self.state.profile and not panel.capturing:
            self.notify("no profile: start a run, or set train.profile in the preset", severity="warning")
        self._refresh_text()

    def _profile_arrived(self, live: bool) -> None:
        """A `profile` event came: the capture asked for is done; say so when the panel is hidden."""
        if not self.whole():
            return
        self.query_one(ProfilePanel).capturing = 0
        if live and self.query_one("#views", ContentSwitcher).current != "profile":
            self.notify(f"profile: {(self.state.profile.get('verdict') or {}).get('line', 'ready')} (press f)")

    def action_toggle(self, name: str) -> None:  # type: ignore[override]  # toggles a Curves setting, synchronously
        curves = self.query_one(Curves)
        setattr(curves, name, not getattr(curves, name))
        self._refresh_text()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Offer the output picker only for a model with several outputs."""
        if action == "next_output":
            return bool(self.state.outputs)
        return True

    def action_next_output(self) -> None:
        """Show the curves of the next output of a model with several (after the last: all of them)."""
        outputs = self.state.outputs
        if not outputs:
            return
        curves = self.query_one(Curves)
        order = [None, *outputs]
        curves.output = order[(order.index(curves.output) + 1) % len(order)] if curves.output in order else None
        self._refresh_text()
        curves.redraw()
        self.notify(f"curves: {curves.output or 'all outputs'}", timeout=2)

    def action_back(self) -> None:
        """Close a train screen opened over another one (from the Runs screen)."""
        try:
            installed = self.app.get_screen("train")
        except KeyError:
            installed = None
        if installed is not self and len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_toggle_bell(self) -> None:
        self.bell = not self.bell
        self._refresh_text()
        self.notify(f"bell {'on' if self.bell else 'off'}")

    # -- results ---------------------------------------------------------------------------------

    def action_results(self) -> None:
        if not self.state.ended:
            self.notify("results come when the run has ended", severity="warning")
            return
        note = ""
        if self.evaluation is None and self._classifier() and self.state.status != "failed":
            self._evaluate()
            note = "evaluating on the validation split…"
        self.app.push_screen(ResultsDialog(self.state, self.evaluation, note, run_dir=self.run_dir))

    def _evaluate(self) -> None:
        if self.run_dir is not None:
            # The App's engine calls evaluate (tests and pictures pass one with a fixed evaluation).
            evaluate = getattr(getattr(self.app, "engine_calls", None), "evaluate", None)
            self.run_worker(
                partial(self._evaluate_worker, self.run_dir, evaluate),
                thread=True,
                exclusive=True,
                exit_on_error=False,
                group="evaluate",
                name="evaluate",
            )

    def _evaluate_worker(self, run_dir: Path, evaluate: Callable[..., dict] | None = None) -> None:
        if evaluate is None:
            from tfbench.evaluation import evaluate_run  # TensorFlow: imported only here

            evaluate = evaluate_run
        try:
            result = evaluate(run_dir, split="validation", k=5)
        except Exception as exc:
            self.post_message(ActionFailed(f"evaluation: {exc}"))
            return
        self.post_message(EvaluationReady(result))

    def on_evaluation_ready(self, message: EvaluationReady) -> None:
        self.evaluation = message.result
        if isinstance(self.app.screen, ResultsDialog):
            self.app.screen.show_evaluation(self.evaluation)
        else:
            self.notify("results ready: press v")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group in ("follow", "control", "start", "evaluate"):
            self._starting = False
            self.notify(f"{event.worker.name}: {event.worker.error}", severity="error")


def code_arguments(experiment: Any, app: Any) -> list[str]:
    """`--allow-code` for a runner whose preset's own modules the user allowed, as they are now.

    Raises:
        UserError: a module not allowed in this workbench, or changed since it was allowed.
    """
    if experiment.code is None:
        return []
    from tfbench.code_consent import module_files
    from tfbench.errors import UserError

    changed = [f for f in module_files(experiment) if f.sha256 not in getattr(app, "allowed_code", set())]
    if changed:
        raise UserError(
            f"{', '.join(str(f.path) for f in changed)} is not allowed as it is now", "code", "open the preset again"
        )
    return ["--allow-code"]
