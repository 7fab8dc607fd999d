"""The key footer every screen shows, letting go of the keys it has replaced.

Textual's `Footer` rebuilds its keys whenever the active bindings change (every screen switch,
most focus changes), and each new `FooterKey` binds itself to the footer's `compact` setting. That
binding is kept on the footer and only pruned when `compact` changes, which in this App it never
does, so every key ever shown stayed reachable with its styles and render caches: about 1.4 MB
per F1↔F4 switch (Textual issue 6666). This footer drops the bindings of removed keys after each
rebuild.
"""

from __future__ import annotations

from textual.widgets import Footer

WATCHERS = "__watchers"  # where Textual's reactive machinery keeps `watch()` callbacks on an object


class KeyFooter(Footer):
    """A `Footer` whose memory does not grow with the number of times its keys were rebuilt."""

    async def recompose(self) -> None:
        await super().recompose()
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
