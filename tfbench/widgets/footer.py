"""The key footer every screen shows: rebuilt only when the keys it shows change.

Textual's `Footer` rebuilds its keys whenever its screen says its bindings changed, which happens
every time the screen comes back into view and at most focus changes, even when the keys are
exactly those already shown. Each rebuild makes a dozen new `FooterKey` widgets, and every widget
Textual has drawn stays reachable for a while through a render cache of its own (a 1,024-entry
`lru_cache` on the widgets' styles caches, each entry holding the widget's rendered lines): an
F1↔F4 round trip made ~25 new widgets, the TUI grew by tens of MB until that cache was full, and a
switch spent most of its time building them. This footer rebuilds only when the keys differ.

Each new `FooterKey` also binds itself to the footer's `compact` setting, a binding kept on the
footer and pruned only when `compact` changes (Textual issue 6666); this footer drops the bindings
of removed keys after each rebuild.

Its keys fit its width: a screen's keys come in the key map's order, most used first, and those that
do not fit are hidden (not rebuilt, so resizing costs nothing) behind a last `? More keys`, which
opens the help screen listing every key. At 80 columns a footer used to end mid-word.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.widget import Widget
from textual.widgets import Footer, Static

WATCHERS = "__watchers"  # where Textual's reactive machinery keeps `watch()` callbacks on an object
PALETTE_ROOM = 12
"""Columns the command palette's key takes at the right ("▏^p palette")."""
KEY = "FooterKey"
"""The type of Textual's footer keys, as a selector (Textual exports the class only privately)."""


def key_width(key: Any) -> int:
    """Columns a footer key takes: the key, its description and the spaces around them."""
    return cell_len(key.key_display) + cell_len(key.description) + 3


class MoreKeys(Static):
    """`? More keys`, last on a footer that hid some keys: a click (or `?`) opens the help screen."""

    DEFAULT_CSS = """
    MoreKeys { width: auto; height: 1; background: $footer-background; color: $footer-key-foreground; }
    """

    def __init__(self) -> None:
        self.key_display, self.description = "?", "More keys"
        super().__init__(f" {self.key_display} {self.description} ", classes="-more", markup=False)

    def on_click(self) -> None:
        self.app.simulate_key("question_mark")


class KeyFooter(Footer):
    """A `Footer` that rebuilds only when its keys change, and lets go of the keys it replaced."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Footer's own arguments
        super().__init__(*args, **kwargs)
        self.shown: Hashable | None = None  # what the keys on show were built from

    def keys_to_show(self) -> Hashable:
        """Everything the footer's keys are built from: the screen's shown bindings and the footer's own settings."""
        bindings = tuple(
            (binding.key, binding.key_display, binding.description, binding.action, binding.group, enabled, tooltip)
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )
        return bindings, self.compact, self.show_command_palette, self.app.ENABLE_COMMAND_PALETTE

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        shown = self.keys_to_show()
        if shown == self.shown and self.children:
            return
        await super().recompose()
        self.shown = shown if self.children else None
        self.forget_removed_keys()
        if self.keys():
            palette = [key for key in self.query(KEY) if key.has_class("-command-palette")]
            await self.mount(MoreKeys(), before=palette[0]) if palette else await self.mount(MoreKeys())
            self.styles.grid_size_columns = (self.styles.grid_size_columns or 0) + 1
        self.fit_keys()

    def keys(self) -> list[Widget]:
        """The screen's keys on the footer, in order (not the palette's, not `? More keys`)."""
        return [k for k in self.query(KEY) if not k.has_class("-command-palette")]

    def fit_keys(self) -> None:
        """Show the keys that fit the footer's width, in order, and `? More keys` when some do not."""
        width = self.size.width or self.app.size.width
        keys = self.keys()
        widths = [key_width(key) for key in keys]
        room = width - PALETTE_ROOM
        more = list(self.query(MoreKeys))
        if sum(widths) > room and more:
            room -= key_width(more[0])
        used, fitting = 0, True
        for key, need in zip(keys, widths):
            fitting = fitting and used + need <= room
            used += need if fitting else 0
            key.display = fitting
        for key in more:
            key.display = not fitting

    def on_resize(self, event: events.Resize) -> None:
        self.fit_keys()

    def forget_removed_keys(self) -> int:
        """Drop the `compact` bindings of keys no longer in the footer.

        Returns:
            How many were dropped.
        """
        bindings = getattr(self, WATCHERS, {}).get("compact")
        if not bindings:
            return 0
        kept = [(node, callback) for node, callback in bindings if node.is_attached]
        dropped = len(bindings) - len(kept)
        bindings[:] = kept
        return dropped
