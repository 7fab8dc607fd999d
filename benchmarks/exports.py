"""Exports measured: Keras' int8/int4 on a Dense-heavy model, and whether latency figures repeat (not a test).

1. A Dense-heavy preset: shapes-mlp (784 → 256 → 256 → 3 on the bundled 28×28 shapes, offline)
   trained one epoch. Its `.keras` exported as Keras int8 and int4:
   size against the float `.keras` (targets: int8 ≥ 3.5× smaller with ≥ 99 % top-1 agreement,
   int4 ≥ 6×) and the accuracy change.
2. Latency repeatability: for each export of both that model and digits-cnn (keras, onnx,
   openvino, tflite, float and int8), the latency in the export's report — the median of at least
   50 single-thread single-sample runs over at least 0.5 s, after a warm-up — is measured a second time in a fresh
   runtime session the same way. The figure is the second median over the first (target within
   ±15 %). The load average is printed: on a shared machine it is what moves the numbers.

    .venv/bin/python benchmarks/exports.py [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

RUNS = (
    ("shapes-mlp", "shapes-mlp", []),
    ("digits-cnn", "digits-cnn", []),
)
EXPORTS = (("keras", "none"), ("keras", "int8"), ("keras", "int4"), ("onnx", "none"), ("onnx", "int8"))
EXPORTS += (("openvino", "none"), ("tflite", "none"), ("tflite", "int8"))


def train(folder: Path, preset: str, overrides: list[str]) -> Path:
    """One epoch of `preset`, saved as a run directory (the tests' own helper)."""
    from test_export import make_run

    return make_run(folder, preset, epochs=1, overrides=overrides)


def timing(run_dir: Path, report: dict) -> float:
    """The latency median of a fresh session of an export, measured as the exporter measures it."""
    from tfbench.data import rows
    from tfbench.export.latency import tensorflow_threads, time_calls
    from tfbench.export.reference import take_samples
    from tfbench.rundir import load_bundle, load_model, load_run_experiment

    bundle = load_bundle(load_run_experiment(run_dir))
    x, _ = take_samples(bundle.validation, 1)
    one = rows.take(x, 0, 1)
    path = run_dir / report["path"]
    fmt = report["format"]
    if fmt == "keras":
        model = load_model(path)
        from tfbench.export.keras_formats import traced_call

        return time_calls(traced_call(model, one), threads=tensorflow_threads())["latency_ms"]
    if fmt == "onnx":
        from tfbench.export.onnx import OnnxRunner

        runner = OnnxRunner(path)
        return time_calls(lambda: runner.run(one))["latency_ms"]
    if fmt == "openvino":
        from tfbench.export.openvino import OpenVinoRunner

        ov = OpenVinoRunner(path)
        return time_calls(lambda: ov.run(one))["latency_ms"]
    from tfbench.export.tflite import TFLiteRunner

    return TFLiteRunner(path, num_threads=1).latency_ms(one)["latency_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Keep the runs here (default: a temporary folder).")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfbench.export import export_model
    from tfbench.export.latency import single_thread_tensorflow

    single_thread_tensorflow()  # before anything runs, so Keras is timed on one thread like the rest
    folder = args.out or Path(tempfile.mkdtemp(prefix="tfbench-exports-"))
    print(f"{datetime.date.today()}  load average {os.getloadavg()[0]:.1f}  runs in {folder}")
    worst = 0.0
    for title, preset, overrides in RUNS:
        run_dir = train(folder / preset, preset, overrides)
        print(f"\n{title}")
        print(f"  {'export':16} {'size':>9} {'×':>5} {'agree':>7} {'Δmetric':>8} {'ms':>9} {'again':>9} {'ratio':>6}")
        for fmt, quantize in EXPORTS:
            report = export_model(run_dir, fmt, quantize=quantize)
            first, second = report["latency_ms"], timing(run_dir, report)
            ratio = second / first
            worst = max(worst, abs(ratio - 1))
            change = (report["export_metric"] or 0) - (report["keras_metric"] or 0)
            key = fmt if quantize == "none" else f"{fmt}-{quantize}"
            print(
                f"  {key:16} {report['size_bytes']:>9,} {report['size_ratio']:>5.2f} {report['agreement']:>7.1%} "
                f"{change:>+8.3f} {first:>9.4f} {second:>9.4f} {ratio:>6.2f}"
            )
    print(f"\nworst repeat: {worst:.0%} (target ≤ 15%)  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
