"""What the engine costs: `tfbench run`'s Run against a plain `model.fit` of the same model and data.

All sides train the same freshly built model (same seed: the Functional model `build.build_model`
makes, blocks included — `--preset digits-resnet`'s Residual blocks — so the plain side is a plain
Functional `model.fit`) on the same already-loaded DataBundle, with the Experiment's own Keras
callbacks (EarlyStopping…) as a plain script would have them, in one process, interleaved round by
round (the order rotates so the machine's drift hits every side). Times are per epoch trained (an
EarlyStopping may end a side early). Two baselines:

- plain: `model.fit(train, validation_data=validation, epochs=E)`, the call a user writes.
- plain, fed as the Run feeds: the splits repeated, with `steps_per_epoch` / `validation_steps`,
  which keeps one iterator per split for the whole fit (the Run does this: a new iterator every
  epoch costs a small model several per cent). Against this one the ratio is the engine's
  bookkeeping alone: its EventCallback, event log, history.csv, checkpoints (last, best, backup)
  and system sampler.

Throughput is measured in the steady state: a probe callback, first in every side's list, notes
when each epoch begins, and an epoch's time is from its beginning to the next one's — so every
callback's epoch-end work (the engine's events, history.csv, checkpoints) is inside it, while the
first epoch (tracing the train function, the same fixed cost on every side) is left out. Reported:
each side's median epoch time and samples/s, the median of the per-round ratios (each round's runs
are adjacent in time, so the machine's drift disturbs them least: the headline figure), and, for
the record, the Run's whole `train()` per epoch (run directory, tracing, initial and final
checkpoints, final model, exports). Target: engine ≥ 0.98× plain.

With `--track`, a fourth side is the engine mirroring the run as `[track]` asks (TensorBoard files
and an MLflow SQLite store in a temporary folder), and the headline is its epoch time against the
engine's alone (target: mirroring costs ≤ 2 %).

Usage:
    python benchmarks/overhead.py [--preset shapes-cnn] [--epochs 5] [--rounds 7] [--set K=V ...]
    python benchmarks/overhead.py --preset digits-resnet --epochs 8 --rounds 9
    python benchmarks/overhead.py --preset digits-cnn --epochs 12 --rounds 9 --track
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
    parser.add_argument(
        "--track", action="store_true", help="Also time the engine mirroring to TensorBoard and MLflow."
    )
    args = parser.parse_args()

    import gc

    import tensorflow as tf

    from tfbench import build, data
    from tfbench.engine.run import Run
    from tfbench.spec import load_experiment

    exp = load_experiment(args.preset, [f"train.epochs={args.epochs}", *args.overrides])
    info = data.describe(exp.data, exp.train.seed)
    bundle = data.load(exp.data, exp.train.seed, one_hot=build.needs_one_hot(exp, info))

    # Plain fit gets the data as the Run feeds it (each split repeated, with its steps per epoch),
    # so the ratio is the engine's bookkeeping alone, not its way of feeding data.
    val_steps = int(tf.data.experimental.cardinality(bundle.validation))
    fed = dict(
        x=bundle.train.repeat(),
        steps_per_epoch=bundle.steps_per_epoch,
        validation_data=bundle.validation.repeat(),
        validation_steps=val_steps,
    )

    def fresh_model():
        build.apply_seed(exp.train)
        return build.build_model(exp, bundle.info)

    def own_callbacks(folder: str) -> list:
        """The Experiment's own Keras callbacks (EarlyStopping…), as a plain script would have them."""
        import keras

        made = []
        for c in exp.train.callbacks:
            kwargs = dict(c.args)
            if c.type == "BackupAndRestore":
                continue  # the engine's own backup stands in for it on both sides
            if c.type in ("ModelCheckpoint", "CSVLogger", "TensorBoard"):
                key = {"ModelCheckpoint": "filepath", "CSVLogger": "filename", "TensorBoard": "log_dir"}[c.type]
                kwargs.setdefault(
                    key, os.path.join(folder, f"{c.type}.keras" if c.type == "ModelCheckpoint" else c.type)
                )
            made.append(getattr(keras.callbacks, c.type)(**kwargs))
        return made

    import keras

    class EpochClock(keras.callbacks.Callback):
        """Notes when each epoch begins; the steady-state epoch times are the gaps after the first."""

        def __init__(self):
            super().__init__()
            self.begins: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.begins.append(time.perf_counter())

        def on_train_end(self, logs=None):
            self.begins.append(time.perf_counter())

        def steady(self) -> float:
            gaps = [b - a for a, b in zip(self.begins[1:], self.begins[2:])]
            return statistics.median(gaps) if gaps else float("nan")

    def plain(feed: dict) -> tuple[float, float]:
        model = fresh_model()
        clock = EpochClock()
        with tempfile.TemporaryDirectory() as folder:
            callbacks = [clock, *own_callbacks(folder)]
            gc.collect()
            t0 = time.perf_counter()
            model.fit(**feed, epochs=args.epochs, callbacks=callbacks, verbose=0, shuffle=False)
            return clock.steady(), time.perf_counter() - t0

    def engine(runs_dir: str, experiment=exp) -> tuple[float, float]:
        clock = EpochClock()
        run = Run(experiment, runs_dir=runs_dir, extra_callbacks=[clock])
        run.prepare(bundle=bundle, model=fresh_model())
        gc.collect()
        t0 = time.perf_counter()
        status = run.train()
        wall = time.perf_counter() - t0
        assert status in ("completed", "early_stopped"), run.reason
        return clock.steady(), wall / max(1, run.completed_epochs)

    naive = dict(x=bundle.train, validation_data=bundle.validation)
    with tempfile.TemporaryDirectory() as runs_dir:
        sides = {
            "plain": lambda: plain(naive),
            "plain, fed as the Run": lambda: plain(fed),
            "engine": lambda: engine(runs_dir),
        }
        if args.track:
            tracked = exp.copy_with(["track.tensorboard=true", f'track.mlflow="sqlite:///{runs_dir}/mlflow.db"'])
            sides["engine + track"] = lambda: engine(runs_dir, tracked)
            sides["engine + track"]()  # warm-up: MLflow's import and its database's tables, once
        names = list(sides)
        epoch_s = {k: [] for k in names}
        end_to_end: list[float] = []
        plain(naive), plain(fed)  # warm-up: first-use costs of TensorFlow and the data pipeline
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                seconds, other = sides[name]()
                epoch_s[name].append(seconds)
                if name == "engine":
                    end_to_end.append(other)
            print(
                f"round {i + 1}: " + "  ".join(f"{n} {epoch_s[n][-1] * 1000:.1f} ms/epoch" for n in names), flush=True
            )

    med = statistics.median
    samples = int(bundle.info.sizes["train"])
    print(f"\n{exp.name}: {args.epochs} epochs of {samples} samples, {args.rounds} rounds, steady-state epochs")
    for name in names:
        print(f"{name:24s} {med(epoch_s[name]) * 1000:8.1f} ms/epoch {samples / med(epoch_s[name]):10,.0f} samples/s")
    for base in names[:2]:
        paired = med([b / e for b, e in zip(epoch_s[base], epoch_s["engine"])])
        print(f"engine vs {base}: {paired:.3f}x (median of per-round ratios)")
    if args.track:
        paired = med([t / e for t, e in zip(epoch_s["engine + track"], epoch_s["engine"])])
        print(f"engine + track vs engine: {paired:.3f}x epoch time (median of per-round ratios; ≤ 1.02)")
    print(
        f"the Run's whole train(), per epoch: {med(end_to_end) * 1000:.1f} ms "
        f"({med(epoch_s['plain, fed as the Run']) / med(end_to_end):.3f}x the steady plain epoch)"
    )


if __name__ == "__main__":
    main()
