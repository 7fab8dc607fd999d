"""A preset's relative paths are the preset's: resolved against its folder, recorded absolute by the run.

The shipped presets live in the top-level presets/ folder and are packaged so an installed tfbench
still finds them by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tomllib
from no_network.sitecustomize import pythonpath
from tiny_runs import tfbench_here

from tfbench.spec import PRESETS_DIR, load_experiment, resolve_preset, save_experiment

REPO = Path(__file__).resolve().parent.parent
PRESET = """
name = "beside"
[data]
source = "csv:data.csv"
batch_size = 16
[[model.layers]]
type = "Dense"
units = 1
activation = "sigmoid"
[train]
epochs = 1
"""


def _folder_with_csv(root: Path) -> Path:
    folder = root / "elsewhere"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.random((48, 2))
    rows = ["x1,x2,label", *(f"{a:.3f},{b:.3f},{int(a > b)}" for a, b in x)]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    (folder / "p.toml").write_text(PRESET)
    return folder


@pytest.mark.slow
def test_a_preset_beside_its_csv_validates_runs_and_resumes_from_any_working_directory(tmp_path):
    """`source = "csv:data.csv"` is the file beside the preset, whatever the shell's directory."""
    folder = _folder_with_csv(tmp_path)
    somewhere, other = tmp_path / "somewhere", tmp_path / "other"
    somewhere.mkdir()
    other.mkdir()
    result = tfbench_here("validate", str(folder / "p.toml"), cwd=somewhere)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"csv:{folder / 'data.csv'}" in result.stdout
    result = tfbench_here("run", str(folder / "p.toml"), "--runs-dir", str(tmp_path / "runs"), "--quiet", cwd=somewhere)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    recorded = tomllib.loads((run_dir / "experiment.toml").read_text())
    assert recorded["data"]["source"] == f"csv:{folder / 'data.csv'}"
    assert repr(str(folder / "data.csv")) in (run_dir / "train.py").read_text()
    result = tfbench_here("resume", str(run_dir), "--epochs", "2", "--quiet", cwd=other)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((run_dir / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


LAYER = '[[model.layers]]\ntype = "Dense"\nunits = 1\n'


def test_each_kind_of_path_resolves_against_the_preset_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "presets" / "mine"
    cases = {
        'source = "images:photos/"\n[data.options]\ntest_dir = "../shared/test"': (
            f"images:{folder / 'photos'}",
            {"test_dir": str(tmp_path / "presets" / "shared" / "test")},
        ),
        'source = "npz:arrays/x.npz"': (f"npz:{folder / 'arrays' / 'x.npz'}", {}),
        'source = "csv:t.csv"\n[data.options]\ntest_path = "t-test.csv"': (
            f"csv:{folder / 't.csv'}",
            {"test_path": str(folder / "t-test.csv")},
        ),
        'source = "tfds:mnist"\n[data.options]\ndata_dir = "tfds"': ("tfds:mnist", {"data_dir": str(folder / "tfds")}),
        'source = "builtin:digits"': ("builtin:digits", {}),
        f'source = "csv:{tmp_path / "abs.csv"}"': (f"csv:{tmp_path / 'abs.csv'}", {}),
    }
    for data, (source, options) in cases.items():
        exp = load_experiment(_write(folder / "p.toml", f"[data]\n{data}\n{LAYER}"))
        assert exp.data.source == source, data
        assert {k: v for k, v in exp.data.options.items() if k in options} == options, data
    exp = load_experiment(_write(folder / "p.toml", f'[data]\nsource = "npz:x.npz"\ncache = "c/train"\n{LAYER}'))
    assert exp.data.cache == "c/train"  # not the preset folder's: a file inside the run directory


def test_a_path_given_on_the_command_line_is_the_shells(tmp_path, monkeypatch):
    """`--set data.source=csv:x.csv` is typed in a shell: relative to its working directory."""
    folder = _folder_with_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    exp = load_experiment(folder / "p.toml", ['data.source="csv:mine.csv"'])
    assert exp.data.source == f"csv:{tmp_path / 'mine.csv'}"


def test_a_saved_preset_keeps_paths_inside_its_folder_relative(tmp_path):
    folder = _folder_with_csv(tmp_path)
    exp = load_experiment(folder / "p.toml")
    saved = save_experiment(exp, folder / "copy.toml")
    assert tomllib.loads(saved.read_text())["data"]["source"] == "csv:data.csv"
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    assert load_experiment(moved / "copy.toml").data.source == f"csv:{moved / 'data.csv'}"
    elsewhere = save_experiment(exp, tmp_path / "far" / "away.toml")
    assert tomllib.loads(elsewhere.read_text())["data"]["source"] == f"csv:{folder / 'data.csv'}"


def test_the_shipped_presets_are_the_top_level_folder():
    assert PRESETS_DIR == REPO / "presets"
    assert resolve_preset("digits-cnn") == REPO / "presets" / "digits-cnn.toml"
    assert not (REPO / "tfbench" / "presets").exists()


@pytest.mark.slow
def test_an_installed_wheel_finds_the_shipped_presets_by_name(tmp_path):
    """The wheel holds presets/ as tfbench/presets, and tfbench unpacked from it finds them by name."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("tfbench", "presets"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "w"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("tfbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (REPO / "presets").glob("*.toml"))
    presets = [n.removeprefix("tfbench/presets/") for n in names if n.startswith("tfbench/presets/")]
    assert sorted(n for n in presets if n.endswith(".toml") and "/" not in n) == shipped
    assert "data/penguins.csv" in presets  # a preset's data file travels with it
    assert "code/transformer.py" in presets  # and a preset's own module
    assert sum(n.startswith("data/reviews/") for n in presets) == 1000
    assert "tfbench/catalog/catalog.json" in names
    assert not any(n.startswith("presets/") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from tfbench.spec import resolve_preset, load_experiment; p = resolve_preset('digits-cnn'); "
        "load_experiment('spiral-mlp'); print(p)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": pythonpath(site)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(result.stdout.strip()) == site / "tfbench" / "presets" / "digits-cnn.toml"
