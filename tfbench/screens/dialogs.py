"""Small modal dialogs: the searchable layer picker, a path prompt (open/save a preset, import), a file
browser, a yes/no question, a choice of a few answers."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tfbench.keymap import bindings

DIALOG_CSS = """
.dialog-box { width: 72; max-width: 95%; height: auto; max-height: 90%; border: thick $primary;
              background: $surface; padding: 0 1; }
.dialog-box .dialog-title { text-style: bold; width: 100%; }
.dialog-box OptionList { height: auto; max-height: 16; }
.dialog-box DirectoryTree { height: 14; }
.dialog-box .dialog-error { color: $error; text-style: bold; }
.dialog-box .dialog-buttons { height: auto; align-horizontal: right; }
.dialog-box Button { margin-left: 1; }
"""


class Dialog(ModalScreen):
    """A centred box that Escape closes with no answer."""

    DEFAULT_CSS = "Dialog { align: center middle; }\n" + DIALOG_CSS
    KEYS = "dialog"
    BINDINGS = bindings(KEYS)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LayerPicker(Dialog):
    """Choose a layer type from the catalog by searching names and help; answers its name."""

    def __init__(self, title: str = "Add layer") -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder="search layers (name or what it does)", id="picker-search")
            yield OptionList(id="picker-list")
            yield Static("enter: add · esc: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, query: str) -> None:
        from tfbench import catalog

        entries = catalog.search("layers", query) if query.strip() else catalog.entries("layers")
        options = []
        for entry in entries:
            help_line = (entry.help or "").splitlines()[0] if entry.help else ""
            if entry.module:  # a class of the preset's own code, under its module's file name
                help_line = f"[{entry.module}] {help_line}"
            prompt = Text(f"{entry.name:<24} {help_line}", no_wrap=True, overflow="ellipsis")
            options.append(Option(prompt, id=entry.name))
        listing = self.query_one("#picker-list", OptionList)
        listing.clear_options()
        listing.add_options(options)
        if options:
            listing.highlighted = 0

    @on(Input.Changed, "#picker-search")
    def _search(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-search")
    def _submit(self) -> None:
        listing = self.query_one("#picker-list", OptionList)
        if listing.highlighted is not None and listing.option_count:
            self.dismiss(listing.get_option_at_index(listing.highlighted).id)

    @on(OptionList.OptionSelected, "#picker-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_key(self, event) -> None:
        # Up/down move through the list while typing in the search box.
        listing = self.query_one("#picker-list", OptionList)
        if event.key in ("down", "up") and self.focused is self.query_one("#picker-search"):
            event.stop()
            listing.action_cursor_down() if event.key == "down" else listing.action_cursor_up()


class PathPrompt(Dialog):
    """Ask for a file path; answers a Path, or None when cancelled.

    Args:
        title: what the path is for ("Save preset as").
        value: the suggested path.
        must_exist: refuse paths that are not existing files.
        choices: names offered in a list above the input (e.g. shipped presets).
        check: called with the typed path before the dialog answers; a `UserError` it raises is
            shown under the input and the dialog stays open (open a preset: the file must load).
    """

    def __init__(
        self,
        title: str,
        value: str = "",
        must_exist: bool = False,
        choices: list[str] | None = None,
        action: str = "OK",
        check=None,
    ) -> None:
        super().__init__()
        self.check = check
        self.title_text = title
        self.value = value
        self.must_exist = must_exist
        self.choices = choices or []
        self.action_label = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            if self.choices:
                yield Label("Shipped presets:")
                yield OptionList(*[Option(c, id=c) for c in self.choices], id="prompt-choices")
                yield Label("or a file:")
            yield Input(self.value, placeholder="path/to/file", id="prompt-path")
            yield Static("", id="prompt-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="prompt-cancel")
                yield Button(self.action_label, variant="primary", id="prompt-ok")

    def on_mount(self) -> None:
        self.query_one("#prompt-path", Input).focus()

    @on(OptionList.OptionSelected, "#prompt-choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Button.Pressed, "#prompt-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#prompt-ok")
    @on(Input.Submitted, "#prompt-path")
    def _ok(self) -> None:
        text = self.query_one("#prompt-path", Input).value.strip()
        error = self.query_one("#prompt-error", Static)
        if not text:
            error.update("type a path")
            return
        path = Path(text).expanduser()
        if self.must_exist and not path.is_file():
            error.update("no such file")
            return
        if self.check is not None:
            from tfbench.errors import UserError

            try:
                self.check(str(path))
            except UserError as exc:
                error.update(str(exc))
                return
        self.dismiss(str(path))


class FileBrowser(Dialog):
    """Browse for a data file or folder; answers its path, or None when cancelled.

    Enter on a file chooses it; "Use folder" chooses the highlighted folder (image and text
    sources are folders with a sub-folder per class).
    """

    KEYS = "file-browser"
    BINDINGS = bindings(KEYS)

    def __init__(self, root: str | Path = ".", title: str = "Choose a data file or folder") -> None:
        super().__init__()
        self.root = Path(root)
        self.title_text = title

    def compose(self) -> ComposeResult:
        from textual.widgets import DirectoryTree

        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield DirectoryTree(self.root, id="browser-tree")
            yield Static("enter: choose file · u: use folder · esc: cancel", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="browser-cancel")
                yield Button("Use folder", id="browser-folder")

    def on_mount(self) -> None:
        self.query_one("#browser-tree").focus()

    def on_directory_tree_file_selected(self, event) -> None:
        event.stop()
        self.dismiss(str(event.path))

    def action_use_folder(self) -> None:
        from textual.widgets import DirectoryTree

        tree = self.query_one("#browser-tree", DirectoryTree)
        node = tree.cursor_node
        if node is not None and node.data is not None:
            path = Path(node.data.path)
            self.dismiss(str(path if path.is_dir() else path.parent))

    @on(Button.Pressed, "#browser-folder")
    def _folder(self) -> None:
        self.action_use_folder()

    @on(Button.Pressed, "#browser-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)


class Confirm(Dialog):
    """A yes/no question (y / n keys or the buttons); answers True or False."""

    KEYS = "confirm"
    BINDINGS = bindings(KEYS)

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.no} (n)", id="confirm-no")
                yield Button(f"{self.yes} (y)", variant="warning", id="confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")


class Choice(Dialog):
    """A question with a few answers, each a key and a button; Escape answers None.

    Args:
        question: what is asked (a line or two).
        answers: (key, label, answer) per answer, in the order shown.
    """

    def __init__(self, question: str, answers: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.question = question
        self.answers = answers

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.question, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                for key, label, answer in self.answers:
                    yield Button(f"{label} ({'esc' if key == 'escape' else key})", id=f"choice-{answer}")

    def on_mount(self) -> None:
        self.query(Button).last().focus()  # Enter on a fresh dialog takes the last, safest answer

    def on_key(self, event) -> None:
        for key, _label, answer in self.answers:
            if event.key == key:
                event.stop()
                self.dismiss(answer)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))
