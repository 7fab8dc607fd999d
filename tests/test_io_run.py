"""Models with several inputs and outputs train, log, checkpoint, resume and write train.py.

Real runs on tiny data: the two-heads model (two inputs, a regression and a classification head)
and the Functional API guide's ticket model on the guide's own random data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from multi_io_cases import TICKETS, counts, guide_ticket_model, write_tickets, write_two_heads
from tiny_runs import runner_env, tfbench_here, wait_for_event

from tfbench.codegen import generate_script
from tfbench.engine import events as ev
from tfbench.engine.run import Run
from tfbench.rundir import BACKUP_DIR, backup_epoch, read_history
from tfbench.spec import load_experiment
from tfbench.widgets.curves import run_charts

FIXTURES = Path(__file__).parent / "fixtures"


def plain_keras(code: str, env: dict | None = None) -> str:
    """Run `code` in a fresh interpreter that imports only Keras and NumPy (no tfbench)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env or runner_env(), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tfbench" not in done.stdout
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def two_heads_run(tmp_path_factory) -> Path:
    """One finished run of the two-heads model (3 epochs)."""
    folder = tmp_path_factory.mktemp("two-heads")
    run = Run(load_experiment(write_two_heads(folder, epochs=3)), runs_dir=folder / "runs")
    assert run.train() == "completed", run.reason
    return run.run_dir


@pytest.mark.slow
def test_history_has_a_column_per_output_loss_and_metric_in_keras_names(two_heads_run):
    rows = read_history(two_heads_run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    expected = {"loss", "age_loss", "age_mae", "kind_loss", "kind_accuracy"}
    assert expected | {f"val_{name}" for name in expected} <= set(rows[0])
    assert rows[-1]["val_age_mae"] < rows[0]["val_age_mae"]  # it learns
    state = ev.RunState.from_log(two_heads_run)
    assert state.outputs == ["age", "kind"] and state.status == "completed"


@pytest.mark.slow
def test_checkpoints_and_the_model_load_in_plain_keras_with_named_outputs(two_heads_run):
    for name in ("model.keras", "checkpoints/last.keras", "checkpoints/best.keras"):
        assert (two_heads_run / name).is_file(), name
    code = (
        "import keras, numpy as np\n"
        f"m = keras.saving.load_model({str(two_heads_run / 'model.keras')!r})\n"
        "out = m.predict({'left': np.zeros((2, 5), 'float32'), 'right': np.zeros((2, 3), 'float32')}, verbose=0)\n"
        "print(sorted((k, v.shape) for k, v in out.items()))"
    )
    assert plain_keras(code) == "[('age', (2, 1)), ('kind', (2, 3))]"


def test_exports_compare_every_output(two_heads_run):
    report = json.loads((two_heads_run / "exports" / "report.json").read_text())["keras"]
    assert set(report["outputs"]) == {"age", "kind"}
    assert report["identical"] is True and report["max_abs_diff"] == 0.0
    assert report["outputs"]["kind"]["metric"] == "accuracy" and report["outputs"]["age"]["metric"] == "mae"
    history = read_history(two_heads_run)[-1]
    assert report["outputs"]["kind"]["keras_metric"] == pytest.approx(history["val_kind_accuracy"], abs=1e-6)


def test_curves_show_each_outputs_loss_or_the_picked_outputs_metrics():
    state = ev.RunState.from_log(FIXTURES / "two_heads_run.jsonl")
    assert [c.title for c in run_charts(state)] == ["loss", "age_loss", "kind_loss", "learning rate"]
    picked = run_charts(state, "kind")
    assert [c.title for c in picked][:2] == ["kind loss", "kind_accuracy"]
    assert [s.label for s in picked[0].series] == ["kind_loss", "val_kind_loss"]
    assert [s.label for s in picked[1].series] == ["kind_accuracy", "val_kind_accuracy"]


# -- the Functional API guide's ticket model --------------------------------------------------------


@pytest.mark.slow
def test_ticket_model_trains_on_the_guides_random_data_and_loads_in_plain_keras(tmp_path):
    # The total's weights show after any epoch; the export's checks (minutes of eager LSTM calls for
    # its latency) are other tests' business: model.keras is what plain Keras loads here.
    preset = TICKETS.replace("epochs = 2", "epochs = 1") + "\n[export]\nformats = []\n"
    exp = load_experiment(write_tickets(tmp_path, preset=preset))  # the guide's 1,280 samples
    run = Run(exp, runs_dir=tmp_path / "runs")
    assert run.train() == "completed", run.reason
    last = read_history(run.run_dir)[-1]
    # The guide's loss weights: the total is priority + 0.2 × department (256 validation samples,
    # eight full batches, so the per-output means weigh alike).
    assert last["val_loss"] == pytest.approx(last["val_priority_loss"] + 0.2 * last["val_department_loss"], rel=1e-4)
    code = (
        "import keras\n"
        f"m = keras.saving.load_model({str(run.run_dir / 'model.keras')!r})\n"
        "print(m.count_params(), sorted(i.name for i in m.inputs), sorted(m.output_names))"
    )
    total, _ = counts(guide_ticket_model())
    assert plain_keras(code) == f"{total} ['body', 'tags', 'title'] ['department', 'priority']"


@pytest.mark.slow
def test_ticket_train_py_builds_the_guides_model(tmp_path):
    exp = load_experiment(write_tickets(tmp_path, n=64))
    (tmp_path / "train.py").write_text(generate_script(exp))
    code = (
        "import json, runpy\n"
        f"script = runpy.run_path({str(tmp_path / 'train.py')!r}, run_name='train')\n"
        "m = script['build_model']()\n"
        "w = sum(int(v.numpy().size) for v in m.trainable_weights)\n"
        "print(json.dumps([m.count_params(), w, [(l.name, type(l).__name__) for l in m.layers], m.output_names]))"
    )
    total, trainable, layers, outputs = json.loads(plain_keras(code))
    reference = guide_ticket_model()
    assert (total, trainable) == counts(reference)
    assert sorted(outputs) == ["department", "priority"]
    assert sorted(t for _, t in layers) == sorted(type(layer).__name__ for layer in reference.layers)


@pytest.mark.slow
def test_two_heads_train_py_ends_on_the_runs_own_numbers(two_heads_run, tmp_path):
    """train.py splits, batches and shuffles as the run did: its last epoch's val_loss is the run's."""
    script = two_heads_run / "train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--epochs", "3", "--output", str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = [line for line in done.stdout.splitlines() if "val_loss" in line][-1]
    val_loss = float(last.split("val_loss: ")[1].split()[0])
    assert val_loss == pytest.approx(read_history(two_heads_run)[-1]["val_loss"], abs=2e-4)


# -- exact resume ---------------------------------------------------------------------------------


def without_seconds(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(run_dir)]


EVERY_EPOCH = {"TFBENCH_CHECKPOINT_SECONDS": "0"}  # a backup at every epoch


@pytest.mark.slow
def test_a_killed_and_resumed_two_heads_run_has_the_uninterrupted_history(tmp_path):
    """Every epoch saved; killed after epoch 3's backup; the resume writes the history of the run that
    never stopped (Dropout in the trunk: its seed state comes back too)."""
    import os
    import signal
    import time

    preset = write_two_heads(tmp_path, epochs=5)
    whole = tfbench_here("run", preset, "--runs-dir", tmp_path / "whole", "--quiet", env=EVERY_EPOCH)
    assert whole.returncode == 0, whole.stderr[-2000:]
    uninterrupted = without_seconds(next((tmp_path / "whole").iterdir()))

    argv = [sys.executable, "-m", "tfbench", "run", str(preset), "--runs-dir", str(tmp_path / "cut"), "--quiet"]
    env = dict(runner_env(), **EVERY_EPOCH)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        runs = tmp_path / "cut"
        run_dir = None
        deadline = time.monotonic() + 120
        while run_dir is None and time.monotonic() < deadline:
            found = list(runs.glob("*/events.jsonl")) if runs.exists() else []
            run_dir = found[0].parent if found else None
            time.sleep(0.05)
        assert run_dir is not None
        wait_for_event(run_dir, lambda e: e["event"] == "checkpoint" and e["kind"] == "backup" and e["epoch"] == 3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert backup_epoch(run_dir) >= 3 and (run_dir / BACKUP_DIR).is_dir()
    resumed = tfbench_here("resume", run_dir, "--quiet", env=EVERY_EPOCH)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert without_seconds(run_dir) == uninterrupted


# -- evaluation and predictions per output -----------------------------------------------------------


def test_evaluation_reports_each_output_as_its_own_model_would(two_heads_run):
    from tfbench.evaluation import evaluate_run, renderables

    result = evaluate_run(two_heads_run)
    assert result["label_kind"] == "outputs" and set(result["outputs"]) == {"age", "kind"}
    last = read_history(two_heads_run)[-1]
    assert result["outputs"]["kind"]["accuracy"] == pytest.approx(last["val_kind_accuracy"], abs=1e-6)
    assert result["outputs"]["age"]["mae"] == pytest.approx(last["val_age_mae"], rel=1e-5)
    assert len(result["outputs"]["kind"]["confusion"]) == 3
    headings = [str(part) for part in renderables(result) if type(part).__name__ == "Text"]
    assert any("output age" in h for h in headings) and any("output kind" in h for h in headings)


def test_predict_input_npz_scores_every_output(two_heads_run, tmp_path):
    import keras
    import numpy as np
    from click.testing import CliRunner
    from multi_io_cases import two_heads_arrays

    from tfbench.cli import cli
    from tfbench.prediction import predict_inputs

    new = two_heads_arrays(n=20, seed=9)
    np.savez(tmp_path / "new.npz", **new)
    result = predict_inputs(two_heads_run, tmp_path / "new.npz")
    assert result["samples"] == 20
    assert set(result["rows"][0]) == {"input", "age", "age_label", "kind", "kind_probability", "kind_label"}
    model = keras.saving.load_model(two_heads_run / "model.keras")
    direct = model.predict({"left": new["left"], "right": new["right"]}, verbose=0)
    assert [r["kind"] for r in result["rows"]] == [str(k) for k in direct["kind"].argmax(-1)]
    assert [r["age"] for r in result["rows"]] == pytest.approx(direct["age"][:, 0].tolist(), abs=1e-5)
    expected = float(np.mean(direct["kind"].argmax(-1) == new["kind"]))
    assert result["outputs"]["kind"]["accuracy"] == pytest.approx(expected)
    printed = CliRunner().invoke(cli, ["predict", str(two_heads_run), "--input", str(tmp_path / "new.npz")])
    assert printed.exit_code == 0, printed.output
    assert "20 predictions; age MAE" in printed.output and "kind accuracy" in printed.output

    np.savez(tmp_path / "unlabelled.npz", left=new["left"], right=new["right"])
    bare = predict_inputs(two_heads_run, tmp_path / "unlabelled.npz")
    assert "outputs" not in bare and "kind_label" not in bare["rows"][0]
    np.savez(tmp_path / "wrong.npz", left=new["left"])
    wrong = CliRunner().invoke(cli, ["predict", str(two_heads_run), "--input", str(tmp_path / "wrong.npz")])
    assert wrong.exit_code == 2 and "has no array 'right'" in wrong.output
