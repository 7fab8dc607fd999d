"""`tfbench resume` after `experiment.toml` was edited: a new `train.epochs` is trained to, an edit it
cannot honour (the model, the optimizer, the data…) is refused in one line naming it, and the run
stays as it was — resumable, never marked failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_runs import digits_preset, tfbench_here, write_preset

from tfbench.cli import cli
from tfbench.engine import events as ev
from tfbench.engine.run import Run
from tfbench.rundir import read_history
from tfbench.spec import load_experiment


def trained_run(tmp_path: Path, runs_dir: Path, epochs: int = 4, stop_after: int | None = 2) -> Path:
    """A digits softmax run (seed 5) stopped after `stop_after` epochs (None: finished)."""

    def stop(event):
        if stop_after is not None and event["event"] == "epoch_ended" and event["epoch"] == stop_after:
            run.stop()

    preset = write_preset(tmp_path, digits_preset(name="edit", epochs=epochs, batch=64), "edit.toml")
    run = Run(load_experiment(preset), runs_dir=runs_dir, subscribers=[stop])
    assert run.train() == ("stopped" if stop_after is not None else "completed")
    return run.run_dir


def edit(run_dir: Path, old: str, new: str) -> str:
    """Replace `old` by `new` in the run's experiment.toml; returns the text before."""
    path = run_dir / "experiment.toml"
    before = path.read_text()
    assert old in before, before
    path.write_text(before.replace(old, new, 1))
    return before


def resume(run_dir: Path, *args: str):
    result = CliRunner().invoke(cli, ["resume", str(run_dir), "--quiet", *args])
    return result.exit_code, result.stderr


def assert_refused(code: int, err: str, run_dir: Path, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"{run_dir / 'experiment.toml'}" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.slow
def test_a_model_edited_between_stop_and_resume_is_refused_and_the_run_stays_resumable(tmp_path, runs_dir):
    run_dir = trained_run(tmp_path, runs_dir)
    events_before = (run_dir / "events.jsonl").read_bytes()
    original = edit(run_dir, "units = 10", "units = 12")
    result = tfbench_here("resume", run_dir, "--quiet")
    assert_refused(result.returncode, result.stderr, run_dir, "model.layers[1].units 10 → 12", "tfbench run")
    assert (run_dir / "events.jsonl").read_bytes() == events_before  # nothing recorded: not marked failed
    listed = CliRunner().invoke(cli, ["runs", str(runs_dir), "--json"])
    assert json.loads(listed.stdout)[0]["status"] == "stopped"
    (run_dir / "experiment.toml").write_text(original)  # put back: the run resumes as it was
    assert resume(run_dir) == (0, "")
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4]


EDITS = {
    "an activation (same weights)": ('activation = "softmax"', 'activation = "sigmoid"', "model.layers[1].activation"),
    "the optimizer": ('type = "Adam"', 'type = "SGD"', "train.optimizer.type Adam → SGD"),
    "the learning rate": ("learning_rate = 0.001", "learning_rate = 0.01", "train.optimizer.learning_rate"),
    "the batch size": ("batch_size = 64", "batch_size = 32", "data.batch_size 64 → 32"),
    "a layer added": (
        '{ type = "Flatten" },',
        '{ type = "Flatten" },\n{ type = "Dense", units = 32 },',
        "model.layers[2]",
    ),
    "the seed, with the epochs": ("seed = 5", "seed = 6", "train.seed 5 → 6"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_every_edit_resume_cannot_honour_is_named(tmp_path, runs_dir, case):
    run_dir = trained_run(tmp_path, runs_dir)
    old, new, words = EDITS[case]
    edit(run_dir, old, new)
    if case.endswith("with the epochs"):
        edit(run_dir, "epochs = 4", "epochs = 6")
    events_before = (run_dir / "events.jsonl").read_bytes()
    code, err = resume(run_dir)
    assert_refused(code, err, run_dir, words)
    assert (run_dir / "events.jsonl").read_bytes() == events_before


@pytest.mark.slow
def test_edited_epochs_are_trained_to(tmp_path, runs_dir):
    run_dir = trained_run(tmp_path, runs_dir)
    edit(run_dir, "epochs = 4", "epochs = 5")
    assert resume(run_dir) == (0, "")
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3, 4, 5]
    events = ev.read_events(run_dir)
    assert events[-1]["event"] == "run_ended" and events[-1]["status"] == "completed" and events[-1]["epochs"] == 5
    assert any("plans 5 epochs now (4 before)" in e.get("message", "") for e in events if e["event"] == "log")


@pytest.mark.slow
def test_a_finished_run_with_more_epochs_planned_in_its_file_trains_on(tmp_path, runs_dir):
    run_dir = trained_run(tmp_path, runs_dir, epochs=2, stop_after=None)
    code, err = resume(run_dir)
    assert code == 2 and "already finished its 2 planned epochs" in err  # unedited: nothing to do
    edit(run_dir, "epochs = 2", "epochs = 3")
    edit(run_dir, 'description = ""', 'description = "one more epoch"')  # honoured: changes nothing
    assert resume(run_dir) == (0, "")
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]
    assert resume(run_dir)[1].count("already finished its 3 planned epochs") == 1


def test_epochs_edited_below_what_was_trained_are_refused(tmp_path, runs_dir):
    run_dir = trained_run(tmp_path, runs_dir, epochs=4, stop_after=3)
    edit(run_dir, "epochs = 4", "epochs = 2")
    code, err = resume(run_dir)
    assert_refused(code, err, run_dir, "train.epochs = 2", "trained 3 epochs", "plan at least 3")
    assert resume(run_dir, "--epochs", "4") == (2, err)  # --epochs does not hide the edit either
