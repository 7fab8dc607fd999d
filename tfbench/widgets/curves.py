"""Training curves drawn with plotext, built only when asked so redraws stay cheap.

A plotext build costs ~10-20 ms at a few hundred points and far more at thousands, and it holds
the GIL while it runs. So this widget never builds from `render()` except after a resize: the
owner hands it new charts (`set_charts`, cheap) and calls `redraw()` on its own slow timer
(≤ 2 Hz); every series is downsampled to the plot's width first. Without TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from rich.text import Text
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

    def __init__(self, placeholder: str = "waiting for the first results…", **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self._charts: list[Chart] = []
        self._dirty = True
        self._cached: Text | None = None
        self._cached_size: tuple[int, int] | None = None
        self.builds = 0  # how many plotext builds ran (benchmarks and tests read it)

    def set_charts(self, charts: list[Chart]) -> None:
        """Hand over new data; it is drawn at the next `redraw()` (or resize)."""
        self._charts = charts
        self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def redraw(self) -> None:
        """Rebuild the picture if the data changed since the last build."""
        if self._dirty and self.size.width > 0:
            self._build()
            self.refresh()

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
        size = (self.size.width, self.size.height)
        if self._cached is None or self._cached_size != size:
            self._build()
        return self._cached or Text("")

    def _build(self) -> None:
        width, height = self.size.width, self.size.height
        self._dirty = False
        self._cached_size = (width, height)
        charts = [c for c in self._charts if not c.empty]
        if not charts or width < 20 or height < 6:
            self._cached = Text(self.placeholder, style="dim")
            return
        plot = Plot()
        plot.clear_figure()
        top, rest = charts[0], charts[1:]
        if height < 16:  # too short for two rows of plots: the loss alone, readable
            rest = []
        if rest:
            plot.subplots(2, 1)
            self._draw(plot.subplot(1, 1), top, width)
            row = plot.subplot(2, 1)
            row.subplots(1, len(rest))
            for i, chart in enumerate(rest, start=1):
                self._draw(row.subplot(1, i), chart, width // len(rest))
        else:
            self._draw(plot, top, width)
        plot.plotsize(width, height)
        plot.theme("clear")
        self._cached = Text.from_ansi(plot.build(), no_wrap=True)
        self.builds += 1

    def _draw(self, sub, chart: Chart, width: int) -> None:
        marker = ASCII_MARKER if self.ascii_mode else FINE_MARKER
        dots = max(2, width * (1 if self.ascii_mode else 2))
        drawn = False
        for series in chart.series:
            y = smooth(series.y) if self.smoothing else list(series.y)
            x = list(series.x)
            if self.log_scale:
                x, y = zip(*[(a, b) for a, b in zip(x, y) if b > 0]) if any(b > 0 for b in y) else ([], [])
            x, y = downsample(x, y, dots)
            if not y:
                continue
            sub.plot(x, y, label=series.label, marker=marker)
            drawn = True
        if drawn and self.log_scale:
            sub.yscale("log")
        title = chart.title + (" (log)" if self.log_scale else "") + (" (smoothed)" if self.smoothing else "")
        sub.title(title)


def run_charts(state) -> list[Chart]:
    """The charts of one run: loss and val_loss (with the batch losses), each metric, the LR.

    Args:
        state: a `RunState`.
    """
    epochs = [float(n) for n in state.epoch_numbers]
    loss = Chart("loss")
    if state.batch_loss:
        loss.series.append(Series("batch", state.batch_x, state.batch_loss))
    for key in ("loss", "val_loss"):
        if key in state.history:
            loss.series.append(Series(key, epochs, state.history[key]))
    charts = [loss]
    for name in state.metric_names():
        if name in ("loss", "val_loss") or name.startswith("val_"):
            continue
        chart = Chart(name, [Series(name, epochs, state.history[name])])
        if f"val_{name}" in state.history:
            chart.series.append(Series(f"val_{name}", epochs, state.history[f"val_{name}"]))
        charts.append(chart)
    charts = charts[:3]
    if any(math.isfinite(v) for v in state.learning_rates):
        charts.append(Chart("learning rate", [Series("lr", epochs, state.learning_rates)]))
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
                chart.series.append(Series(f"#{i} {run.name[-6:]}", [float(n) for n in run.epoch_numbers], run.history[metric]))
        charts.append(chart)
    return charts
