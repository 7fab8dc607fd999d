"""The dataset picker: sources grouped by kind, what a source holds, a preview, and the pipeline.

Choosing a source edits the Experiment's `data.source`; the App describes it in a worker (shapes,
classes, sizes, download size, whether it is prepared locally) and this screen draws a few samples
— half-block pictures for images, rows for tabular data, text for text — and the class balance,
loaded in a worker of its own. The pipeline options below edit the rest of the data section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from tfbench.data import registry
from tfbench.errors import UserError
from tfbench.keymap import bindings
from tfbench.messages import DatasetsListed, LabelProposed, PreviewLoaded
from tfbench.screens.frame import WorkbenchScreen
from tfbench.widgets.fitted_table import FittedTable
from tfbench.widgets.preview import balance_bars, half_block_image

PIPELINE_FIELDS = (
    ("validation_split", "Validation fraction", "float"),
    ("validation", "Validation split name", "str"),
    ("test", "Test split name", "str"),
    ("batch_size", "Batch size", "int"),
)
PREVIEW_SAMPLES = 6
COLUMN_KINDS = ("numeric", "categorical", "text", "date", "drop")  # what `k` cycles through


def is_image(shape: tuple) -> bool:
    """Whether samples of this shape are pictures worth drawing (H×W or H×W×C, C ≤ 4)."""
    shape = tuple(shape)
    if len(shape) == 2:
        return all(d is not None and d >= 4 for d in shape)
    if len(shape) == 3:
        return all(d is not None and d >= 4 for d in shape[:2]) and shape[2] in (1, 3, 4)
    return False


def describe_info(info: Any) -> Text:
    """The info panel's text: what the data is, its shapes, classes and sizes."""
    from tfbench.widgets.layer_table import format_shape

    text = Text()
    text.append(f"{info.source}\n", style="bold")
    if info.description:
        text.append(f"{info.description}\n")
    text.append("Input ", style="bold")
    text.append(f"{format_shape(tuple(info.input_shape))} {info.input_dtype}   ")
    text.append("Labels ", style="bold")
    if info.label_kind == "regression":
        text.append(f"regression {format_shape(tuple(info.label_shape)) or 'scalar'}\n")
    else:
        names = ", ".join(info.class_names[:10]) + (", …" if len(info.class_names) > 10 else "")
        text.append(f"{info.label_kind}, {info.num_classes} classes ({names})\n")
    sizes = "  ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} ?" for k, v in info.sizes.items())
    if sizes:
        text.append("Samples ", style="bold")
        text.append(sizes + "\n")
    extra = info.extra or {}
    if extra.get("download_size"):
        text.append("Download ", style="bold")
        text.append(f"{_bytes(extra['download_size'])}   ")
    if "prepared" in extra:
        text.append("Prepared locally: ", style="bold")
        text.append("yes" if extra["prepared"] else "no (needs a download)")
    text.rstrip()
    return text


def _bytes(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return str(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(value)


def render_preview(preview: dict, info: Any, colour: bool = True, width: int = 80) -> Any:
    """A few samples drawn for the terminal: pictures, table rows or text.

    Args:
        preview: what `tfbench.data.preview` returns (samples with `x`, `y`, `label`).
        info: the source's DataInfo (None when unknown).
        colour: grey-level colours for pictures; shade characters without.
        width: the characters available; pictures that would not fit are left out.
    """
    if preview.get("table"):
        return render_table_rows(preview["table"], width)
    samples = preview.get("samples") or []
    if not samples:
        return Text("no samples")
    shape = tuple(info.input_shape) if info is not None else ()
    if is_image(shape):
        picture_width = min(14, int(shape[1]))
        samples = samples[: max(1, (width + 2) // (picture_width + 2))]
        grid = Table.grid(padding=(0, 2))
        cells = []
        for sample in samples:
            picture = half_block_image(sample["x"], width=14, colour=colour)
            picture.append(f"\n{sample.get('label', sample.get('y'))}")
            cells.append(picture)
        for _ in cells:
            grid.add_column()
        grid.add_row(*cells)
        return grid
    if info is not None and info.input_dtype == "string":
        lines = []
        for sample in samples:
            x = sample["x"]
            x = x.decode("utf-8", "replace") if isinstance(x, bytes) else str(getattr(x, "item", lambda x=x: x)())
            lines.append(Text(f"[{sample.get('label', sample.get('y'))}] {x[:160]}"))
        return Group(*lines)
    table = Table(box=None, padding=(0, 1), show_edge=False)
    first = samples[0]["x"]
    flat_len = len(_flat(first))
    shown = min(flat_len, 6)
    for i in range(shown):
        table.add_column(f"x{i}", justify="right")
    if flat_len > shown:
        table.add_column("…")
    table.add_column("label", style="bold")
    for sample in samples:
        values = _flat(sample["x"])
        row = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in values[:shown]]
        if flat_len > shown:
            row.append("…")
        row.append(str(sample.get("label", sample.get("y"))))
        table.add_row(*row)
    return table


def render_table_rows(table: dict, width: int = 80) -> Table:
    """A table's first raw rows under the file's own column names (missing cells as —).

    As many columns as fit `width` are shown, each at most 14 characters wide; `…` marks the rest.
    """
    grid = Table(box=None, padding=(0, 1), show_edge=False)
    label = next((c["name"] for c in table.get("columns", []) if c["role"] == "label"), None)
    shown, used = 0, 0
    for i, name in enumerate(table["header"]):
        cell = min(14, max([len(name)] + [len(row[i]) for row in table["rows"]]))
        if used + cell + 1 > width - 2 and shown:
            break
        grid.add_column(name, style="bold" if name == label else "", no_wrap=True, overflow="ellipsis", max_width=14)
        shown, used = shown + 1, used + cell + 1
    if shown < len(table["header"]):
        grid.add_column("…")
    for row in table["rows"]:
        grid.add_row(*row[:shown], *(["…"] if shown < len(table["header"]) else []))
    return grid


def column_row(column: dict) -> tuple[str, str, str, str]:
    """One row of the columns table: name, kind (and what was inferred), missing, distinct."""
    kind = column["kind"]
    if column.get("error"):
        kind = f"✗ {kind}"
    elif column["role"] == "label":
        kind = "◆ label"
    elif column["role"] == "dropped":
        kind = "dropped" + (" (identifier)" if column["inferred"] == "identifier" and kind == "identifier" else "")
    elif kind != column["inferred"]:
        kind = f"{kind} (was {column['inferred']})"
    return column["name"], kind, f"{column['missing']:,}", f"{column['distinct']:,}"


def label_line(columns: list[dict], proposal: Any, named: bool) -> Text:
    """The line above the columns table: which column is the label and why (the proposal's reason)."""
    label = next((c["name"] for c in columns if c["role"] == "label"), None)
    if label is None:
        return Text("")
    text = Text.assemble(("◆ label ", "bold"), (label, "bold"))
    if proposal is not None and proposal.column == label:
        text.append(f" — proposed: {proposal.reason}")
    elif proposal is not None:
        text.append(f" — your choice (proposed: {proposal.column}, {proposal.reason})")
    elif not named:
        text.append(" — the last column (data.options.label not set)")
    text.append("   l picks another", style="dim")
    return text


def column_errors(columns: list[dict]) -> Text:
    """The kinds a column's values do not fit, one line each under the columns table (empty when none)."""
    lines = [f"✗ {c['name']}: {c['error']} — k picks a kind that fits" for c in columns if c.get("error")]
    return Text("\n".join(lines), style="bold red")


class ColumnTable(FittedTable):
    """A table's columns; on the highlighted one: l makes it the label, k changes its kind, x drops it."""

    KEYS = "data-columns"
    BINDINGS = bindings(KEYS)

    class Chosen(Message):
        """The user asked to change a column: `what` is label, kind or drop."""

        def __init__(self, column: str, what: str) -> None:
            super().__init__()
            self.column, self.what = column, what

    def _chosen(self, what: str) -> None:
        if self.row_count:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
            self.post_message(self.Chosen(str(key), what))

    def action_label(self) -> None:
        self._chosen("label")

    def action_kind(self) -> None:
        self._chosen("kind")

    def action_drop(self) -> None:
        self._chosen("drop")


def column_change(columns: list[dict], name: str, what: str):
    """The edit of `data.options` that one column choice makes (label, next kind, drop or keep)."""
    column = next(c for c in columns if c["name"] == name)

    def change(data: dict) -> None:
        options = data.setdefault("data", {}).setdefault("options", {})
        kinds = dict(options.get("columns") or {})
        if what == "label":
            options["label"] = name
            kinds.pop(name, None)
        elif column["role"] == "label":
            return
        elif what == "drop":
            if column["role"] == "dropped" and kinds.get(name) == "drop":
                kinds.pop(name)
            elif column["role"] == "dropped":
                kinds[name] = "categorical" if column["inferred"] == "identifier" else column["inferred"]
            else:
                kinds[name] = "drop"
        else:
            following = next_kind(kinds.get(name, column["kind"]), column.get("fits") or COLUMN_KINDS)
            if following == column["inferred"]:
                kinds.pop(name, None)
            else:
                kinds[name] = following
        if kinds:
            options["columns"] = kinds
        else:
            options.pop("columns", None)

    return change


def next_kind(current: str, fits: list[str] | tuple[str, ...]) -> str:
    """The kind `k` moves a column to: the next of `COLUMN_KINDS` after `current` that its values fit."""
    start = COLUMN_KINDS.index(current) + 1 if current in COLUMN_KINDS else 0
    ordered = COLUMN_KINDS[start:] + COLUMN_KINDS[:start]
    return next((kind for kind in ordered if kind in fits), "drop")


def _flat(x: Any) -> list:
    values = x.tolist() if hasattr(x, "tolist") else x
    out: list = []

    def walk(v):
        if isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
        else:
            out.append(v)

    walk(values)
    return out


class DatasetScreen(WorkbenchScreen):
    """Pick the data the model trains on and see what it holds."""

    screen_name = "data"
    CSS_PATH = "dataset.tcss"
    KEYS = "data"
    BINDINGS = bindings(KEYS)

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.preview: dict | None = None
        self.preview_error: str = ""
        self._previewed: str | None = None
        self.proposal: tuple[str, Any] | None = None  # (source, LabelCandidate) of the table picked last
        self._proposing: str | None = None  # the file whose columns are being read for a label proposal
        self._columns_of: str | None = None  # the source whose columns the table shows
        self.columns_table: dict | None = None  # the file's columns (`table_source.overview`), kept past an error
        self._focus_columns = False  # a label was just proposed: the columns table takes the keys

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dataset"):
            with Vertical(id="sources"):
                yield Input(placeholder="search datasets", id="data-search", compact=True)
                yield OptionList(id="data-list", compact=True)
                yield Label("Files", classes="section")
                with Horizontal(id="file-row"):
                    yield Select(
                        [(k, k) for k in registry.file_kinds()],
                        value="csv",
                        allow_blank=False,
                        id="file-kind",
                        compact=True,
                    )
                    yield Input(placeholder="path, or b to browse", id="file-path", compact=True)
            with VerticalScroll(id="data-detail"):
                yield Static("", id="data-info")
                yield Label("Preview", classes="section")
                yield Static("", id="data-preview")
                yield Label(
                    "Columns  (l label · k kind · x drop/keep · ctrl+z undo)",
                    classes="section table-only",
                    id="columns-title",
                )
                yield Static("", id="label-proposal", classes="table-only")
                yield ColumnTable(id="table-columns", cursor_type="row", zebra_stripes=False, classes="table-only")
                yield Static("", id="column-errors", classes="table-only")
                yield Label("Class balance", classes="section")
                yield Static("", id="data-balance")
                yield Label("Pipeline", classes="section", id="pipeline-title")
                with Vertical(id="pipeline"):
                    for name, label, _ in PIPELINE_FIELDS:
                        with Horizontal(classes="pipe-row"):
                            yield Label(label, classes="pipe-label")
                            yield Input(id=f"pipe-{name}", compact=True)
                        yield Static("", id=f"pipe-error-{name}", classes="pipe-error -empty")
                    with Horizontal(classes="pipe-row"):
                        yield Checkbox("shuffle", id="pipe-shuffle", compact=True)
                        yield Checkbox("cache", id="pipe-cache", compact=True)
                        yield Checkbox("prefetch", id="pipe-prefetch", compact=True)

    def on_mount(self) -> None:
        self._list_datasets("")
        self.sync()
        self.query_one("#data-list", OptionList).focus()

    # -- listing ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="datasets")
    def _list_datasets(self, query: str) -> None:
        try:
            rows = self.app.engine_calls.datasets(query)
        except UserError:
            rows = []
        self.post_message(DatasetsListed(query, rows))

    @on(DatasetsListed)
    def _listed(self, message: DatasetsListed) -> None:
        if message.query != self.query_one("#data-search", Input).value:
            return
        self.rows = message.rows
        listing = self.query_one("#data-list", OptionList)
        listing.clear_options()
        current = self.app.experiment.data.source
        highlight = None
        for kind, title in registry.listed_groups():
            rows = [r for r in self.rows if r.get("kind") == kind]
            if not rows:
                continue
            listing.add_option(Option(Text(title, style="bold"), disabled=True))
            for row in rows:
                source = row["name"] if ":" in row["name"] else f"{kind}:{row['name']}"
                shape = row.get("shape")
                label = Text(f"  {source.split(':', 1)[1]:<18}", style="")
                if isinstance(shape, (list, tuple)) and shape:
                    label.append(" " + "×".join("?" if d is None else str(d) for d in shape), style="dim")
                elif isinstance(shape, str) and shape:
                    label.append(f" {shape}", style="dim")
                listing.add_option(Option(label, id=source))
                if source == current:
                    highlight = listing.option_count - 1
        if highlight is not None:
            listing.highlighted = highlight

    @on(Input.Changed, "#data-search")
    def _search(self, event: Input.Changed) -> None:
        self._list_datasets(event.value)

    @on(OptionList.OptionSelected, "#data-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.use_source(event.option.id)

    @on(Input.Submitted, "#file-path")
    def _file_submitted(self, event: Input.Submitted) -> None:
        kind = self.query_one("#file-kind", Select).value
        if event.value.strip():
            self.use_source(f"{kind}:{event.value.strip()}")

    def use_source(self, source: str) -> None:
        """Make `source` the Experiment's data source (its source options start afresh).

        A file is read first for a label proposal (`tfbench.data.label_proposal`): a table gets the
        column most like a label, and the screen says why; the source and its label are one edit.
        """
        if source == self.app.experiment.data.source:
            return
        if source.split(":", 1)[0] in registry.file_kinds():
            self._proposing = source
            self.query_one("#data-info", Static).update(Text(f"{source}\nReading its columns…"))
            self._propose_label(source)
        else:
            self._apply_source(source, None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="label-proposal")
    def _propose_label(self, source: str) -> None:
        from tfbench.spec import DataSpec

        try:
            candidates = self.app.engine_calls.label_candidates(DataSpec(source=source))
        except (UserError, ValueError):
            candidates = []  # the source's own error shows once it is described
        self.post_message(LabelProposed(source, candidates))

    @on(LabelProposed)
    def _label_proposed(self, message: LabelProposed) -> None:
        if message.source != self._proposing:
            return
        self._proposing = None
        self._apply_source(message.source, message.candidates[0] if message.candidates else None)

    def _apply_source(self, source: str, proposal: Any) -> None:
        def change(data: dict) -> None:
            section = data.setdefault("data", {})
            section["source"] = source
            section["options"] = {"label": proposal.column} if proposal is not None else {}

        error = self.app.edit(change)
        if error is not None:
            self.notify(str(error), severity="error", timeout=8)
        elif proposal is not None:
            self.proposal = (self.app.experiment.data.source, proposal)
            self._focus_columns = True

    # -- drawing ------------------------------------------------------------------------------
    def sync(self) -> None:
        if not self.is_mounted:
            return
        app = self.app
        spec = app.experiment.data
        info_widget = self.query_one("#data-info", Static)
        info, error = app.data_info, app.data_error
        if error is not None:
            info_widget.update(Text(f"{spec.source}\n✗ {error}", style="bold red"))
            if (getattr(error, "location", None) or "").startswith("data.options.columns."):
                self._request_preview(spec)  # the columns table marks the column whose kind does not fit
        elif info is None or info.source != spec.source:
            info_widget.update(Text(f"{spec.source}\nDescribing…"))
        else:
            info_widget.update(describe_info(info))
            if (info.extra or {}).get("prepared", True):
                self._request_preview(spec)
        self._draw_preview()
        self._fill_pipeline(spec)

    def _request_preview(self, spec: Any) -> None:
        key = repr(spec.model_dump())
        if key != self._previewed:
            self._previewed = key
            self.preview, self.preview_error = None, ""
            self._load_preview(spec, key)

    def _draw_preview(self) -> None:
        info = self.app.data_info
        preview_widget = self.query_one("#data-preview", Static)
        balance_widget = self.query_one("#data-balance", Static)
        if self.preview_error:
            preview_widget.update(Text(self.preview_error, style="red"))
            balance_widget.update("")
        elif self.preview is None:
            prepared = (getattr(info, "extra", None) or {}).get("prepared", True)
            preview_widget.update("Loading samples…" if prepared else "Not prepared locally: no preview.")
            balance_widget.update("")
        else:
            colour = not self.app.no_color if hasattr(self.app, "no_color") else True
            width = self.query_one("#data-detail").size.width - 2
            preview_widget.update(render_preview(self.preview, info, colour=colour, width=max(width, 16)))
            counts = self.preview.get("label_counts") or {}
            balance_widget.update(balance_bars(counts, width=24) if counts else Text("no class labels"))
        if self.preview is not None or self.preview_error:  # while a new preview loads, the columns stay
            self._draw_columns()

    def _draw_columns(self) -> None:
        """The file's columns, for a table source (the label's row highlighted on a new one); hidden otherwise."""
        table = self.columns_table
        for widget in self.query(".table-only"):
            widget.display = bool(table)
        if not table:
            return
        grid = self.query_one("#table-columns", ColumnTable)
        cursor = grid.cursor_row
        grid.clear(columns=not grid.columns)
        if not grid.columns:
            grid.add_columns("column", "kind", "missing", "distinct")
        for column in table["columns"]:
            grid.add_row(*column_row(column), key=column["name"])
        spec = self.app.experiment.data
        if spec.source != self._columns_of:
            self._columns_of = spec.source
            cursor = next((i for i, c in enumerate(table["columns"]) if c["role"] == "label"), 0)
        if grid.row_count:
            grid.move_cursor(row=min(cursor, grid.row_count - 1))
        if self._focus_columns:
            self._focus_columns = False
            grid.focus()
        proposal = self.proposal[1] if self.proposal and self.proposal[0] == spec.source else None
        self.query_one("#label-proposal", Static).update(
            label_line(table["columns"], proposal, "label" in spec.options)
        )
        self.query_one("#column-errors", Static).update(column_errors(table["columns"]))

    @on(ColumnTable.Chosen)
    def _column_chosen(self, message: ColumnTable.Chosen) -> None:
        table = self.columns_table or {}
        change = column_change(table.get("columns", []), message.column, message.what)
        error = self.app.edit(change)
        if error is not None:
            self.notify(str(error), severity="error", timeout=8)

    def _fill_pipeline(self, spec) -> None:
        for name, _, _ in PIPELINE_FIELDS:
            widget = self.query_one(f"#pipe-{name}", Input)
            if widget.has_focus:
                continue
            value = getattr(spec, name)
            text = "" if value is None else str(value)
            if widget.value != text:
                with widget.prevent(Input.Changed):
                    widget.value = text
        for name in ("shuffle", "cache", "prefetch"):
            box = self.query_one(f"#pipe-{name}", Checkbox)
            value = bool(getattr(spec, name))
            if box.value != value:
                with box.prevent(Checkbox.Changed):
                    box.value = value

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load_preview(self, spec, key: str) -> None:
        try:
            preview = self.app.engine_calls.preview(spec, PREVIEW_SAMPLES)
        except UserError as exc:
            preview = {"error": str(exc)}
        self.post_message(PreviewLoaded(key, preview))

    @on(PreviewLoaded)
    def _preview_loaded(self, message: PreviewLoaded) -> None:
        if message.source != self._previewed:
            return
        self.preview_error = message.preview.get("error", "")
        self.preview = None if self.preview_error else message.preview
        self.columns_table = message.preview.get("table")
        self._draw_preview()

    def on_resize(self) -> None:
        if self.is_mounted:
            self._draw_preview()  # as many pictures as fit the new width

    def on_worker_state_changed(self, event) -> None:
        """A preview that failed for another reason than a user mistake still ends its wait."""
        from textual.worker import WorkerState

        if event.worker.group == "preview" and event.state == WorkerState.ERROR:
            self.preview, self.preview_error = None, f"no preview: {event.worker.error}"
            self.columns_table = None
            self._draw_preview()
        elif event.worker.group == "label-proposal" and event.state == WorkerState.ERROR and self._proposing:
            source, self._proposing = self._proposing, None
            self._apply_source(source, None)  # no proposal: the source as picked

    # -- pipeline options ---------------------------------------------------------------------
    @on(Input.Changed, ".pipe-row Input")
    def _pipe_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("pipe-")
        kind = dict((n, k) for n, _, k in PIPELINE_FIELDS)[name]
        text = event.value.strip()
        error_widget = self.query_one(f"#pipe-error-{name}", Static)
        location = f"data.{name}"
        value: int | float | str | None
        try:
            if not text:
                value = None
            elif kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            else:
                value = text
        except ValueError:
            self.show_field_error(
                error_widget, location, "expected a whole number" if kind == "int" else "expected a number"
            )
            return

        def change(data: dict) -> None:
            section = data.setdefault("data", {})
            if value is None:
                section.pop(name, None)
                if name == "validation_split":
                    section[name] = None
            else:
                section[name] = value

        error = self.app.edit(change, merge=location)
        self.show_field_error(error_widget, location, error.message if error is not None else "")

    @on(Checkbox.Changed, ".pipe-row Checkbox")
    def _pipe_toggled(self, event: Checkbox.Changed) -> None:
        name = (event.checkbox.id or "").removeprefix("pipe-")

        def change(data: dict) -> None:
            data.setdefault("data", {})[name] = event.value

        self.app.edit(change)

    def action_browse(self) -> None:
        """Choose a data file or folder in a file browser; its kind comes from the kind selector."""
        from tfbench.screens.dialogs import FileBrowser

        def chosen(path: str | None) -> None:
            if not path:
                return
            try:  # a path under the working folder is written relative, so presets travel
                path = str(Path(path).resolve().relative_to(Path.cwd().resolve()))
            except ValueError:
                pass
            kind = self.query_one("#file-kind", Select)
            kind.value = registry.kind_for_path(path) or kind.value
            field = self.query_one("#file-path", Input)
            field.value = path
            self.use_source(f"{kind.value}:{path}")

        self.app.push_screen(FileBrowser("."), chosen)

    def action_search(self) -> None:
        self.query_one("#data-search", Input).focus()

    def action_focus_pipeline(self) -> None:
        self.query_one("#pipe-batch_size", Input).focus()
        self.query_one("#data-detail").scroll_to_widget(self.query_one("#pipeline"))
