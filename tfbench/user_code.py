"""A preset's own Python modules (`[code]`): reading, importing and knowing their classes — without a UI.

Nothing here imports a module by itself: `activate` is called only once the user allowed it
(`tfbench.code_consent` decides). A module is read once; the bytes read are what its SHA-256 names,
what is executed and what a run directory copies, so the three can never differ. It is executed
under a name of its own (`tfbench_code_<stem>_<digest>`), never found on `sys.path`, so a file of the
same name in the working directory is never picked up instead.

Its `keras.layers.Layer`, `keras.losses.Loss`, `keras.metrics.Metric`, `keras.callbacks.Callback`
and `keras.Model` subclasses become known by class name: each is registered with
`keras.saving.register_keras_serializable(package=<stem>)` (unless the module registered it
itself), so a `.keras` file names it and loads again wherever the module is imported, and each
but the models joins the catalog with a form derived from its `__init__` signature, defaults and
docstring, as Keras' own classes are (`tfbench.catalog.generate`).

Keras is imported only by `activate` and the class lookups the build makes once code is active.
"""

from __future__ import annotations

import hashlib
import keyword
import os
import sys
import threading
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfbench import catalog
from tfbench.errors import UserError, close_matches

KINDS = ("models", "layers", "losses", "metrics", "callbacks")
"""What a module may define, by the Keras base class it subclasses (a Model is also a Layer: first)."""
_KIND_WORDS = {"models": "model", "layers": "layer", "losses": "loss", "metrics": "metric", "callbacks": "callback"}
MODULE_PREFIX = "tfbench_code_"


@dataclass(frozen=True)
class ModuleFile:
    """One module file as read: where, its bytes and their SHA-256.

    Attributes:
        path: the file (absolute).
        data: its bytes when read: what is executed and copied.
        sha256: the hex digest of `data`.
    """

    path: Path
    data: bytes
    sha256: str

    @property
    def stem(self) -> str:
        """The module's name (`transformer` for `transformer.py`): its Keras package and import name."""
        return self.path.stem

    @property
    def file_name(self) -> str:
        """The file's name (`transformer.py`): the heading its classes are listed under."""
        return self.path.name

    @property
    def import_name(self) -> str:
        """The name it is executed under: the stem and the digest, so two versions never mix."""
        return f"{MODULE_PREFIX}{self.stem}_{self.sha256[:16]}"


@dataclass(frozen=True)
class UserClass:
    """A class an allowed module defines, as tfbench knows it.

    Attributes:
        kind: one of KINDS.
        name: the class name a preset writes (`type = "TransformerBlock"`, `model.class = "VAE"`).
        cls: the class.
        module: the module's stem (`transformer`), which train.py imports.
        file_name: the module's file name (`transformer.py`).
        registered: the name Keras saves it under (`transformer>TransformerBlock`); "" for callbacks.
        line: where it is defined in its file.
        self_registered: the module registers it with Keras itself (importing it is enough).
        adapted: given `own_arguments_only`, as its `__init__` takes no `**kwargs`.
    """

    kind: str
    name: str
    cls: type
    module: str
    file_name: str
    registered: str
    line: int
    self_registered: bool = False
    adapted: bool = False


_LOCK = threading.RLock()
_ACTIVE: dict[str, ModuleFile] = {}  # by stem: the version imported last
_CLASSES: dict[str, dict[str, UserClass]] = {kind: {} for kind in KINDS}


# -- reading --------------------------------------------------------------------------------------


def read_module(path: str | Path, location: str) -> ModuleFile:
    """Read one module file and digest it (nothing is executed).

    Raises:
        UserError: at `location`, for a missing or unreadable file or one that is not a `.py` module.
    """
    path = Path(path)
    if path.suffix != ".py":
        raise UserError(f"{str(path)!r} is not a Python module (a .py file)", location)
    if not path.stem.isidentifier() or keyword.iskeyword(path.stem):
        raise UserError(
            f"{path.name!r} cannot be imported by name (train.py imports it as `import {path.stem}`)",
            location,
            f"rename it to {_identifier(path.stem)}.py",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"no such file: {path}", location) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}", location) from None
    return ModuleFile(path.resolve(), data, hashlib.sha256(data).hexdigest())


def _identifier(stem: str) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return text if text and not text[0].isdigit() else f"m_{text}"


def read_modules(paths: list[str], base: str = "code.modules") -> list[ModuleFile]:
    """Read every module of a `[code]` section (`paths` absolute), checking their names are distinct.

    Raises:
        UserError: at `code.modules[i]`.
    """
    files: list[ModuleFile] = []
    for i, path in enumerate(paths):
        found = read_module(path, f"{base}[{i}]")
        twin = next((f for f in files if f.stem == found.stem), None)
        if twin is not None:
            raise UserError(
                f"two modules are named {found.stem!r} ({twin.path} and {found.path})",
                f"{base}[{i}]",
                "rename one: a module's name is how Keras and train.py find its classes",
            )
        files.append(found)
    return files


def digest(path: str | Path) -> str | None:
    """The SHA-256 of a file now, or None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def is_active(paths: list[str]) -> bool:
    """Whether each of these module files, as it is now, is the imported version of its module."""
    with _LOCK:
        return all((found := _ACTIVE.get(Path(p).stem)) is not None and found.sha256 == digest(p) for p in paths)


def active_file(stem: str) -> ModuleFile | None:
    """The imported version of the module `stem` (its bytes are what a run directory copies)."""
    with _LOCK:
        return _ACTIVE.get(stem)


def active_files() -> list[ModuleFile]:
    """Every imported module, by name."""
    with _LOCK:
        return [_ACTIVE[stem] for stem in sorted(_ACTIVE)]


# -- importing --------------------------------------------------------------------------------------


def activate(files: list[ModuleFile]) -> list[UserClass]:
    """Import the modules (each version once) and make their classes known to Keras and the catalog.

    Call only for modules the user allowed.

    Returns:
        The classes of these modules.

    Raises:
        UserError: a module that fails to import (naming its file and line), a class named like a
            Keras class or like a class of another module.
    """
    found: list[UserClass] = []
    with _LOCK:
        for file in files:
            current = _ACTIVE.get(file.stem)
            if current is None or current.sha256 != file.sha256:
                _register(file, _classes_of(file, _execute(file)))
            found += [c for kind in KINDS for c in _CLASSES[kind].values() if c.module == file.stem]
    return found


def _execute(file: ModuleFile) -> types.ModuleType:
    """Run the module's bytes under its own name; an error names the file and the line."""
    name = file.import_name
    module = sys.modules.get(name)
    if module is not None:
        return module
    module = types.ModuleType(name)
    module.__file__ = str(file.path)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up here
    try:
        exec(compile(file.data, str(file.path), "exec"), module.__dict__)  # noqa: S102 - the user allowed it
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: whatever the module does is its error
        del sys.modules[name]
        raise import_error(file.path, exc) from None
    return module


def import_error(path: Path, exc: BaseException) -> UserError:
    """A module's failure as one line: `FILE:LINE: cannot import it: NameError: …`."""
    line = raised_at(path, exc)
    where = f"{path}:{line}" if line else str(path)
    if isinstance(exc, SyntaxError):
        return UserError(f"cannot import it: SyntaxError: {exc.msg}", where)
    return UserError(f"cannot import it: {type(exc).__name__}: {_one_line(exc)}", where)


def raised_at(path: Path, exc: BaseException) -> int | None:
    """The line of `path` an exception was raised from (the innermost frame in that file), if any."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return exc.lineno
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    return lines[-1] if lines else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "") if text else "(no message)"


def _bases() -> dict[str, type]:
    import keras

    return {
        "models": keras.Model,
        "layers": keras.layers.Layer,
        "losses": keras.losses.Loss,
        "metrics": keras.metrics.Metric,
        "callbacks": keras.callbacks.Callback,
    }


def _classes_of(file: ModuleFile, module: types.ModuleType) -> list[UserClass]:
    """The Keras subclasses the module itself defines (not the ones it imports), registered with Keras."""
    import inspect

    import keras

    bases = _bases()
    found = []
    for name, obj in vars(module).items():
        if not inspect.isclass(obj) or obj.__module__ != module.__name__ or name.startswith("_"):
            continue
        kind = next((k for k, base in bases.items() if issubclass(obj, base)), None)
        if kind is None or obj in bases.values():
            continue
        registered, own = "", False
        if kind != "callbacks":  # callbacks are never saved in a model file
            registered = keras.saving.get_registered_name(obj)
            own = registered != obj.__name__
            if not own:  # the module did not register it itself
                keras.saving.register_keras_serializable(package=file.stem)(obj)
                registered = keras.saving.get_registered_name(obj)
        adapted = kind != "callbacks" and needs_own_arguments(obj)
        if adapted:
            own_arguments_only(obj)
        line = inspect.getsourcelines(obj)[1] if _has_source(obj) else 0
        found.append(UserClass(kind, name, obj, file.stem, file.file_name, registered, line, own, adapted))
    return found


def needs_own_arguments(cls: type) -> bool:
    """A class written as keras.io's examples are: `__init__` without `**kwargs` and no `from_config`.

    Keras saves a layer's `name`, `trainable` and `dtype` beside its own arguments and passes them all
    back when it loads, which such a constructor refuses: its `.keras` file would not load.
    """
    return not accepts(cls, "trainable") and "from_config" not in vars(cls)


def own_arguments_only(cls: type[Any]) -> type[Any]:
    """Let a class whose __init__ takes no **kwargs load from a .keras file: pass it only its own arguments."""
    import inspect

    own = set(inspect.signature(cls.__init__).parameters) - {"self"}
    cls.from_config = classmethod(lambda klass, config: klass(**{k: v for k, v in config.items() if k in own}))
    return cls


def _has_source(obj: type) -> bool:
    import inspect

    try:
        inspect.getsourcelines(obj)
        return True
    except (OSError, TypeError):
        return False


def _register(file: ModuleFile, classes: list[UserClass]) -> None:
    """Make a module's classes the known ones of its name, and their forms the catalog's."""
    for cls in classes:
        _check_name(file, cls)
    for kind in KINDS:
        _CLASSES[kind] = {n: c for n, c in _CLASSES[kind].items() if c.module != file.stem}
        _CLASSES[kind].update({c.name: c for c in classes if c.kind == kind})
    _ACTIVE[file.stem] = file
    catalog.set_user_entries(file.file_name, [e for c in classes if (e := _entry(c)) is not None])


def _check_name(file: ModuleFile, cls: UserClass) -> None:
    where = f"{file.path}:{cls.line}" if cls.line else str(file.path)
    if cls.kind != "models" and catalog.builtin(cls.kind, cls.name):
        raise UserError(
            f"class {cls.name} has the name of a Keras {_KIND_WORDS[cls.kind]}",
            where,
            "rename it: a preset names a class by its name alone",
        )
    for kind in KINDS:
        other = _CLASSES[kind].get(cls.name)
        if other is not None and other.module != file.stem:
            raise UserError(
                f"class {cls.name} is also defined in {other.file_name}",
                where,
                "rename one of them: a preset names a class by its name alone",
            )


def _entry(cls: UserClass) -> catalog.Entry | None:
    """The catalog entry of a layer, loss, metric or callback (models are named by `model.class`)."""
    if cls.kind == "models":
        return None
    from tfbench.catalog.generate import describe_class

    row, _ = describe_class(cls.kind, cls.cls, cls.file_name)
    return catalog.entry_from_row(cls.kind, row, cls.file_name) if row is not None else None


# -- what the build, the callbacks and the script ask ------------------------------------------


def find(kind: str, name: Any) -> UserClass | None:
    """The class `name` of an allowed module, of one kind (see KINDS), or None."""
    with _LOCK:
        return _CLASSES[kind].get(name) if isinstance(name, str) else None


def classes(modules: list[str] | None = None) -> list[UserClass]:
    """The known classes (of the modules with these stems), by module, kind and name."""
    with _LOCK:
        found = [c for kind in KINDS for c in _CLASSES[kind].values()]
    if modules is not None:
        found = [c for c in found if c.module in modules]
    return sorted(found, key=lambda c: (c.module, KINDS.index(c.kind), c.name))


def qualified(kind: str, name: Any, default: str) -> str:
    """How a script names a class: `transformer.TransformerBlock` for a module's, else `default`."""
    found = find(kind, name)
    return f"{found.module}.{found.name}" if found is not None else default


def check_model_class(name: str, stems: list[str], location: str) -> None:
    """`model.class` must name a `keras.Model` subclass of one of the preset's modules.

    Raises:
        UserError: at `location`, with the model classes there are.
    """
    found = find("models", name)
    if found is not None and found.module in stems:
        return
    other = next((c for kind in KINDS if (c := find(kind, name)) is not None and c.module in stems), None)
    if other is not None:
        raise UserError(f"{name} is a {_KIND_WORDS[other.kind]}, not a keras.Model subclass", location)
    models = [c.name for c in classes(stems) if c.kind == "models"]
    hint = close_matches(name, models) or (
        f"model classes: {', '.join(models)}" if models else "define a keras.Model subclass in one of the modules"
    )
    raise UserError(f"no model class {name!r} in the preset's code", location, hint)


def accepts(cls: type[Any], argument: str) -> bool:
    """Whether a class's constructor takes `argument` (by name or through `**kwargs`)."""
    import inspect

    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return True
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def constructor_error(found: UserClass, exc: BaseException, location: str) -> UserError:
    """A user class whose constructor raised, as one line naming the class, the error and where."""
    path = Path(sys.modules[found.cls.__module__].__file__ or found.file_name)
    line = raised_at(path, exc)
    where = f" ({found.file_name}:{line})" if line else f" ({found.file_name})"
    return UserError(f"{found.name}: {type(exc).__name__}: {_one_line(exc)}{where}", location)


# -- what a preset may name -----------------------------------------------------------------------


def scope(modules: list[str] | None) -> tuple[frozenset[str], bool]:
    """The catalog scope (`tfbench.catalog.user_scope`) a preset with these `[code]` modules is checked in.

    Returns:
        The module files whose classes it may name, and whether unknown names wait: its code is not
        imported yet, so they are checked once it is (never by importing it here).
    """
    if not modules:
        return frozenset(), False
    return frozenset(Path(m).name for m in modules), not is_active(modules)


def check_experiment_class(name: str | None, modules: list[str] | None) -> None:
    """`model.class`: a keras.Model subclass of the preset's own modules (checked once they are imported).

    Raises:
        UserError: at `model.class`.
    """
    if name is None:
        return
    if not modules:
        raise UserError(
            f"model.class names {name!r}, a class of the preset's own code, but the preset has no [code]",
            "model.class",
            'add [code] modules = ["your_module.py"] with a keras.Model subclass',
        )
    if is_active(modules):
        check_model_class(name, [Path(m).stem for m in modules], "model.class")


# -- what a standalone script writes -------------------------------------------------------------------


def script_imports(modules: list[str] | None) -> str:
    """The part of a standalone script that imports the preset's own modules, as plain Python.

    Each module's folder goes first on `sys.path` (`CODE_DIR` overrides it) and the module is
    imported by its name; a class tfbench registered with Keras (the module did not) is registered
    under the same name, so the script's model file names it as tfbench's does.
    """
    if not modules:
        return ""
    folders = list(dict.fromkeys(str(Path(m).resolve().parent) for m in modules))
    title = "# -- the experiment's own code ([code]) "
    lines = [
        title + "-" * (79 - len(title)),
        "import sys",
        "",
        "# The modules tfbench imported (their SHA-256 below); CODE_DIR=path uses another copy of them.",
    ]
    lines.append(f"CODE_DIRS = os.environ.get('CODE_DIR', {os.pathsep.join(folders)!r}).split(os.pathsep)")
    lines.append("sys.path[:0] = CODE_DIRS")
    for path in modules:
        stem, sha = Path(path).stem, digest(path) or "?"
        lines.append(f"import {stem}  # {Path(path).name}, sha256 {sha}")
    import inspect

    used = classes([Path(m).stem for m in modules])
    own = [c for c in used if c.registered and not c.self_registered]
    adapted = [c for c in used if c.adapted]
    if adapted:  # the same adaptation tfbench made, so the script's model file loads as tfbench's does
        lines += ["from typing import Any", "", "", inspect.getsource(own_arguments_only).rstrip(), ""]
        lines += [f"own_arguments_only({c.module}.{c.name})" for c in adapted]
    if own:
        lines += ["", "# Keras saves and loads these classes by the names tfbench registered them under."]
        for found in own:
            package, _, name = found.registered.partition(">")
            lines.append(
                f"keras.saving.register_keras_serializable(package={package!r}, name={name!r})"
                f"({found.module}.{found.name})"
            )
    return "\n".join(lines)
