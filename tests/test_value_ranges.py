"""Numbers outside what Keras documents for an argument are refused, located, in presets, forms and `set`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from app_pilot import pilot_test, settle
from no_network.sitecustomize import pythonpath
from textual.widgets import Input, Static

from tfbench import catalog
from tfbench.catalog import generate
from tfbench.errors import UserError
from tfbench.spec import load_experiment

REPO = Path(__file__).resolve().parent.parent
BASE = """
name = "ranges"
[data]
source = "builtin:spiral"
[[model.layers]]
type = "Dense"
units = 4
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
"""


def _preset(tmp_path: Path, body: str, layers: str = "") -> Path:
    path = tmp_path / "held-out.toml"
    path.write_text(
        BASE.replace(
            '[[model.layers]]\ntype = "Dense"\nunits = 4', layers or '[[model.layers]]\ntype = "Dense"\nunits = 4', 1
        )
        + body
    )
    return path


# One preset a case, as a user would write it; each names the argument and the range it breaks.
CASES = [
    (
        '[train]\noptimizer = { type = "Adam", learning_rate = -0.1 }',
        "",
        "train.optimizer.learning_rate",
        "must be > 0 (got -0.1)",
    ),
    ('[train]\noptimizer = { type = "SGD", momentum = -0.5 }', "", "train.optimizer.momentum", "must be >= 0"),
    ('[train]\noptimizer = { type = "RMSprop", rho = 1.0 }', "", "train.optimizer.rho", "must be in [0, 1)"),
    ('[train]\noptimizer = { type = "AdamW", weight_decay = -1e-4 }', "", "train.optimizer.weight_decay", ">= 0"),
    ('[train]\noptimizer = { type = "Adam", clipnorm = 0 }', "", "train.optimizer.clipnorm", "must be > 0 (got 0)"),
    (
        '[train]\noptimizer = { type = "Adam", learning_rate = inf }',
        "",
        "train.optimizer.learning_rate",
        "must be a finite number > 0 (got inf)",
    ),
    (
        '[train]\noptimizer = { type = "Adam", learning_rate = nan }',
        "",
        "train.optimizer.learning_rate",
        "must be a finite number > 0 (got nan)",
    ),
    (
        '[train]\nschedule = { type = "ExponentialDecay", initial_learning_rate = 0.1, decay_steps = 0, '
        "decay_rate = 0.9 }",
        "",
        "train.schedule.decay_steps",
        "must be > 0 (got 0)",
    ),
    (
        '[train]\nschedule = { type = "CosineDecay", initial_learning_rate = 0.1, decay_steps = 10, alpha = 1.5 }',
        "",
        "train.schedule.alpha",
        "must be in [0, 1] (got 1.5)",
    ),
    (
        '[train]\nschedule = { type = "PolynomialDecay", initial_learning_rate = -1.0, decay_steps = 10 }',
        "",
        "train.schedule.initial_learning_rate",
        "must be > 0",
    ),
    (
        '[train]\ncallbacks = [{ type = "EarlyStopping", patience = -1 }]',
        "",
        "train.callbacks[0].patience",
        "must be >= 0 (got -1)",
    ),
    (
        '[train]\ncallbacks = [{ type = "ReduceLROnPlateau", factor = 1.5 }]',
        "",
        "train.callbacks[0].factor",
        "must be in (0, 1) (got 1.5)",
    ),
    (
        '[train]\ncallbacks = [{ type = "ModelCheckpoint", save_freq = 0 }]',
        "",
        "train.callbacks[0].save_freq",
        "must be > 0 (got 0)",
    ),
    (
        '[train]\ncallbacks = [{ type = "TensorBoard", histogram_freq = -2 }]',
        "",
        "train.callbacks[0].histogram_freq",
        "must be >= 0",
    ),
    ("", '[[model.layers]]\ntype = "Dense"\nunits = 0', "model.layers[0].units", "must be > 0 (got 0)"),
    ("", '[[model.layers]]\ntype = "Dropout"\nrate = 1.0', "model.layers[0].rate", "must be in [0, 1) (got 1.0)"),
    ("", '[[model.layers]]\ntype = "Dropout"\nrate = -0.2', "model.layers[0].rate", "must be in [0, 1)"),
    (
        "",
        '[[model.layers]]\ntype = "Reshape"\ntarget_shape = [2, 1]\n[[model.layers]]\ntype = "Conv1D"\n'
        "filters = -4\nkernel_size = 1",
        "model.layers[1].filters",
        "must be > 0 (got -4)",
    ),
    (
        "",
        '[[model.layers]]\ntype = "Reshape"\ntarget_shape = [2, 1]\n[[model.layers]]\ntype = "LSTM"\n'
        "units = 3\nrecurrent_dropout = 1.2",
        "model.layers[1].recurrent_dropout",
        "must be in [0, 1)",
    ),
    (
        "",
        '[[model.layers]]\ntype = "Reshape"\ntarget_shape = [1, 2, 1]\n[[model.layers]]\ntype = "MaxPooling2D"\n'
        "pool_size = [1, 0]",
        "model.layers[1].pool_size",
        "every number must be > 0 (got [1, 0])",
    ),
    ("", '[[model.layers]]\ntype = "LeakyReLU"\nnegative_slope = -1.0', "model.layers[0].negative_slope", ">= 0"),
    (
        '[train]\nloss = { type = "BinaryCrossentropy", label_smoothing = 1.5 }',
        "",
        "train.loss.label_smoothing",
        "must be in [0, 1] (got 1.5)",
    ),
    (
        '[train]\nmetrics = [{ type = "AUC", num_thresholds = 1 }]',
        "",
        "train.metrics[0].num_thresholds",
        "must be > 1 (got 1)",
    ),
]


@pytest.mark.parametrize("body, layers, location, words", CASES, ids=[c[2] for c in CASES])
def test_a_value_outside_its_documented_range_is_refused_where_it_is(tmp_path, body, layers, location, words):
    path = _preset(tmp_path, body, layers)
    with pytest.raises(UserError) as info:
        load_experiment(path)
    assert info.value.location == f"{path}: {location}"
    assert words in info.value.message


@pytest.mark.parametrize(
    "body, layers",
    [
        ('[train]\noptimizer = { type = "Adam", learning_rate = 1e-9 }', ""),
        (
            '[train]\ncallbacks = [{ type = "EarlyStopping", patience = 0 }, '
            '{ type = "ReduceLROnPlateau", factor = 0.5, '
            "min_lr = 0 }]",
            "",
        ),
        ("", '[[model.layers]]\ntype = "Dropout"\nrate = 0.0'),
        ('[train]\nloss = { type = "BinaryCrossentropy", label_smoothing = 1.0 }', ""),
        ('[train]\ncallbacks = [{ type = "ModelCheckpoint", save_freq = "epoch" }]', ""),
    ],
)
def test_the_edges_keras_allows_are_accepted(tmp_path, body, layers):
    load_experiment(_preset(tmp_path, body, layers))


def test_every_default_and_shipped_preset_is_within_its_range():
    """Keras' own defaults fit the ranges read from its documentation (or the range was misread)."""
    from tfbench.spec import shipped_presets

    for kind in catalog.KINDS:
        for entry in catalog.entries(kind):
            for param in entry.params.values():
                if param.default is not None and param.bounds:
                    catalog.check_bounds(param, param.default, f"{entry.name}.{param.name}")
    for name in shipped_presets():
        load_experiment(name)


@pytest.mark.parametrize(
    "doc, expected",
    [
        ("Positive integer, dimensionality of the output space.", {"gt": 0}),
        ("Float between 0 and 1. Fraction of the input units to drop.", {"ge": 0, "le": 1}),
        ("Float in range `(0, 1)`. It is the noise parameter.", {"gt": 0, "lt": 1}),
        ("Float >= 0. Maximum activation value.", {"ge": 0}),
        ("(Optional) The number of thresholds. Values must be > 1.", {"gt": 1}),
        ("A Python integer. Must be positive. See the decay computation above.", {"gt": 0}),
        ("Represented as (low, high). This is typically either `(0, 1)` or `(0, 255)`.", None),
        ("When represented as a single positive float, this value is used for both bounds.", None),
    ],
)
def test_ranges_are_read_from_what_the_docstrings_say(doc, expected):
    assert generate._bounds("layers", "SomeLayer", "some_arg", doc, None) == expected


def test_the_catalog_holds_the_documented_ranges():
    """The cached catalog carries the ranges, so validation needs no Keras import."""
    assert catalog.get("layers", "Dense").params["units"].bounds == (("gt", 0),)
    assert catalog.get("optimizers", "Adam").params["learning_rate"].bounds == (("gt", 0),)
    assert dict(catalog.get("layers", "Dropout").params["rate"].bounds) == {"ge": 0, "lt": 1}
    assert catalog.describe_bounds(catalog.get("layers", "Dropout").params["rate"]) == "in [0, 1)"


def test_validate_on_the_command_line_is_one_located_line(tmp_path):
    path = _preset(tmp_path, '[train]\noptimizer = { type = "Adam", learning_rate = -0.1 }')
    result = subprocess.run(
        [sys.executable, "-m", "tfbench", "validate", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": pythonpath(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {path}: train.optimizer.learning_rate: must be > 0 (got -0.1)"


def test_set_refuses_a_learning_rate_outside_the_optimizers_range(tmp_path):
    """`tfbench set RUN learning_rate=-0.1` is refused with the range, before any runner is asked."""
    from click.testing import CliRunner

    from tfbench.cli import cli

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "experiment.toml").write_text(load_experiment(_preset(tmp_path, "")).to_toml())
    result = CliRunner().invoke(cli, ["set", str(run_dir), "learning_rate=-0.1", "--timeout", "1"])
    assert result.exit_code == 2
    assert "error: learning_rate: must be > 0 (got -0.1)" in result.output


@pytest.mark.slow
@pilot_test
async def test_the_optimizer_form_shows_the_range_under_the_field(runs_dir: Path):
    from tiny_runs import spiral_info

    from tfbench.app import make_app
    from tfbench.engine_calls import FixedEngineCalls

    app = make_app("spiral-mlp", runs_dir=runs_dir, engine_calls=FixedEngineCalls(info=spiral_info()))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        form = app.screen.forms["optimizer"]
        before = app.experiment.train.optimizer.args.get("learning_rate")
        form.query_one("#field-learning_rate", Input).value = "-0.1"
        await settle(app, pilot)
        shown = str(form.query_one("#error-learning_rate", Static).render())
        assert "must be > 0 (got -0.1)" in shown
        assert not form.valid
        assert app.experiment.train.optimizer.args.get("learning_rate") == before
        form.query_one("#field-learning_rate", Input).value = "0.01"
        await settle(app, pilot)
        assert form.valid and app.experiment.train.optimizer.args["learning_rate"] == 0.01
