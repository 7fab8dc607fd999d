"""Tables as real files have them: any column names, every Arrow type, wide tables, one-class labels.

Real Keras on tiny generated tables; `tfbench run` and a generated `train.py` in child processes.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import runner_env, tfbench_process
from tiny_runs import tfbench_here as tfbench

from tfbench import data
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict

# Names a CSV header can hold and Keras / TensorFlow names cannot: spaces, brackets, quotes, a comma,
# a tab, accents, another script, "/", a leading digit, and two names that fold to the same text.
ODD_NAMES = [
    "home island",
    "bill length (mm)",
    'say "hi"',
    "a,b",
    "tab\there",
    "Température",
    "年",
    "flipper/length",
    "1st",
    "bill_length_mm",
    "bill-length-mm",
]


def experiment(source: str, options: dict | None = None, units: int = 2, **data_args):
    return experiment_from_dict(
        {
            "name": "table",
            "data": {"source": source, "options": options or {}, **data_args},
            "model": {"layers": [{"type": "Dense", "units": units, "activation": "softmax"}]},
            "train": {"epochs": 1, "seed": 3},
        }
    )


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def odd_names_csv(path: Path, rows: int = 60) -> Path:
    rng = np.random.default_rng(0)
    lines = [",".join(quoted(n) for n in [*ODD_NAMES, "label"])]
    for i in range(rows):
        cells = []
        for j, name in enumerate(ODD_NAMES):
            if name in ("home island", "Température"):
                cells.append(quoted(["Biscoe", "Dream", "Été"][i % 3]))
            elif name == "年":
                cells.append("" if i % 7 == 0 else str(2007 + i % 3))
            else:
                cells.append(f"{rng.normal() + j:.3f}")
        cells.append(["no", "yes"][i % 2])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_serving_names_are_identifiers_unique_and_independent_of_order():
    from tfbench.data.column_names import serving_names

    names = serving_names(ODD_NAMES)
    assert names["bill_length_mm"] == "bill_length_mm"  # an identifier already keeps its name
    assert names["Température"] == "Temperature" and names["bill length (mm)"] != "bill_length_mm"
    assert len(set(names.values())) == len(ODD_NAMES)
    assert all(v.isidentifier() and v.isascii() and v[0].isalpha() for v in names.values())
    assert serving_names(reversed(ODD_NAMES)) == names


@pytest.mark.slow
def test_a_table_with_any_column_names_trains_exports_and_serves_raw_rows(tmp_path):
    path = odd_names_csv(tmp_path / "odd.csv")
    # A child process: its stderr holds every warning the command prints (in this process pytest catches
    # them, and a warning shown once before is not shown again).
    result = tfbench_process(
        *["run", "penguins", "--set", f"data.source=csv:{path}"],
        *["--set", "data.options.label=label", "--set", "model.layers[1].units=2", "--set", "train.epochs=2"],
        *["--set", 'export.formats=["keras", "savedmodel"]', "--runs-dir", tmp_path / "runs"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "UserWarning" not in result.stderr
    run = next((tmp_path / "runs").iterdir())
    report = json.loads((run / "exports" / "report.json").read_text())
    assert report["keras"]["identical"] and report["savedmodel"]["max_abs_diff"] < 1e-5
    import tensorflow as tf

    from tfbench.data.column_names import serving_names

    served = tf.saved_model.load(str(run / "exports" / "saved_model")).signatures["serving_default"]
    keys = set(served.structured_input_signature[1])
    assert keys == set(serving_names(ODD_NAMES).values())  # every column, under its serving name
    predicted = tfbench("predict", run, "--input", path, "--json")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert json.loads(predicted.stdout)["samples"] == 60


@pytest.mark.slow
def test_train_py_reads_any_column_names(tmp_path):
    from tfbench.codegen import generate_script

    path = odd_names_csv(tmp_path / "odd.csv")
    exp = experiment(f"csv:{path}", {"label": "label"})
    (tmp_path / "train.py").write_text(generate_script(exp))
    result = subprocess.run(
        [sys.executable, "train.py", "--epochs", "1", "--output", "out.keras"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import keras

    model = keras.models.load_model(tmp_path / "out.keras")
    assert set(model.input) == set(ODD_NAMES)


# -- every Arrow type gets a kind or is dropped with a note ---------------------------------------


def arrow_table(n: int = 40):
    import pyarrow as pa

    rng = np.random.default_rng(1)
    return pa.table(
        {
            "x": rng.normal(size=n),
            "tags": pa.array([[i % 3, 1] for i in range(n)]),
            "wide_tags": pa.array([[1.0, 2.0]] * n, pa.large_list(pa.float64())),
            "pair": pa.array([[1, 2]] * n, pa.list_(pa.int64(), 2)),
            "record": pa.array([{"a": i, "b": "x"} for i in range(n)]),
            "attributes": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64())),
            "colour": pa.array(["red", "green", "blue", "red"] * (n // 4)).dictionary_encode(),
            "waited": pa.array([datetime.timedelta(seconds=30 * i) for i in range(n)]),
            "waited_ms": pa.array([datetime.timedelta(milliseconds=i) for i in range(n)], pa.duration("ms")),
            "opens": pa.array([datetime.time(i % 24, 30) for i in range(n)], pa.time32("s")),
            "closes": pa.array([datetime.time(i % 24, 0) for i in range(n)], pa.time64("us")),
            "blob": pa.array([bytes([i % 256, 255]) for i in range(n)]),
            "nothing": pa.nulls(n),
            "day": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i) for i in range(n)], pa.date64()),
            "label": pa.array(["a", "b"] * (n // 2)).dictionary_encode(),
        }
    )


def test_every_arrow_type_gets_a_kind_or_is_dropped_with_a_note_and_the_table_trains(tmp_path):
    import pyarrow.parquet as pq

    from tfbench import build

    path = tmp_path / "types.parquet"
    pq.write_table(arrow_table(), path)
    exp = experiment(f"parquet:{path}", {"label": "label"})
    info = data.describe(exp.data)
    kinds = {c["name"]: c["kind"] for c in info.extra["table"]["columns"]}
    assert kinds == {
        "x": "numeric",
        "colour": "categorical",  # pandas' category: dictionary-encoded
        "waited": "numeric",  # durations in seconds
        "waited_ms": "numeric",
        "opens": "numeric",  # times of day in seconds since midnight
        "closes": "numeric",
        "day": "date",
    }
    notes = " | ".join(info.extra["notes"])
    for name, words in {
        "tags": "holds lists",
        "wide_tags": "holds lists",
        "pair": "holds lists",
        "record": "struct",
        "attributes": "holds maps",
        "blob": "raw bytes",
        "nothing": "has no values",
    }.items():
        assert f"column {name!r} {words}" in notes or (f"'{name}'" in notes and words in notes), name
    assert info.class_names == ["a", "b"]
    bundle = data.load(exp.data, exp.train.seed)
    x, _ = next(iter(bundle.train))
    assert np.all(np.mod(x["waited"].numpy(), 30) == 0) and np.all(np.mod(x["opens"].numpy(), 3600) == 1800)
    assert np.all(x["opens"].numpy() < 86_400) and np.all(np.mod(x["closes"].numpy(), 3600) == 0)
    model = build.build_model(exp, bundle.info)
    model.fit(bundle.train, epochs=1, verbose=0)
    streamed = data.describe(experiment(f"parquet:{path}", {"label": "label", "stream": True}).data)
    assert {c["name"]: c["kind"] for c in streamed.extra["table"]["columns"]} == kinds


def test_an_override_that_keeps_an_unusable_column_is_one_located_line(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "types.parquet"
    pq.write_table(arrow_table(), path)
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"parquet:{path}", {"label": "label", "columns": {"tags": "categorical"}}).data)
    assert caught.value.location == "data.options.columns.tags" and "holds lists" in caught.value.message
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"parquet:{path}", {"label": "record"}).data)
    assert caught.value.location == "data.options.label"


@pytest.mark.parametrize("empty", ["", "NA", "null"])
def test_a_csv_column_that_is_entirely_empty_is_dropped_with_a_note(tmp_path, empty):
    path = tmp_path / "notes.csv"
    path.write_text("x,notes,y\n" + "".join(f"{i * 0.5},{empty},{'ab'[i % 2]}\n" for i in range(40)))
    exp = experiment(f"csv:{path}", {"label": "y"})
    info = data.describe(exp.data)
    assert [c["name"] for c in info.extra["table"]["columns"]] == ["x"]
    assert "column 'notes' has no values: dropped" in info.extra["notes"]
    bundle = data.load(exp.data)
    assert set(next(iter(bundle.train))[0]) == {"x"}


# -- duplicate names, encodings, one-class labels -------------------------------------------------


def test_a_column_name_used_twice_is_refused_at_validate(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,y\n" + "".join(f"{i},{i * 2},{i * 3},{i % 2}\n" for i in range(30)))
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"label": "y"}).data)
    assert caught.value.location.startswith("data.source") and "'a' is used twice (columns 1 and 3)" in str(
        caught.value
    )


def test_a_latin1_file_names_its_cell_and_reads_with_the_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    body = "x,town,y\n" + "".join(f"{i},{'Orléans' if i == 5 else 'Paris'},{i % 2}\n" for i in range(40))
    path.write_bytes(body.encode("latin-1"))
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"label": "y"}).data)
    assert "column 'town' is not utf-8 text (row 7" in str(caught.value) and "encoding" in caught.value.hint
    info = data.describe(experiment(f"csv:{path}", {"label": "y", "encoding": "latin-1"}, validation_split=None).data)
    columns = {c["name"]: c for c in info.extra["table"]["columns"]}
    assert set(columns["town"]["vocabulary"]) == {"Paris", "Orléans"}
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"label": "y", "encoding": "latin-2000"}).data)
    assert caught.value.location == "data.options.encoding"


@pytest.mark.parametrize("label", ["a", "0", "2019"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_label_with_one_class_is_refused(tmp_path, label, stream):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n" + "".join(f"{i * 0.5},{label}\n" for i in range(40)))
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"label": "y", "stream": stream}).data)
    assert caught.value.location == "data.options.label"
    assert f"one class ({label!r})" in caught.value.message and "at least two" in caught.value.message
    regression = experiment(f"csv:{path}", {"label": "y", "label_kind": "regression", "stream": stream})
    if label != "a":
        assert data.describe(regression.data).label_kind == "regression"  # a constant target is allowed


# -- wide tables ----------------------------------------------------------------------------------


def wide_csv(path: Path, columns: int, rows: int = 300) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).round(3)
    text = ",".join(f"g{i}" for i in range(columns)) + ",kind,y\n"
    text += "".join(",".join(map(str, x[r])) + f",{'ab'[r % 2]},{int(x[r, 0] + x[r, 1] > 0)}\n" for r in range(rows))
    path.write_text(text)
    return path


def test_a_wide_table_takes_its_numeric_columns_as_one_input_and_trains(tmp_path):
    from tfbench import build

    path = wide_csv(tmp_path / "wide.csv", 300)
    exp = experiment(f"csv:{path}", {"label": "y"})
    info = data.describe(exp.data)
    assert info.input_shape == (300 + 3,)  # 300 numbers, 'kind' one-hot with its out-of-vocabulary slot
    assert any("300 numeric columns are one input of the model, 'numbers'" in n for n in info.extra["notes"])
    bundle = data.load(exp.data, exp.train.seed)
    model = build.build_model(exp, bundle.info)
    assert sorted(model.input) == ["kind", "numbers"] and model.input["numbers"].shape == (None, 300)
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x, _ = next(iter(bundle.train))
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(300))
    assert any(np.allclose(row, x["numbers"].numpy()[0], atol=1e-6) for row in raw)  # file order kept


def test_a_wide_table_below_the_limit_keeps_an_input_per_column(tmp_path):
    from tfbench import build

    path = wide_csv(tmp_path / "w.csv", 12, rows=60)
    exp = experiment(f"csv:{path}", {"label": "y", "max_numeric_inputs": 12})
    bundle = data.load(exp.data, exp.train.seed)
    model = build.build_model(exp, bundle.info)
    assert len(model.input) == 13
    packed = experiment(f"csv:{path}", {"label": "y", "max_numeric_inputs": 11})
    packed_bundle = data.load(packed.data, packed.train.seed)
    packed_model = build.build_model(packed, packed_bundle.info)
    assert sorted(packed_model.input) == ["kind", "numbers"]
    # Same statistics, the same encoded features: a row scores the same through either model.
    per_column = build.build_model(exp, bundle.info).get_layer("preprocessing")
    one_input = packed_model.get_layer("preprocessing")
    x, _ = next(iter(bundle.validation))
    columns = {k: v.numpy() for k, v in x.items()}
    matrix = {"numbers": np.hstack([columns[f"g{i}"] for i in range(12)]), "kind": columns["kind"]}
    assert np.allclose(per_column(columns), one_input(matrix), atol=1e-6)
