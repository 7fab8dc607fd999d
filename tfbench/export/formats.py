"""The export formats and TFLite quantisations: the one list every chooser reads — without TensorFlow.

`spec.py` checks a preset's `[export]` against it, the setup screen and the export dialog offer
it, `tfbench export --help` lists it, and the exporter finds each format's writer through it. A
format is one module holding its writer (`write` and `verify`, see `FormatWriter`) plus one
`register(...)` line below; its module is imported only when something is exported.
"""

from __future__ import annotations

import importlib
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
    quantized: bool = False
    """Whether a quantisation applies; the file name then carries it (`model.int8.tflite`)."""

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
    """One TFLite quantisation."""

    name: str
    description: str


FORMATS: dict[str, ExportFormat] = {}
"""Every export format by name, in the order choosers list them."""

QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("none", "float32 weights and activations: the reference, no loss"),
        Quantization("dynamic", "int8 weights, float activations: ~4x smaller, no calibration"),
        Quantization("float16", "float16 weights: ~2x smaller, for GPU delegates"),
        Quantization("int8", "int8 weights and activations, calibrated on the run's training data"),
    )
}
"""Every TFLite quantisation by name; `none` first."""


def register(fmt: ExportFormat) -> ExportFormat:
    """Add (or replace) an export format; every chooser offers it from then on."""
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove an export format (a test's own format, once the test is done)."""
    FORMATS.pop(name, None)


register(
    ExportFormat(
        "keras", "model.keras", "the Keras v3 file; loads in plain Keras", "tfbench.export.keras_formats:KERAS_FILE"
    )
)
register(
    ExportFormat(
        "savedmodel",
        "saved_model",
        "a TensorFlow SavedModel serving `serving_default`",
        "tfbench.export.keras_formats:SAVED_MODEL",
    )
)
register(
    ExportFormat(
        "tflite",
        "model.tflite",
        "a TFLite flatbuffer for LiteRT, quantised as asked",
        "tfbench.export.tflite:TFLITE",
        quantized=True,
    )
)


def format_names() -> tuple[str, ...]:
    """The export formats' names, in order."""
    return tuple(FORMATS)


def quantization_names() -> tuple[str, ...]:
    """The TFLite quantisations' names, `none` first."""
    return tuple(QUANTIZATIONS)


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
    if quantize != "none" and not chosen.quantized:
        takes = ", ".join(f.name for f in FORMATS.values() if f.quantized)
        raise UserError(
            f"quantisation applies to {takes} only, not to {fmt}", "--quantize", f"use --format {takes.split(', ')[0]}"
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
    if name not in QUANTIZATIONS:
        raise ValueError(f"got {name!r}; {_choices_hint(str(name), QUANTIZATIONS, 'choices')}")
    return name


def _choices_hint(word: str, choices, what: str) -> str:
    return close_matches(word, choices) or f"{what}: {', '.join(choices)}"
