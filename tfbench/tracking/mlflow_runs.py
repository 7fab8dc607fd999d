"""A tfbench run as an MLflow run: parameters, per-epoch metrics, exports and report.json — without a UI.

The Experiment becomes MLflow parameters under dotted names (`train.optimizer.learning_rate`,
`model.layers.2.units`: MLflow allows letters, digits, `_ - . / ` and spaces, so list indices are
path parts); each history row becomes metrics at step = epoch; at the end the run's verified
exports (`exports/`, `report.json` among them), `experiment.toml` and `history.csv` are logged as
artifacts and the MLflow run is marked finished, failed or killed like the tfbench run. The MLflow
run carries the tag `tfbench.run` (the run directory's name), so mirroring a run twice finds the
first copy instead of making a second.

Uses the `mlflow` package (`pip install 'tfbench[mlflow]'`), imported when a writer is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from tfbench.engine.status import RunStatus

RUN_TAG = "tfbench.run"
RUN_DIR_TAG = "tfbench.run_dir"
MAX_KEY = 250  # MLflow's limit on a parameter or metric name
MAX_VALUE = 6000  # and on a parameter's value
PARAMS_PER_CALL = 100
METRICS_PER_CALL = 1000
ILLEGAL = re.compile(r"[^A-Za-z0-9_./\- ]")
STATUSES: dict[str, str] = {
    RunStatus.COMPLETED: "FINISHED",
    RunStatus.EARLY_STOPPED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.STOPPED: "KILLED",
}
INSTALL_HINT = "pip install 'tfbench[mlflow]'"
# A tracking server that does not answer must not hold a run up for minutes of retries.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def legal_name(name: str) -> str:
    """A parameter or metric name MLflow accepts: other characters become `_`, at most 250 long."""
    name = ILLEGAL.sub("_", name)
    name = re.sub(r"/+", "/", name).strip("/")
    name = "/".join(part if part not in (".", "..") else "_" for part in name.split("/")) or "_"
    if len(name) > MAX_KEY:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_KEY - 9]}~{digest}"
    return name


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """An Experiment's plain data as `{dotted.name: text}` (lists of tables by index, other lists whole)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(flat_params(inner, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, inner in enumerate(value):
            out.update(flat_params(inner, f"{prefix}.{i}"))
    else:
        text = json.dumps(value) if isinstance(value, (list, bool)) or value is None else str(value)
        out[legal_name(prefix)] = text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
    return out


def metric_values(row: dict[str, Any]) -> list[tuple[str, float]]:
    """A history row's metrics as (name, value) pairs: every number but the epoch and its seconds."""
    out = []
    for key, value in row.items():
        if key in ("epoch", "seconds"):
            continue
        try:
            out.append((legal_name(key), float(value)))
        except (TypeError, ValueError):
            continue
    return out


def artifacts_beside(uri: str) -> str | None:
    """Where a new experiment in a local SQLite store keeps its artifacts: `mlartifacts/` beside the
    database (MLflow's default, `./mlruns`, would depend on the folder tfbench runs in)."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()


class MlflowWriter:
    """One tfbench run mirrored as one MLflow run.

    Args:
        uri: the tracking URI.
        experiment: the MLflow experiment's name.
        run_name: the tfbench run directory's name (the MLflow run's name and `tfbench.run` tag).
        run_id: an MLflow run to continue (a resumed tfbench run), if it still exists.
    """

    def __init__(self, uri: str, experiment: str, run_name: str, run_id: str | None = None):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, artifact_location=artifacts_beside(uri))
        )
        self.run_name = run_name
        self.run_id = run_id if run_id is not None and self._exists(run_id) else None
        self.resumed = self.run_id is not None

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    def existing(self) -> str | None:
        """The MLflow run that already mirrors this tfbench run, if any."""
        if self.run_id is not None:
            return self.run_id
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{self.run_name}'", max_results=1
        )
        return found[0].info.run_id if found else None

    def start(self, experiment: dict[str, Any], run_dir: str | Path) -> str:
        """Create the MLflow run (or reopen a resumed one) and log the Experiment as parameters."""
        from mlflow.entities import Param

        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            return self.run_id
        tags = {RUN_TAG: self.run_name, RUN_DIR_TAG: str(Path(run_dir).resolve()), "mlflow.source.name": "tfbench"}
        self.run_id = self.client.create_run(self.experiment_id, run_name=self.run_name, tags=tags).info.run_id
        params = [Param(k, v) for k, v in flat_params(experiment).items()]
        for i in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[i : i + PARAMS_PER_CALL])
        return self.run_id

    @property
    def started_id(self) -> str:
        """The MLflow run's id, once `start` made or reopened it."""
        if self.run_id is None:
            raise RuntimeError("the MLflow run is started first")
        return self.run_id

    def epochs(self, rows: list[dict[str, Any]], wall_times: list[float] | None = None) -> None:
        """Log history rows as metrics (step = epoch)."""
        from mlflow.entities import Metric

        now = time.time()
        metrics = [
            Metric(name, value, int(1000 * (wall_times[i] if wall_times else now)), int(row["epoch"]))
            for i, row in enumerate(rows)
            for name, value in metric_values(row)
        ]
        for i in range(0, len(metrics), METRICS_PER_CALL):
            self.client.log_batch(self.started_id, metrics=metrics[i : i + METRICS_PER_CALL])

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        """Log a file or a folder (kept under `folder` in the MLflow run's artifacts)."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.started_id, str(path), artifact_path=folder or path.name)
        elif path.is_file():
            self.client.log_artifact(self.started_id, str(path), artifact_path=folder)

    def finish(self, status: str) -> None:
        """Mark the MLflow run as the tfbench run ended (`completed` → FINISHED, `stopped` → KILLED…)."""
        self.client.set_terminated(self.started_id, status=STATUSES.get(status, "FAILED"))
