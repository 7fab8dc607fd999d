"""`tfbench predict RUN --input PATH`: new raw rows, image files and text files scored by a finished run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import runner_env
from tiny_runs import tfbench_here as tfbench

TABLES = Path(__file__).parent / "fixtures" / "tables"
PENGUINS = TABLES / "penguins.csv"


def trained(tmp_path: Path, preset: str, *overrides: str) -> Path:
    result = tfbench(
        "run", preset, "--quiet", *(a for o in overrides for a in ("--set", o)), "--runs-dir", tmp_path / "runs"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return next((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    """The penguins preset on the shipped file; ten epochs score 99 % of its rows right."""
    return trained(tmp_path_factory.mktemp("penguins"), "penguins", f"data.source=csv:{PENGUINS}", "train.epochs=10")


@pytest.mark.slow
def test_penguins_predictions_agree_with_species(penguins_run, tmp_path):
    out = tmp_path / "pred.csv"
    result = tfbench("predict", penguins_run, "--input", PENGUINS, "--output", out)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 344
    assert np.mean([r["predicted"] == r["label"] for r in rows]) >= 0.95
    assert all(0 < float(r["probability"]) <= 1 for r in rows)
    assert "344 predictions; accuracy" in result.stdout


@pytest.mark.slow
def test_rows_without_the_label_and_with_missing_cells_are_scored(penguins_run, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text(
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
        'Biscoe,NA,,217,NA,,2009\n"Dream",46.5,17.9,192,3500,female,2007\n'
    )
    out = tmp_path / "pred.jsonl"
    result = tfbench("predict", penguins_run, "--input", new, "--output", out)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["1", "2"] and "label" not in rows[0]
    assert {r["predicted"] for r in rows} <= {"Adelie", "Chinstrap", "Gentoo"}
    shown = tfbench("predict", penguins_run, "--input", new)
    assert "2 predictions" in shown.stdout and "accuracy" not in shown.stdout


@pytest.mark.slow
def test_a_file_missing_a_training_column_is_one_line(penguins_run, tmp_path):
    new = tmp_path / "bad.csv"
    new.write_text("island,year\nBiscoe,2009\n")
    result = tfbench("predict", penguins_run, "--input", new)
    assert result.returncode == 2
    assert "--input" in result.stderr and "no column 'bill_length_mm'" in result.stderr
    assert "Traceback" not in result.stderr


def write_png(path: Path, value: int) -> None:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(np.full((8, 8, 3), value, np.uint8)).numpy())


@pytest.mark.slow
def test_image_files_and_folders_are_scored(tmp_path):
    for c, name in enumerate(["dark", "light"]):
        for i in range(6):
            write_png(tmp_path / "imgs" / name / f"{i}.png", 30 + c * 180 + i)
    preset = tmp_path / "img.toml"
    preset.write_text(f"""name = "img"
[data]
source = "images:{tmp_path / "imgs"}"
batch_size = 4
options = {{ scale = 0.00392 }}
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
[train]
epochs = 2
""")
    run = trained(tmp_path, preset)
    folder = tfbench("predict", run, "--input", tmp_path / "imgs", "--json")
    assert folder.returncode == 0, folder.stderr[-3000:]
    result = json.loads(folder.stdout)
    assert result["samples"] == 12 and "accuracy" in result  # labels from the class folders
    one = json.loads(tfbench("predict", run, "--input", tmp_path / "imgs" / "dark" / "0.png", "--json").stdout)
    assert one["samples"] == 1 and one["rows"][0]["predicted"] in ("dark", "light")


@pytest.mark.slow
def test_text_files_are_scored(tmp_path):
    for name, word in (("neg", "bad awful"), ("pos", "good great")):
        for i in range(5):
            path = tmp_path / "texts" / name / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{word} {i}")
    preset = tmp_path / "txt.toml"
    preset.write_text(f"""name = "txt"
[data]
source = "text:{tmp_path / "texts"}"
batch_size = 4
options = {{ max_tokens = 50, sequence_length = 4 }}
[[model.layers]]
type = "Embedding"
input_dim = 50
output_dim = 4
[[model.layers]]
type = "GlobalAveragePooling1D"
[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"
[train]
epochs = 1
""")
    run = trained(tmp_path, preset)
    result = tfbench("predict", run, "--input", tmp_path / "texts" / "pos", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["samples"] == 5 and all(r["predicted"] in ("neg", "pos") for r in data["rows"])


@pytest.mark.slow
def test_a_table_run_exports_raw_column_models_and_tflite_after_preprocessing(penguins_run, tmp_path):
    penguins_run = shutil.copytree(penguins_run, tmp_path / penguins_run.name)  # this test exports into it
    report = json.loads((penguins_run / "exports" / "report.json").read_text())  # the preset's keras + savedmodel
    assert report["savedmodel"]["agreement"] == 1.0 and report["savedmodel"]["max_abs_diff"] < 1e-5
    result = tfbench("export", penguins_run, "--format", "tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    tflite = json.loads((penguins_run / "exports" / "report.json").read_text())["tflite"]
    assert "island, sex" in tflite["note"] and "encoded features" in tflite["note"]
    assert tflite["agreement"] >= 0.99


# -- tables larger than memory, and new files as they come -----------------------------------------

PENGUIN_COLUMNS = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"


def penguins_like(path: Path, rows: int, last: str | None = None) -> Path:
    """A CSV of the penguins' columns with random values, `rows` long (its last row replaced by `last`)."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    rng = np.random.default_rng(rows)
    table = pa.table(
        {
            "species": rng.choice(["Adelie", "Chinstrap", "Gentoo"], rows),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], rows),
            "bill_length_mm": rng.normal(44, 5, rows).round(1),
            "bill_depth_mm": rng.normal(17, 2, rows).round(1),
            "flipper_length_mm": rng.normal(200, 14, rows).round(0),
            "body_mass_g": rng.normal(4200, 800, rows).round(0),
            "sex": rng.choice(["male", "female"], rows),
            "year": rng.integers(2007, 2010, rows),
        }
    )
    pa_csv.write_csv(table.slice(0, rows - 1) if last else table, path)
    if last:
        with open(path, "a") as f:
            f.write(last + "\n")
    return path


def peak_rss_mb(*args) -> tuple[float, subprocess.CompletedProcess]:
    """Run `tfbench ARGS` and return the child's own peak resident memory (MB) with its result."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "tfbench", *map(str, args)], stdout=out, stderr=err, env=runner_env(), text=True
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return usage.ru_maxrss / 1024, subprocess.CompletedProcess(args, child.returncode, out.read(), err.read())


@pytest.mark.slow
def test_predicting_a_table_streams_in_memory_bounded_independent_of_its_size(penguins_run, tmp_path):
    small = penguins_like(tmp_path / "small.csv", 40_000)  # ~2 MB
    large = penguins_like(tmp_path / "large.csv", 800_000)  # ~40 MB: the whole-file reader took ~20x that
    peaks = {}
    for path in (small, large):
        peaks[path.name], result = peak_rss_mb("predict", penguins_run, "--input", path, "--output", tmp_path / "o.csv")
        assert result.returncode == 0, result.stderr[-3000:]
        assert sum(1 for _ in open(tmp_path / "o.csv")) == (40_000 if path is small else 800_000) + 1
    growth = peaks["large.csv"] - peaks["small.csv"]
    assert growth < 60, f"peak RSS grew by {growth:.0f} MB for 38 MB more input ({peaks})"


@pytest.mark.slow
def test_predictions_are_written_as_the_file_is_read(penguins_run, tmp_path):
    rows = 300_000  # ~14 MB: many record batches
    bad = penguins_like(tmp_path / "bad.csv", rows, last="Adelie,Dream,forty,17.0,190,3600,male,2008")
    out = tmp_path / "pred.csv"
    result = tfbench("predict", penguins_run, "--input", bad, "--output", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--input ({bad})" in result.stderr and "column 'bill_length_mm'" in result.stderr
    assert f"(row {rows + 1}: 'forty')" in result.stderr  # the file's last row, header = row 1
    written = sum(1 for _ in open(out)) - 1
    assert written > rows // 2  # the rows before the bad one were scored and written before it was read


@pytest.mark.slow
def test_new_rows_whose_label_is_missing_or_unknown_are_scored_and_counted(penguins_run, tmp_path):
    lines = PENGUINS.read_text().splitlines()
    body = [lines[0]]
    for i, line in enumerate(lines[1:41]):
        cells = line.split(",")
        cells[0] = {0: "", 1: "NA", 2: "Emperor"}.get(i % 4, cells[0])
        body.append(",".join(cells))
    new = tmp_path / "partly.csv"
    new.write_text("\n".join(body) + "\n")
    result = tfbench("predict", penguins_run, "--input", new, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads(result.stdout)
    assert scored["samples"] == 40 and scored["labelled"] == 10
    assert scored["unlabelled"] == 20 and scored["unknown_labels"] == 10
    assert scored["unknown_label_example"] == "Emperor"
    right = sum(r["predicted"] == r["label"] for r in scored["rows"] if r["label"] is not None)
    assert scored["accuracy"] == pytest.approx(right / 10)
    shown = tfbench("predict", penguins_run, "--input", new)
    assert "40 predictions; accuracy" in shown.stdout and "over 10 labelled rows; 20 had no label" in shown.stdout
    assert "10 had a label that is not one of the run's classes (e.g. 'Emperor')" in shown.stdout


@pytest.mark.slow
def test_bad_input_files_are_one_line_naming_input(penguins_run, tmp_path):
    lines = PENGUINS.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text(lines[0] + ",island\n" + "\n".join(line + ",Dream" for line in lines[1:5]) + "\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(("\n".join(lines[:3] + [lines[3].replace("Torgersen", "Torgérsen")]) + "\n").encode("latin-1"))
    for path, words in (
        (dup, "the column name 'island' is used twice (columns 2 and 9)"),
        (latin, "column 'island' is not utf-8 text (row 4: b'Torg\\xe9rsen')"),
    ):
        result = tfbench("predict", penguins_run, "--input", path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert f"error: --input ({path})" in result.stderr and words in result.stderr
        assert "data.source" not in result.stderr and "data.options" not in result.stderr.split("(")[0]


@pytest.mark.slow
def test_text_labels_for_a_run_trained_on_numbers_are_counted_not_fatal(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("x,z,y\n" + "".join(f"{i * 0.1:.1f},{(i * 7) % 5},{int(i % 3 == 0)}\n" for i in range(60)))
    run = trained(
        tmp_path,
        "penguins",
        f"data.source=csv:{train}",
        "data.options.label=y",
        "model.layers[1].units=2",
        "train.epochs=1",
        "export.formats=[]",
    )
    new = tmp_path / "new.csv"
    new.write_text("x,z,y\n0.5,1,yes\n1.5,2,no\n2.5,3,1\n3.5,4,1.0\n")
    result = tfbench("predict", run, "--input", new, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads(result.stdout)
    assert scored["samples"] == 4 and scored["labelled"] == 2 and scored["unknown_labels"] == 2
    assert [r["label"] for r in scored["rows"]] == [None, None, "1", "1"]
