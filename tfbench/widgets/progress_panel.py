"""The run's headline: status, epoch and batch, elapsed and ETA, speed, the latest metrics.

Cheap to redraw (a few lines of text), so it may update with every batch message. It takes the
time "now" from its caller: a live view passes the wall clock, a replayed log passes the log's own
last event time, so a replay looks the same whenever it is drawn.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static

from tfbench.engine.status import KEPT_MODEL, RunStatus
from tfbench.figures import format_clock, format_number

NO_RUN = "no run yet: ctrl+r trains the Experiment set up on the Model, Data and Setup screens"
STATUS_STYLES = {
    "none": ("○", "NO RUN", "dim"),
    "waiting": ("…", "WAITING", "dim"),
    "running": ("▶", "RUNNING", "bold green"),
    "paused": ("⏸", "PAUSED", "bold yellow"),
    "completed": ("✔", "COMPLETED", "bold green"),
    "stopped": ("■", "STOPPED", "bold yellow"),
    RunStatus.EARLY_STOPPED: ("✔", "EARLY STOPPED", "bold cyan"),
    "failed": ("✖", "FAILED", "bold red"),
    "interrupted": ("✖", "INTERRUPTED", "bold red"),
}


def progress_bar(fraction: float, width: int = 20) -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = int(round(fraction * width))
    return "━" * filled + "╌" * (width - filled)


def progress_text(state, now: float | None, following: bool = True) -> Text:
    """The headline for a `RunState` at time `now` (None: the log's last event time).

    `following` is False while the screen has no run at all (nothing started, nothing watched).
    """
    if not following:
        text = Text()
        mark, label, style = STATUS_STYLES["none"]
        text.append(f" {mark} {label} ", style=f"reverse {style}")
        text.append(f"\n\n {NO_RUN}", style="dim")
        return text
    mark, label, style = STATUS_STYLES.get(state.status, ("?", state.status.upper(), "bold"))
    text = Text()
    text.append(f" {mark} {label} ", style=f"reverse {style}")
    text.append(f"  {state.name or 'run'}", style="bold")
    if state.epochs:
        text.append(f"   epoch {state.epoch}/{state.epochs}")
    if state.steps:
        text.append(f"   batch {state.step}/{state.steps}")
    if state.epochs:
        done = len(state.epoch_numbers) + (
            state.step / state.steps if state.steps and state.epoch > len(state.epoch_numbers) else 0.0
        )
        text.append(f"   {progress_bar(done / state.epochs)} {100 * done / state.epochs:3.0f}%")
    text.append("\n")
    ended = state.ended
    text.append(f" elapsed {format_clock(state.elapsed(now))}")
    text.append(f"   ETA {format_clock(None if ended or state.status == 'waiting' else state.eta())}")
    if state.samples_per_sec:
        text.append(f"   {state.samples_per_sec:,.0f} samples/s")
    if state.step_seconds:
        text.append(f"   {state.step_seconds * 1000:.1f} ms/step")
    logs = state.last_batch_logs if state.running else (state.final or state.last_batch_logs)
    if logs:
        shown = "  ".join(f"{k} {format_number(float(v))}" for k, v in list(logs.items())[:4])
        text.append(f"   {shown}", style="dim" if not state.running else "")
    text.append("\n")
    text.append_text(status_line(state))
    return text


def status_line(state) -> Text:
    """What the status means: the reason a run failed or stopped, the best epoch when it ended."""
    text = Text(" ")
    if state.status == "failed":
        text.append(f"failed: {state.reason or 'unknown reason'}", style="bold red")
    elif state.status == "interrupted":
        text.append(f"interrupted: {state.reason}", style="bold red")
    elif state.status == "paused":
        text.append("paused — press p to resume", style="yellow")
    elif state.ended:
        best = state.best or {}
        if best.get("monitor") and best.get("value") is not None:
            text.append(
                f"best {best['monitor']} {format_number(float(best['value']))} at epoch {best.get('epoch')}",
                style="bold",
            )
        if state.reason:
            text.append(f" · {state.reason}")
        if state.status in KEPT_MODEL:
            text.append(" · e export · v results", style="dim")
    elif state.status == "running":
        best = state.history.get("val_loss") or state.history.get("loss") or []
        finite = [(v, i) for i, v in enumerate(best) if v == v]
        if finite:
            value, index = min(finite)
            key = "val_loss" if "val_loss" in state.history else "loss"
            text.append(f"best so far {key} {format_number(value)} at epoch {state.epoch_numbers[index]}", style="dim")
    else:
        text.append("waiting for the runner…", style="dim")
    return text


class ProgressPanel(Static):
    """The headline of the train screen."""

    DEFAULT_CSS = """
    ProgressPanel {
        height: 3;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    following = True  # False while the screen has no run to show

    def __init__(self, now: Callable[[], float | None] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.now = now  # "now" for a running run's elapsed time (None: the log's last event)

    def show(self, state) -> None:
        # Its height is fixed, so no layout pass: this runs with every message from the runner.
        now = self.now() if self.now is not None and state.running else None
        self.update(progress_text(state, now, self.following), layout=False)
