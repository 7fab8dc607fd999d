"""The workbench's keys and screens, each defined once.

Every key is a `Key` in `KEYMAP`, under the scope (a screen, a widget or a dialog) that binds it.
The screens' `BINDINGS`, the footer (which shows the bindings marked `show`), the command palette
(keys with a `palette` line) and the `?` help screen (every key of a scope, hidden ones too) all
read it, as Harlequin's actions registry does. `SCREENS` lists the workbench's screens: the App's
F-keys, the screens it installs, the palette's "Show …" entries and the tabs on every screen come
from it, so a new screen is its module and one line here.

Conventions, as in k9s, lazygit and nvitop: `?` help, `q` quit (asking when a run or unsaved edits
would be affected), Esc closes a panel or dialog; a key that stops a run or leaves the workbench
asks first (`asks`), and edits are undone with Ctrl+Z. A letter means one kind of thing everywhere:
`d` deletes (undoable), `x` removes or stops, never "quit".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import SystemCommand
from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Key:
    """One key of a scope.

    Attributes:
        key: Textual key names, comma-separated ("d,delete"); empty for a palette-only command.
        action: the action it runs (on the scope's screen or widget; on the App for scope "app").
        description: the footer's and the help screen's words.
        show: in the footer (every key is in the help screen).
        asks: it stops a run or leaves the workbench, so it asks first.
        priority: a priority binding (works while a field has focus).
        display: how the key is written where its name reads badly (">" for greater_than_sign).
        palette: a line for the command palette (empty: not in the palette).
        title: the palette's title, when it differs from `description`.
    """

    key: str
    action: str
    description: str
    show: bool = True
    asks: bool = False
    priority: bool = False
    display: str | None = None
    palette: str = ""
    title: str = ""

    def binding(self) -> Binding:
        """The Textual binding of this key."""
        return Binding(
            self.key, self.action, self.description, show=self.show, priority=self.priority, key_display=self.display
        )

    @property
    def shown_key(self) -> str:
        """The key as the help screen writes it."""
        if self.display:
            return self.display
        names = {"question_mark": "?", "slash": "/", "escape": "esc", "space": "space", "delete": "del"}
        return " / ".join(names.get(k, k.replace("ctrl+", "^")) for k in self.key.split(","))


@dataclass(frozen=True)
class ScreenEntry:
    """One of the workbench's screens.

    Attributes:
        name: the name it is installed under (`app.action_show(name)`).
        label: its tab's label.
        key: the function key that shows it.
        target: "module:Class" of the screen; a class with a `for_app(app)` class method makes
            itself from the App (a run to follow, the runs folder), else it is made with no arguments.
        palette: the palette's title for showing it.
        help: the palette's line about it.
    """

    name: str
    label: str
    key: str
    target: str
    palette: str
    help: str


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry("model", "Model", "f1", "tfbench.screens.builder:BuilderScreen", "Show model builder", "Layers"),
    ScreenEntry(
        "data", "Data", "f2", "tfbench.screens.dataset:DatasetScreen", "Show dataset picker", "Data source and preview"
    ),
    ScreenEntry(
        "setup", "Setup", "f3", "tfbench.screens.setup:SetupScreen", "Show training setup", "Optimizer, loss, callbacks"
    ),
    ScreenEntry(
        "train",
        "Train",
        "f4",
        "tfbench.screens.training:TrainingScreen",
        "Show training view",
        "The live view of a run",
    ),
    ScreenEntry("runs", "Runs", "f5", "tfbench.screens.runs:RunsScreen", "Show runs", "Runs in the runs folder"),
)

APP = "app"

KEYMAP: dict[str, tuple[Key, ...]] = {
    APP: (
        Key(
            "ctrl+r",
            "start_training",
            "Start training",
            priority=True,
            palette="Validate the Experiment and train it in a runner process",
        ),
        Key("ctrl+s", "save_preset", "Save", priority=True, title="Save preset", palette="Write it as TOML"),
        Key(
            "ctrl+o",
            "open_preset",
            "Open",
            priority=True,
            title="Open preset",
            palette="Edit a preset",
        ),
        Key("ctrl+z", "undo", "Undo", priority=True, palette="Go back one edit"),
        Key("ctrl+y", "redo", "Redo", priority=True, palette="Repeat an undone edit"),
        Key("question_mark", "help", "Keys", show=False, title="Keys of this screen", palette="Every key, explained"),
        Key("q", "quit_key", "Quit", show=False, asks=True),
        Key("ctrl+q", "quit", "Quit (anywhere)", show=False, asks=True, priority=True),
        Key("escape", "close_panel", "Close the keys panel", show=False, priority=True),
        Key(
            "",
            "resume_run",
            "Resume run",
            palette="Continue the stopped, interrupted or failed run on the Train screen, in its own directory",
        ),
        Key(
            "ctrl+t",
            "new_study",
            "New study",
            show=False,
            priority=True,
            palette="Search a space of the Experiment's settings with `tfbench tune` and follow its trials",
        ),
        Key("", "show_study", "Show study", palette="The study started last, on the Study screen"),
        Key("", "export_model", "Export model", palette="Choose the export formats and quantisation"),
        Key("", "add_layer", "Add layer", palette="Pick a layer type from the catalog"),
        Key(
            "",
            "preview_augmentation",
            "Preview augmentation",
            palette="Eight variants of a sample through the model's augmentation layers",
        ),
        Key("", "profile_run", "Profile the run", palette="Capture 10 training steps and say what limits them"),
        Key(
            "",
            "import_layers",
            "Import layers from a .keras model",
            palette="Replace the stack with a Sequential model's layers",
        ),
    ),
    "model": (
        Key("a", "add_layer", "Add"),
        Key("A", "add_inside", "Add inside"),
        Key("B", "add_branch", "Branch"),
        Key("greater_than_sign", "move_in", "Into block", display=">"),
        Key("less_than_sign", "move_out", "Out of block", display="<"),
        Key("f", "toggle_fold", "Fold"),
        Key("p", "toggle_preprocess", "Preprocess"),
        Key("i", "insert_above", "Insert above"),
        Key("d,delete", "delete_layer", "Delete"),
        Key("c", "duplicate", "Duplicate"),
        Key("K", "move(-1)", "Move up"),
        Key("J", "move(1)", "Move down"),
        Key("e", "edit", "Edit"),
        Key("I", "import", "Import .keras"),
        Key("b", "add_block", "Block"),
        Key("g", "app.preview_augmentation", "Augment"),
    ),
    "data": (
        Key("slash", "search", "Search"),
        Key("p", "focus_pipeline", "Pipeline"),
        Key("b", "browse", "Browse files"),
        Key("g", "app.preview_augmentation", "Augment"),
    ),
    "data-columns": (
        Key("l", "label", "Label column"),
        Key("k", "kind", "Column kind"),
        Key("x", "drop", "Drop/keep"),
    ),
    "setup": (Key("x", "remove_callback", "Remove callback"),),
    "train": (
        Key("s", "start", "Start"),
        Key("p", "pause", "Pause/resume"),
        Key("x", "stop", "Stop", asks=True),
        Key("r", "resume", "Resume"),
        Key("e", "export", "Stop+export", asks=True, show=False),  # footer room: these two are in `?`
        Key("ctrl+d", "detach", "Detach", asks=True, show=False),
        Key("l", "edit", "Edit LR/epochs"),
        Key("v", "results", "Results"),
        Key("f", "profile", "Profile"),
        Key("g", "toggle('log_scale')", "Log", show=False),
        Key("o", "toggle('smoothing')", "Smooth", show=False),
        Key("a", "toggle('ascii_mode')", "ASCII", show=False),
        Key("O", "next_output", "Output"),
        Key("b", "toggle_bell", "Bell", show=False),
        Key("escape", "back", "Back", show=False),
    ),
    "runs": (
        Key("space", "toggle_select", "Select"),
        Key("enter", "open", "Open"),
        Key("slash", "filter", "Filter", palette="Filter the runs: status:completed val_accuracy>0.95 tag:baseline"),
        Key("s", "sort", "Sort", palette="Sort the runs by the next column"),
        Key("S", "flip_sort", "Reverse order", show=False),
        Key("t", "edit_tags", "Tags", palette="Tag the run under the cursor"),
        Key("n", "edit_note", "Note", show=False, palette="Write a note on the run under the cursor"),
        Key("r", "refresh", "Refresh"),
        Key("escape", "clear", "Clear filter or selection", show=False),
    ),
    "study": (
        Key("enter", "open_trial", "Open trial"),
        Key("p", "next_param", "Next parameter"),
        Key("s", "stop_study", "Stop study", asks=True),
        Key("b", "load_best", "Load best"),
        Key("r", "refresh", "Refresh"),
    ),
    "help": (Key("escape,question_mark,q", "close", "Close"),),
    "dialog": (Key("escape", "cancel", "Cancel"), Key("question_mark", "app.help", "Keys", show=False)),
    "file-browser": (Key("escape", "cancel", "Cancel"), Key("u", "use_folder", "Use folder")),
    "confirm": (Key("y", "answer(True)", "Yes"), Key("n,escape", "answer(False)", "No")),
    "code-consent": (Key("escape", "cancel", "Don't open"), Key("a", "allow", "Allow")),
    "run-dialog": (Key("escape", "close", "Close"),),
    "edit-run": (Key("escape", "close", "Cancel"),),
    "export": (Key("a", "export_all", "Export all"),),
    "results": (Key("v", "close", "Close", show=False), Key("x", "explain", "Explain")),
    "new-study": (
        Key("escape", "cancel", "Cancel"),
        Key("ctrl+n", "add_param", "Add parameter", priority=True),
        Key("question_mark", "app.help", "Keys", show=False),
    ),
}


def bindings(scope: str) -> list[BindingType]:
    """The Textual bindings of a scope (a class's `BINDINGS`)."""
    return [k.binding() for k in KEYMAP[scope] if k.key]


def app_bindings() -> list[BindingType]:
    """The App's bindings: a function key per screen, then the keys that work everywhere.

    The function keys are not in the footer: every screen's tabs already show them ("Model F1"), and
    at 80 columns they took the room of the screen's own keys.
    """
    return [Binding(s.key, f"show('{s.name}')", s.label, show=False) for s in SCREENS] + bindings(APP)


def screen_keys() -> tuple[Key, ...]:
    """The screens' function keys as `Key`s, for the help screen."""
    return tuple(Key(s.key, f"show('{s.name}')", f"{s.label} screen") for s in SCREENS)


def palette_keys(scope: str) -> tuple[Key, ...]:
    """A scope's keys that the command palette offers."""
    return tuple(k for k in KEYMAP.get(scope, ()) if k.palette)


def palette_commands(app: Any, screen: Any) -> Iterator[SystemCommand]:
    """The command palette's entries: the App's commands, those of `screen`, and a "Show …" per screen."""
    for key in palette_keys(APP):
        yield SystemCommand(key.title or key.description, key.palette, partial(app.run_action, key.action))
    scope = getattr(screen, "KEYS", None)
    for key in palette_keys(scope) if scope else ():
        yield SystemCommand(key.title or key.description, key.palette, partial(screen.run_action, key.action))
    for entry in SCREENS:
        yield SystemCommand(entry.palette, entry.help, partial(app.action_show, entry.name))
