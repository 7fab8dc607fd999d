"""The model builder: the layer stack as a table beside a form for the selected layer.

Add (a searchable picker over the catalog), insert above, delete, move, duplicate and edit layers;
every edit goes through the App (so it can be undone) and the App recomputes the Keras summary in
a worker. An impossible stack shows its error on the layer it fails at instead of a summary.
"""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from tfbench.screens.frame import WorkbenchScreen
from tfbench.widgets.form import ParamForm
from tfbench.widgets.layer_table import LayerTable, format_shape

_LAYER_AT = re.compile(r"model\.layers\[(\d+)\]")


def error_layer(location: str | None) -> int | None:
    """The layer index an error location names (`model.layers[2].units` → 2), if any."""
    match = _LAYER_AT.search(location or "")
    return int(match.group(1)) if match else None


class BuilderScreen(WorkbenchScreen):
    """Design the layer stack and see Keras' shapes and parameter counts as you go."""

    screen_name = "model"
    CSS_PATH = "builder.tcss"
    BINDINGS = [
        Binding("a", "add_layer", "Add"),
        Binding("i", "insert_above", "Insert above"),
        Binding("d,delete", "delete_layer", "Delete"),
        Binding("c", "duplicate", "Duplicate"),
        Binding("K", "move(-1)", "Move up"),
        Binding("J", "move(1)", "Move down"),
        Binding("e", "edit", "Edit"),
        Binding("I", "import", "Import .keras"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected = 0
        self.form: ParamForm | None = None
        self._forms_made = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="builder"):
            with Vertical(id="stack-panel"):
                yield LayerTable(id="layers")
                yield Static("", id="totals")
            yield Vertical(id="layer-panel")

    def on_mount(self) -> None:
        self.sync()
        self.query_one(LayerTable).focus()

    # -- drawing ------------------------------------------------------------------------------
    @property
    def stack(self) -> list:
        return self.app.experiment.model.layers  # type: ignore[attr-defined]

    def sync(self) -> None:
        if not self.is_mounted:
            return
        if self.stack:
            self.selected = min(self.selected, len(self.stack) - 1)
        else:
            self.selected = 0
        self.show_summary()
        self._show_form()

    def show_summary(self) -> None:
        """Redraw the table and totals from the App's latest summary."""
        app = self.app
        error = app.summary_error  # type: ignore[attr-defined]
        index = error_layer(error.location) if error is not None else None
        table = self.query_one(LayerTable)
        table.show(self.stack, app.summary, index, error.message if error is not None and index is not None
                   else "", pending=app.summary_pending)  # type: ignore[attr-defined]
        if self.stack:
            table.select_layer(self.selected)
        totals = self.query_one("#totals", Static)
        totals.set_class(error is not None, "-error")
        if error is not None:
            totals.update(f"✗ {error}")
        elif app.summary_pending and app.summary is None:  # type: ignore[attr-defined]
            totals.update("Computing the summary…")
        elif app.summary is not None:  # type: ignore[attr-defined]
            s = app.summary  # type: ignore[attr-defined]
            totals.update(
                f"{format_shape(s.input_shape)} → {format_shape(s.output_shape)} · "
                f"{s.total_params:,} params · {s.non_trainable_params:,} frozen"
            )
        elif not self.stack:
            totals.update("No layers yet: press a to add one.")

    def _show_form(self) -> None:
        panel = self.query_one("#layer-panel", Vertical)
        form = self.form
        if not self.stack:
            if form is not None or not panel.children:
                self.form = None
                panel.remove_children()
                panel.mount(Static("Add a layer to edit it here.", classes="hint"))
            return
        layer = self.stack[self.selected]
        location = f"model.layers[{self.selected}]"
        if form is not None and form.location == location and form.entry_name == layer.type:
            if form.args == layer.args or form.errors:
                return  # up to date, or keeping what is being typed while it is invalid
        panel.remove_children()
        self._forms_made += 1
        self.form = ParamForm("layers", layer.type, layer.args, location,
                              id=f"layer-form-{self._forms_made}", classes="layer-form")
        panel.mount(self.form)

    # -- events -------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#layers")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        index = self.query_one(LayerTable).layer_index
        if index is not None and index != self.selected and index < len(self.stack):
            self.selected = index
            self._show_form()

    @on(DataTable.RowSelected, "#layers")
    def _row_selected(self) -> None:
        self.action_edit()

    @on(ParamForm.Changed, ".layer-form")
    def _form_changed(self, event: ParamForm.Changed) -> None:
        index = error_layer(event.form.location)  # the form's own layer, whatever is selected now
        layer_type = event.form.entry_name
        if index is None or index >= len(self.stack):
            return

        def change(data: dict) -> None:
            data["model"]["layers"][index] = {"type": layer_type, **event.args}

        error = self.app.edit(change, merge=f"{event.form.location}.{event.field}")  # type: ignore[attr-defined]
        if error is not None:
            self.notify(str(error), severity="error")

    # -- actions ------------------------------------------------------------------------------
    def _edit_layers(self, change, merge: str | None = None) -> None:
        def apply(data: dict) -> None:
            layers = data.setdefault("model", {}).setdefault("layers", [])
            change(layers)

        error = self.app.edit(apply, merge)  # type: ignore[attr-defined]
        if error is not None:
            self.notify(str(error), severity="error", timeout=8)

    def action_add_layer(self, above: bool = False) -> None:
        """Pick a layer type and add it below (or above) the selected layer."""
        from tfbench.screens.dialogs import LayerPicker

        def picked(name: str | None) -> None:
            if not name:
                return
            from tfbench import catalog

            entry = catalog.get("layers", name)
            args = {p.name: p.default for p in entry.params.values() if p.required and p.default is not None}
            args.update(_starter_args(entry))
            at = self.selected + (0 if above or not self.stack else 1)
            self._edit_layers(lambda layers: layers.insert(at, {"type": name, **args}))
            self.selected = at
            self.sync()

        self.app.push_screen(LayerPicker("Insert layer above" if above else "Add layer"), picked)

    def action_insert_above(self) -> None:
        self.action_add_layer(above=True)

    def action_delete_layer(self) -> None:
        """Remove the selected layer."""
        if not self.stack:
            return
        at = self.selected
        self._edit_layers(lambda layers: layers.pop(at))
        self.selected = max(0, at - 1) if at >= len(self.stack) else at
        self.sync()

    def action_duplicate(self) -> None:
        """Put a copy of the selected layer under it."""
        if not self.stack:
            return
        at = self.selected
        self._edit_layers(lambda layers: layers.insert(at + 1, dict(layers[at])))
        self.selected = at + 1
        self.sync()

    def action_move(self, step: int) -> None:
        """Move the selected layer up (-1) or down (+1)."""
        at, to = self.selected, self.selected + step
        if not (0 <= to < len(self.stack)):
            return

        def change(layers: list) -> None:
            layers[at], layers[to] = layers[to], layers[at]

        self._edit_layers(change)
        self.selected = to
        self.sync()

    def action_edit(self) -> None:
        """Move into the selected layer's form."""
        if self.form is not None:
            fields = self.form.query("Input, Select, Checkbox")
            if fields:
                fields.first().focus()

    def action_import(self) -> None:
        """Replace the layer stack with a Sequential `.keras` model's layers."""
        from tfbench.screens.dialogs import PathPrompt

        def chosen(path: str | None) -> None:
            if path:
                self.app.import_layers(path)  # type: ignore[attr-defined]

        self.app.push_screen(PathPrompt("Import layers from a .keras model", "", must_exist=True,
                                        action="Import"), chosen)

    def on_key(self, event) -> None:
        # Escape from the form goes back to the table.
        if event.key == "escape" and not isinstance(self.focused, LayerTable):
            event.stop()
            self.query_one(LayerTable).focus()


def _starter_args(entry) -> dict:
    """Values for required arguments without a default, so a picked layer builds at once."""
    starters = {"units": 32, "filters": 16, "kernel_size": 3, "rate": 0.2, "pool_size": 2,
                "target_shape": [-1], "input_dim": 1000, "output_dim": 32, "scale": 1.0}
    return {p.name: starters[p.name] for p in entry.params.values()
            if p.required and p.default is None and p.name in starters}
