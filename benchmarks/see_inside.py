"""How long the augmentation preview and Grad-CAM take, cold and warm (not a test).

Each round starts a fresh interpreter and warms TensorFlow up as the workbench does at start
(`EngineCalls.warm_up`: the imports and the first tensor, before any preview is asked for); then it
times, as the workbench does:

- preview cold: the first 8-variant preview of a `builtin:shapes` sample through RandomFlip,
  RandomRotation and RandomZoom (describing the data, building the layers, running them eagerly);
- preview warm: a re-roll once the layers are traced (`EngineCalls.ready_rerolls`), median of 10;
- Grad-CAM cold: loading a trained `shapes-cnn` run's model and explaining its first validation
  image (top classes, heat map, activations); Grad-CAM warm: the next images, median of 10.

The figures are medians over rounds. A `shapes-cnn` run is trained for 3 epochs first unless --run
names one.

    .venv/bin/python benchmarks/see_inside.py [--rounds 5] [--run runs/shapes-cnn-…]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, statistics, sys, time
from tfbench.engine_calls import EngineCalls
EngineCalls().warm_up()  # what the workbench does at start, before anyone asks for a preview
from tfbench.spec import experiment_from_dict

exp = experiment_from_dict({
    "name": "bench", "data": {"source": "builtin:shapes", "validation_split": 0.2},
    "model": {"layers": [
        {"type": "RandomFlip", "mode": "horizontal"}, {"type": "RandomRotation", "factor": 0.1},
        {"type": "RandomZoom", "height_factor": 0.1}, {"type": "Conv2D", "filters": 8, "kernel_size": 3},
        {"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}]},
    "train": {"seed": 42}})
calls = EngineCalls()
start = time.perf_counter(); calls.augment(exp, 0, 0); cold = time.perf_counter() - start
calls.ready_rerolls(exp)
warm = []
for roll in range(1, 11):
    start = time.perf_counter(); calls.augment(exp, 0, roll); warm.append(time.perf_counter() - start)
start = time.perf_counter(); calls.explain(sys.argv[1], "validation", 0); cam_cold = time.perf_counter() - start
cam_warm = []
for index in range(1, 11):
    start = time.perf_counter(); calls.explain(sys.argv[1], "validation", index)
    cam_warm.append(time.perf_counter() - start)
print(json.dumps({"preview_cold": cold, "preview_warm": statistics.median(warm),
                  "gradcam_cold": cam_cold, "gradcam_warm": statistics.median(cam_warm)}))
"""


def train(folder: Path) -> Path:
    """A `shapes-cnn` run directory trained for 3 epochs, as tests/test_export.py's `make_run` makes one."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_export import make_run

    return make_run(folder / "shapes-cnn-bench", "shapes-cnn", epochs=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--run", type=Path, default=None, help="a trained shapes-cnn run directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = args.run or train(Path(folder))
        rounds = []
        for _ in range(args.rounds):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(run)], capture_output=True, text=True, cwd=REPO, check=True
            )
            rounds.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(f"{key:>13}: median {statistics.median(values) * 1000:7.1f} ms  (max {max(values) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
