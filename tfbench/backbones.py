"""Pretrained `keras.applications` backbones as one stack entry — without a UI, TensorFlow only when built.

A backbone entry names a `keras.applications` class (`MobileNetV2`) with its own constructor
arguments, plus three keys of tfbench's: `weights` ("imagenet", "none" for random weights, or a
path to a local weights file), `trainable` (false freezes it: the Keras transfer-learning recipe,
which also calls it with `training=False` so its BatchNormalization layers stay in inference mode,
also after a fine-tuning unfreeze) and `preprocess` (true puts the family's expected input
scaling inside the model as a Keras `Rescaling` layer, so the model — and its exports — take raw
0–255 pixels; families whose models already contain their preprocessing need nothing).

This module holds what tfbench knows of the families: their names, the input sizes Keras accepts,
their preprocessing, and how an offline, uncached `weights = "imagenet"` is reported. Validation
and summaries build backbones with `weights=None`: shapes and parameter counts do not need the
weights, so `tfbench validate` never downloads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfbench.errors import UserError, close_matches


@dataclass(frozen=True)
class Family:
    """What a group of `keras.applications` models has in common.

    Attributes:
        module: the `keras.applications` submodule holding `preprocess_input`.
        min_size: the smallest height and width Keras accepts (without the top).
        preprocessing: "tf" (pixels to [-1, 1]), "torch" (to [0, 1], then ImageNet mean and
            std), "caffe" (RGB to BGR, ImageNet mean subtracted) or "inside" (the model
            already scales raw pixels itself).
        args: the family's own constructor arguments and their kinds (beyond the common ones).
    """

    module: str
    min_size: int
    preprocessing: str
    args: tuple[tuple[str, str], ...] = ()


_MOBILENET = (("alpha", "float"), ("depth_multiplier", "int"), ("dropout", "float"))
_MOBILENET_V3 = (
    ("alpha", "float"),
    ("minimalistic", "bool"),
    ("dropout_rate", "float"),
    ("include_preprocessing", "bool"),
)
_INCLUDE_PREPROCESSING = (("include_preprocessing", "bool"),)

# Class name → (family, default input size). The default size is what `include_top = true` with
# ImageNet weights requires.
BACKBONES: dict[str, tuple[Family, int]] = {}


def _add(names: str, family: Family, size: int | tuple[int, ...]) -> None:
    sizes = size if isinstance(size, tuple) else (size,) * len(names.split())
    for name, default in zip(names.split(), sizes):
        BACKBONES[name] = (family, default)


_add("MobileNet", Family("mobilenet", 32, "tf", _MOBILENET), 224)
_add("MobileNetV2", Family("mobilenet_v2", 32, "tf", _MOBILENET[:1]), 224)
_add("MobileNetV3Small MobileNetV3Large", Family("mobilenet_v3", 32, "inside", _MOBILENET_V3), 224)
_add("Xception", Family("xception", 71, "tf"), 299)
_add("InceptionV3", Family("inception_v3", 75, "tf"), 299)
_add("InceptionResNetV2", Family("inception_resnet_v2", 75, "tf"), 299)
_add("NASNetMobile NASNetLarge", Family("nasnet", 32, "tf"), (224, 331))
_add("ResNet50V2 ResNet101V2 ResNet152V2", Family("resnet_v2", 32, "tf"), 224)
_add("ResNet50 ResNet101 ResNet152", Family("resnet", 32, "caffe"), 224)
_add("VGG16", Family("vgg16", 32, "caffe"), 224)
_add("VGG19", Family("vgg19", 32, "caffe"), 224)
_add("DenseNet121 DenseNet169 DenseNet201", Family("densenet", 32, "torch"), 224)
_add(
    "EfficientNetB0 EfficientNetB1 EfficientNetB2 EfficientNetB3 EfficientNetB4 EfficientNetB5 "
    "EfficientNetB6 EfficientNetB7",
    Family("efficientnet", 32, "inside"),
    (224, 240, 260, 300, 380, 456, 528, 600),
)
_add(
    "EfficientNetV2B0 EfficientNetV2B1 EfficientNetV2B2 EfficientNetV2B3 EfficientNetV2S "
    "EfficientNetV2M EfficientNetV2L",
    Family("efficientnet_v2", 32, "inside", _INCLUDE_PREPROCESSING),
    (224, 240, 260, 300, 384, 480, 480),
)
_add(
    "ConvNeXtTiny ConvNeXtSmall ConvNeXtBase ConvNeXtLarge ConvNeXtXLarge",
    Family("convnext", 32, "inside", _INCLUDE_PREPROCESSING),
    224,
)

# Arguments every backbone takes (Keras' own, plus tfbench's weights/trainable/preprocess/name).
COMMON_ARGS = (
    ("include_top", "bool"),
    ("weights", "str"),
    ("pooling", "choice"),
    ("classes", "int"),
    ("classifier_activation", "str"),
    ("trainable", "bool"),
    ("preprocess", "bool"),
    ("name", "str"),
)
POOLING = ("avg", "max")
# ImageNet statistics behind the "torch" preprocessing (keras.applications.imagenet_utils).
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def is_backbone(name: Any) -> bool:
    """Whether a stack entry's type names a `keras.applications` model."""
    return isinstance(name, str) and name in BACKBONES


def family(name: str) -> Family:
    """The family of a backbone class name."""
    return BACKBONES[name][0]


def params(name: str) -> dict[str, Any]:
    """The arguments a backbone entry accepts, as catalog `Param`s (for validation and forms)."""
    from tfbench import catalog

    defaults = {
        "include_top": True,
        "weights": "imagenet",
        "pooling": None,
        "classes": 1000,
        "classifier_activation": "softmax",
        "trainable": True,
        "preprocess": False,
        "name": None,
        "alpha": 1.0,
        "depth_multiplier": 1,
        "dropout": 1e-3,
        "minimalistic": False,
        "dropout_rate": 0.2,
        "include_preprocessing": True,
    }
    out = {}
    for arg, kind in COMMON_ARGS + family(name).args:
        out[arg] = catalog.Param(
            name=arg,
            kind=kind,
            default=defaults.get(arg),
            required=False,
            choices=POOLING if arg == "pooling" else (),
            nullable=defaults.get(arg) is None,
        )
    return out


def check(name: str, args: dict[str, Any], location: str) -> None:
    """Check a backbone entry's arguments (types, choices, what preprocessing it can have).

    Raises:
        UserError: at `location.ARG`, saying what is expected.
    """
    from tfbench import catalog

    accepted = params(name)
    for arg, value in args.items():
        param = accepted.get(arg)
        if param is None:
            hint = close_matches(arg, list(accepted)) or "valid: " + ", ".join(accepted)
            raise UserError(f"{name} has no argument {arg!r}", f"{location}.{arg}", hint)
        catalog.check_value(param, value, f"{location}.{arg}")
    weights = args.get("weights", "imagenet")
    if weights not in ("imagenet", "none") and not str(weights).endswith((".h5", ".keras", ".weights.h5")):
        raise UserError(
            f'weights {weights!r} is neither "imagenet", "none" nor a weights file (.h5)',
            f"{location}.weights",
        )
    if args.get("preprocess") and family(name).preprocessing == "caffe":
        raise UserError(
            f"{name} expects caffe-style input (BGR channel order, ImageNet mean subtracted), which no "
            "built-in Keras layer expresses inside the model",
            f"{location}.preprocess",
            "set preprocess = false and feed preprocessed pixels, or choose a backbone such as "
            "MobileNetV2, Xception, ResNet50V2 or DenseNet121",
        )


def preprocessing_layers(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The Keras layers (class name, arguments) that turn raw 0–255 pixels into this backbone's input.

    The same scaling as the family's `keras.applications.<module>.preprocess_input`, as a
    `Rescaling` layer (no weights), so the model takes raw pixels. Empty for families that
    preprocess inside the model.
    """
    mode = family(name).preprocessing
    if mode == "tf":
        return [("Rescaling", {"scale": 1 / 127.5, "offset": -1.0})]
    if mode == "torch":
        scale = [round(1 / (255.0 * s), 10) for s in _TORCH_STD]
        offset = [round(-m / s, 10) for m, s in zip(_TORCH_MEAN, _TORCH_STD)]
        return [("Rescaling", {"scale": scale, "offset": offset})]
    return []


def size_problem(name: str, args: dict[str, Any], shape: tuple) -> tuple[str, str] | None:
    """What is wrong with one sample's input `shape` for this backbone, with what to add, or None.

    Keras' own rules (`imagenet_utils.obtain_input_shape`): images (height, width, channels), at
    least the family's minimum size, 3 channels with ImageNet weights, and exactly the default
    size when the ImageNet classifier top is kept.

    Returns:
        (problem, hint) or None when the shape fits.
    """
    fam, default = BACKBONES[name]
    if len(shape) != 3:
        dims = "×".join("?" if d is None else str(d) for d in shape)
        return (
            f"{name} needs images (height, width, channels) but gets shape ({dims})",
            "feed it images, or add a Reshape before it",
        )
    height, width, channels = shape
    weights = args.get("weights", "imagenet")
    if weights != "none" and channels != 3:
        return (
            f"{name} with pretrained weights needs 3 colour channels but gets {channels}",
            'use colour images (e.g. images source with color_mode = "rgb"), or weights = "none"',
        )
    if args.get("include_top", True) and weights == "imagenet" and (height, width) != (default, default):
        return (
            f"{name} with its ImageNet classifier (include_top = true) needs {default}×{default} "
            f"input but gets {height}×{width}",
            f'add {{ type = "Resizing", height = {default}, width = {default} }} before it, or set include_top = false',
        )
    small = [d for d in (height, width) if d is not None and d < fam.min_size]
    if small:
        return (
            f"{name} needs input of at least {fam.min_size}×{fam.min_size} but gets {height}×{width}",
            f'add {{ type = "Resizing", height = {fam.min_size}, width = {fam.min_size} }} before it '
            f"(or larger, up to its native {default}×{default})",
        )
    return None


def constructor_args(name: str, args: dict[str, Any], shape: tuple, load_weights: bool) -> dict[str, Any]:
    """The keyword arguments for `keras.applications.<name>(...)`.

    `weights` becomes None for "none" and whenever the weights are not wanted (validation,
    summaries); tfbench's own keys (`trainable`, `preprocess`) are left out.
    """
    out = {k: v for k, v in args.items() if k not in ("trainable", "preprocess", "weights")}
    weights = args.get("weights", "imagenet")
    out["weights"] = None if (weights == "none" or not load_weights) else weights
    out["input_shape"] = tuple(shape)
    return out


def build(name: str, args: dict[str, Any], shape: tuple, location: str, load_weights: bool) -> Any:
    """Construct the backbone model (a `keras.Model`), its trainable flag set.

    Raises:
        UserError: at `location` for an input it cannot take (with the layer to add), at
            `location.weights` for weights that cannot be had (offline and not in Keras' cache,
            or a missing local file).
    """
    import keras

    problem = size_problem(name, args, shape)
    if problem:
        raise UserError(problem[0], location, problem[1])
    kwargs = constructor_args(name, args, shape, load_weights)
    weights = kwargs["weights"]
    if args.get("weights", "imagenet") not in ("imagenet", "none"):  # a local file: checked by validation too
        check_weights_file(str(args["weights"]), f"{location}.weights")
    try:
        model = getattr(keras.applications, name)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a failed download arrives as any of several types
        if weights not in (None, "imagenet"):  # a local file that does not load (h5py: OSError; Keras: ValueError)
            raise UserError(
                f"cannot load {name}'s weights from {weights}: {first_line(exc)}", f"{location}.weights", WEIGHTS_HINT
            ) from None
        if isinstance(exc, ValueError):
            raise UserError(f"{name}: {exc}", location) from None
        if weights == "imagenet":
            raise _download_error(name, exc, f"{location}.weights") from None
        raise
    model.trainable = bool(args.get("trainable", True))
    return model


def check_unfreeze(fine_tune: Any, built: list[tuple[str, Any]]) -> None:
    """Refuse `train.fine_tune.unfreeze = N` with more layers than a backbone has.

    Args:
        fine_tune: the Experiment's `train.fine_tune` (None: nothing to check).
        built: (class name, built keras model) of each backbone in the stack.

    Raises:
        UserError: at `train.fine_tune.unfreeze`, with the most it can be.
    """
    how = getattr(fine_tune, "unfreeze", "all")
    if how == "all":
        return
    for name, model in built:
        if int(how) > len(model.layers):
            raise UserError(
                f"unfreeze = {how} is more layers than {name} has ({len(model.layers)})",
                "train.fine_tune.unfreeze",
                f'set at most {len(model.layers)}, or "all"',
            )


WEIGHTS_HINT = 'save them again with `model.save_weights("x.weights.h5")`, or use weights = "imagenet" or "none"'


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (h5py and Keras add pages of context)."""
    text = str(exc).strip()
    return (text.splitlines()[0][:200] if text else "") or type(exc).__name__


def check_weights_file(weights: str, location: str) -> None:
    """Refuse a local weights file that is missing or cannot be a weights file, before any training.

    An `.h5` file must open as HDF5 with every object readable (an empty or cut file does not); a
    `.keras` file must be a sound archive (`keras_archive.check_archive`). The weights themselves
    are matched to the model only when they are loaded.

    Raises:
        UserError: at `location`, naming the file and what to do.
    """
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"no such weights file: {weights}", location)
    if path.name.endswith(".keras"):
        from tfbench.keras_archive import check_archive

        check_archive(path, location)
        return
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(lambda _name, item: item.attrs.keys() and None)  # every object's header
    except Exception as exc:  # noqa: BLE001 - h5py reports damage as OSError, KeyError, RuntimeError…
        raise UserError(
            f"the weights file {weights} is damaged or not HDF5 ({first_line(exc)})", location, WEIGHTS_HINT
        ) from None


def _download_error(name: str, exc: Exception, location: str) -> UserError:
    """One clear error for ImageNet weights that could not be fetched into Keras' cache."""
    import os

    text = str(exc)
    url = re.search(r"https?://\S+?\.h5", text)
    file_name = url.group(0).rsplit("/", 1)[-1] if url else f"{name} ImageNet weights"
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return UserError(
        f"cannot fetch {name}'s ImageNet weights: {home / 'models' / file_name} is not in Keras' cache "
        f"and the download failed ({text.splitlines()[0][:160] if text else type(exc).__name__})",
        location,
        f'set weights = "none" (random weights), or weights = "PATH" to a local copy of {file_name}',
    )
