"""The frame every workbench screen shares: header, screen tabs, footer, and syncing with the App."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import getters
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header, Static, Tab, Tabs

from tfbench.keymap import SCREENS
from tfbench.widgets.footer import KeyFooter
from tfbench.workbench import Workbench


class ScreenTabs(Tabs):
    """Tabs naming the workbench's screens; choosing one switches the App to it.

    It takes no focus: the function keys switch screens, so Tab moves between fields only.
    """

    can_focus = False
    if TYPE_CHECKING:
        app = getters.app(Workbench)

    def __init__(self, active: str) -> None:
        super().__init__(
            *[Tab(f"{s.label} {s.key.upper()}", id=f"tab-{s.name}") for s in SCREENS], active=f"tab-{active}"
        )
        self.screen_name = active

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        name = (event.tab.id or "").removeprefix("tab-")
        if name and name != self.screen_name:
            self.app.call_later(self.app.action_show, name)
            self.active = f"tab-{self.screen_name}"


def frame_top(screen_name: str) -> ComposeResult:
    """What every workbench screen starts with: the header and the screen tabs, `screen_name`'s active."""
    yield Header(icon="≡")
    yield ScreenTabs(screen_name)


class WorkbenchScreen(Screen):
    """A screen that shows part of the App's Experiment and edits it through `app.edit`.

    Subclasses compose their body in `compose_body` and redraw from `app.experiment` in `sync`,
    which the App calls after every edit, undo or redo; a screen coming back into view syncs too.
    """

    screen_name = ""
    if TYPE_CHECKING:
        app = getters.app(Workbench)

    def compose(self) -> ComposeResult:
        yield from frame_top(self.screen_name)
        yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def sync(self) -> None:
        """Redraw from the App's Experiment, keeping what the user is typing."""

    def on_screen_resume(self) -> None:
        self.sync()

    def show_field_error(self, widget: Static, location: str, message: str) -> None:
        """Show `message` under a field (hidden when empty) and keep the App's `form_errors` in step,
        so saving or training refuses while a field holds a value the Experiment did not take."""
        widget.update(message)
        widget.set_class(not message, "-empty")
        errors = self.app.form_errors
        if message:
            errors[location] = f"{location}: {message}"
        else:
            errors.pop(location, None)
