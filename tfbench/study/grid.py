"""A grid search asked for trials by several processes at once: each point trained once — without
TensorFlow (Optuna is imported here; `study.py` imports this module only for `sampler = "grid"`).

Optuna's `GridSampler` picks a random point no trial has taken yet, but two processes asking at the
same moment can both pick it, and once every point was tried it trains one again; after the last
point it calls `Study.stop()`, which raises outside `study.optimize` (tfbench asks and tells). So
here: the planned count never exceeds the grid (`parse_tune`), a trial that finds a lower-numbered
live trial on its point yields (every process shuffles the grid with the study's seed, not its own, so a
grid id names one point everywhere) (`duplicate_point`, the same lock-free rule as the planned count),
no trial is asked once Optuna's `is_exhausted` says every point was tried, and `Study.stop()` is
left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.samplers import GridSampler


class AskTellGridSampler(GridSampler):
    """Optuna's grid sampler without its `Study.stop()` after the last point (the study's plan ends it)."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Sequence[float] | None) -> None:
        """Nothing: the grid's end is the planned count's end, which every asker checks."""


def duplicate_point(trial: Any, trials: list[Any], counted: Any) -> bool:
    """Whether a lower-numbered trial that takes a place in the plan holds `trial`'s grid point.

    Args:
        trial: the trial just asked (FrozenTrial, with the `grid_id` the sampler gave it).
        trials: every trial of the study.
        counted: the rule that says whether a trial takes a place (`study.counted`).
    """
    point = trial.system_attrs.get("grid_id")
    if point is None:
        return False
    return any(t.number < trial.number and counted(t) and t.system_attrs.get("grid_id") == point for t in trials)
