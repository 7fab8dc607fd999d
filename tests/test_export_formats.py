"""The format registry: a format is its module plus one registry line, and then it is everywhere.

This module is such a format module: `WeightsFile` writes the model's weights alone
(`.weights.h5`) and verifies them by loading them into a fresh copy of the model. Registering it
(the fixture's one line) makes the CLI offer it, a preset accept it, the export dialog list it and
the one-call export write it beside the shipped formats.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_export import make_run

from tfbench.export import formats
from tfbench.export.formats import ExportFormat, ExportJob

# Keras warns that a finite tf.data pipeline "ran out of data" after fit/evaluate on it.
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")


class WeightsFile:
    """`weights`: the model's weights alone, for code that builds the architecture itself."""

    def write(self, path: Path, job: ExportJob) -> None:
        job.model.save_weights(str(path))

    def verify(self, path: Path, job: ExportJob) -> dict:
        import keras
        import numpy as np

        from tfbench.export.reference import predict_keras

        copy = keras.models.clone_model(job.model)
        copy.load_weights(str(path))
        outputs = predict_keras(copy, job.reference.x)
        return {
            **job.reference.compare(outputs),
            "identical": bool(np.array_equal(outputs, job.reference.outputs)),
            "latency_ms": None,
        }


WEIGHTS = WeightsFile()


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def weights_format():
    """The registry line a new format adds, for the length of one test."""
    yield formats.register(ExportFormat("weights", "model.weights.h5", "the weights alone", f"{__name__}:WEIGHTS"))
    formats.unregister("weights")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "spiral-mlp-20260101-000000", "spiral-mlp", epochs=2)


def test_the_shipped_choices_come_from_the_registry():
    from tfbench.cli import cli
    from tfbench.spec import ExportSpec

    assert formats.format_names() == ("keras", "savedmodel", "tflite", "onnx", "openvino")
    assert formats.quantization_names() == ("none", "dynamic", "float16", "int8", "int4", "float8")
    assert [f.artifact_name(q) for f in formats.FORMATS.values() for q in ("none", "int8")] == [
        "model.keras",
        "model.int8.keras",
        "saved_model",
        "saved_model.int8",
        "model.tflite",
        "model.int8.tflite",
        "model.onnx",
        "model.int8.onnx",
        "openvino",
        "openvino.int8",
    ]
    assert formats.takers("int4") == ["keras", "savedmodel", "onnx", "openvino"]
    assert formats.takers("dynamic") == ["tflite"]
    assert ("tflite", "int4") not in formats.matrix_cells() and ("openvino", "float16") in formats.matrix_cells()
    assert formats.report_key("tflite", "int8", int8_io=True) == "tflite-int8-io"
    help_text = CliRunner().invoke(cli, ["export", "--help"]).output
    assert "keras|savedmodel|tflite|onnx|openvino" in help_text and "none|dynamic|float16|int8|int4|float8" in help_text
    for entry in [*formats.FORMATS.values(), *formats.QUANTIZATIONS.values()]:  # described from the registry
        assert entry.description in " ".join(help_text.split())
    assert ExportSpec(formats=["tflite"], tflite_quantization="float16").formats == ["tflite"]


def test_a_registered_format_is_offered_by_the_cli_the_spec_and_the_dialog(weights_format, tmp_path):
    from textual.app import App
    from textual.widgets import SelectionList

    from tfbench.cli import cli
    from tfbench.errors import UserError
    from tfbench.screens.run_dialogs import ExportDialog
    from tfbench.spec import ExportSpec, load_experiment

    help_text = CliRunner().invoke(cli, ["export", "--help"]).output
    assert "keras|savedmodel|tflite|onnx|openvino|weights" in help_text
    assert "the weights alone (model.weights.h5)" in help_text
    assert ExportSpec(formats=["keras", "weights"]).formats == ["keras", "weights"]
    assert load_experiment("spiral-mlp", ['export.formats=["weights"]']).export.formats == ["weights"]
    with pytest.raises(UserError) as info:
        load_experiment("spiral-mlp", ['export.formats=["weight"]'])
    assert info.value.location.endswith("export.formats[0]") and "did you mean 'weights'?" in info.value.message

    async def offered() -> list[str]:
        app = App()
        async with app.run_test(size=(100, 32)) as pilot:
            await app.push_screen(ExportDialog(tmp_path, ["weights"]))
            await pilot.pause()
            options = app.screen.query_one("#formats", SelectionList)
            return [str(options.get_option_at_index(i).value) for i in range(options.option_count)], list(
                options.selected
            )

    names, ticked = asyncio.run(offered())
    assert names == ["keras", "savedmodel", "tflite", "onnx", "openvino", "weights"] and ticked == ["weights"]


@pytest.mark.slow
def test_one_call_writes_a_registered_format_beside_the_shipped_ones(weights_format, tiny_run, monkeypatch):
    """`tfbench export --format keras --format weights`: one model load, two verified exports."""
    from tfbench.cli import cli
    from tfbench.export import exporter

    loads = []
    real_load = exporter.load_model
    monkeypatch.setattr(exporter, "load_model", lambda path: loads.append(path) or real_load(path))
    result = CliRunner().invoke(
        cli, ["export", str(tiny_run), "--format", "keras", "--format", "weights", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert len(loads) == 1
    assert [r["format"] for r in reports] == ["keras", "weights"]
    weights = reports[1]
    assert weights["path"] == "exports/model.weights.h5" and (tiny_run / weights["path"]).is_file()
    assert weights["identical"] is True and weights["max_abs_diff"] == 0.0
    assert weights["size_bytes"] == (tiny_run / weights["path"]).stat().st_size
    merged = json.loads((tiny_run / "exports" / "report.json").read_text())
    assert {"keras", "weights"} <= set(merged)


def test_a_quantisation_for_a_format_without_one_is_refused(weights_format, tiny_run, tmp_path):
    from tfbench.cli import cli

    result = CliRunner().invoke(
        cli, ["export", str(tiny_run), "--format", "weights", "--quantize", "int8", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --quantize: int8 applies to keras, savedmodel, tflite, onnx, openvino, not to weights"
    )
    assert not (tmp_path / "out").exists()


def test_the_export_dialog_exports_every_chosen_format_in_one_call(weights_format, tiny_run, monkeypatch):
    """Ticked keras and weights, one press: one model load, both reports shown, both files written."""
    from textual.app import App
    from textual.widgets import Static

    from tfbench.export import exporter
    from tfbench.screens.run_dialogs import ExportDialog

    loads = []
    real_load = exporter.load_model
    monkeypatch.setattr(exporter, "load_model", lambda path: loads.append(path) or real_load(path))

    async def press_export() -> str:
        app = App()
        async with app.run_test(size=(100, 32)) as pilot:
            dialog = ExportDialog(tiny_run, ["keras", "weights"])
            await app.push_screen(dialog)
            await pilot.pause()
            dialog.query_one("#export").press()
            for _ in range(600):
                await pilot.pause(0.1)
                if not dialog.query_one("#export").disabled:
                    break
            return _plain(dialog.query_one("#report", Static).content)

    shown = asyncio.run(press_export())
    assert len(loads) == 1
    assert "export verification" in shown and " keras " in shown and " weights " in shown, shown
    assert "✗" not in shown and "failed" not in shown, shown
    assert (tiny_run / "exports" / "model.keras").is_file() and (tiny_run / "exports" / "model.weights.h5").is_file()


@pytest.mark.slow
def test_the_export_dialogs_export_all_shows_the_matrix_it_kept(tiny_run, monkeypatch, tmp_path):
    """`a` in the dialog: every pair the registry lists (here only keras's four), one matrix shown and
    kept in report.json, which the dialog shows again when it next opens."""
    from textual.app import App
    from textual.widgets import Static

    from tfbench.export.report import read_matrix
    from tfbench.screens.run_dialogs import ExportDialog

    monkeypatch.setattr(formats, "FORMATS", {"keras": formats.FORMATS["keras"]})

    async def press_all() -> tuple[str, str]:
        app = App()
        async with app.run_test(size=(80, 24)) as pilot:
            dialog = ExportDialog(tiny_run, ["keras"])
            await app.push_screen(dialog)
            await pilot.pause()
            await pilot.press("a")
            for _ in range(600):
                await pilot.pause(0.1)
                if not dialog.query_one("#export-all").disabled:
                    break
            shown = _plain(dialog.query_one("#report", Static).content)
            dialog.dismiss(None)
            await pilot.pause()
            again = ExportDialog(tiny_run, ["keras"])
            await app.push_screen(again)
            await pilot.pause()
            return shown, _plain(again.query_one("#report", Static).content)

    shown, reopened = asyncio.run(press_all())
    rows = read_matrix(tiny_run / "exports")
    assert [row["key"] for row in rows] == ["keras", "keras-int8", "keras-int4", "keras-float8"]
    assert "exports: format × quantisation" in shown and shown == reopened
    for row in rows:
        assert row["key"] in shown and row["ok"] is True, row
