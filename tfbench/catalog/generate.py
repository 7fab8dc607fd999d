"""Derive `catalog.json` from the installed Keras' signatures and docstrings (imports Keras).

Run only when regenerating the cache (`python -m tfbench.catalog.generate`, after a Keras
upgrade); tfbench itself reads the cached file through `tfbench.catalog` and never imports this
module. The tables below are the decisions no signature can make: which classes are never offered
(they run code or wrap other objects), which arguments take objects, which name files a callback
writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tfbench.catalog import CATALOG_PATH, FORMAT_VERSION, IDENTIFIER_CATEGORY, KINDS

# Never offered, never accepted: they run code, wrap other objects, or are not a stand-alone step.
EXCLUDED = {
    "layers": {
        "Lambda": "it runs arbitrary Python code",
        "TFSMLayer": "it loads and runs a SavedModel's code",
        "JaxLayer": "it wraps a JAX function",
        "FlaxLayer": "it wraps a Flax module",
        "TorchModuleWrapper": "it wraps a PyTorch module",
        "InputLayer": "the input comes from the data (set model.input_shape to override it)",
        "Layer": "it is the base class of all layers",
        "Pipeline": "it takes other layer objects",
        "Attention": "it needs several inputs (query, value)",
        "AdditiveAttention": "it needs several inputs (query, value)",
        "MultiHeadAttention": "it needs several inputs (query, value)",
        "GroupQueryAttention": "it needs several inputs (query, value)",
        "HashedCrossing": "it needs several inputs",
        "MaxNumBoundingBoxes": "it works on bounding-box dictionaries, not tensors",
        "STFTSpectrogram": "it needs the optional scipy package",
    },
    "optimizers": {
        "Optimizer": "it is the base class of all optimizers",
        "LossScaleOptimizer": "it wraps another optimizer object (use train.mixed_precision)",
        "MultiOptimizer": "it takes other optimizer objects",
        "OptimizerMap": "it takes other optimizer objects",
    },
    "schedules": {"LearningRateSchedule": "it is the base class of all schedules"},
    "losses": {
        "Loss": "it is the base class of all losses",
        "LossFunctionWrapper": "it wraps a Python function",
    },
    "metrics": {
        "Metric": "it is the base class of all metrics",
        "MeanMetricWrapper": "it wraps a Python function",
    },
    "callbacks": {
        "Callback": "it is the base class of all callbacks",
        "CallbackList": "tfbench assembles the callback list itself",
        "LambdaCallback": "it runs arbitrary Python code",
        "LearningRateScheduler": "it needs a Python function (use train.schedule instead)",
        "History": "tfbench records the history itself (history.csv)",
        "ProgbarLogger": "tfbench shows progress itself",
        "RemoteMonitor": "it sends data over the network",
        "OrbaxCheckpoint": "it needs the optional orbax-checkpoint package",
    },
}
# Constructor arguments that hold a layer, callable or other object: an entry requiring one is
# dropped (wrappers, RNN(cell), Bidirectional…); an optional one is left out of the entry.
OBJECT_PARAMS = {
    "layer",
    "layers",
    "cell",
    "cells",
    "function",
    "backward_layer",
    "inner_optimizer",
    "optimizer",
    "schedule",
    "fn",
    "module",
    "call_fn",
    "init_fn",
    "dtype",
    "autocast",
    "quantization_config",
    "input_shape",
    "batch_input_shape",
    "batch_shape",
    "input_tensor",
    "embeddings_metadata",
    "seed_generator",
    "weights",
}
# Files a callback writes default to places inside the run directory, so they are optional here.
RUN_DIR_PATHS = {
    ("callbacks", "ModelCheckpoint", "filepath"),
    ("callbacks", "BackupAndRestore", "backup_dir"),
    ("callbacks", "CSVLogger", "filename"),
}
# Files a callback writes that keep a default of their own: like RUN_DIR_PATHS, a preset may only
# name a relative path inside the run directory (`tfbench.catalog.check_component` says so).
WRITTEN_PATHS = {("callbacks", "TensorBoard", "log_dir")}
# Ranges Keras states in prose rather than in a phrase `_bounds` reads ("Positive integer",
# "Float between 0 and 1", "Float >= 0"): keyed by (kind, class pattern, argument), first match
# wins, before the docstring. Each says what the argument means, which is why the bound holds.
BOUNDS = {
    ("optimizers", "*", "learning_rate"): {"gt": 0},  # "The learning rate"
    ("optimizers", "*", "beta_1"): {"ge": 0, "lt": 1},  # "exponential decay rate for the 1st moment"
    ("optimizers", "*", "beta_2"): {"ge": 0, "lt": 1},
    ("optimizers", "*", "rho"): {"ge": 0, "lt": 1},  # "Discounting factor" / "decay rate"
    ("optimizers", "*", "ema_momentum"): {"ge": 0, "le": 1},  # the EMA's weight of the old average
    ("optimizers", "*", "epsilon"): {"ge": 0},  # "A small constant for numerical stability"
    ("optimizers", "*", "weight_decay"): {"ge": 0},
    ("optimizers", "*", "clipnorm"): {"gt": 0},  # "clipped so that its norm is no higher than this"
    ("optimizers", "*", "global_clipnorm"): {"gt": 0},
    ("optimizers", "*", "clipvalue"): {"gt": 0},
    ("optimizers", "*", "loss_scale_factor"): {"gt": 0},
    ("optimizers", "*", "ema_overwrite_frequency"): {"ge": 1},  # "every N steps"
    ("optimizers", "*", "gradient_accumulation_steps"): {"ge": 1},
    ("optimizers", "*", "warmup_steps"): {"ge": 0},
    ("schedules", "*", "initial_learning_rate"): {"gt": 0},
    ("schedules", "*", "end_learning_rate"): {"ge": 0},  # "The minimal end learning rate"
    ("schedules", "*", "warmup_target"): {"gt": 0},  # "The target learning rate"
    ("schedules", "*", "decay_steps"): {"gt": 0},  # "Number of steps to decay over"
    ("schedules", "*", "first_decay_steps"): {"gt": 0},
    ("schedules", "*", "warmup_steps"): {"ge": 0},
    ("schedules", "*", "decay_rate"): {"gt": 0},
    ("schedules", "*", "alpha"): {"ge": 0, "le": 1},  # "as a fraction of initial_learning_rate"
    ("schedules", "*", "t_mul"): {"gt": 0},
    ("schedules", "*", "m_mul"): {"gt": 0},
    ("callbacks", "ReduceLROnPlateau", "factor"): {"gt": 0, "lt": 1},  # Keras refuses factor >= 1
    ("callbacks", "*", "patience"): {"ge": 0},  # "Number of epochs with no improvement"
    ("callbacks", "*", "cooldown"): {"ge": 0},
    ("callbacks", "*", "start_from_epoch"): {"ge": 0},
    ("callbacks", "*", "min_delta"): {"ge": 0},
    ("callbacks", "*", "min_lr"): {"ge": 0},  # "Lower bound on the learning rate"
    ("callbacks", "*", "histogram_freq"): {"ge": 0},  # "frequency (in epochs)"; 0 switches it off
    ("callbacks", "*", "embeddings_freq"): {"ge": 0},
    ("callbacks", "*", "profile_batch"): {"ge": 0},  # "must be a non-negative integer"
    ("callbacks", "*", "save_freq"): {"gt": 0},  # a number of batches, where it is not "epoch"
    ("callbacks", "*", "update_freq"): {"gt": 0},
    ("callbacks", "*", "verbose"): {"ge": 0},
    ("layers", "*", "units"): {"gt": 0},  # "dimensionality of the output space"
    ("layers", "*", "filters"): {"gt": 0},  # "the number of filters in the convolution"
    ("layers", "*", "kernel_size"): {"gt": 0},  # "the size of the convolution window"
    ("layers", "*", "strides"): {"gt": 0},
    ("layers", "*", "dilation_rate"): {"gt": 0},
    ("layers", "*", "pool_size"): {"gt": 0},
    ("layers", "*", "depth_multiplier"): {"gt": 0},
    ("layers", "*", "input_dim"): {"gt": 0},  # "Size of the vocabulary"
    ("layers", "*", "output_dim"): {"gt": 0},  # "Dimension of the dense embedding"
    ("layers", "*", "output_size"): {"gt": 0},
    ("layers", "*", "max_tokens"): {"gt": 0},
    ("layers", "*", "num_tokens"): {"gt": 0},
    ("layers", "*", "num_bins"): {"gt": 0},
    ("layers", "UpSampling*", "size"): {"gt": 0},  # "Upsampling factor"
    ("layers", "ZeroPadding*", "padding"): {"ge": 0},  # "how many zeros to add"
    ("layers", "Cropping*", "cropping"): {"ge": 0},  # "how many units should be trimmed off"
    ("layers", "*Dropout*", "rate"): {"ge": 0, "lt": 1},  # a drop fraction: 1 drops everything
    ("layers", "*", "dropout"): {"ge": 0, "lt": 1},
    ("layers", "*", "recurrent_dropout"): {"ge": 0, "lt": 1},
    ("layers", "*Normalization", "epsilon"): {"gt": 0},  # "added to variance to avoid dividing by zero"
    ("layers", "BatchNormalization", "momentum"): {"ge": 0, "le": 1},  # of the moving average
    ("layers", "ActivityRegularization", "l1"): {"ge": 0},  # "(positive float)", default 0.0
    ("layers", "ActivityRegularization", "l2"): {"ge": 0},
    ("metrics", "*", "k"): {"gt": 0},  # "Number of top elements"
    ("metrics", "*", "num_classes"): {"gt": 0},
    ("metrics", "*", "target_class_ids"): {"ge": 0},  # class ids
    ("layers", "*", "value_range"): None,  # any (low, high) the images have
}
# Accuracy and crossentropy that `model.compile` resolves from the labels' form.
COMPILE_IDENTIFIERS = {"metrics": ("accuracy", "acc"), "losses": ("crossentropy", "ce")}
LAYER_CATEGORIES = {
    "activations": "Activation",
    "attention": "Attention",
    "convolutional": "Convolution",
    "core": "Core",
    "merging": "Merging",
    "normalization": "Normalization",
    "pooling": "Pooling",
    "preprocessing": "Preprocessing",
    "image_preprocessing": "Image preprocessing",
    "regularization": "Regularization",
    "reshaping": "Reshaping",
    "rnn": "Recurrent",
}


def generate() -> dict[str, Any]:
    """Derive the catalog from the installed Keras' signatures and docstrings.

    Returns:
        The JSON-ready catalog: Keras version, shared choice sets, and sorted entries per kind.
    """
    import keras

    sets = _choice_sets(keras)
    kinds = {
        "layers": _classes(keras.layers, keras.layers.Layer),
        "optimizers": _classes(keras.optimizers, keras.optimizers.Optimizer),
        "schedules": _classes(keras.optimizers.schedules, keras.optimizers.schedules.LearningRateSchedule),
        "losses": _classes(keras.losses, keras.losses.Loss),
        "metrics": _classes(keras.metrics, keras.metrics.Metric),
        "callbacks": _classes(keras.callbacks, keras.callbacks.Callback),
    }
    aliases = {
        "losses": _identifier_aliases(keras, "losses", kinds["losses"]),
        "metrics": _identifier_aliases(keras, "metrics", kinds["metrics"]),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    excluded: dict[str, dict[str, str]] = {}
    for kind, classes in kinds.items():
        rows = []
        refused = {name: reason for name, reason in EXCLUDED[kind].items()}
        for name, (cls, other_names) in sorted(classes.items()):
            row, reason = _describe(kind, name, cls, sets)
            if row is None:
                for refused_name in (name, *other_names):
                    refused[refused_name] = reason
                continue
            extra = sorted(set(other_names) | set(aliases.get(kind, {}).get(name, ())))
            if extra:
                row["aliases"] = extra
            if other_names:
                row["exported_as"] = sorted(other_names)
            rows.append(row)
        rows.extend(_compile_identifiers(kind))
        out[kind] = sorted(rows, key=lambda r: r["name"])
        excluded[kind] = dict(sorted(refused.items()))
    return {
        "format": FORMAT_VERSION,
        "keras_version": keras.__version__,
        "choice_sets": {key: list(values) for key, values in sorted(sets.items())},
        "excluded": excluded,
        "kinds": out,
    }


# The helpers below run only inside generate(), with keras imported by the caller.
_COMPILE_HELP = {
    "accuracy": "Accuracy in the form the labels need (binary, categorical or sparse), chosen by compile.",
    "acc": "Short for accuracy: binary, categorical or sparse accuracy, chosen by compile from the labels.",
    "crossentropy": "Crossentropy in the form the labels need (binary, categorical or sparse), chosen by compile.",
    "ce": "Short for crossentropy: binary, categorical or sparse, chosen by compile from the labels.",
}
_BASES = {"Initializer", "Regularizer", "Constraint", "initializer", "regularizer", "constraint"}
# Choices Keras offers only where the optional scipy package is installed: left out, so the catalog
# is the same with or without it (and a preset that uses one does not depend on it).
_NEEDS_SCIPY = {"stft", "STFT", "STFTInitializer"}


def _choice_sets(keras) -> dict[str, tuple[str, ...]]:
    """String names Keras' own `get()` accepts for activations, initializers, regularizers, constraints."""
    import importlib
    import inspect

    sets = {}
    for key, module in (
        ("activation", keras.activations),
        ("initializer", keras.initializers),
        ("regularizer", keras.regularizers),
        ("constraint", keras.constraints),
    ):
        # Public names plus the registered short forms (`uniform`, `l1l2`) that `get()` resolves.
        source = importlib.import_module("keras.src." + module.__name__.rsplit(".", 1)[-1])
        candidates = {n for n in dir(module) if callable(getattr(module, n)) or inspect.isclass(getattr(module, n))}
        candidates |= set(getattr(source, "ALL_OBJECTS_DICT", {}))
        found = []
        for name in sorted(candidates):
            if name.startswith("_") or name in {"get", "serialize", "deserialize"} or name in _BASES | _NEEDS_SCIPY:
                continue
            try:
                resolved = module.get(name)
            except Exception:  # noqa: BLE001 - Keras refuses the name: not a choice
                continue
            if resolved is not None:
                found.append(name)
        sets[key] = tuple(sorted(found, key=lambda n: (n[0].isupper(), n)))
    return sets


def _classes(module, base) -> dict[str, tuple[type, list[str]]]:
    """Exported subclasses of `base` by canonical name, with the other names they are exported as."""
    import inspect

    by_class: dict[type, list[str]] = {}
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or not inspect.isclass(obj) or not issubclass(obj, base):
            continue
        by_class.setdefault(obj, []).append(name)
    result = {}
    for cls, exported in by_class.items():
        canonical = cls.__name__ if cls.__name__ in exported else sorted(exported)[0]
        result[canonical] = (cls, sorted(n for n in exported if n != canonical))
    return result


def _identifier_aliases(keras, kind: str, classes: dict[str, tuple[type, list[str]]]) -> dict[str, list[str]]:
    """String identifiers (`mse`, `sparse_categorical_accuracy`) mapped to the class they name.

    Each is verified with Keras' `keras.losses.get` / `keras.metrics.get`; functions are matched
    to the class whose default instance wraps them.
    """
    import inspect

    module = getattr(keras, kind)
    from keras.src import losses as src_losses
    from keras.src import metrics as src_metrics

    candidates = {n for n in dir(module) if not n.startswith("_") and not inspect.isclass(getattr(module, n))}
    candidates |= set((src_losses if kind == "losses" else src_metrics).ALL_OBJECTS_DICT)
    candidates -= {"get", "serialize", "deserialize", *COMPILE_IDENTIFIERS.get(kind, ())}
    by_fn: dict[Any, str] = {}
    for name, (cls, _) in classes.items():
        try:
            instance = cls()
        except Exception:  # noqa: BLE001 - needs arguments; matched by name instead
            continue
        fn = getattr(instance, "fn", None) or getattr(instance, "_fn", None)
        if fn is not None:
            by_fn.setdefault(fn, name)
    aliases: dict[str, list[str]] = {}
    for ident in sorted(candidates):
        if ident in classes:
            continue
        try:
            obj = module.get(ident)
        except Exception:  # noqa: BLE001 - Keras does not accept it: not an identifier
            continue
        # A function (`mse` → mean_squared_error), a wrapper of one, or an instance of the class.
        wrapped = getattr(obj, "fn", None) or getattr(obj, "_fn", None)
        target = (
            by_fn.get(obj)
            or (by_fn.get(wrapped) if wrapped is not None else None)
            or next((n for n, (c, _) in classes.items() if c is type(obj)), None)
        )
        if target is not None:
            aliases.setdefault(target, []).append(ident)
    return aliases


def _compile_identifiers(kind: str) -> list[dict[str, Any]]:
    """`accuracy`/`acc` and `crossentropy`/`ce`: names `model.compile` resolves from the labels."""
    import numpy as np
    from keras.src.trainers import compile_utils

    rows = []
    y_true = np.zeros((2, 1), "float32")
    y_pred = np.full((2, 1), 0.5, "float32")
    for ident in COMPILE_IDENTIFIERS.get(kind, ()):
        resolve = compile_utils.get_metric if kind == "metrics" else compile_utils.get_loss
        resolve(ident, y_true, y_pred)  # raises if this Keras no longer knows the name
        rows.append({"name": ident, "help": _COMPILE_HELP[ident], "category": IDENTIFIER_CATEGORY, "params": []})
    return rows


def _category(kind: str, cls: type) -> str:
    parts = cls.__module__.split(".")
    if kind == "layers":
        for part in reversed(parts[3:-1]):
            if part in LAYER_CATEGORIES:
                return LAYER_CATEGORIES[part]
        return "Other"
    if kind == "metrics" and parts[-1].endswith("_metrics"):
        stem = parts[-1][: -len("_metrics")]
        return {"iou": "IoU", "f_score": "F-score"}.get(stem, stem.replace("_", " ").capitalize())
    return ""


def _derived_exclusion(kind: str, name: str, cls: type) -> str | None:
    if kind != "layers":
        return None
    if ".merging." in cls.__module__:
        return "it merges several inputs, which a layer stack does not have"
    if name.endswith("Cell") or name == "StackedRNNCells":
        return "a cell goes inside an RNN layer; use LSTM, GRU or SimpleRNN"
    if (
        ".core.wrapper" in cls.__module__
        or ".rnn.bidirectional" in cls.__module__
        or name
        in {
            "TimeDistributed",
            "SpectralNormalization",
            "RNN",
        }
    ):
        return "it wraps another layer object"
    return None


def _describe(kind: str, name: str, cls: type[Any], sets: dict[str, tuple[str, ...]]):
    """One entry as JSON-ready data, or (None, reason) when it must not be offered."""
    import inspect

    reason = EXCLUDED[kind].get(name) or _derived_exclusion(kind, name, cls)
    if reason:
        return None, reason
    docs = _arg_docs(cls)
    signature = inspect.signature(cls.__init__)
    params = []
    omitted = []
    takes_kwargs = False
    for pname, p in signature.parameters.items():
        if pname == "self" or p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            takes_kwargs = True
            continue
        row = _param(kind, name, pname, p.default, docs.get(pname, ""), sets)
        if row is None:
            if p.default is p.empty:
                return None, f"it needs {pname!r}, which is an object, not a value"
            omitted.append(pname)
        else:
            params.append(row)
    if kind == "layers" and takes_kwargs:
        # `**kwargs` reach keras.layers.Layer: offer its plain ones (name, trainable).
        mro: tuple[type[Any], ...] = inspect.getmro(cls)
        base = next(k for k in mro if k.__name__ == "Layer" and ".layers.layer" in k.__module__)
        base_docs = _arg_docs(base)
        base_params = inspect.signature(base.__init__).parameters
        present = {p["name"] for p in params}
        for pname in ("name", "trainable", "dtype"):
            if pname in present:
                continue
            default = base_params[pname].default
            base_row = _param(kind, name, pname, default, base_docs.get(pname, ""), sets)
            if base_row is None:
                omitted.append(pname)
            else:
                params.append(base_row)
    entry: dict[str, Any] = {"name": name, "help": _first_sentence(inspect.cleandoc(cls.__doc__ or ""))}
    category = _category(kind, cls)
    if category:
        entry["category"] = category
    entry["params"] = params
    if omitted:
        entry["omitted"] = sorted(omitted)
    return entry, None


def describe_class(kind: str, cls: type, category: str) -> tuple[dict[str, Any] | None, str | None]:
    """A class of a preset's own code as a catalog row, derived as Keras' own classes are.

    Args:
        kind: `layers`, `losses`, `metrics` or `callbacks`.
        cls: the class (its `__init__` signature, defaults and docstrings give the form).
        category: the heading it is listed under (its module's file name).

    Returns:
        (row, None), or (None, why it cannot be offered) — e.g. a required argument that takes an object.
    """
    row, reason = _describe(kind, cls.__name__, cls, {})
    if row is not None:
        row["category"] = category
    return row, reason


_EMPTY = object()


def _json_default(value: Any) -> Any:
    """A default as JSON (tuples become lists), or _EMPTY when it has no plain form."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _EMPTY
    if isinstance(value, (tuple, list)):
        items = [_json_default(v) for v in value]
        return _EMPTY if any(i is _EMPTY for i in items) else items
    return _EMPTY


_QUOTED = re.compile(r"""(?<![\w=])["']([A-Za-z0-9_+\-.]+)["'](?![\w])""")
_CHOICE_WORDS = re.compile(
    r"\bone of\b|\beither\b|\bsupport|\{|\bcan be\b|\bshould be\b|\bmust be\b|\boptions?\b"
    r"|\bvalues? (?:are|is)\b|\bor\b"
)


def _param(kind: str, owner: str, name: str, default: Any, doc: str, sets) -> dict[str, Any] | None:
    """One parameter as JSON-ready data, or None when it takes an object."""
    import inspect

    if name in OBJECT_PARAMS:
        return None
    required = default is inspect.Parameter.empty
    if (kind, owner, name) in RUN_DIR_PATHS:
        required, default = False, None
    value = None if required else _json_default(default)
    if value is _EMPTY:
        return None
    ptype, choices = _kind_and_choices(name, value, required, " ".join(doc.split()))
    row: dict[str, Any] = {"name": name, "kind": ptype}
    if value is not None:
        row["default"] = value
    if required:
        row["required"] = True
    if choices:
        row["choices"] = choices if isinstance(choices, str) else list(choices)
    if value is None and not required:
        row["nullable"] = True
    if ptype in _NUMERIC_KINDS:
        bounds = _bounds(kind, owner, name, doc, value)
        if bounds:
            row["bounds"] = bounds
    help_text = _first_sentence(doc)
    if (kind, owner, name) in RUN_DIR_PATHS:
        help_text = (help_text + " Defaults to a path inside the run directory.").strip()
    if (kind, owner, name) in RUN_DIR_PATHS | WRITTEN_PATHS:
        row["run_dir_path"] = True
    if help_text:
        row["help"] = help_text
    return row


def _kind_and_choices(name: str, value: Any, required: bool, text: str) -> tuple[str, Any]:
    """A parameter's catalog kind and accepted strings, from its default, name and description."""
    lowered = text.lower()
    head = lowered[:160]
    bare_head = _QUOTED.sub("", head)  # `"int"` as a choice is not the word int
    named_set = _named_set(name)
    if named_set and (value is None or isinstance(value, str)):
        return "choice", named_set
    quoted = list(dict.fromkeys(_QUOTED.findall(text if isinstance(value, str) else text[:200])))
    if isinstance(value, str) and value not in quoted:
        quoted.insert(0, value)
    looks_like_choice = (
        len(quoted) >= 2
        and _CHOICE_WORDS.search(lowered)
        and (isinstance(value, str) or (value is None and not required))
        and not _FREE_TEXT.search(name)
    )
    if isinstance(value, bool):
        return "bool", ()
    if _FREE_TEXT.search(name) and (value is None or isinstance(value, str)):
        return "str", ()
    if looks_like_choice:
        also_number = re.search(r"\bint(eger)?s?\b|\bfloat\b", bare_head)
        return ("any" if also_number else "choice"), tuple(quoted)
    if isinstance(value, int):
        int_like = _says_int(bare_head) or _INT_NAME.search(name)
        return ("int" if int_like and not re.search(r"\bfloat", bare_head) else "float"), ()
    if isinstance(value, float):
        return "float", ()
    if isinstance(value, str) and _says_int(bare_head):
        return "any", tuple(quoted)  # e.g. save_freq: "epoch" or a number of batches
    if isinstance(value, str):
        return "str", ()
    if isinstance(value, list):
        flat = _flatten(value)
        all_ints = bool(flat) and all(isinstance(v, int) for v in flat)
        int_doc = _says_int(head) and not re.search(r"\bfloat", head)
        return ("int_or_tuple" if all_ints and int_doc else "list"), ()
    if _INT_NAME.search(name):
        return "int", ()
    if required:
        return _type_from_doc(bare_head), ()
    # Optional with no default: trust only a type the description starts with.
    start = re.sub(r"^\W*(optional|an?|the)\b\W*", "", _QUOTED.sub("", lowered))
    ptype = _type_from_doc(start[:40])
    if ptype in ("int", "float") and _LISTY.search(bare_head):
        ptype = "int_or_tuple" if ptype == "int" and _type_from_doc(bare_head) == "int_or_tuple" else "any"
    return ptype, ()


_NUMERIC_KINDS = ("int", "float", "int_or_tuple", "any", "list")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
# Docstring phrases that state a range, most specific first; the first found decides. A range
# is read where Keras states it ("Float in range [0, 1]", "Values must be > 1"), not from an
# example ("typically (0, 1) or (0, 255)"); "positive float" only opens a description.
_IN_RANGE = r"\b(?:in|within) (?:the )?(?:range )?"
_BOUND_PHRASES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], dict[str, int | float]]], ...] = (
    (re.compile(_IN_RANGE + r"\(0, ?1\)"), lambda m: {"gt": 0, "lt": 1}),
    (re.compile(_IN_RANGE + r"\[0, ?1\)"), lambda m: {"ge": 0, "lt": 1}),
    (re.compile(_IN_RANGE + r"\[0(?:\.0)?, ?1(?:\.0)?\]"), lambda m: {"ge": 0, "le": 1}),
    (
        re.compile(rf"\bbetween {_NUMBER} and {_NUMBER}(?!\d)"),
        lambda m: {"ge": _number(m.group(1)), "le": _number(m.group(2))},
    ),
    (re.compile(r"\bnon-?negative\b"), lambda m: {"ge": 0}),
    (
        re.compile(rf"\b(?:float|int|integer|number|hyperparameter|value)s? >= ?{_NUMBER}"),
        lambda m: {"ge": _number(m.group(1))},
    ),
    (re.compile(rf"\bmust be (>=?) ?{_NUMBER}"), lambda m: {"ge" if m.group(1) == ">=" else "gt": _number(m.group(2))}),
    (re.compile(r"\bmust be (?:strictly )?positive\b"), lambda m: {"gt": 0}),
    (
        re.compile(r"^(?:\(optional\) )?(?:an? )?(?:strictly )?positive (?:int|integer|float|number|scalar)s?\b"),
        lambda m: {"gt": 0},
    ),
)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _bounds(kind: str, owner: str, name: str, doc: str, default: Any) -> dict[str, int | float] | None:
    """The range Keras documents for a numeric argument: the explicit table, else its docstring.

    A range Keras' own default falls outside was misread (a strict bound the default sits on is
    kept as an inclusive one: "positive float", default 0.0), so the default always validates.
    """
    import fnmatch

    found: dict[str, int | float] | None = None
    for (k, pattern, arg), bounds in BOUNDS.items():
        if k == kind and arg == name and fnmatch.fnmatchcase(owner, pattern):
            found = dict(bounds) if bounds else None
            break
    else:
        text = " ".join(doc.replace("`", "").split()).lower()
        for phrase, bound_of in _BOUND_PHRASES:
            match = phrase.search(text)
            if match:
                found = bound_of(match)
                break
    numbers = [v for v in _flatten(default) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for strict, inclusive in (("gt", "ge"), ("lt", "le")):
        if found and strict in found and found[strict] in numbers:
            found[inclusive] = found.pop(strict)
    if found and not all(_within(v, found) for v in numbers):
        return None
    return found


def _within(value: float, bounds: dict[str, float]) -> bool:
    checks = {"gt": value.__gt__, "ge": value.__ge__, "lt": value.__lt__, "le": value.__le__}
    return all(checks[key](limit) for key, limit in bounds.items())


def _named_set(name: str) -> str | None:
    if name == "activation" or name.endswith("_activation"):
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if name.endswith("_" + suffix):
            return suffix
    return None


_INT_OR_TUPLE = re.compile(
    r"\bint(eger)?s? or (a )?(tuple|list)|(tuple|list)(/list)? of \d+ int|int(eger)?s?, or (a )?(tuple|list)"
)
_LISTY = re.compile(r"\btuple\b|\blist\b|\barray\b|\bsequence\b|\btensor\b|\bshape\b")
_STATED_TYPE = re.compile(r"^(?:an? )?(int|integer|float)s?\s*[,.]")
_INT_NAME = re.compile(r"^(axis|seed|verbose|patience|cooldown|units|filters|k|n)$|_steps$|^num_")
_FREE_TEXT = re.compile(r"path|dir$|file|name$|^monitor$|token$|^separator$")


def _says_int(text: str) -> bool:
    return bool(re.search(r"\bint(eger)?s?\b|\bnumber of\b|\bverbos", text))


def _type_from_doc(head: str) -> str:
    """A parameter's type from the start of its docstring, for parameters without a plain default."""
    if _INT_OR_TUPLE.search(head):
        return "int_or_tuple"
    if re.search(r"\bbool(ean)?\b", head):
        return "bool"
    # "Integer, the height of the output shape.": a type word that opens the description and ends
    # its clause is the type; a later "shape" or "list" describes something else.
    stated = _STATED_TYPE.match(head)
    if stated:
        return "float" if stated.group(1) == "float" else "int"
    listy = _LISTY.search(head)
    if re.search(r"\bfloat|\bnumber between\b|\bfraction\b|\bscalar\b|\brate\b", head):
        return "any" if listy and not re.search(r"\bfloat tensor", head) else "float"
    if listy:
        return "list"
    if _says_int(head):
        return "int"
    if re.search(r"\bstr(ing)?\b|\bpath\b|\bfile|\bdirectory\b|\bname\b", head):
        return "str"
    return "any"


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]


_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\s*)\**(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


def _arg_docs(cls: type[Any]) -> dict[str, str]:
    """Argument descriptions from the "Args:" sections of a class's docstrings (subclass first)."""
    import inspect

    found: dict[str, str] = {}
    mro: tuple[type[Any], ...] = inspect.getmro(cls)
    for klass in mro:
        for doc in (klass.__doc__, getattr(klass.__init__, "__doc__", None)):
            for name, text in _parse_args(doc or "").items():
                found.setdefault(name, text)
    return found


def _parse_args(doc: str) -> dict[str, str]:
    import inspect

    # cleandoc: the same text whether or not the interpreter already stripped the indentation.
    lines = inspect.cleandoc(doc).expandtabs().splitlines()
    result: dict[str, str] = {}
    i = 0
    while i < len(lines):
        header = _ARGS_HEADER.match(lines[i])
        i += 1
        if not header:
            continue
        base = len(header.group(1))
        arg_indent = None
        current = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= base:
                break
            match = _ARG_LINE.match(line)
            if match and (arg_indent is None or indent == arg_indent):
                arg_indent = indent
                current = match.group(2)
                result.setdefault(current, match.group(3))
            elif current is not None and current in result:
                result[current] += " " + line.strip()
            i += 1
    return result


def _first_sentence(doc: str) -> str:
    """The first sentence of a docstring or argument description, on one line, without markup."""
    paragraph = doc.strip().split("\n\n")[0]
    text = " ".join(paragraph.split()).replace("`", "")
    # A sentence ends at . ! or ? before a space or the end, but not in "e.g." or "i.e.".
    match = re.match(r"(.+?(?<!\be\.g)(?<!\bi\.e)[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    if len(sentence) > 200:
        sentence = sentence[:197].rsplit(" ", 1)[0] + "…"
    return sentence


def render(data: dict[str, Any]) -> str:
    """The catalog as the deterministic text stored in catalog.json."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Regenerate catalog.json from the installed Keras."""
    from tfbench.atomic import write_text

    data = generate()
    write_text(CATALOG_PATH, render(data))
    counts = ", ".join(f"{len(data['kinds'][k])} {k}" for k in KINDS)
    print(f"wrote {CATALOG_PATH} (Keras {data['keras_version']}): {counts}")


if __name__ == "__main__":
    main()
