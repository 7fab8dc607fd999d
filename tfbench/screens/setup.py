"""Training setup: optimizer and schedule with their forms, loss, metrics, callbacks, run switches, export.

Losses and metrics on offer fit the data's label kind (the App describes the data in a worker);
the one in the Experiment is always offered too, so nothing is hidden from the user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from tfbench.export.formats import format_names, format_quantizations
from tfbench.keymap import bindings
from tfbench.screens.frame import WorkbenchScreen
from tfbench.widgets.form import ParamForm, format_value

if TYPE_CHECKING:
    from tfbench.spec import Experiment, TrainSpec

LOSSES_BY_LABEL = {
    "categorical": [
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        "categorical_focal_crossentropy",
        "kl_divergence",
        "categorical_hinge",
    ],
    "binary": ["binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge"],
    "regression": [
        "mean_squared_error",
        "mean_absolute_error",
        "huber",
        "log_cosh",
        "mean_squared_logarithmic_error",
        "mean_absolute_percentage_error",
        "poisson",
    ],
}
METRICS_BY_LABEL = {
    "categorical": [
        "accuracy",
        "sparse_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
        "categorical_accuracy",
        "f1_score",
    ],
    "binary": ["accuracy", "binary_accuracy", "auc", "precision", "recall"],
    "regression": ["mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "r2_score"],
}
RUN_FIELDS = (("epochs", "Epochs", "int"), ("seed", "Seed", "int"), ("steps_per_execution", "Steps per call", "int"))
CHOICES = {
    "mixed_precision": ("Mixed precision", ("off", "mixed_float16", "mixed_bfloat16")),
    "jit_compile": ("XLA (jit_compile)", ("auto", "true", "false")),
    "strategy": ("Strategy", ("auto", "default", "mirrored", "multi_worker")),
}


def offered(kind: str, by_label: dict[str, list[str]], label_kind: str | None, current: list[str]) -> list[str]:
    """The names to offer: those fitting the label kind (all of them when it is unknown) plus current."""
    from tfbench import catalog

    if label_kind in by_label:
        names = [n for n in by_label[label_kind] if catalog.get(kind, n) is not None]
    else:
        names = sorted({n for names in by_label.values() for n in names if catalog.get(kind, n) is not None})
    return ["auto"] + [n for n in current if n not in names and n != "auto"] + names


def _name(value: Any) -> str:
    return value if isinstance(value, str) else value.type


def callback_line(component) -> str:
    """`EarlyStopping (monitor=val_loss, patience=5)`."""
    args = ", ".join(f"{k}={format_value(v)}" for k, v in component.args.items())
    return f"{component.type} ({args})" if args else component.type


class SetupScreen(WorkbenchScreen):
    """How the model is trained and what is exported when a run ends."""

    screen_name = "setup"
    CSS_PATH = "setup.tcss"
    KEYS = "setup"
    BINDINGS = bindings(KEYS)

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, ParamForm | None] = {"optimizer": None, "schedule": None, "callback": None}
        self._made = 0
        self.callback_index = 0

    def compose_body(self) -> ComposeResult:

        # Every select starts at the Experiment's value: a select announces its first value when
        # it mounts, and that must not read as the user choosing something else.
        exp = self.app.experiment
        train = exp.train
        with Horizontal(id="setup"):
            with VerticalScroll(id="setup-left"):
                yield from self.compose_left(train)
            with VerticalScroll(id="setup-right"):
                yield from self.compose_right(exp)

    def compose_left(self, train) -> ComposeResult:
        """Optimizer, schedule, loss and metrics."""
        from tfbench import catalog

        yield Label("Optimizer", classes="section")
        yield Select(
            [(n, n) for n in catalog.names("optimizers")],
            allow_blank=False,
            value=train.optimizer.type,
            id="optimizer-type",
            compact=True,
        )
        yield Vertical(id="optimizer-box", classes="form-box")
        yield Label("Learning-rate schedule", classes="section")
        yield Select(
            [(n, n) for n in catalog.names("schedules")],
            prompt="(none)",
            value=train.schedule.type if train.schedule else Select.NULL,
            id="schedule-type",
            compact=True,
        )
        yield Vertical(id="schedule-box", classes="form-box")
        yield Label("Loss", classes="section")
        loss = _name(train.loss)
        yield Select(
            [(n, n) for n in dict.fromkeys(["auto", loss])],
            allow_blank=False,
            value=loss,
            id="loss",
            compact=True,
        )
        yield Static("", id="loss-note", classes="note")
        yield Label("Metrics", classes="section")
        yield SelectionList(id="metrics", compact=True)

    def compose_right(self, exp) -> ComposeResult:
        """Callbacks, the run's settings and the export."""
        from tfbench import catalog

        train = exp.train
        yield Label("Callbacks", classes="section")
        yield OptionList(id="callbacks", compact=True)
        yield Select(
            [(n, n) for n in catalog.names("callbacks")],
            prompt="Add a callback…",
            id="callback-add",
            compact=True,
        )
        yield Vertical(id="callback-box", classes="form-box")
        yield Label("Run", classes="section")
        for name, label, _ in RUN_FIELDS:
            with Horizontal(classes="run-row"):
                yield Label(label, classes="run-label")
                yield Input(id=f"run-{name}", compact=True)
            yield Static("", id=f"run-error-{name}", classes="run-error -empty")
        for name, (label, choices) in CHOICES.items():
            value = getattr(train, name)
            with Horizontal(classes="run-row"):
                yield Label(label, classes="run-label")
                yield Select(
                    [(c, c) for c in choices],
                    allow_blank=False,
                    id=f"run-{name}",
                    value=format_value(value) if isinstance(value, bool) else str(value),
                    compact=True,
                )
        yield Label("Export", classes="section", id="export-title")
        yield SelectionList(
            *[(f, f, f in exp.export.formats) for f in format_names()], id="export-formats", compact=True
        )
        with Horizontal(classes="run-row"):
            yield Label("TFLite quantisation", classes="run-label")
            yield Select(
                [(q, q) for q in format_quantizations("tflite")],
                allow_blank=False,
                id="export-quant",
                value=exp.export.tflite_quantization,
                compact=True,
            )

    def on_mount(self) -> None:
        self.sync()
        self.query_one("#optimizer-type", Select).focus(scroll_visible=False)  # no scroll animation

    # -- drawing ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Redraw every section from the app's experiment, leaving a focused input as it is."""
        if not self.is_mounted:
            return
        exp = self.app.experiment
        train = exp.train
        label_kind = getattr(self.app.data_info, "label_kind", None)
        self._set_select("#optimizer-type", train.optimizer.type)
        self._sync_form("optimizer", "optimizers", train.optimizer, "train.optimizer")
        self._set_select("#schedule-type", train.schedule.type if train.schedule else Select.NULL)
        self._sync_form("schedule", "schedules", train.schedule, "train.schedule")
        self._sync_loss(train, label_kind)
        self._sync_metrics(train, label_kind)
        self._sync_callbacks(train)
        self._sync_run_fields(train)
        self._sync_export(exp)

    def _sync_loss(self, train: TrainSpec, label_kind: str | None) -> None:
        """Offer the losses that fit the data's labels, keeping the chosen one."""
        loss = _name(train.loss)
        loss_select = self.query_one("#loss", Select)
        options = offered("losses", LOSSES_BY_LABEL, label_kind, [loss])
        with loss_select.prevent(Select.Changed):
            loss_select.set_options([(n, n) for n in options])
            loss_select.value = loss
        note = f"offering losses for {label_kind} labels" if label_kind else "losses for every label kind"
        self.query_one("#loss-note", Static).update(note)

    def _sync_metrics(self, train: TrainSpec, label_kind: str | None) -> None:
        """Offer the metrics that fit the labels; rebuild the list only when the offer changes."""
        metrics = [_name(m) for m in train.metrics]
        listing = self.query_one("#metrics", SelectionList)
        wanted = offered("metrics", METRICS_BY_LABEL, label_kind, metrics)
        if [listing.get_option_at_index(i).value for i in range(listing.option_count)] != wanted:
            with listing.prevent(SelectionList.SelectedChanged):
                listing.clear_options()
                listing.add_options([(n, n, n in metrics) for n in wanted])
        elif sorted(listing.selected) != sorted(metrics):
            with listing.prevent(SelectionList.SelectedChanged):
                listing.deselect_all()
                for m in metrics:
                    listing.select(m)

    def _sync_callbacks(self, train: TrainSpec) -> None:
        """List the callbacks (keeping the highlight) and show the chosen one's form."""
        callbacks = self.query_one("#callbacks", OptionList)
        lines = [callback_line(c) for c in train.callbacks]
        if [str(callbacks.get_option_at_index(i).prompt) for i in range(callbacks.option_count)] != lines:
            highlighted = callbacks.highlighted
            callbacks.clear_options()
            callbacks.add_options([Option(line) for line in lines] or [Option("(none)", disabled=True)])
            if train.callbacks:
                callbacks.highlighted = min(highlighted or 0, len(train.callbacks) - 1)
        if train.callbacks:
            self.callback_index = min(self.callback_index, len(train.callbacks) - 1)
            self._sync_form(
                "callback", "callbacks", train.callbacks[self.callback_index], f"train.callbacks[{self.callback_index}]"
            )
        else:
            self._sync_form("callback", "callbacks", None, "train.callbacks")

    def _sync_run_fields(self, train: TrainSpec) -> None:
        """Fill the run inputs (not the one being typed in) and the run choices."""
        for name, _, _ in RUN_FIELDS:
            widget = self.query_one(f"#run-{name}", Input)
            value = getattr(train, name)
            text = "" if value is None else str(value)
            if not widget.has_focus and widget.value != text:
                with widget.prevent(Input.Changed):
                    widget.value = text
        for name in CHOICES:
            value = getattr(train, name)
            self._set_select(f"#run-{name}", format_value(value) if isinstance(value, bool) else str(value))

    def _sync_export(self, exp: Experiment) -> None:
        """Tick the export formats and set the TFLite quantization."""
        formats = self.query_one("#export-formats", SelectionList)
        if sorted(formats.selected) != sorted(exp.export.formats):
            with formats.prevent(SelectionList.SelectedChanged):
                formats.deselect_all()
                for f in exp.export.formats:
                    formats.select(f)
        self._set_select("#export-quant", exp.export.tflite_quantization)

    def _set_select(self, selector: str, value: Any) -> None:
        select = self.query_one(selector, Select)
        if select.value != value:
            with select.prevent(Select.Changed):
                select.value = value

    def _sync_form(self, slot: str, kind: str, component, location: str) -> None:
        box = self.query_one(f"#{slot}-box", Vertical)
        form = self.forms[slot]
        if component is None:
            if form is not None or not box.children:
                self.forms[slot] = None
                box.remove_children()
            return
        if form is not None and form.location == location and form.entry_name == component.type:
            if form.args == component.args or form.errors:
                return
        box.remove_children()
        self._made += 1
        form = ParamForm(
            kind, component.type, component.args, location, id=f"{slot}-form-{self._made}", classes=f"{slot}-form"
        )
        self.forms[slot] = form
        box.mount(form)

    # -- edits --------------------------------------------------------------------------------
    def _edit(self, change, merge: str | None = None) -> None:
        error = self.app.edit(change, merge)
        if error is not None:
            self.notify(str(error), severity="error", timeout=8)

    @on(Select.Changed, "#optimizer-type")
    def _optimizer_type(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or event.value == self.app.experiment.train.optimizer.type:
            return
        self._edit(lambda d: d["train"].__setitem__("optimizer", {"type": event.value}))

    @on(Select.Changed, "#schedule-type")
    def _schedule_type(self, event: Select.Changed) -> None:
        from tfbench import catalog

        current = self.app.experiment.train.schedule
        if event.value is Select.NULL:
            if current is not None:
                self._edit(lambda d: d["train"].pop("schedule", None))
            return
        if current is not None and current.type == event.value:
            return
        entry = catalog.get("schedules", str(event.value))
        if entry is None:  # the choices are the catalog's
            return
        args = {
            p.name: _schedule_start(p.name)
            for p in entry.params.values()
            if p.required and _schedule_start(p.name) is not None
        }
        self._edit(lambda d: d["train"].__setitem__("schedule", {"type": event.value, **args}))

    @on(ParamForm.Changed)
    def _form_changed(self, event: ParamForm.Changed) -> None:
        form = event.form
        component = {"type": form.entry_name, **event.args}
        location = form.location
        if location == "train.optimizer":
            change = lambda d: d["train"].__setitem__("optimizer", component)  # noqa: E731
        elif location == "train.schedule":
            change = lambda d: d["train"].__setitem__("schedule", component)  # noqa: E731
        else:
            index = int(location.split("[")[1].rstrip("]"))
            change = lambda d: d["train"]["callbacks"].__setitem__(index, component)  # noqa: E731
        self._edit(change, merge=f"{location}.{event.field}")

    @on(Select.Changed, "#loss")
    def _loss(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or event.value == _name(self.app.experiment.train.loss):
            return
        self._edit(lambda d: d["train"].__setitem__("loss", event.value))

    @on(SelectionList.SelectedChanged, "#metrics")
    def _metrics(self, event: SelectionList.SelectedChanged) -> None:
        chosen = list(event.selection_list.selected)
        keep = [m for m in self.app.experiment.to_dict()["train"]["metrics"] if not isinstance(m, str) or m in chosen]
        names = [_name_of_plain(m) for m in keep]
        metrics = keep + [m for m in chosen if m not in names]
        self._edit(lambda d: d["train"].__setitem__("metrics", metrics))

    @on(OptionList.OptionHighlighted, "#callbacks")
    def _callback_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        callbacks = self.app.experiment.train.callbacks
        if event.option_index < len(callbacks) and event.option_index != self.callback_index:
            self.callback_index = event.option_index
            self.sync()

    @on(Select.Changed, "#callback-add")
    def _add_callback(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        name = str(event.value)
        with event.select.prevent(Select.Changed):
            event.select.clear()
        self._edit(lambda d: d["train"].setdefault("callbacks", []).append({"type": name}))
        self.callback_index = len(self.app.experiment.train.callbacks) - 1
        self.sync()

    def action_remove_callback(self) -> None:
        """Remove the highlighted callback."""
        callbacks = self.app.experiment.train.callbacks
        if not callbacks:
            return
        at = min(self.callback_index, len(callbacks) - 1)
        self._edit(lambda d: d["train"]["callbacks"].pop(at))
        self.callback_index = max(0, at - 1)
        self.sync()

    @on(Input.Changed, ".run-row Input")
    def _run_field(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("run-")
        location = f"train.{name}"
        error_widget = self.query_one(f"#run-error-{name}", Static)
        text = event.value.strip()
        try:
            value = int(text) if text else None
        except ValueError:
            self.show_field_error(error_widget, location, "expected a whole number")
            return
        if value is None and name != "seed":
            self.show_field_error(error_widget, location, "a value is required")
            return

        def change(d: dict) -> None:
            d["train"][name] = value

        error = self.app.edit(change, merge=location)
        self.show_field_error(error_widget, location, error.message if error is not None else "")

    @on(Select.Changed, ".run-row Select")
    def _run_choice(self, event: Select.Changed) -> None:
        name = (event.select.id or "").removeprefix("run-")
        if event.value is Select.NULL:
            return
        if name == "export-quant":
            self._edit(lambda d: d.setdefault("export", {}).__setitem__("tflite_quantization", event.value))
            return
        value: Any = (
            {"true": True, "false": False}.get(str(event.value), event.value) if name == "jit_compile" else event.value
        )
        self._edit(lambda d: d["train"].__setitem__(name, value))

    @on(SelectionList.SelectedChanged, "#export-formats")
    def _formats(self, event: SelectionList.SelectedChanged) -> None:
        chosen = [f for f in format_names() if f in event.selection_list.selected]
        self._edit(lambda d: d.setdefault("export", {}).__setitem__("formats", chosen))

    def focus_export(self) -> None:
        """Bring the export section into view (the "Export model" command)."""
        widget = self.query_one("#export-formats", SelectionList)
        widget.focus()
        self.query_one("#setup-right").scroll_to_widget(widget)


def _name_of_plain(value: Any) -> str:
    return value if isinstance(value, str) else value.get("type", "")


def _schedule_start(name: str) -> Any:
    """Starting values for a schedule's required arguments, so choosing one builds at once."""
    return {
        "initial_learning_rate": 1e-3,
        "decay_steps": 1000,
        "decay_rate": 0.9,
        "first_decay_steps": 1000,
        "boundaries": [1000],
        "values": [1e-3, 1e-4],
    }.get(name)
