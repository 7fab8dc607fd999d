"""`keras:NAME` — the datasets of `keras.datasets`, read from Keras' cache, downloaded when online.

Without a UI; TensorFlow/Keras imported only when loading. Shapes, classes and sizes are known
here without Keras or the files, so a preset can be designed and validated offline. Loading runs
Keras' own loader so the arrays are exactly Keras'; only where the files come from is ours: a
file already in the cache folder (`cache_dir`, default Keras' own) is used as it is, otherwise
Keras downloads it into its own cache (never into a preset's `cache_dir`, which is only read) —
and with no network the error says which file to copy where.
"""

from __future__ import annotations

import importlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from tfbench.data.info import DataInfo, LabelKind
from tfbench.data.options import SourceOptions, parse_options
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, Splits, planned_sizes, split_arrays
from tfbench.errors import UserError, close_matches

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR100 = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray "
    "road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar "
    "sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle "
    "wardrobe whale willow_tree wolf woman worm"
).split()


@dataclass(frozen=True)
class KerasDataset:
    """What one `keras.datasets` entry holds, known without its files."""

    input_shape: tuple[int, ...]
    label_kind: LabelKind
    class_names: tuple[str, ...]
    sizes: tuple[int, int]
    files: tuple[str, ...]  # what appears under <cache>/datasets/ once it is downloaded
    download_mb: float
    description: str
    sequences: bool = False


DATASETS: dict[str, KerasDataset] = {
    "mnist": KerasDataset(
        (28, 28, 1),
        "categorical",
        tuple(str(i) for i in range(10)),
        (60000, 10000),
        ("mnist.npz",),
        11.5,
        "70,000 28x28 grey handwritten digits, 10 classes.",
    ),
    "fashion_mnist": KerasDataset(
        (28, 28, 1),
        "categorical",
        tuple(FASHION),
        (60000, 10000),
        ("fashion-mnist",),
        30.9,
        "70,000 28x28 grey Zalando clothing images, 10 classes.",
    ),
    "cifar10": KerasDataset(
        (32, 32, 3),
        "categorical",
        tuple(CIFAR10),
        (50000, 10000),
        ("cifar-10-batches-py-target", "cifar-10-batches-py"),
        170.5,
        "60,000 32x32 colour images in 10 classes.",
    ),
    "cifar100": KerasDataset(
        (32, 32, 3),
        "categorical",
        tuple(CIFAR100),
        (50000, 10000),
        ("cifar-100-python-target", "cifar-100-python"),
        169.0,
        "60,000 32x32 colour images in 100 fine classes.",
    ),
    "imdb": KerasDataset(
        (200,),
        "binary",
        ("negative", "positive"),
        (25000, 25000),
        ("imdb.npz",),
        17.5,
        "50,000 IMDB movie reviews as word-index sequences; positive or negative.",
        True,
    ),
    "reuters": KerasDataset(
        (200,),
        "categorical",
        tuple(str(i) for i in range(46)),
        (8982, 2246),
        ("reuters.npz",),
        2.1,
        "11,228 Reuters newswires as word-index sequences, 46 topics.",
        True,
    ),
    "boston_housing": KerasDataset(
        (13,),
        "regression",
        (),
        (404, 102),
        ("boston_housing.npz",),
        0.06,
        "506 Boston suburbs (1970s), 13 features; median home value.",
    ),
    "california_housing": KerasDataset(
        (8,),
        "regression",
        (),
        (16512, 4128),
        ("california_housing.npz",),
        0.7,
        "20,640 California districts (1990), 8 features; median house value.",
    ),
}


class KerasOptions(SourceOptions):
    """Where Keras' cache is and, for the word-sequence datasets, how sequences are cut."""

    cache_dir: str | None = Field(
        None, description="Keras' cache folder (holds datasets/); default: KERAS_HOME or ~/.keras."
    )
    num_words: int | None = Field(None, ge=3, description="imdb/reuters: keep the most frequent words (default 20000).")
    maxlen: int = Field(200, ge=1, description="imdb/reuters: pad or cut sequences to this length.")


OPTIONS = KerasOptions
PICKER = Picker("Keras datasets", "keras:NAME", listed=True)
PATHS = ("cache_dir",)  # relative ones resolve against the preset's folder (registry.path_fields)
NAMED_IO = False
NORMALIZES_ITSELF = False
overview = None
_LOCK = threading.Lock()


def _entry(spec) -> KerasDataset:
    entry = DATASETS.get(spec.target)
    if entry is None:
        hint = close_matches(spec.target, DATASETS) or f"Keras datasets: {', '.join(DATASETS)}"
        raise UserError(f"keras.datasets has no {spec.target!r}", "data.source", hint)
    return entry


def keras_home() -> Path:
    """Keras' own cache folder: `KERAS_HOME`, else `~/.keras` (Keras' own rule)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def cache_root(options: KerasOptions) -> Path:
    """The Keras cache folder read: the option, else Keras' own (`keras_home`)."""
    if options.cache_dir:
        return Path(options.cache_dir).expanduser()
    return keras_home()


def is_cached(entry: KerasDataset, root: Path) -> bool:
    """Whether the dataset's files are already in the cache (no download needed)."""
    return any((root / "datasets" / name).exists() for name in entry.files)


def describe(spec, options: KerasOptions, seed: int | None = 42) -> DataInfo:
    """Shapes, classes and sizes from the table above — no Keras, no files needed."""
    entry = _entry(spec)
    shape = (options.maxlen,) if entry.sequences else entry.input_shape
    train, test = entry.sizes
    root = cache_root(options)
    return DataInfo(
        source=spec.source,
        input_shape=shape,
        label_kind=entry.label_kind,
        num_classes=len(entry.class_names),
        class_names=list(entry.class_names),
        label_shape=(1,) if entry.label_kind == "regression" else (),
        sizes=planned_sizes(spec, {"train": train, "test": test}),
        description=entry.description,
        input_dtype="int32" if entry.sequences else "float32",
        extra={
            "download_mb": entry.download_mb,
            "cached": is_cached(entry, root),
            "cache_dir": str(root),
            "vocab_size": (options.num_words or 20000) if entry.sequences else None,
        },
    )


@contextmanager
def _files_from(module, root: Path, name: str, download: bool = True):
    """Point a Keras dataset loader's `get_file` at `root`, trusting files already placed there.

    Keras' loaders call `get_file` with no cache argument (some with no path argument at all),
    and re-download a cached file whose hash differs; here a file the user placed is used as it
    is, and only a missing file is fetched — into `root`, when `download` allows: a preset's own
    `cache_dir` is only read, so no preset can make tfbench write where it says.
    """
    real = module.get_file

    def get_file(fname=None, origin=None, extract=False, cache_subdir="datasets", **kwargs):
        folder = root / cache_subdir
        local = folder / fname
        if local.exists():
            return str(local)
        if extract:
            # The older layout: the archive's own folder extracted straight into datasets/.
            inner = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}.get(name)
            if inner and (folder / inner).is_dir():
                return str(folder)
        if not download:
            raise UserError(
                f"keras:{name} needs {fname} in {folder}; a preset's cache_dir is only read from, never "
                "downloaded into",
                "data.options.cache_dir",
                f"copy {fname} there, or remove cache_dir so Keras downloads it into its own cache "
                f"({keras_home() / cache_subdir})",
            )
        try:
            return real(fname, origin, extract=extract, cache_subdir=cache_subdir, cache_dir=str(root), **kwargs)
        except Exception as exc:  # urllib/HTTP/OS errors from the download
            raise UserError(
                f"cannot download keras:{name} ({type(exc).__name__}: {str(exc)[:160]})",
                "data.source",
                f"connect to the internet once, or copy {fname} from a machine that has it into {folder}",
            ) from None

    with _LOCK:
        module.get_file = get_file
        try:
            yield
        finally:
            module.get_file = real


def _pad(sequences, maxlen: int) -> np.ndarray:
    """Pad/cut word-index sequences to `maxlen` (keeping the ends, Keras' default 'pre' padding)."""
    out = np.zeros((len(sequences), maxlen), np.int32)
    for i, seq in enumerate(sequences):
        seq = list(seq)[-maxlen:]
        if seq:
            out[i, -len(seq) :] = seq
    return out


def load(spec, options: KerasOptions, seed: int | None = 42) -> Splits:
    """Keras' arrays (channel axis added to grey images), split by `spec`."""
    entry = _entry(spec)
    name = spec.target
    module = importlib.import_module(f"keras.src.datasets.{name}")
    kwargs = {"num_words": options.num_words or 20000} if entry.sequences else {}
    with _files_from(module, cache_root(options), name, download=not options.cache_dir):
        try:
            (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
        except UserError:
            raise
        except Exception as exc:  # a damaged or foreign file in the cache
            raise UserError(
                f"cannot read keras:{name} from {cache_root(options) / 'datasets'}: {exc}",
                "data.source",
                "delete the file so it is downloaded again",
            ) from None
    named = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if entry.sequences:
            x = _pad(x, options.maxlen)
        elif len(entry.input_shape) == 3 and x.ndim == 3:
            x = x[..., None]
        if entry.label_kind == "regression":
            y = np.asarray(y, np.float32).reshape(len(y), 1)
        else:
            y = np.asarray(y).reshape(len(y)).astype(np.int32)
        named[split] = Arrays(x, y)
    return split_arrays(spec, named, seed)


def loader_code(exp, info) -> LoaderCode:
    """The data loader the script `tfbench code` writes for this kind."""
    return LoaderCode(_loader_text(exp, info))


def _loader_text(exp, info) -> str:
    name = exp.data.target
    entry = DATASETS[name]
    options = parse_options(OPTIONS, exp.data.options)
    if entry.sequences:
        words = options.num_words or 20000
        load = f"keras.datasets.{name}.load_data(num_words={words!r})"
        fix_x = (
            f'x = keras.utils.pad_sequences(x, maxlen={options.maxlen!r}, padding="pre", '
            f'truncating="pre").astype(np.int32)'
        )
    else:
        load = f"keras.datasets.{name}.load_data()"
        fix_x = "x = x[..., None]  # add the channel axis" if len(entry.input_shape) == 3 else ""
    fix_y = (
        "y = np.asarray(y, np.float32).reshape(len(y), 1)"
        if entry.label_kind == "regression"
        else "y = np.asarray(y).reshape(len(y)).astype(np.int32)"
    )
    body = [
        f"    (x_train, y_train), (x_test, y_test) = {load}  # downloads once into ~/.keras",
        "    named = {}",
        '    for split_name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):',
    ]
    if fix_x:
        body.append(f"        {fix_x}")
    body.append(f"        {fix_y}")
    body.append("        named[split_name] = (x, y)")
    body.append("    return named")
    return (
        'def load_data():\n    """The named splits of keras.datasets.'
        + name
        + ', as numpy arrays: {"train": (x, y), "test": (x, y)}."""\n'
        + "\n".join(body)
    )


if TYPE_CHECKING:  # the type checker holds this module to the DataSource contract
    from tfbench.data import keras_source
    from tfbench.data.registry import DataSource

    _: DataSource = keras_source
