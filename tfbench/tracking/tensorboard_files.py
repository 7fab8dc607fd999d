"""TensorBoard's event files: writing a run's epochs into them, and reading any log back — without
TensorFlow.

The layout is the one Keras' own TensorBoard callback writes, so TensorBoard overlays training and
validation curves as it always does: `LOGDIR/train` holds `epoch_loss`, `epoch_accuracy`, …,
`epoch_learning_rate`, and `LOGDIR/validation` the `val_` metrics under the same tags. The step of
an epoch is its number (1 for the first, as in `history.csv`). A profiler trace goes to
`LOGDIR/train/plugins/profile/<stamp>/`, where TensorBoard's profile plugin looks for it.

Writing and reading use the `tensorboard` package (`pip install 'tfbench[tensorboard]'`): its
pure-Python event-file writer, its scalar protobufs and its event multiplexer.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import types
from pathlib import Path
from typing import Any

TRAIN_RUN = "train"
VALIDATION_RUN = "validation"
TAG_PREFIX = "epoch_"
LEARNING_RATE_TAG = "epoch_learning_rate"
VALIDATION_RUNS = (VALIDATION_RUN, "val", "eval", "evaluation")
NOT_METRICS = ("epoch", "lr", "seconds")
INSTALL_HINT = "pip install 'tfbench[tensorboard]'"


def without_tensorflow() -> None:
    """Make the `tensorboard` package use its own stand-in for TensorFlow.

    TensorBoard imports TensorFlow for file access when it can, which takes seconds and hundreds
    of megabytes; a process that has not imported TensorFlow (the workbench, `tfbench runs
    export`) reads and writes event files without it. The `notf` module is TensorBoard's own switch
    for this (its `no_tensorflow` build provides it).
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def tag_for(key: str) -> tuple[str, str]:
    """(run, tag) of a history column: `val_loss` → (`validation`, `epoch_loss`), `lr` → the rate."""
    if key == "lr":
        return TRAIN_RUN, LEARNING_RATE_TAG
    if key.startswith("val_"):
        return VALIDATION_RUN, TAG_PREFIX + key[len("val_") :]
    return TRAIN_RUN, TAG_PREFIX + key


def key_for(run: str, tag: str) -> str:
    """The history column of a (run, tag) pair; the inverse of `tag_for`, for any TensorBoard log."""
    name = tag[len(TAG_PREFIX) :] if tag.startswith(TAG_PREFIX) else tag
    if tag == LEARNING_RATE_TAG:
        return "lr"
    if run in ("", ".", TRAIN_RUN):
        return name
    if run in VALIDATION_RUNS:
        return f"val_{name}"
    return f"{run}/{name}"


class TensorBoardWriter:
    """Epoch scalars into `LOGDIR/train` and `LOGDIR/validation`, the way Keras' callback lays them out.

    Args:
        logdir: the log folder (created).
        flush_seconds: how often the writer's own thread flushes to disk.
    """

    def __init__(self, logdir: str | Path, flush_seconds: float = 5.0):
        without_tensorflow()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.logdir = Path(logdir)
        self._writers = {
            run: EventFileWriter(str(self.logdir / run), flush_secs=flush_seconds)
            for run in (TRAIN_RUN, VALIDATION_RUN)
        }

    def epochs(self, rows: list[dict[str, Any]], wall_times: list[float] | None = None) -> None:
        """Write history rows (`{"epoch": 3, "loss": …, "val_loss": …, "lr": …}`) as scalars."""
        from tensorboard.compat.proto import event_pb2
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        for i, row in enumerate(rows):
            wall = wall_times[i] if wall_times else 0.0
            for key, value in row.items():
                if (key in NOT_METRICS and key != "lr") or not _number(value):
                    continue
                run, tag = tag_for(key)
                event = event_pb2.Event(wall_time=wall, step=int(row["epoch"]), summary=scalar_pb(tag, float(value)))
                self._writers[run].add_event(event)

    def trace(self, trace: str | Path) -> Path:
        """Copy a profiler trace where TensorBoard's profile plugin finds it; returns the copy."""
        trace = Path(trace)
        target = self.logdir / TRAIN_RUN / "plugins" / "profile" / trace.parent.name / trace.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trace, target)
        return target

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# -- reading -------------------------------------------------------------------------------------------


def read_scalars(logdir: str | Path) -> dict[str, dict[int, float]]:
    """Every scalar series of a TensorBoard log folder, by history column and step.

    Runs (sub-folders) and tags map back to columns with `key_for`; tensors that are not single
    numbers (images, histograms) are left out.

    Raises:
        ImportError: the tensorboard package is not installed.
    """
    without_tensorflow()
    multiplexer_module = importlib.import_module("tensorboard.backend.event_processing.plugin_event_multiplexer")
    from tensorboard.util import tensor_util

    multiplexer = multiplexer_module.EventMultiplexer(tensor_size_guidance={"scalars": 0, "tensors": 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    series: dict[str, dict[int, float]] = {}
    for run, tags in multiplexer.Runs().items():
        for tag in tags.get("tensors", []):
            for point in multiplexer.Tensors(run, tag):
                value = tensor_util.make_ndarray(point.tensor_proto)
                if value.size != 1 or value.dtype.kind not in "fiu":
                    break
                series.setdefault(key_for(run, tag), {})[int(point.step)] = float(value.reshape(()))
    return series


def scalars_as_history(series: dict[str, dict[int, float]]) -> list[dict[str, Any]]:
    """Scalar series as history rows, one per step. Steps counted from 0 (Keras' callback) become
    epochs counted from 1, as tfbench writes them."""
    steps = sorted({step for values in series.values() for step in values})
    shift = 1 if steps and steps[0] == 0 else 0
    return [
        {"epoch": step + shift, **{key: values[step] for key, values in series.items() if step in values}}
        for step in steps
    ]
