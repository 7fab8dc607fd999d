"""The Explain view of a finished run: where its model looks, one validation image at a time.

Opened from the results dialog (`x`). The App's engine calls load the run's model and validation
images once and explain one image per request in a worker (`tfbench.explain`): the top classes, a
Grad-CAM heat map over the image and the strongest feature maps of each layer. `n` / `p` step through
the images, `m` jumps to the next of the evaluation's most confident mistakes, `c` explains the next
of the top classes instead of the predicted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tfbench.errors import UserError
from tfbench.explain_view import explanation_renderable
from tfbench.messages import ExplanationReady, InsightFailed
from tfbench.widgets.picture_grid import palette_of


class ExplainDialog(ModalScreen):
    """Where a run's model looks on its validation images.

    Args:
        run_dir: the finished run.
        mistakes: validation indices worth a look first (the evaluation's confident mistakes).
    """

    DEFAULT_CSS = """
    ExplainDialog {
        align: center middle;
    }
    ExplainDialog #explain-box {
        width: 100%;
        height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ExplainDialog .title {
        text-style: bold;
    }
    ExplainDialog #explain-status {
        height: auto;
        color: $text-muted;
    }
    ExplainDialog #explain-error {
        height: auto;
        color: $error;
    }
    ExplainDialog #explain-scroll {
        height: 1fr;
    }
    ExplainDialog .hint {
        height: 1;
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("n", "step(1)", "Next image"),
        Binding("p", "step(-1)", "Previous image"),
        Binding("m", "mistake", "Next mistake"),
        Binding("c", "other_class", "Other class"),
        Binding("escape,x", "close", "Close"),
    ]

    def __init__(self, run_dir: Path, mistakes: list[int] | None = None) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.mistakes = list(mistakes or [])
        self.index = self.mistakes[0] if self.mistakes else 0
        self.class_rank = 0  # 0: the predicted class; k: the k-th next of the top classes
        self.explanation: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="explain-box"):
            yield Label(f"Explain: {self.run_dir.name}", classes="title")
            yield Static("", id="explain-status")
            yield Static("", id="explain-error")
            with VerticalScroll(id="explain-scroll"):
                yield Static("", id="explain-view")
            hint = "n/p image · c other class · esc close"
            yield Static(("m next mistake · " if self.mistakes else "") + hint, classes="hint")

    def on_mount(self) -> None:
        self._ask()

    def _ask(self) -> None:
        self.query_one("#explain-status", Static).update(f"validation sample {self.index}: explaining…")
        wanted = None
        if self.class_rank and self.explanation is not None:
            top = self.explanation.top
            wanted = top[self.class_rank % len(top)][0]
        self._explain(self.index, wanted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="explain")
    def _explain(self, index: int, class_name: str | None) -> None:
        calls = self.app.engine_calls  # type: ignore[attr-defined]
        try:
            explanation = calls.explain(self.run_dir, "validation", index, class_name)
        except UserError as exc:
            self.post_message(InsightFailed(str(exc)))
            return
        self.post_message(ExplanationReady(explanation, index))

    @on(ExplanationReady)
    def _ready(self, message: ExplanationReady) -> None:
        if message.index != self.index:
            return  # a later key already asked for another image
        self.explanation = message.explanation
        self.query_one("#explain-error", Static).update("")
        self.query_one("#explain-status", Static).update(f"explained in {message.explanation.seconds:.2f} s")
        self._draw()

    def _draw(self) -> None:
        if self.explanation is None:
            return
        width = max(20, self.query_one("#explain-scroll").size.width - 1)
        view = explanation_renderable(self.explanation, width, palette_of(self.app))
        self.query_one("#explain-view", Static).update(view)

    def on_resize(self) -> None:
        self._draw()

    @on(InsightFailed)
    def _failed(self, message: InsightFailed) -> None:
        self.query_one("#explain-status", Static).update("")
        self.query_one("#explain-error", Static).update(message.error)

    def on_worker_state_changed(self, event: Any) -> None:
        """An explanation that failed for another reason than a user mistake still says so."""
        from textual.worker import WorkerState

        if event.worker.group == "explain" and event.state == WorkerState.ERROR:
            self.query_one("#explain-error", Static).update(f"cannot explain: {event.worker.error}")

    def action_step(self, step: int) -> None:
        self.index = max(0, self.index + step)
        self.class_rank = 0
        self._ask()

    def action_mistake(self) -> None:
        if not self.mistakes:
            self.notify("no mistakes listed by the evaluation")
            return
        later = [i for i in self.mistakes if i > self.index]
        self.index = later[0] if later else self.mistakes[0]
        self.class_rank = 0
        self._ask()

    def action_other_class(self) -> None:
        self.class_rank += 1
        self._ask()

    def action_close(self) -> None:
        self.dismiss(None)
