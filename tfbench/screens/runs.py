"""The Runs screen: the runs in the runs directory, compared.

A table of runs (name, started, status, epochs, best metric, params, duration); select several
with space to overlay their curves and see where their Experiments differ, side by side; enter
opens one in the train screen. The table is read from the run directories in a thread worker
(`tfbench.engine.runs`, no TensorFlow), so a long history never blocks the first paint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tfbench.engine.runs import RunSummary, experiment_differences, scan_runs
from tfbench.engine.status import RunStatus
from tfbench.figures import format_duration, format_number
from tfbench.keymap import bindings
from tfbench.screens.frame import frame_top
from tfbench.widgets.curves import Curves, overlay_charts
from tfbench.widgets.fitted_table import FittedTable
from tfbench.widgets.footer import KeyFooter

STATUS_STYLES = {
    "completed": "green",
    RunStatus.EARLY_STOPPED: "cyan",
    "stopped": "yellow",
    "failed": "bold red",
    "running": "bold green",
    "paused": "yellow",
    "interrupted": "red",
}


class RunsScanned(Message):
    """The runs directory was read."""

    def __init__(self, runs: list[RunSummary]) -> None:
        super().__init__()
        self.runs = runs


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
        self.selected: list[str] = []  # run names, in the order they were selected
        self.scanned = False

    @classmethod
    def for_app(cls, app: Any) -> RunsScreen:
        """The workbench's Runs screen, on the App's runs folder."""
        return cls(app.runs_dir)

    def compose(self) -> ComposeResult:
        yield from frame_top("runs")
        yield FittedTable(id="runs", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="compare"):
            yield Curves(placeholder="no run to plot", id="overlay")
            with VerticalScroll(id="diff-box"):
                yield Static("", id="diff")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (
            ("", "mark"),
            ("run", "run"),
            ("started", "started"),
            ("status", "status"),
            ("epochs", "epochs"),
            ("best", "best"),
            ("params", "params"),
            ("time", "duration"),
        ):
            table.add_column(label, key=key)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        if self.scanned:
            self.action_refresh()

    def action_refresh(self) -> None:
        self._scan(self.runs_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-scan")
    def _scan(self, runs_dir: Path) -> None:
        self.post_message(RunsScanned(scan_runs(runs_dir)))

    def on_runs_scanned(self, message: RunsScanned) -> None:
        self.runs = message.runs
        names = {run.name for run in self.runs}
        self.selected = [name for name in self.selected if name in names]
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for run in self.runs:
            table.add_row(*self._cells(run), key=run.name)
        if self.runs:
            table.move_cursor(row=min(max(row, 0), len(self.runs) - 1))
        if not self.runs:
            self.query_one("#diff", Static).update(Text(f"no runs in {self.runs_dir} yet", style="dim"))
        self.scanned = True
        self._show_comparison()

    def _cells(self, run: RunSummary) -> list:
        status = Text(run.status.replace("_", " "), style=STATUS_STYLES.get(run.status, ""))
        return [
            "✓" if run.name in self.selected else " ",
            run.name,
            run.started_text[5:],
            status,
            f"{run.epochs_completed}/{run.epochs}" if run.epochs else str(run.epochs_completed),
            run.best_text,
            f"{run.params:,}" if run.params is not None else "—",
            format_duration(run.duration),
        ]

    def _cursor_run(self) -> RunSummary | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row < 0 or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def compared_runs(self) -> list[RunSummary]:
        """The selected runs, or the one under the cursor when none is selected."""
        by_name = {run.name: run for run in self.runs}
        chosen = [by_name[name] for name in self.selected if name in by_name]
        if chosen:
            return chosen
        current = self._cursor_run()
        return [current] if current is not None else []

    def _show_comparison(self) -> None:
        runs = self.compared_runs()
        curves = self.query_one("#overlay", Curves)
        curves.set_charts(overlay_charts(runs) if runs else [])
        curves.redraw()
        if self.runs:
            self.query_one("#diff", Static).update(differences_table(runs))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.selected:
            self._show_comparison()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_toggle_select(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        if run.name in self.selected:
            self.selected.remove(run.name)
        else:
            self.selected.append(run.name)
        table = self.query_one(DataTable)
        table.update_cell(run.name, "mark", "✓" if run.name in self.selected else " ")
        self._show_comparison()

    def action_clear(self) -> None:
        for name in self.selected:
            self.query_one(DataTable).update_cell(name, "mark", " ")
        self.selected = []
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
