"""Tables read like pandas reads them: written dates, Unix times, near-unique text, ISO dates in exports.

Real tables that packages ship (tests/fixtures/tables, see its README): vega_datasets' stocks.csv
(dates written like "Jan 1 2000") and cars.json (Auto MPG: a car name per row, the model year as
an ISO date), and small generated ones.
"""

from __future__ import annotations

import csv
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import runner_env
from tiny_runs import tfbench_here as tfbench

from tfbench import data
from tfbench.errors import UserError
from tfbench.spec import experiment_from_dict

TABLES = Path(__file__).parent / "fixtures" / "tables"
STOCKS = TABLES / "stocks.csv"
CARS = TABLES / "cars.json"
REPO = Path(__file__).resolve().parent.parent


def experiment(source: str, options: dict, layers: list[dict], **train):
    return experiment_from_dict(
        {
            "name": "dates",
            "data": {"source": source, "options": options, "batch_size": 32},
            "model": {"layers": layers},
            "train": {"epochs": 1, "seed": 7, **train},
        }
    )


def columns_of(info) -> dict[str, dict]:
    return {c["name"]: c for c in info.extra["table"]["columns"]}


def cars_csv(path: Path, rows: slice = slice(None)) -> Path:
    """cars.json as the CSV a user would export: empty cells where a value is missing."""
    cars = json.loads(CARS.read_text())[rows]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(cars[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in car.items()} for car in cars)
    return path


# -- dates in the common written forms -----------------------------------------------------------

FORMS = [
    (["Jan 1 2000", "Feb 29 2000", "Dec 31 2009"], "month name"),
    (["January 5, 2019", "March 15, 2019", "December 1, 2020"], "month name"),
    (["1 Jan 2000", "15 Mar 2019", "30 Nov 2021"], "day and month name"),
    (["03/15/2019 14:00", "12/01/2019 09:30", "01/02/2020 00:00"], "US month/day/year"),
    (["03/15/2019 02:00 PM", "12/01/2019 09:30 AM", "01/02/2020 12:00 AM"], "US month/day/year"),
    (["15/03/2019 14:00", "01/12/2019 09:30", "31/01/2020 23:59"], "day/month/year"),
    (["15.03.2019", "01.12.2019 10:00", "31.01.2020"], "day/month/year"),
    (["2019/03/05 10:00:00", "2019/12/01", "2020/01/31 23:59:59"], "year/month/day"),
]
PYTHON_FORMATS = [
    "%b %d %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %H:%M",
    ("%d.%m.%Y", "%d.%m.%Y %H:%M"),
    ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d"),
]


def python_parse(value: str, formats) -> datetime.datetime:
    for fmt in (formats,) if isinstance(formats, str) else formats:
        try:
            return datetime.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ValueError(value)


@pytest.mark.parametrize("case", range(len(FORMS)))
def test_dates_in_common_written_forms_are_dates_the_model_parses_from_iso_text(tmp_path, case):
    import tensorflow as tf

    from tfbench import build

    values, form = FORMS[case]
    rows = [(values[i % 3], i % 2) for i in range(60)]
    path = tmp_path / "when.csv"
    path.write_text("when,y\n" + "".join(f'"{v}",{y}\n' for v, y in rows))
    exp = experiment(f"csv:{path}", {"label": "y"}, [{"type": "Dense", "units": 2, "activation": "softmax"}])
    info = data.describe(exp.data, seed=exp.train.seed)
    column = columns_of(info)["when"]
    assert column["kind"] == "date" and column["dtype"] == "string" and form in column["form"]
    assert any("'when' is a date" in n and "ISO text" in n for n in info.extra["notes"])
    expected = [python_parse(v, PYTHON_FORMATS[case]) for v in values]
    bundle = data.load(exp.data, exp.train.seed)
    x, _ = next(iter(bundle.train))
    iso = {v.decode() for v in x["when"].numpy()[:, 0]}
    assert iso == {d.strftime("%Y-%m-%d %H:%M:%S") for d in expected}
    model = build.build_model(exp, bundle.info)  # the model reads the ISO text back into days
    encoded = model.get_layer("preprocessing")({"when": tf.constant([[d.isoformat(" ")] for d in expected])})
    days = np.array([(d - datetime.datetime(1970, 1, 1)).total_seconds() / 86400 for d in expected])
    normalized = (days - column["mean"]) / np.sqrt(column["variance"])
    assert np.allclose(np.asarray(encoded)[:, 0], normalized, atol=1e-3)


def test_unix_seconds_in_a_time_named_column_are_dates(tmp_path):
    start = 1_600_000_000
    path = tmp_path / "events.csv"
    path.write_text(
        "created_at,visitors,y\n" + "".join(f"{start + 3_600 * i},{start + 7_919 * i},{i % 2}\n" for i in range(60))
    )
    info = data.describe(experiment(f"csv:{path}", {"label": "y"}, []).data)
    columns = columns_of(info)
    assert columns["created_at"]["kind"] == "date" and columns["created_at"]["form"] == "Unix seconds"
    assert columns["created_at"]["mean"] == pytest.approx((start + 3_600 * 30) / 86_400, abs=1.0)
    assert columns["visitors"]["kind"] == "numeric"  # the same numbers, a name that is not a time
    assert any("'created_at'" in n and "Unix seconds" in n and '"numeric"' in n for n in info.extra["notes"])


@pytest.mark.parametrize(
    "column, kind, row, value",
    [("when", "date", 57, "not a date"), ("size", "numeric", 40, "abc")],
)
def test_a_column_forced_to_a_kind_that_does_not_fit_names_the_files_row(tmp_path, column, kind, row, value):
    lines = ["when,size,y"]
    for r in range(2, 82):  # spreadsheet rows 2..81; the header is row 1
        when = "not a date" if r == 57 else f"Jan {1 + r % 28} 2001"
        size = "abc" if r == 40 else f"{r * 0.5}"
        label = "" if r in (10, 20) else str(r % 2)  # rows without a label are left out before the split
        lines.append(f"{when},{size},{label}")
    path = tmp_path / "forced.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as caught:
        data.describe(experiment(f"csv:{path}", {"label": "y", "columns": {column: kind}}, []).data)
    assert caught.value.location == f"data.options.columns.{column}"
    assert f"(row {row}: {value!r})" in caught.value.message


# -- stocks.csv: text dates train like dates parsed by hand ----------------------------------------


def stocks_mae(path: Path) -> tuple[float, dict]:
    from tfbench import build

    layers = [
        {"type": "Dense", "units": 64, "activation": "relu"},
        {"type": "Dense", "units": 64, "activation": "relu"},
        {"type": "Dense", "units": 1},
    ]
    exp = experiment(
        f"csv:{path}",
        {"label": "price"},
        layers,
        epochs=30,  # both reach their lowest validation error before epoch 30 (and keep it to epoch 80)
        optimizer={"type": "Adam", "learning_rate": 0.01},
        loss="mean_squared_error",
        metrics=["mae"],
    )
    build.apply_seed(exp.train)
    bundle = data.load(exp.data, exp.train.seed)
    model = build.build_model(exp, bundle.info)
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=exp.train.epochs, verbose=0)
    return float(np.min(history.history["val_mae"])), columns_of(bundle.info)


@pytest.mark.slow
def test_stocks_text_dates_train_within_ten_percent_of_dates_parsed_by_hand(tmp_path):
    parsed = tmp_path / "stocks-iso.csv"
    with open(STOCKS) as f, open(parsed, "w", newline="") as out:
        rows = list(csv.DictReader(f))
        writer = csv.DictWriter(out, fieldnames=["symbol", "date", "price"])
        writer.writeheader()
        for row in rows:
            day = datetime.datetime.strptime(row["date"], "%b %d %Y").date().isoformat()
            writer.writerow({**row, "date": day})
    text_mae, columns = stocks_mae(STOCKS)
    hand_mae, _ = stocks_mae(parsed)
    assert text_mae <= 1.10 * hand_mae, (text_mae, hand_mae)
    assert columns["date"]["kind"] == "date" and "month name" in columns["date"]["form"]


# -- near-unique text ----------------------------------------------------------------------------


def cars_accuracy(path: Path, columns: dict) -> tuple[float, object]:
    from tfbench import build

    layers = [
        {"type": "Dense", "units": 32, "activation": "relu"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ]
    exp = experiment(
        f"csv:{path}",
        {"label": "Origin", "columns": columns},
        layers,
        epochs=10,  # words lead hashing by ~0.2 from the fourth epoch on (0.99 against 0.78 at the tenth)
        optimizer={"type": "Adam", "learning_rate": 0.01},
    )
    build.apply_seed(exp.train)
    bundle = data.load(exp.data, exp.train.seed)
    model = build.build_model(exp, bundle.info)
    history = model.fit(bundle.train, validation_data=bundle.validation, epochs=exp.train.epochs, verbose=0)
    return float(history.history["val_accuracy"][-1]), bundle.info


@pytest.mark.slow
def test_a_near_unique_text_column_gives_its_words_with_a_note(tmp_path):
    path = cars_csv(tmp_path / "cars.csv")
    words, info = cars_accuracy(path, {})
    name = columns_of(info)["Name"]
    assert name["kind"] == "text" and "chevrolet" in name["vocabulary"] and "ford" in name["vocabulary"]
    note = next(n for n in info.extra["notes"] if "'Name'" in n)
    assert "most frequent words" in note and "columns = { 'Name' = \"drop\" } drops it" in note
    hashed, _ = cars_accuracy(path, {"Name": "hashed"})
    assert words >= 0.9 and words >= hashed + 0.08, (words, hashed)


def test_every_table_note_is_in_validate_json(tmp_path):
    path = cars_csv(tmp_path / "cars.csv")
    for source, extra, words in (
        (path, ["data.options.label=Origin"], ["'Name' has", "most frequent words", "'Year' is a date"]),
        (
            STOCKS,
            ["data.options.label=price", "model.layers[1].units=1", "model.layers[1].activation=linear"],
            ["'date' is a date", "written like Jan 31 2000", "ISO text"],
        ),
    ):
        sets = [a for value in [f"data.source=csv:{source}", *extra] for a in ("--set", value)]
        result = tfbench("validate", "penguins", *sets, "--json")
        notes = " | ".join(json.loads(result.stdout)["notes"])
        assert all(w in notes for w in words), notes


# -- exports take an ISO date as text ------------------------------------------------------------


@pytest.mark.slow
def test_a_savedmodel_scores_raw_rows_with_an_iso_date_exactly_as_predict_does(tmp_path):
    import tensorflow as tf

    from tfbench.data.column_names import serving_names

    train = cars_csv(tmp_path / "cars.csv")
    new = cars_csv(tmp_path / "new.csv", slice(0, 406, 20))
    result = tfbench(
        "run",
        "penguins",
        "--set",
        f"data.source=csv:{train}",
        "--set",
        "data.options.label=Origin",
        "--set",
        "train.epochs=1",
        "--set",
        'export.formats=["savedmodel"]',
        "--runs-dir",
        tmp_path / "runs",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    predicted = tfbench("predict", run, "--input", new, "--json")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = json.loads(predicted.stdout)["rows"]
    serve = tf.saved_model.load(str(run / "exports" / "saved_model")).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert specs["Year"].dtype == tf.string  # the date as the file writes it
    with open(new) as f:
        raw = list(csv.DictReader(f))
    names = serving_names(raw[0])
    columns = {}
    for column, key in names.items():
        if key not in specs:
            continue
        cells = [r[column] for r in raw]
        if specs[key].dtype == tf.string:
            columns[key] = tf.constant([[c] for c in cells])
        else:
            columns[key] = tf.constant([[float(c) if c else np.nan] for c in cells], specs[key].dtype)
    assert raw[0]["Year"] == "1970-01-01" and columns["Year"].dtype == tf.string
    probs = next(iter(serve(**columns).values())).numpy()
    classes = sorted({r["Origin"] for r in raw} | {"Europe", "Japan", "USA"})
    assert [classes[k] for k in probs.argmax(axis=1)] == [r["predicted"] for r in rows]
    assert np.allclose(probs.astype(np.float64).max(axis=1), [r["probability"] for r in rows], rtol=0, atol=1e-6)


# -- train.py reads dates and words as the run does ---------------------------------------------


@pytest.mark.slow
def test_train_py_reads_written_dates_unix_times_and_words_as_the_run_does(tmp_path):
    import keras

    from tfbench import build
    from tfbench.codegen import generate_script

    rng = np.random.default_rng(5)
    makes = ["chevrolet chevelle", "ford torino", "amc rebel sst", "plymouth fury iii", "buick skylark 320"]
    lines = ["when,created_at,name,x,y"]
    for i in range(80):
        day = datetime.date(2001, 1, 1) + datetime.timedelta(days=9 * i)
        name = f"{makes[i % 5]} {i % 40}"  # 40 values of several words, each twice: words, not one-hot
        lines.append(f'"{day:%b} {day.day} {day.year}",{1_600_000_000 + 86_400 * i},{name},{rng.normal():.3f},{i % 2}')
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n")
    exp = experiment(f"csv:{path}", {"label": "y"}, [{"type": "Dense", "units": 2, "activation": "softmax"}])
    bundle = data.load(exp.data, exp.train.seed)
    columns = columns_of(bundle.info)
    assert [columns[c]["kind"] for c in ("when", "created_at", "name")] == ["date", "date", "text"]
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
    saved = keras.models.load_model(tmp_path / "out.keras")
    script = keras.Model(saved.inputs, saved.get_layer("encoded").output)  # the script's preprocessing
    run = build.build_model(exp, bundle.info).get_layer("preprocessing")
    x, _ = next(iter(bundle.train))
    assert np.allclose(np.asarray(script(x)), np.asarray(run(x)), atol=1e-5)


def test_a_streamed_table_reads_written_dates_words_and_unix_times_as_in_memory(tmp_path):
    cars = json.loads(CARS.read_text())
    path = tmp_path / "cars.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["built", "created_at", "Name", "Horsepower", "Origin"])
        for car in cars:
            day = datetime.datetime.fromisoformat(car["Year"])
            stamp = int((day - datetime.datetime(1970, 1, 1)).total_seconds()) + 3_600 + 3 * 10**8  # an hour later
            writer.writerow(
                [f"{day:%b} {day.day} {day.year}", stamp, car["Name"], car["Horsepower"] or "", car["Origin"]]
            )
    for stream in (False, True):
        info = data.describe(experiment(f"csv:{path}", {"label": "Origin", "stream": stream}, []).data)
        columns = columns_of(info)
        built, created = columns["built"], columns["created_at"]
        assert built["kind"] == created["kind"] == "date", stream
        assert "month name" in built["form"] and created["form"] == "Unix seconds"
        # the same training rows read from text and from Unix seconds: the same days, an hour (and 3e8 s) apart
        assert created["mean"] == pytest.approx(built["mean"] + (3_600 + 3 * 10**8) / 86_400, abs=1e-6)
        assert created["variance"] == pytest.approx(built["variance"], rel=1e-6)
        assert columns["Name"]["kind"] == "text" and "chevrolet" in columns["Name"]["vocabulary"]
