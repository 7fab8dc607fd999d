"""Pictures of the Profile panel replaying recorded logs: at 80×24, in 16 colours and under NO_COLOR,
and the device plane beside the GPU panel.

The logs (tests/fixtures/profiled_*.jsonl, written by write_event_logs.py) hold a judged profile of
epoch 2 as the runner reports one; `f` opens the panel (the run is replayed, not running, so no
capture is asked for).
"""

from __future__ import annotations

from pathlib import Path

from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME
from test_snapshots_training import recorded_app, replayed
from textual.filter import LineFilter

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = (80, 24)


def _standard(color: Color | None) -> Color | None:
    """A colour as a 16-colour terminal shows it: the nearest of the 16, in a common terminal theme."""
    if color is None or color.is_default:
        return color
    return Color.from_triplet(color.downgrade(ColorSystem.STANDARD).get_truecolor(DEFAULT_TERMINAL_THEME))


class SixteenColours(LineFilter):
    """Every colour brought down to the 16 standard ones, as a 16-colour terminal draws the screen."""

    def apply(self, segments: list[Segment], background) -> list[Segment]:
        out = []
        for text, style, control in segments:
            if style is not None and (style.color is not None or style.bgcolor is not None):
                style = style + Style(color=_standard(style.color), bgcolor=_standard(style.bgcolor))
            out.append(Segment(text, style, control))
        return out


def _profile_shown(app):
    async def run_before(pilot) -> None:
        await replayed(pilot)
        await pilot.press("f")
        await pilot.pause()

    return run_before


def test_profile_panel_small(snap_compare):
    """`f` at 80×24: the verdict, the step split, the GPU's time and the top ops beside the tf.data stages."""
    app = recorded_app(watch=FIXTURES / "profiled_gpu.jsonl")
    assert snap_compare(app, terminal_size=SMALL, run_before=_profile_shown(app))


def test_profile_panel_sixteen_colours(snap_compare):
    """The same picture in a 16-colour terminal: the split bar still reads by its characters."""
    app = recorded_app(watch=FIXTURES / "profiled_cpu.jsonl")
    filters = app.get_line_filters
    sixteen = SixteenColours()
    app.get_line_filters = lambda: [*filters(), sixteen]
    assert snap_compare(app, terminal_size=SMALL, run_before=_profile_shown(app))


def test_profile_panel_no_color(snap_compare, monkeypatch):
    """Under NO_COLOR: no colour at all, the split bar's parts told apart by ▒ █ ░."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = recorded_app(watch=FIXTURES / "profiled_cpu.jsonl")
    assert app.no_color
    assert snap_compare(app, terminal_size=SMALL, run_before=_profile_shown(app))


def test_device_plane_beside_the_gpu_panel(snap_compare):
    """Curves shown: the profile's GPU kernel time and idle gaps under the NVML panel."""
    assert snap_compare(
        recorded_app(watch=FIXTURES / "profiled_gpu.jsonl"), terminal_size=(100, 32), run_before=replayed
    )
