"""The Profile panel: what limits a run's steps, from its latest `profile` event, and the device plane
beside the GPU panel.

Both draw from `RunState.profile` (plain numbers the runner judged from its trace), so a watched
run, a replayed log and a live capture look the same. The split bar uses a different character
for each part, so it reads without colour (NO_COLOR) as well as in 16 colours.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tfbench.widgets.gpu import bar

PARTS = (  # (key, label, bar character, style)
    ("input", "input", "▒", "yellow"),
    ("compute", "compute", "█", "green"),
    ("host", "host", "░", "cyan"),
)
VERDICT_STYLES = {"input": "bold yellow", "compute": "bold green", "host": "bold cyan"}
HINT = "f on a running run captures 10 steps; or set train.profile = { epoch = 2, steps = 10 }"


def split_bar(split: dict[str, float], width: int) -> Text:
    """The step as one bar: input, compute and host in proportion."""
    text = Text()
    used = 0
    for i, (key, _, char, style) in enumerate(PARTS):
        cells = width - used if i == len(PARTS) - 1 else int(round(float(split.get(key, 0.0)) * width))
        cells = max(0, min(cells, width - used))
        text.append(char * cells, style=style)
        used += cells
    return text


def _percent(fraction: Any) -> str:
    return f"{round(100 * float(fraction or 0.0))} %"


def _head(profile: dict[str, Any]) -> Text:
    first = profile.get("first_batch")
    steps = profile.get("steps") or profile.get("requested_steps") or 0
    where = f"epoch {profile.get('epoch')}"
    if first:
        where += f", batches {first}–{int(first) + int(steps) - 1}"
    text = Text("Profile", style="bold")
    text.append(f" · {where}")
    if profile.get("step_ms") is not None:
        text.append(f" · {float(profile['step_ms']):.1f} ms/step")
    return text


def _table(title: str, rows: list[tuple[str, str]], width: int) -> list[Text]:
    """A small two-column table: a right-aligned figure, then a name cut to fit."""
    lines = [Text(title, style="bold")]
    for figure, name in rows:
        line = Text(f" {figure:>7}  ", style="")
        room = max(4, width - len(line))
        line.append(name if len(name) <= room else name[: room - 1] + "…")
        lines.append(line)
    return lines


def profile_text(profile: dict[str, Any], width: int, height: int, capturing: int = 0) -> Text:
    """The panel's text for the latest `profile` fields ({} before any), `width` × `height` cells.

    Args:
        profile: `RunState.profile`.
        width, height: the room inside the panel.
        capturing: steps being captured now (0: none asked).
    """
    width, height = max(20, width), max(3, height)
    lines: list[Text] = []
    if capturing:
        lines.append(Text(f"capturing the next {capturing} steps…", style="italic"))
    if not profile:
        if not capturing:
            lines += [Text("No profile yet.", style="bold"), Text(HINT, style="dim")]
        return Text("\n").join(lines)
    lines.append(_head(profile))
    if profile.get("error"):
        lines.append(Text(f"no profile: {profile['error']}", style="bold red"))
        return Text("\n").join(lines)
    verdict = profile.get("verdict") or {}
    head, _, rest = str(verdict.get("line", "")).partition(":")
    line = Text(head + ":", style=VERDICT_STYLES.get(str(verdict.get("kind")), "bold"))
    line.append(rest)
    lines.append(line)
    split = profile.get("split") or {}
    lines.append(split_bar(split, width))
    legend = Text()
    for key, label, char, style in PARTS:
        legend.append(char, style=style)
        legend.append(f" {label} {_percent(split.get(key))}  ")
    lines.append(legend)
    lines += [device_line(device) for device in profile.get("devices") or []]
    ops = [(_percent(o.get("share")), op_label(o)) for o in profile.get("top_ops") or []]
    stages = [(f"{float(s.get('ms') or 0):.2f} ms", str(s.get("stage"))) for s in profile.get("stages") or []]
    lines += _tables(ops, stages, width, height - _rows(lines, width))
    return Text("\n").join(lines)


def op_label(op: dict[str, Any]) -> str:
    """An op as its type, then where it is: `Conv2DBackpropFilter conv2d/convolution` (the scope's
    last part dropped when it only repeats the type, the model's name dropped in front)."""
    kind, parts = str(op.get("type")), str(op.get("name")).split("/")
    if len(parts) > 1 and parts[-1] == kind:
        parts = parts[:-1]
    if len(parts) > 2:
        parts = parts[1:] if parts[0] != "gradient_tape" else ["∇", *parts[2:]]
    return f"{kind} {'/'.join(parts)}"


def _rows(lines: list[Text], width: int) -> int:
    """Terminal rows `lines` take once wrapped at `width`."""
    return sum(max(1, -(-len(line) // width)) for line in lines)


def _tables(ops: list[tuple[str, str]], stages: list[tuple[str, str]], width: int, room: int) -> list[Text]:
    """The top ops and the tf.data stages: side by side when wide, one after the other when not."""
    if room < 2:
        return []
    if width >= 72:
        half = (width - 2) // 2
        rows = max(0, room - 1)
        left = _table("top ops (self time)", ops[:rows], half)
        right = _table("tf.data stages (a step)", stages[:rows], half)
        out = []
        for i in range(max(len(left), len(right))):
            line = left[i].copy() if i < len(left) else Text()
            line.pad_right(half + 2 - len(line))
            line.append_text(right[i] if i < len(right) else Text())
            out.append(line)
        return out
    per = max(1, (room - 2) // 2)
    out = _table("top ops (self time)", ops[:per], width)
    if room - len(out) >= 2:
        out += _table("tf.data stages (a step)", stages[: room - len(out) - 1], width)
    return out


class ProfilePanel(Static):
    """The latest profile of the run; `capturing` is set by the screen while a capture is asked for."""

    DEFAULT_CSS = """
    ProfilePanel {
        height: 1fr;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.capturing = 0
        self._shown: tuple | None = None
        self._profile: dict[str, Any] = {}

    def show(self, state: Any) -> None:
        """Redraw when the profile, the capture or the panel's size changed."""
        self._profile = state.profile
        width, height = self.content_size.width or 40, self.content_size.height or 8
        key = (id(state.profile), len(state.profile), self.capturing, width, height)
        if key == self._shown:
            return
        self._shown = key
        self.update(profile_text(state.profile, width, height, self.capturing), layout=False)

    def on_resize(self) -> None:
        self._shown = None
        width, height = self.content_size.width or 40, self.content_size.height or 8
        self.update(profile_text(self._profile, width, height, self.capturing), layout=False)


def _gaps(device: dict[str, Any]) -> str:
    gaps = int(device.get("gaps") or 0)
    return f"{gaps} gaps, longest {float(device.get('longest_gap_ms') or 0):.2f} ms" if gaps else "no gaps"


def device_line(device: dict[str, Any]) -> Text:
    """One device of the profile in a line: kernels, copies, idle time and its gaps."""
    text = Text(f"{device.get('device')} ", style="bold")
    text.append(
        f"kernels {_percent(device.get('kernel'))} · copies {_percent(device.get('memcpy'))} · "
        f"idle {_percent(device.get('idle'))} ({_gaps(device)})"
    )
    return text


def device_text(devices: list[dict[str, Any]]) -> Text:
    """The device plane of the latest profile, beside the GPU panel: kernel time and idle gaps."""
    text = Text()
    for device in devices:
        text.append(f"{device.get('device')} profiled\n", style="bold")
        text.append(f" kernels {bar(float(device.get('kernel') or 0))} {_percent(device.get('kernel'))}\n")
        gaps = int(device.get("gaps") or 0)
        longest = f", max {float(device.get('longest_gap_ms') or 0):.1f}ms" if gaps else ""
        text.append(f" idle {_percent(device.get('idle'))}, {gaps} gaps{longest}\n")
    text.rstrip()
    return text


class DevicePlanePanel(Static):
    """Beside the GPU panel: what the GPU did in the latest profile (hidden without a device plane)."""

    DEFAULT_CSS = """
    DevicePlanePanel {
        height: auto;
        padding: 0 1;
        display: none;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self._shown: Any = None

    def show(self, state: Any) -> None:
        devices = (state.profile or {}).get("devices") or []
        if devices == self._shown:
            return
        self._shown = devices
        self.display = bool(devices)
        self.update(device_text(devices))
