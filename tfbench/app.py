"""The workbench: a Textual App that edits one Experiment and starts and follows its runs.

Screens: Model (layer builder), Data (dataset picker), Setup (training), Train (live view), Runs.
Every edit goes through `WorkbenchApp.edit`, which validates the new Experiment and keeps the old
one for undo. Keras work (the live model summary, dataset descriptions) happens in thread workers
that post messages back, and TensorFlow is imported in the background after the first paint, so
the first screen never waits for it. Training never runs in this process: the Train screen starts
a runner process and follows its event log.
"""

from __future__ import annotations

import copy
import importlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.actions import SkipAction
from textual.app import App, SystemCommand
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from tfbench.errors import UserError
from tfbench.keymap import SCREENS, ScreenEntry, app_bindings, palette_commands
from tfbench.messages import (
    DataDescribed,
    DataDescribeFailed,
    ExperimentEdited,
    ImportFailed,
    LayersImported,
    SummaryComputed,
    SummaryFailed,
    TensorFlowLoaded,
)
from tfbench.spec import DEFAULT_PRESET, PRESETS_DIR, Experiment, experiment_from_dict, load_experiment
from tfbench.workbench import Workbench

UNDO_LIMIT = 200
SUMMARY_SETTLE_SECONDS = 0.15  # let a burst of keystrokes settle before Keras builds the model
QUIT_ANSWERS = [("s", "Stop and quit", "stop"), ("d", "Leave running, quit", "detach"), ("escape", "Stay", "stay")]


def make_screen(entry: ScreenEntry, app: App) -> Screen:
    """A registered screen, its module imported only now (the first paint never waits for the others)."""
    module, _, name = entry.target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls.for_app(app) if hasattr(cls, "for_app") else cls()


class WorkbenchApp(Workbench):
    """Edit an Experiment, start its training and follow its runs.

    Args:
        experiment: the Experiment to edit.
        preset_path: where it came from (the default for "Save preset"), if a user file.
        runs_dir: where runs are written and listed.
        watch: a run directory to follow on the Train screen at start.
        engine_calls: the engine calls the workers make (`tfbench.engine_calls.EngineCalls` by default).
    """

    CSS_PATH = "app.tcss"
    TITLE = "tfbench"
    bell_enabled = True  # the Train screen rings when a run ends; `tfbench watch --no-bell` clears it
    BINDINGS = app_bindings()

    def __init__(
        self,
        experiment: Experiment,
        *,
        preset_path: Path | None = None,
        runs_dir: Path = Path("runs"),
        watch: Path | None = None,
        engine_calls: Any = None,
    ) -> None:
        super().__init__()
        if engine_calls is None:
            from tfbench.engine_calls import EngineCalls

            engine_calls = EngineCalls()
        self.engine_calls = engine_calls
        self.experiment = experiment
        self.preset_path = preset_path
        self.runs_dir = Path(runs_dir)
        self.watch_dir = Path(watch) if watch is not None else None
        self.dirty = False
        self.blink = True
        self.generation = 0
        self.summary: Any = None
        self.summary_error: UserError | None = None
        self.summary_pending = False
        self.form_errors: dict[str, str] = {}
        self.data_info: Any = None
        self.data_error: UserError | None = None
        self._described: str | None = None
        self._undo: list[dict] = []
        self._redo: list[dict] = []
        self._merge_key: str | None = None
        self._keras_lock = threading.Lock()
        self.allowed_code: set[str] = set()  # SHA-256 digests of [code] modules the user allowed
        self.studies: list[Path] = []  # study directories whose `tfbench tune` this App started
        self.studies_left_running = False  # the user chose to leave them running when quitting

    # -- start-up -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        for entry in SCREENS:
            self.install_screen(make_screen(entry, self), entry.name)
        self._update_title()
        self.push_screen("train" if self.watch_dir is not None else "model")
        # Keras work starts after the first frame is on screen, never before it.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        if self.watch_dir is None:
            self.request_describe()
            self.request_summary()
            if self.experiment.code is not None:  # a preset with its own code: ask before importing it
                self.open_with_consent(self.experiment, self.preset_path, self._code_imported, self._code_declined)
        self._warm_up()

    # -- a preset's own code ------------------------------------------------------------------
    def open_with_consent(
        self,
        experiment: Experiment,
        path: Path | None,
        done: Callable[[Experiment], None],
        declined: Callable[[], None] | None = None,
    ) -> None:
        """Ask before a preset's own modules are imported (once per version of the files), import them
        in a worker, then call `done` with the Experiment checked against their classes."""
        from tfbench.code_consent import module_files

        if experiment.code is None:
            done(experiment)
            return
        where = str(path) if path is not None else None
        try:
            files = module_files(experiment, where)
        except UserError as exc:
            self.notify(str(exc), title="Cannot open", severity="error", timeout=10)
            return

        def answered(allow: bool | None) -> None:
            if not allow:
                self.notify("Its code was not imported.", title="Not opened", severity="warning")
                if declined is not None:
                    declined()
                return
            self.allowed_code.update(f.sha256 for f in files)
            self._import_code(experiment, files, where, done)

        if all(f.sha256 in self.allowed_code for f in files):
            answered(True)
        else:
            from tfbench.screens.code_consent import CodeConsent

            self.push_screen(CodeConsent(files), answered)

    @work(thread=True, exit_on_error=False, group="code")
    def _import_code(
        self, experiment: Experiment, files: list, where: str | None, done: Callable[[Experiment], None]
    ) -> None:
        from tfbench.code_consent import activated

        try:
            checked = activated(experiment, files, where)  # imports Keras and the modules: a worker's job
        except UserError as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot open", severity="error", timeout=10)
            return
        self.call_from_thread(done, checked)

    def _code_declined(self) -> None:
        self.replace_experiment(load_experiment(DEFAULT_PRESET))  # the preset stays closed

    def _code_imported(self, experiment: Experiment) -> None:
        self._set(experiment, dirty=self.dirty)
        self.notify("Its code is imported: its classes are in the layer picker under their file's name.")

    @work(thread=True, exclusive=True, exit_on_error=False, group="warm-up")
    def _warm_up(self) -> None:
        seconds = self.engine_calls.warm_up()
        self.post_message(TensorFlowLoaded(seconds))

    # -- the Experiment -----------------------------------------------------------------------
    def edit(self, change: Callable[[dict], None], merge: str | None = None) -> UserError | None:
        """Apply an edit to a copy of the Experiment, validate it, and keep the old one for undo.

        Args:
            change: mutates the Experiment's plain dict.
            merge: edits with the same key in a row (keystrokes in one field) undo as one.

        Returns:
            None when applied (or when nothing changed); the UserError when the result is invalid,
            in which case the Experiment is left as it was.
        """
        before = self.experiment.to_dict()
        data = copy.deepcopy(before)
        change(data)
        try:
            new = experiment_from_dict(data)
        except UserError as exc:
            return exc
        if new.to_dict() == before:
            return None
        if merge is None or merge != self._merge_key or not self._undo:
            self._undo.append(before)
            del self._undo[:-UNDO_LIMIT]
        self._merge_key = merge
        self._redo.clear()
        self._set(new, dirty=True)
        return None

    def _set(self, experiment: Experiment, dirty: bool) -> None:
        self.experiment = experiment
        self.dirty = dirty
        self._update_title()
        self.request_describe()
        self.request_summary()
        self._sync_screens()

    def _sync_screens(self, edited: bool = True) -> None:
        screen = self.screen
        if hasattr(screen, "sync") and not isinstance(screen, ModalScreen):
            screen.sync()
        for other in self.screen_stack:
            if other is not screen and hasattr(other, "sync"):
                other.sync()
        if edited:
            self.post_message(ExperimentEdited())

    def _update_title(self) -> None:
        self.title = f"tfbench · {self.experiment.name}" + (" ●" if self.dirty else "")
        self.sub_title = str(self.preset_path) if self.preset_path else ""

    def action_undo(self) -> None:
        """Go back one edit."""
        if not self._undo:
            self.notify("Nothing to undo.")
            return
        self._redo.append(self.experiment.to_dict())
        self._merge_key = None
        self._set(experiment_from_dict(self._undo.pop()), dirty=True)

    def action_redo(self) -> None:
        """Repeat an undone edit."""
        if not self._redo:
            self.notify("Nothing to redo.")
            return
        self._undo.append(self.experiment.to_dict())
        self._merge_key = None
        self._set(experiment_from_dict(self._redo.pop()), dirty=True)

    def replace_experiment(self, experiment: Experiment, preset_path: Path | None = None) -> None:
        """Edit to a whole new Experiment (an opened preset); undo goes back to the previous one."""
        self._undo.append(self.experiment.to_dict())
        self._redo.clear()
        self._merge_key = None
        self.preset_path = preset_path
        self._set(experiment, dirty=False)

    # -- data description ---------------------------------------------------------------------
    def _data_key(self) -> str:
        return repr(self.experiment.data.model_dump()) + repr(self.experiment.train.seed) + repr(self._io())

    def _io(self):
        """The named inputs and outputs the model asks its data for (None: the usual x and y)."""
        from tfbench.io_model import data_names

        return data_names(self.experiment)

    def request_describe(self) -> None:
        """Describe the data source in a worker when the data section changed."""
        key = self._data_key()
        if key == self._described:
            return
        self._described = key
        self._describe(self.experiment.data, self.experiment.train.seed, key, self._io())

    @work(thread=True, exclusive=True, exit_on_error=False, group="describe")
    def _describe(self, spec, seed, key: str, io=None) -> None:
        try:
            info = self.engine_calls.describe(spec, seed) if io is None else self.engine_calls.describe(spec, seed, io)
        except UserError as exc:
            self.post_message(DataDescribeFailed(key, exc))
            return
        self.post_message(DataDescribed(key, info))

    @on(DataDescribed)
    def _data_described(self, message: DataDescribed) -> None:
        if message.source != self._described:
            return
        self.data_info, self.data_error = message.info, None
        self._sync_screens(edited=False)

    @on(DataDescribeFailed)
    def _data_describe_failed(self, message: DataDescribeFailed) -> None:
        if message.source != self._described:
            return
        self.data_info, self.data_error = None, message.error
        self._sync_screens(edited=False)

    # -- summary ------------------------------------------------------------------------------
    def request_summary(self) -> None:
        """Recompute the Keras summary of the current Experiment in a worker."""
        self.generation += 1
        self.summary_pending = True
        self._compute_summary(self.experiment, self.generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="summary")
    def _compute_summary(self, experiment: Experiment, generation: int) -> None:
        time.sleep(SUMMARY_SETTLE_SECONDS)
        if generation != self.generation:
            return
        with self._keras_lock:  # one Keras build at a time; a newer edit makes this one moot
            if generation != self.generation:
                return
            try:
                _check_code_imported(experiment)
                summary = self.engine_calls.summarize(experiment)
            except UserError as exc:
                self.post_message(SummaryFailed(generation, exc))
                return
        self.post_message(SummaryComputed(generation, summary))

    @on(SummaryComputed)
    def _summary_computed(self, message: SummaryComputed) -> None:
        if message.generation != self.generation:
            return
        self.summary, self.summary_error, self.summary_pending = message.summary, None, False
        self._show_summary()

    @on(SummaryFailed)
    def _summary_failed(self, message: SummaryFailed) -> None:
        if message.generation != self.generation:
            return
        self.summary, self.summary_error, self.summary_pending = None, message.error, False
        self._show_summary()

    def _show_summary(self) -> None:
        screen = self.installed("model")
        if screen is not None and screen.is_mounted and hasattr(screen, "show_summary"):
            screen.show_summary()

    def installed(self, name: str) -> Screen | None:
        """The installed screen called `name`, or None once the app is closing.

        A worker's result (a summary, an import) can land while Textual is closing the app, after
        it has uninstalled the screens; it is dropped then rather than ending the app in a KeyError.
        """
        return self.get_screen(name) if self.is_screen_installed(name) else None

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker is reported: a bug, not a user mistake."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "summary":
            self.summary, self.summary_pending = None, False
            self.summary_error = UserError(f"could not build the model: {error}", "model")
            self._show_summary()
        elif event.worker.group == "describe":
            self.data_info, self.data_error = None, UserError(f"cannot describe the data: {error}", "data")
            self._sync_screens(edited=False)
        elif event.worker.group != "warm-up":
            self.notify(f"{event.worker.name}: {error}", severity="error", timeout=8)

    @on(TensorFlowLoaded)
    def _tf_loaded(self, message: TensorFlowLoaded) -> None:
        self.log(f"TensorFlow loaded in the background in {message.seconds:.1f}s")

    # -- layers from a .keras file ------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="import")
    def import_layers(self, path: str) -> None:
        """Read the layer stack of a Sequential `.keras` model in a worker."""
        try:
            layers = self.engine_calls.import_layers(path)
        except UserError as exc:
            self.post_message(ImportFailed(path, exc))
            return
        self.post_message(LayersImported(path, layers))

    @on(LayersImported)
    def _layers_imported(self, message: LayersImported) -> None:
        layers = [layer.model_dump() if hasattr(layer, "model_dump") else dict(layer) for layer in message.layers]

        def change(data: dict) -> None:
            data.setdefault("model", {})["layers"] = layers

        error = self.edit(change)
        if error is not None:
            self.notify(str(error), severity="error", timeout=8)
        else:
            self.notify(f"Imported {len(layers)} layers from {message.path}.")
        getattr(self.installed("model"), "show_import_error", lambda _: None)(str(error or ""))

    @on(ImportFailed)
    def _import_failed(self, message: ImportFailed) -> None:
        self.notify(str(message.error), title="Import failed", severity="error", timeout=8)
        getattr(self.installed("model"), "show_import_error", lambda _: None)(str(message.error))

    def on_descendant_focus(self, event) -> None:
        # Frozen pictures (snapshot tests) need cursors that do not blink, in dialogs too.
        if not self.blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    # -- form bookkeeping: invalid fields block saving and training ---------------------------
    def on_param_form_invalid(self, message) -> None:
        self.form_errors[message.form.location] = str(message.error)

    def on_param_form_changed(self, message) -> None:
        self.form_errors.pop(message.form.location, None)

    def _refuse_if_invalid(self, what: str) -> bool:
        if self.form_errors:
            where, error = next(iter(self.form_errors.items()))
            self.notify(f"Cannot {what}: {error}", title="Fix the form first", severity="error", timeout=8)
            return True
        return False

    def _refuse_unbuildable_model(self) -> bool:
        """Say why a model whose latest summary failed cannot train, and stay (True); False when it builds."""
        error = self.summary_error
        if error is None or self.summary_pending:
            return False
        self.notify(f"{error}", title="Not started: the model does not build", severity="error", timeout=8)
        screen = self.installed("model")
        if screen is self.screen and hasattr(screen, "refused"):
            screen.refused(error)
        return True

    # -- actions ------------------------------------------------------------------------------
    def action_show(self, name: str) -> None:
        """Switch to one of the screens by name."""
        if isinstance(self.screen, ModalScreen):
            return
        if self.screen is self.get_screen(name):
            return
        self.switch_screen(name)

    async def action_start_training(self) -> None:
        """Validate the Experiment, switch to Train and start a runner process there.

        A model the Model screen marks ✗ (its summary failed) is refused where the user is: its runner
        would only fail seconds later and leave a failed run behind.
        """
        if self._refuse_if_invalid("start training") or self._refuse_unbuildable_model():
            return
        try:
            experiment = experiment_from_dict(self.experiment.to_dict())
        except UserError as exc:
            self.notify(str(exc), title="Cannot start training", severity="error", timeout=8)
            return
        while isinstance(self.screen, ModalScreen):
            await self.pop_screen()
        screen = self.get_screen("train")
        if self.screen is not screen:
            await self.switch_screen("train")  # composed and mounted before it is asked to start
        try:
            screen.start(experiment)  # type: ignore[attr-defined]  # the Train screen, installed by name
        except UserError as exc:
            self.notify(str(exc), title="Cannot start training", severity="error", timeout=8)

    def action_save_preset(self) -> None:
        """Ask where, then write the Experiment as a preset (TOML)."""
        from tfbench.screens.dialogs import PathPrompt

        if self._refuse_if_invalid("save"):
            return
        suggested = self.preset_path
        if suggested is None or PRESETS_DIR in Path(suggested).resolve().parents:
            suggested = Path(f"{self.experiment.name}.toml")
        self.push_screen(PathPrompt("Save preset as", str(suggested), action="Save"), self._save_to)

    def _save_to(self, path: str | None) -> None:
        from tfbench.spec import save_experiment

        if not path:
            return
        try:
            save_experiment(self.experiment, path)
        except OSError as exc:
            self.notify(f"{path}: {exc.strerror}", title="Not saved", severity="error", timeout=8)
            return
        self.preset_path = Path(path)
        self.dirty = False
        self._update_title()
        self.notify(f"Saved {path}.")

    def action_open_preset(self) -> None:
        """Choose a shipped preset or a file and edit it."""
        from tfbench.screens.dialogs import PathPrompt
        from tfbench.spec import shipped_presets

        self.push_screen(
            PathPrompt("Open preset", "", choices=shipped_presets(), action="Open", check=load_experiment), self._open
        )

    def _open(self, name_or_path: str | None) -> None:
        from tfbench.spec import resolve_preset

        if not name_or_path:
            return
        try:
            experiment = load_experiment(name_or_path)
            path = resolve_preset(name_or_path)
        except UserError as exc:
            self.notify(str(exc), title="Cannot open", severity="error", timeout=8)
            return
        shipped = PRESETS_DIR in path.resolve().parents

        def opened(checked: Experiment) -> None:
            self.replace_experiment(checked, None if shipped else path)
            self.notify(f"Opened {name_or_path}.")

        self.open_with_consent(experiment, path, opened)

    def action_export_model(self) -> None:
        """Export formats are part of the Experiment; finished runs export from the Train screen."""
        self.action_show("setup")
        self.call_later(lambda: getattr(self.screen, "focus_export", lambda: None)())

    def action_add_layer(self) -> None:
        """Open the layer picker on the Model screen."""
        self.action_show("model")
        self.call_later(lambda: self.get_screen("model").action_add_layer())  # type: ignore[attr-defined]  # by name

    def action_preview_augmentation(self) -> None:
        """Show eight variants of a sample through the model's leading augmentation layers."""
        from tfbench.screens.augment_dialog import AugmentDialog

        if not isinstance(self.screen, ModalScreen):
            self.push_screen(AugmentDialog(self.experiment))

    def action_import_layers(self) -> None:
        """Replace the layer stack with the one of a `.keras` file."""
        self.action_show("model")
        self.call_later(lambda: self.get_screen("model").action_import())  # type: ignore[attr-defined]  # by name

    def action_profile_run(self) -> None:
        """Show the Train screen's Profile panel, capturing a profile of the run going on."""
        self.action_show("train")
        self.call_later(lambda: self.get_screen("train").action_profile())  # type: ignore[attr-defined]  # by name

    def action_help(self) -> None:
        """Show every key of the screen in view (`?`)."""
        from tfbench.screens.keys_help import KeysHelp

        if not isinstance(self.screen, KeysHelp):
            self.push_screen(KeysHelp(self.screen))

    async def action_quit_key(self) -> None:
        """`q`: quit as Ctrl+Q does, asking first; over a dialog it does nothing (the dialog's keys answer it)."""
        if not isinstance(self.screen, ModalScreen):
            await self.action_quit()

    def action_close_panel(self) -> None:
        """Esc closes Textual's keys panel when it is open; otherwise the key goes on to the screen."""
        if not self.screen.query("HelpPanel"):
            raise SkipAction()
        self.action_hide_help_panel()

    def action_resume_run(self) -> None:
        """Resume the Train screen's run (stopped, interrupted or failed) and follow it there."""
        self.action_show("train")
        self.call_later(lambda: self.get_screen("train").action_resume())  # type: ignore[attr-defined]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)

    async def action_quit(self) -> None:
        """Quit, asking first about what would be lost or left behind.

        A run this App started that is still training is never stopped without asking: stop it
        (the runner saves and stops), leave it running detached (`tfbench watch RUN` follows it
        again), or stay. Unsaved edits of the Experiment ask too.
        """
        from tfbench.screens.dialogs import Choice, Confirm

        if isinstance(self.screen, Choice):
            return  # the question about the run is open: it is answered there
        if isinstance(self.screen, Confirm):
            self._quit_now()
            return
        train = self.get_screen("train")
        run_dir = getattr(train, "live_run", lambda: None)()
        if run_dir is None:
            self._confirm_unsaved(self._quit_after_studies)
            return

        def answered(answer: str | None) -> None:
            if answer == "stop":
                self._confirm_unsaved(self._quit_after_studies)
            elif answer == "detach":
                self._confirm_unsaved(lambda: self._quit_after_studies(train.leave_running()))  # type: ignore[attr-defined]  # Train

        question = (
            f"{run_dir.name} is still training. Stop it (it saves first), or leave it running "
            "for `tfbench watch` to follow?"
        )
        self.push_screen(Choice(question, QUIT_ANSWERS), answered)

    def _confirm_unsaved(self, then: Callable[[], None]) -> None:
        from tfbench.screens.dialogs import Confirm

        if not self.dirty:
            then()
            return

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                then()

        self.push_screen(Confirm("Quit without saving the edited Experiment?", yes="Quit", no="Stay"), answered)

    def _quit_now(self, message: str | None = None) -> None:
        # Thread workers finish on their own; cancel them so none outlives the App. A run the
        # Train screen started and that was not left running is stopped as that screen goes.
        self.workers.cancel_all()
        self.exit(message=message)

    # -- studies --------------------------------------------------------------------------------
    def action_new_study(self) -> None:
        """Open the "New study" dialog; on Start, `tfbench tune` runs and the Study screen follows it."""
        from tfbench.screens.study_dialog import NewStudyDialog

        if isinstance(self.screen, ModalScreen) or self._refuse_if_invalid("start a study"):
            return
        self.push_screen(NewStudyDialog(self.experiment, self.start_study), self._study_started)

    def start_study(self, experiment: Experiment, parallel: int) -> Path:
        """Start `tfbench tune` for `experiment` (with its `[tune]`) under the runs folder; its study directory.

        Raises:
            UserError: the study cannot be started, and why.
        """
        from tfbench.screens.training import code_arguments
        from tfbench.study.launch import start_study

        study_dir = start_study(experiment, self.runs_dir, parallel, code_arguments(experiment, self))
        self.studies.append(study_dir)
        self.studies_left_running = False
        return study_dir

    def _study_started(self, study_dir: Path | None) -> None:
        if study_dir is not None:
            self.notify(f"Started `tfbench tune` in {study_dir}.")
            self.action_show_study()

    def action_show_study(self) -> None:
        """Follow the study this App started last on the Study screen."""
        from tfbench.screens.study import StudyScreen

        if not self.studies:
            self.notify("No study was started here: ctrl+t starts one.", severity="warning")
            return
        if isinstance(self.screen, ModalScreen):
            return
        if isinstance(self.screen, StudyScreen) and self.screen.study_dir == self.studies[-1]:
            return
        self.push_screen(StudyScreen(self.studies[-1]))

    def live_studies(self) -> list[Path]:
        """The studies this App started whose `tfbench tune` still runs (quitting asks about them)."""
        from tfbench.study.launch import study_process_running

        return [d for d in self.studies if study_process_running(d)]

    def _quit_after_studies(self, message: str | None = None) -> None:
        """Quit, first asking whether a study this App started and that still runs stops or goes on."""
        from tfbench.screens.dialogs import Choice

        live = [] if self.studies_left_running else self.live_studies()
        if not live:
            self._quit_now(message)
            return

        def answered(answer: str | None) -> None:
            if answer == "stop":
                self._quit_now(message)  # the study is asked to stop as the App unmounts
            elif answer == "detach":
                self.studies_left_running = True
                lines = [message] if message else []
                lines += [f"the study goes on: tfbench watch {d}" for d in live]
                self._quit_now("\n".join(lines))

        names = ", ".join(d.name for d in live)
        question = (
            f"The study {names} is still running. Stop it (running trials save; `tfbench tune --resume` "
            "continues it), or leave it running for `tfbench watch` to follow?"
        )
        self.push_screen(Choice(question, QUIT_ANSWERS), answered)

    def on_unmount(self) -> None:
        # A study this App started stops with it, unless the user chose to leave it running.
        from tfbench.study.launch import stop_study_process

        if not self.studies_left_running:
            for study_dir in self.studies:
                stop_study_process(study_dir)


def make_app(
    preset: str | None = None,
    *,
    experiment: Experiment | None = None,
    runs_dir: Path = Path("runs"),
    watch: Path | None = None,
    engine_calls: Any = None,
) -> WorkbenchApp:
    """The workbench App, shared by the CLI and the tests.

    Args:
        preset: a preset file or shipped preset name (default: digits-cnn).
        experiment: an Experiment to edit instead of loading a preset.
        runs_dir: where runs are written and listed.
        watch: open on the Train screen following this run directory.
        engine_calls: the engine calls made in workers (tests pass a `FixedEngineCalls`).

    Raises:
        UserError: the preset cannot be read or is invalid.
    """
    from tfbench.spec import resolve_preset

    path: Path | None = None
    if experiment is None:
        name = preset or DEFAULT_PRESET
        experiment = load_experiment(name)
        resolved = resolve_preset(name)
        path = None if PRESETS_DIR in resolved.resolve().parents else resolved
    return WorkbenchApp(experiment, preset_path=path, runs_dir=runs_dir, watch=watch, engine_calls=engine_calls)


def _check_code_imported(experiment: Experiment) -> None:
    """A preset whose own code is not imported has no model to show: say so, import nothing."""
    from tfbench import user_code

    if experiment.code is not None and not user_code.is_active(experiment.code.modules):
        raise UserError(
            "the preset's own code is not imported, so its model cannot be built here",
            "code",
            "open the preset (ctrl+o) and allow its code",
        )


def _study_screen(study_dir: Path, now: Any = None) -> Screen:
    from tfbench.screens.study import StudyScreen

    return StudyScreen(study_dir, now=now)


class StudyApp(WorkbenchApp):
    """The workbench opened on a study's Study screen (`tfbench watch STUDY_DIR`).

    Args:
        study_dir: the study directory to follow.
        now: a fixed clock for running trials' durations (pictures).
    """

    def __init__(self, experiment: Experiment, study_dir: Path, now: Any = None, **kwargs: Any) -> None:
        super().__init__(experiment, **kwargs)
        self.study_dir = Path(study_dir)
        self.study_now = now

    def on_mount(self) -> None:
        # Textual runs WorkbenchApp.on_mount too (after this one): open the study above its screens.
        self.call_after_refresh(lambda: self.push_screen(_study_screen(self.study_dir, self.study_now)))


def make_study_app(study_dir: Path, *, now: Any = None, engine_calls: Any = None) -> StudyApp:
    """The workbench on a study's screen, its preset loaded to edit (shared by the CLI and the tests)."""
    experiment = load_experiment(DEFAULT_PRESET)
    try:
        from tfbench.study.study import StudyDir

        data = StudyDir.load(study_dir).experiment.to_dict()
        data.pop("tune", None)
        experiment = experiment_from_dict(data)
    except UserError:
        pass  # the screen says what is wrong with the directory
    return StudyApp(experiment, Path(study_dir), now=now, engine_calls=engine_calls, runs_dir=Path(study_dir))
