"""How long the workbench takes to paint its first screen, from process start (not a test).

Each round starts a fresh interpreter that opens the real workbench (default preset, real engine
calls) headless and records the moment the Model screen has been painted; TensorFlow must not be
on that path. The figure is the median over rounds, measured from just before the process was
spawned, so interpreter start-up and every import are included.

Beside each workbench round, a bare Textual app that paints a header, a table of a few rows and a
footer is started and timed the same way (interleaved, so both see the same machine); the ratio
workbench / bare app is computed per pair and its median reported (target ≤ 1.2).

    .venv/bin/python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MARKS = r"""
import os, sys, time
from pathlib import Path
marks = Path(sys.argv[1])

def mark(name):
    with open(marks, "a") as out:
        out.write(f"{name} {time.time()!r} {'tensorflow' in sys.modules}\n")
"""
"""Both children's start: `mark(name)` notes a moment (and whether TensorFlow is loaded) in the marks file."""

CHILD = (
    MARKS
    + r"""
from tfbench.app import make_app
from tfbench.screens.builder import BuilderScreen
mark("imported")

original = BuilderScreen.on_mount

def on_mount(self):
    original(self)
    def painted():
        mark("painted")
        self.app.exit()
    self.call_after_refresh(painted)

BuilderScreen.on_mount = on_mount
app = make_app(runs_dir=Path(sys.argv[2]))
app.run(headless=True, size=(100, 32))
mark("exited")
os._exit(0)  # do not wait for the background TensorFlow import to finish
"""
)


BARE = (
    MARKS
    + r"""
from textual.app import App
from textual.widgets import DataTable, Footer, Header
mark("imported")

class Bare(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("#", "layer", "output", "params")
        for i in range(8):
            table.add_row(str(i), "Dense", "(32,)", "1,056")
        def painted():
            mark("painted")
            self.exit()
        self.call_after_refresh(painted)

Bare().run(headless=True, size=(100, 32))
mark("exited")
os._exit(0)
"""
)


def one_round(runs_dir: str, child: str = CHILD) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".marks", delete=False) as handle:
        marks = Path(handle.name)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    start = time.time()
    subprocess.run(
        [sys.executable, "-c", child, str(marks), runs_dir],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    result = {}
    for line in marks.read_text().splitlines():
        name, when, tf_loaded = line.split()
        result[name] = float(when) - start
        result[f"{name}_tf"] = tf_loaded == "True"
    marks.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rounds, bare, ratios = [], [], []
    with tempfile.TemporaryDirectory() as runs_dir:
        one_round(runs_dir)  # warm the file cache; not counted
        one_round(runs_dir, BARE)
        for i in range(args.rounds):
            rounds.append(one_round(runs_dir))
            bare.append(one_round(runs_dir, BARE))
            r, b = rounds[-1], bare[-1]
            ratios.append(r["painted"] / b["painted"])
            print(
                f"round {i + 1}: imports {r['imported']:.3f}s, first paint {r['painted']:.3f}s "
                f"(bare Textual app {b['painted']:.3f}s, ratio {ratios[-1]:.2f}), "
                f"TensorFlow loaded before paint: {r['painted_tf']}"
            )
    imports = statistics.median(r["imported"] for r in rounds)
    painted = [r["painted"] for r in rounds]
    print(
        f"median over {len(rounds)} rounds: imports {imports:.3f}s, first paint {statistics.median(painted):.3f}s "
        f"(min {min(painted):.3f}s, max {max(painted):.3f}s) on {os.cpu_count()} CPUs"
    )
    print(
        f"bare Textual app (header, table, footer): first paint {statistics.median(b['painted'] for b in bare):.3f}s; "
        f"workbench / bare app, median of {len(ratios)} interleaved pairs: {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
