"""What the workbench's screens may ask of the App they run in.

`WorkbenchApp` (app.py) imports every screen, so a screen cannot import it, not even for the type
checker, without an import circle. This base class imports no screen: screens type `self.app` as a
`Workbench` (`textual.getters.app`), and the App implements it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App

from tfbench.errors import UserError
from tfbench.spec import Experiment


class Workbench(App):
    """The App as its screens see it: the Experiment being edited, its run folders and engine calls."""

    engine_calls: Any
    """The engine calls the workers make (`tfbench.engine_calls.EngineCalls`, or fixed answers in tests)."""
    experiment: Experiment
    """The Experiment being edited."""
    preset_path: Path | None
    runs_dir: Path
    watch_dir: Path | None
    """A run directory the App was opened to follow (`tfbench watch`)."""
    form_errors: dict[str, str]
    """Invalid form values by location: the Experiment cannot be saved or run while any is left."""
    data_info: Any
    """The last description of the data (`tfbench.data.info.DataInfo`), or None."""
    data_error: UserError | None
    """Why the data could not be described, or None."""
    summary: Any
    """The last model summary (layers, shapes, parameters), or None."""
    summary_error: UserError | None
    """Why the model could not be built, or None."""
    summary_pending: bool
    """A summary is being computed for the Experiment as edited."""
    bell_enabled: bool

    def edit(self, change: Callable[[dict], None], merge: str | None = None) -> UserError | None:
        """Apply `change` to the Experiment's dict form, undoably; the error when it does not validate."""
        raise NotImplementedError

    def import_layers(self, path: str) -> Any:
        """Replace the layer stack with the one of a `.keras` file (in a worker)."""
        raise NotImplementedError

    def action_show(self, name: str) -> None:
        """Switch to the screen called `name`."""
        raise NotImplementedError
