"""The runs filter's query language, tags and notes in a run directory, and the runs index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from many_runs import copy_fixture_runs, made_run_values, make_runs

from tfbench.engine.runs import scan_runs
from tfbench.engine.runs_index import RunsIndex, complete_summary
from tfbench.engine.runs_query import QueryError, filter_runs, parse_query, run_fields
from tfbench.errors import UserError
from tfbench.run_notes import NOTES_FILE, read_notes, set_note, tag_run, toggle_tag

FIELDS = {
    "name": "digits-cnn-0007",
    "preset": "digits-cnn",
    "status": "early_stopped",
    "tag": ("baseline", "wide"),
    "note": "LR too high at first",
    "train.optimizer.learning_rate": 0.001,
    "train.optimizer.type": "Adam",
    "train.metrics": ["accuracy"],
    "val_accuracy": 0.95,
    "epochs": 10,
}


def holds(text: str) -> bool:
    return parse_query(text).matches(FIELDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.optimizer.learning_rate>1e-4", True),
        ("train.optimizer.learning_rate>1e-3", False),
        ("train.optimizer.learning_rate>=1e-3", True),
        ("train.optimizer.learning_rate<1e-3", False),
        ("train.optimizer.learning_rate<=0.001", True),
        ("train.optimizer.learning_rate=0.001", True),
        ("train.optimizer.learning_rate:1e-3", True),  # numbers compare as numbers
        ("train.optimizer.learning_rate=0.01", False),
        ("val_accuracy>0.95", False),
        ("val_accuracy>=0.95", True),
        ("epochs<11", True),
        ("status:early", True),  # `:` on text: contains
        ("status=early", False),  # `=` on text: equal
        ("status=EARLY_STOPPED", True),  # without regard to case
        ("train.optimizer.type:adam", True),
        ("tag:baseline", True),
        ("tag:base", True),
        ("tag=base", False),
        ("tag:narrow", False),
        ("train.metrics:accuracy", True),  # any element of a list
        ('note:"too high"', True),
        ("cnn", True),  # a bare word: name, preset, tags or note
        ("wide", True),
        ("mlp", False),
        ("missing.path:1", False),  # a run without the field never matches
        ("val_accuracy>0.9 status:stopped", True),
        ("val_accuracy>0.9 status:completed", False),  # every term must hold
        ("", True),
    ],
)
def test_each_operator_compares_as_documented(text, expected):
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "term", "words"),
    [
        ("status:completed val_accuracy>", "val_accuracy>", "no value after >"),
        (">0.9", ">0.9", "no field before >"),
        (":x", ":x", "no field before :"),
        ("lr>>3", "lr>>3", "no value after >"),
        ("val_accuracy>high", "val_accuracy>high", "compares numbers"),
        ('note:"open', 'note:"open', "quote is not closed"),
    ],
)
def test_a_bad_term_is_named_in_one_line(text, term, words):
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert caught.value.location == term
    assert words in caught.value.message
    assert "\n" not in str(caught.value)


def test_a_field_no_run_has_is_refused_with_the_closest_names():
    runs = scan_runs(copy_fixture_runs_path())
    with pytest.raises(QueryError) as caught:
        filter_runs(runs, "val_acuracy>0.5")
    assert caught.value.location == "val_acuracy>0.5"
    assert "val_accuracy" in str(caught.value)
    assert filter_runs([], "val_acuracy>0.5") == []  # nothing to check a field against


def copy_fixture_runs_path() -> Path:
    return Path(__file__).parent / "fixtures" / "runs_dir"


def test_filter_reads_status_experiment_paths_final_metrics_and_tags(tmp_path):
    runs_dir = copy_fixture_runs(tmp_path / "runs")
    runs = scan_runs(runs_dir)
    assert [r.status for r in runs] == ["completed", "early_stopped", "failed"]
    assert [r.name for r in filter_runs(runs, "status:completed")] == [runs[0].name]
    assert [r.name for r in filter_runs(runs, "train.optimizer.learning_rate>=1e-2")] == [runs[2].name]
    assert runs[0].final["val_accuracy"] > 0.9
    best = max(runs, key=lambda r: r.final.get("val_accuracy", 0))
    top = best.final["val_accuracy"]
    assert [r.name for r in filter_runs(runs, f"val_accuracy>={top}")] == [best.name]
    tag_run(runs[1].path, ["baseline"])
    runs = scan_runs(runs_dir)
    assert [r.name for r in filter_runs(runs, "tag:baseline")] == [runs[1].name]


def test_tags_and_note_are_kept_in_the_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert read_notes(run).tags == [] and read_notes(run).note == ""
    tag_run(run, ["baseline", "wide", "baseline"])
    set_note(run, "  lr too high  ")
    on_disk = json.loads((run / NOTES_FILE).read_text())
    assert on_disk == {"tags": ["baseline", "wide"], "note": "lr too high"}
    assert toggle_tag(run, "wide").tags == ["baseline"]
    assert toggle_tag(run, "wide").tags == ["baseline", "wide"]
    assert tag_run(run, remove=["baseline"]).tags == ["wide"]
    assert [p.name for p in run.iterdir()] == [NOTES_FILE]  # no temporary file left behind
    with pytest.raises(UserError, match="one word"):
        tag_run(run, ["two words"])
    (run / NOTES_FILE).write_text("{not json")
    assert read_notes(run).tags == []  # a damaged file reads as empty


def test_the_index_reads_again_only_runs_whose_files_changed(tmp_path):
    runs_dir = tmp_path / "runs"
    make_runs(runs_dir, 12)
    cache = tmp_path / "cache" / "index.json"
    first = RunsIndex(runs_dir, cache)
    assert len(first.scan()) == 12 and first.read_count == 12
    assert first.scan() and first.read_count == 0
    later = RunsIndex(runs_dir, cache)  # another process: from the cache file
    runs = later.scan()
    assert later.read_count == 0
    assert [(r.name, r.status, r.final, run_fields(r), complete_summary(r).experiment) for r in runs] == [
        (r.name, r.status, r.final, run_fields(r), r.experiment) for r in scan_runs(runs_dir)
    ]
    tag_run(runs[3].path, ["baseline"])
    events = runs[5].path / "events.jsonl"
    os.utime(events, ns=(1, 1))  # any change of the log's time or size reads it again
    again = later.scan()
    assert later.read_count == 2
    assert again[3].tags == ["baseline"]


def test_the_index_keeps_no_curves_and_a_run_reads_them_again_from_its_files(tmp_path):
    runs_dir = tmp_path / "runs"
    copy_fixture_runs(runs_dir)
    cache = tmp_path / "cache" / "index.index"
    RunsIndex(runs_dir, cache).scan()
    indexed = RunsIndex(runs_dir, cache).scan()  # another process: from the cache file
    full = scan_runs(runs_dir)
    assert all(not r.complete and not r.history and not r.experiment for r in indexed)
    for compact, expected in zip(indexed, full, strict=True):
        complete = complete_summary(compact)
        assert complete.complete and complete.history == expected.history and complete.history
        assert complete.epoch_numbers == expected.epoch_numbers and complete.experiment == expected.experiment


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # cut short
        lambda blob: blob[:-40] + bytes(40),  # overwritten
        lambda blob: blob.replace(b"tfbench runs index", b"tfbench runs INDEX"),  # another format
        lambda blob: b'{"version": 1, "runs_dir": "x", "runs": {}}',  # the JSON index of an earlier version
        lambda blob: b"",
    ],
    ids=["truncated", "overwritten", "foreign", "older-json", "empty"],
)
def test_a_damaged_or_foreign_index_file_is_read_as_no_index(tmp_path, damage):
    runs_dir = tmp_path / "runs"
    make_runs(runs_dir, 6)
    cache = tmp_path / "cache" / "index.index"
    RunsIndex(runs_dir, cache).scan()
    cache.write_bytes(damage(cache.read_bytes()))
    index = RunsIndex(runs_dir, cache)
    runs = index.scan()
    assert index.read_count == 6  # every run read from its files, nothing from the file
    assert [(r.name, r.status, r.final) for r in runs] == [(r.name, r.status, r.final) for r in scan_runs(runs_dir)]
    later = RunsIndex(runs_dir, cache)
    later.scan()
    assert later.read_count == 0  # and the file was written anew


def test_an_index_file_of_another_version_is_ignored(tmp_path, monkeypatch):
    from tfbench.engine import runs_index

    runs_dir = tmp_path / "runs"
    make_runs(runs_dir, 4)
    cache = tmp_path / "cache" / "index.index"
    monkeypatch.setattr(runs_index, "INDEX_VERSION", runs_index.INDEX_VERSION + 1)
    RunsIndex(runs_dir, cache).scan()
    monkeypatch.undo()
    index = RunsIndex(runs_dir, cache)
    index.scan()
    assert index.read_count == 4


@pytest.mark.slow
def test_a_thousand_runs_filter_as_they_were_made(tmp_path):
    runs_dir = tmp_path / "runs"
    make_runs(runs_dir, 1000)
    runs = RunsIndex(runs_dir).scan()
    assert len(runs) == 1000
    values = {f"digits-{'cnn' if i % 2 else 'mlp'}-{i:04d}": made_run_values(i) for i in range(1000)}
    query = "status:completed train.optimizer.learning_rate>=1e-3 val_accuracy>0.95 preset:cnn"
    expected = sorted(
        name
        for name, v in values.items()
        if v["status"] == "completed"
        and v["learning_rate"] >= 1e-3
        and v["val_accuracy"] > 0.95
        and name.startswith("digits-cnn")
    )
    found = sorted(r.name for r in filter_runs(runs, query))
    assert found == expected and 0 < len(found) < 1000


def test_cli_filters_runs_and_tags_and_notes_them(tmp_path):
    from click.testing import CliRunner

    from tfbench.cli import cli

    runs_dir = copy_fixture_runs(tmp_path / "runs")
    names = sorted(p.name for p in runs_dir.iterdir())
    runner = CliRunner()
    result = runner.invoke(cli, ["runs", "tag", str(runs_dir / names[1]), "baseline", "small"])
    assert result.exit_code == 0 and result.output.split() == ["baseline", "small"]
    result = runner.invoke(cli, ["runs", "tag", str(runs_dir / names[1]), "small", "--remove"])
    assert result.output.split() == ["baseline"]
    result = runner.invoke(cli, ["runs", "note", str(runs_dir / names[1]), "lr", "too", "high"])
    assert result.exit_code == 0 and result.output.strip() == "lr too high"

    result = runner.invoke(cli, ["runs", str(runs_dir), "--filter", "tag:baseline note:high", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [names[1]]
    assert rows[0]["tags"] == ["baseline"] and rows[0]["note"] == "lr too high"
    assert rows[0]["final"]["val_accuracy"] > 0.5

    result = runner.invoke(
        cli, ["runs", str(runs_dir), "--filter", "status:completed train.optimizer.learning_rate>=1e-3"]
    )
    assert result.exit_code == 0 and names[0] in result.output and names[1] not in result.output
    result = runner.invoke(cli, ["runs", str(runs_dir), "--filter", "val_accuracy>"])
    assert result.exit_code == 2 and "val_accuracy>" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["runs", "tag", str(tmp_path), "x"])
    assert result.exit_code == 2 and "not a run directory" in result.output
    result = runner.invoke(cli, ["runs", "tag", str(runs_dir / names[0]), "two words"])
    assert result.exit_code == 2 and "one word" in result.output
