"""The `?` screen: every key of the screen below it, from the key map, hidden ones included."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from tfbench.keymap import APP, KEYMAP, Key, bindings, screen_keys

SCOPE_TITLES = {APP: "Everywhere", "screens": "Screens"}


def scopes_of(screen: Screen) -> list[str]:
    """The key-map scopes that bind keys on `screen`: its own, then its widgets' (in layout order)."""
    found: list[str] = []
    for node in (screen, *screen.query("*")):
        scope = getattr(node, "KEYS", None)
        if scope and scope not in found:
            found.append(scope)
    return found


def key_sections(screen: Screen) -> list[tuple[str, tuple[Key, ...]]]:
    """The help's sections for `screen`: its keys, then the keys that work everywhere and the screens'."""
    sections = [(f"This screen ({scope})", KEYMAP[scope]) for scope in scopes_of(screen)]
    sections.append((SCOPE_TITLES[APP], tuple(k for k in KEYMAP[APP] if k.key)))
    if not isinstance(screen, ModalScreen):
        sections.append((SCOPE_TITLES["screens"], screen_keys()))
    return sections


def keys_table(sections: list[tuple[str, tuple[Key, ...]]]) -> Table:
    """A two-column table of keys and what they do, a heading per section."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for index, (title, keys) in enumerate(sections):
        if index:
            table.add_row("", "")
        table.add_row(Text(title, style="bold underline"), "")
        for key in keys:
            what = Text(key.description)
            if key.asks:
                what.append("  (asks first)", style="dim")
            table.add_row(key.shown_key, what)
    return table


class KeysHelp(ModalScreen):
    """Every key of the screen it was opened on; Esc, `?` or `q` closes it.

    Args:
        screen: the screen whose keys are listed.
    """

    KEYS = "help"
    BINDINGS = bindings(KEYS)
    DEFAULT_CSS = """
    KeysHelp { align: center middle; }
    KeysHelp > Vertical { width: 72; max-width: 100%; height: auto; max-height: 100%;
                          border: thick $primary; background: $surface; padding: 0 1; }
    KeysHelp VerticalScroll { height: auto; max-height: 100%; }
    KeysHelp .keys-hint { color: $text-muted; }
    """

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.sections = key_sections(screen)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys  [dim](↑↓ scroll · esc closes)[/]", classes="keys-hint")
            with VerticalScroll(id="keys-scroll"):
                yield Static(keys_table(self.sections), id="keys-table")

    def on_mount(self) -> None:
        self.query_one("#keys-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
