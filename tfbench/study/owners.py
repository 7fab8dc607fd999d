"""Who is still working on a study: the workers behind its running trials and the `tfbench tune`
process driving a directory — without TensorFlow.

A running trial records its worker's host and pid. On the same machine that settles it: the
process is there or it is not. From another machine only signs of life can: a worker rewrites its
trial's `alive` attribute every `heartbeat_seconds()`, and a running trial none of whose signs (that
attribute, its reported epochs, its owner) changed for `stale_seconds()`, measured by the watching
process's own clock, is taken for abandoned. The clocks of two machines are never compared.
(Optuna's own heartbeats, `heartbeat_interval` and `fail_stale_trials`, exist only for its RDB
storages; a study's default storage is a journal file.)
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tfbench.atomic import write_text

DRIVER_FILE = "tune.json"  # the `tfbench tune` process driving the study here (the Study screen stops it)
STALE_ENV = "TFBENCH_STUDY_STALE_SECONDS"


def stale_seconds() -> float:
    """How long a running trial of another machine may show no sign of life (default 150 s)."""
    try:
        return max(1.0, float(os.environ.get(STALE_ENV, "150")))
    except ValueError:
        return 150.0


def heartbeat_seconds() -> float:
    """How often a worker shows its trial is alive: well inside `stale_seconds()`."""
    return min(30.0, stale_seconds() / 5)


def pid_alive(pid: Any) -> bool:
    """Whether a process of this machine is still there (a zombie counts as gone)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
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


class TrialOwners:
    """One process's view of which running trials still have a worker behind them.

    Call `abandoned` with the study's trials now and then (every poll); a trial of another
    machine is judged only after this object has watched it for `stale` seconds.
    """

    def __init__(self, stale: float | None = None):
        self.stale = stale_seconds() if stale is None else stale
        self.host = socket.gethostname()
        self.seen: dict[int, tuple[tuple, float]] = {}  # trial number -> (its signs, when they last changed)

    def abandoned(self, trials: list[Any]) -> list[Any]:
        """The running trials (FrozenTrial) whose worker is gone or has shown no sign of life."""
        now = time.monotonic()
        running = [t for t in trials if t.state.name == "RUNNING"]
        self.seen = {n: v for n, v in self.seen.items() if n in {t.number for t in running}}
        out = []
        for trial in running:
            host, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
            if host == self.host and isinstance(pid, int):
                if not pid_alive(pid):
                    out.append(trial)
                continue
            signs = (host, pid, trial.user_attrs.get("alive"), len(trial.intermediate_values))
            last = self.seen.get(trial.number)
            if last is None or last[0] != signs:
                self.seen[trial.number] = (signs, now)
            elif now - last[1] >= self.stale:
                out.append(trial)
        return out

    def working(self, trials: list[Any]) -> bool:
        """Whether any running trial still has its worker (or has not been watched long enough to tell)."""
        running = [t for t in trials if t.state.name == "RUNNING"]
        return len(self.abandoned(trials)) < len(running)


def record_driver(study_dir: Path) -> None:
    """Note this process as the one driving the study in `study_dir`."""
    write_text(
        Path(study_dir) / DRIVER_FILE,
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}),
    )


def record_driver_end(study_dir: Path, result: str) -> None:
    """Note how the driving process ended (`done`, `interrupted`, …); a full disk leaves the note out."""
    record = read_driver(study_dir)
    if record.get("pid") != os.getpid():
        return
    try:
        write_text(Path(study_dir) / DRIVER_FILE, json.dumps({**record, "ended": time.time(), "result": result}))
    except OSError:
        pass


def read_driver(study_dir: Path) -> dict[str, Any]:
    """The driver record of a study directory (empty when none was written or it is unreadable)."""
    try:
        record = json.loads((Path(study_dir) / DRIVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def driver_running(record: dict[str, Any]) -> bool:
    """Whether a driver record's process may still be driving: alive here, or on another machine and
    not recorded as ended."""
    if not record or "ended" in record:
        return False
    if record.get("host") != socket.gethostname():
        return True
    return pid_alive(record.get("pid"))


def stop_driver(study_dir: Path) -> bool:
    """Ask the `tfbench tune` process driving a study to stop as Ctrl+C would; False if none runs here."""
    import signal

    record = read_driver(study_dir)
    pid = record.get("pid")
    if "ended" in record or record.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGINT)
    return True
