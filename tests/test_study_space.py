"""The `[tune]` space is checked before any trial: every mistake is one located line (exit 2 on the CLI)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tfbench.cli import cli
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict, load_experiment
from tfbench.study.space import parse_tune, trial_experiment


def with_space(space: dict, **tune) -> object:
    data = load_experiment("digits-mlp").to_dict()
    data["tune"] = {"objective": "val_accuracy", **tune, "space": space}
    return experiment_from_dict(data)


def test_the_shipped_space_parses_with_its_kinds_and_direction():
    settings = parse_tune(load_experiment("digits-mlp"))
    kinds = {p.path: p.kind for p in settings.params}
    assert kinds == {
        "train.optimizer.learning_rate": "float",
        "model.layers[2].units": "int",
        "model.layers[3].rate": "float",
    }
    assert settings.direction == "maximize" and settings.trials == 20
    assert settings.short_names()["train.optimizer.learning_rate"] == "lr"
    assert (
        parse_tune(
            with_space({"train.optimizer.learning_rate": {"float": [1e-4, 1e-2]}}, objective="val_loss")
        ).direction
        == "minimize"
    )


@pytest.mark.parametrize(
    "space, where, words",
    [
        (
            {"model.layers[2].units": {"float": [8.0, 64.0]}},
            'tune.space."model.layers[2].units"',
            "float range on a whole-number",
        ),
        (
            {"train.optimizer.type": {"choice": ["Adam", "Adamm"]}},
            'tune.space."train.optimizer.type"',
            "unknown optimizer 'Adamm'",
        ),
        (
            {"train.optimizer.learning_rate": {"float": [0.0, 0.1], "log": True}},
            'tune.space."train.optimizer.learning_rate"',
            "lower bound above 0",
        ),
        ({"model.layers[9].units": {"int": [8, 64]}}, 'tune.space."model.layers[9].units"', "no such setting"),
        ({"model.layers[2].unitz": {"int": [8, 64]}}, 'tune.space."model.layers[2].unitz"', "did you mean 'units'"),
        ({"model.layers[2].units": {"int": [64, 8]}}, 'tune.space."model.layers[2].units"', "must be below"),
        (
            {"model.layers[2].units": {"int": [8, 64], "choice": [1]}},
            'tune.space."model.layers[2].units"',
            "exactly one of",
        ),
        (
            {"model.layers[2].activation": {"choice": ["relu", "rellu"]}},
            'tune.space."model.layers[2].activation"',
            "'rellu' does not fit",
        ),
        ({"data.batch_size": {"choice": [32, 0]}}, 'tune.space."data.batch_size"', "0 does not fit"),
        ({"model.layers[3].rate": {"int": [0, 1]}}, 'tune.space."model.layers[3].rate"', "int range on a decimal"),
    ],
)
def test_a_bad_space_entry_is_one_located_error(space, where, words):
    with pytest.raises(UserError) as err:
        parse_tune(with_space(space))
    assert err.value.location == where
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_tune_keys_and_settings_are_located():
    for tune, where in [
        ({"sampler": "bayes"}, "tune.sampler"),
        ({"pruner": "asha"}, "tune.pruner"),
        ({"trials": 0}, "tune.trials"),
        ({"direction": "up"}, "tune.direction"),
    ]:
        with pytest.raises(UserError) as err:
            parse_tune(with_space({"model.layers[2].units": {"int": [8, 64]}}, **tune))
        assert err.value.location == where
    with pytest.raises(UserError, match="grid sampler"):
        parse_tune(with_space({"train.optimizer.learning_rate": {"float": [1e-4, 1e-2]}}, sampler="grid"))
    with pytest.raises(UserError, match="no .tune. section"):
        parse_tune(load_experiment("spiral-mlp"))


def test_a_trial_runs_the_preset_with_its_values_and_without_exports():
    exp = load_experiment("digits-mlp")
    trial = trial_experiment(exp, {"train.optimizer.learning_rate": 3e-3, "model.layers[2].units": 48}, for_trial=True)
    assert trial.train.optimizer.args["learning_rate"] == 3e-3 and trial.model.layers[2].args["units"] == 48
    assert trial.tune is None and trial.export.formats == []
    assert trial_experiment(exp, {}).export.formats == exp.export.formats


def test_tune_exits_2_with_the_location_before_making_a_study(tmp_path):
    preset = tmp_path / "bad.toml"
    text = load_experiment("digits-mlp").to_toml().replace('"model.layers[2].units"', '"model.layers[7].units"')
    preset.write_text(text)
    result = CliRunner().invoke(cli, ["tune", str(preset), "--study-dir", str(tmp_path / "study")])
    assert result.exit_code == 2
    assert 'bad.toml: tune.space."model.layers[7].units": ' in result.output
    assert not (tmp_path / "study").exists()
    no_tune = CliRunner().invoke(cli, ["tune", "spiral-mlp", "--study-dir", str(tmp_path / "s2")])
    assert no_tune.exit_code == 2 and "no [tune] section" in no_tune.output


def test_tune_help_teaches_the_space_and_the_study_directory():
    result = CliRunner().invoke(cli, ["tune", "--help"])
    assert result.exit_code == 0
    for words in ("[tune.space]", "log = true", "--resume", "--storage", "best.toml", "tfbench tune digits-mlp"):
        assert words in result.output


def test_study_modules_import_without_tensorflow_and_the_screen_without_optuna():
    import json
    import subprocess
    import sys

    code = (
        "import importlib, json, sys; [importlib.import_module(m) for m in sys.argv[1:]]; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    for modules, banned in [
        (
            [f"tfbench.study.{m}" for m in ("space", "study", "workers", "storage", "journal", "owners", "grid")],
            ("tensorflow", "keras", "textual"),
        ),
        (["tfbench.screens.study"], ("tensorflow", "keras", "optuna")),
    ]:
        done = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
        assert not {m for m in loaded if m.split(".")[0] in banned}, modules
