"""The runs of a folder, read once: summaries kept by the signature of each run's files.

Without a UI and without TensorFlow. Summarising a run parses its event log and its Experiment
(milliseconds each), so a folder of a thousand runs takes seconds to read. The index keeps each
run's summary with the size and modification time of the files it was read from, in memory and
in a cache file (under `TFBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/tfbench`, else
`~/.cache/tfbench`), and reads again only the runs whose files changed. A run that was still
running is always read again: whether its runner lives is not in its files.

The index is compact: a run's figures, final metrics, tags, note and query fields (its flattened
Experiment, made once when the run is read), not its curves nor its Experiment, which
`complete_summary` reads from the run's files for the few runs whose curves are drawn. The cache
file is `marshal` data of builtins only (it never runs code, and reads about ten times faster than
JSON) behind a header naming the format, its version and a checksum: a file that is damaged,
foreign or from another version reads as no index at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import os
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench.atomic import write_bytes
from tfbench.engine.runs import RunSummary, oldest_first, summarize_run
from tfbench.engine.runs_query import run_fields
from tfbench.run_notes import NOTES_FILE
from tfbench.rundir import EVENTS_FILE, EXPERIMENT_FILE, HISTORY_FILE, MODEL_FILE, RUNNER_FILE

INDEX_VERSION = 2  # raise it when RunSummary or how it is read changes
MAGIC = b"tfbench runs index\n"
HEADER = struct.Struct("<II")  # the index version, the CRC-32 of the marshal data after the header
LEFT_OUT = ("path", "history", "epoch_numbers", "experiment", "complete")  # not kept in the index
PLAIN = (str, int, float, bool, type(None))
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


def plain(value: Any) -> Any:
    """A query field's value as builtins `marshal` keeps (a TOML date as its text)."""
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    return str(value)


def compact(summary: RunSummary) -> RunSummary:
    """The summary as the index keeps it: its query fields made, its curves and Experiment left out."""
    fields = {key: plain(value) for key, value in run_fields(summary).items()}
    return dataclasses.replace(
        summary, history={}, epoch_numbers=[], experiment={}, query_fields=fields, complete=False
    )


def summary_record(summary: RunSummary) -> dict[str, Any]:
    """A compact summary as builtins, without its path (the folder and the run's name give it)."""
    return {f.name: getattr(summary, f.name) for f in dataclasses.fields(RunSummary) if f.name not in LEFT_OUT}


def summary_from_record(record: dict[str, Any], path: Path) -> RunSummary:
    """A compact summary from `summary_record`'s data."""
    return RunSummary(**record, path=path, complete=False)


def complete_summary(run: RunSummary) -> RunSummary:
    """The run with its curves and Experiment: read again from its files when the index left them out."""
    return run if run.complete else summarize_run(run.path)


def encode_index(data: dict[str, Any]) -> bytes:
    """The cache file's bytes: the header, then the marshal data."""
    payload = marshal.dumps(data)
    return MAGIC + HEADER.pack(INDEX_VERSION, zlib.crc32(payload)) + payload


def decode_index(blob: bytes) -> dict[str, Any] | None:
    """The data of a cache file, or None when it is not an index of this version or is damaged."""
    body = blob[len(MAGIC) + HEADER.size :]
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + HEADER.size:
        return None
    version, checksum = HEADER.unpack_from(blob, len(MAGIC))
    if version != INDEX_VERSION or zlib.crc32(body) != checksum:
        return None
    try:
        data = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def listed_runs(runs_dir: Path) -> list[tuple[Path, Signature]]:
    """The run directories in a folder (an event log or an Experiment in them), by name, with their signatures."""
    try:
        with os.scandir(runs_dir) as entries:
            children = sorted(entry.name for entry in entries if entry.is_dir())
    except OSError:
        return []
    out = []
    for name in children:
        run_dir = runs_dir / name
        sig = signature(run_dir)
        if sig[0] is not None or sig[1] is not None:  # events.jsonl or experiment.toml
            out.append((run_dir, sig))
    return out


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
        """Read the cache file once (a missing, foreign, damaged or older one is ignored)."""
        self.loaded = True
        if self.cache_file is None:
            return
        try:
            data = decode_index(self.cache_file.read_bytes())
            if data is None or data.get("runs_dir") != str(self.runs_dir.resolve()):
                return
            self.entries = {
                name: (sig, summary_from_record(record, self.runs_dir / name))
                for name, (sig, record) in data["runs"].items()
            }
        except Exception:  # noqa: BLE001 - whatever is wrong with the file, it only costs reading the runs
            self.entries = {}

    def save(self) -> None:
        """Write the index to its cache file; a folder that cannot be written only costs the next start."""
        if self.cache_file is None:
            return
        data = {
            "runs_dir": str(self.runs_dir.resolve()),
            "runs": {name: (sig, summary_record(summary)) for name, (sig, summary) in self.entries.items()},
        }
        try:
            write_bytes(self.cache_file, encode_index(data), durable=False)
        except (OSError, ValueError):  # ValueError: a value marshal cannot keep
            pass

    def kept(self) -> list[RunSummary]:
        """The runs as the index last saw them, oldest first, without looking at their files (a first paint)."""
        with self.lock:
            if not self.loaded:
                self.load()
            return oldest_first([summary for _, summary in self.entries.values()])

    def scan(self, counted: Callable[[int], object] | None = None) -> list[RunSummary]:
        """Every run in the folder, oldest first, read from its files only where they changed.

        Args:
            counted: called with the number of runs once they are listed, before any is read.
        """
        with self.lock:
            listed = listed_runs(self.runs_dir)
            if counted is not None:
                counted(len(listed))
            if not self.loaded:
                self.load()
            fresh: dict[str, tuple[Signature, RunSummary]] = {}
            self.read_count = 0
            for run_dir, sig in listed:
                kept = self.entries.get(run_dir.name)
                if kept is not None and kept[0] == sig and kept[1].status not in LIVE:
                    fresh[run_dir.name] = kept
                    continue
                fresh[run_dir.name] = (sig, compact(summarize_run(run_dir)))
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
            _INDEXES[key] = RunsIndex(runs_dir, cache_dir() / "runs-index" / f"{digest}.index")
        return _INDEXES[key]


def indexed_runs(runs_dir: str | Path, counted: Callable[[int], None] | None = None) -> list[RunSummary]:
    """Every run in a runs folder, oldest first, as `scan_runs` reads them (compact), from the index where it can.

    Args:
        runs_dir: the folder of runs.
        counted: called with the number of runs once they are listed, before any is read.
    """
    return runs_index(runs_dir).scan(counted)
