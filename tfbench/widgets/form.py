"""A parameter form generated from catalog metadata, validated as the user types.

Each parameter of a catalog entry (a layer, optimizer, schedule or callback) becomes a field of
the right kind: a checkbox for a flag, a select for a choice, an input for the rest. Every change
is parsed and checked against the catalog (`check_component`); a problem is shown under the field
it concerns and the form reports itself invalid, so the App refuses to save until it is fixed.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from tfbench.errors import UserError

BLANK_CHOICE = "(default)"


def format_value(value: Any) -> str:
    """A parameter value as the text a user would type (TOML-like)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def parse_value(kind: str, text: str) -> Any:
    """Parse what was typed into a parameter of catalog kind `kind`.

    Args:
        kind: int | float | bool | str | choice | int_or_tuple | list | any.
        text: the field's text (not empty).

    Returns:
        The value to store in the Experiment.

    Raises:
        ValueError: the text does not fit the kind; the message says what was expected.
    """
    from tfbench.spec import parse_override_value

    text = text.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError("expected true or false")
    if kind == "int_or_tuple":
        parts = [p for p in text.strip("()[] ").replace(",", " ").split()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError("expected a whole number or several, e.g. 3 or 3, 3") from None
        if not numbers:
            raise ValueError("expected a whole number")
        return numbers[0] if len(numbers) == 1 else numbers
    if kind == "list":
        value = parse_override_value(text if text.startswith("[") else f"[{text}]")
        if not isinstance(value, list):
            raise ValueError('expected a list, e.g. 1, 2 or ["a", "b"]')
        return value
    if kind in ("str", "choice"):
        return text
    return parse_override_value(text)


class ParamForm(VerticalScroll):
    """The fields of one catalog entry's parameters, bound to a dict of arguments.

    Args:
        kind: the catalog kind (`layers`, `optimizers`, `schedules`, `callbacks`).
        name: the entry's name (`Dense`).
        args: the current arguments (only those differing from the defaults are kept).
        location: where the component sits in the Experiment (`model.layers[2]`).
    """

    DEFAULT_CSS = """
    ParamForm { height: 1fr; padding: 0 1; }
    ParamForm .form-title { text-style: bold; }
    ParamForm .form-help { color: $text-muted; }
    ParamForm .field { height: auto; }
    ParamForm .field-label { color: $text-muted; }
    ParamForm .field-error, ParamForm .form-error { color: $error; text-style: bold; height: auto; }
    ParamForm .field-error.-empty, ParamForm .form-error.-empty { display: none; }
    ParamForm Input, ParamForm Select { width: 100%; }
    ParamForm .field.-invalid Input { background: $error 30%; text-style: bold; }
    """

    class Changed(Message):
        """The form holds a new valid set of arguments."""

        def __init__(self, form: ParamForm, args: dict[str, Any], field: str) -> None:
            super().__init__()
            self.form = form
            self.args = args
            self.field = field

        @property
        def control(self) -> ParamForm:
            return self.form

    class Invalid(Message):
        """A field holds a value that cannot be used."""

        def __init__(self, form: ParamForm, error: UserError) -> None:
            super().__init__()
            self.form = form
            self.error = error

        @property
        def control(self) -> ParamForm:
            return self.form

    def __init__(self, kind: str, name: str, args: dict[str, Any], location: str, **kwargs) -> None:
        super().__init__(**kwargs)
        from tfbench import catalog

        self.kind = kind
        self.entry_name = name
        self.location = location
        self.args = dict(args)
        self.entry = catalog.get(kind, name)
        self.errors: dict[str, str] = {}

    @property
    def valid(self) -> bool:
        """True when every field holds a usable value."""
        return not self.errors

    def compose(self) -> ComposeResult:
        yield Label(self.entry_name, classes="form-title")
        help_text = getattr(self.entry, "help", "") or ""
        if help_text:
            yield Static(help_text, classes="form-help")
        yield Static("", id="form-error", classes="form-error -empty")
        params = dict(getattr(self.entry, "params", {}) or {})
        ordered = sorted(params.values(), key=lambda p: (not p.required, p.name not in self.args))
        for param in ordered:
            yield from self._field(param)

    def _field(self, param) -> ComposeResult:
        from tfbench.catalog import describe_bounds

        name = param.name
        bounds = describe_bounds(param)
        tip = (f"{param.help} Must be {bounds}.".strip() if bounds else param.help) or None
        current = self.args.get(name, param.default)
        mark = " *" if param.required else ""
        with Vertical(classes="field", id=f"box-{name}"):
            if param.kind == "bool":
                yield Checkbox(name, bool(current), id=f"field-{name}", tooltip=param.help or None, compact=True)
            else:
                yield Label(f"{name}{mark}", classes="field-label")
                if param.kind == "choice" and param.choices:
                    options = [(str(c), str(c)) for c in param.choices]
                    value = str(current) if current is not None and str(current) in dict(options) else Select.NULL
                    yield Select(
                        options,
                        value=value,
                        allow_blank=not param.required,
                        prompt=BLANK_CHOICE,
                        id=f"field-{name}",
                        compact=True,
                    )
                else:
                    shown = format_value(self.args[name]) if name in self.args else ""
                    placeholder = format_value(param.default) if param.default is not None else "(none)"
                    yield Input(shown, placeholder=placeholder, id=f"field-{name}", tooltip=tip, compact=True)
            yield Static("", id=f"error-{name}", classes="field-error -empty")

    # -- changes ------------------------------------------------------------------------------
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
        value = event.value
        self._changed(event.select.id, None if value is Select.NULL else value)

    def _param(self, name: str):
        params = self.entry.params if self.entry is not None else {}
        return params[name]

    def _changed(self, widget_id: str | None, raw: Any) -> None:
        if not widget_id or not widget_id.startswith("field-"):
            return
        name = widget_id[len("field-") :]
        param = self._param(name)
        args = dict(self.args)
        self._show_error(name, "")
        try:
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if param.required:
                    raise ValueError("a value is required")
                args.pop(name, None)
            else:
                value = parse_value(param.kind, raw) if isinstance(raw, str) else raw
                if value == param.default and name not in self.args:
                    args.pop(name, None)
                else:
                    args[name] = value
        except ValueError as exc:
            self._fail(UserError(str(exc), f"{self.location}.{name}"))
            return
        self.errors.pop(name, None)
        try:
            from tfbench import catalog

            catalog.check_component(self.kind, self.entry_name, args, self.location)
        except UserError as exc:
            self._fail(exc, default_field=name)
            return
        self._clear_errors()
        self.args = args
        self.post_message(self.Changed(self, dict(args), name))

    def _fail(self, error: UserError, default_field: str | None = None) -> None:
        location = error.location or ""
        field = location.rsplit(".", 1)[-1] if location.startswith(self.location + ".") else None
        field = field if field in getattr(self.entry, "params", {}) else default_field
        message = error.message + (f" ({error.hint})" if error.hint else "")
        if field is not None:
            self.errors[field] = message
            self._show_error(field, message)
        else:
            self.errors["_form"] = message
            self._form_error(message)
        self.post_message(self.Invalid(self, error))

    def _show_error(self, name: str, message: str) -> None:
        for widget in self.query(f"#error-{name}").results(Static):
            widget.update(message)
            widget.set_class(not message, "-empty")
        box = self.query(f"#box-{name}")
        if box:
            box.first().set_class(bool(message), "-invalid")

    def _clear_errors(self) -> None:
        for name in list(self.errors):
            if name != "_form":
                self._show_error(name, "")
        self.errors.clear()
        self._form_error("")

    def _form_error(self, message: str) -> None:
        widget = self.query_one("#form-error", Static)
        widget.update(message)
        widget.set_class(not message, "-empty")

    def on_unmount(self) -> None:
        # A form that goes away takes its unresolved errors with it.
        errors = getattr(self.app, "form_errors", None)
        if isinstance(errors, dict):
            errors.pop(self.location, None)
