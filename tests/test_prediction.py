"""`tfbench predict RUN --input PATH`: new raw rows, image files and text files scored by a finished run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from no_network.sitecustomize import pythonpath

TABLES = Path(__file__).parent / "fixtures" / "tables"
PENGUINS = TABLES / "penguins.csv"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath(Path(__file__).parent.parent)}


def tfbench(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfbench", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


def trained(tmp_path: Path, preset: str, *overrides: str) -> Path:
    result = tfbench("run", preset, *(a for o in overrides for a in ("--set", o)), "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr[-3000:]
    return next((tmp_path / "runs").iterdir())


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory) -> Path:
    return trained(tmp_path_factory.mktemp("penguins"), "penguins", f"data.source=csv:{PENGUINS}", "train.epochs=25")


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


def test_a_table_run_exports_raw_column_models_and_tflite_after_preprocessing(penguins_run):
    report = json.loads((penguins_run / "exports" / "report.json").read_text())  # the preset's keras + savedmodel
    assert report["savedmodel"]["agreement"] == 1.0 and report["savedmodel"]["max_abs_diff"] < 1e-5
    result = tfbench("export", penguins_run, "--format", "tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    tflite = json.loads((penguins_run / "exports" / "report.json").read_text())["tflite"]
    assert "island, sex" in tflite["note"] and "encoded features" in tflite["note"]
    assert tflite["agreement"] >= 0.99
