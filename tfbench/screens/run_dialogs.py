"""The train screen's dialogs: edit a running run, export a finished one, show its results.

Each is a `RunDialog` over the Train screen. No TensorFlow here: the export runs in a worker that
imports `tfbench.export` when it starts, and the results come from `tfbench.evaluation`'s own
renderables (the same tables `tfbench predict` prints).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from tfbench.engine.events import RunState
from tfbench.export.formats import format_names, quantization_names
from tfbench.figures import format_number
from tfbench.keymap import bindings


class RunDialog(ModalScreen):
    """A box over the Train screen: a title, its content and buttons; Escape, Close or Cancel
    dismisses it with no answer."""

    DEFAULT_CSS = """
    RunDialog {
        align: center middle;
    }
    RunDialog #dialog {
        width: 80%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    RunDialog #dialog .title {
        text-style: bold;
        margin-bottom: 1;
    }
    RunDialog #dialog .error {
        color: $error;
        height: auto;
    }
    RunDialog #dialog .buttons {
        height: auto;
        margin-top: 1;
    }
    RunDialog #dialog .buttons Button {
        margin-right: 2;
    }
    """

    KEYS = "run-dialog"
    BINDINGS = bindings(KEYS)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#close")
    @on(Button.Pressed, "#cancel")
    def _close(self) -> None:
        self.dismiss(None)


class EditRunDialog(RunDialog):
    """Change a running run's learning rate or total epochs (answers the changes, or None)."""

    DEFAULT_CSS = """
    EditRunDialog #dialog {
        width: 54;
        height: auto;
    }
    """

    KEYS = "edit-run"
    BINDINGS = bindings(KEYS)

    def __init__(self, learning_rate: float | None, epochs: int) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.epochs = epochs

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Edit the running run", classes="title")
            yield Label("learning rate")
            yield Input(format_number(self.learning_rate) if self.learning_rate else "", id="lr")
            yield Label("epochs (total)")
            yield Input(str(self.epochs or ""), id="epochs", type="integer")
            yield Static("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        changes: dict[str, Any] = {}
        lr_text = self.query_one("#lr", Input).value.strip()
        epochs_text = self.query_one("#epochs", Input).value.strip()
        try:
            if lr_text:
                lr = float(lr_text)
                if not (lr > 0 and math.isfinite(lr)):
                    raise ValueError
                if self.learning_rate is None or not math.isclose(lr, self.learning_rate, rel_tol=1e-6):
                    changes["learning_rate"] = lr
        except ValueError:
            self.query_one("#error", Static).update("learning rate: a positive number, e.g. 3e-4")
            return
        if epochs_text:
            epochs = int(epochs_text)
            if epochs < 1:
                self.query_one("#error", Static).update("epochs: at least 1")
                return
            if epochs != self.epochs:
                changes["epochs"] = epochs
        self.dismiss(changes)


class ExportDialog(RunDialog):
    """Export a finished run's model in the chosen formats, or in every format × quantisation, and
    show the verification: the same tables `tfbench export` prints, from the same `report.json`."""

    DEFAULT_CSS = """
    ExportDialog #dialog {
        width: 100%;
        height: 100%;
        padding: 0 1;
    }
    ExportDialog #dialog .title {
        margin-bottom: 0;
    }
    ExportDialog #controls {
        height: 5;
    }
    ExportDialog #formats {
        width: 24;
        height: 5;
        border: none;
        padding: 0;
    }
    ExportDialog #quantization-box {
        width: 1fr;
        height: 5;
        padding: 0 1;
    }
    ExportDialog #quantization {
        width: 100%;
    }
    ExportDialog #actions {
        width: 14;
        height: 5;
    }
    ExportDialog #actions Button {
        width: 14;
        min-width: 14;
        height: 1;
        border: none;
        margin: 0 0 1 0;
    }
    ExportDialog #report-box {
        height: 1fr;
    }
    """

    KEYS = "export"
    BINDINGS = bindings(KEYS)

    def __init__(self, run_dir: Path, formats: list[str] | None = None, quantization: str = "none") -> None:
        super().__init__()
        self.run_dir = run_dir
        self.formats = [f for f in (formats or ["keras"]) if f in format_names()] or ["keras"]
        self.quantization = quantization if quantization in quantization_names() else "none"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Export {self.run_dir.name}", classes="title")
            with Horizontal(id="controls"):
                yield SelectionList[str](*[(f, f, f in self.formats) for f in format_names()], id="formats")
                with Vertical(id="quantization-box"):
                    yield Label("quantisation")
                    yield Select(
                        [(q, q) for q in quantization_names()],
                        value=self.quantization,
                        allow_blank=False,
                        id="quantization",
                    )
                with Vertical(id="actions"):
                    yield Button("Export", variant="primary", id="export")
                    yield Button("Export all", id="export-all")
                    yield Button("Close", id="close")
            with VerticalScroll(id="report-box"):
                yield Static(self._last_matrix(), id="report")

    def _last_matrix(self) -> Any:
        """The run's last `export --all` matrix, if it has one (read from report.json, no TensorFlow)."""
        from tfbench.export.report import matrix_table, read_matrix
        from tfbench.rundir import EXPORTS_DIR

        rows = read_matrix(self.run_dir / EXPORTS_DIR)
        return matrix_table(rows) if rows else "Export the ticked formats, or every format × quantisation (a)."

    def _busy(self, text: str) -> None:
        self.query_one("#report", Static).update(text)
        self.query_one("#export", Button).disabled = True
        self.query_one("#export-all", Button).disabled = True

    @on(Button.Pressed, "#export")
    def _export_pressed(self) -> None:
        formats = list(self.query_one("#formats", SelectionList).selected)
        quantize = str(self.query_one("#quantization", Select).value)
        if not formats:
            self.query_one("#report", Static).update("choose at least one format")
            return
        self._busy(f"exporting {', '.join(formats)}…")
        self._export(formats, quantize)

    @on(Button.Pressed, "#export-all")
    def action_export_all(self) -> None:
        if self.query_one("#export-all", Button).disabled:
            return
        self._busy("exporting every format × quantisation…")
        self._export_all()

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, formats: list[str], quantize: str) -> None:
        """Worker: every chosen format in one call (the model and data are loaded once)."""
        from tfbench.export import export_run  # TensorFlow: imported only when exporting
        from tfbench.export.formats import takers
        from tfbench.export.report import report_table

        failed: dict[str, str] = {}
        usable = quantize if set(takers(quantize)) & set(formats) else "none"
        try:
            reports = export_run(
                self.run_dir, formats, usable, on_error=lambda fmt, exc: failed.setdefault(fmt, str(exc))
            )
        except Exception as exc:  # a UserError (no model, unwritable folder) or a failed conversion
            self.app.call_from_thread(self._show_report, f"export failed: {exc}")
            return
        parts: list[Any] = [report_table(reports)] if reports else []
        parts += [Text(f"✗ {fmt}: {reason}", style="red") for fmt, reason in failed.items()]
        self.app.call_from_thread(self._show_report, Group(*parts))

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export_all(self) -> None:
        """Worker: the format × quantisation matrix, as `tfbench export --all` makes it."""
        from tfbench.export.matrix import export_all  # TensorFlow: imported only when exporting
        from tfbench.export.report import matrix_table

        def progress(key: str) -> None:
            self.app.call_from_thread(self.query_one("#report", Static).update, f"exporting {key}…")

        try:
            rows = export_all(self.run_dir, progress=progress)
        except Exception as exc:  # a UserError (no model, unwritable folder)
            self.app.call_from_thread(self._show_report, f"export failed: {exc}")
            return
        self.app.call_from_thread(self._show_report, matrix_table(rows))

    def _show_report(self, shown: Any) -> None:
        self.query_one("#report", Static).update(shown)
        self.query_one("#export", Button).disabled = False
        self.query_one("#export-all", Button).disabled = False


class ResultsDialog(RunDialog):
    """A finished run's best epoch and metrics, and for classifiers the evaluation; `x` explains its images."""

    DEFAULT_CSS = """
    ResultsDialog #results-box {
        height: 1fr;
    }
    ResultsDialog.-narrow #dialog {
        width: 100%;
        height: 100%;
        padding: 0 1;
    }
    ResultsDialog.-narrow #dialog .title {
        margin-bottom: 0;
    }
    ResultsDialog.-narrow #dialog .buttons {
        margin-top: 0;
    }
    ResultsDialog.-narrow #dialog .buttons Button {
        height: 1;
        border: none;
    }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    """Below 100 columns the results take the whole screen and its buttons one line, to leave its content room."""

    KEYS = "results"
    BINDINGS = bindings(KEYS)

    def __init__(
        self, state: RunState, evaluation: dict[str, Any] | None, note: str = "", run_dir: Path | None = None
    ) -> None:
        super().__init__()
        self.state = state
        self.evaluation = evaluation
        self.note = note
        self.run_dir = run_dir

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Results: {self.state.name or 'run'}", classes="title")
            with VerticalScroll(id="results-box"):
                self._drawn = self.evaluation
                yield Static(results_renderable(self.state, self.evaluation, self.note), id="results")
            with Horizontal(classes="buttons"):
                yield Button("Explain (x)", id="explain")
                yield Button("Close", id="close")

    @on(Button.Pressed, "#explain")
    def action_explain(self) -> None:
        """Where the model looks on the validation images, its confident mistakes first."""
        from tfbench.screens.explain_dialog import ExplainDialog

        run_dir = self.run_dir or (self.evaluation or {}).get("run_dir")
        if run_dir is None:
            self.notify("no run to explain", severity="warning")
            return
        mistakes = [int(m["index"]) for m in (self.evaluation or {}).get("mistakes", [])]
        self.app.push_screen(ExplainDialog(Path(run_dir), mistakes))

    def on_mount(self) -> None:
        if self.evaluation is not self._drawn:  # it came while the dialog was being built
            self._draw()

    def show_evaluation(self, evaluation: dict[str, Any]) -> None:
        """Show an evaluation that has just come, however far the dialog has got with building itself."""
        self.evaluation, self.note = evaluation, ""
        self._draw()

    def _draw(self) -> None:
        for results in self.query("#results").results(Static):  # none yet: compose or on_mount draws it
            results.update(results_renderable(self.state, self.evaluation, self.note))
            self._drawn = self.evaluation


def results_renderable(state: RunState, evaluation: dict[str, Any] | None, note: str = ""):
    """The results dialog's content: the run's summary, then the evaluation as `tfbench predict` shows it."""
    head = run_summary(state, note)
    if not evaluation:
        return head
    from rich.console import Group

    from tfbench.evaluation import renderables

    return Group(head, *renderables(evaluation))


def run_summary(state: RunState, note: str = "") -> Text:
    """The best epoch with its metrics, the final metrics, and a note (e.g. "evaluating…")."""
    text = Text()
    best = state.best or {}
    if best.get("epoch"):
        text.append(f"best epoch {best.get('epoch')}", style="bold")
        if best.get("value") is not None:
            text.append(f": {best.get('monitor')} {format_number(float(best['value']))}")
        text.append("\n")
    if state.best and best.get("epoch") in state.epoch_numbers:
        index = state.epoch_numbers.index(best["epoch"])
        metrics = "  ".join(f"{k} {format_number(v[index])}" for k, v in state.history.items())
        text.append(f"  {metrics}\n")
    if state.final:
        text.append("final: " + "  ".join(f"{k} {format_number(float(v))}" for k, v in state.final.items()) + "\n")
    if note:
        text.append(f"\n{note}\n", style="dim")
    return text
