"""Snapshot pictures of the workbench's screens and dialogs, drawn from fixed data.

A `FixedEngineCalls` stands in for Keras and the data sources, the Experiment is written here (not
read from a shipped preset that may change), the cursor does not blink and nothing shows a clock,
so each picture depends only on the code that draws it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_pilot import tables_measured, wait_finite

from tfbench.app import make_app
from tfbench.data.info import DataInfo
from tfbench.engine_calls import FixedEngineCalls
from tfbench.spec import experiment_from_dict

EXPERIMENT = {
    "name": "snap-cnn",
    "description": "A small convnet on 8x8 digits, for pictures.",
    "data": {"source": "builtin:digits", "validation_split": 0.2, "batch_size": 64},
    "model": {
        "layers": [
            {"type": "Rescaling", "scale": 0.0625},
            {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dropout", "rate": 0.2},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ]
    },
    "train": {
        "epochs": 12,
        "optimizer": {"type": "Adam", "learning_rate": 0.001},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "seed": 42,
        "callbacks": [{"type": "EarlyStopping", "monitor": "val_loss", "patience": 3}],
    },
    "export": {"formats": ["keras", "tflite"], "tflite_quantization": "dynamic"},
}

INFO = DataInfo(
    source="builtin:digits",
    input_shape=(8, 8, 1),
    label_kind="categorical",
    num_classes=10,
    class_names=[str(i) for i in range(10)],
    sizes={"train": 1438, "validation": 359},
    description="1,797 real 8x8 handwritten digits, pixel values 0-16.",
    extra={"download_size": 0, "prepared": True},
)


def _sample(k: int) -> list:
    """An 8×8×1 picture that differs per k: a ring with a bar through it."""
    return [
        [[float(16 if (abs(x - 3.5) + abs(y - 3.5) in (2.0, 3.0)) or x == k % 8 else 0)] for x in range(8)]
        for y in range(8)
    ]


PREVIEW = {
    "samples": [{"x": _sample(k), "y": k, "label": str(k)} for k in range(6)],
    "label_counts": {str(k): 130 + (k * 7) % 25 for k in range(10)},
}
LISTING = [
    {"name": "digits", "kind": "builtin", "shape": [8, 8, 1], "classes": 10, "sizes": {}, "description": ""},
    {"name": "spiral", "kind": "builtin", "shape": [2], "classes": 2, "sizes": {}, "description": ""},
    {"name": "mnist", "kind": "keras", "shape": [28, 28, 1], "classes": 10, "sizes": {}, "description": ""},
    {"name": "cifar10", "kind": "keras", "shape": [32, 32, 3], "classes": 10, "sizes": {}, "description": ""},
    {"name": "tfds:beans", "kind": "tfds", "shape": [500, 500, 3], "classes": 3, "sizes": {}, "description": ""},
]


def fixed_app(failing: tuple[str, ...] = ()):
    """The workbench on the fixed Experiment and data, with a steady cursor."""
    engine_calls = FixedEngineCalls(info=INFO, preview_data=PREVIEW, listing=LISTING, failing=failing)
    app = make_app(
        experiment=experiment_from_dict(EXPERIMENT), runs_dir=Path("runs-not-used"), engine_calls=engine_calls
    )
    app.blink = False
    return app


def steps(*keys: str, then=None):
    """A run_before that lets workers finish, presses keys, runs `then`, and settles again."""

    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(2):
            await pilot.pause()
            await wait_finite(app)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            await wait_finite(app)
        if then is not None:
            await then(pilot)
        for _ in range(2):
            await pilot.pause()
            await wait_finite(app)
        await tables_measured(app)
        await pilot.pause()

    return run_before


@pytest.fixture(autouse=True)
def fixed_presets(monkeypatch):
    """The open dialog lists these instead of the shipped presets, which change over time."""
    monkeypatch.setattr("tfbench.spec.shipped_presets", lambda: ["digits-cnn", "digits-mlp", "spiral-mlp"])


def test_builder(snap_compare):
    """The model builder: layer table with shapes and params, the selected layer's form."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps())


def test_builder_80x24(snap_compare):
    """The model builder fits a classic 80×24 terminal."""
    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=steps())


def test_builder_impossible_stack(snap_compare):
    """An impossible stack: the error sits on the Conv2D row and in the totals line."""
    assert snap_compare(fixed_app(failing=("Conv2D",)), terminal_size=(100, 32), run_before=steps())


@pytest.mark.slow
def test_builder_invalid_value(snap_compare):
    """A value that is not a number: shown under its field, the Experiment unchanged."""

    async def type_bad_units(pilot) -> None:
        form = pilot.app.screen.form
        field = form.query_one("#field-units")
        field.focus()
        field.value = ""
        await pilot.press(*"12x")

    assert snap_compare(
        fixed_app(), terminal_size=(100, 32), run_before=steps("down", "down", "down", "down", then=type_bad_units)
    )


@pytest.mark.slow
def test_layer_picker(snap_compare):
    """The searchable layer picker, filtered by what was typed."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("a", "c", "o", "n", "v"))


def test_import_layers_dialog(snap_compare):
    """The prompt for a .keras model whose layers replace the stack."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("I"))


@pytest.mark.slow
def test_dataset_screen(snap_compare):
    """The dataset picker: grouped sources, info, half-block samples, class balance."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("f2"))


@pytest.mark.slow
def test_setup_screen(snap_compare):
    """Training setup: optimizer and its form, loss, metrics, callbacks, run switches, export."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("f3"))


def test_save_preset_dialog(snap_compare):
    """Save preset asks for a path, suggesting one named after the Experiment."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("ctrl+s"))


def test_open_preset_dialog(snap_compare):
    """Open preset offers the shipped presets and a path."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("ctrl+o"))


@pytest.mark.slow
def test_file_browser_dialog(snap_compare, tmp_path, monkeypatch):
    """The file browser for data files and folders, over a fixed folder."""
    for name in ("images/cats", "images/dogs"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "points.csv").write_text("x,y\n")
    (tmp_path / "arrays.npz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("f2", "b", "down"))


@pytest.mark.slow
def test_quit_confirm_dialog(snap_compare):
    """Quitting with unsaved edits asks first."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=steps("d", "ctrl+q"))
