"""Messages the workbench's workers post back to the UI thread (past tense: something happened).

Workers run Keras and dataset code in threads; they never touch widgets. They post one of these
(`post_message` is thread-safe) and the App or a screen updates itself on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from tfbench.errors import UserError


@dataclass
class TensorFlowLoaded(Message):
    """TensorFlow finished importing in the background, so the next Keras job starts at once."""

    seconds: float


@dataclass
class SummaryComputed(Message):
    """Keras built the model: per-layer output shapes and parameter counts.

    `generation` is the edit count it was computed for, so a late answer to an old edit is ignored.
    """

    generation: int
    summary: Any


@dataclass
class SummaryFailed(Message):
    """The layer stack cannot be built; `error.location` names the layer (`model.layers[2]`)."""

    generation: int
    error: UserError


@dataclass
class DataDescribed(Message):
    """A data source's description (shapes, classes, sizes) is known."""

    source: str
    info: Any


@dataclass
class DataDescribeFailed(Message):
    """A data source could not be described (unknown name, missing file, no network…)."""

    source: str
    error: UserError


@dataclass
class PreviewLoaded(Message):
    """A few raw samples and the label counts of a data source."""

    source: str
    preview: dict


@dataclass
class DatasetsListed(Message):
    """The dataset catalog rows matching a search."""

    query: str
    rows: list


@dataclass
class LayersImported(Message):
    """The layer stack read from a `.keras` model file."""

    path: str
    layers: list


@dataclass
class ImportFailed(Message):
    """A `.keras` file could not be imported."""

    path: str
    error: UserError


@dataclass
class ExperimentEdited(Message):
    """The App's Experiment changed (an edit, an undo, a redo, or a preset opened)."""


# -- the train screen: its follower and its control, evaluation and start workers ---------------


@dataclass
class EventsRead(Message):
    """The follow worker read these events from the run's log (in order).

    `caught_up`: everything that was in the log has been read; `generation` is the follow it
    belongs to, so events of a run the screen has stopped following are ignored.
    """

    events: list[dict[str, Any]]
    caught_up: bool
    generation: int


@dataclass
class RunnerStarted(Message):
    """A runner process was started for the screen's Experiment."""

    run_dir: Path


@dataclass
class ActionFailed(Message):
    """Starting, controlling, evaluating or exporting went wrong; `text` says why."""

    text: str


@dataclass
class EvaluationReady(Message):
    """`evaluate_run` finished for the screen's run."""

    result: dict[str, Any]


@dataclass
class AugmentationPreviewed(Message):
    """The model's augmentation layers made variants of a sample (`tfbench.augment_preview.AugmentPreview`)."""

    preview: Any
    index: int


@dataclass
class ExplanationReady(Message):
    """A run's model explained an image (`tfbench.explain.Explanation`)."""

    explanation: Any
    index: int


@dataclass
class InsightFailed(Message):
    """An augmentation preview or an explanation could not be made; `error` says why in one line."""

    error: str


@dataclass
class LabelProposed(Message):
    """The label candidates of a table just picked (`tfbench.data.label_proposal`), best first; [] for others."""

    source: str
    candidates: list
