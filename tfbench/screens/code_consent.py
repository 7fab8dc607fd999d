"""The question a preset with its own Python code (`[code]`) asks before anything of it is imported.

The dialog names every file with its full SHA-256, so what the user allows is exactly those bytes;
the workbench asks again when a file changes. It answers True (allow and open) or False (don't).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from tfbench.keymap import bindings
from tfbench.screens.dialogs import Dialog


class CodeConsent(Dialog):
    """Allow a preset's own modules to be imported, or leave the preset closed.

    Args:
        files: the module files as read (`tfbench.user_code.ModuleFile`: path and SHA-256).
        title: what allowing does ("Open transformer-text.toml").
    """

    DEFAULT_CSS = """
    CodeConsent .code-files { height: auto; max-height: 12; margin: 1 0; }
    CodeConsent .dialog-box { width: 96; }
    """
    KEYS = "code-consent"
    BINDINGS = bindings(KEYS)

    def __init__(self, files: list[Any], title: str = "This preset runs its own Python code") -> None:
        super().__init__()
        self.files = files
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(
                "Its layers, losses, metrics, callbacks or model class are Python files that run with your "
                "rights once imported. Read them first; tfbench imports them only if you allow it, and asks "
                "again when one changes.",
            )
            listing = Text()
            for file in self.files:
                listing.append(f"{file.path}\n", style="bold")
                listing.append(f"  sha256 {file.sha256}\n", style="dim")
            yield Static(listing, classes="code-files", id="code-files")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Don't open", id="code-refuse")
                yield Button("Allow and open", variant="warning", id="code-allow")

    def on_mount(self) -> None:
        self.query_one("#code-refuse", Button).focus()  # the safe answer is the default one

    def action_allow(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#code-allow")
    def _allow(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#code-refuse")
    def _refuse(self) -> None:
        self.dismiss(False)
