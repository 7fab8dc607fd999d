"""What the engine costs: `tfbench run`'s Run against a plain `model.fit` of the same model and data.

Both train the same freshly built model (same seed) on the same already-loaded DataBundle, in one
process, interleaved round by round (the order alternates so drift hits both), and the medians are
compared; so is the median of each round's own ratio, which drift disturbs least. Two ratios
are reported:

- fit throughput: samples per second inside `model.fit` — the Run's with its EventCallback, event
  log, history.csv, per-epoch checkpoints (last, best, backup) and system sampler; the plain one
  with nothing. This is the ratio the engine is held to (target ≥ 0.98).
- end to end: the Run's whole `train()` (run directory, initial checkpoint, final model, exports)
  against the plain fit alone, for the record.

Usage:
    python benchmarks/overhead.py [--preset shapes-cnn] [--epochs 5] [--rounds 7] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="shapes-cnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    import gc

    from tfbench import build, data
    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment

    exp = load_experiment(args.preset, [f"train.epochs={args.epochs}", *args.overrides])
    info = data.describe(exp.data, exp.train.seed)
    bundle = data.load(exp.data, exp.train.seed, one_hot=build.needs_one_hot(exp, info))
    samples = int(bundle.info.sizes["train"]) * args.epochs

    def fresh_model():
        build.apply_seed(exp.train)
        return build.build_model(exp, bundle.info)

    def plain() -> tuple[float, float]:
        model = fresh_model()
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(bundle.train, validation_data=bundle.validation, epochs=args.epochs, verbose=0, shuffle=False)
        return time.perf_counter() - t0, time.process_time() - c0

    def engine(runs_dir: str) -> tuple[float, float, float]:
        run = Run(exp, runs_dir=runs_dir)
        run.prepare(bundle=bundle, model=fresh_model())
        gc.collect()
        t0 = time.perf_counter()
        status = run.train()
        wall = time.perf_counter() - t0
        assert status == "completed", run.reason
        return run.fit_seconds, run.fit_cpu_seconds, wall

    plain_s, plain_cpu, fit_s, fit_cpu, wall_s = [], [], [], [], []
    with tempfile.TemporaryDirectory() as runs_dir:
        plain()  # warm-up: first-use costs of TensorFlow and the data pipeline
        for i in range(args.rounds):
            if i % 2 == 0:
                p, pc = plain()
                f, fc, w = engine(runs_dir)
            else:
                f, fc, w = engine(runs_dir)
                p, pc = plain()
            for series, value in ((plain_s, p), (plain_cpu, pc), (fit_s, f), (fit_cpu, fc), (wall_s, w)):
                series.append(value)
            print(f"round {i + 1}: plain {p:.3f}s (cpu {pc:.3f}s)  engine fit {f:.3f}s (cpu {fc:.3f}s)  "
                  f"engine end-to-end {w:.3f}s", flush=True)

    med = statistics.median
    p, f, w = med(plain_s), med(fit_s), med(wall_s)
    print(f"{exp.name}: {samples} samples per training ({args.epochs} epochs), {args.rounds} rounds, medians")
    print(f"plain model.fit      {p:.3f}s  {samples / p:,.0f} samples/s")
    print(f"engine (inside fit)  {f:.3f}s  {samples / f:,.0f} samples/s  ratio {p / f:.3f}")
    print(f"engine (end to end)  {w:.3f}s  {samples / w:,.0f} samples/s  ratio {p / w:.3f}")
    print(f"CPU seconds inside fit: plain {med(plain_cpu):.3f}s, engine {med(fit_cpu):.3f}s, "
          f"ratio {med(plain_cpu) / med(fit_cpu):.3f}")
    # Each round's two trainings ran back to back, so their ratio is the least disturbed by the
    # machine's drift; the median of those is the headline figure.
    paired = med([pl / en for pl, en in zip(plain_s, fit_s)])
    print(f"median of per-round ratios (inside fit): {paired:.3f}")


if __name__ == "__main__":
    main()
