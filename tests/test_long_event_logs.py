"""Long event logs: `runs`, `resume` and `watch` read a run's summary from a log of hundreds of MB
without holding it (batches pass by unparsed), and still see every damaged line."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from long_logs import peak_rss, write_long_run
from tiny_runs import runner_env

from tfbench.engine import events as ev
from tfbench.engine import log_scan
from tfbench.engine.log_scan import LogScan, last_event, scan_events, summary_state
from tfbench.rundir import damage

FIXTURES = Path(__file__).parent / "fixtures"
SUMMARISED_AWAY = {"batch_loss", "batch_x", "batch_stride", "events_seen", "_batches_seen"}  # the batch curve


def full_damage(path: Path) -> int:
    """Damaged lines counted the slow way: every complete line parsed."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if line.endswith("\n") and line.strip() and ev.decode(line) is None)


def same_state(a: ev.RunState, b: ev.RunState) -> list[str]:
    """The RunState fields on which two states differ (NaN equal to NaN), the batch curve aside."""
    return [
        f.name
        for f in fields(ev.RunState)
        if f.name not in SUMMARISED_AWAY and repr(getattr(a, f.name)) != repr(getattr(b, f.name))
    ]


@pytest.mark.parametrize("log", sorted(p.name for p in FIXTURES.glob("*.jsonl")))
def test_a_summary_folds_to_the_same_state_as_every_event(log):
    path = FIXTURES / log
    assert same_state(summary_state(path), ev.RunState.from_log(path)) == []


@pytest.mark.parametrize("ended", [True, False], ids=["finished", "killed"])
def test_a_long_logs_summary_has_its_latest_step_and_time(tmp_path, monkeypatch, ended):
    monkeypatch.setattr(log_scan, "BLOCK_BYTES", 1 << 12)  # many blocks: runs of batches cross their edges
    run_dir = write_long_run(tmp_path / "run", megabytes=0.6, ended=ended)
    with open(run_dir / "events.jsonl", "a") as handle:  # a killed runner's last batch, cut mid-line
        handle.write('{"event":"batch","time":1.0,"v":1,"epoch":')
    full, summary = ev.RunState.from_log(run_dir), summary_state(run_dir)
    assert same_state(summary, full) == []
    assert summary.step == full.step == 1000 and summary.updated == full.updated
    assert summary.status == ("completed" if ended else "running")


def glue(text: str, marker: str, keep: int | None) -> str:
    """The line holding `marker` cut to `keep` characters (None: whole) and glued to the next one."""
    lines = text.split("\n")
    i = next(i for i, line in enumerate(lines) if marker in line)
    lines[i : i + 2] = [lines[i][:keep] + lines[i + 1]]
    return "\n".join(lines)


DAMAGE = {
    "garbage appended": lambda text: text + "\x00\x01 garbage ]]\n",
    "a cut batch glued to the next batch": lambda text: glue(text, '"epoch":1,"step":3,', 60),
    "a cut batch glued to its epoch's end": lambda text: glue(text, '"epoch":1,"step":1000,', 60),
    "two whole batches on one line": lambda text: glue(text, '"epoch":2,"step":7,', None),
    "a cut system sample glued to a batch": lambda text: glue(text, '"event":"system"', 40),
    "an epoch's end cut and glued": lambda text: glue(text, '"event":"epoch_ended"', 50),
    "a batch with its end cut off": lambda text: text.replace('"step_seconds":0.01}\n', '"step_seco\n', 1),
    "a blank line, then a torn last line": lambda text: text + "\n" + '{"event":"batch","ti',
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_every_kind_of_damage_is_counted_as_parsing_every_line_counts_it(tmp_path, monkeypatch, case):
    monkeypatch.setattr(log_scan, "BLOCK_BYTES", 1 << 12)
    run_dir = write_long_run(tmp_path / "run", megabytes=0.4)
    log = run_dir / "events.jsonl"
    text = log.read_text()
    damaged = DAMAGE[case](text)
    assert damaged != text
    log.write_text(damaged)
    scan = LogScan()
    for _ in scan_events(log, scan=scan):
        pass
    assert scan.damaged == full_damage(log)
    assert (scan.damaged > 0) == ("unreadable line" in damage(run_dir))


def test_a_log_without_newlines_is_read_in_bounded_memory_and_counted_damaged(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "BLOCK_BYTES", 1 << 10)
    monkeypatch.setattr(log_scan, "MAX_LINE_BYTES", 1 << 14)
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"x" * (1 << 16) + b'\n{"event":"log","time":2.0,"v":1,"level":"info","message":"m"}\n')
    scan = LogScan()
    events = list(scan_events(log, scan=scan))
    assert [e["event"] for e in events] == ["log"] and scan.damaged == 1


def test_the_last_event_is_read_from_the_end(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"event":"run_started","time":1}\n{"event":"run_ended","time":2,"epochs":3}\n{"event":"ba')
    assert last_event(log) == {"event": "run_ended", "time": 2, "epochs": 3}
    log.write_text("")
    assert last_event(log) is None


# -- real processes on a big log --------------------------------------------------------------------

LOG_MB = 120  # before streaming, `runs` held ~8 bytes per byte of log: ~1 GB here


@pytest.fixture(scope="module")
def big_runs(tmp_path_factory) -> Path:
    """A runs folder with one finished run whose event log is ~120 MB."""
    runs = tmp_path_factory.mktemp("big") / "runs"
    write_long_run(runs / "long-20250101-000000", megabytes=LOG_MB)
    assert (runs / "long-20250101-000000" / "events.jsonl").stat().st_size > 100 * 2**20
    return runs


def peak_rss_mb(*args: str) -> tuple[int, str, str, float]:
    """Run `python -m tfbench ARGS` (stdout a pipe); its exit code, output and peak resident MB."""
    return peak_rss([sys.executable, "-m", "tfbench", *args], dict(runner_env(), COLUMNS="100"))


@pytest.mark.slow
def test_runs_on_a_big_log_stays_under_100_mb(big_runs):
    code, out, err, peak = peak_rss_mb("runs", str(big_runs), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    epochs = row["epochs"]
    assert row["status"] == "completed" and row["epochs_completed"] == epochs > 600 and row["best_epoch"] == epochs
    assert peak < 100, f"`tfbench runs` peaked at {peak:.0f} MB on a {LOG_MB} MB log"


def test_resume_refuses_a_finished_run_with_a_big_log_in_little_memory(big_runs):
    code, out, err, peak = peak_rss_mb("resume", str(big_runs / "long-20250101-000000"))
    assert code == 2 and err.startswith("error: ") and "already finished" in err and len(err.splitlines()) == 1, err
    assert peak < 100, f"`tfbench resume` peaked at {peak:.0f} MB on a {LOG_MB} MB log"


def test_watch_without_a_terminal_prints_a_big_logs_epochs_in_little_memory(big_runs):
    code, out, err, peak = peak_rss_mb("watch", str(big_runs / "long-20250101-000000"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1].startswith("run completed") and lines[-2].startswith("epoch ")
    assert peak < 100, f"`tfbench watch` peaked at {peak:.0f} MB on a {LOG_MB} MB log"
