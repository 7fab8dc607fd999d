"""What a dataset is, as plain data: shapes, label kind, classes, sizes — no TensorFlow.

`DataInfo` is what the builder, the dataset picker and the validator need; it can often be known
without loading (or downloading) the data. `DataBundle` is what training needs: the datasets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tfbench.errors import UserError

LabelKind = Literal["categorical", "binary", "regression"]


def one_label_kind(kind: LabelKind | dict[str, LabelKind] | None) -> LabelKind | None:
    """The `label_kind` option of a dataset with one label (a kind per output is for several outputs)."""
    if isinstance(kind, dict):
        raise UserError("a label kind per output is for a model with several outputs", "data.options.label_kind")
    return kind


@dataclass(frozen=True)
class IONames:
    """The named inputs and outputs a model with several asks its data for (`tfbench.io_model`).

    Attributes:
        inputs: the inputs' names, in `model.inputs` order (empty: the data's one input).
        outputs: the outputs' names, in `model.outputs` order (empty: the data's one label).
    """

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass
class InputInfo:
    """One named input's sample shape and dtype."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclass
class DataInfo:
    """A dataset's description, known before any tensor is made.

    Attributes:
        source: the `kind:name` it came from.
        input_shape: one sample's shape, without the batch dimension.
        label_kind: categorical (integer class ids), binary (0/1), or regression (floats).
        num_classes: number of classes (0 for regression).
        class_names: a name per class id ("0".."9" when the source has none).
        label_shape: one label's shape (`()` for class ids, `(k,)` for k regression targets).
        sizes: samples per split actually used (`train`, `validation`, `test`); None when unknown.
        description: one or two sentences for the dataset picker.
        input_dtype: dtype of the features ("float32", "int32" for token ids, "string" for raw text).
        extra: anything else a source knows (download size, prepared locally, feature names…).
        inputs: for a model with several inputs, each input's shape and dtype by name (empty
            otherwise; then `input_shape`/`input_dtype` are the first input's).
        outputs: for a model with several outputs, each output's labels by name, as a DataInfo of
            its own (empty otherwise; then the label fields above are the first output's).
    """

    source: str
    input_shape: tuple[int | None, ...]
    label_kind: LabelKind
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    label_shape: tuple[int, ...] = ()
    sizes: dict[str, int | None] = field(default_factory=dict)
    description: str = ""
    input_dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, InputInfo] = field(default_factory=dict)
    outputs: dict[str, DataInfo] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (tuples become lists)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["label_shape"] = list(self.label_shape)
        data["inputs"] = {name: {"shape": list(i.shape), "dtype": i.dtype} for name, i in self.inputs.items()}
        data["outputs"] = {name: info.to_dict() for name, info in self.outputs.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataInfo:
        """Inverse of `to_dict`."""
        data = dict(data)
        data["input_shape"] = tuple(data.get("input_shape") or ())
        data["label_shape"] = tuple(data.get("label_shape") or ())
        data["inputs"] = {n: InputInfo(tuple(i["shape"]), i["dtype"]) for n, i in (data.get("inputs") or {}).items()}
        data["outputs"] = {n: cls.from_dict(o) for n, o in (data.get("outputs") or {}).items()}
        return cls(**data)

    @property
    def is_classification(self) -> bool:
        return self.label_kind in ("categorical", "binary")


@dataclass
class DataBundle:
    """The datasets a run trains on: batched `tf.data.Dataset`s of (features, labels) and their info."""

    train: Any
    validation: Any | None
    info: DataInfo
    test: Any | None = None
    steps_per_epoch: int | None = None
