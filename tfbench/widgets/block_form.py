"""The form of a block, wrapper, attention layer or backbone: its own arguments, not the layers it holds.

The catalog describes plain Keras layers; these entries are the stack grammar's
(`tfbench.blocks`, `tfbench.backbones`), so their fields come from there. Arguments an entry has
beyond those get a plain field each, so nothing in a preset is out of reach. The layers inside are
edited by selecting them in the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from tfbench import backbones, blocks, layer_edits
from tfbench.widgets.form import BLANK_CHOICE, format_value, parse_value


@dataclass(frozen=True)
class BlockField:
    """One argument of a block: its name, catalog-style kind, default, choices and help."""

    name: str
    kind: str
    default: Any
    choices: tuple[str, ...] = ()
    help: str = ""


HELP = {
    "Residual": "x → merge(layers(x), shortcut(x)); the shortcut is x itself unless given.",
    "Parallel": "x → merge of every branch applied to x; an empty branch is x itself.",
    "Bidirectional": "Runs its recurrent layer forwards and backwards.",
    "TimeDistributed": "Applies its layer to every time step.",
}


def _grammar_fields(name: str) -> tuple[BlockField, ...]:
    """The fields the grammar gives an entry type (nested entries left out)."""
    if name in blocks.BLOCKS:
        return tuple(
            BlockField(arg, "choice", blocks.DEFAULT_MERGE[name], tuple(blocks.MERGES))
            if kind == "merge"
            else BlockField(arg, kind, None)
            for arg, kind in blocks.BLOCKS[name].items()
            if kind != "list"
        )
    table = blocks.WRAPPERS.get(name) or blocks.ATTENTION.get(name)
    if table is not None:
        # A choice the grammar checks but does not list is typed (Bidirectional's merge_mode).
        return tuple(
            BlockField(arg, "str" if kind == "choice" else kind, None if default is ... else default)
            for arg, kind, default in table
        )
    if backbones.is_backbone(name):
        return tuple(BlockField(p.name, p.kind, p.default, p.choices, p.help) for p in backbones.params(name).values())
    return ()


def backbone_help(name: str) -> str:
    """What a backbone's family needs, in a line."""
    family = backbones.family(name)
    if family.preprocessing == "inside":
        scaling = "its model scales raw pixels itself"
    elif layer_edits.preprocess_offered(name):
        scaling = f"preprocess = true (p) puts its {family.preprocessing!r} input scaling inside the model"
    else:
        scaling = f"feed it {family.preprocessing}-style preprocessed pixels"
    return f"keras.applications {family.module}: inputs at least {family.min_size}×{family.min_size}; {scaling}."


def fields_of(entry: dict) -> tuple[BlockField, ...]:
    """The fields of a block entry: its kind's own, then one per other argument it has."""
    known = _grammar_fields(str(entry.get("type", "")))
    names = {f.name for f in known}
    others = tuple(
        BlockField(name, _kind_of(value), None)
        for name, value in layer_edits.plain_args(entry).items()
        if name not in names
    )
    return known + others


def _kind_of(value: Any) -> str:
    """A field kind that keeps the type the preset gave (a number stays a number)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    return "any"


def _parse(kind: str, text: str) -> Any:
    """What was typed, as a value of `kind`; a `number` is whole when it can be."""
    if kind != "number":
        return parse_value(kind, text)
    try:
        return parse_value("int", text)
    except ValueError:
        pass
    try:
        return parse_value("float", text)
    except ValueError:
        raise ValueError("expected a number") from None


class BlockForm(VerticalScroll):
    """The fields of one block's own arguments, bound to the entry at `location`.

    It answers like `ParamForm`: `location`, `entry_name`, `args`, `errors`, and a `Changed`
    message with the new valid arguments (nested entries are kept by the screen).
    """

    DEFAULT_CSS = """
    BlockForm { height: 1fr; padding: 0 1; }
    BlockForm .form-title { text-style: bold; }
    BlockForm .form-help { color: $text-muted; }
    BlockForm .field { height: auto; }
    BlockForm .field-label { color: $text-muted; }
    BlockForm .field-error { color: $error; text-style: bold; height: auto; }
    BlockForm .field-error.-empty { display: none; }
    BlockForm Input, BlockForm Select { width: 100%; }
    """

    class Changed(Message):
        """The block's arguments changed to a valid set."""

        def __init__(self, form: BlockForm, args: dict[str, Any], field: str) -> None:
            super().__init__()
            self.form, self.args, self.field = form, args, field

        @property
        def control(self) -> BlockForm:
            return self.form

    class Invalid(Message):
        """A field holds a value that cannot be used; `message` says why."""

        def __init__(self, form: BlockForm, field: str, message: str) -> None:
            super().__init__()
            self.form, self.field, self.message = form, field, message

        @property
        def control(self) -> BlockForm:
            return self.form

    def __init__(self, entry: dict, location: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entry_name = str(entry.get("type", ""))
        self.location = location
        self.args = layer_edits.plain_args(entry)
        self.fields = {f.name: f for f in fields_of(entry)}
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Label(self.entry_name, classes="form-title")
        help_text = (
            backbone_help(self.entry_name) if backbones.is_backbone(self.entry_name) else HELP.get(self.entry_name, "")
        )
        if help_text:
            yield Static(help_text, classes="form-help")
        for field in self.fields.values():
            yield from self._field(field)
        yield Static("Select a layer under it in the tree to edit that layer.", classes="form-help")

    def _field(self, field: BlockField) -> ComposeResult:
        current = self.args.get(field.name, field.default)
        with Vertical(classes="field", id=f"box-{field.name}"):
            if field.kind == "bool":
                yield Checkbox(
                    field.name, bool(current), id=f"field-{field.name}", compact=True, tooltip=field.help or None
                )
            else:
                yield Label(field.name, classes="field-label")
                if field.kind == "choice":
                    value = current if current in field.choices else Select.NULL
                    yield Select(
                        [(c, c) for c in field.choices],
                        value=value,
                        prompt=BLANK_CHOICE,
                        id=f"field-{field.name}",
                        compact=True,
                    )
                else:
                    shown = format_value(self.args[field.name]) if field.name in self.args else ""
                    yield Input(
                        shown,
                        placeholder=format_value(field.default) or "(none)",
                        id=f"field-{field.name}",
                        compact=True,
                        tooltip=field.help or None,
                    )
            yield Static("", id=f"error-{field.name}", classes="field-error -empty")

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed(event.input.id, event.value)

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._changed(event.checkbox.id, event.value)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._changed(event.select.id, None if event.value is Select.NULL else event.value)

    def _changed(self, widget_id: str | None, raw: Any) -> None:
        name = (widget_id or "").removeprefix("field-")
        field = self.fields.get(name)
        if field is None:
            return
        args = dict(self.args)
        try:
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                args.pop(name, None)
            else:
                value = _parse(field.kind, raw) if isinstance(raw, str) else raw
                if value == field.default and name not in self.args:
                    args.pop(name, None)
                else:
                    args[name] = value
        except ValueError as exc:
            self._show_error(name, str(exc))
            self.post_message(self.Invalid(self, name, f"{self.location}.{name}: {exc}"))
            return
        self._show_error(name, "")
        self.args = args
        self.post_message(self.Changed(self, dict(args), name))

    def show_error(self, name: str, message: str) -> None:
        """Show why the Experiment refused a value, under its field (the grammar's own check)."""
        if name in self.fields:
            self._show_error(name, message)

    def _show_error(self, name: str, message: str) -> None:
        if message:
            self.errors[name] = message
        else:
            self.errors.pop(name, None)
        for widget in self.query(f"#error-{name}").results(Static):
            widget.update(message)
            widget.set_class(not message, "-empty")

    def on_unmount(self) -> None:
        # A form that goes away takes its unresolved errors with it.
        errors = getattr(self.app, "form_errors", None)
        if isinstance(errors, dict):
            errors.pop(self.location, None)
