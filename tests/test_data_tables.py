"""Tables as practitioners have them: pyarrow reading, column kinds, overrides, in-model preprocessing.

Real files (tests/fixtures/tables, see its README for source and licence) and small generated ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from no_network.sitecustomize import pythonpath

from tfbench import data
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict

TABLES = Path(__file__).parent / "fixtures" / "tables"
PENGUINS = TABLES / "penguins.csv"
SEATTLE = TABLES / "seattle-weather.csv"
MIXED = """id,when,colour,comment,size,code,label
1,2024-01-05,red,"a note, with a comma",1.5,7,2019
2,2024-02-11,blue,"another ""quoted"" note",NA,3,2020
3,2024-03-17,red,fine,2.5,7,2019
4,,green,null,3.0,3,2021
"""


def experiment(source: str, options: dict | None = None, units: int = 3, **data_args):
    return experiment_from_dict(
        {
            "name": "table",
            "data": {"source": source, "options": options or {}, **data_args},
            "model": {
                "layers": [
                    {"type": "Dense", "units": 16, "activation": "relu"},
                    {"type": "Dense", "units": units, "activation": "softmax"},
                ]
            },
            "train": {"epochs": 1, "seed": 3},
        }
    )


def mixed_csv(tmp_path: Path, rows: int = 1) -> Path:
    body = MIXED.splitlines()
    lines = [body[0]]
    for copy in range(rows):
        for line in body[1:]:
            cells = line.split(",", 1)
            lines.append(f"{int(cells[0]) + 4 * copy},{cells[1].replace('fine', f'fine {copy}')}")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def columns_of(info) -> dict[str, dict]:
    return {c["name"]: c for c in info.extra["table"]["columns"]}


def test_penguins_as_shipped_reads_missing_cells_as_missing():
    info = data.describe(experiment(f"csv:{PENGUINS}", {"label": "species"}).data)
    assert info.class_names == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(info.sizes.values()) == 344  # every labelled row is kept; NA cells are imputed
    columns = columns_of(info)
    assert columns["island"]["kind"] == "categorical" and columns["island"]["vocabulary"]
    assert columns["bill_length_mm"]["kind"] == "numeric" and columns["bill_length_mm"]["indicator"]
    assert columns["sex"]["missing"] > 0
    # 3 islands + OOV, 4 numbers each with an indicator, sex (2 values + missing) + OOV, year
    assert info.input_shape == (4 + 4 * 2 + 4 + 1,)


def test_seattle_weather_date_becomes_a_few_features_with_a_note():
    info = data.describe(experiment(f"csv:{SEATTLE}", units=5).data)
    assert info.input_shape[0] <= 40
    assert columns_of(info)["date"]["kind"] == "date"
    assert any("'date'" in note for note in info.extra["notes"])


def test_kinds_are_inferred_from_the_values(tmp_path):
    path = mixed_csv(tmp_path, rows=6)  # 24 rows: enough for an identifier to count as one
    info = data.describe(experiment(f"csv:{path}", {"max_one_hot": 3}).data)
    columns = columns_of(info)
    assert "id" not in columns and any("'id'" in n and "identifier" in n for n in info.extra["notes"])
    assert columns["when"]["kind"] == "date" and columns["when"]["indicator"]
    assert columns["colour"]["kind"] == "categorical"
    assert columns["comment"]["kind"] == "text"  # more values than max_one_hot: hashed
    assert columns["size"]["kind"] == "numeric" and columns["size"]["missing"] > 0
    # whole-number labels that are not 0..K-1 (years) are looked up, not one-hot up to 2021
    assert info.class_names == ["2019", "2020", "2021"] and info.num_classes == 3


def test_overrides_change_or_drop_a_column(tmp_path):
    path = mixed_csv(tmp_path, rows=6)
    info = data.describe(
        experiment(f"csv:{path}", {"columns": {"when": "drop", "code": "categorical", "id": "numeric"}}).data
    )
    columns = columns_of(info)
    assert "when" not in columns and any("'when'" in n for n in info.extra["notes"])
    assert columns["code"]["kind"] == "categorical" and columns["code"]["dtype"] == "int64"
    assert columns["id"]["kind"] == "numeric"


@pytest.mark.parametrize(
    "columns, location, words",
    [
        ({"colur": "categorical"}, "data.options.columns.colur", "no column 'colur'"),
        ({"colour": "categorial"}, "data.options.columns.colour", "unknown column kind"),
        ({"colour": "numeric"}, "data.options.columns.colour", "not a number (row 2: 'red')"),
        ({"size": "date"}, "data.options.columns.size", "not dates"),
        ({"label": "drop"}, "data.options.columns.label", "is the label"),
    ],
)
def test_every_bad_override_is_one_located_line(tmp_path, columns, location, words):
    path = mixed_csv(tmp_path)
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"columns": columns}).data)
    assert caught.value.location == location
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_parquet_file_and_folder_of_parts(tmp_path):
    import pyarrow.parquet as pq
    from pyarrow import csv

    table = csv.read_csv(PENGUINS, convert_options=csv.ConvertOptions(null_values=["NA"]))
    pq.write_table(table, tmp_path / "penguins.parquet")
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(table.slice(0, 200), parts / "part-0.parquet")
    pq.write_table(table.slice(200), parts / "part-1.parquet")
    whole = data.describe(experiment(f"parquet:{tmp_path / 'penguins.parquet'}", {"label": "species"}).data)
    folder = data.describe(experiment(f"parquet:{parts}", {"label": "species"}).data)
    assert whole.input_shape == folder.input_shape == (17,)
    assert sum(folder.sizes.values()) == 344


def test_statistics_come_from_the_training_split_only(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i * 1.5},{i % 2}\n" for i in range(100)))
    exp = experiment(f"csv:{path}", units=2)
    info = data.describe(exp.data, seed=exp.train.seed)
    splits = data.registry.source_module("csv").load(
        exp.data,
        data.options.parse_options(data.registry.source_module("csv").OPTIONS, exp.data.options),
        exp.train.seed,
    )
    mean = columns_of(info)["x"]["mean"]
    assert mean == pytest.approx(float(np.mean(splits.train.x["x"])))
    assert mean != pytest.approx(float(np.mean(np.concatenate([splits.train.x["x"], splits.validation.x["x"]]))))


@pytest.mark.slow
def test_penguins_train_and_the_saved_model_scores_a_raw_row_like_keras(tmp_path):
    import keras
    import tensorflow as tf

    from tfbench import build

    exp = experiment_from_dict(
        {
            "name": "penguins",
            "data": {"source": f"csv:{PENGUINS}", "options": {"label": "species"}, "batch_size": 32},
            "model": {
                "layers": [
                    {"type": "Dense", "units": 32, "activation": "relu"},
                    {"type": "Dense", "units": 3, "activation": "softmax"},
                ]
            },
            "train": {"epochs": 25, "seed": 42, "optimizer": {"type": "Adam", "learning_rate": 0.01}},
        }
    )
    build.apply_seed(exp.train)
    bundle = data.load(exp.data, exp.train.seed)
    assert bundle.info.sizes["train"] + bundle.info.sizes["validation"] >= 333
    model = build.build_model(exp, bundle.info)
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=25, verbose=0)
    assert max(history.history["val_accuracy"]) >= 0.95
    row = {
        "island": [["Dream"]],
        "bill_length_mm": [[np.nan]],
        "bill_depth_mm": [[17.9]],
        "flipper_length_mm": [[195.0]],
        "body_mass_g": [[np.nan]],
        "sex": [[""]],
        "year": [[2008.0]],
    }
    tensors = {k: tf.constant(v, dtype=tf.string if isinstance(v[0][0], str) else tf.float32) for k, v in row.items()}
    expected = np.asarray(model(tensors, training=False))
    model.export(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"](**tensors)
    assert np.allclose(next(iter(served.values())).numpy(), expected, atol=1e-6)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert np.allclose(np.asarray(reloaded(tensors, training=False)), expected, atol=1e-6)
    assert np.all(np.isfinite(expected))


@pytest.mark.slow
def test_tfbench_code_writes_the_same_feature_space_and_the_saved_model_takes_raw_columns(tmp_path):
    import os
    import subprocess
    import sys

    from tfbench.build import summarize
    from tfbench.codegen import generate_script
    from tfbench.spec import load_experiment

    exp = load_experiment("penguins", [f"data.source=csv:{PENGUINS}", "train.epochs=2"])
    script = generate_script(exp)
    assert "keras.utils.FeatureSpace" in script and "tfbench" not in "".join(
        line for line in script.splitlines() if "import" in line
    )
    (tmp_path / "train.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "train.py", "--output", "out.keras"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath()},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = data.describe(exp.data, seed=exp.train.seed)
    assert f"params: {summarize(exp, info).total_params}" in result.stdout
    import keras
    import tensorflow as tf

    saved = keras.models.load_model(tmp_path / "out.keras")
    row = {
        "island": tf.constant([["Biscoe"]]),
        "sex": tf.constant([["female"]]),
        **{
            name: tf.constant([[np.nan]])
            for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year")
        },
    }
    assert np.asarray(saved(row)).shape == (1, 3)


def test_class_weight_balanced_or_a_table_is_resolved_recorded_and_written_out(tmp_path):
    from tfbench.codegen import generate_script
    from tfbench.data import class_weights

    path = tmp_path / "imbalanced.csv"
    path.write_text("x,y\n" + "".join(f"{i * 0.25},{'rare' if i % 5 == 0 else 'common'}\n" for i in range(100)))
    exp = experiment(f"csv:{path}", units=2, validation_split=None)
    bundle = data.load(exp.data, exp.train.seed)
    exp.train.class_weight = "balanced"
    fit = class_weights.fit_arguments(exp.train, bundle)
    assert fit["class_weight"] == {0: pytest.approx(100 / (2 * 80)), 1: pytest.approx(100 / (2 * 20))}
    assert bundle.info.extra["class_weight"]["rare"] == pytest.approx(2.5)
    exp.train.class_weight = {"rare": 4.0}
    assert class_weights.fit_arguments(exp.train, bundle)["class_weight"] == {0: 1.0, 1: 4.0}
    assert "CLASS_WEIGHT = {0: 1.0, 1: 4.0}" in generate_script(exp) and "class_weight=class_weight" in generate_script(
        exp
    )
    exp.train.class_weight = {"rar": 4.0}
    with pytest.raises(UserError) as caught:
        class_weights.fit_arguments(exp.train, bundle)
    assert caught.value.location == "train.class_weight.rar" and "rare" in caught.value.hint


@pytest.mark.slow
def test_a_run_records_balanced_class_weights(tmp_path):
    import json

    from tiny_runs import tfbench_here

    path = tmp_path / "imbalanced.csv"
    path.write_text("x,y\n" + "".join(f"{i * 0.25},{'rare' if i % 5 == 0 else 'common'}\n" for i in range(60)))
    result = tfbench_here(
        *["run", "penguins", "--set", f"data.source=csv:{path}", "--set", "data.options.label=y"],
        *["--set", "model.layers[1].units=2", "--set", "train.epochs=1", "--set", "train.class_weight=balanced"],
        *["--set", "export.formats=[]", "--runs-dir", tmp_path / "runs", "--quiet"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event"] == "run_started")
    weights = started["data"]["extra"]["class_weight"]
    counts = {name: 48 / (2 * w) for name, w in weights.items()}  # 48 training rows, n / (k * n_c)
    assert weights["rare"] > weights["common"] and sum(counts.values()) == pytest.approx(48)
    assert all(c == pytest.approx(round(c), abs=1e-4) for c in counts.values())
    assert 'class_weight = "balanced"' in (run / "experiment.toml").read_text()


@pytest.mark.slow
def test_a_streamed_table_reads_in_batches_with_the_same_plan(tmp_path):
    from tfbench import build

    whole = experiment(f"csv:{PENGUINS}", {"label": "species"})
    streamed = experiment(f"csv:{PENGUINS}", {"label": "species", "stream": True}, batch_size=32)
    info, stream_info = data.describe(whole.data), data.describe(streamed.data, seed=streamed.train.seed)
    assert stream_info.input_shape == info.input_shape and stream_info.class_names == info.class_names
    assert sum(stream_info.sizes.values()) == 344 and 0 < stream_info.sizes["validation"] < 120
    assert any("streamed" in note for note in stream_info.extra["notes"])
    bundle = data.load(streamed.data, streamed.train.seed)
    batches = list(bundle.train)
    assert sum(len(y) for _, y in batches) == stream_info.sizes["train"]
    assert max(len(y) for _, y in batches) == 32 and set(batches[0][0]) == set(stream_info.extra["feature_names"])
    model = build.build_model(streamed, bundle.info)
    model.fit(bundle.train, validation_data=bundle.validation, epochs=1, verbose=0)
    with pytest.raises(UserError) as caught:
        data.describe(
            experiment(f"csv:{PENGUINS}", {"label": "species", "stream": True, "test_path": str(PENGUINS)}).data
        )
    assert caught.value.location == "data.options.stream"
