"""Very long event logs, written fast, for the tests and benchmark that read them.

`write_long_run` leaves a run directory as a long finished (or killed) run leaves it: its
`experiment.toml`, an `events.jsonl` of the requested size (mostly `batch` events, with the epoch
bookkeeping, system samples and checkpoints a real run writes), `history.csv`, a backup of its last
epoch and a `model.keras` archive. Lines are formatted from templates, not `json.dumps`, so a
200 MB log takes seconds to write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tfbench.engine.events import encode
from tfbench.rundir import write_history
from tfbench.spec import experiment_from_dict, parse_toml

STEPS = 1000
START = 1_800_000_000.0

BATCH = (
    '{{"event":"batch","time":{t:.3f},"v":1,"epoch":{epoch},"step":{step},"steps":{steps},'
    '"logs":{{"loss":{loss:.6f},"accuracy":{acc:.6f}}},"samples_per_sec":3200.0,"step_seconds":0.01}}\n'
)
SYSTEM = (
    '{{"event":"system","time":{t:.3f},"v":1,"cpu_percent":150.0,"rss_mb":900.0,"ram_used_mb":4000.0,'
    '"ram_total_mb":8000.0,"gpus":[],"tf_memory":{{}}}}\n'
)

EXPERIMENT = """name = "long"
[data]
source = "builtin:digits"
batch_size = 64
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Dense"
units = 10
activation = "softmax"
[train]
epochs = {epochs}
optimizer = {{ type = "Adam", learning_rate = 0.001 }}
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
seed = 5
"""


def _epoch_lines(epoch: int, epochs: int, t: float) -> tuple[str, float, dict[str, float]]:
    """One epoch's lines (its start, its batches with system samples, its end and checkpoint)."""
    parts = [encode({"event": "epoch_started", "time": t, "v": 1, "epoch": epoch, "epochs": epochs}) + "\n"]
    loss = 2.0
    for step in range(1, STEPS + 1):
        t += 0.01
        loss = 2.0 / (1 + ((epoch - 1) * STEPS + step) / 5000)
        parts.append(BATCH.format(t=t, epoch=epoch, step=step, steps=STEPS, loss=loss, acc=1 - loss / 2.5))
        if step % 200 == 0:
            parts.append(SYSTEM.format(t=t))
    logs = {"loss": loss, "accuracy": 1 - loss / 2.5, "val_loss": loss * 1.1, "val_accuracy": 1 - loss / 2.4}
    ended = {"event": "epoch_ended", "time": t, "v": 1, "epoch": epoch, "logs": logs, "lr": 0.001, "seconds": 10.0}
    checkpoint = {"event": "checkpoint", "time": t, "v": 1, "kind": "last", "path": "checkpoints/last.keras"}
    parts += [encode(ended) + "\n", encode({**checkpoint, "epoch": epoch}) + "\n"]
    return "".join(parts), t, logs


def write_long_run(run_dir: Path, megabytes: float, ended: bool = True) -> Path:
    """Write a long run of about `megabytes` of event log into `run_dir` (created); returns it.

    Args:
        run_dir: the run directory to write.
        megabytes: the event log's size, roughly (whole epochs of 1,000 batches, ~0.17 MB each).
        ended: end the log with `run_ended` (completed); else it stops as a killed runner's does.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    epochs = max(1, round(megabytes / 0.173))
    text = EXPERIMENT.format(epochs=epochs)
    (run_dir / "experiment.toml").write_text(text, encoding="utf-8")
    experiment = experiment_from_dict(parse_toml(text)).to_dict()  # as a run logs it
    model = {"layers": [], "total_params": 650, "trainable_params": 650}
    started = dict(event="run_started", time=START, v=1, experiment=experiment, run_dir=str(run_dir), model=model)
    started.update(data={}, steps_per_epoch=STEPS, epochs=epochs, initial_epoch=0, pid=None, resumed=False)
    history, t = [], START
    with open(run_dir / "events.jsonl", "w", encoding="utf-8") as handle:
        handle.write(encode(started) + "\n")
        for epoch in range(1, epochs + 1):
            text, t, logs = _epoch_lines(epoch, epochs, t)
            handle.write(text)
            history.append({"epoch": epoch, **logs, "lr": 0.001, "seconds": 10.0})
        if ended:
            best = {"monitor": "val_loss", "mode": "min", "epoch": epochs, "value": history[-1]["val_loss"]}
            end = dict(event="run_ended", time=t + 1, v=1, status="completed", reason="", epochs_completed=epochs)
            end.update(epochs=epochs, best=best, final=history[-1], artifacts={}, seconds=t + 1 - START)
            handle.write(encode(end) + "\n")
    write_history(run_dir, history)
    backup = run_dir / "checkpoints" / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"weights")
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": epochs}), encoding="utf-8")
    if ended:
        with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:
            archive.writestr("metadata.json", "{}")
    return run_dir


# A small launcher measures the command: a process's peak resident memory counts what it held before
# `exec`, so a child forked straight from a big test process (TensorFlow loaded) would report that.
LAUNCHER = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(child.pid, 0); "
    "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')"
)


def peak_rss(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 600
) -> tuple[int, str, str, float]:
    """Run a command (stdout and stderr pipes): its exit code, output, error output and peak resident MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )
        code, kib = report.read().split()
    return int(code), done.stdout, done.stderr, int(kib) / 1024  # ru_maxrss is in KiB on Linux
