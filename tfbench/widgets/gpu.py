"""The system panel: per-GPU utilisation, memory, temperature and power, or CPU/RAM without one.

It shows the runner's latest `system` event (RunState.system); it never queries NVML itself, so
a watched run on another box's log shows that box, and the TUI process stays light.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tfbench.figures import format_megabytes

BAR_WIDTH = 14


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text gauge, `█` filled and `·` empty, that needs no special font."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(round(fraction * width))
    return "█" * filled + "·" * (width - filled)


def system_text(system: dict[str, Any]) -> Text:
    """The panel's text for one `system` sample (empty dict: no sample yet)."""
    text = Text()
    if not system:
        text.append("no system sample yet", style="dim")
        return text
    gpus = system.get("gpus") or []
    for gpu in gpus:
        name = str(gpu.get("name", "GPU"))
        text.append(f"GPU {gpu.get('index', 0)} ", style="bold")
        text.append(name.replace("NVIDIA ", "")[:22] + "\n")
        util = float(gpu.get("util") or 0)
        text.append(f" util {bar(util / 100)} {util:3.0f}%\n")
        used, total = gpu.get("mem_used_mb"), gpu.get("mem_total_mb")
        if used is not None and total:
            text.append(f" mem  {bar(float(used) / float(total))} {format_megabytes(used)}/{format_megabytes(total)}\n")
        extras = []
        if gpu.get("temperature") is not None:
            extras.append(f"{float(gpu['temperature']):.0f}°C")
        if gpu.get("power_w") is not None:
            extras.append(f"{float(gpu['power_w']):.0f} W")
        if extras:
            text.append(" " + " · ".join(extras) + "\n")
    for device, memory in (system.get("tf_memory") or {}).items():
        text.append(
            f"TF {device} peak {format_megabytes(memory.get('peak_mb'))}, "
            f"now {format_megabytes(memory.get('current_mb'))}\n"
        )
    if not gpus:
        text.append("no GPU: CPU and memory\n", style="dim")
    cpu = system.get("cpu_percent")
    if cpu is not None:
        text.append(f"CPU  {float(cpu):5.0f}%   runner RSS {format_megabytes(system.get('rss_mb'))}\n")
    used, total = system.get("ram_used_mb"), system.get("ram_total_mb")
    if used is not None and total:
        text.append(f"RAM  {bar(float(used) / float(total))} {format_megabytes(used)}/{format_megabytes(total)}\n")
    text.rstrip()
    return text


class SystemPanel(Static):
    """GPU status (or CPU/RAM) of the machine the run trains on."""

    DEFAULT_CSS = """
    SystemPanel {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(system_text({}), **kwargs)
        self._shown: dict[str, Any] | None = None

    def show(self, state) -> None:
        """Show a `RunState`'s latest sample (no repaint when it is the one already shown)."""
        system = state.system
        if system is self._shown or system == self._shown:
            return
        self._shown = system
        self.update(system_text(system))
