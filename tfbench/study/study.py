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
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tfbench.atomic import write_text
from tfbench.errors import UserError
from tfbench.spec import Experiment, experiment_from_dict, parse_toml
from tfbench.study.space import TuneSettings, parse_tune, trial_experiment

STUDY_FILE = "study.toml"
JOURNAL_FILE = "study.journal"
BEST_FILE = "best.toml"
DRIVER_FILE = "tune.json"  # the `tfbench tune` process driving the study here (the Study screen stops it)
TRIAL_PREFIX = "trial-"
# Why a trial ended as FAIL (user attribute `outcome`): only a run's own failure counts.
FAILED, INTERRUPTED, SURPLUS = "failed", "interrupted", "surplus"


def trial_dir_name(number: int) -> str:
    """The run directory of trial `number` inside the study directory."""
    return f"{TRIAL_PREFIX}{number:04d}"


def storage_url(study_dir: Path, storage: str | None) -> str:
    """The storage a study uses: a URL as given, a journal file path, or the study's own journal."""
    if storage is None:
        return str((study_dir / JOURNAL_FILE).resolve())
    if "://" in storage:
        return storage
    return str(Path(storage).resolve())


def open_storage(url: str) -> Any:
    """An Optuna storage for a URL (`sqlite:///…`, `postgresql://…`) or a journal file path."""
    import optuna

    if "://" in url:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs = {"connect_args": {"timeout": 60}}  # several processes write one file
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    except OSError as exc:
        raise UserError(f"cannot open the study storage: {exc.strerror or exc}", url) from None


def make_sampler(settings: TuneSettings, seed: int | None) -> Any:
    """The Optuna sampler `[tune] sampler` names, with this process's seed."""
    import optuna

    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        space = {p.path: p.grid() for p in settings.params}
        return optuna.samplers.GridSampler(space, seed=seed)
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
    """

    def __init__(
        self,
        path: Path,
        experiment: Experiment,
        settings: TuneSettings,
        storage: str | None = None,
        name: str | None = None,
    ):
        self.path = Path(path)
        self.experiment = experiment
        self.settings = settings
        self.storage = storage_url(self.path, storage)
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
        """Check the space, make the directory and write `study.toml` (nothing trains yet).

        Raises:
            UserError: a bad `[tune]` section, or a directory that already holds a study.
        """
        settings = parse_tune(experiment, trials)
        if study_dir is None:
            from tfbench.rundir import new_run_dir

            study_dir = new_run_dir(studies_dir or Path("studies"), experiment.name, datetime.now())
        else:
            study_dir = Path(study_dir)
            if (study_dir / STUDY_FILE).exists():
                raise UserError(
                    "already holds a study", str(study_dir), f"continue it with `tfbench tune --resume {study_dir}`"
                )
            try:
                study_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create the study directory: {exc.strerror}", str(study_dir)) from None
        made = cls(study_dir, experiment, settings, storage, name)
        made.write_study_file()
        return made

    @classmethod
    def load(cls, study_dir: Path | str, trials: int | None = None) -> StudyDir:
        """Reopen a study directory from its `study.toml` (`--resume`, `runs`, `watch`, the Study screen).

        Raises:
            UserError: not a study directory.
        """
        study_dir = Path(study_dir)
        path = study_dir / STUDY_FILE
        if not path.is_file():
            raise UserError(
                "not a study directory (no study.toml)", str(study_dir), "start one with `tfbench tune PRESET`"
            )
        data = parse_toml(path.read_text(encoding="utf-8"), str(path))
        head = data.get("study", {})
        experiment = experiment_from_dict(data.get("preset", {}), str(path))
        settings = parse_tune(experiment, trials if trials is not None else head.get("trials"))
        return cls(study_dir, experiment, settings, head.get("storage"), head.get("name"))

    def write_study_file(self) -> None:
        """`study.toml`: the study's name, storage and planned trials, and the preset with its space."""
        import tomli_w

        data = self.experiment.to_dict()
        data["tune"] = self.settings.to_dict()
        head = {
            "name": self.name,
            "storage": self.storage,
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
            self.study_storage = open_storage(self.storage)
            self._study = optuna.create_study(
                storage=self.study_storage,
                study_name=self.name,
                load_if_exists=True,
                direction=self.settings.direction,
                sampler=make_sampler(self.settings, self.sampler_seed),
                pruner=make_pruner(self.settings, self.experiment.train.epochs),
            )
        return self._study

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
        with the planned number of counted trials before it is given back as `surplus`.
        """
        if self.work_left() == 0:
            return None
        trial = self.study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        before = sum(1 for t in self.trials() if t.number < trial.number and counted(t))
        if before >= self.settings.trials:
            trial.set_user_attr("outcome", SURPLUS)
            self.study.tell(trial, state=_state("FAIL"))
            return None
        return trial

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

    def recover(self, dead_pid: int | None = None) -> list[int]:
        """Give back the running trials whose process on this machine is gone.

        Args:
            dead_pid: only this worker's trials (it just died); otherwise every dead owner's.

        Returns:
            The numbers of the trials given back.
        """
        host = socket.gethostname()
        given = []
        for t in self.trials():
            if t.state.name != "RUNNING" or t.user_attrs.get("host") != host:
                continue
            pid = t.user_attrs.get("pid")
            if (dead_pid is not None and pid != dead_pid) or (dead_pid is None and pid_alive(pid)):
                continue
            self.give_back(t.number, f"its process ({pid}) ended before the trial did")
            given.append(t.number)
        return given

    # -- results ---------------------------------------------------------------------------------------
    def best_trial(self) -> Any | None:
        """The finished trial with the best objective (pruned ones excluded, as Optuna does)."""
        done = [t for t in self.trials() if t.state.name == "COMPLETE" and t.value is not None]
        if not done:
            return None
        pick = max if self.settings.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)

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
            pick = max if self.settings.direction == "maximize" else min
            state = t.state.name.lower()
            if state == "fail":
                state = t.user_attrs.get("outcome", FAILED)
            out.append(
                {
                    "number": t.number,
                    "state": {"complete": "finished"}.get(state, state),
                    "value": t.value,
                    "best": pick(values) if values else None,
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


def best_so_far(rows: list[dict[str, Any]], direction: str) -> list[tuple[int, float]]:
    """(trial number, best objective up to it) over the finished trials, in number order."""
    out: list[tuple[int, float]] = []
    best: float | None = None
    for row in sorted(rows, key=lambda r: r["number"]):
        if row["state"] != "finished" or row["value"] is None:
            continue
        value = row["value"]
        if best is None or (value > best if direction == "maximize" else value < best):
            best = value
        out.append((row["number"], best))
    return out


def record_driver(study_dir: Path) -> None:
    """Note this process as the one driving the study in `study_dir`."""
    import json

    write_text(
        Path(study_dir) / DRIVER_FILE,
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}),
    )


def stop_driver(study_dir: Path) -> bool:
    """Ask the `tfbench tune` process driving a study to stop as Ctrl+C would; False if none runs here."""
    import json
    import signal

    try:
        record = json.loads((Path(study_dir) / DRIVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGINT)
    return True


def counted(trial: Any) -> bool:
    """Whether a trial takes a place in the planned count (see the module's docstring)."""
    if trial.state.name != "FAIL":
        return True
    return trial.user_attrs.get("outcome", FAILED) == FAILED


def pid_alive(pid: Any) -> bool:
    """Whether a process of this machine is still there (a zombie counts as gone)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        if sys.platform.startswith("linux"):
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


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


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
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


def results_table(study: StudyDir):
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
