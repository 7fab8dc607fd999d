"""Full-resolution pictures where the terminal speaks the kitty or sixel graphics protocol (optional).

The optional `textual-image` package (`pip install 'tfbench[images]'`) asks the terminal what it can
show, and that question must be asked before Textual takes the terminal over: `detect()` runs once,
from the command line, before the workbench starts (it costs up to ~0.2 s on a terminal that does
not answer). Without the package, on a terminal without either protocol, under NO_COLOR or with
`TFBENCH_GRAPHICS=0`, pictures are drawn in half blocks instead (`tfbench.pictures`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

_FOUND: dict[str, Any] = {}


def detect() -> str | None:
    """Ask the terminal, once, which graphics protocol it speaks; the answer is kept for `available`.

    Returns:
        "tgp" (kitty) or "sixel", or None (no package, no terminal, no protocol, or switched off).
    """
    if "protocol" in _FOUND:
        return _FOUND["protocol"]
    _FOUND["protocol"] = None
    switched_off = os.environ.get("TFBENCH_GRAPHICS", "1") == "0" or "NO_COLOR" in os.environ
    if (
        switched_off
        or importlib.util.find_spec("textual_image") is None
        or sys.__stdout__ is None
        or not sys.__stdout__.isatty()
    ):
        return None
    try:
        from textual_image import renderable, widget  # asks the terminal as it is imported
    except Exception:  # noqa: BLE001 - a terminal that answers oddly just gets half blocks
        return None
    kinds = {renderable.TGPImage: "tgp", renderable.SixelImage: "sixel"}
    protocol = kinds.get(renderable.Image)
    if protocol is not None:
        _FOUND["protocol"] = protocol
        _FOUND["widget"] = widget.TGPImage if protocol == "tgp" else widget.SixelImage
    return protocol


def available() -> bool:
    """Whether `detect` found a graphics protocol (never asks the terminal itself)."""
    return _FOUND.get("protocol") is not None


def image_widget(rgb: Any, classes: str | None = None) -> Any:
    """A textual-image widget showing an H×W×3 uint8 array (only after `detect` found a protocol)."""
    from PIL import Image

    return _FOUND["widget"](Image.fromarray(rgb, "RGB"), classes=classes)
