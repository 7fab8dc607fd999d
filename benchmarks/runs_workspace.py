"""The Runs screen with 1,000 run directories: first paint and a filter keystroke's repaint (not a test).

Makes 1,000 runs from the recorded runs in `tests/fixtures/runs_dir` (each with its own learning
rate, optimizer, filters, batch size, status and final metrics), then in a headless workbench:

- first paint: F5 pressed until the table holds every run and the screen has been painted, in a
  workbench started afresh each round. "cold" is the very first look (no runs index yet: every run's
  files are read); "from the index" is every later start (the runs as the index file in the cache
  folder holds them); "checked" is the same start until each run's file times have been looked at
  and the screen says the runs are read; "again" is F5 in the same workbench.
- keystroke: one character typed into the `/` filter until the table has been repainted, for each
  character of a realistic query (every prefix, including the unfinished terms that show an error).

Medians over rounds (and the slowest keystroke).

    .venv/bin/python benchmarks/runs_workspace.py [--runs 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from many_runs import make_runs  # noqa: E402

QUERY = "status:completed val_accuracy>0.9 train.optimizer.learning_rate>=1e-3"
SIZE = (120, 40)


async def painted(app: Any) -> None:
    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await done.wait()


async def first_paints(runs_dir: Path) -> tuple[float, float, float]:
    """Seconds from F5 to the painted table in a new workbench, to its runs checked, and to the table after F1."""
    from tfbench.app import make_app
    from tfbench.engine_calls import FixedEngineCalls
    from tfbench.screens.runs import RunsScreen
    from tfbench.widgets.rows_table import RowsTable

    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    times = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        for rounds in range(2):
            installed = app.get_screen("runs")
            before = installed.query_one(RowsTable).repaints if installed.is_mounted else 0
            start = time.perf_counter()
            press = asyncio.create_task(pilot.press("f5"))  # pressing waits for every message: watch meanwhile
            while not isinstance(app.screen, RunsScreen) or not app.screen.is_mounted:
                await asyncio.sleep(0.002)
            screen = app.screen
            table = screen.query_one(RowsTable)
            while table.repaints == before or len(table.rows) < 1000:
                await asyncio.sleep(0.002)
            await painted(app)
            times.append(time.perf_counter() - start)
            while not screen.scanned:
                await asyncio.sleep(0.002)
            await painted(app)
            if rounds == 0:
                times.append(time.perf_counter() - start)
            await press
            assert len(screen.shown) >= 1000
            await pilot.press("f1")
            await pilot.pause(0.2)
    return times[0], times[1], times[2]


async def keystrokes(runs_dir: Path) -> list[float]:
    """Seconds from each character typed into the filter to the repainted screen."""
    from textual.widgets import Input

    from tfbench.app import make_app
    from tfbench.engine_calls import FixedEngineCalls

    app = make_app("digits-cnn", runs_dir=runs_dir, engine_calls=FixedEngineCalls())
    times = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        screen = app.screen
        while not screen.scanned:
            await asyncio.sleep(0.01)
        await pilot.press("slash")
        await pilot.pause(0.3)
        field = screen.query_one("#prompt-input", Input)
        for ch in QUERY:
            before = screen.filter_updates
            start = time.perf_counter()
            field.insert_text_at_cursor(ch)
            while screen.filter_updates == before:
                await asyncio.sleep(0)
            await painted(app)
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)  # a fast typist's pace; the curves follow once the keys pause
        assert 0 < len(screen.shown) < 1000
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from tfbench.engine import runs_index

    with tempfile.TemporaryDirectory(prefix="tfbench-runs-") as tmp:
        os.environ["TFBENCH_CACHE_DIR"] = str(Path(tmp) / "cache")
        runs_dir = Path(tmp) / "runs"
        start = time.perf_counter()
        make_runs(runs_dir, args.runs)
        print(f"made {args.runs} runs in {time.perf_counter() - start:.1f} s")
        cold, indexed, checked, again = [], [], [], []
        for _ in range(args.rounds):
            runs_index._INDEXES.clear()  # a new process: no index in memory
            for path in Path(os.environ["TFBENCH_CACHE_DIR"]).glob("runs-index/*"):
                path.unlink()
            cold.append(asyncio.run(first_paints(runs_dir))[0])
            runs_index._INDEXES.clear()  # a new process: the index from its file
            first, read, second = asyncio.run(first_paints(runs_dir))
            indexed.append(first)
            checked.append(read)
            again.append(second)
        keys = []
        for _ in range(args.rounds):
            keys += asyncio.run(keystrokes(runs_dir))
    print(f"first paint, cold (no index yet): median {statistics.median(cold):.2f} s over {len(cold)} rounds")
    print(f"first paint, from the index file: median {statistics.median(indexed):.2f} s (max {max(indexed):.2f})")
    print(f"... its runs checked (file times): median {statistics.median(checked):.2f} s")
    print(f"F5 again in the same workbench:   median {statistics.median(again):.2f} s")
    ordered = sorted(keys)
    print(
        f"filter keystroke to repaint: median {statistics.median(keys) * 1000:.1f} ms, "
        f"p90 {ordered[int(0.9 * len(ordered))] * 1000:.1f} ms, max {max(keys) * 1000:.1f} ms "
        f"over {len(keys)} keystrokes ({len(QUERY)} characters × {args.rounds} rounds)"
    )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
