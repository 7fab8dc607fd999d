"""The "New study" dialog: a search space over the workbench's Experiment, then `tfbench tune` on it.

The space starts as the Experiment's own `[tune]` table when it has one, else as one row over the
learning rate. Each row is an Experiment path, a kind (float, log-float, int, choice) and its bounds
or choices, checked as it is typed by the study module's own `check_param` — the checks `tfbench
tune` makes, so what this dialog accepts that command accepts. Start checks the whole `[tune]`
table with `parse_tune` and calls the `start` function it was given (the App's, which launches
`tfbench tune`); any refusal is shown in the dialog, which stays open.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomllib
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from tfbench.errors import UserError
from tfbench.keymap import bindings
from tfbench.screens.dialogs import Dialog
from tfbench.spec import Experiment, experiment_from_dict

KINDS = ("float", "log-float", "int", "choice")
DIRECTIONS = (("direction from its name", "auto"), ("maximize", "max"), ("minimize", "min"))
DEFAULT_TRIALS = 20  # `[tune] trials`' own default
PLACEHOLDERS = {
    "float": "low, high[, step s]",
    "log-float": "low, high (above 0)",
    "int": "low, high[, step s]",
    "choice": "a, b, c",
}


def form_value(text: str) -> Any:
    """One comma-separated item as TOML reads it (`1e-3`, `64`, `true`, `"x"`), else the text itself."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def entry_of(kind: str, values: str) -> dict[str, Any]:
    """The `[tune.space]` entry a form row stands for: `kind` and its values (`8, 32, step 8`)."""
    parts = [v.strip() for v in values.split(",")] if values.strip() else []
    if kind == "choice":
        return {"choice": [form_value(v) for v in parts]}
    step = None
    last = re.fullmatch(r"step\s*(.*)", parts[-1]) if parts else None
    if last is not None:
        step, parts = form_value(last.group(1)), parts[:-1]
    entry: dict[str, Any] = {"int" if kind == "int" else "float": [form_value(v) for v in parts]}
    if kind == "log-float":
        entry["log"] = True
    if step is not None:
        entry["step"] = step
    return entry


def row_of(entry: Any) -> tuple[str, str]:
    """A form row's (kind, values text) for a preset's space entry."""
    if not isinstance(entry, dict):
        return "float", ""
    if "choice" in entry and isinstance(entry["choice"], list):
        return "choice", ", ".join(shown(v) for v in entry["choice"])
    kind = "int" if "int" in entry else "float"
    bounds = entry.get(kind)
    text = ", ".join(shown(v) for v in bounds) if isinstance(bounds, list) else ""
    if entry.get("step") is not None:
        text += f", step {shown(entry['step'])}"
    if kind == "float" and entry.get("log") is True:
        kind = "log-float"
    return kind, text


def shown(value: Any) -> str:
    """A value as a form row writes it (what `form_value` reads back): a plain word unquoted."""
    import tomli_w

    if isinstance(value, str) and "," not in value and form_value(value) == value:
        return value
    return tomli_w.dumps({"v": value})[4:].strip()


def suggested_rows(experiment: Experiment) -> list[tuple[str, str, str]]:
    """The rows the dialog opens with: the preset's space, else the learning rate a decade either way."""
    space = (experiment.tune or {}).get("space")
    if isinstance(space, dict) and space:
        return [(str(path), *row_of(entry)) for path, entry in space.items()]
    rate = experiment.to_dict().get("train", {}).get("optimizer", {}).get("learning_rate")
    if isinstance(rate, float) and rate > 0 and math.isfinite(rate):
        return [("train.optimizer.learning_rate", "log-float", f"{shown(rate / 10)}, {shown(rate * 10)}")]
    return [("", "float", "")]


def default_objective(experiment: Experiment) -> str:
    """The preset's objective, else validation accuracy for a model that reports accuracy, else `val_loss`."""
    objective = (experiment.tune or {}).get("objective")
    if isinstance(objective, str) and objective:
        return objective
    metrics = [m for m in experiment.train.metrics if isinstance(m, str)]
    return "val_accuracy" if any(m in ("accuracy", "auto") for m in metrics) else "val_loss"


class SpaceRow(Horizontal):
    """One parameter of the space: path, kind, values, a remove button; its error on the line below."""

    DEFAULT_CSS = """
    SpaceRow { height: auto; }
    SpaceRow .space-path { width: 3fr; }
    SpaceRow .space-kind { width: 13; }
    SpaceRow .space-values { width: 2fr; margin-left: 1; }
    SpaceRow .space-remove { min-width: 3; width: 3; margin-left: 1; }
    """

    def __init__(self, path: str = "", kind: str = "float", values: str = "") -> None:
        super().__init__()
        self.initial = (path, kind if kind in KINDS else "float", values)

    def compose(self) -> ComposeResult:
        path, kind, values = self.initial
        yield Input(path, placeholder="train.optimizer.learning_rate", classes="space-path", compact=True)
        yield Select([(k, k) for k in KINDS], value=kind, allow_blank=False, classes="space-kind", compact=True)
        yield Input(values, placeholder=PLACEHOLDERS[kind], classes="space-values", compact=True)
        yield Button("✕", classes="space-remove", compact=True, tooltip="remove this parameter")

    @property
    def path(self) -> str:
        return self.query_one(".space-path", Input).value.strip()

    @property
    def kind(self) -> str:
        return str(self.query_one(".space-kind", Select).value)

    def entry(self) -> dict[str, Any]:
        """The row as a `[tune.space]` entry."""
        return entry_of(self.kind, self.query_one(".space-values", Input).value)


class NewStudyDialog(Dialog):
    """Edit a search space and start `tfbench tune` on the Experiment; answers the study directory.

    Args:
        experiment: the workbench's Experiment (its `[tune]`, when it has one, fills the form).
        start: starts the study for an Experiment with its `[tune]` table and a worker count, and
            returns the study directory; a `UserError` it raises is shown in the dialog.
    """

    KEYS = "new-study"
    BINDINGS = bindings(KEYS)
    DEFAULT_CSS = """
    NewStudyDialog .dialog-box { width: 100; }
    NewStudyDialog #study-space { height: auto; max-height: 12; }
    NewStudyDialog .space-error { color: $error; height: auto; display: none; }
    NewStudyDialog .study-settings { height: auto; margin-top: 1; }
    NewStudyDialog .study-settings Label { margin: 0 1 0 0; }
    NewStudyDialog .study-settings Input { width: 8; margin-right: 2; }
    NewStudyDialog #study-objective { width: 1fr; }
    NewStudyDialog #study-direction { width: 26; }
    NewStudyDialog .dialog-hint { color: $text-muted; }
    """

    def __init__(self, experiment: Experiment, start: Callable[[Experiment, int], Path]) -> None:
        super().__init__()
        self.experiment = experiment
        self.start_study = start
        data = experiment.to_dict()
        data.pop("tune", None)
        self.resolved = data  # the Experiment each row is checked against
        self.row_errors: dict[SpaceRow, str] = {}

    def compose(self) -> ComposeResult:
        tune = self.experiment.tune or {}
        source = "the preset's [tune] space" if tune.get("space") else "parameters to search"
        with Vertical(classes="dialog-box"):
            yield Label(f"New study of {self.experiment.name}: {source}", classes="dialog-title", markup=False)
            yield Static("Experiment path · kind · bounds or choices (comma-separated)", classes="dialog-hint")
            with VerticalScroll(id="study-space"):
                for path, kind, values in suggested_rows(self.experiment):
                    yield SpaceRow(path, kind, values)
                    yield Static("", classes="space-error")
            with Horizontal(classes="study-settings"):
                yield Label("trials")
                yield Input(str(tune.get("trials", DEFAULT_TRIALS)), id="study-trials", type="integer", compact=True)
                yield Label("parallel")
                yield Input("1", id="study-parallel", type="integer", compact=True)
            with Horizontal(classes="study-settings"):
                yield Label("objective")
                yield Input(default_objective(self.experiment), id="study-objective", compact=True)
                direction = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}
                yield Select(
                    [(label, value) for label, value in DIRECTIONS],
                    value=direction.get(str(tune.get("direction")), "auto"),
                    allow_blank=False,
                    id="study-direction",
                    compact=True,
                )
            yield Static("", id="study-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add parameter (^n)", id="study-add", compact=True)
                yield Button("Cancel", id="study-cancel", compact=True)
                yield Button("Start", variant="primary", id="study-start", compact=True)

    def on_mount(self) -> None:
        for row in self.query(SpaceRow):
            self.check_row(row)
        self.query(".space-path").first().focus()

    # -- the space ----------------------------------------------------------------------------
    def check_row(self, row: SpaceRow) -> str:
        """Check one row as `tfbench tune` would and show its error under it ("" when it is fine)."""
        from tfbench.study.space import check_param

        error = ""
        if not row.path:
            error = "type an Experiment path, e.g. train.optimizer.learning_rate or model.layers[0].units"
        elif [r.path for r in self.query(SpaceRow)].count(row.path) > 1:
            error = f"{row.path} is in the space twice"
        else:
            try:
                check_param(row.path, row.entry(), self.resolved)
            except UserError as err:
                error = str(err)
        self.row_errors[row] = error
        label = self._error_label(row)
        if label is not None:
            label.update(error)
            label.display = bool(error)
        return error

    def _error_label(self, row: SpaceRow) -> Static | None:
        siblings = list(self.query_one("#study-space").children)
        index = siblings.index(row) if row in siblings else -1
        after = siblings[index + 1] if 0 <= index < len(siblings) - 1 else None
        return after if isinstance(after, Static) else None

    @on(Input.Changed, "SpaceRow Input")
    @on(Select.Changed, "SpaceRow Select")
    def _row_changed(self, event: Input.Changed | Select.Changed) -> None:
        row = next((a for a in event.control.ancestors if isinstance(a, SpaceRow)), None)
        if row is None or not row.is_mounted:
            return
        if isinstance(event, Select.Changed):
            row.query_one(".space-values", Input).placeholder = PLACEHOLDERS.get(str(event.value), "")
        for each in self.query(SpaceRow):  # a path typed twice is an error on both rows
            self.check_row(each)
        self.query_one("#study-error", Static).update("")

    def action_add_param(self) -> None:
        """Add an empty parameter row and focus its path."""
        space = self.query_one("#study-space")
        row = SpaceRow()
        space.mount(row, Static("", classes="space-error"))
        self.call_after_refresh(lambda: (row.query_one(".space-path", Input).focus(), self.check_row(row)))

    @on(Button.Pressed, "#study-add")
    def _add_pressed(self) -> None:
        self.action_add_param()

    @on(Button.Pressed, ".space-remove")
    def _remove_pressed(self, event: Button.Pressed) -> None:
        row = next((a for a in event.button.ancestors if isinstance(a, SpaceRow)), None)
        if row is None:
            return
        label = self._error_label(row)
        self.row_errors.pop(row, None)
        row.remove()
        if label is not None:
            label.remove()
        self.call_after_refresh(lambda: [self.check_row(r) for r in self.query(SpaceRow)])

    # -- starting -----------------------------------------------------------------------------
    def tune_table(self) -> dict[str, Any]:
        """The `[tune]` table of the form: the preset's sampler, pruner and seed kept, the rest from the form."""
        table = {k: v for k, v in (self.experiment.tune or {}).items() if k not in ("space", "direction")}
        trials = self.query_one("#study-trials", Input).value.strip()
        table["trials"] = int(trials) if trials.lstrip("-").isdigit() else trials
        table["objective"] = self.query_one("#study-objective", Input).value.strip()
        direction = self.query_one("#study-direction", Select).value
        if direction in ("max", "min"):
            table["direction"] = direction
        table["space"] = {row.path: row.entry() for row in self.query(SpaceRow)}
        return table

    def parallel(self) -> int:
        """The worker count (`--parallel`).

        Raises:
            UserError: not a whole number from 1.
        """
        text = self.query_one("#study-parallel", Input).value.strip()
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"expected a whole number of worker processes from 1, got {text!r}", "parallel")
        return int(text)

    @on(Button.Pressed, "#study-start")
    @on(Input.Submitted)
    def action_start(self) -> None:
        """Check the whole `[tune]` table as `tfbench tune` does, then start the study (or say why not)."""
        from tfbench.study.space import parse_tune

        error = self.query_one("#study-error", Static)
        rows = list(self.query(SpaceRow))
        if not rows:
            error.update("add a parameter to search (^n)")
            return
        problems = [e for e in (self.check_row(r) for r in rows) if e]
        if problems:
            error.update(f"fix the space first: {problems[0]}")
            return
        try:
            parallel = self.parallel()
            data = self.experiment.to_dict()
            data["tune"] = self.tune_table()
            experiment = experiment_from_dict(data)
            parse_tune(experiment)
            study_dir = self.start_study(experiment, parallel)
        except UserError as err:
            error.update(str(err))
            return
        self.dismiss(study_dir)

    @on(Button.Pressed, "#study-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)
