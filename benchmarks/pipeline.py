"""Is the input pipeline ever the bottleneck? Training steps/s from each tfbench pipeline vs. the
same batches already in memory, interleaved, medians of several rounds.

For every shipped preset the preset's own model trains on data of the preset's shapes: the real
bundled data for `builtin:` presets, and for the download presets synthetic data of the same
shapes and dtypes (uint8 images, int token ids, float tables) written as each kind of source
offline: npz files, a Keras cache, CSV files, image and text folders. The same full batches,
materialised as tensors (`Dataset.from_tensor_slices` of stacked batches — no map, cache,
shuffle or prefetch work left), are the baseline. Each round trains from each side
(alternating which goes first) in one `fit` of a few epochs, as a run does; the first fit of each
side is a warm-up (tracing, filling the cache) and is not counted. Both sides are fed as a tfbench Run
feeds them: repeated, with `steps_per_epoch`, so one iterator serves the whole fit.
`--per-epoch-iterators` fits the finite datasets instead, as a plain `fit` does: then each epoch
starts a new iterator on both sides, and a pipeline's start-up (~15 ms on 2 cores for a tf.data
graph with functions, against ~1 ms for ready tensors) shows on models whose epoch takes well
under a second. The reported ratio is the median of the rounds' pipeline/memory ratios
(each round's two measurements are adjacent in time, so they share the machine's load).

    python benchmarks/pipeline.py                 # all cases, 7 rounds of 3 epochs
    python benchmarks/pipeline.py --rounds 3 --only cifar --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tfbench.spec import load_experiment  # noqa: E402


def _synthetic(shape, dtype, classes, n, seed=0):
    """Random features and labels of a preset's shapes (labels learnable enough to keep losses finite)."""
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    elif dtype == "int32":
        x = rng.integers(1, 20000, (n, *shape)).astype(np.int32)
    else:
        x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n) if classes else rng.normal(2.0, 1.0, n).astype(np.float32)
    return x, y


def _write_png_folder(root: Path, x, y):
    import tensorflow as tf

    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / f"class{int(label)}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())


def cases(work: Path, batches: dict[str, int]) -> list[tuple[str, str, list[str]]]:
    """(case name, preset, overrides) for every pipeline measured; writes the synthetic sources."""
    out = []
    for preset in ("digits-cnn", "digits-mlp", "spiral-mlp", "shapes-cnn", "sine-rnn"):
        out.append((f"builtin  {preset}", preset, []))  # the real bundled data, whole epochs
    shapes = {
        "mnist-mlp": ((28, 28), "uint8", 10),
        "mnist-convnet": ((28, 28), "uint8", 10),
        "fashion-mnist-cnn": ((28, 28), "uint8", 10),
        "cifar10-cnn": ((32, 32, 3), "uint8", 10),
        "imdb-lstm": ((200,), "int32", 2),
        "california-housing": ((8,), "float32", 0),
    }
    keras_home = work / "keras-home"
    (keras_home / "datasets").mkdir(parents=True)
    for preset, (shape, dtype, classes) in shapes.items():
        exp = load_experiment(preset)
        n = batches[preset] * exp.data.batch_size
        x, y = _synthetic(shape if len(shape) != 2 else (*shape, 1), dtype, classes, n)
        options = exp.data.options
        keep = {k: v for k, v in options.items() if k in ("scale", "normalize", "label_scale")}
        keep_text = ", ".join(f"{k} = {json.dumps(v)}" for k, v in keep.items())
        path = work / f"{preset}.npz"
        np.savez(path, x=x, y=y)
        base: list[str] = []
        out.append(
            (f"npz      {preset}", preset, [f"data.source='npz:{path}'", f"data.options={{ {keep_text} }}", *base])
        )
        if preset == "mnist-convnet":  # Keras' own loader reading a cache folder
            np.savez(
                keras_home / "datasets" / "mnist.npz",
                x_train=x[..., 0],
                y_train=y,
                x_test=x[:10, ..., 0],
                y_test=y[:10],
            )
            out.append(
                (f"keras    {preset}", preset, [f"data.options={{ cache_dir = '{keras_home}', {keep_text} }}", *base])
            )
        if preset == "cifar10-cnn":
            _write_png_folder(work / "cifar-png", x, y)
            out.append(
                (f"images   {preset}", preset, [f"data.source='images:{work / 'cifar-png'}'", "data.options={}", *base])
            )
        if preset == "california-housing":
            lines = [",".join([f"f{i}" for i in range(8)] + ["price"])]
            lines += [",".join(f"{v:.5f}" for v in row) + f",{t:.5f}" for row, t in zip(x, y)]
            (work / "housing.csv").write_text("\n".join(lines) + "\n")
            out.append(
                (
                    f"csv      {preset}",
                    preset,
                    [
                        f"data.source='csv:{work / 'housing.csv'}'",
                        f"data.options={{ label = 'price', {keep_text} }}",
                        *base,
                    ],
                )
            )
        if preset == "imdb-lstm":
            words = np.array([f"w{i}" for i in range(3000)])
            root = work / "reviews"
            rng = np.random.default_rng(1)
            for i, label in enumerate(y):
                folder = root / ("pos" if label else "neg")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{i}.txt").write_text(" ".join(rng.choice(words, 230)))
            out.append(
                (
                    f"text     {preset}",
                    preset,
                    [f"data.source='text:{root}'", "data.options={ max_tokens = 20000, sequence_length = 200 }", *base],
                )
            )
    return out


def measure(name: str, preset: str, overrides: list[str], rounds: int, epochs: int = 3, repeat: bool = True) -> dict:
    import tensorflow as tf

    from tfbench import build, data

    exp = load_experiment(preset, overrides)
    spec = exp.data.model_copy(update={"validation_split": None, "validation": None, "test": None})
    info = data.describe(spec, exp.train.seed)
    bundle = data.load(spec, exp.train.seed, one_hot=build.needs_one_hot(exp, info))
    train = bundle.train
    # The baseline: the very same batches, already tensors in memory (the full ones: a partial
    # last batch cannot be stacked, so both sides train on the full batches only).
    batches = [b for b in train if int(b[0].shape[0]) == spec.batch_size]
    steps = len(batches)
    train = train.take(steps)
    memory = tf.data.Dataset.from_tensor_slices((tf.stack([b[0] for b in batches]), tf.stack([b[1] for b in batches])))
    build.apply_seed(exp.train)
    model = build.build_model(exp, bundle.info)
    sides = {"pipeline": train, "memory": memory}
    per_epoch = None
    if repeat:  # one iterator for the whole fit: no per-epoch start-up on either side
        sides = {k: v.repeat() for k, v in sides.items()}
        per_epoch = steps
    for ds in sides.values():  # warm-up: tracing, filling the cache
        model.fit(ds, epochs=1, steps_per_epoch=per_epoch, verbose=0)
    rates: dict[str, list[float]] = {"pipeline": [], "memory": []}
    ratios = []
    for r in range(rounds):
        order = ["pipeline", "memory"] if r % 2 == 0 else ["memory", "pipeline"]
        for side in order:
            start = time.perf_counter()
            model.fit(sides[side], epochs=epochs, steps_per_epoch=per_epoch, verbose=0)
            rates[side].append(epochs * steps / (time.perf_counter() - start))
        # Adjacent measurements share the machine's load at that moment: compare them pairwise.
        ratios.append(rates["pipeline"][-1] / rates["memory"][-1])
    pipe, mem = statistics.median(rates["pipeline"]), statistics.median(rates["memory"])
    return {
        "case": name,
        "steps": steps,
        "batch_size": spec.batch_size,
        "pipeline_steps_s": round(pipe, 2),
        "memory_steps_s": round(mem, 2),
        "ratio": round(statistics.median(ratios), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3, help="Epochs per timed fit (each side, each round).")
    parser.add_argument("--only", default="", help="Only cases whose name contains this.")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply the batches per epoch.")
    parser.add_argument(
        "--per-epoch-iterators",
        dest="repeat",
        action="store_false",
        help="Fit the finite datasets (a new iterator every epoch, as a plain `fit` does) "
        "instead of `dataset.repeat()` with steps_per_epoch, as a tfbench Run feeds them.",
    )
    parser.add_argument("--json", help="Also write the results to this file.")
    args = parser.parse_args()
    # Batches per epoch of the synthetic sources: about a second of training on 2 CPU cores.
    batches = {
        "mnist-mlp": 60,
        "mnist-convnet": 20,
        "fashion-mnist-cnn": 12,
        "cifar10-cnn": 12,
        "imdb-lstm": 6,
        "california-housing": 60,
    }
    batches = {k: max(2, int(v * args.scale)) for k, v in batches.items()}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, preset, overrides in cases(Path(tmp), batches):
            if args.only and args.only not in name:
                continue
            result = measure(name, preset, overrides, args.rounds, args.epochs, args.repeat)
            results.append(result)
            print(
                f"{result['case']:<30} {result['steps']:>4} steps  pipeline {result['pipeline_steps_s']:>8.2f}/s  "
                f"memory {result['memory_steps_s']:>8.2f}/s  ratio {result['ratio']:.3f}",
                flush=True,
            )
    worst = min(r["ratio"] for r in results)
    print(f"worst ratio {worst:.3f} (target >= 0.95); median {statistics.median(r['ratio'] for r in results):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
