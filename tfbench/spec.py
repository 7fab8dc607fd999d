"""The Experiment: everything a user sets up, as plain validated data — without a UI, without TensorFlow.

A preset file (TOML) is an Experiment written down; the TUI edits one; `tfbench run` runs one;
every run directory records the resolved Experiment it ran. Layers, optimizers, schedules, losses,
metrics and callbacks are named by their Keras class names and carry Keras' own constructor
arguments, so a Keras user can read a preset without a manual. The catalog (`tfbench.catalog`)
says which names and arguments are valid; this module turns every mistake into a `UserError`
located at the field it concerns (`model.layers[2].units`).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tfbench.errors import UserError, close_matches
from tfbench.export.formats import known_format, known_quantization

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCHEMA_VERSION = 1


def _presets_dir() -> Path:
    """The shipped presets: `tfbench/presets` once installed (setup.py maps the top-level
    `presets/` folder there), the top-level `presets/` folder in a source checkout."""
    installed = Path(__file__).resolve().parent / "presets"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "presets"


PRESETS_DIR = _presets_dir()
DEFAULT_PRESET = "digits-cnn"


class _Strict(BaseModel):
    """Base for sections: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Component(BaseModel):
    """A Keras object: its class (or function) name in `type` and constructor arguments beside it.

    In TOML: `{ type = "Adam", learning_rate = 1e-3 }` or, for layers, a `[[model.layers]]` table.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Keras class name, e.g. Dense, Adam, EarlyStopping.")

    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments (every key but `type`)."""
        return dict(self.model_extra or {})

    @classmethod
    def of(cls, type: str, **args: Any) -> Component:
        """Build a component from a class name and its arguments."""
        return cls(type=type, **args)


NameOrComponent = str | Component


class DataSpec(_Strict):
    """Where the data comes from and how it is fed to the model."""

    source: str = Field(
        "builtin:digits",
        description="KIND:NAME or KIND:PATH, a kind from tfbench.data.registry (builtin:digits, csv:data.csv, …).",
    )
    validation_split: float | None = Field(
        0.2, gt=0, lt=1, description="Fraction of the training data held out for validation (seeded)."
    )
    validation: str | None = Field(
        None, description="A named split of the source used for validation instead of a fraction."
    )
    test: str | None = Field(None, description="A named split evaluated once after training.")
    batch_size: int = Field(32, ge=1, le=1_000_000, description="Global batch size.")
    shuffle: bool = Field(True, description="Shuffle the training data every epoch.")
    shuffle_buffer: int | None = Field(
        None, ge=1, description="Shuffle buffer size; default: the whole dataset up to 100,000 samples."
    )
    cache: bool | str = Field(
        True,
        description="Cache decoded samples: true (memory), false, or a file name inside the run "
        "directory (e.g. 'cache/data') for data larger than memory.",
    )
    prefetch: bool = Field(True, description="Prefetch batches (AUTOTUNE) so the model never waits.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the source kind (label column, image size, …)."
    )

    @model_validator(mode="before")
    @classmethod
    def _absolute_paths(cls, data: Any) -> Any:
        # A path not resolved against a preset's folder (typed in the TUI, given with --set) is
        # the shell's: made absolute here, so a run records where its data is (experiment.toml).
        return data_paths_absolute(data, Path.cwd()) if isinstance(data, dict) else data

    @field_validator("cache")
    @classmethod
    def _cache_inside_the_run(cls, value: bool | str) -> bool | str:
        # A file cache is written: like a callback's file it stays inside the run directory.
        if isinstance(value, str):
            from tfbench.catalog import check_run_dir_path

            check_run_dir_path(value, "data.cache")
        return value

    @field_validator("source")
    @classmethod
    def _source_form(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError(f"expected KIND:NAME (e.g. builtin:digits), got {value!r}")
        return value

    @property
    def cache_file(self) -> str | None:
        """The file cache's name inside the run directory (`cache = "NAME"`); None for memory or none."""
        return self.cache if isinstance(self.cache, str) and self.cache else None

    @property
    def kind(self) -> str:
        """The source kind before the colon (`builtin`, `tfds`, …)."""
        return self.source.split(":", 1)[0]

    @property
    def target(self) -> str:
        """The name or path after the colon."""
        return self.source.split(":", 1)[1]


class InputSpec(_Strict):
    """One of a model's several inputs: the name its data carries and that input's own stack."""

    name: str = Field(..., description="The input's name: an npz array (or a table's column group) of that name.")
    layers: list[Component] = Field(
        default_factory=list, description="The input's own stack before the merge; none: the input itself."
    )
    shape: list[int] | None = Field(None, description="Override the input's shape from the data.")


class OutputSpec(_Strict):
    """One of a model's several outputs: the label it predicts, its head, its loss and metrics."""

    name: str = Field(..., description="The output's name: an npz array (or a table's label column) of that name.")
    layers: list[Component] = Field(
        default_factory=list, description="The head stack after the shared trunk; none: the trunk's output."
    )
    loss: NameOrComponent = Field("auto", description="Keras loss of this output; 'auto' fits its labels.")
    loss_weight: float = Field(1.0, ge=0, description="This output's weight in the total loss.")
    metrics: list[NameOrComponent] | None = Field(
        None, description="Keras metrics of this output; default: train.metrics."
    )


class ModelSpec(_Strict):
    """A stack of Keras layers; the input shape comes from the data unless `input_shape` is set.

    An entry may be a wrapper, a `Residual` or `Parallel` block or a `keras.applications`
    backbone, written as nested tables (the grammar is `tfbench.blocks`). With `inputs` and
    `outputs` the model has several named inputs, each with its own stack, merged into the
    shared `layers`, and several heads (the grammar is `tfbench.io_model`).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    layers: list[Component] = Field(
        default_factory=list,
        description="The layer stack, first to last; entries may be wrappers, blocks or backbones.",
    )
    input_shape: list[int] | None = Field(None, description="Override the input shape from the data.")
    inputs: list[InputSpec] | None = Field(
        None, description="Several named inputs, each with its own stack, merged before `layers`."
    )
    merge: str | None = Field(
        None, description="How the inputs' ends meet (add, concatenate, …); default: concatenate."
    )
    outputs: list[OutputSpec] | None = Field(
        None, description="Several named outputs, each a head after `layers` with its own loss."
    )
    class_: str | None = Field(
        None,
        alias="class",
        description="A keras.Model subclass from the preset's [code], built as CLASS(inputs=…, outputs=…): "
        "its own train_step/test_step drive fit.",
    )


class CodeSpec(_Strict):
    """The preset's own Python modules: imported only when the user allows it (`--allow-code`)."""

    modules: list[str] = Field(
        ..., min_length=1, description="Python files, relative to the preset's folder; imported only when allowed."
    )

    @model_validator(mode="before")
    @classmethod
    def _absolute_paths(cls, data: Any) -> Any:
        # Like data paths: one not resolved against a preset's folder is the shell's.
        return code_paths_absolute(data, Path.cwd()) if isinstance(data, dict) else data


class FineTuneSpec(_Strict):
    """Fine-tuning after transfer learning: unfreeze the backbone at an epoch and train on slowly."""

    after_epoch: int = Field(..., ge=1, description="The last epoch of the frozen phase; fine-tuning starts after it.")
    unfreeze: Literal["all"] | int = Field("all", description='"all" of the backbone, or only its top N layers.')
    learning_rate: float = Field(1e-5, gt=0, description="The learning rate the fine-tuning phase compiles with.")

    @field_validator("unfreeze")
    @classmethod
    def _positive(cls, value: Literal["all"] | int) -> Literal["all"] | int:
        if isinstance(value, int) and value < 1:
            raise ValueError('unfreeze at least 1 layer, or "all"')
        return value


class ProfileSpec(_Strict):
    """A profiler capture while training: which epoch, how many steps (`tfbench.engine.profiling`)."""

    epoch: int = Field(
        2, ge=1, description="The epoch whose first steps are captured (the run's first step traces the model)."
    )
    steps: int = Field(10, ge=1, le=1000, description="How many training steps the trace holds.")


class TrainSpec(_Strict):
    """How the model is trained."""

    epochs: int = Field(10, ge=1, le=1_000_000, description="Number of epochs to train.")
    optimizer: Component = Field(
        default_factory=lambda: Component(type="Adam", learning_rate=1e-3),
        description="Keras optimizer and its arguments.",
    )
    schedule: Component | None = Field(
        None, description="Learning-rate schedule (replaces the optimizer's learning_rate)."
    )
    loss: NameOrComponent = Field("auto", description="Keras loss; 'auto' picks one that fits the data's labels.")
    metrics: list[NameOrComponent] = Field(
        default_factory=lambda: list[NameOrComponent](["auto"]),
        description="Keras metrics; 'auto' means accuracy for classifiers, MAE for regression.",
    )
    callbacks: list[Component] = Field(default_factory=list, description="Keras callbacks.")
    seed: int | None = Field(42, ge=0, description="Seed for weights, shuffling and splits.")
    deterministic: bool = Field(False, description="Enable TensorFlow op determinism (slower).")
    mixed_precision: Literal["off", "mixed_float16", "mixed_bfloat16"] = Field(
        "off", description="Keras mixed-precision policy."
    )
    jit_compile: bool | Literal["auto"] = Field("auto", description="Compile with XLA.")
    steps_per_execution: int = Field(1, ge=1, description="Batches per compiled call.")
    strategy: Literal["auto", "default", "mirrored", "multi_worker"] = Field(
        "auto", description="tf.distribute strategy; batch size is global."
    )
    class_weight: Literal["balanced"] | dict[str, float] | None = Field(
        None,
        description='Weigh classes in the loss: "balanced" (from the training label counts) or '
        "a weight per class name or id, e.g. { cat = 1.0, dog = 3.0 }.",
    )
    fine_tune: FineTuneSpec | None = Field(
        None, description="Unfreeze a frozen backbone after an epoch and continue with a new learning rate."
    )
    profile: ProfileSpec | None = Field(
        None,
        description="Capture a profiler trace of some steps and say what limits them: { epoch = 2, steps = 10 }.",
    )

    @field_validator("profile", mode="before")
    @classmethod
    def _profile_flag(cls, value: Any) -> Any:
        """`profile = true` is the default capture; `false` none."""
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_by_name(cls, value: Any) -> Any:
        """Keras' string form (`optimizer = "adam"`) is that optimizer with its default arguments."""
        from tfbench import catalog

        if isinstance(value, str):
            return {"type": catalog.class_name("optimizers", value)}
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return {**value, "type": catalog.class_name("optimizers", value["type"])}
        return value

    @field_validator("loss")
    @classmethod
    def _loss_nonempty(cls, value: NameOrComponent) -> NameOrComponent:
        if isinstance(value, str) and not value.strip():
            raise ValueError("name a loss, or 'auto'")
        return value


class ExportSpec(_Strict):
    """What is exported at the end of a run, and how."""

    formats: list[Annotated[str, AfterValidator(known_format)]] = Field(
        default_factory=lambda: ["keras"], description="Formats exported when a run ends."
    )
    tflite_quantization: Annotated[str, AfterValidator(known_quantization)] = Field(
        "none", description="TFLite quantisation."
    )
    int8_io: bool = Field(False, description="With int8: make the model's input and output int8 too.")


class TrackSpec(_Strict):
    """Where the run is mirrored for other tools to read (`tfbench.tracking`)."""

    tensorboard: bool = Field(
        False, description="Write TensorBoard scalars (and profiler traces) into the run directory's tensorboard/."
    )
    mlflow: str | None = Field(
        None,
        description="An MLflow tracking URI (sqlite:///mlflow.db, a folder, http://host:5000): the run's "
        "parameters, per-epoch metrics, exports and report.json are mirrored as an MLflow run.",
    )
    mlflow_experiment: str | None = Field(
        None, description="The MLflow experiment the run goes into (default: this Experiment's name)."
    )

    @model_validator(mode="before")
    @classmethod
    def _absolute_paths(cls, data: Any) -> Any:
        # Like the data's paths: a tracking store not resolved against a preset's folder is the shell's.
        return track_paths_absolute(data, Path.cwd()) if isinstance(data, dict) else data

    @field_validator("mlflow")
    @classmethod
    def _tracking_uri(cls, value: str | None) -> str | None:
        from tfbench.tracking.uris import check_tracking_uri

        return None if value is None else check_tracking_uri(value)


class Experiment(_Strict):
    """Data + model + training + export: one thing to edit, save, run and record."""

    name: str = Field("experiment", description="Short name; run directories start with it.")
    description: str = Field("", description="One line saying what this experiment is.")
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    track: TrackSpec = Field(default_factory=TrackSpec)
    tune: dict[str, Any] | None = Field(
        None, description="A hyperparameter study of this Experiment (`[tune]`), read by `tfbench tune`."
    )
    code: CodeSpec | None = Field(
        None, description="The preset's own modules (custom layers, losses, metrics, callbacks, model classes)."
    )

    @field_validator("name")
    @classmethod
    def _name_slug(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit")
        return value

    @model_validator(mode="before")
    @classmethod
    def _tensorboard_moved(cls, data: Any) -> Any:
        """`train.tensorboard = true` (older presets) is `[track] tensorboard = true`."""
        train = data.get("train") if isinstance(data, dict) else None
        if isinstance(train, dict) and "tensorboard" in train:
            data = {**data, "train": {k: v for k, v in train.items() if k != "tensorboard"}}
            if train["tensorboard"] is True:
                track = data.get("track") if isinstance(data.get("track"), dict) else {}
                data["track"] = {"tensorboard": True, **track}
        return data

    @model_validator(mode="after")
    def _check_names(self) -> Experiment:
        check_components(self)
        return self

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML-ready: no None values, no empty `data.options` table)."""
        data = _drop_none(self.model_dump(mode="python", by_alias=True))
        if not data["data"].get("options"):
            # No options is the default; an empty `[data.options]` table only adds noise to a preset.
            data["data"].pop("options", None)
        if data.get("track") == {"tensorboard": False}:
            data.pop("track")  # nothing mirrored is the default: no `[track]` table in a preset
        return data

    def to_toml(self) -> str:
        """The Experiment as a preset file's text."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def copy_with(self, overrides: list[str]) -> Experiment:
        """A validated copy with `a.b=c` overrides applied (see `apply_overrides`)."""
        data = self.to_dict()
        apply_overrides(data, overrides)
        return experiment_from_dict(data)


# -- validation against the catalog -----------------------------------------------------------


def check_components(exp: Experiment) -> None:
    """Check every named Keras object and its arguments against the catalog.

    Raises:
        UserError: located at the offending entry, with close matches for a misspelt name.
    """
    from tfbench import catalog, user_code

    with catalog.user_scope(*user_code.scope(exp.code.modules if exp.code else None)):
        _check_named(exp)  # with the classes of its own [code], and no others
        user_code.check_experiment_class(exp.model.class_, exp.code.modules if exp.code else None)


def _check_named(exp: Experiment) -> None:
    from tfbench import adaptable, blocks, catalog, io_model

    nodes = blocks.parse_stack(exp.model.layers)  # nested blocks and wrappers, each error at its place
    adaptable.check_stack(nodes)  # layers that learn from data: where they can
    train = exp.train
    io_model.check(exp)  # several inputs and outputs: their stacks, names, losses and metrics
    if train.fine_tune is not None:
        _check_fine_tune(train.fine_tune, train.epochs, nodes)
    catalog.check_component("optimizers", train.optimizer.type, train.optimizer.args, "train.optimizer")
    if train.schedule is not None:
        catalog.check_component("schedules", train.schedule.type, train.schedule.args, "train.schedule")
    _check_name_or_component("losses", train.loss, "train.loss", allow_auto=True)
    for i, metric in enumerate(train.metrics):
        _check_name_or_component("metrics", metric, f"train.metrics[{i}]", allow_auto=True)
    for i, callback in enumerate(train.callbacks):
        catalog.check_component("callbacks", callback.type, callback.args, f"train.callbacks[{i}]")


def _check_fine_tune(fine_tune: FineTuneSpec, epochs: int, nodes: list) -> None:
    """Fine-tuning needs a frozen backbone to unfreeze and an epoch left to fine-tune in."""
    frozen = [n for n in nodes if n.kind == "backbone" and n.args.get("trainable", True) is False]
    if not frozen:
        raise UserError(
            "fine-tuning unfreezes a frozen backbone, and the model has none",
            "train.fine_tune",
            'add a keras.applications backbone with trainable = false (e.g. type = "MobileNetV2")',
        )
    if fine_tune.after_epoch >= epochs:
        raise UserError(
            f"fine-tuning starts after epoch {fine_tune.after_epoch}, but the run has {epochs} epochs",
            "train.fine_tune.after_epoch",
            f"set train.epochs above {fine_tune.after_epoch}",
        )


def _check_name_or_component(kind: str, value: NameOrComponent, location: str, allow_auto: bool) -> None:
    from tfbench import catalog

    if isinstance(value, Component):
        catalog.check_component(kind, value.type, value.args, location)
    elif not (allow_auto and value == "auto"):
        catalog.check_identifier(kind, value, location)


# -- paths ------------------------------------------------------------------------------------


def _map_data_paths(section: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """A copy of a `[data]` table with `change(path)` applied to each file path in it.

    The paths are the source's target and options its kind lists (`tfbench.data.registry
    .path_fields`); `cache` is not one of them: it names a file inside the run directory.
    """
    from tfbench.data.registry import path_fields

    section = dict(section)
    source = section.get("source")
    kind, colon, target = source.partition(":") if isinstance(source, str) else ("", "", "")
    fields = path_fields(kind) if colon else ()
    if "target" in fields and target:
        section["source"] = f"{kind}:{change(target)}"
    options = section.get("options")
    if isinstance(options, dict) and fields:
        section["options"] = {
            k: change(v) if k in fields and isinstance(v, str) and v else v for k, v in options.items()
        }
    return section


def data_paths_absolute(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[data]` table whose relative paths (`csv:data/x.csv`, `images:photos/`) are made
    absolute against `base` — a preset's folder, or the shell's working directory."""
    import os

    def absolute(text: str) -> str:
        return os.path.normpath(os.path.join(base, os.path.expanduser(text)))

    return _map_data_paths(section, absolute)


def track_paths_absolute(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[track]` table whose MLflow store, when it is a file or a folder, is absolute against `base`."""
    from tfbench.tracking.uris import uri_absolute

    uri = section.get("mlflow")
    return {**section, "mlflow": uri_absolute(uri, base)} if isinstance(uri, str) and uri else section


def track_paths_relative(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[track]` table whose MLflow store inside `base` is written relative to it."""
    from tfbench.tracking.uris import uri_relative

    uri = section.get("mlflow")
    return {**section, "mlflow": uri_relative(uri, base)} if isinstance(uri, str) and uri else section


def data_paths_relative(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[data]` table whose paths inside `base` are written relative to it (a saved preset
    keeps working when its folder moves); other paths stay absolute."""
    import os

    base = os.path.abspath(base)

    def relative(text: str) -> str:
        if not os.path.isabs(text) or os.path.commonpath([base, os.path.abspath(text)]) != base:
            return text
        return Path(os.path.relpath(text, base)).as_posix()

    return _map_data_paths(section, relative)


def code_paths_absolute(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[code]` table whose module paths are made absolute against `base` (nothing is read)."""
    import os

    modules = section.get("modules")
    if not isinstance(modules, list):
        return section
    absolute = [
        os.path.normpath(os.path.join(base, os.path.expanduser(m))) if isinstance(m, str) else m for m in modules
    ]
    return {**section, "modules": absolute}


def code_paths_relative(section: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A `[code]` table whose module paths inside `base` are written relative to it (a saved preset
    keeps working when its folder moves with its modules); other paths stay absolute."""
    import os

    base = os.path.abspath(base)

    def relative(text: str) -> str:
        if not os.path.isabs(text) or os.path.commonpath([base, os.path.abspath(text)]) != base:
            return text
        return Path(os.path.relpath(text, base)).as_posix()

    return {**section, "modules": [relative(m) for m in section.get("modules", [])]}


# -- load / dump ------------------------------------------------------------------------------


def experiment_from_dict(data: dict[str, Any], source: str | None = None) -> Experiment:
    """Validate plain data as an Experiment.

    Args:
        data: parsed TOML (or the TUI's edited dict).
        source: the file it came from, prefixed to error locations.

    Raises:
        UserError: the first problem, located (`train.epochs`), with what is expected.
    """
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise _user_error_from_pydantic(exc).at(source or "") from None
    except UserError as exc:
        raise exc.at(source or "") from None


def _user_error_from_pydantic(exc: ValidationError) -> UserError:
    err = exc.errors(include_url=False)[0]
    # A model_validator raising UserError arrives wrapped as a ValueError.
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, UserError):
        return ctx_error
    loc = format_location(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _section_of(err["loc"])
        fields = _fields_at(parent)
        hint = close_matches(str(err["loc"][-1]), fields) if fields else None
        return UserError("unknown key", loc, hint or (f"valid keys: {', '.join(fields)}" if fields else None))
    if kind == "missing":
        return UserError("this key is required", loc)
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    ctx = err.get("ctx") or {}
    expected = next((words for prefix, words in _EXPECTED if kind.startswith(prefix)), None)
    if kind in {"literal_error"}:
        message = f"got {value!r}; {message[0].lower()}{message[1:]}"
    elif expected and (kind.endswith("_type") or kind.endswith("_parsing")):
        message = f"expected {expected}, got {value!r}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message[0].lower()}{message[1:]}, got {value!r}"
    elif kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        message = f"must be {words} {ctx.get(key)!r}, got {value!r}"
    return UserError(message, loc)


# What a mistyped value should have been, by pydantic error type prefix (first match wins).
_EXPECTED = (
    ("int_", "an integer"),
    ("float_", "a number"),
    ("bool_", "true or false"),
    ("string_", "a string"),
    ("list_", "a list"),
    ("dict_", "a table"),
    ("model_", "a table"),
)
_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def _section_of(loc: tuple) -> tuple:
    return tuple(p for p in loc[:-1] if not isinstance(p, int))


def _fields_at(path: tuple) -> list[str]:
    model: Any = Experiment
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or ())]
        candidates += [arg for c in candidates for arg in getattr(c, "__args__", ())]  # list[InputSpec] | None
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def format_location(loc: Sequence[str | int]) -> str:
    """`('model', 'layers', 2, 'units')` → `model.layers[2].units` (pydantic's union tags dropped)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"str", "Component", "function-after[_source_form(), str]"} or "[" in str(part):
            continue  # union branch names pydantic inserts
        else:
            text += f".{part}" if text else str(part)
    return text


TOO_DEEP = "values are nested too deeply to read (a preset needs a few levels, not hundreds)"


def parse_toml(text: str, source: str | None = None) -> dict[str, Any]:
    """Parse preset text, turning syntax errors into a located `UserError`."""
    if "\x00" in text:
        raise UserError("this is a binary file, not a TOML preset", source)
    if not text.strip():
        raise UserError("the preset is empty; a preset needs at least [model] layers", source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"TOML syntax error: {exc}", source) from None
    except RecursionError:
        raise UserError(TOO_DEEP, source) from None
    if not data:
        raise UserError("the preset is empty (only comments); a preset needs at least [model] layers", source)
    return data


def resolve_preset(name_or_path: str | Path) -> Path:
    """A preset path from a path or the name of a shipped preset (`digits-cnn`).

    Raises:
        UserError: neither a file nor a shipped preset, with the close names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError("is a folder, not a preset file", str(path))
    shipped = PRESETS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = shipped_presets()
    hint = close_matches(str(name_or_path), names) or f"shipped presets: {', '.join(names)}"
    raise UserError("no such preset file or shipped preset", str(name_or_path), hint)


def shipped_presets() -> list[str]:
    """Names of the presets that ship with tfbench."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_experiment(name_or_path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read, override and validate a preset.

    Args:
        name_or_path: a preset file or the name of a shipped preset.
        overrides: `key.path=value` strings applied before validation.

    Raises:
        UserError: located in the file (`x.toml: model.layers[2].units: …`).
    """
    path = resolve_preset(name_or_path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("this is a binary file, not a TOML preset", source) from None
    data = parse_toml(text, source)
    if isinstance(data.get("data"), dict):
        # The preset's own relative paths are the preset's: they resolve against its folder.
        data["data"] = data_paths_absolute(data["data"], path.resolve().parent)
    if isinstance(data.get("code"), dict):
        data["code"] = code_paths_absolute(data["code"], path.resolve().parent)
    if isinstance(data.get("track"), dict):
        data["track"] = track_paths_absolute(data["track"], path.resolve().parent)
    if overrides:
        apply_overrides(data, overrides)
    return experiment_from_dict(data, source)


def save_experiment(exp: Experiment, path: str | Path) -> Path:
    """Write an Experiment as a preset, atomically (a temp file then a rename).

    Data paths inside the preset's folder are written relative to it, as a preset resolves them.
    """
    import tomli_w

    from tfbench.atomic import write_text

    path = Path(path)
    data = exp.to_dict()
    data["data"] = data_paths_relative(data["data"], path.resolve().parent)
    if "code" in data:
        data["code"] = code_paths_relative(data["code"], path.resolve().parent)
    if "track" in data:
        data["track"] = track_paths_relative(data["track"], path.resolve().parent)
    write_text(path, tomli_w.dumps(data))
    return path


# -- overrides --------------------------------------------------------------------------------

_KEY_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def parse_override_value(text: str) -> Any:
    """A TOML value (`5`, `1e-4`, `true`, `[1, 2]`, `"x"`) or, failing that, the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise UserError(TOO_DEEP, text[:40] + ("…" if len(text) > 40 else "")) from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `train.epochs=5`, `model.layers[2].units=32`-style overrides to parsed data in place.

    Raises:
        UserError: located at `--set KEY` when the key cannot be followed.
    """
    for item in overrides:
        if "=" not in item:
            raise UserError("expected KEY=VALUE (e.g. train.epochs=5)", f"--set {item}")
        key, value_text = item.split("=", 1)
        key = key.strip()
        parts: list[str | int] = []
        for segment in key.split("."):
            match = _KEY_PART.fullmatch(segment)
            if not match:
                raise UserError("expected a dotted key such as train.epochs", f"--set {key}")
            parts.append(match.group(1))
            parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
        node: Any = data
        for here, part in enumerate(parts[:-1]):
            nxt = parts[here + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise UserError(f"there is no item {part} here", f"--set {key}")
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise UserError(f"{part!r} is inside a value, not a table", f"--set {key}")
                if part not in node:
                    # A section the preset leaves to its defaults starts from those defaults, so
                    # `train.optimizer.learning_rate=1e-4` tunes the default Adam.
                    default = _default_at(parts[: here + 1])
                    node[part] = default if default is not None else ([] if isinstance(nxt, int) else {})
                if isinstance(node[part], str) and not isinstance(nxt, int):  # "adam" → { type = "adam" }
                    node[part] = {"type": node[part]}
                node = node[part]
        last = parts[-1]
        value = parse_override_value(value_text.strip())
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise UserError(f"there is no item {last} here", f"--set {key}")
            node[last] = value
        else:
            if not isinstance(node, dict):
                raise UserError(f"{last!r} is inside a value, not a table", f"--set {key}")
            node[last] = value
    return data


def _default_at(path: list[str | int]) -> Any:
    """A copy of the default Experiment's plain value at `path`, or None where it has none."""
    node: Any = Experiment().to_dict()
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
        elif not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (dict, list)) else None


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return value
    return value
