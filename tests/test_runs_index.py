"""The runs index: summaries of run directories, Experiment differences and `tfbench runs`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tfbench.engine.events import encode
from tfbench.engine.runs import (
    experiment_differences,
    flatten,
    format_duration,
    runs_table,
    scan_runs,
    summarize_run,
)

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "runs_dir"


def test_scan_summarises_three_runs_oldest_first():
    runs = scan_runs(RUNS)
    assert [r.name for r in runs] == sorted(p.name for p in RUNS.iterdir())
    done, early, failed = runs
    assert (done.status, done.epochs_completed, done.epochs) == ("completed", 10, 10)
    assert (early.status, early.epochs_completed) == ("early_stopped", 10)
    assert failed.status == "failed" and "NaN" in failed.reason
    assert done.best_monitor == "val_loss" and done.best_epoch == 8
    assert abs(done.best_value - min(done.history["val_loss"])) < 1e-9
    assert done.params == 5930
    assert done.duration > 0 and done.started < early.started < failed.started
    assert done.experiment["train"]["optimizer"]["learning_rate"] == 0.001


def test_differences_list_only_settings_that_differ():
    runs = scan_runs(RUNS)
    rows = dict(experiment_differences([r.experiment for r in runs]))
    assert rows["train.optimizer.learning_rate"] == ["0.001", "0.001", "0.01"]
    assert rows["train.epochs"] == ["12", "12", "6"]
    assert rows["model.layers[2].filters"] == ["—", "32", "—"]
    assert "data.source" not in rows and "train.loss" not in rows
    assert experiment_differences([runs[0].experiment, runs[0].experiment]) == []


def test_flatten_names_each_leaf_by_its_path():
    flat = flatten({"a": {"b": 1, "c": [{"d": 2}], "e": ["x", "y"]}})
    assert flat == {"a.b": 1, "a.c[0].d": 2, "a.e": ["x", "y"]}


def test_unfinished_run_without_a_live_runner_is_interrupted(tmp_path):
    run = tmp_path / "sine-rnn-20261101-000000"
    shutil.copytree(FIXTURES / "runs_dir" / "digits-cnn-20261026-093320", run)
    lines = (run / "events.jsonl").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"epoch_ended"' in line)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    started = json.loads(lines[0])
    started["pid"] = int(gone.stdout)  # a process that has exited
    (run / "events.jsonl").write_text("\n".join([encode(started), *lines[1 : cut + 1]]) + "\n")
    summary = summarize_run(run)
    assert summary.status == "interrupted"
    assert summary.epochs_completed == 1
    assert summary.best_monitor == "val_loss" and summary.best_epoch == 1

    # The runner's own record wins over the log's pid: alive only if the pid *and* start time match.
    import os

    import psutil

    me = {"pid": os.getpid(), "create_time": psutil.Process().create_time()}
    (run / "runner.json").write_text(json.dumps(me))
    assert summarize_run(run).status == "running"
    (run / "runner.json").write_text(json.dumps({**me, "create_time": me["create_time"] - 1000}))
    assert summarize_run(run).status == "interrupted"  # a recycled pid is not the runner


def test_a_folder_without_runs_is_empty(tmp_path):
    assert scan_runs(tmp_path / "missing") == []
    (tmp_path / "not-a-run").mkdir()
    assert scan_runs(tmp_path) == []


def test_durations_read_naturally():
    assert format_duration(12.4) == "12s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3720) == "1h02m"
    assert format_duration(None) == "—"


def test_runs_table_has_every_run_and_its_figures():
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(runs_table(scan_runs(RUNS)))
    text = console.export_text()
    for name in ("digits-cnn-20261026-093320", "early_stopped", "failed", "0.1774 @8", "5,930", "10/10"):
        assert name in text


def test_cli_runs_lists_runs_and_says_when_there_are_none(tmp_path):
    from tfbench.cli import cli

    result = CliRunner().invoke(cli, ["runs", str(RUNS), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["status"] for r in rows] == ["completed", "early_stopped", "failed"]
    result = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert result.exit_code == 0 and "no runs" in result.output


def test_cli_watch_refuses_a_folder_that_is_not_a_run(tmp_path):
    from tfbench.cli import cli

    result = CliRunner().invoke(cli, ["watch", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run directory" in result.output and "Traceback" not in result.output


def test_the_runs_index_imports_neither_tensorflow_nor_textual():
    code = (
        "import sys, tfbench.engine.runs, tfbench.event_tail; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
