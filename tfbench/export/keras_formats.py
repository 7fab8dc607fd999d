"""The `.keras` file and the SavedModel: writing and verifying them — without a UI; TensorFlow lazily.

A `.keras` export is verified by reloading it in Keras (its outputs must be identical to the model
written's, which is the run's model or its Keras-quantised copy); a SavedModel by loading it with
`tf.saved_model.load` and calling its `serving_default` signature, as a serving client would. Both
are timed one sample at a time, in TensorFlow's threads (one when `tfbench export` runs them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfbench.data import rows
from tfbench.data.column_names import by_serving_name
from tfbench.export.formats import ExportJob
from tfbench.export.latency import tensorflow_threads, time_calls
from tfbench.export.reference import Reference, predict_keras
from tfbench.native_log import captured_stderr
from tfbench.rundir import load_model


class KerasFile:
    """`keras`: the Keras v3 file, which loads in plain Keras."""

    def write(self, path: Path, job: ExportJob) -> None:
        job.model.save(str(path))

    def verify(self, path: Path, job: ExportJob) -> dict:
        return verify_keras(path, job.reference)

    def predictor(self, path: Path) -> Callable[[Any], Any]:
        """Scores inputs with the reloaded file."""
        model = load_model(path)
        return lambda x: predict_keras(model, x)


class SavedModelFolder:
    """`savedmodel`: a TensorFlow SavedModel whose `serving_default` runs the model in inference mode."""

    def write(self, path: Path, job: ExportJob) -> None:
        from tfbench.data.feature_space import serving_signature

        with captured_stderr():
            job.model.export(
                str(path), format="tf_saved_model", verbose=False, input_signature=serving_signature(job.model)
            )

    def verify(self, path: Path, job: ExportJob) -> dict:
        return verify_savedmodel(path, job.reference)

    def predictor(self, path: Path) -> Callable[[Any], Any]:
        """Scores inputs through the serving signature."""
        return savedmodel_predictor(path)


KERAS_FILE = KerasFile()
SAVED_MODEL = SavedModelFolder()


def verify_keras(path: Path, reference: Reference) -> dict:
    """Reload a `.keras` file and compare its outputs with the model it came from; `identical` says
    whether the reload reproduces the saved model's (the run's model or a quantised copy) exactly."""
    reloaded = load_model(path)
    outputs = predict_keras(reloaded, reference.x)
    checks = reference.compare(outputs)
    checks["identical"] = reference.identical(outputs)
    checks.update(time_calls(traced_call(reloaded, rows.take(reference.x, 0, 1)), threads=tensorflow_threads()))
    return checks


def traced_call(model: Any, one: Any) -> Callable[[], Any]:
    """A call of `model` on `one` sample through a traced function, as a served model runs.

    Timing eager calls measured Python's dispatch of every op instead: an LSTM's unrolled steps took
    seconds a call, so a `.keras` export's check took minutes and its latency said nothing of serving.
    The first (untimed warm-up) call traces it.
    """
    import tensorflow as tf

    sample = tf.nest.map_structure(tf.convert_to_tensor, one)
    serve = tf.function(lambda x: model(x, training=False))
    return lambda: serve(sample)


# -- SavedModel -------------------------------------------------------------------------------

SERVING_SIGNATURE = "serving_default"


def savedmodel_predictor(path: Path) -> Callable[[Any], Any]:
    """A function serving a SavedModel's default signature, as a client would call it.

    A model with several named inputs takes them by name; one with several outputs gives a dict of
    them by name (the signature's output names are the model's output names).
    """
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if SERVING_SIGNATURE not in loaded.signatures:
        raise RuntimeError(f"the SavedModel has no {SERVING_SIGNATURE!r} signature")
    specs = loaded.signatures[SERVING_SIGNATURE].structured_input_signature[1]

    def predict(x: Any) -> Any:
        serve = loaded.signatures[SERVING_SIGNATURE]  # read through `loaded`, so the function keeps it alive
        parts = []
        for i in range(0, rows.count(x), 256):
            batch = rows.take(x, i, i + 256)
            # a table's columns, or a model's named inputs, keyed as the signature names them
            named = by_serving_name(batch) if isinstance(batch, dict) else {name: batch for name in specs}
            result = serve(**{name: tf.constant(named[name], dtype=spec.dtype) for name, spec in specs.items()})
            several = len(result) > 1  # a model with several outputs: all of them, by name
            parts.append(rows.as_numpy(dict(result)) if several else np.asarray(next(iter(result.values()))))
        return rows.concatenate(parts)

    return predict


def verify_savedmodel(path: Path, reference: Reference) -> dict:
    """Load a SavedModel, call its serving signature and compare with Keras."""
    predict = savedmodel_predictor(path)
    checks = reference.compare(predict(reference.x))
    checks["signature"] = SERVING_SIGNATURE
    one = rows.take(reference.x, 0, 1)
    checks.update(time_calls(lambda: predict(one), threads=tensorflow_threads()))
    return checks
