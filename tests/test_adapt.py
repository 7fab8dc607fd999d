"""Layers that learn from data adapt on the training split, before the first epoch, at their place.

`Normalization`, `Discretization`, `TextVectorization`, `StringLookup` and `IntegerLookup` learn
their statistics or vocabulary from the run's own training split (never validation), as the
layers before them give the data; the run's `model.keras` and `train.py` carry the same state; a
layer given its statistics keeps them; a resumed run takes the state from its checkpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from no_network.sitecustomize import pythonpath

from tfbench import adaptable, data
from tfbench.data.splits import holdout_indices
from tfbench.engine import events as ev
from tfbench.engine.run import Run
from tfbench.errors import UserError
from tfbench.spec import load_experiment

SEED = 4

# keras.io's timeseries recipe: standardise the features inside the model, then a recurrent layer.
TIMESERIES = """
name = "series"
[data]
source = "npz:{path}"
validation_split = 0.25
batch_size = 32
[[model.layers]]
type = "Rescaling"
scale = {scale}
offset = {offset}
[[model.layers]]
type = "Normalization"
{normalization}
[[model.layers]]
type = "LSTM"
units = 4
[[model.layers]]
type = "Dense"
units = 1
[train]
epochs = {epochs}
optimizer = "adam"
seed = {seed}
[export]
formats = ["keras"]
"""


def series(n: int = 200, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three features on very different scales over 6 steps, and a target that depends on them."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, 6, 3)) * [1.0, 10.0, 100.0] + [5.0 + shift, -20.0, 300.0]).astype(np.float32)
    return x, (x[:, -1, 0] * 0.5).astype(np.float32)


def series_preset(tmp_path: Path, scale=1.0, offset=0.0, normalization="", epochs=1, shift=0.0) -> Path:
    x, y = series(shift=shift)
    np.savez(tmp_path / "series.npz", x=x, y=y)
    path = tmp_path / "series.toml"
    path.write_text(
        TIMESERIES.format(
            path=tmp_path / "series.npz",
            scale=scale,
            offset=offset,
            normalization=normalization,
            epochs=epochs,
            seed=SEED,
        )
    )
    return path


def training_mean_and_variance(scale: float = 1.0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the training split, as the layers before Normalization give it."""
    x, _ = series()
    train, _ = holdout_indices(len(x), 0.25, SEED)
    seen = (x[train] * scale + offset).reshape(-1, 3).astype(np.float64)
    return seen.mean(axis=0), seen.var(axis=0)


def normalization_of(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import keras

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    layer = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    return np.asarray(layer.mean).reshape(-1), np.asarray(layer.variance).reshape(-1)


def run_script(script: str, tmp_path: Path) -> Path:
    """Run a generated `train.py` for one epoch, as a user would; the model it saved."""
    (tmp_path / "train.py").write_text(script)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath()}
    out = tmp_path / "script.keras"
    result = subprocess.run(
        [sys.executable, "train.py", "--epochs", "1", "--output", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_normalization_learns_the_training_split_s_statistics_in_the_run_and_in_train_py(tmp_path, runs_dir):
    """A Normalization after a Rescaling: the mean of the training split as the Rescaling gives it."""
    from tfbench.codegen import generate_script

    exp = load_experiment(series_preset(tmp_path, scale=2.0, offset=1.0))
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    mean, variance = training_mean_and_variance(2.0, 1.0)
    for saved in (run.run_dir / "model.keras", run_script(generate_script(exp), tmp_path)):
        learnt_mean, learnt_variance = normalization_of(saved)
        np.testing.assert_allclose(learnt_mean, mean, rtol=1e-5)
        np.testing.assert_allclose(learnt_variance, variance, rtol=1e-4)
    events = ev.read_events(run.run_dir)
    line = "model.layers[1] Normalization adapted on 150 training samples"
    assert events[0]["model"]["adapted"] == [line]
    assert line in [log.message for log in ev.RunState.from_events(events).log]  # the train screen's log


@pytest.mark.slow
def test_a_layer_given_its_statistics_keeps_them(tmp_path, runs_dir):
    exp = load_experiment(series_preset(tmp_path, normalization="mean = 1.0\nvariance = 4.0"))
    assert adaptable.notes(exp.model.layers) == []
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    mean, variance = normalization_of(run.run_dir / "model.keras")
    np.testing.assert_allclose(mean, np.full(3, 1.0))
    np.testing.assert_allclose(variance, np.full(3, 4.0))
    assert "adapted" not in ev.read_events(run.run_dir)[0]["model"]


@pytest.mark.slow
def test_resume_takes_the_learnt_state_from_the_checkpoint_not_from_the_data_again(tmp_path, runs_dir):
    """The data file changes between the run and its resume: the weights were trained behind the first
    statistics, so the resumed model keeps them."""
    exp = load_experiment(series_preset(tmp_path))
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    first = normalization_of(run.run_dir / "model.keras")
    series_preset(tmp_path, shift=50.0)  # the same file, other numbers
    more = Run(exp, run_dir=run.run_dir, resume=True, epochs=2)
    assert more.train() == "completed", more.reason
    np.testing.assert_array_equal(normalization_of(run.run_dir / "model.keras")[0], first[0])
    resumed = [e for e in ev.read_events(run.run_dir) if e["event"] == "run_started"][-1]
    assert resumed["model"]["adapted"] == ["model.layers[1] Normalization: state from the run's checkpoint"]


@pytest.mark.slow
def test_discretization_and_string_lookup_adapt_and_train(tmp_path, runs_dir):
    """keras.io's structured-data recipe in one input: numbers binned by their training quantiles, and
    category names looked up in the training split's vocabulary, then embedded."""
    import keras

    rng = np.random.default_rng(1)
    names = np.array(["red", "green", "blue", "grey"])
    n = 160
    colours = names[rng.integers(0, 4, (n, 2))]
    np.savez(tmp_path / "colours.npz", x=colours, y=(colours[:, 0] == "red").astype(np.int64))
    numbers = rng.normal(size=(n, 1)).astype(np.float32) * 3 + 7
    np.savez(tmp_path / "numbers.npz", x=numbers, y=(numbers[:, 0] > 7).astype(np.int64))
    common = '[train]\nepochs = 1\noptimizer = "adam"\nseed = 2\n[export]\nformats = ["keras"]\n'
    (tmp_path / "colours.toml").write_text(
        f'name = "colours"\n[data]\nsource = "npz:{tmp_path / "colours.npz"}"\nbatch_size = 16\n'
        '[[model.layers]]\ntype = "StringLookup"\n'
        '[[model.layers]]\ntype = "Embedding"\ninput_dim = 8\noutput_dim = 2\n'
        '[[model.layers]]\ntype = "Flatten"\n'
        '[[model.layers]]\ntype = "Dense"\nunits = 1\nactivation = "sigmoid"\n' + common
    )
    (tmp_path / "numbers.toml").write_text(
        f'name = "numbers"\n[data]\nsource = "npz:{tmp_path / "numbers.npz"}"\nbatch_size = 16\n'
        '[[model.layers]]\ntype = "Discretization"\nnum_bins = 4\noutput_mode = "one_hot"\n'
        '[[model.layers]]\ntype = "Dense"\nunits = 1\nactivation = "sigmoid"\n' + common
    )
    for name in ("colours", "numbers"):
        exp = load_experiment(tmp_path / f"{name}.toml")
        run = Run(exp, runs_dir=runs_dir)
        assert run.train() == "completed", run.reason
        model = keras.saving.load_model(run.run_dir / "model.keras", compile=False, safe_mode=True)
        train, _ = holdout_indices(n, 0.2, 2)
        if name == "colours":
            vocabulary = model.get_layer("string_lookup").get_vocabulary()
            assert sorted(vocabulary[1:]) == sorted(set(colours[train].ravel())) and vocabulary[0] == "[UNK]"
        else:
            bins = model.get_layer("discretization").bin_boundaries
            quartiles = np.quantile(numbers[train], [0.25, 0.5, 0.75])
            np.testing.assert_allclose(bins, quartiles, atol=0.3)


@pytest.mark.slow
def test_a_raw_text_folder_trains_through_its_own_text_vectorization(tmp_path, runs_dir):
    """keras.io's end-to-end text model: raw strings in, the vocabulary learnt from the training texts."""
    import keras

    from tfbench.data import text
    from tfbench.data.options import parse_options

    for c, name in enumerate(["neg", "pos"]):
        (tmp_path / "texts" / name).mkdir(parents=True)
        for i in range(12):
            (tmp_path / "texts" / name / f"{i}.txt").write_text(f"{name} word{i % 5} shared common {'x' * c}")
    (tmp_path / "text.toml").write_text(f"""
name = "text"
[data]
source = "text:{tmp_path / "texts"}"
validation_split = 0.25
batch_size = 8
[data.options]
vectorize = false
max_tokens = 40
sequence_length = 6
[[model.layers]]
type = "TextVectorization"
max_tokens = 40
output_sequence_length = 6
[[model.layers]]
type = "Embedding"
input_dim = 40
output_dim = 4
[[model.layers]]
type = "GlobalAveragePooling1D"
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
[train]
epochs = 1
optimizer = "adam"
[export]
formats = ["keras"]
""")
    exp = load_experiment(tmp_path / "text.toml")
    info = data.describe(exp.data, exp.train.seed)
    assert info.input_dtype == "string" and info.input_shape == ()
    run = Run(exp, runs_dir=runs_dir)
    assert run.train() == "completed", run.reason
    model = keras.saving.load_model(run.run_dir / "model.keras", compile=False, safe_mode=True)
    learnt = model.get_layer("text_vectorization").get_vocabulary()
    options = parse_options(text.OPTIONS, {**exp.data.options, "vectorize": True})
    reference, _ = text.vectorizer(exp.data, options, exp.train.seed)  # the source's own, on the same split
    assert learnt == reference.get_vocabulary()
    assert model.predict(np.array(["pos word1 shared common x"], dtype=object), verbose=0).shape == (1, 1)


@pytest.mark.parametrize(
    ("layers", "location", "words"),
    [
        (
            '[[model.layers]]\ntype = "TimeDistributed"\nlayer = { type = "Normalization" }\n',
            "model.layers[0].layer",
            "put the Normalization before the TimeDistributed",
        ),
        (
            '[[model.layers]]\ntype = "StringLookup"\noutput_mode = "one_hot"\n',
            "model.layers[0]",
            "pad_to_max_tokens = true",
        ),
    ],
)
def test_what_cannot_adapt_at_its_place_is_refused_with_the_fix(tmp_path, layers, location, words):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\n[data]\nsource = "builtin:sine"\n{layers}')
    with pytest.raises(UserError) as caught:
        load_experiment(path)
    assert caught.value.location.endswith(location) and words in caught.value.hint


def test_validate_notes_the_layers_that_will_adapt(tmp_path):
    import json

    from click.testing import CliRunner

    from tfbench.cli import cli

    result = CliRunner().invoke(cli, ["validate", str(series_preset(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert any(re.match(r"model\.layers\[1\] Normalization adapts on the training split", n) for n in notes)
