"""Training curves drawn with plotext, built only when asked so redraws stay cheap.

A plotext build costs ~10-20 ms at a few hundred points and far more at thousands, and it holds
the GIL while it runs. So this widget never builds from `render()` except after a resize: the
owner hands it new charts (`set_charts`, cheap) and asks for a picture on its own slow timer
(≤ 2 Hz): `redraw_soon()` builds it in a worker thread from a copy of the data (the live view),
`redraw()` builds it in place (toggles, tests). Every series is downsampled to the plot's width
first. Without TensorFlow.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual_plotext.plot import Plot  # imported here, not at the first draw mid-training

SMOOTHING_WEIGHT = 0.6
ASCII_MARKER = "*"
FINE_MARKER = "braille"


@dataclass
class Series:
    """One line of a chart: its label and points (NaN points are skipped)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass
class Chart:
    """One plot: a title and its lines."""

    title: str
    series: list[Series] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(len(s.y) for s in self.series)


def downsample(x: Sequence[float], y: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most `max_points` points of a series, each the mean of an equal slice of the original.

    NaN and infinite values are dropped first so one diverged batch does not blank the plot.

    Args:
        x: positions.
        y: values, the same length as `x`.
        max_points: the most points to keep (the plot's width in dots).

    Returns:
        The thinned (x, y), the last point always kept exactly.
    """
    points = [(a, b) for a, b in zip(x, y) if math.isfinite(b)]
    n = len(points)
    if n <= max_points or max_points < 2:
        return [p[0] for p in points], [p[1] for p in points]
    xs: list[float] = []
    ys: list[float] = []
    buckets = max_points - 1
    for i in range(buckets):
        lo = i * (n - 1) // buckets
        hi = max(lo + 1, (i + 1) * (n - 1) // buckets)
        chunk = points[lo:hi]
        xs.append(sum(p[0] for p in chunk) / len(chunk))
        ys.append(sum(p[1] for p in chunk) / len(chunk))
    xs.append(points[-1][0])
    ys.append(points[-1][1])
    return xs, ys


def smooth(values: Sequence[float], weight: float = SMOOTHING_WEIGHT) -> list[float]:
    """An exponential moving average (TensorBoard's smoothing); NaNs pass through unchanged."""
    out: list[float] = []
    last: float | None = None
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = value if last is None else last * weight + (1 - weight) * value
        out.append(last)
    return out


@dataclass(frozen=True)
class Look:
    """How the charts are drawn: the toggles and the size in cells."""

    width: int
    height: int
    log_scale: bool = False
    smoothing: bool = False
    ascii_mode: bool = False


_PLOTEXT_LOCK = threading.Lock()  # plotext keeps some module state: one build at a time


def build_picture(charts: list[Chart], look: Look, placeholder: str) -> Text:
    """The charts drawn by plotext as text, the first chart full width on top, the rest below.

    Pure (safe to call from a worker thread on copied data). Every series is downsampled to the
    plot's width in dots first, so the cost does not grow with the length of the run.
    """
    width, height = look.width, look.height
    charts = [c for c in charts if not c.empty]
    if not charts or width < 20 or height < 6:
        return Text(placeholder, style="dim")
    with _PLOTEXT_LOCK:
        plot = Plot()
        plot.clear_figure()
        top, rest = charts[0], charts[1:]
        if height < 16:  # too short for two rows of plots: the loss alone, readable
            rest = []
        if rest:
            plot.subplots(2, 1)
            _draw(plot.subplot(1, 1), top, width, look)
            row = plot.subplot(2, 1)
            row.subplots(1, len(rest))
            for i, chart in enumerate(rest, start=1):
                _draw(row.subplot(1, i), chart, width // len(rest), look)
        else:
            _draw(plot, top, width, look)
        plot.plotsize(width, height)
        plot.theme("clear")
        return Text.from_ansi(plot.build(), no_wrap=True)


def _draw(sub, chart: Chart, width: int, look: Look) -> None:
    marker = ASCII_MARKER if look.ascii_mode else FINE_MARKER
    dots = max(2, width * (1 if look.ascii_mode else 2))
    drawn = False
    for series in chart.series:
        y = smooth(series.y) if look.smoothing else list(series.y)
        x = list(series.x)
        if look.log_scale:
            kept = [(a, b) for a, b in zip(x, y) if b > 0]
            x, y = [a for a, _ in kept], [b for _, b in kept]
        x, y = downsample(x, y, dots)
        if not y:
            continue
        sub.plot(x, y, label=series.label, marker=marker)
        drawn = True
    if drawn and look.log_scale:
        sub.yscale("log")
    title = chart.title + (" (log)" if look.log_scale else "") + (" (smoothed)" if look.smoothing else "")
    sub.title(title)


def copy_charts(charts: list[Chart]) -> list[Chart]:
    """Charts whose series no longer share lists with a RunState that keeps growing."""
    return [Chart(c.title, [Series(s.label, list(s.x), list(s.y)) for s in c.series]) for c in charts]


class Curves(Widget):
    """A stack of plotext charts: the first full width on top, the rest side by side below.

    Toggles: `log_scale` (log y axes, non-positive values skipped), `smoothing` (EMA) and
    `ascii_mode` (plain `*` markers for terminals or fonts without braille).
    """

    DEFAULT_CSS = """
    Curves {
        width: 1fr;
        height: 1fr;
    }
    """

    log_scale: reactive[bool] = reactive(False, init=False)
    smoothing: reactive[bool] = reactive(False, init=False)
    ascii_mode: reactive[bool] = reactive(False, init=False)

    class Built(Message):
        """A picture built in a worker thread is ready."""

        def __init__(self, picture: Text, look: Look) -> None:
            super().__init__()
            self.picture = picture
            self.look = look

    def __init__(self, placeholder: str = "waiting for the first results…", **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self._charts: list[Chart] = []
        self._dirty = True
        self._building = False
        self._cached: Text | None = None
        self._cached_look: Look | None = None
        self.builds = 0  # how many plotext builds ran (benchmarks and tests read it)
        self.output: str | None = None  # a model with several outputs: the one shown (None: all)

    def set_charts(self, charts: list[Chart]) -> None:
        """Hand over new data; it is drawn at the next `redraw()` (or resize)."""
        self._charts = charts
        self._dirty = True

    def set_placeholder(self, placeholder: str) -> None:
        """Change what shows while there is nothing to plot."""
        if placeholder != self.placeholder:
            self.placeholder = placeholder
            self._dirty = True
            self.redraw()

    def show(self, state) -> None:
        """Hand over a `RunState`'s charts (`run_charts`, of the picked `output`); drawn at the next redraw."""
        self.set_charts(run_charts(state, self.output))

    @property
    def dirty(self) -> bool:
        return self._dirty

    def _look(self) -> Look:
        return Look(self.size.width, self.size.height, self.log_scale, self.smoothing, self.ascii_mode)

    def redraw(self) -> None:
        """Rebuild the picture now, on this thread, if the data changed since the last build."""
        if self._dirty and self.size.width > 0:
            self._build()
            self.refresh()

    def redraw_soon(self) -> None:
        """Rebuild the picture in a worker thread if the data changed; show it when done.

        For a live view: plotext is pure Python, and a build on the event loop holds it for the
        whole build, while in a thread the interpreter switches back to the loop every few
        milliseconds, so keys and progress stay prompt. One build at a time; data that comes
        meanwhile is drawn by the next call.
        """
        if not self._dirty or self._building or self.size.width <= 0:
            return
        self._dirty = False
        self._building = True
        charts, look = copy_charts(self._charts), self._look()
        self.run_worker(
            partial(self._build_in_thread, charts, look),
            thread=True,
            exit_on_error=False,
            group="curves",
            name="draw curves",
        )

    def _build_in_thread(self, charts: list[Chart], look: Look) -> None:
        try:
            picture = build_picture(charts, look, self.placeholder)
        except Exception as exc:  # an odd value plotext cannot draw must not end the live view
            picture = Text(f"cannot draw the curves: {exc}", style="dim")
        self.post_message(self.Built(picture, look))

    def on_curves_built(self, message: Curves.Built) -> None:
        message.stop()
        self._building = False
        self.builds += 1
        if message.look == self._look():
            self._cached, self._cached_look = message.picture, message.look
            self.refresh()
        else:  # resized or toggled meanwhile: draw again
            self._dirty = True

    def watch_log_scale(self) -> None:
        self._toggle_changed()

    def watch_smoothing(self) -> None:
        self._toggle_changed()

    def watch_ascii_mode(self) -> None:
        self._toggle_changed()

    def _toggle_changed(self) -> None:
        self._dirty = True
        self.redraw()

    def render(self) -> Text:
        look = self._cached_look
        if self._cached is None or look is None or (look.width, look.height) != (self.size.width, self.size.height):
            self._build()
        return self._cached or Text("")

    def _build(self) -> None:
        look = self._look()
        self._dirty = False
        self._cached = build_picture(self._charts, look, self.placeholder)
        self._cached_look = look
        if self._charts:
            self.builds += 1


def run_charts(state, output: str | None = None) -> list[Chart]:
    """The charts of one run: loss and val_loss (with the batch losses), each metric, the LR.

    A model with several outputs shows, by default, the total loss and each output's loss; with
    `output` (one of `state.outputs`), that output's loss and its metrics (Keras' `NAME_…` logs).

    Args:
        state: a `RunState`.
        output: the output to show, or None for the whole model.
    """
    epochs = [float(n) for n in state.epoch_numbers]
    picked = output if output in state.outputs else None
    total = f"{picked}_loss" if picked else "loss"
    loss = Chart(f"{picked} loss" if picked else "loss")
    if state.batch_loss and not picked:
        loss.series.append(Series("batch", state.batch_x, state.batch_loss))
    for key in (total, f"val_{total}"):
        if key in state.history:
            loss.series.append(Series(key, epochs, state.history[key]))
    if picked:
        names = [n for n in state.metric_names() if n.startswith(f"{picked}_") and n != total]
    elif state.outputs:
        names = [f"{name}_loss" for name in state.outputs]
    else:
        names = [n for n in state.metric_names() if n != "loss"]
    charts = [loss] + _metric_charts(state, epochs, names)
    charts = charts[:3]
    if any(math.isfinite(v) for v in state.learning_rates):
        charts.append(Chart("learning rate", [Series("lr", epochs, state.learning_rates)]))
    return charts


def _metric_charts(state, epochs: list[float], names: list[str]) -> list[Chart]:
    """A chart per training metric in `names`, with its `val_` twin when logged."""
    charts = []
    for name in names:
        if name.startswith("val_") or name not in state.history:
            continue
        chart = Chart(name, [Series(name, epochs, state.history[name])])
        if f"val_{name}" in state.history:
            chart.series.append(Series(f"val_{name}", epochs, state.history[f"val_{name}"]))
        charts.append(chart)
    return charts


def overlay_charts(runs, metrics: Sequence[str] = ("val_loss", "loss")) -> list[Chart]:
    """One chart per metric with a line per run, for comparing runs.

    Args:
        runs: objects with `name`, `history` and `epoch_numbers` (`RunSummary`).
        metrics: the metrics to overlay; one a run lacks is skipped for it.
    """
    charts = []
    for metric in metrics:
        chart = Chart(metric)
        for i, run in enumerate(runs, start=1):
            if metric in run.history:
                chart.series.append(
                    Series(f"#{i} {run.name[-6:]}", [float(n) for n in run.epoch_numbers], run.history[metric])
                )
        charts.append(chart)
    return charts
