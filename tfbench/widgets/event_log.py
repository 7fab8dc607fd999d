"""The event log pane: checkpoints, warnings, early stop, LR changes, in the order they came.

It draws the newest lines of `RunState.log` that fit, stamped with the time since the run
started, so a replayed log reads the same as it did live.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tfbench.figures import format_clock

LEVEL_STYLES = {"info": "", "warning": "yellow", "error": "bold red"}


def log_text(state, lines: int) -> Text:
    """The last `lines` log lines of a `RunState`."""
    text = Text()
    entries = list(state.log)[-max(1, lines) :]
    if not entries:
        text.append("no events yet", style="dim")
        return text
    start = state.started or (entries[0].time if entries else 0.0)
    for i, entry in enumerate(entries):
        if i:
            text.append("\n")
        text.append(f"+{format_clock(entry.time - start):>7} ", style="dim")
        text.append(entry.message, style=LEVEL_STYLES.get(entry.level, ""))
    return text


class EventLogPane(Static):
    """The newest run events that fit the pane."""

    DEFAULT_CSS = """
    EventLogPane {
        height: 1fr;
    }
    """

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self._shown_key: tuple | None = None

    def show(self, state) -> None:
        """Redraw when the log gained lines (or the pane was resized)."""
        rows = max(1, self.size.height or 6)
        last = state.log[-1] if state.log else None
        key = (len(state.log), id(last), rows)
        if key == self._shown_key:
            return
        self._shown_key = key
        self.update(log_text(state, rows), layout=False)  # its size is set by the screen
