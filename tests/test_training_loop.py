"""`tfbench code --loop`: fit written out as a tf.GradientTape loop that reaches train.py's numbers."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from tiny_runs import REPO, runner_env, tfbench_here


def val_losses(script, tmp_path, name: str) -> list[float]:
    path = tmp_path / f"{name}.py"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, str(path), "--output", str(tmp_path / f"{name}.keras")],
        capture_output=True,
        text=True,
        env=runner_env(),
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [float(v) for v in re.findall(r"val_loss: ([0-9.]+)", done.stdout + done.stderr)]


@pytest.mark.slow
def test_the_loop_on_digits_mlp_runs_standalone_and_ends_on_train_pys_val_loss(tmp_path):
    loop = tfbench_here("code", "digits-mlp", "--loop", cwd=REPO)
    fit = tfbench_here("code", "digits-mlp", cwd=REPO)
    assert loop.returncode == 0 and fit.returncode == 0, loop.stderr[-3000:] + fit.stderr[-3000:]
    assert "tf.GradientTape()" in loop.stdout and "@tf.function" in loop.stdout and ".fit(" not in loop.stdout
    assert "import tfbench" not in loop.stdout
    looped, fitted = val_losses(loop.stdout, tmp_path, "loop"), val_losses(fit.stdout, tmp_path, "fit")
    assert len(looped) == len(fitted) == 20
    assert abs(looped[-1] - fitted[-1]) <= 0.001, (looped, fitted)


def test_the_loop_refuses_what_it_does_not_do_in_one_line_naming_the_setting(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text(
        'name = "p"\n[train]\nsteps_per_execution = 4\n[[model.layers]]\ntype = "Flatten"\n'
        '[[model.layers]]\ntype = "Dense"\nunits = 10\nactivation = "softmax"\n'
    )
    done = tfbench_here("code", str(preset), "--loop")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert "train.steps_per_execution" in lines[0] and "--loop" in lines[0]
