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
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.widgets import Footer

WATCHERS = "__watchers"  # where Textual's reactive machinery keeps `watch()` callbacks on an object


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
