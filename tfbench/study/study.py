"""The Optuna study behind `tfbench tune`: its directory, storage, trial bookkeeping and `best.toml`
— without TensorFlow.

A study directory holds `study.toml` (the preset with its `[tune]` space, the study's name and
storage), the storage itself (a journal file by default, so several processes can share it), one
ordinary run directory per trial (`trial-0007/`), and `best.toml`: the best trial's full preset,
ready for `tfbench run`.

Several processes, on one machine or many, may ask one study for trials, so the planned count is
kept by a rule every asker applies on its own, without a lock: a trial runs only if fewer than the
planned number of *counted* trials came before it (counted: finished, pruned, running, waiting, or
failed by its own run). A trial whose process died is failed as `interrupted` (not counted) and its
parameters are enqueued again, so the study still completes exactly its planned count.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.atomic import write_text
from tfbench.engine.improvement import best_of, improves
from tfbench.errors import UserError
from tfbench.spec import Experiment, experiment_from_dict, parse_toml
from tfbench.study.owners import (  # noqa: F401 (DRIVER_FILE, record_driver, stop_driver: the study's API)
    DRIVER_FILE,
    TrialOwners,
    pid_alive,
    record_driver,
    stop_driver,
)
from tfbench.study.space import TuneSettings, parse_tune, trial_experiment
from tfbench.study.storage import JOURNAL_FILE, check_join, open_storage, shown_storage, storage_url

if TYPE_CHECKING:
    from rich.table import Table

STUDY_FILE = "study.toml"
BEST_FILE = "best.toml"
TRIAL_PREFIX = "trial-"
# Why a trial ended as FAIL (user attribute `outcome`): only a run's own failure counts.
FAILED, INTERRUPTED, SURPLUS = "failed", "interrupted", "surplus"
MAX_ASKS = 20  # asks in a row that may meet a grid point another process took a moment earlier


def trial_dir_name(number: int) -> str:
    """The run directory of trial `number` inside the study directory."""
    return f"{TRIAL_PREFIX}{number:04d}"


def make_sampler(settings: TuneSettings, seed: int | None) -> Any:
    """The Optuna sampler `[tune] sampler` names, with this process's seed."""
    import optuna

    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        from tfbench.study.grid import AskTellGridSampler

        # The seed shuffles the grid: a grid id must name one point in every process, so all share the study's.
        return AskTellGridSampler({p.path: p.grid() for p in settings.params}, seed=settings.seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, settings.trials // 4)))


def make_pruner(settings: TuneSettings, epochs: int) -> Any:
    """The Optuna pruner `[tune] pruner` names, over per-epoch reports."""
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


class StudyDir:
    """A study directory and the Optuna study it records.

    Args:
        path: the study directory.
        experiment: the preset with its `[tune]` section.
        settings: the checked `[tune]` section.
        storage: the storage URL or journal path (the study's own journal when None).
        name: the Optuna study name (the directory's name when None).
        storage_location: how errors about the storage name it (`--storage`; else the storage itself).
    """

    def __init__(
        self,
        path: Path,
        experiment: Experiment,
        settings: TuneSettings,
        storage: str | None = None,
        name: str | None = None,
        storage_location: str | None = None,
    ):
        self.path = Path(path)
        self.experiment = experiment
        self.settings = settings
        self.storage = storage_url(self.path, storage)
        self.own_journal = self.storage == str((self.path / JOURNAL_FILE).resolve())
        self.storage_location = storage_location or shown_storage(self.storage)
        self.name = name or self.path.name
        self._study: Any = None
        # Each asking process needs its own seed, or parallel workers would suggest the same values.
        self.sampler_seed = settings.seed
        self.study_storage: Any = None

    # -- creating and reopening -----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        studies_dir: Path | None,
        study_dir: Path | None,
        experiment: Experiment,
        trials: int | None,
        storage: str | None,
        name: str | None,
    ) -> StudyDir:
        """Check the space, make the directory, write `study.toml` and open (or join) the stored study.

        Nothing is left behind when any of it fails: not the directory, not a journal it began.

        Raises:
            UserError: a bad `[tune]` section, a directory that already holds a study, a storage
                that cannot be opened, or a stored study that searches something else.
            OSError: a full disk.
        """
        settings = parse_tune(experiment, trials)
        parent = Path(studies_dir or "studies")
        undo = Undo(parent_made=study_dir is None and not parent.exists())
        if study_dir is None:
            from tfbench.rundir import new_run_dir

            study_dir = new_run_dir(parent, experiment.name, datetime.now())
            undo.directory = study_dir
        else:
            study_dir = Path(study_dir)
            if (study_dir / STUDY_FILE).exists():
                raise UserError(
                    "already holds a study", str(study_dir), f"continue it with `tfbench tune --resume {study_dir}`"
                )
            undo.directory = None if study_dir.exists() else study_dir
            try:
                study_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create the study directory: {exc.strerror}", str(study_dir)) from None
        shown = f"--storage {shown_storage(storage)}" if storage else None
        made = cls(study_dir, experiment, settings, storage, name, shown)
        undo.note_file(made.path / STUDY_FILE)
        if "://" not in made.storage:
            undo.note_file(Path(made.storage))
        try:
            made.write_study_file()
            made.join()
        except BaseException:
            undo.run(parent)
            raise
        return made

    @classmethod
    def load(cls, study_dir: Path | str, trials: int | None = None) -> StudyDir:
        """Reopen a study directory from its `study.toml` (`--resume`, `runs`, `watch`, the Study screen).

        Raises:
            UserError: not a study directory, or a `study.toml` that cannot be read, located.
        """
        study_dir = Path(study_dir)
        path = study_dir / STUDY_FILE
        if not path.is_file():
            raise UserError(
                "not a study directory (no study.toml)", str(study_dir), "start one with `tfbench tune PRESET`"
            )
        head, preset = read_study_file(path)
        experiment = experiment_from_dict(preset, str(path))
        try:
            settings = parse_tune(experiment, trials if trials is not None else head.get("trials"))
        except UserError as err:
            raise err.at(str(path)) from None
        storage = head.get("storage")
        if storage is not None and "://" not in storage and not Path(storage).is_absolute():
            storage = str(study_dir / storage)  # a journal beside study.toml moves with it
        return cls(study_dir, experiment, settings, storage, head.get("name"))

    def write_study_file(self) -> None:
        """`study.toml`: the study's name, storage and planned trials, and the preset with its space."""
        import tomli_w

        data = self.experiment.to_dict()
        data["tune"] = self.settings.to_dict()
        head = {
            "name": self.name,
            "storage": JOURNAL_FILE if self.own_journal else self.storage,  # its own journal moves with it
            "trials": self.settings.trials,
            "created": datetime.now().isoformat(timespec="seconds"),
        }
        write_text(self.path / STUDY_FILE, tomli_w.dumps({"study": head, "preset": data}))

    @property
    def study(self) -> Any:
        """The Optuna study (created in the storage on first use; Optuna is imported here)."""
        if self._study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study_storage = open_storage(self.storage, self.storage_location)
            self._study = optuna.create_study(
                storage=self.study_storage,
                study_name=self.name,
                load_if_exists=True,
                direction=self.settings.direction,
                sampler=make_sampler(self.settings, self.sampler_seed),
                pruner=make_pruner(self.settings, self.experiment.train.epochs),
            )
        return self._study

    def join(self) -> None:
        """Open the stored study (creating it when new) and check that it searches what this one does.

        Raises:
            UserError: the storage cannot be opened, or the stored study's objective, direction or
                space differ (each difference named).
        """
        check_join(self.study, self.settings, self.storage_location)

    # -- counting ------------------------------------------------------------------------------------
    def trials(self) -> list[Any]:
        """Every Optuna trial of the study, in number order (FrozenTrial)."""
        return sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number)

    def work_left(self) -> int:
        """How many trials still have to be started (waiting ones included)."""
        trials = self.trials()
        waiting = sum(1 for t in trials if t.state.name == "WAITING")
        return max(0, self.settings.trials - sum(1 for t in trials if counted(t))) + waiting

    def finished(self) -> list[Any]:
        """The trials that finished or were pruned."""
        return [t for t in self.trials() if t.state.name in ("COMPLETE", "PRUNED")]

    def next_trial(self) -> Any | None:
        """Ask for a trial this process may run, or None when the plan is full.

        The check after `ask` keeps the count exact when several processes ask at once: a trial
        with the planned number of counted trials before it is given back as `surplus`, and so is
        a grid trial whose point a lower-numbered trial holds (then another is asked). A grid
        whose every point was tried (Optuna's `is_exhausted`) gives no new trial.
        """
        for _ in range(MAX_ASKS):
            if self.work_left() == 0 or self.grid_exhausted():
                return None
            trial = self.study.ask()
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            trials = self.trials()
            before = sum(1 for t in trials if t.number < trial.number and counted(t))
            taken = self.settings.sampler == "grid" and self.point_taken(trial.number, trials)
            if before < self.settings.trials and not taken:
                return trial
            trial.set_user_attr("outcome", SURPLUS)
            self.study.tell(trial, state=_state("FAIL"))
            if not taken:
                return None
        return None

    def point_taken(self, number: int, trials: list[Any]) -> bool:
        """Whether grid trial `number`'s point is held by a lower-numbered trial (see `grid.py`)."""
        from tfbench.study.grid import duplicate_point

        return duplicate_point(next(t for t in trials if t.number == number), trials, counted)

    def grid_exhausted(self) -> bool:
        """Whether a grid search has tried every point and no retry waits."""
        sampler = self.study.sampler
        if self.settings.sampler != "grid" or not hasattr(sampler, "is_exhausted"):
            return False
        return not any(t.state.name == "WAITING" for t in self.trials()) and sampler.is_exhausted(self.study)

    def give_back(self, trial_number: int, reason: str) -> None:
        """Fail an interrupted running trial (uncounted) and enqueue its parameters again."""
        from optuna.exceptions import UpdateFinishedTrialError

        frozen = next((t for t in self.trials() if t.number == trial_number), None)
        if frozen is None or frozen.state.name != "RUNNING":
            return
        storage = self.study_storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(self.name), trial_number
        )
        try:
            storage.set_trial_user_attr(trial_id, "outcome", INTERRUPTED)
            storage.set_trial_user_attr(trial_id, "reason", reason)
            self.study.tell(trial_number, state=_state("FAIL"))
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            return  # it finished, or another process gave it back first
        self.study.enqueue_trial(dict(frozen.params), user_attrs={"retry_of": trial_number}, skip_if_exists=False)

    def recover(self, dead_pid: int) -> list[int]:
        """Give back the running trials of a worker of this machine that just died.

        Returns:
            The numbers of the trials given back.
        """
        host = socket.gethostname()
        given = []
        for t in self.trials():
            if t.state.name == "RUNNING" and t.user_attrs.get("host") == host and t.user_attrs.get("pid") == dead_pid:
                self.give_back(t.number, f"its process ({dead_pid}) ended before the trial did")
                given.append(t.number)
        return given

    def give_back_abandoned(self, owners: TrialOwners) -> list[int]:
        """Give back the running trials whose worker is gone (see `TrialOwners`), wherever it ran.

        Returns:
            The numbers of the trials given back.
        """
        given = []
        for t in owners.abandoned(self.trials()):
            host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
            if host == owners.host and isinstance(pid, int):
                reason = f"its process ({pid}) ended before the trial did"
            else:
                reason = f"its worker ({pid or '?'} on {host or 'an unknown host'}) showed no sign of life"
            self.give_back(t.number, reason)
            given.append(t.number)
        return given

    # -- results ---------------------------------------------------------------------------------------
    def best_trial(self) -> Any | None:
        """The finished trial with the best objective (pruned ones excluded, as Optuna does)."""
        done = [t for t in self.trials() if t.state.name == "COMPLETE" and t.value is not None]
        if not done:
            return None
        return best_of(done, self.settings.direction, key=lambda t: t.value)

    def write_best(self) -> Path | None:
        """`best.toml`: the best trial's full preset (the original export settings, no `[tune]`)."""
        best = self.best_trial()
        if best is None:
            return None
        experiment = trial_experiment(self.experiment, best.params)
        text = (
            f"# The best trial of study {self.name}: #{best.number}, {self.settings.objective} {best.value!r}\n"
        ) + experiment.to_toml()
        write_text(self.path / BEST_FILE, text)
        return self.path / BEST_FILE

    def rows(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One plain row per trial for tables and `--json` (surplus trials left out).

        Args:
            now: the time a running trial's duration is measured to (pictures fix it).
        """
        out = []
        for t in self.trials():
            if t.user_attrs.get("outcome") == SURPLUS:
                continue
            values = [v for _, v in sorted(t.intermediate_values.items())]
            state = t.state.name.lower()
            if state == "fail":
                state = t.user_attrs.get("outcome", FAILED)
            out.append(
                {
                    "number": t.number,
                    "state": {"complete": "finished"}.get(state, state),
                    "value": t.value,
                    "best": best_of(values, self.settings.direction),
                    "min": min(values) if values else None,
                    "last": values[-1] if values else None,
                    "epochs": len(values),
                    "params": dict(t.params),
                    "seconds": _seconds(t, now),
                    "run_dir": t.user_attrs.get("run_dir") or str(self.path / trial_dir_name(t.number)),
                    "reason": t.user_attrs.get("reason", ""),
                    "retry_of": t.user_attrs.get("retry_of"),
                }
            )
        return out

    def importances(self) -> dict[str, float]:
        """Optuna's parameter importances (its default evaluator) once two trials finished; else empty."""
        from optuna.importance import get_param_importances

        if sum(1 for t in self.trials() if t.state.name == "COMPLETE") < 2:
            return {}
        try:
            return dict(get_param_importances(self.study))
        except (ValueError, RuntimeError, ImportError):  # e.g. every trial with the same values
            return {}

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """Everything the Study screen shows, as plain data (read in a worker thread)."""
        rows = self.rows(now)
        best = self.best_trial()
        running = [r for r in rows if r["state"] == "running"]
        return {
            "name": self.name,
            "path": str(self.path),
            "objective": self.settings.objective,
            "direction": self.settings.direction,
            "planned": self.settings.trials,
            "params": [p.path for p in self.settings.params],
            "short_names": self.settings.short_names(),
            "log_params": [p.path for p in self.settings.params if p.log],
            "rows": rows,
            "done": sum(1 for r in rows if r["state"] in ("finished", "pruned")),
            "running": len(running),
            "live": bool(running) or self.work_left() > 0,
            "best": {"number": best.number, "value": best.value, "params": dict(best.params)} if best else None,
            "importances": self.importances(),
            "best_so_far": best_so_far(rows, self.settings.direction),
        }


class Undo:
    """What `StudyDir.create` made, removed again when it fails: no half-made study is left behind."""

    def __init__(self, parent_made: bool):
        self.parent_made = parent_made
        self.directory: Path | None = None
        self.files: list[Path] = []

    def note_file(self, path: Path) -> None:
        """A file to remove on failure, unless it is there already."""
        if not path.exists():
            self.files.append(path)

    def run(self, parent: Path) -> None:
        """Remove what was made: the files, the study directory, the studies folder if it was new and is empty."""
        for path in self.files:
            for made in (path, Path(f"{path}.lock")):
                try:
                    made.unlink()
                except OSError:
                    pass
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self.parent_made:
            try:
                parent.rmdir()
            except OSError:
                pass


def read_study_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`study.toml`'s `[study]` head and its preset, checked: a damaged file is one located error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError("not a study file (not UTF-8 text)", str(path), "`tfbench tune` writes it") from None
    except OSError as exc:
        raise UserError(f"cannot read it: {exc.strerror or exc}", str(path)) from None
    if not text.strip():
        raise UserError("the study file is empty", str(path), "`tfbench tune` writes it; start a new study")
    data = parse_toml(text, str(path))
    head, preset = data.get("study"), data.get("preset")
    if not isinstance(head, dict):
        raise UserError("expected a [study] table (name, storage, trials)", f"{path}: study")
    if not isinstance(preset, dict):
        raise UserError("expected the study's preset as a [preset] table", f"{path}: preset")
    for key, what in (("name", "the study's name"), ("storage", "a storage URL or a journal file path")):
        value = head.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise UserError(f"expected {what}, got {value!r}", f"{path}: study.{key}")
    trials = head.get("trials")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)):
        raise UserError(f"expected a whole number of trials, got {trials!r}", f"{path}: study.trials")
    return head, preset


def best_so_far(rows: list[dict[str, Any]], direction: str) -> list[tuple[int, float]]:
    """(trial number, best objective up to it) over the finished trials, in number order."""
    out: list[tuple[int, float]] = []
    best: float | None = None
    for row in sorted(rows, key=lambda r: r["number"]):
        if row["state"] != "finished" or row["value"] is None:
            continue
        if improves(row["value"], best, direction):
            best = row["value"]
        if best is not None:
            out.append((row["number"], best))
    return out


def counted(trial: Any) -> bool:
    """Whether a trial takes a place in the planned count (see the module's docstring)."""
    if trial.state.name != "FAIL":
        return True
    return trial.user_attrs.get("outcome", FAILED) == FAILED


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def _seconds(trial: Any, now: datetime | None = None) -> float | None:
    if trial.datetime_start is None:
        return None
    end = trial.datetime_complete or now or datetime.now()
    return round((end - trial.datetime_start).total_seconds(), 3)


def format_param(value: Any) -> str:
    """A parameter value as the trial lines show it (`3.1e-3`, `48`, `Adam`)."""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
            mantissa, exponent = f"{value:.1e}".split("e")
            return f"{mantissa}e{int(exponent)}"
        return f"{value:.4g}"
    return str(value)


def format_objective(value: Any) -> str:
    """An objective value with four decimals (or `-`)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4f}"


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def trial_line(
    row: dict[str, Any], done: int, planned: int, objective: str, names: dict[str, str], best: dict[str, Any] | None
) -> str:
    """One line for a trial that ended: `trial 7/40  val_accuracy 0.9712  lr 3.1e-3 units 48  best #5 0.9755`."""
    params = " ".join(f"{names.get(k, k)} {format_param(v)}" for k, v in row["params"].items())
    if row["state"] == "finished":
        result = f"{objective} {format_objective(row['value'])}"
    elif row["state"] == "pruned":
        result = f"pruned after epoch {row['epochs']} ({objective} {format_objective(row['last'])})"
    else:
        result = f"failed: {row['reason']}"
    line = f"trial {done}/{planned}  #{row['number']}  {result}  {params}"
    if best is not None:
        line += f"  best #{best['number']} {format_objective(best['value'])}"
    return line


def sorted_rows(rows: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Trials best first: finished by objective, then pruned by their best epoch, then the rest."""
    sign = -1 if direction == "maximize" else 1

    def key(row: dict[str, Any]) -> tuple:
        rank = {"finished": 0, "pruned": 1}.get(row["state"], 2)
        value = row["value"] if row["state"] == "finished" else row["best"]
        return (rank, sign * value if value is not None else math.inf, row["number"])

    return sorted(rows, key=key)


def results_table(study: StudyDir) -> Table:
    """A rich Table of every trial, best first: state, best/last objective, parameters, duration."""
    from rich.table import Table

    from tfbench.figures import format_duration

    names = study.settings.short_names()
    objective = study.settings.objective
    table = Table(title=f"{study.name}: {objective} ({study.settings.direction})", title_justify="left")
    for column in ("#", "state", f"best {objective}", "last", "epochs", *names.values(), "time"):
        table.add_column(column, justify="left" if column in ("state",) else "right")
    for row in sorted_rows(study.rows(), study.settings.direction):
        params = [format_param(row["params"].get(path, "")) for path in names]
        table.add_row(
            str(row["number"]),
            row["state"],
            format_objective(row["best"]),
            format_objective(row["last"]),
            str(row["epochs"]),
            *params,
            format_duration(row["seconds"]),
        )
    return table
