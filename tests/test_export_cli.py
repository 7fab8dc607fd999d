"""`tfbench export`, `tfbench code` and `tfbench predict` on the command line."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_export import digits_cnn_run

from tfbench.cli import cli

# Keras warns that a finite tf.data pipeline "ran out of data" after fit/evaluate on it.
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return digits_cnn_run(tmp_path_factory.mktemp("runs") / "digits-cnn-20260101-000000")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
def test_export_prints_the_verification_table(run_dir):
    result = invoke("export", str(run_dir), "--format", "tflite", "--quantize", "float16")
    assert result.exit_code == 0, result.output
    assert "export verification" in result.stdout and "tflite-float16" in result.stdout
    assert "wrote exports/model.float16.tflite" in result.stdout
    assert (run_dir / "exports" / "model.float16.tflite").is_file()
    assert result.stderr == ""


@pytest.mark.slow
def test_export_json(run_dir, tmp_path):
    result = invoke(
        "export", str(run_dir), "--format", "keras", "--format", "savedmodel", "--out", str(tmp_path / "out"), "--json"
    )
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert [r["format"] for r in reports] == ["keras", "savedmodel"]
    assert reports[0]["identical"] is True
    assert set(json.loads((tmp_path / "out" / "report.json").read_text())) == {"keras", "savedmodel"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "onxx"], "error: --format: unknown export format 'onxx'"),
        (["--format", "tflite", "--quantize", "int3"], "error: --quantize: unknown quantisation 'int3'"),
        (["--format", "tflite", "--quantize", "int4"], "error: --quantize: int4 applies to keras, savedmodel, onnx"),
        (["--format", "keras", "--quantize", "dynamic"], "error: --quantize: dynamic applies to tflite, not to keras"),
        (["--all", "--format", "onnx"], "error: --all: --all exports every format and quantisation"),
        ([], "error: --format: name a format, or --all for every one"),
        (["--format", "tflite", "--int8-io"], "error: --int8-io: int8 input/output needs int8 quantisation"),
    ],
)
def test_export_bad_options(run_dir, tmp_path, args, message):
    result = invoke("export", str(run_dir), *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_all_prints_the_format_by_quantisation_matrix(run_dir, tmp_path):
    """`--all` on digits-cnn: every pair the registry lists gets a ✔ row with its figures or a ✗ row
    with its reason, and report.json keeps the matrix beside the exports' own entries."""
    from tfbench.export.formats import matrix_cells
    from tfbench.export.report import exports_of, read_matrix, read_report

    out = tmp_path / "out"
    result = invoke("export", str(run_dir), "--all", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "exports: format × quantisation" in result.stdout
    rows = read_matrix(out)
    assert [(r["format"], r["quantization"]) for r in rows] == matrix_cells()
    for row in rows:
        line = next(line for line in result.stdout.splitlines() if line.split()[:1] == [row["key"]])
        assert line.rstrip().endswith("✔" if row["ok"] else "✗"), line
        if row["ok"]:
            assert (out / row["path"]).exists() and row["latency_runs"] >= 30
            assert row["size_ratio"] == pytest.approx(row["float_keras_bytes"] / row["size_bytes"])
        else:  # a ✗ row says why under the table, and left no file behind
            assert row["reason"] and row["key"] in result.stdout.split("✗", 1)[1]
            assert row["key"] not in exports_of(read_report(out)) and "path" not in row
    ok = {row["key"] for row in rows if row["ok"]}
    assert {"keras", "onnx", "openvino", "tflite", "keras-int8", "onnx-int8", "tflite-int8"} <= ok
    floats = [row for row in rows if row["ok"] and row["quantization"] == "none"]
    assert all(row["agreement"] == 1.0 and row["relative_diff"] <= 1e-5 for row in floats)
    # digits-cnn's Conv2D layers have no Keras-quantised form: the report names them.
    assert "Keras quantised" in result.stdout and "conv2d (Conv2D)" in result.stdout
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_export_from_a_folder_without_model(tmp_path):
    result = invoke("export", str(tmp_path), "--format", "keras")
    assert result.exit_code == 2
    assert "no trained model" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_code_prints_a_script():
    result = invoke("code", "digits-cnn", "--set", "train.epochs=3")
    assert result.exit_code == 0
    ast.parse(result.stdout)
    assert "EPOCHS = 3" in result.stdout and "def build_model():" in result.stdout


def test_code_writes_a_file_and_rejects_an_unwritable_one(tmp_path):
    target = tmp_path / "train.py"
    result = invoke("code", "spiral-mlp", "--output", str(target))
    assert result.exit_code == 0 and target.is_file()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = invoke("code", "spiral-mlp", "--output", str(blocker / "train.py"))
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


def test_code_unknown_preset():
    result = invoke("code", "digits-cn")
    assert result.exit_code == 2
    assert "digits-cnn" in result.stderr


@pytest.mark.slow
def test_predict_shows_the_confusion_matrix(run_dir):
    result = invoke("predict", str(run_dir), "-k", "3")
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.stdout and "most confident mistakes" in result.stdout
    assert "accuracy" in result.stdout.splitlines()[0]


def test_predict_json_and_missing_split(run_dir):
    result = invoke("predict", str(run_dir), "--json", "-k", "2")
    data = json.loads(result.stdout)
    assert data["samples"] == 359 and len(data["mistakes"]) == 2
    result = invoke("predict", str(run_dir), "--split", "test")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --split: this run's data has no test split")
