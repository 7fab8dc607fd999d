"""The augmentation preview: a sample and eight variants through the model's own augmentation layers.

Opened from the Model and Data screens (`g`). The App's engine calls build the stack's leading
augmentation layers and run them in a worker (`tfbench.augment_preview`); `r` rolls new variants
(seeded: the same roll always shows the same pictures), `n` / `p` take the next or previous sample.
After the first preview the worker traces the layers, so later rolls come back at once.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tfbench.errors import UserError
from tfbench.messages import AugmentationPreviewed, InsightFailed
from tfbench.widgets.picture_grid import PictureGrid, Shown

SAMPLES = 8  # the preview samples `n` / `p` cycle through


def preview_pictures(preview: Any) -> list[Shown]:
    """The sample, then its variants, all in the sample's value range (so a brightness change shows)."""
    shown = [Shown(preview.original, "sample", preview.value_range)]
    shown += [Shown(v, f"#{i + 1}", preview.value_range) for i, v in enumerate(preview.variants)]
    return shown


def status_line(preview: Any, index: int) -> str:
    """`sample 1 · roll 0 (seed 42) · RandomFlip(mode=horizontal) → RandomRotation(factor=0.1)`."""
    return f"sample {index + 1} · roll {preview.roll} (seed {preview.seed}) · " + " → ".join(preview.layers)


class AugmentDialog(ModalScreen):
    """Eight variants of a training sample, as the model's augmentation layers make them in an epoch."""

    DEFAULT_CSS = """
    AugmentDialog {
        align: center middle;
    }
    AugmentDialog #augment-box {
        width: 100%;
        height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    AugmentDialog .title {
        text-style: bold;
    }
    AugmentDialog #augment-status {
        height: auto;
        color: $text-muted;
    }
    AugmentDialog #augment-error {
        height: auto;
        color: $error;
    }
    AugmentDialog .hint {
        dock: bottom;
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("r", "reroll", "Re-roll"),
        Binding("n", "sample(1)", "Next sample"),
        Binding("p", "sample(-1)", "Previous sample"),
        Binding("escape,g", "close", "Close"),
    ]

    def __init__(self, experiment: Any) -> None:
        super().__init__()
        self.experiment = experiment
        self.index = 0
        self.roll = 0
        self.preview: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="augment-box"):
            yield Label("Augmentation preview", classes="title")
            yield Static("previewing…", id="augment-status")
            yield Static("", id="augment-error")
            yield PictureGrid(id="augment-pictures")
            yield Static("r re-roll · n/p next/previous sample · esc close", classes="hint")

    def on_mount(self) -> None:
        self._ask()

    def _ask(self) -> None:
        self.query_one("#augment-status", Static).update(f"sample {self.index + 1} · roll {self.roll}: previewing…")
        self._preview(self.experiment, self.index, self.roll)

    @work(thread=True, exclusive=True, exit_on_error=False, group="augment")
    def _preview(self, experiment: Any, index: int, roll: int) -> None:
        calls = self.app.engine_calls  # type: ignore[attr-defined]
        try:
            preview = calls.augment(experiment, index, roll)
        except UserError as exc:
            self.post_message(InsightFailed(str(exc)))
            return
        self.post_message(AugmentationPreviewed(preview, index))
        calls.ready_rerolls(experiment)  # traced now, while the pictures are looked at

    @on(AugmentationPreviewed)
    def _previewed(self, message: AugmentationPreviewed) -> None:
        if message.index != self.index or message.preview.roll != self.roll:
            return  # a later key already asked for another
        self.preview = message.preview
        self.query_one("#augment-error", Static).update("")
        self.query_one("#augment-status", Static).update(status_line(message.preview, message.index))
        self.query_one(PictureGrid).show(preview_pictures(message.preview))

    @on(InsightFailed)
    def _failed(self, message: InsightFailed) -> None:
        self.query_one("#augment-status", Static).update("")
        self.query_one("#augment-error", Static).update(message.error)

    def on_worker_state_changed(self, event: Any) -> None:
        """A preview that failed for another reason than a user mistake still says so."""
        from textual.worker import WorkerState

        if event.worker.group == "augment" and event.state == WorkerState.ERROR:
            self.query_one("#augment-error", Static).update(f"no preview: {event.worker.error}")

    def action_reroll(self) -> None:
        self.roll += 1
        self._ask()

    def action_sample(self, step: int) -> None:
        self.index = (self.index + step) % SAMPLES
        self._ask()

    def action_close(self) -> None:
        self.dismiss(None)
