"""`tfbench runs STUDY_DIR` and `tfbench watch STUDY_DIR` on a recorded study (tests/fixtures/write_study.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from click.testing import CliRunner

from tfbench.cli import cli

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from write_study import write_study  # noqa: E402


def test_runs_lists_a_studys_trials_best_first(tmp_path):
    study_dir = write_study(tmp_path / "study")
    result = CliRunner().invoke(cli, ["runs", str(study_dir)])
    assert result.exit_code == 0, result.output
    numbers = re.findall(r"^│ +(\d+) │ (finished|pruned)", result.output, re.M)
    assert [int(n) for n, _ in numbers][:3] == [4, 9, 2] and len(numbers) == 12
    assert "best: trial #4 val_accuracy 0.9755" in result.output
    data = json.loads(CliRunner().invoke(cli, ["runs", str(study_dir), "--json"]).output)
    assert data["best"]["number"] == 4 and data["finished"] == 12 and len(data["trials"]) == 12
    assert data["trials"][0]["params"]["model.layers[2].units"] == 128


def test_watch_follows_a_study_to_its_end_in_text(tmp_path):
    study_dir = write_study(tmp_path / "study")
    result = CliRunner().invoke(cli, ["watch", str(study_dir)])
    assert result.exit_code == 0, result.output
    lines = re.findall(r"^trial (\d+)/12  #(\d+)  (.*)$", result.output, re.M)
    assert [int(done) for done, _, _ in lines] == list(range(1, 13))
    assert "val_accuracy 0.9755  lr 9.0e-3 units 128 rate 0.3  best #4 0.9755" in lines[4][2]
    assert "pruned after epoch 2" in lines[1][2]
    bad = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert bad.exit_code == 0 and "no runs" in bad.output
