"""The train screen's side note: parameters, data sizes, the learning rate and the view's toggles."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static

from tfbench.figures import format_number


def current_learning_rate(state) -> float | None:
    """A run's latest finite learning rate, else the one its Experiment's optimizer set."""
    lr = next((v for v in reversed(state.learning_rates) if math.isfinite(v)), None)
    if lr is not None:
        return lr
    optimizer = (state.experiment.get("train") or {}).get("optimizer")
    return optimizer.get("learning_rate") if isinstance(optimizer, dict) else None


def run_info_text(state, flags: list[tuple[str, bool]]) -> Text:
    """The note for a `RunState`, ending with the toggles (`log:off smooth:on …`)."""
    text = Text()
    if state.model.get("total_params") is not None:
        text.append(f"{int(state.model['total_params']):,} parameters\n")
    sizes = (state.data or {}).get("sizes") or {}
    if sizes:
        text.append(" · ".join(f"{k} {v:,}" for k, v in sizes.items() if isinstance(v, int)) + "\n")
    lr = current_learning_rate(state)
    if lr is not None:
        text.append(f"learning rate {format_number(float(lr))}\n")
    text.append(" ".join(f"{name}:{'on' if value else 'off'}" for name, value in flags), style="dim")
    return text


class RunInfo(Static):
    """The side note; `flags` are the view's toggles, set by the screen before `show`."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.flags: list[tuple[str, bool]] = []
        self._shown = ""

    def show(self, state) -> None:
        """Redraw when the note changed (most messages change nothing here: no layout then)."""
        text = run_info_text(state, self.flags)
        if text.plain != self._shown:
            self._shown = text.plain
            self.update(text)
