"""A table whose `label` is a list of columns: an output each, classification and regression mixed.

Real data: palmerpenguins' `penguins.csv` as shipped in `presets/data` (NA cells included), with
the species (three classes) and the body mass (a regression target) as two outputs of one model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_runs import runner_env

from tfbench import data, models
from tfbench.cli import cli
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.io_model import data_names
from tfbench.rundir import read_history
from tfbench.spec import load_experiment

REPO = Path(__file__).resolve().parent.parent

PENGUINS = """
name = "penguins-two"
[data]
source = "csv:penguins.csv"
batch_size = 32
[data.options]
label = ["species", "body_mass_g"]
[[model.layers]]
type = "Dense"
units = 32
activation = "relu"
[[model.outputs]]
name = "species"
layers = [ { type = "Dense", units = 3, activation = "softmax" } ]
[[model.outputs]]
name = "body_mass_g"
layers = [ { type = "Dense", units = 1 } ]
loss_weight = 1e-6
[train]
epochs = 2
seed = 5
"""


def penguins(folder: Path, text: str = PENGUINS) -> Path:
    shutil.copy(REPO / "presets" / "data" / "penguins.csv", folder / "penguins.csv")
    path = folder / "penguins.toml"
    path.write_text(text)
    return path


def described(path: Path, overrides=()):
    exp = load_experiment(path, list(overrides))
    return exp, data.describe(exp.data, exp.train.seed, io=data_names(exp))


def test_a_label_per_output_mixes_classes_and_regression(tmp_path):
    exp, info = described(penguins(tmp_path))
    assert {name: o.label_kind for name, o in info.outputs.items()} == {
        "species": "categorical",
        "body_mass_g": "regression",
    }
    assert info.outputs["species"].class_names == ["Adelie", "Chinstrap", "Gentoo"]
    assert "body_mass_g" not in info.extra["feature_names"] and "species" not in info.extra["feature_names"]
    assert "2 rows without a 'body_mass_g' label are left out" in info.extra["notes"]
    summary = models.summarize(exp, info)
    assert summary.outputs == {"species": [3], "body_mass_g": [1]}
    width = info.input_shape[0]
    assert summary.total_params == (width * 32 + 32) + (32 * 3 + 3) + (32 + 1)


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ('data.options.label=["species", "sex"]', "data.options.label"),
        ('data.options.label_kind="categorical"', "data.options.label_kind"),
        ('model.outputs[1].name="body_mass"', "data.options.label"),
    ],
)
def test_label_columns_must_be_the_outputs(tmp_path, change, location):
    with pytest.raises(UserError) as caught:
        described(penguins(tmp_path), [change])
    assert caught.value.location.endswith(location), str(caught.value)


def test_a_list_of_labels_without_outputs_says_what_to_add(tmp_path):
    text = PENGUINS.split("[[model.outputs]]")[0] + "[train]\nepochs = 1\n"
    result = CliRunner().invoke(cli, ["validate", str(penguins(tmp_path, text))])
    assert result.exit_code == 2 and "data.options.label" in result.output and "[[model.outputs]]" in result.output


@pytest.mark.slow
def test_a_table_with_two_outputs_trains_predicts_and_its_train_py_repeats_it(tmp_path):
    run = Run(load_experiment(penguins(tmp_path)), runs_dir=tmp_path / "runs")
    assert run.train() == "completed", run.reason
    last = read_history(run.run_dir)[-1]
    assert {"species_accuracy", "val_species_accuracy", "body_mass_g_mae", "val_body_mass_g_mae"} <= set(last)

    rows = (tmp_path / "penguins.csv").read_text().splitlines()
    complete = [rows[0]] + [r for r in rows[1:] if ",NA," not in f",{r}," and not r.endswith(",NA")][:40]
    (tmp_path / "new.csv").write_text("\n".join(complete) + "\n")
    printed = CliRunner().invoke(cli, ["predict", str(run.run_dir), "--input", str(tmp_path / "new.csv"), "--json"])
    assert printed.exit_code == 0, printed.output
    assert '"species_label"' in printed.output and '"body_mass_g"' in printed.output
    assert '"outputs": {"species": {"accuracy"' in printed.output
    # Two rows of the shipped file have no body mass (NA): they are scored, each output's metric covers
    # the rows that have its label.
    whole = CliRunner().invoke(cli, ["predict", str(run.run_dir), "--input", str(tmp_path / "penguins.csv"), "--json"])
    assert whole.exit_code == 0, whole.output
    result = json.loads(whole.output)
    assert result["samples"] == len(rows) - 1 and set(result["outputs"]) == {"species", "body_mass_g"}
    assert "accuracy" in result["outputs"]["species"] and "mae" in result["outputs"]["body_mass_g"]
    unlabelled = [r for r in result["rows"] if r["body_mass_g_label"] is None]
    assert len(unlabelled) == sum(1 for r in rows[1:] if r.split(",")[5] == "NA") == 2

    done = subprocess.run(
        [sys.executable, str(run.run_dir / "train.py"), "--epochs", "2", "--output", str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if "val_species_accuracy" in x][-1]
    accuracy = float(line.split("val_species_accuracy: ")[1].split()[0])
    assert accuracy == pytest.approx(last["val_species_accuracy"], abs=1e-4)
