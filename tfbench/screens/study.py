"""The Study screen: a hyperparameter study's trials, live — without TensorFlow.

The trials table (state, objective best/min/last, parameters, duration), the best-so-far curve,
the objective against one parameter at a time (plotext scatter, `p` for the next parameter) and
Optuna's parameter importances. Enter opens a trial's run in the train screen; `s` stops the
study (its `tfbench tune` process, as Ctrl+C would); `b` loads `best.toml` into the workbench.
The study is read from its storage in a thread worker (Optuna's import and the storage read stay
off the event loop), every two seconds while trials run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual_plotext.plot import Plot

from tfbench.figures import format_duration
from tfbench.keymap import bindings
from tfbench.screens.frame import frame_top
from tfbench.widgets.fitted_table import FittedTable
from tfbench.widgets.footer import KeyFooter

REFRESH_SECONDS = 2.0
STATE_STYLES = {
    "finished": "green",
    "pruned": "yellow",
    "running": "bold green",
    "waiting": "dim",
    "failed": "bold red",
    "interrupted": "red",
}


class StudyRead(Message):
    """The study was read from its storage (plain data, see `StudyDir.snapshot`)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        super().__init__()
        self.snapshot = snapshot


class StudyUnreadable(Message):
    """The study directory could not be read."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


def scatter_picture(
    points: list[tuple[float, float]], title: str, width: int, height: int, log_x: bool = False, lines: bool = False
) -> Text:
    """A plotext scatter (or line) of `points` as text, sized to its widget."""
    points = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y) and (x > 0 or not log_x)]
    if not points or width < 20 or height < 6:
        return Text(f"{title}: nothing to plot yet", style="dim")
    plot = Plot()
    plot.clear_figure()
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if lines:
        plot.plot(xs, ys, marker="braille")
    plot.scatter(xs, ys, marker="dot" if lines else "●")
    if log_x:
        plot.xscale("log")
    plot.title(title)
    plot.plotsize(width, height)
    plot.theme("clear")
    return Text.from_ansi(plot.build(), no_wrap=True)


class Picture(Widget):
    """A plot drawn from a picture function at the widget's size (redrawn when the data or size change)."""

    DEFAULT_CSS = "Picture { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.draw: Callable[[int, int], Text] = lambda w, h: Text("")

    def show(self, draw: Callable[[int, int], Text]) -> None:
        self.draw = draw
        self.refresh()

    def render(self) -> Text:
        return self.draw(self.size.width, self.size.height)


def importance_table(importances: dict[str, float], names: dict[str, str]) -> Table | Text:
    """Optuna's importances as labelled bars, largest first."""
    if not importances:
        return Text("importances: after two finished trials", style="dim")
    table = Table(
        box=None, title="importance", title_justify="left", show_header=False, padding=(0, 1, 0, 0), expand=True
    )
    table.add_column("param", no_wrap=True, style="bold")
    table.add_column("bar", ratio=1, no_wrap=True, overflow="crop")
    table.add_column("share", justify="right", no_wrap=True)
    for path, share in sorted(importances.items(), key=lambda kv: -kv[1]):
        table.add_row(names.get(path, path), Text("█" * max(1, round(share * 8)), style="cyan"), f"{share:.0%}")
    return table


def trial_cells(row: dict[str, Any], params: list[str]) -> list:
    """A trials-table row: number, state, best, min, last, epochs, parameters, duration."""
    from tfbench.study.study import format_objective, format_param

    return [
        str(row["number"]),
        Text(row["state"], style=STATE_STYLES.get(row["state"], "")),
        format_objective(row["best"]),
        format_objective(row["min"]),
        format_objective(row["last"]),
        str(row["epochs"]),
        *[format_param(row["params"][p]) if p in row["params"] else "—" for p in params],
        format_duration(row["seconds"]),
    ]


class StudyScreen(Screen):
    """One study, followed while it runs.

    Args:
        study_dir: the study directory (`study.toml`, its storage, the trials' run directories).
        now: a fixed clock for the running trials' durations (pictures); the real time when None.
    """

    CSS_PATH = "study.tcss"
    KEYS = "study"
    BINDINGS = bindings(KEYS)

    def __init__(
        self, study_dir: Path, *, now: datetime | None = None, name: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(name=name, id=id)
        self.study_dir = Path(study_dir)
        self.now = now
        self.snapshot: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []
        self.param_index = 0
        self.reads = 0
        self.reading = False  # a read is in flight
        self._shown_cells: list[tuple] = []  # the table's rows as last shown
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        yield from frame_top("runs")
        yield Static(Text(f"reading {self.study_dir}…", style="dim"), id="study-head")
        yield FittedTable(id="trials", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="study-plots"):
            yield Picture(id="best-curve")
            yield Picture(id="param-scatter")
            yield Static("", id="importances")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_refresh()
        self._timer = self.set_interval(REFRESH_SECONDS, self._tick)

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _tick(self) -> None:
        # One read at a time: a slow read (a loaded machine, a big study) is not piled on.
        if not self.reading and (self.snapshot is None or self.snapshot.get("live")):
            self.action_refresh()

    def action_refresh(self) -> None:
        self.reading = True
        self._read_study(self.study_dir, self.now)

    @work(thread=True, exclusive=True, exit_on_error=False, group="study-read")
    def _read_study(self, study_dir: Path, now: datetime | None) -> None:
        from tfbench.errors import UserError
        from tfbench.study.study import StudyDir

        try:
            self.post_message(StudyRead(StudyDir.load(study_dir).snapshot(now)))
        except UserError as err:
            from tfbench.study.launch import launch_state

            state = launch_state(study_dir)  # a study the workbench started: still starting, or why not
            self.post_message(StudyUnreadable(str(err) if state is None else state))
        except Exception as exc:  # a storage another process is writing, a torn file: say so, retry
            self.post_message(StudyUnreadable(f"cannot read the study: {type(exc).__name__}: {exc}"))

    def on_study_unreadable(self, message: StudyUnreadable) -> None:
        self.reading = False
        if message.error == "starting":
            text = Text(f"starting `tfbench tune` in {self.study_dir}…", style="dim")
        else:
            text = Text(message.error, style="bold red")
        self.query_one("#study-head", Static).update(text)

    def on_study_read(self, message: StudyRead) -> None:
        snap = self.snapshot = message.snapshot
        self.reading = False
        self.reads += 1
        from tfbench.study.study import sorted_rows

        self.rows = sorted_rows(snap["rows"], snap["direction"])
        self._show_head(snap)
        self._show_table(snap)
        self._show_plots(snap)

    def _show_head(self, snap: dict[str, Any]) -> None:
        from tfbench.study.study import format_objective

        best = snap["best"]
        text = Text.assemble(
            (f"{snap['name']}", "bold"),
            f"  {snap['done']}/{snap['planned']} trials  ",
            (f"{snap['running']} running  " if snap["running"] else "", "bold green"),
            f"{snap['objective']} ({snap['direction']})",
            (
                f"  best #{best['number']} {format_objective(best['value'])}" if best else "  no finished trial yet",
                "cyan",
            ),
            ("" if snap["live"] else "  complete", "green"),
        )
        self.query_one("#study-head", Static).update(text)

    def _show_table(self, snap: dict[str, Any]) -> None:
        table = self.query_one("#trials", DataTable)
        params = snap["params"]
        if not table.columns:
            for label in (
                "#",
                "state",
                "best",
                "min",
                "last",
                "epochs",
                *[snap["short_names"][p] for p in params],
                "time",
            ):
                table.add_column(label, key=label)
        cells = [(str(r["number"]), *map(str, trial_cells(r, params))) for r in self.rows]
        if cells == self._shown_cells:  # nothing changed: the cursor, scroll and widths stay
            return
        self._shown_cells = cells
        row = table.cursor_row
        table.clear()
        for r in self.rows:
            table.add_row(*trial_cells(r, params), key=str(r["number"]))
        if self.rows:
            table.move_cursor(row=min(max(row, 0), len(self.rows) - 1))

    def _show_plots(self, snap: dict[str, Any]) -> None:
        best_curve = [(float(n), v) for n, v in snap["best_so_far"]]
        self.query_one("#best-curve", Picture).show(
            lambda w, h: scatter_picture(best_curve, f"best {snap['objective']} so far", w, h, lines=True)
        )
        params = snap["params"]
        path = params[self.param_index % len(params)] if params else ""
        points = [
            (float(r["params"][path]), r["value"] if r["state"] == "finished" else r["best"])
            for r in snap["rows"]
            if path in r["params"]
            and (r["value"] if r["state"] == "finished" else r["best"]) is not None
            and not isinstance(r["params"][path], str)
        ]
        title = f"{snap['objective']} by {snap['short_names'].get(path, path)}"
        log_x = path in snap["log_params"]
        self.query_one("#param-scatter", Picture).show(lambda w, h: scatter_picture(points, title, w, h, log_x=log_x))
        self.query_one("#importances", Static).update(importance_table(snap["importances"], snap["short_names"]))

    # -- actions ------------------------------------------------------------------------------
    def cursor_trial(self) -> dict[str, Any] | None:
        """The trial under the table's cursor."""
        table = self.query_one("#trials", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_trial()

    def action_open_trial(self) -> None:
        """Follow the trial under the cursor in a train screen (live while it runs)."""
        row = self.cursor_trial()
        if row is None:
            return
        from tfbench.engine.events import EVENTS_FILE

        run_dir = Path(row["run_dir"])
        if not (run_dir / EVENTS_FILE).exists():
            self.notify(f"trial #{row['number']} has no run directory here ({run_dir})", severity="warning")
            return
        from tfbench.screens.training import TrainingScreen

        self.app.push_screen(TrainingScreen(run_dir))

    def action_next_param(self) -> None:
        """Plot the objective against the next parameter."""
        self.param_index += 1
        if self.snapshot is not None:
            self._show_plots(self.snapshot)

    def action_stop_study(self) -> None:
        """Stop the study's `tfbench tune` process, once the user says so: no new trials; running ones save."""
        from tfbench.screens.dialogs import Confirm

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop_study()

        question = "Stop the study? Running trials save; `tfbench tune --resume` continues it."
        self.app.push_screen(Confirm(question, yes="Stop", no="Keep going"), answered)

    def _stop_study(self) -> None:
        from tfbench.study.study import stop_driver

        if stop_driver(self.study_dir):
            self.notify("Stopping the study: running trials save; `tfbench tune --resume` continues it.")
        else:
            self.notify("No `tfbench tune` process of this study runs on this machine.", severity="warning")

    def action_load_best(self) -> None:
        """Open `best.toml` in the workbench, to edit or train."""
        from tfbench.errors import UserError
        from tfbench.spec import load_experiment
        from tfbench.study.study import BEST_FILE

        path = self.study_dir / BEST_FILE
        if not path.is_file():
            self.notify("No trial has finished yet: there is no best.toml.", severity="warning")
            return
        replace = getattr(self.app, "replace_experiment", None)
        try:
            experiment = load_experiment(path)
        except UserError as err:
            self.notify(str(err), title="Cannot load best.toml", severity="error")
            return
        if replace is None:
            self.notify("This app has no workbench to load the preset into.", severity="warning")
            return
        replace(experiment, path)
        self.notify(f"Loaded {path}.")
        if hasattr(self.app, "action_show"):
            self.app.action_show("model")
