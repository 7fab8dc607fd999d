"""The runs of a folder, read once: summaries kept by the signature of each run's files.

Without a UI and without TensorFlow. Summarising a run parses its event log and its Experiment
(milliseconds each), so a folder of a thousand runs takes seconds to read. The index keeps each
run's summary with the size and modification time of the files it was read from, in memory and
in a cache file (under `TFBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/tfbench`, else
`~/.cache/tfbench`), and reads again only the runs whose files changed. A run that was still
running is always read again: whether its runner lives is not in its files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from tfbench.atomic import write_bytes
from tfbench.engine.runs import RunSummary, oldest_first, run_directories, summarize_run
from tfbench.run_notes import NOTES_FILE
from tfbench.rundir import EVENTS_FILE, EXPERIMENT_FILE, HISTORY_FILE, MODEL_FILE, RUNNER_FILE

INDEX_VERSION = 1  # raise it when RunSummary or how it is read changes
SIGNED_FILES = (EVENTS_FILE, EXPERIMENT_FILE, HISTORY_FILE, RUNNER_FILE, MODEL_FILE, NOTES_FILE)
LIVE = ("running", "paused", "waiting")
Signature = list[list[int] | None]


def cache_dir() -> Path:
    """Where tfbench keeps what it can read again (the runs index)."""
    if os.environ.get("TFBENCH_CACHE_DIR"):
        return Path(os.environ["TFBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tfbench"


def signature(run_dir: Path) -> Signature:
    """(modification time in ns, size) of each file a summary reads; None for a missing one."""
    out: Signature = []
    for name in SIGNED_FILES:
        try:
            st = os.stat(run_dir / name)
        except OSError:
            out.append(None)
        else:
            out.append([st.st_mtime_ns, st.st_size])
    return out


def summary_record(summary: RunSummary) -> dict[str, Any]:
    """A summary as JSON-ready data."""
    record = dataclasses.asdict(summary)
    record["path"] = str(summary.path)
    return record


def summary_from_record(record: dict[str, Any]) -> RunSummary:
    """A summary from `summary_record`'s data."""
    return RunSummary(**{**record, "path": Path(record["path"])})


class RunsIndex:
    """The summaries of one runs folder, read again only where the files changed.

    Args:
        runs_dir: the folder of runs.
        cache_file: where the index is kept between processes (None: in memory only).
    """

    def __init__(self, runs_dir: str | Path, cache_file: Path | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self.cache_file = cache_file
        self.entries: dict[str, tuple[Signature, RunSummary]] = {}
        self.read_count = 0  # runs summarised from their files (not from the index) by the last scan
        self.lock = threading.Lock()
        self.loaded = False

    def load(self) -> None:
        """Read the cache file once (a missing, foreign or damaged one is ignored)."""
        self.loaded = True
        if self.cache_file is None:
            return
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if data.get("version") != INDEX_VERSION or data.get("runs_dir") != str(self.runs_dir.resolve()):
                return
            self.entries = {
                name: (sig, summary_from_record({**record, "path": str(self.runs_dir / name)}))
                for name, (sig, record) in data.get("runs", {}).items()
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.entries = {}

    def save(self) -> None:
        """Write the index to its cache file; a folder that cannot be written only costs the next start."""
        if self.cache_file is None:
            return
        data = {
            "version": INDEX_VERSION,
            "runs_dir": str(self.runs_dir.resolve()),
            "runs": {name: (sig, summary_record(summary)) for name, (sig, summary) in self.entries.items()},
        }
        try:
            write_bytes(self.cache_file, json.dumps(data).encode("utf-8"), durable=False)
        except OSError:
            pass

    def scan(self) -> list[RunSummary]:
        """Every run in the folder, oldest first, read from its files only where they changed."""
        with self.lock:
            if not self.loaded:
                self.load()
            fresh: dict[str, tuple[Signature, RunSummary]] = {}
            self.read_count = 0
            for run_dir in run_directories(self.runs_dir):
                sig = signature(run_dir)
                kept = self.entries.get(run_dir.name)
                if kept is not None and kept[0] == sig and kept[1].status not in LIVE:
                    fresh[run_dir.name] = kept
                    continue
                fresh[run_dir.name] = (sig, summarize_run(run_dir))
                self.read_count += 1
            changed = self.read_count > 0 or fresh.keys() != self.entries.keys()
            self.entries = fresh
            if changed:
                self.save()
            return oldest_first([summary for _, summary in fresh.values()])


_INDEXES: dict[Path, RunsIndex] = {}
_INDEXES_LOCK = threading.Lock()


def runs_index(runs_dir: str | Path) -> RunsIndex:
    """The process's index of a runs folder, kept in the cache directory."""
    key = Path(runs_dir).resolve()
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            digest = hashlib.sha1(str(key).encode("utf-8")).hexdigest()[:16]
            _INDEXES[key] = RunsIndex(runs_dir, cache_dir() / "runs-index" / f"{digest}.json")
        return _INDEXES[key]


def indexed_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run in a runs folder, oldest first, as `scan_runs` reads them, from the index where it can."""
    return runs_index(runs_dir).scan()
