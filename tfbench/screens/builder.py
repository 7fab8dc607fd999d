"""The model builder: the layer stack as a tree beside a form for the selected entry.

Blocks show their layers and branches under them; any entry (a wrapper's inner layer and a
layer deep in a branch too) can be selected and edited. Add, insert above, add inside a block or
branch, add a block or a branch, delete, duplicate, move, move into or out of a block, and fold a
block: each edit is a pure function of `tfbench.layer_edits`, applied through the App (so it can be
undone), and the App recomputes the Keras summary in a worker. An impossible stack shows its
error on the entry the error names instead of a summary. A model with several inputs and outputs
is one tree — each input with its stack, the merge, the trunk, each output with its head — and
every stack in it is edited the same way (the selection knows its stack's root).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option

from tfbench import backbones, blocks, layer_edits
from tfbench.errors import UserError
from tfbench.keymap import bindings
from tfbench.layer_edits import EditRefused, Steps
from tfbench.screens.dialogs import Dialog
from tfbench.screens.frame import WorkbenchScreen
from tfbench.widgets.block_form import BlockForm
from tfbench.widgets.form import ParamForm
from tfbench.widgets.layer_table import (
    LayerTable,
    as_entries,
    default_folded,
    format_shape,
    model_entries,
    tree_rows,
)

_LAYER_AT = re.compile(r"model\.layers\[(\d+)\]")


def error_layer(location: str | None) -> int | None:
    """The stack entry an error location names (`model.layers[2].units` → 2), if any."""
    match = _LAYER_AT.search(location or "")
    return int(match.group(1)) if match else None


def block_choices() -> list[tuple[str, str]]:
    """What "add block" offers: the grammar's blocks and wrappers, then every backbone it knows."""
    words = {
        "Residual": "a skip connection: merge(layers(x), x)",
        "Parallel": "branches side by side, merged",
        "Bidirectional": "a recurrent layer both ways",
        "TimeDistributed": "a layer on every time step",
    }
    choices = [(name, words.get(name, "")) for name in (*blocks.BLOCKS, *blocks.WRAPPERS)]
    for name in backbones.BACKBONES:
        family = backbones.family(name)
        choices.append((name, f"backbone, frozen; ≥{family.min_size} px"))
    return choices


class BlockPicker(Dialog):
    """Choose a block, wrapper or backbone to add; answers its type name."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("Add block", classes="dialog-title")
            yield OptionList(
                *[
                    Option(Text(f"{name:<19} {words}", no_wrap=True, overflow="ellipsis"), id=name)
                    for name, words in block_choices()
                ],
                id="block-list",
            )
            yield Static("enter: add · esc: cancel", classes="dialog-hint")

    @on(OptionList.OptionSelected, "#block-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


# What the builder's keys do, for the command palette (title, help, action).
COMMANDS = (
    ("Add layer below", "Pick a layer type and add it below the selection", "add_layer"),
    ("Insert layer above", "Pick a layer type and add it above the selection", "insert_above"),
    ("Add layer inside the block", "Add a layer inside the selected block or branch", "add_inside"),
    ("Add block", "Add a Residual, Parallel, wrapper or backbone below the selection", "add_block"),
    ("Add branch", "Give the selected Parallel a branch (a Residual: a shortcut)", "add_branch"),
    ("Move into block", "Move the selected layer into the block above or below it", "move_in"),
    ("Move out of block", "Move the selected layer out of its block", "move_out"),
    ("Fold or unfold block", "Show a block as one row, or its layers again", "toggle_fold"),
    (
        "Backbone preprocessing",
        "Put the backbone family's input scaling inside the model, or take it out",
        "toggle_preprocess",
    ),
    ("Delete layer", "Remove the selected layer, branch or shortcut", "delete_layer"),
    ("Duplicate layer", "Put a copy of the selection under it", "duplicate"),
)


class BuilderCommands(Provider):
    """The builder's editing actions in the command palette."""

    async def discover(self) -> Hits:
        for title, help_text, action in COMMANDS:
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.screen.run_action, action), help=help_text)


class BuilderScreen(WorkbenchScreen):
    """Design the layer stack and see Keras' shapes and parameter counts as you go."""

    screen_name = "model"
    CSS_PATH = "builder.tcss"
    COMMANDS = {BuilderCommands}
    # Keys that only fit some rows (inside, branch, into/out of a block, fold) show in the footer
    # only there (`check_action`), so a plain stack's footer keeps its everyday keys.
    KEYS = "model"
    BINDINGS = bindings(KEYS)

    def __init__(self) -> None:
        super().__init__()
        self.selected_steps: Steps | None = (0,)
        self.selected_root = layer_edits.ROOT  # the stack the selection is in (an input's, a head's)
        self.fold: dict[str, bool] = {}  # the user's fold choices; backbones start folded
        self.form: ParamForm | BlockForm | Static | None = None
        self.import_error = ""
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

    # -- state --------------------------------------------------------------------------------
    @property
    def stack(self) -> list:
        return self.app.experiment.model.layers

    @property
    def model(self) -> dict:
        """The whole model as the preset's plain dicts (every stack of a model with several inputs and outputs)."""
        return model_entries(self.app.experiment.model)

    @property
    def entries(self) -> list[dict]:
        """The selected stack as the preset's plain dicts, blocks holding their nested entries."""
        if self.selected_root == layer_edits.ROOT:
            return as_entries(self.stack)
        return layer_edits.stack_at(self.model, self.selected_root)

    @property
    def selected(self) -> int:
        """The index in the stack of the selected entry (or of the block it sits in)."""
        return int(self.selected_steps[0]) if self.selected_steps else 0

    @selected.setter
    def selected(self, index: int) -> None:
        self.selected_steps = (index,)

    def folded(self) -> set[str]:
        """The paths shown folded: backbones unless unfolded, and whatever the user folded."""
        nodes = layer_edits.walk_model(self.model)
        start = default_folded(nodes)
        return {n.path for n in nodes if self.fold.get(n.path, n.path in start)}

    def selected_node(self) -> layer_edits.Node | None:
        return next(
            (
                n
                for n in layer_edits.walk_model(self.model)
                if n.root == self.selected_root and n.steps == self.selected_steps
            ),
            None,
        )

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Offer a key only where it does something for the selected row."""
        edit = {
            "add_branch": layer_edits.add_branch,
            "move_in": layer_edits.move_in,
            "move_out": layer_edits.move_out,
        }.get(action)
        node = self.selected_node() if action in ("add_inside", "toggle_fold") or edit else None
        if self.selected_root == layer_edits.MERGE and action in EDITS:
            return False  # the merge is a row of the tree, not a stack
        if edit is not None:
            try:
                edit(self.entries, self.selected_steps or (0,))
            except (EditRefused, IndexError, KeyError, TypeError):
                return False
            return True
        if action == "add_inside":
            return node is not None and (node.entry is None or node.kind == "block")
        if action == "toggle_preprocess":
            node = self.selected_node()
            return node is not None and node.entry is not None and layer_edits.preprocess_offered(node.entry["type"])
        if action == "toggle_fold":
            return node is not None and (node.kind in FOLDABLE or node.depth > 0)
        return True

    # -- drawing ------------------------------------------------------------------------------
    def sync(self) -> None:
        if not self.is_mounted:
            return
        if self.selected_root not in {n.root for n in layer_edits.walk_model(self.model)}:
            self.selected_root, self.selected_steps = layer_edits.ROOT, (0,)  # its stack went away
        self.selected_steps = layer_edits.nearest(self.entries, self.selected_steps)
        self._reveal_selection()
        self.show_summary()
        self._show_form()
        self.refresh_bindings()

    def _reveal_selection(self) -> None:
        """Unfold the blocks around the selection (an entry just added inside a folded block)."""
        node = self.selected_node()
        if node is None:
            return
        path = node.path
        for folded in self.folded():
            if path.startswith((folded + ".", folded + "[")):
                self.fold[folded] = False

    def show_summary(self) -> None:
        """Redraw the tree and totals from the App's latest summary."""
        app = self.app
        error = app.summary_error
        location = error.location if error is not None else None
        model = self.model
        rows = tree_rows(
            model if layer_edits.several(model) else self.stack,
            getattr(app.summary, "layers", None) or (),
            self.folded(),
            location,
            error.message if error is not None else "",
            pending=app.summary_pending,
        )
        node = self.selected_node()
        self.query_one(LayerTable).show(rows, node.path if node is not None else None)
        self._show_totals()

    def refused(self, error: UserError) -> None:
        """Training was refused for this model's error: the totals line says so where the ✗ is."""
        totals = self.query_one("#totals", Static)
        totals.set_class(True, "-error")
        totals.update(f"✗ not started: {error}")

    def _show_totals(self) -> None:
        app = self.app
        error = app.summary_error
        totals = self.query_one("#totals", Static)
        totals.set_class(error is not None or bool(self.import_error), "-error")
        if self.import_error:
            totals.update(f"✗ import: {self.import_error}")
        elif error is not None:
            totals.update(f"✗ {error}")
        elif app.summary_pending and app.summary is None:
            totals.update("Computing the summary…")
        elif app.summary is not None:
            s = app.summary
            inputs, outputs = getattr(s, "inputs", None), getattr(s, "outputs", None)
            ends = (
                f"{_count(len(inputs), 'input') if inputs else format_shape(s.input_shape)} → "
                f"{_count(len(outputs), 'output') if outputs else format_shape(s.output_shape)}"
            )
            totals.update(f"{ends} · {s.total_params:,} params · {s.non_trainable_params:,} frozen")
        elif not self.stack:
            totals.update("No layers yet: press a to add one.")

    def _show_form(self) -> None:
        panel = self.query_one("#layer-panel", Vertical)
        node = self.selected_node()
        location = node.path if node is not None else ""
        form = self.form
        if (
            node is not None
            and isinstance(form, (ParamForm, BlockForm))
            and form.location == location
            and form.entry_name == (node.entry or {}).get("type")
        ):
            if form.args == layer_edits.plain_args(node.entry or {}) or form.errors:
                return  # up to date, or keeping what is being typed while it is invalid
        if node is None and isinstance(form, Static) and panel.children:
            return
        panel.remove_children()
        self._forms_made += 1
        self.form = self._form_for(node, f"layer-form-{self._forms_made}")
        panel.mount(self.form)

    def _form_for(self, node: layer_edits.Node | None, widget_id: str) -> ParamForm | BlockForm | Static:
        from tfbench import catalog

        if node is None:
            return Static("Add a layer to edit it here.", classes="hint")
        if node.is_part:
            return Static(_part_hint(node), classes="hint")
        if node.entry is None:
            words = (
                "an empty branch passes its input on as it is"
                if node.kind == "branch"
                else "an empty shortcut is the block's input itself"
            )
            return Static(
                f"{node.kind.capitalize()}: A adds a layer here; {words}. B adds a branch, d deletes this one.",
                classes="hint",
            )
        entry = node.entry
        if node.kind == "layer" and catalog.get("layers", entry["type"]) is not None:
            return ParamForm(
                "layers", entry["type"], layer_edits.plain_args(entry), node.path, id=widget_id, classes="layer-form"
            )
        return BlockForm(entry, node.path, id=widget_id, classes="layer-form")

    # -- events -------------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#layers")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        # An error line belongs to its entry, a backbone's own layer to its backbone.
        key = self.query_one(LayerTable).cursor_key or ""
        node = layer_edits.node_for_location(
            layer_edits.walk_model(self.model), key.removeprefix("error:").removeprefix("inner:").split("|")[0]
        )
        if node is not None and (node.root, node.steps) != (self.selected_root, self.selected_steps):
            self.selected_root, self.selected_steps = node.root, node.steps
            self._show_form()
            self.refresh_bindings()

    @on(DataTable.RowSelected, "#layers")
    def _row_selected(self) -> None:
        self.action_edit()

    @on(ParamForm.Changed, ".layer-form")
    @on(BlockForm.Changed, ".layer-form")
    def _form_changed(self, event: ParamForm.Changed | BlockForm.Changed) -> None:
        root = layer_edits.stack_root(event.form.location) or layer_edits.ROOT
        steps = layer_edits.steps_of(event.form.location, root)  # the form's own entry, whatever is selected now
        layer_type = event.form.entry_name
        if not steps:
            return
        self.app.form_errors.pop(event.form.location, None)
        try:
            layers = layer_edits.set_entry(layer_edits.stack_at(self.model, root), steps, layer_type, event.args)
        except (IndexError, KeyError, TypeError):
            return  # the entry went away (undo) while its form was being typed in

        def change(data: dict) -> None:
            layer_edits.put_stack(data["model"], root, layers)

        error = self.app.edit(change, merge=f"{event.form.location}.{event.field}")
        if error is None:
            return
        field = (error.location or "").removeprefix(event.form.location + ".")
        if isinstance(event.form, BlockForm) and field in event.form.fields:
            event.form.show_error(field, error.message + (f" ({error.hint})" if error.hint else ""))
            self.app.form_errors[event.form.location] = str(error)
        else:
            self.notify(str(error), severity="error")

    @on(BlockForm.Invalid, ".layer-form")
    def _block_form_invalid(self, event: BlockForm.Invalid) -> None:
        self.app.form_errors[event.form.location] = event.message

    # -- edits --------------------------------------------------------------------------------
    def apply(self, edit: Callable[[list], tuple[list, Steps | None]]) -> bool:
        """Make one edit of `tfbench.layer_edits` through the App's undoable edit path.

        Returns:
            True when the stack changed; a refused or invalid edit is shown and leaves it as it was.
        """
        if self.selected_root == layer_edits.MERGE:
            self.notify("The merge joins the inputs: select an input, the trunk or an output.", severity="warning")
            return False
        try:
            layers, select = edit(self.entries)
        except EditRefused as exc:
            self.notify(str(exc), severity="warning", timeout=6)
            return False
        before, root = self.selected_steps, self.selected_root
        self.selected_steps = select

        def change(data: dict) -> None:
            layer_edits.put_stack(data.setdefault("model", {}), root, layers)

        old_layers = self.entries
        error = self.app.edit(change)
        if error is not None:
            self.selected_steps = before
            self.notify(str(error), severity="error", timeout=8)
            return False
        here = [path for path in self.fold if layer_edits.stack_root(path) == root]
        moved = layer_edits.follow(old_layers, layers, here, root)
        self.fold = {moved.get(path, path): f for path, f in self.fold.items() if path in moved or path not in here}
        self.sync()
        return True

    def action_add_layer(self, where: str = "below") -> None:
        """Pick a layer type and add it below or above the selection, or inside the selected block."""
        from tfbench.screens.dialogs import LayerPicker

        titles = {"below": "Add layer", "above": "Insert layer above", "inside": "Add layer inside"}
        at = self.selected_steps if self.entries else None

        def picked(name: str | None) -> None:
            if not name:
                return
            from tfbench import catalog

            entry = catalog.get("layers", name)
            if entry is None:  # the picker lists the catalog's layers
                return
            args = {p.name: p.default for p in entry.params.values() if p.required and p.default is not None}
            args.update(_starter_args(entry))
            self.apply(lambda layers: layer_edits.insert(layers, at, {"type": name, **args}, where))

        self.app.push_screen(LayerPicker(titles[where]), picked)

    def action_insert_above(self) -> None:
        self.action_add_layer("above")

    def action_add_inside(self) -> None:
        """Pick a layer type and add it inside the selected block or branch."""
        node = self.selected_node()
        if node is None or (node.entry is not None and node.kind != "block"):
            self.notify("Select a Residual, a Parallel or a branch to add a layer inside it.", severity="warning")
            return
        self.action_add_layer("inside")

    def action_add_block(self) -> None:
        """Pick a Residual, Parallel, wrapper or backbone and add it below the selection."""
        at = self.selected_steps if self.entries else None

        def picked(name: str | None) -> None:
            if name:
                self.apply(lambda layers: layer_edits.insert(layers, at, layer_edits.new_block(name)))

        self.app.push_screen(BlockPicker(), picked)

    def _apply_at(self, edit: Callable[..., tuple[list, Steps | None]], *args) -> None:
        if not self.selected_steps:  # an input's or output's own row, or the merge
            self.notify("Select a layer: inputs and outputs are named in the preset.", severity="warning")
            return
        if self.entries:
            at = self.selected_steps
            self.apply(lambda layers: edit(layers, at, *args))

    def action_add_branch(self) -> None:
        """Give the selected Parallel one more branch (a Residual: a shortcut)."""
        self._apply_at(layer_edits.add_branch)

    def action_delete_layer(self) -> None:
        """Remove the selected entry, branch or shortcut."""
        self._apply_at(layer_edits.delete)

    def action_duplicate(self) -> None:
        """Put a copy of the selected entry under it."""
        self._apply_at(layer_edits.duplicate)

    def action_move(self, step: int) -> None:
        """Move the selected entry up (-1) or down (+1) in its list."""
        self._apply_at(layer_edits.move, step)

    def action_move_in(self) -> None:
        """Move the selected entry into the block right above (or below) it."""
        self._apply_at(layer_edits.move_in)

    def action_move_out(self) -> None:
        """Move the selected entry out of its block, to just below the block."""
        self._apply_at(layer_edits.move_out)

    def action_fold(self, fold: bool) -> None:
        """Fold the selected block to one row (or unfold it); on a row inside a block, fold that block."""
        node = self.selected_node()
        if node is None:
            return
        folded = self.folded()
        if fold and node.path not in folded and node.kind not in FOLDABLE:
            owner = layer_edits.node_for_location(
                [n for n in layer_edits.walk_model(self.model) if n.kind in FOLDABLE and n.path != node.path],
                node.path,
            )
            if owner is None:
                return
            node = owner
            self.selected_root, self.selected_steps = node.root, node.steps
        if (node.path in folded) != fold:
            self.fold[node.path] = fold
            self.show_summary()
            self._show_form()

    def action_toggle_fold(self) -> None:
        """Fold the selected block, or unfold it when it is folded."""
        node = self.selected_node()
        if node is not None:
            self.action_fold(node.path not in self.folded())

    def action_toggle_preprocess(self) -> None:
        """Put the selected backbone's expected input scaling inside the model, or take it out."""
        node = self.selected_node()
        if node is None or node.kind != "backbone" or node.entry is None:
            return
        args = layer_edits.plain_args(node.entry)
        args["preprocess"] = not args.get("preprocess", False)
        steps, type_name = node.steps, node.entry["type"]
        self.apply(lambda layers: (layer_edits.set_entry(layers, steps, type_name, args), steps))

    def action_edit(self) -> None:
        """Move into the selected entry's form."""
        if isinstance(self.form, (ParamForm, BlockForm)):
            fields = self.form.query("Input, Select, Checkbox")
            if fields:
                fields.first().focus()

    def action_import(self) -> None:
        """Replace the layer stack with a `.keras` model's layers (blocks where it has them)."""
        from tfbench.screens.dialogs import PathPrompt

        def chosen(path: str | None) -> None:
            if path:
                self.app.import_layers(path)

        self.app.push_screen(
            PathPrompt("Import layers from a .keras model", "", must_exist=True, action="Import"), chosen
        )

    def show_import_error(self, message: str) -> None:
        """Show why a `.keras` file could not be imported on the totals line (empty: clear it)."""
        self.import_error = message
        if self.is_mounted:
            self._show_totals()

    def on_key(self, event) -> None:
        # Escape from the form goes back to the table.
        if event.key == "escape" and not isinstance(self.focused, LayerTable):
            event.stop()
            self.query_one(LayerTable).focus()


FOLDABLE = ("wrapper", "block", "backbone", "input", "output")  # rows with a subtree to fold
EDITS = ("add_layer", "insert_above", "add_inside", "add_block", "add_branch", "move_in", "move_out")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _part_hint(node: layer_edits.Node) -> str:
    """What the form panel says for an input, an output or the merge of a model with several."""
    if node.kind == "merge":
        return f"The inputs' ends meet here ({node.name}); model.merge in the preset sets how."
    if node.kind == "input":
        return (
            f"Input {node.name!r}: the data's array of that name, through its own stack before the merge. "
            "A adds a layer to it."
        )
    return (
        f"Output {node.name!r}: the labels of that name, from the trunk through its own head. "
        "A adds a layer to it; its loss, loss_weight and metrics are set in the preset."
    )


def _starter_args(entry) -> dict:
    """Values for required arguments without a default, so a picked layer builds at once."""
    starters = {
        "units": 32,
        "filters": 16,
        "kernel_size": 3,
        "rate": 0.2,
        "pool_size": 2,
        "target_shape": [-1],
        "input_dim": 1000,
        "output_dim": 32,
        "scale": 1.0,
    }
    return {
        p.name: starters[p.name]
        for p in entry.params.values()
        if p.required and p.default is None and p.name in starters
    }
