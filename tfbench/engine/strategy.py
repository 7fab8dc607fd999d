"""Which `tf.distribute` strategy a run trains under, and who writes the run directory.

Without a UI; TensorFlow is imported inside the functions, so importing this module is instant.

`train.strategy` picks one of:

- `"auto"`: `MirroredStrategy` when more than one GPU is visible, else TensorFlow's default strategy.
- `"default"`: the default (single-device) strategy.
- `"mirrored"`: `MirroredStrategy` over every GPU of the box, or over the logical CPU devices
  when there is no GPU (see `split_cpu`; this is how a laptop or a test exercises the mirrored path).
- `"multi_worker"`: `MultiWorkerMirroredStrategy` across machines described by the `TF_CONFIG`
  environment variable. TensorFlow requires it to be created at the start of the program, before
  any other TensorFlow op, and every worker runs the same Experiment.

Batch size is global. `DataSpec.batch_size` is the number of samples one optimizer step consumes
across all replicas, so the engine must batch its `tf.data` pipeline with `batch_size` unchanged
and build, compile and fit the model inside `strategy.scope()`; tf.distribute splits each global
batch into `batch_size / num_replicas_in_sync` per replica (`replica_batch_size`). Steps per epoch
are therefore `ceil(samples / batch_size)` whatever the strategy, and a preset gives the same
optimisation on one device or eight. Learning rates need no scaling for the same reason.

Under multi-worker training every worker must feed data that tf.distribute can shard: pipelines
built from in-memory tensors must use the DATA auto-shard policy (`with_data_sharding`), since the
default FILE policy needs file-based sources. Only the chief (`is_chief`) writes the run
directory: Keras 3's `.keras` and `.weights.h5` saving reads this worker's copy of the mirrored
variables and runs no collective, so the chief saves alone while the others go on. Anything every
worker must write (Keras' `BackupAndRestore` state, for example) goes to `worker_dir`, which is the
run directory for the chief and a scratch folder for the others, so two workers sharing a disk
never write the same files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfbench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import tensorflow as tf

    from tfbench.spec import TrainSpec

LOCATION = "train.strategy"
TF_CONFIG_HINT = (
    'set TF_CONFIG on every worker, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/]+):\d{1,5}$")


def make_strategy(train: TrainSpec) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy `train.strategy` asks for.

    Args:
        train: the training section; only `strategy` is read.

    Returns:
        A strategy; build, compile and fit the model inside its `scope()`.

    Raises:
        UserError: at `train.strategy` when "multi_worker" has no usable TF_CONFIG, or
            "mirrored" finds no device to mirror over.
    """
    kind = getattr(train, "strategy", "auto") or "auto"
    if kind == "multi_worker":
        # Checked before importing TensorFlow: a bad TF_CONFIG is a user mistake, and TF's
        # own error for it is a traceback deep in the cluster resolver.
        parse_tf_config(required=True)
    import tensorflow as tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if not cpus:
            raise UserError("no device to mirror over", LOCATION)
        # NCCL (the GPU default) does not exist for CPUs; reduce through the first device.
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=cpus[0])
        )
    if kind == "multi_worker":
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot start multi-worker training: {error}", LOCATION, TF_CONFIG_HINT) from None
        _let_keras_fit_multi_worker()
        return strategy
    raise UserError(f"unknown strategy {kind!r}", LOCATION, "choose auto, default, mirrored or multi_worker")


def parse_tf_config(required: bool = False, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The cluster description in TF_CONFIG, checked.

    Args:
        required: raise when TF_CONFIG is not set (multi-worker training needs it).
        environ: where to read TF_CONFIG (default: `os.environ`).

    Returns:
        `{"cluster": {type: [address, ...]}, "task": {"type": str, "index": int}}`, or None when
        TF_CONFIG is unset and not required.

    Raises:
        UserError: at `train.strategy` when TF_CONFIG is required and missing, or is set but is
            not JSON, names no workers, has a malformed address, or a task outside the cluster.
    """
    environ = os.environ if environ is None else environ
    text = (environ.get("TF_CONFIG") or "").strip()
    if not text:
        if required:
            raise UserError(
                'strategy "multi_worker" needs the TF_CONFIG environment variable', LOCATION, TF_CONFIG_HINT
            )
        return None

    def bad(message: str) -> UserError:
        return UserError(f"TF_CONFIG {message}", LOCATION, TF_CONFIG_HINT)

    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise bad(f"is not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(config, dict):
        raise bad("must be a JSON object with 'cluster' and 'task'")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise bad("has no 'cluster' mapping job names to address lists")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise bad(f"cluster.{job} must be a non-empty list of 'host:port' addresses")
        for address in addresses:
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise bad(f"cluster.{job} has {address!r}, which is not 'host:port'")
    if not any(job in cluster for job in ("worker", "chief")):
        raise bad("names no 'worker' (or 'chief') in its cluster")
    task = config.get("task")
    if not isinstance(task, dict):
        raise bad("has no 'task' saying which member of the cluster this process is")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise bad(f"task.type {task_type!r} is not a job of the cluster ({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise bad(f"task.index {index!r} is outside cluster.{task_type} (0..{len(cluster[task_type]) - 1})")
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


def is_chief(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes the run directory: the chief, or worker 0 when there is none.

    Without TF_CONFIG (or with one that cannot be read; `make_strategy` reports that) the process
    trains alone and is its own chief.

    Args:
        environ: where to read TF_CONFIG (default: `os.environ`).
    """
    try:
        config = parse_tf_config(environ=environ)
    except UserError:
        return True
    if config is None:
        return True
    task_type, index = config["task"]["type"], config["task"]["index"]
    if "chief" in config["cluster"]:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def worker_dir(run_dir: str | Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where this process writes what every worker writes: the run dir for the chief, else scratch.

    Two workers writing one directory (on a shared disk, or one box in tests) would corrupt it.
    The caller deletes a non-chief folder when the run ends.

    Args:
        run_dir: the run directory the chief writes.
        environ: where to read TF_CONFIG (default: `os.environ`).
    """
    if is_chief(environ):
        return Path(run_dir)
    config = parse_tf_config(environ=environ) or {"task": {"type": "worker", "index": 0}}
    task = config["task"]
    return Path(tempfile.mkdtemp(prefix=f"tfbench-{task['type']}{task['index']}-"))


def split_cpu(n: int = 2) -> None:
    """Split the CPU into `n` logical devices, so "mirrored" can mirror without GPUs.

    Must run before TensorFlow initialises its devices (before the first op or device query that
    initialises the runtime). Calling it again after the split, with the same or a smaller `n`,
    does nothing.

    Args:
        n: logical CPU devices wanted (at least 1).

    Raises:
        RuntimeError: TensorFlow's devices were initialised before the split.
    """
    import tensorflow as tf

    n = max(1, int(n))
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) >= n:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError as error:
        raise RuntimeError(f"split_cpu({n}) must run before TensorFlow initialises its devices ({error})") from None


def replica_batch_size(batch_size: int, strategy: Any) -> int:
    """The samples each replica sees per step for a global `batch_size` (the last batch may be short).

    Raises:
        UserError: at `data.batch_size` when it is smaller than the number of replicas, which
            would leave replicas without data.
    """
    replicas = int(getattr(strategy, "num_replicas_in_sync", 1) or 1)
    if batch_size < replicas:
        raise UserError(
            f"batch size {batch_size} is smaller than the {replicas} replicas training in sync",
            "data.batch_size",
            f"use at least {replicas} (the batch size is global, split across replicas)",
        )
    return batch_size // replicas


def with_data_sharding(dataset: Any) -> Any:
    """`dataset` with the DATA auto-shard policy, so every distributed worker can shard it.

    The default FILE policy needs a file-based source; in-memory pipelines (`from_tensor_slices`)
    would fail or warn under `MultiWorkerMirroredStrategy`. Harmless on one device.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def describe_strategy(strategy: Any) -> dict[str, Any]:
    """Plain data about a strategy for the run's record: its class, replicas and devices."""
    try:
        devices = strategy.extended.worker_devices
    except (AttributeError, RuntimeError):  # the default strategy has no device list
        devices = ()
    return {
        "type": type(strategy).__name__,
        "replicas": int(getattr(strategy, "num_replicas_in_sync", 1) or 1),
        "devices": [str(d) for d in devices],
    }


# -- Keras 3 under MultiWorkerMirroredStrategy --------------------------------------------------
#
# Keras 3's TensorFlow trainer fails `fit` under MultiWorkerMirroredStrategy across processes
# (keras-team/keras#20585, tensorflow/tensorflow#72388) in two places: before the first step it
# `strategy.reduce`s a whole (x, y) structure of per-replica batches just to learn their shapes,
# and after every step it reduces scalar metric results with `axis=0`, which a scalar lacks. Both
# wrappers below change nothing unless the strategy really spans several workers.

_KERAS_PATCHED = False


def _let_keras_fit_multi_worker() -> None:
    """Make Keras 3 `Model.fit`/`evaluate` work under multi-worker strategies (idempotent)."""
    global _KERAS_PATCHED
    if _KERAS_PATCHED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    multi_worker = getattr(tf_trainer, "_collective_all_reduce_multi_worker", None)
    original_reduce = getattr(tf_trainer, "reduce_per_replica", None)
    trainer_class = getattr(tf_trainer, "TensorFlowTrainer", None)
    original_build = getattr(trainer_class, "_maybe_symbolic_build", None)
    if multi_worker is None or original_reduce is None or trainer_class is None or original_build is None:
        return  # a Keras whose internals moved: presumably fixed upstream

    def local_batch(strategy: Any, value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> Any:
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and multi_worker(strategy) and iterator is not None and data_batch is None:
            # Only the shapes matter here: take this worker's first replica's batch.
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(lambda v: local_batch(strategy, v), next(batches))
                break
            return original_build(self, data_batch=data_batch)
        return original_build(self, iterator=iterator, data_batch=data_batch)

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction not in ("auto", "mean") or not multi_worker(strategy):
            return original_reduce(values, strategy, reduction)

        def mean(value: Any) -> Any:
            rank = local_batch(strategy, value).shape.rank
            return strategy.reduce("MEAN", value, axis=0 if rank else None)

        return tf.nest.map_structure(mean, values)

    trainer_class._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _KERAS_PATCHED = True


def training_bundle(experiment: Any, cache_dir: Path | None = None) -> Any:
    """The Experiment's data for training: its DataBundle, each split sharded per worker in
    multi-worker runs (their datasets are split by the strategy, not by tfbench); a file cache
    in `cache_dir` (the run's directory, a worker's own)."""
    from tfbench.rundir import load_bundle

    bundle = load_bundle(experiment, cache_dir)
    if experiment.train.strategy == "multi_worker":
        bundle.train = with_data_sharding(bundle.train)
        if bundle.validation is not None:
            bundle.validation = with_data_sharding(bundle.validation)
    return bundle


def fit_inputs(bundle: Any, steps_per_epoch: int | None, strategy: str) -> dict[str, Any]:
    """`fit`'s data: each split repeated, with its steps, when its length is known.

    Keras starts a new iterator over a finite dataset every epoch, and starting one runs the
    pipeline's functions' set-up again: ~15 ms per epoch on 2 cores, a tenth of a small model's
    epoch. Repeated, with `steps_per_epoch`/`validation_steps`, one iterator per split serves the
    whole `fit`; the epochs are the same batches. Multi-worker runs keep the finite datasets
    (their shards' lengths are not known here).
    """
    import tensorflow as tf

    inputs: dict[str, Any] = {"x": bundle.train, "validation_data": bundle.validation}
    if strategy == "multi_worker" or not steps_per_epoch:
        return inputs
    inputs.update(x=bundle.train.repeat(), steps_per_epoch=steps_per_epoch)
    if bundle.validation is not None:
        card = int(tf.data.experimental.cardinality(bundle.validation))
        if card > 0:
            inputs.update(validation_data=bundle.validation.repeat(), validation_steps=card)
    return inputs


def inputs_after(inputs: dict[str, Any], start: int) -> dict[str, Any]:
    """`fit_inputs` for the epochs after `start`: the repeated training split skips the batches of
    the epochs done, so each epoch gets the very batches, in the very order, it would have got
    had the run never stopped (a resumed run trains exactly like an uninterrupted one)."""
    inputs = dict(inputs)
    if start and "steps_per_epoch" in inputs:
        inputs["x"] = inputs["x"].skip(start * inputs["steps_per_epoch"])
    return inputs
