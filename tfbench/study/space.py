"""A preset's `[tune]` section: the objective, the sampler and pruner, and the search space — without TensorFlow.

The space's keys are `--set` paths (`train.optimizer.learning_rate`) and its values read like
Keras Tuner's `hp.*` calls: `{ float = [lo, hi], log = true }`, `{ int = [lo, hi], step = 16 }`,
`{ choice = [...] }`. Everything is checked before any trial starts: every path must exist in the
preset, every range must fit its setting, and every candidate value (each choice, both ends of a
range) must make a valid Experiment — so a misspelt optimizer in a choice is found now, not at
trial 17. Each mistake is one `UserError` located at `tune.space."PATH"`.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from tfbench.errors import UserError, close_matches
from tfbench.spec import Experiment, apply_overrides, experiment_from_dict
from tfbench.study import MAX_TRIALS

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
KINDS = ("float", "int", "choice")
Direction = Literal["maximize", "minimize"]  # Optuna's spelling
TUNE_KEYS = ("objective", "direction", "trials", "sampler", "pruner", "space", "seed")
# How a parameter is written in the one-line-per-trial output (the last path segment otherwise).
SHORT_NAMES = {"learning_rate": "lr", "batch_size": "batch"}


@dataclass(frozen=True)
class Param:
    """One dimension of the space: a `--set` path and the values it may take."""

    path: str
    kind: str  # float | int | choice
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this parameter's value."""
        if self.kind == "float":
            return trial.suggest_float(self.path, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.path, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.path, list(self.choices))

    def grid(self) -> list[Any]:
        """Every value, for the grid sampler (choices, or an int range by its step)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and not self.log and self.low is not None and self.high is not None:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise UserError(
            "the grid sampler needs a choice or a stepped int range here",
            location(self.path),
            'use { choice = [...] } or sampler = "tpe"',
        )

    def distribution(self) -> Any:
        """The Optuna distribution `suggest` asks with (to compare with a stored trial's)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice" or self.low is None or self.high is None:
            return CategoricalDistribution(list(self.choices))
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))

    def to_dict(self) -> dict[str, Any]:
        """The parameter as it is written in `[tune.space]`."""
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict[str, Any] = {self.kind: [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class TuneSettings:
    """What `[tune]` asks for, checked."""

    objective: str
    direction: Direction
    trials: int
    sampler: str
    pruner: str
    params: list[Param] = field(default_factory=list)
    seed: int | None = 42
    notes: list[str] = field(default_factory=list)  # what was adjusted, for the start of `tune`'s output

    def to_dict(self) -> dict[str, Any]:
        """The `[tune]` table (with the direction spelt out)."""
        out: dict[str, Any] = {
            "objective": self.objective,
            "direction": "max" if self.direction == "maximize" else "min",
            "trials": self.trials,
            "sampler": self.sampler,
            "pruner": self.pruner,
        }
        if self.seed is not None:
            out["seed"] = self.seed
        out["space"] = {p.path: p.to_dict() for p in self.params}
        return out

    def short_names(self) -> dict[str, str]:
        """A short column name per parameter path (`lr`, `filters`), unique within the space."""
        names: dict[str, str] = {}
        for p in self.params:
            segments = [re.sub(r"\[\d+\]", "", s) for s in p.path.split(".")]
            last = segments[-2] if segments[-1] == "type" and len(segments) > 1 else segments[-1]
            names[p.path] = SHORT_NAMES.get(last, last)
        counts = {n: list(names.values()).count(n) for n in names.values()}
        for path, name in names.items():
            if counts[name] > 1:  # two `units`: say which layer
                names[path] = ".".join(path.split(".")[-2:])
        return names


def location(path: str) -> str:
    """Where a space entry is, as error messages name it."""
    return f'tune.space."{path}"'


def direction_of(objective: str, direction: str | None = None) -> Direction:
    """Optuna's `maximize`/`minimize` for an objective: as given, else from its name like Keras' callbacks."""
    from tfbench.engine.checkpoints import monitor_mode  # the one home of the "larger is better" rule

    if direction in (None, "auto"):
        direction = monitor_mode(objective)
    table: dict[str, Direction] = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
    if direction not in table:
        raise UserError(f"expected max or min, got {direction!r}", "tune.direction")
    return table[direction]


def parse_tune(experiment: Experiment, trials: int | None = None) -> TuneSettings:
    """Read and check an Experiment's `[tune]` section against the Experiment itself.

    Args:
        experiment: the preset, with its `tune` table.
        trials: a count that replaces `tune.trials` (`--trials`).

    Raises:
        UserError: no `[tune]`, an unknown key, or a bad space entry, located.
    """
    tune = experiment.tune
    if not tune:
        raise UserError(
            "this preset has no [tune] section",
            "tune",
            'add [tune] with objective = "val_accuracy" and a [tune.space] table (see `tfbench tune --help`)',
        )
    for key in tune:
        if key not in TUNE_KEYS:
            raise UserError(
                "unknown key", f"tune.{key}", close_matches(key, TUNE_KEYS) or f"keys: {', '.join(TUNE_KEYS)}"
            )
    objective = tune.get("objective", "val_loss")
    if not isinstance(objective, str) or not objective:
        raise UserError("name a logged metric, e.g. val_accuracy", "tune.objective")
    settings = TuneSettings(
        objective=objective,
        direction=direction_of(objective, tune.get("direction")),
        trials=_count(trials if trials is not None else tune.get("trials", 20)),
        sampler=_one_of(tune.get("sampler", "tpe"), SAMPLERS, "tune.sampler"),
        pruner=_one_of(tune.get("pruner", "median"), PRUNERS, "tune.pruner"),
        seed=tune.get("seed", experiment.train.seed),
    )
    space = tune.get("space")
    if not isinstance(space, dict) or not space:
        raise UserError(
            "the space is empty",
            "tune.space",
            'add e.g. "train.optimizer.learning_rate" = { float = [1e-4, 1e-2], log = true }',
        )
    resolved = _without_tune(experiment)
    settings.params = [check_param(path, entry, resolved) for path, entry in space.items()]
    if settings.sampler == "grid":
        points = math.prod(len(p.grid()) for p in settings.params)
        if settings.trials > points:  # more would retrain configurations already trained
            settings.notes.append(f"the grid has {points} points: {points} trials, not {settings.trials}")
            settings.trials = points
    return settings


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIALS:
        shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:27] + "..."
        raise UserError(f"expected a whole number of trials from 1 to {MAX_TRIALS:,}, got {shown}", "tune.trials")
    return value


def _one_of(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise UserError(f"unknown {where.split('.')[-1]} {value!r}", where, f"choose one of {', '.join(choices)}")
    return value


def _without_tune(experiment: Experiment) -> dict[str, Any]:
    data = experiment.to_dict()
    data.pop("tune", None)
    return data


def check_param(path: str, entry: Any, resolved: dict[str, Any]) -> Param:
    """One space entry, checked against the resolved preset `resolved` (plain data).

    Raises:
        UserError: located at `tune.space."PATH"`.
    """
    where = location(path)
    if not isinstance(entry, dict):
        raise UserError(
            "expected a table such as { float = [lo, hi] }, { int = [lo, hi] } or { choice = [...] }", where
        )
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise UserError("give exactly one of float, int or choice", where)
    extra = set(entry) - {kinds[0], "log", "step"}
    if extra:
        raise UserError(f"unknown key {sorted(extra)[0]!r}", where, "keys: float | int | choice, log, step")
    current = _current_value(path, resolved)
    param = _param_of(path, kinds[0], entry)
    if param.kind != "choice" and isinstance(current, bool):
        raise UserError(
            f"a numeric range on a true/false setting (it is {current!r} now)", where, "use { choice = [true, false] }"
        )
    if param.kind == "float" and isinstance(current, int) and not isinstance(current, bool):
        low, high = param.low or 0, param.high or 0  # a range always has both
        raise UserError(
            f"a float range on a whole-number setting (it is {current} now)",
            where,
            f"use {{ int = [{math.floor(low)}, {math.ceil(high)}] }}",
        )
    if param.kind == "int" and isinstance(current, float):
        raise UserError(f"an int range on a decimal setting (it is {current!r} now)", where, "use { float = [lo, hi] }")
    candidates = list(param.choices) if param.kind == "choice" else [param.low, param.high]
    for value in candidates:
        _check_candidate(path, value, resolved)
    return param


def _param_of(path: str, kind: str, entry: dict[str, Any]) -> Param:
    where = location(path)
    log, step = entry.get("log", False), entry.get("step")
    if not isinstance(log, bool):
        raise UserError(f"log must be true or false, got {log!r}", where)
    if kind == "choice":
        choices = entry["choice"]
        if not isinstance(choices, list) or not choices:
            raise UserError("choice needs a non-empty list, e.g. { choice = [32, 64] }", where)
        if log or step is not None:
            raise UserError("log and step belong to float and int ranges, not a choice", where)
        return Param(path, "choice", choices=tuple(choices))
    bounds = entry[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    ):
        example = "[16, 64]" if kind == "int" else "[1e-4, 1e-2]"
        raise UserError(
            f"{kind} needs [low, high] as {'whole ' if kind == 'int' else ''}numbers, e.g. {example}", where
        )
    low, high = bounds
    if not low < high:
        raise UserError(f"the lower bound {low} must be below the upper bound {high}", where)
    if log and low <= 0:
        raise UserError(f"log = true needs a lower bound above 0, got {low}", where)
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise UserError(f"step must be a positive {'whole ' if kind == 'int' else ''}number, got {step!r}", where)
        if log:
            raise UserError("log and step cannot be used together", where)
    if kind == "float":
        return Param(path, "float", float(low), float(high), log, float(step) if step is not None else None)
    return Param(path, "int", low, high, log, step)


def _current_value(path: str, resolved: dict[str, Any]) -> Any:
    """The preset's value at a `--set` path; a missing path is the user's mistake."""
    node: Any = resolved
    for part in _parts(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise UserError(f"there is no item {part} here: no such setting in the preset", location(path))
        elif not isinstance(node, dict) or part not in node:
            known = list(node) if isinstance(node, dict) else []
            raise UserError(
                f"no such setting in the preset ({part!r} is not set)",
                location(path),
                close_matches(part, known) or "set it in the preset first, then tune it",
            )
        node = node[part]
    return node


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for segment in path.split("."):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)", segment)
        if not match:
            raise UserError("expected a --set path such as train.optimizer.learning_rate", location(path))
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def _check_candidate(path: str, value: Any, resolved: dict[str, Any]) -> None:
    data = copy.deepcopy(resolved)
    apply_overrides(data, [override(path, value)])
    try:
        experiment_from_dict(data)
    except UserError as err:
        raise UserError(f"{value!r} does not fit: {err}", location(path)) from None


def override(path: str, value: Any) -> str:
    """A `--set` string for one parameter's value (TOML-quoted)."""
    import tomli_w

    return f"{path}={tomli_w.dumps({'v': value})[4:].strip()}"


def trial_experiment(
    experiment: Experiment, values: dict[str, Any], name: str | None = None, for_trial: bool = False
) -> Experiment:
    """The Experiment one trial runs: the preset with the trial's values, without its `[tune]`.

    Args:
        for_trial: leave out the exports (a trial is judged by its objective; `best.toml` keeps them).
    """
    data = _without_tune(experiment)
    apply_overrides(data, [override(path, value) for path, value in values.items()])
    if name is not None:
        data["name"] = name
    if for_trial:
        data.setdefault("export", {})["formats"] = []
    return experiment_from_dict(data)
