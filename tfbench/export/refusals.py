"""Why a converter or a runtime refused an export, in one line a user can act on — no UI.

A file its runtime will not load must never be left as if it were an export: the exporter writes
into a staging folder and only moves a file into place once it loaded and verified, and every
refusal becomes one `UserError` naming the cause. The cause tfbench's own models meet most is a
table's preprocessing: its StringLookup layers have no ONNX (or OpenVINO) form, and the part after
the FeatureSpace exports fine with `--after-preprocessing`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tfbench.errors import UserError

LOOKUP_TYPES = ("StringLookup", "IntegerLookup", "Hashing", "TextVectorization")
"""Keras layers backed by TensorFlow hash tables or string ops, which ONNX and OpenVINO lack."""

_VERBS = {"convert": "cannot convert", "load": "refuses to load", "run": "fails to run"}
_NOISE = re.compile(r"^(Exception from |Check '|Traceback|\s*File |\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*)")


def lookup_layers(model: Any) -> list[str]:
    """`name (Type)` of every table-lookup layer inside `model`."""
    from tfbench.export.variants import all_layers

    return [
        f"{layer.name} ({type(layer).__name__})" for layer in all_layers(model) if type(layer).__name__ in LOOKUP_TYPES
    ]


_MISSING_OPS = (
    re.compile(r"No conversion rule found for operations?: ([^\n]+)"),  # OpenVINO's frontend
    re.compile(r"No Op registered for (\w+)"),  # ONNX Runtime
    re.compile(r"Unsupported ops: Counter\(\{([^}]+)\}"),  # tf2onnx
)


def cause(exc: BaseException, limit: int = 240) -> str:
    """What went wrong, in one line: the ops the runtime lacks when it says so, else the first
    meaningful line of its message, without stack or source paths."""
    text = str(exc)
    for pattern in _MISSING_OPS:
        found = pattern.search(text)
        if found:
            ops = [op.split(":")[0].strip(" '\"") for op in found.group(1).split(",")]
            return f"it has no kernel for {', '.join(dict.fromkeys(op for op in ops if op))}"[:limit]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        cleaned = _NOISE.sub("", line).strip()
        if cleaned and not cleaned.startswith(("src/", "/")) and "Exception from" not in cleaned:
            return cleaned[:limit]
    return type(exc).__name__


def refused(runtime: str, fmt: str, stage: str, exc: BaseException, model: Any, quantize: str = "none") -> UserError:
    """The one-line error for a format whose converter (`stage` "convert") or runtime ("load", "run")
    refused the model.

    Args:
        runtime: what refused, as a user knows it ("ONNX Runtime", "tf2onnx", "OpenVINO").
        fmt: the format's name (the error's location is `--format FMT`).
        stage: convert | load | run.
        exc: what the converter or runtime raised.
        model: the Keras model that was exported (its layers explain the refusal).
        quantize: the quantisation asked for.
    """
    from tfbench.data.feature_space import parts

    lookups = lookup_layers(model)
    if lookups and parts(model) is not None:
        kinds = sorted({name.rsplit("(", 1)[1].rstrip(")") for name in lookups})
        return UserError(
            f"the {'/'.join(kinds)} in the table preprocessing has no {fmt} form ({runtime} {_VERBS[stage]} it)",
            f"--format {fmt}",
            "export the model after its preprocessing with --after-preprocessing",
        )
    verb = _VERBS[stage]
    what = "the model" if quantize == "none" else f"the Keras-{quantize} model"
    hint = "the float model may convert: leave out --quantize" if quantize != "none" else None
    if parts(model) is not None:  # a table: the part after its preprocessing is plain layers
        hint = "export the model after its preprocessing with --after-preprocessing"
    return UserError(f"{runtime} {verb} {what}: {cause(exc)}", f"--format {fmt}", hint)


def verified_in_runtime(open_runner: Callable[[], Any], runtime: str, fmt: str, job: Any) -> tuple[Any, dict]:
    """Load a written file in its runtime, run it on the reference samples, compare and time it.

    Args:
        open_runner: opens the file in its runtime (an object with `predict(x)` and `run(one_sample)`).
        runtime: the runtime's name, for a refusal ("ONNX Runtime").
        fmt: the export format.
        job: the `ExportJob` (its model, reference and quantisation).

    Returns:
        The runner and the checks: the reference's comparison and the single-sample latency.

    Raises:
        UserError: the runtime refuses to load or to run the file (one line).
    """
    from tfbench.data import rows
    from tfbench.export.latency import time_calls

    try:
        runner = open_runner()
    except Exception as exc:  # noqa: BLE001 - a file the runtime refuses is not an export
        raise refused(runtime, fmt, "load", exc, job.model, job.quantize) from None
    try:
        outputs = runner.predict(job.reference.x)
    except Exception as exc:  # noqa: BLE001
        raise refused(runtime, fmt, "run", exc, job.model, job.quantize) from None
    checks = job.reference.compare(outputs)
    one = rows.take(job.reference.x, 0, 1)
    checks.update(time_calls(lambda: runner.run(one)))
    return runner, checks
