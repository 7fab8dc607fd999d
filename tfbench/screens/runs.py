"""The Runs screen: the runs in the runs directory, compared.

A table of runs (name, tags, started, status, epochs, best metric, params, duration); `/` filters
it with the runs query language (`tfbench.engine.runs_query`, as `tfbench runs --filter`), `s` and
`S` sort it by any column, `t` and `n` edit the cursor run's tags and note (its `notes.json`); select
several with space to overlay their curves and see where their Experiments differ, side by side;
enter opens one in the train screen. The runs are read in a thread worker through the runs index
(`tfbench.engine.runs_index`, no TensorFlow), which reads again only the runs whose files changed,
and each run's cells and query fields are made there once (the first read shows the index's runs
before their files are checked, then any that changed): a keystroke in the filter only matches,
sorts and hands the table a new list, whose lines are drawn only where they are on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from tfbench.engine.runs import RunSummary, experiment_differences
from tfbench.engine.runs_index import complete_summary, runs_index
from tfbench.engine.runs_query import Query, QueryError, check_fields, parse_query, run_fields
from tfbench.engine.status import RunStatus
from tfbench.errors import UserError
from tfbench.figures import format_duration, format_number
from tfbench.keymap import bindings
from tfbench.run_notes import set_note, set_tags
from tfbench.screens.frame import frame_top
from tfbench.widgets.curves import Curves, overlay_charts
from tfbench.widgets.footer import KeyFooter
from tfbench.widgets.rows_table import Row, RowsTable

STATUS_STYLES = {
    "completed": "green",
    RunStatus.EARLY_STOPPED: "cyan",
    "stopped": "yellow",
    "failed": "bold red",
    "running": "bold green",
    "paused": "yellow",
    "interrupted": "red",
}

COLUMNS = (
    ("", "mark"),
    ("run", "run"),
    ("tags", "tags"),
    ("started", "started"),
    ("status", "status"),
    ("epochs", "epochs"),
    ("best", "best"),
    ("params", "params"),
    ("time", "time"),
)
RIGHT_COLUMNS = {5, 7, 8}  # epochs, params, time
OPTIONAL_COLUMNS = (3, 7, 8, 5, 2)  # left out in this order on a narrow terminal: started, params, time, epochs, tags
QUERY_EXAMPLE = "status:completed val_accuracy>0.95 train.optimizer.learning_rate>=1e-3 tag:baseline"
COMPARISON_DELAY = 0.15  # seconds without a keystroke before the curves follow the filter


class RunsCounted(Message):
    """The runs directory was listed: how many runs its rows are being made for."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count


class RunsScanned(Message):
    """The runs directory was read: its runs, and each one's row made ready to show and filter."""

    def __init__(self, runs: list[RunSummary], rows: list[RunRow], monitor: str | None, checked: bool = True) -> None:
        super().__init__()
        self.runs = runs
        self.rows = rows
        self.monitor = monitor  # the metric of every run's best, when they share one
        self.checked = checked  # False: the runs as the index kept them, their files not looked at yet


def differences_table(runs: list[RunSummary]) -> Table | Text:
    """Where the selected runs' Experiments differ, one column per run (#1 … as in the legend)."""
    if len(runs) < 2:
        return Text("select two or more runs with space to compare their Experiments", style="dim")
    rows = experiment_differences([run.experiment for run in runs])
    table = Table(box=None, padding=(0, 1, 0, 0), show_edge=False, expand=True)
    table.add_column("setting", style="bold", no_wrap=True, overflow="ellipsis", ratio=4)
    for i in range(1, len(runs) + 1):
        table.add_column(f"#{i}", no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_row("best", *[short_best(run) for run in runs], style="dim")
    if not rows:
        table.add_row("(same Experiment)", *["" for _ in runs])
    for key, values in rows:
        table.add_row(short_key(key), *values)
    return table


def short_key(key: str) -> str:
    """A setting's path without the section names that do not help tell settings apart."""
    for prefix in ("model.", "train."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def short_best(run: RunSummary) -> str:
    return "—" if run.best_value is None else f"{format_number(run.best_value)}@{run.best_epoch}"


@dataclass
class RunRow:
    """A run as the table shows, sorts and filters it: made once per read of the run, off the UI thread."""

    run: RunSummary
    fields: dict[str, Any]
    plain: Row
    marked: Row

    def sort_key(self, column: str) -> Any:
        """The run's value in `column`, for sorting (None: the run has none)."""
        run = self.run
        return {
            "run": run.name,
            "tags": " ".join(run.tags) or None,
            "started": run.started,
            "status": run.status,
            "epochs": run.epochs_completed,
            "best": run.best_value,
            "params": run.params,
            "time": run.duration,
        }.get(column)


def shared_monitor(runs: list[RunSummary]) -> str | None:
    """The metric every run's best is measured by, when they agree (the header names it once)."""
    monitors = {run.best_monitor for run in runs if run.best_value is not None}
    return monitors.pop() if len(monitors) == 1 else None


def run_cells(run: RunSummary, monitor: str | None = None) -> list[Text]:
    """The table's cells of a run, after its mark; `monitor`: the best's metric, named in the header."""
    if monitor and run.best_value is not None:
        best = f"{format_number(run.best_value)} @{run.best_epoch}" if run.best_epoch else format_number(run.best_value)
    else:
        best = run.best_text
    return [
        Text(run.name),
        Text(" ".join(run.tags), style="magenta"),
        Text(run.started_text[5:]),
        Text(run.status.replace("_", " "), style=STATUS_STYLES.get(run.status, "")),
        Text(f"{run.epochs_completed}/{run.epochs}" if run.epochs else str(run.epochs_completed)),
        Text(best),
        Text(f"{run.params:,}" if run.params is not None else "—"),
        Text(format_duration(run.duration)),
    ]


def run_row(run: RunSummary, monitor: str | None = None) -> RunRow:
    """A run made ready for the table: its cells measured, with and without the mark, and its query fields."""
    cells = run_cells(run, monitor)
    return RunRow(run, run_fields(run), Row.of(run.name, [Text(" "), *cells]), Row.of(run.name, [Text("✓"), *cells]))


def sorted_rows(rows: list[RunRow], column: str, descending: bool) -> list[RunRow]:
    """Rows by `column`, runs without a value last whichever the order; ties by start, then name."""
    known = [r for r in rows if r.sort_key(column) is not None]
    missing = [r for r in rows if r.sort_key(column) is None]
    known.sort(key=lambda r: (r.sort_key(column), r.run.started or 0.0, r.run.name), reverse=descending)
    return known + missing


class RunsScreen(Screen):
    """The run history of a runs directory.

    Args:
        runs_dir: the folder holding one subfolder per run.
    """

    CSS_PATH = "runs.tcss"

    KEYS = "runs"
    BINDINGS = bindings(KEYS)

    def __init__(self, runs_dir: Path, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.runs_dir = Path(runs_dir)
        self.runs: list[RunSummary] = []
        self.rows: list[RunRow] = []
        self.shown: list[RunRow] = []  # the rows the table shows: filtered and sorted
        self.selected: list[str] = []  # run names, in the order they were selected
        self.scanned = False
        self.run_query = Query()
        self.known_fields: set[str] = set()
        self.sort_column = "started"
        self.descending = False
        self.prompt_mode = ""  # "filter", "tags" or "note" while the prompt line is open
        self.comparison_timer: Timer | None = None
        self.monitor: str | None = None
        self.made_rows: dict[str, tuple[RunSummary, str | None, RunRow]] = {}  # by run: its summary, monitor, row
        self.filter_updates = 0  # keystrokes the filter has answered (the benchmark waits on it)
        self.completed: dict[str, tuple[RunSummary, RunSummary]] = {}  # by run: its compact and its complete summary
        self.error_shown: str | None = None  # the prompt's error line as last set (None: never set)
        self.reading = "reading the runs…"  # the table's title until the first read is done

    @classmethod
    def for_app(cls, app: Any) -> RunsScreen:
        """The workbench's Runs screen, on the App's runs folder."""
        return cls(app.runs_dir)

    def compose(self) -> ComposeResult:
        yield from frame_top("runs")
        with Horizontal(id="prompt"):
            yield Label("/", id="prompt-label")
            yield Input(id="prompt-input", placeholder=QUERY_EXAMPLE)
        yield Static("", id="prompt-error")
        yield RowsTable(self._labels(), right=RIGHT_COLUMNS, optional=OPTIONAL_COLUMNS, id="runs")
        with Horizontal(id="compare"):
            yield Curves(placeholder="no run to plot", id="overlay")
            with VerticalScroll(id="diff-box"):
                yield Static("", id="diff")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._update_title()
        self.query_one(RowsTable).focus()
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.scanned:
            self.action_refresh()

    def action_refresh(self) -> None:
        self._scan(self.runs_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-scan")
    def _scan(self, runs_dir: Path) -> None:
        """Read the runs; on the first read, show the index's runs at once, then check them against their files.

        Listing a thousand runs' files is thousands of system calls, each a wait for the UI thread to let go,
        so the first paint does not wait for it: the rows of an unchanged run are the same rows again.
        """
        index = runs_index(runs_dir)
        if not self.scanned:
            kept = index.kept()
            if kept:
                self.post_message(self._made(kept, checked=False))
        runs = index.scan(lambda count: self.post_message(RunsCounted(count)))
        self.post_message(self._made(runs, checked=True))

    def _made(self, runs: list[RunSummary], checked: bool) -> RunsScanned:
        """The runs with their rows, made only for runs read anew (only the scan worker calls it)."""
        monitor = shared_monitor(runs)
        made = self.made_rows  # the index hands back unchanged runs as they were
        rows = []
        for run in runs:
            kept = made.get(run.name)
            row = kept[2] if kept is not None and kept[0] is run and kept[1] == monitor else run_row(run, monitor)
            made[run.name] = (run, monitor, row)
            rows.append(row)
        return RunsScanned(runs, rows, monitor, checked)

    def on_runs_counted(self, message: RunsCounted) -> None:
        if not self.rows:
            self.reading = f"reading {message.count:,} runs…"
            self._update_title()

    def on_runs_scanned(self, message: RunsScanned) -> None:
        self.reading = ""
        self.runs = message.runs
        self.rows = message.rows
        if message.monitor != self.monitor:
            self.monitor = message.monitor
            self.query_one(RowsTable).set_labels(self._labels())
        self.known_fields = {key for row in self.rows for key in row.fields}
        names = {run.name for run in self.runs}
        self.selected = [name for name in self.selected if name in names]
        self._show_rows()
        if not self.runs:
            self.query_one("#diff", Static).update(Text(f"no runs in {self.runs_dir} yet", style="dim"))
        self.scanned = self.scanned or message.checked
        self._show_comparison()

    # -- the table: filtered, sorted ------------------------------------------------------------

    def _labels(self) -> list[str]:
        arrow = " ▼" if self.descending else " ▲"
        named = {"best": f"best {self.monitor}"} if self.monitor else {}
        return [named.get(key, label) + (arrow if key == self.sort_column else "") for label, key in COLUMNS]

    def _show_rows(self) -> None:
        """Fill the table with the rows the filter lets through, in the sort's order."""
        matched = [row for row in self.rows if self.run_query.matches(row.fields)]
        self.shown = sorted_rows(matched, self.sort_column, self.descending)
        chosen = set(self.selected)
        self.query_one(RowsTable).set_rows([r.marked if r.run.name in chosen else r.plain for r in self.shown])
        self._update_title()

    def _update_title(self) -> None:
        table = self.query_one(RowsTable)
        order = "descending" if self.descending else "ascending"
        if self.reading:
            table.border_title = self.reading
            return
        title = f"{len(self.shown)} of {len(self.rows)} runs · by {self.sort_column} {order}"
        if self.run_query.terms:
            title += f" · {self.run_query.text.strip()}"
        table.border_title = title
        run = self._cursor_run()
        table.border_subtitle = f"note: {run.note}" if run is not None and run.note else ""

    def action_sort(self) -> None:
        """Sort by the next column."""
        keys = [key for _, key in COLUMNS if key != "mark"]
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.query_one(RowsTable).set_labels(self._labels())
        self._show_rows()

    def action_flip_sort(self) -> None:
        """Reverse the order of the sort."""
        self.descending = not self.descending
        self.query_one(RowsTable).set_labels(self._labels())
        self._show_rows()

    # -- the prompt line: filter, tags, note ---------------------------------------------------------

    def action_filter(self) -> None:
        """Open the filter line (its query as it is)."""
        self._open_prompt("filter", "/", self.run_query.text, QUERY_EXAMPLE)

    def action_edit_tags(self) -> None:
        """Edit the tags of the run under the cursor."""
        run = self._cursor_run()
        if run is not None:
            self._open_prompt("tags", f"tags of {run.name}:", " ".join(run.tags), "baseline small-lr …")

    def action_edit_note(self) -> None:
        """Edit the note on the run under the cursor."""
        run = self._cursor_run()
        if run is not None:
            self._open_prompt("note", f"note on {run.name}:", run.note, "what this run was for")

    def _open_prompt(self, mode: str, label: str, value: str, placeholder: str) -> None:
        self.prompt_mode = mode
        self.query_one("#prompt").display = True
        self.query_one("#prompt-label", Label).update(label)
        field = self.query_one("#prompt-input", Input)
        field.placeholder = placeholder
        with field.prevent(Input.Changed):
            field.value = value
        field.cursor_position = len(value)
        self._show_error("")
        field.focus()

    def _close_prompt(self) -> None:
        self.prompt_mode = ""
        self.query_one("#prompt").display = False
        self._show_error("")
        self.query_one(RowsTable).focus()

    def _show_error(self, message: str) -> None:
        """One line under the prompt naming what is wrong (hidden when nothing is)."""
        if message == self.error_shown:
            return  # updating a Static lays the whole screen out again: not at every keystroke
        self.error_shown = message
        error = self.query_one("#prompt-error", Static)
        error.update(Text(message, style="bold red", no_wrap=True, overflow="ellipsis"))
        error.display = bool(message)

    @on(Input.Changed, "#prompt-input")
    def _query_typed(self, event: Input.Changed) -> None:
        if self.prompt_mode != "filter":
            return
        self.filter_updates += 1
        try:
            query = parse_query(event.value)
            check_fields(query, self.known_fields)
        except QueryError as exc:
            self._show_error(str(exc))
            return  # the table keeps the last filter that could be used
        self._show_error("")
        self.run_query = query
        self._show_rows()
        self._comparison_soon()

    @on(Input.Submitted, "#prompt-input")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        mode, run = self.prompt_mode, self._cursor_run()
        if mode == "filter":
            if not self.query_one("#prompt-error").display:
                self.query_one(RowsTable).focus()  # the filter stays shown; / edits it again
            return
        if run is None:
            self._close_prompt()
            return
        try:
            if mode == "tags":
                set_tags(run.path, event.value.split())
            else:
                set_note(run.path, event.value)
        except (UserError, OSError) as exc:
            self._show_error(str(exc))
            return
        self._close_prompt()
        self.action_refresh()  # the index reads this run again: its notes.json changed

    def action_clear(self) -> None:
        """Esc: close the prompt line (a filter is cleared), else clear the selection."""
        if self.prompt_mode:
            if self.prompt_mode == "filter":
                self.run_query = Query()
                self._show_rows()
                self._comparison_soon()
            self._close_prompt()
            return
        table = self.query_one(RowsTable)
        for name in self.selected:
            if name in self._rows_by_name():
                table.replace_row(self._rows_by_name()[name].plain)
        self.selected = []
        self._show_comparison()

    # -- selecting, comparing, opening ------------------------------------------------------------

    def _rows_by_name(self) -> dict[str, RunRow]:
        return {row.run.name: row for row in self.rows}

    def _cursor_run(self) -> RunSummary | None:
        index = self.query_one(RowsTable).cursor
        if not self.shown or index < 0 or index >= len(self.shown):
            return None
        return self.shown[index].run

    def compared_runs(self) -> list[RunSummary]:
        """The selected runs, or the one under the cursor when none is selected, with their curves."""
        by_name = {run.name: run for run in self.runs}
        chosen = [by_name[name] for name in self.selected if name in by_name]
        if not chosen:
            current = self._cursor_run()
            chosen = [current] if current is not None else []
        return [self._complete(run) for run in chosen]

    def _complete(self, run: RunSummary) -> RunSummary:
        """The run with its curves and Experiment (the index keeps neither), read once per read of the run."""
        kept = self.completed.get(run.name)
        if kept is None or kept[0] is not run:
            kept = (run, complete_summary(run))
            self.completed[run.name] = kept
        return kept[1]

    def _comparison_soon(self) -> None:
        """Redraw the curves and differences once the keys pause (a plot costs more than a keystroke)."""
        if self.comparison_timer is not None:
            self.comparison_timer.stop()
        self.comparison_timer = self.set_timer(COMPARISON_DELAY, self._show_comparison)

    def _show_comparison(self) -> None:
        if not self.is_mounted:
            return
        runs = self.compared_runs()
        curves = self.query_one("#overlay", Curves)
        curves.set_charts(overlay_charts(runs) if runs else [])
        curves.redraw()
        if self.runs:
            self.query_one("#diff", Static).update(differences_table(runs))

    def on_rows_table_row_highlighted(self, event: RowsTable.RowHighlighted) -> None:
        self._update_title()
        if not self.selected:
            self._comparison_soon()

    def on_rows_table_row_selected(self, event: RowsTable.RowSelected) -> None:
        self.action_open()

    def action_toggle_select(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        if run.name in self.selected:
            self.selected.remove(run.name)
        else:
            self.selected.append(run.name)
        row = self._rows_by_name()[run.name]
        self.query_one(RowsTable).replace_row(row.marked if run.name in self.selected else row.plain)
        self._show_comparison()

    def action_open(self) -> None:
        """Show the run under the cursor in the train screen."""
        run = self._cursor_run()
        if run is None:
            return
        from tfbench.screens.training import TrainingScreen

        try:
            installed = self.app.get_screen("train")
        except KeyError:
            installed = None
        if isinstance(installed, TrainingScreen) and not (installed.owns_runner and installed.state.running):
            if installed.is_mounted:
                installed.follow_run(run.path)
            else:
                installed.run_dir = run.path
            if hasattr(self.app, "action_show"):
                self.app.action_show("train")
            else:
                self.app.switch_screen("train")
            return
        # No train screen to reuse (or it is following the user's own live run): open another.
        self.app.push_screen(TrainingScreen(run.path))
