"""Command output at any width: `runs`, `runs STUDY` and `predict` print whole tables whatever
`COLUMNS` says (0, garbage, narrow), run names are never cut, and piped output is never cut."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from rich.cells import cell_len
from tiny_runs import REPO, digits_preset, runner_env, tfbench_here, write_preset

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from write_study import write_study  # noqa: E402

RUNS = REPO / "tests" / "fixtures" / "runs_dir"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NAMES = sorted(p.name for p in RUNS.iterdir())


def child_env(columns: str | None) -> dict[str, str]:
    env = runner_env()
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def in_terminal(args: list[str], columns: str | None, width: int = 80, timeout: float = 120) -> str:
    """`python -m tfbench ARGS` with its output on a terminal `width` columns wide; what it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-m", "tfbench", *args], stdout=slave, stderr=slave, env=child_env(columns), close_fds=True
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            child.kill()
            raise AssertionError(f"no output for {timeout}s: {b''.join(chunks)[-500:]!r}")
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert child.wait(timeout) == 0, b"".join(chunks).decode(errors="replace")
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def piped(args: list[str], columns: str | None) -> str:
    """`python -m tfbench ARGS` with stdout a pipe; what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "tfbench", *args], capture_output=True, text=True, env=child_env(columns), timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_whole_runs_table(text: str, names: list[str], width: int | None) -> None:
    for name in names:
        assert re.search(rf"│ {re.escape(name)} +│", text), f"{name} not whole in:\n{text}"
    assert "…" not in text
    if width is not None:
        assert max(cell_len(line) for line in text.splitlines()) <= width, text


@pytest.mark.parametrize("columns", ["0", "-3", "abc", "5", None])
def test_runs_in_an_80_column_terminal_prints_whole_names_whatever_columns_says(columns):
    text = in_terminal(["runs", str(RUNS)], columns)
    assert_whole_runs_table(text, NAMES, 80)
    assert "status" in text and "completed" in text and "early_stopped" in text


@pytest.mark.parametrize("columns", ["0", "40", None])
def test_piped_runs_are_never_cut(columns):
    text = piped(["runs", str(RUNS)], columns)
    assert_whole_runs_table(text, NAMES, None)
    for column in ("started", "status", "epochs", "best val_loss", "params", "time"):
        assert column in text


def test_long_run_names_print_whole_in_narrow_terminals(tmp_path):
    runs = tmp_path / "runs"
    names = [f"digits-mlp-wide-dropout-{n}-20250101-120000-{n}" for n in (2, 13, 104)]
    for source, name in zip(sorted(RUNS.iterdir()), names):
        shutil.copytree(source, runs / name)
    for width in (80, 70):
        text = in_terminal(["runs", str(runs)], None, width=width)
        assert_whole_runs_table(text, names, width)
        assert "status" in text


@pytest.mark.slow
def test_runs_of_a_study_prints_its_table_with_columns_0(tmp_path):
    study = write_study(tmp_path / "study")
    for text in (piped(["runs", str(study)], "0"), in_terminal(["runs", str(study)], "0")):
        assert "best: trial #" in text and "state" in text and "finished" in text


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished one-epoch digits run."""
    folder = tmp_path_factory.mktemp("trained")
    preset = write_preset(folder, digits_preset(name="wide", epochs=1, batch=64))
    result = tfbench_here("run", preset, "--runs-dir", folder / "runs", "--quiet")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (folder / "runs").iterdir()
    return run_dir


@pytest.mark.slow
def test_predict_prints_its_report_with_columns_0(trained_run):
    for text in (piped(["predict", str(trained_run)], "0"), in_terminal(["predict", str(trained_run)], "0")):
        assert "validation:" in text and "accuracy" in text and "confusion matrix" in text
