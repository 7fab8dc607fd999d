"""The export formats and quantisations: the one list every chooser reads — without TensorFlow.

`spec.py` checks a preset's `[export]` against it, the setup screen and the export dialog offer
it, `tfbench export --help` lists it, and the exporter finds each format's writer through it. A
format is one module holding its writer (`write` and `verify`, see `FormatWriter`) plus one
`register(...)` line below; its module is imported only when something is exported.

Each format names the quantisations it takes. TFLite's are its converter's (`dynamic`, `float16`,
calibrated `int8`); for `.keras`, SavedModel, ONNX and OpenVINO, `int8`/`int4`/`float8` are Keras'
own `model.quantize(...)`, applied to a copy of the model before it is written. A format whose
runtime is an optional extra (`tfbench[onnx]`) names it, so a missing runtime is one line saying
what to install rather than an ImportError halfway through.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tfbench.errors import UserError, close_matches


@dataclass
class ExportJob:
    """What a format's writer gets: the model, what to verify it against, and the options."""

    model: Any
    """The Keras model to export."""
    reference: Any
    """The `tfbench.export.reference.Reference` every export is compared with."""
    quantize: str = "none"
    """The quantisation, for a format that takes one (`ExportFormat.quantized`)."""
    int8_io: bool = False
    """With int8: int8 input and output too."""
    select_tf_ops: bool = False
    """TFLite: fall back to TensorFlow kernels for ops it lacks."""
    bundle: Any = None
    """The run's DataBundle, when there is one (int8 calibrates on its training data)."""
    source: Any = None
    """The float model the export stands for (`model` is a quantised copy of it, or the model itself)."""


class FormatWriter(Protocol):
    """What a format's module provides (the object its registry line names)."""

    def write(self, path: Path, job: ExportJob) -> None:
        """Write the export to `path` (a file or a folder; the exporter moves it into place)."""

    def verify(self, path: Path, job: ExportJob) -> dict:
        """Reload what `write` wrote and compare it with the model: at least `max_abs_diff`,
        `agreement`, `export_metric` and `latency_ms` (see `Reference.compare`)."""


@dataclass(frozen=True)
class ExportFormat:
    """One export format, as a preset and `--format` name it."""

    name: str
    """What a preset's `export.formats` and `--format` call it."""
    file_name: str
    """The file (or folder) it is written to inside the exports folder."""
    description: str
    """One line for help texts."""
    writer: str
    """`module:object` of its `FormatWriter`; imported only when exporting."""
    quantizations: tuple[str, ...] = ("none",)
    """The quantisations it takes, `none` first; a quantised file's name carries it (`model.int8.tflite`)."""
    keras_quantized: bool = False
    """Whether its `int8`/`int4`/`float8` are Keras' `model.quantize` (else its converter's own)."""
    float32: bool = False
    """Whether a mixed-precision model is cast to float32 before it is written (its runtime is
    checked against float32 outputs, and some refuse mixed graphs)."""
    extra: str | None = None
    """The `pip install 'tfbench[EXTRA]'` extra that brings its runtime, when it is optional."""
    runtime: tuple[str, ...] = ()
    """The modules that extra provides (checked, not imported, before any work)."""

    @property
    def quantized(self) -> bool:
        """Whether any quantisation applies."""
        return len(self.quantizations) > 1

    def uses_keras_quantization(self, quantize: str) -> bool:
        """Whether `quantize` is done by `model.quantize` before this format is written."""
        return self.keras_quantized and quantize in KERAS_QUANTIZATIONS

    def missing_runtime(self) -> list[str]:
        """The runtime modules of an optional extra that are not installed."""
        return [name for name in self.runtime if importlib.util.find_spec(name) is None]

    def artifact_name(self, quantize: str = "none", int8_io: bool = False) -> str:
        """The file (or folder) name of an export with these options."""
        if not self.quantized or quantize == "none":
            return self.file_name
        stem, dot, suffix = self.file_name.partition(".")
        return f"{stem}.{quantize}{'-io' if int8_io else ''}{dot}{suffix}"

    def report_key(self, quantize: str = "none", int8_io: bool = False) -> str:
        """The export's key in `report.json` (`tflite`, `tflite-int8`, `tflite-int8-io`, …)."""
        if not self.quantized or quantize == "none":
            return self.name
        return f"{self.name}-{quantize}{'-io' if int8_io else ''}"

    def load_writer(self) -> FormatWriter:
        """The format's writer (imports its module, which imports TensorFlow when it writes)."""
        module, _, attribute = self.writer.partition(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Quantization:
    """One quantisation, as `--quantize` names it."""

    name: str
    description: str


FORMATS: dict[str, ExportFormat] = {}
"""Every export format by name, in the order choosers list them."""

QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("none", "float32 weights and activations: the reference, no loss"),
        Quantization("dynamic", "TFLite: int8 weights, float activations; ~4x smaller, no calibration"),
        Quantization("float16", "TFLite, OpenVINO: float16 weights; ~2x smaller"),
        Quantization(
            "int8",
            "TFLite: int8 weights and activations, calibrated on the run's training data; "
            "keras, savedmodel, onnx, openvino: Keras' int8 (Dense, EinsumDense, Embedding weights)",
        ),
        Quantization("int4", "keras, savedmodel, onnx, openvino: Keras' int4 weights (Dense, EinsumDense)"),
        Quantization("float8", "keras, savedmodel: Keras' float8 (for float8 hardware; no smaller)"),
    )
}
"""Every quantisation by name; `none` first. Which apply depends on the format (`ExportFormat.quantizations`)."""

KERAS_QUANTIZATIONS = ("int8", "int4", "float8")
"""The modes of Keras' own `model.quantize`."""
TFLITE_QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
"""The TFLite converter's quantisations (a preset's `export.tflite_quantization`)."""


def register(fmt: ExportFormat) -> ExportFormat:
    """Add (or replace) an export format; every chooser offers it from then on."""
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove an export format (a test's own format, once the test is done)."""
    FORMATS.pop(name, None)


register(
    ExportFormat(
        "keras",
        "model.keras",
        "the Keras v3 file; loads in plain Keras",
        "tfbench.export.keras_formats:KERAS_FILE",
        quantizations=("none", *KERAS_QUANTIZATIONS),
        keras_quantized=True,
    )
)
register(
    ExportFormat(
        "savedmodel",
        "saved_model",
        "a TensorFlow SavedModel serving `serving_default`",
        "tfbench.export.keras_formats:SAVED_MODEL",
        quantizations=("none", *KERAS_QUANTIZATIONS),
        keras_quantized=True,
    )
)
register(
    ExportFormat(
        "tflite",
        "model.tflite",
        "a TFLite flatbuffer for LiteRT, quantised as asked",
        "tfbench.export.tflite:TFLITE",
        quantizations=TFLITE_QUANTIZATIONS,
        float32=True,
    )
)
register(
    ExportFormat(
        "onnx",
        "model.onnx",
        "an ONNX graph (tf2onnx) checked in ONNX Runtime",
        "tfbench.export.onnx:ONNX_FILE",
        quantizations=("none", "int8", "int4"),
        keras_quantized=True,
        float32=True,
        extra="onnx",
        runtime=("onnx", "onnxruntime", "tf2onnx"),
    )
)
register(
    ExportFormat(
        "openvino",
        "openvino",
        "an OpenVINO IR folder (model.xml + model.bin) checked in the OpenVINO runtime",
        "tfbench.export.openvino:OPENVINO_IR",
        quantizations=("none", "float16", "int8", "int4"),
        keras_quantized=True,
        float32=True,
        extra="openvino",
        runtime=("openvino",),
    )
)


def format_names() -> tuple[str, ...]:
    """The export formats' names, in order."""
    return tuple(FORMATS)


def quantization_names() -> tuple[str, ...]:
    """Every quantisation's name, `none` first."""
    return tuple(QUANTIZATIONS)


def format_quantizations(fmt: str) -> tuple[str, ...]:
    """The quantisations one format takes, `none` first (the setup screen's TFLite choices)."""
    return get_format(fmt).quantizations


def matrix_cells() -> list[tuple[str, str]]:
    """Every (format, quantisation) pair a format takes, in registry order: what `export --all` tries."""
    return [(fmt.name, quantize) for fmt in FORMATS.values() for quantize in fmt.quantizations]


def takers(quantize: str) -> list[str]:
    """The formats that take a quantisation."""
    return [fmt.name for fmt in FORMATS.values() if quantize in fmt.quantizations]


def check_runtime(fmt: str) -> None:
    """Raise when a format's optional runtime is not installed: one line naming the extra.

    Raises:
        UserError: located at `--format NAME`, with the `pip install` that fixes it.
    """
    chosen = get_format(fmt)
    missing = chosen.missing_runtime()
    if missing:
        raise UserError(
            f"needs {', '.join(missing)}, which is not installed",
            f"--format {fmt}",
            f"pip install 'tfbench[{chosen.extra}]'",
        )


def get_format(name: str) -> ExportFormat:
    """The format called `name`.

    Raises:
        UserError: no such format (located at `--format`, with the closest names).
    """
    if name not in FORMATS:
        raise UserError(f"unknown export format {name!r}", "--format", _choices_hint(str(name), FORMATS, "formats"))
    return FORMATS[name]


def check_options(fmt: str, quantize: str = "none", int8_io: bool = False) -> ExportFormat:
    """Check a format and its options before any work is done.

    Returns:
        The format.

    Raises:
        UserError: an unknown format or quantisation, or an option that does not apply.
    """
    chosen = get_format(fmt)
    if quantize not in QUANTIZATIONS:
        raise UserError(
            f"unknown quantisation {quantize!r}", "--quantize", _choices_hint(str(quantize), QUANTIZATIONS, "choices")
        )
    if quantize not in chosen.quantizations:
        takes = takers(quantize)
        raise UserError(
            f"{quantize} applies to {', '.join(takes)}, not to {fmt}",
            "--quantize",
            f"{fmt} takes: {', '.join(chosen.quantizations)}",
        )
    if int8_io and quantize != "int8":
        raise UserError("int8 input/output needs int8 quantisation", "--int8-io", "add --quantize int8")
    return chosen


def artifact_name(fmt: str, quantize: str = "none", int8_io: bool = False) -> str:
    """The file (or folder) name an export gets inside the exports folder."""
    return get_format(fmt).artifact_name(quantize, int8_io)


def report_key(fmt: str, quantize: str = "none", int8_io: bool = False) -> str:
    """The key of an export's entry in `report.json` (`tflite`, `tflite-int8`, …)."""
    return get_format(fmt).report_key(quantize, int8_io)


def known_format(name: str) -> str:
    """A preset's format name, checked (a pydantic validator: raises ValueError)."""
    if name not in FORMATS:
        raise ValueError(f"got {name!r}; {_choices_hint(str(name), FORMATS, 'formats')}")
    return name


def known_quantization(name: str) -> str:
    """A preset's TFLite quantisation, checked (a pydantic validator: raises ValueError)."""
    if name not in TFLITE_QUANTIZATIONS:
        raise ValueError(f"got {name!r}; {_choices_hint(str(name), TFLITE_QUANTIZATIONS, 'choices')}")
    return name


def _choices_hint(word: str, choices: Any, what: str) -> str:
    return close_matches(word, choices) or f"{what}: {', '.join(choices)}"
