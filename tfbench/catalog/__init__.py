"""What can be chosen: Keras layers, optimizers, schedules, losses, metrics and callbacks — without a UI.

Every entry, with its parameters, defaults, types, choices and one-line help, is derived from
Keras' own signatures and docstrings by `tfbench.catalog.generate` and cached in `catalog.json`
inside this package; this module only reads that file and checks values against it, so the UI
and the preset validator never import Keras (a multi-second import). `python -m
tfbench.catalog.generate` rewrites the cache from the installed Keras; a test fails when the two
disagree.

No preset may make tfbench run code: layers and callbacks that execute arbitrary code or need
callables or other objects (`Lambda`, `TFSMLayer`, `LambdaCallback`, wrappers, merge layers…) are
neither offered nor accepted, and argument values are limited to numbers, strings, booleans and
(nested) lists of those — a TOML table would reach Keras' deserialization, so it is refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfbench.errors import UserError, close_matches

KINDS = ("layers", "optimizers", "schedules", "losses", "metrics", "callbacks")
PARAM_KINDS = ("int", "float", "bool", "str", "choice", "int_or_tuple", "list", "any")
CATALOG_PATH = Path(__file__).with_name("catalog.json")
FORMAT_VERSION = 1
REGENERATE_COMMAND = "python -m tfbench.catalog.generate"
IDENTIFIER_CATEGORY = "Identifier"
"""Category of names `model.compile` resolves from the labels (`accuracy`, `ce`): strings only."""


@dataclass(frozen=True)
class Param:
    """One constructor argument of a Keras class, as a form and the validator see it.

    `kind` is one of PARAM_KINDS. `choices` lists the accepted strings of a "choice" parameter;
    on an "any" parameter (one Keras accepts as a string or a number, like `save_freq`) they
    list the accepted strings while other values pass through to Keras.
    """

    name: str
    kind: str
    default: Any
    required: bool
    choices: tuple[str, ...] = ()
    help: str = ""
    nullable: bool = False
    bounds: tuple[tuple[str, float], ...] = ()
    """The range Keras documents for a number (`(("gt", 0),)`: > 0); on a list, for each number in it."""
    run_dir_path: bool = False
    """A file or folder a callback writes: a preset may only name a relative path inside the run directory."""


@dataclass(frozen=True)
class Entry:
    """A Keras class that can be chosen, with its parameters by name."""

    kind: str
    name: str
    help: str
    params: dict[str, Param] = field(default_factory=dict)
    category: str = ""
    aliases: tuple[str, ...] = ()
    omitted: tuple[str, ...] = ()
    """Keras arguments left out because they take objects; rejected with that reason."""
    module: str = ""
    """The file of a preset's own code that defines the class (`transformer.py`); empty for Keras' own."""


# -- reading the cache ------------------------------------------------------------------------


@functools.cache
def _load() -> dict[str, Any]:
    try:
        data = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"{CATALOG_PATH} is missing; run `{REGENERATE_COMMAND}`") from None
    sets = {key: tuple(values) for key, values in data.get("choice_sets", {}).items()}
    catalog: dict[str, dict[str, Entry]] = {}
    lookup: dict[str, dict[str, str]] = {}
    class_names: dict[str, set[str]] = {}
    for kind in KINDS:
        by_name: dict[str, Entry] = {}
        keys: dict[str, str] = {}
        classes: set[str] = set()
        for raw in data["kinds"].get(kind, []):
            entry = _entry_from_json(kind, raw, sets)
            by_name[entry.name] = entry
            keys[entry.name] = entry.name
            for alias in entry.aliases:
                keys.setdefault(alias, entry.name)
            if entry.category != IDENTIFIER_CATEGORY:
                classes.update((entry.name, *raw.get("exported_as", ())))
        catalog[kind] = by_name
        lookup[kind] = keys
        class_names[kind] = classes
    return {
        "entries": catalog,
        "lookup": lookup,
        "class_names": class_names,
        "excluded": data.get("excluded", {}),
        "keras_version": data.get("keras_version", ""),
        "choice_sets": sets,
    }


def _entry_from_json(kind: str, raw: dict[str, Any], sets: dict[str, tuple[str, ...]], module: str = "") -> Entry:
    params = {}
    for p in raw.get("params", []):
        choices = p.get("choices", ())
        if isinstance(choices, str):
            choices = sets[choices]
        params[p["name"]] = Param(
            name=p["name"],
            kind=p["kind"],
            default=p.get("default"),
            required=p.get("required", False),
            choices=tuple(choices),
            help=p.get("help", ""),
            nullable=p.get("nullable", False),
            bounds=tuple((key, limit) for key, limit in sorted(p.get("bounds", {}).items(), key=_bound_order)),
            run_dir_path=p.get("run_dir_path", False),
        )
    return Entry(
        kind=kind,
        name=raw["name"],
        help=raw.get("help", ""),
        params=params,
        category=raw.get("category", ""),
        aliases=tuple(raw.get("aliases", ())),
        omitted=tuple(raw.get("omitted", ())),
        module=module,
    )


def _bound_order(item: tuple[str, float]) -> int:
    return ("gt", "ge", "lt", "le").index(item[0])


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown catalog kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


# -- classes from a preset's own code ------------------------------------------------------------
# Entries derived (by `tfbench.user_code`) from the classes of modules the user allowed, by kind
# and name. They join the Keras entries for every lookup; which of them a preset may name is
# checked by `tfbench.spec` (a preset names only classes of the modules its `[code]` lists).
_USER: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_USER_LOCK = threading.Lock()
_SCOPE: contextvars.ContextVar[tuple[frozenset[str], bool] | None] = contextvars.ContextVar(
    "tfbench_catalog_user_scope", default=None
)


def entry_from_row(kind: str, row: dict[str, Any], module: str) -> Entry:
    """An entry from a row `tfbench.catalog.generate.describe_class` derived from a class of `module`."""
    return _entry_from_json(_kind(kind), row, _load()["choice_sets"], module)


def set_user_entries(module: str, entries: list[Entry]) -> None:
    """Replace the entries of a preset's own module (`transformer.py`) with `entries`."""
    with _USER_LOCK:
        for kind in KINDS:
            kept = {name: e for name, e in _USER[kind].items() if e.module != module}
            kept.update({e.name: e for e in entries if e.kind == kind})
            _USER[kind] = kept


def user_entries(kind: str | None = None) -> list[Entry]:
    """The entries from allowed modules (of one kind, or all), by module then name."""
    kinds = (_kind(kind),) if kind else KINDS
    found = [e for k in kinds for e in _USER[k].values() if _visible(e)]
    return sorted(found, key=lambda e: (e.module, e.kind, e.name))


def builtin(kind: str, name: str) -> bool:
    """Whether `name` is one of Keras' own entries of this kind (a class name or an alias)."""
    return name in _load()["lookup"][_kind(kind)]


@contextlib.contextmanager
def user_scope(modules: frozenset[str], defer_unknown: bool = False) -> Iterator[None]:
    """Within this block (this thread), only the entries of `modules` are known besides Keras' own.

    With `defer_unknown` an unknown name is accepted unchecked: a preset whose code is not allowed
    yet is read without importing it, and checked in full once its code is imported.
    """
    token = _SCOPE.set((modules, defer_unknown))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _visible(entry: Entry) -> bool:
    scope = _SCOPE.get()
    return scope is None or entry.module in scope[0]


def _user_get(kind: str, name: Any) -> Entry | None:
    entry = _USER[kind].get(name) if isinstance(name, str) else None
    return entry if entry is not None and _visible(entry) else None


def _deferred(kind: str, name: Any) -> bool:
    scope = _SCOPE.get()
    return scope is not None and scope[1] and isinstance(name, str) and bool(name) and not builtin(kind, name)


def keras_version() -> str:
    """The Keras version the cached catalog was generated from."""
    return _load()["keras_version"]


def entries(kind: str) -> list[Entry]:
    """Every entry of a kind (`layers`, `optimizers`, …), sorted by category then name; classes
    from allowed modules come last, under their module's file name."""
    found = sorted(_load()["entries"][_kind(kind)].values(), key=lambda e: (e.category, e.name))
    return found + user_entries(kind)


def names(kind: str) -> list[str]:
    """The names of a kind's entries, sorted: class names, plus compile's `accuracy`/`ce`-style names."""
    return sorted([*_load()["entries"][_kind(kind)], *(e.name for e in user_entries(kind))])


def get(kind: str, name: str) -> Entry | None:
    """An entry by class name or alias (`mse`, `accuracy`, `AvgPool2D`), or None when unknown."""
    data = _load()
    key = data["lookup"][_kind(kind)].get(name)
    return data["entries"][kind][key] if key else _user_get(kind, name)


def class_name(kind: str, name: str) -> str:
    """The class a Keras string form names (`"adam"`, `"rmsprop"` → `Adam`, `RMSprop`), as `keras.optimizers.get`
    reads it: the class name itself or its lower-case form; any other name is returned as it is."""
    if get(kind, name) is not None:
        return name
    return next((n for n in names(kind) if n.lower() == name), name)


def identifiers(kind: str) -> list[str]:
    """Every string a preset may name an entry of this kind by: class names and aliases."""
    return sorted([*_load()["lookup"][_kind(kind)], *(e.name for e in user_entries(kind))])


def layers_table() -> list[tuple[str, str, str]]:
    """Rows of (category, name, one-line help) for `tfbench layers`."""
    return [(e.category, e.name, e.help) for e in entries("layers")]


def search(kind: str, query: str) -> list[Entry]:
    """Entries matching every word of `query` in their name, aliases, category or help.

    Name matches come first, then category and help matches, so the TUI's picker shows the
    likeliest choice on top. An empty query returns every entry.
    """
    words = query.lower().split()
    if not words:
        return entries(kind)
    ranked = []
    for entry in entries(kind):
        name_text = " ".join((entry.name, *entry.aliases)).lower()
        other_text = f"{entry.category} {entry.help}".lower()
        if not all(w in name_text or w in other_text for w in words):
            continue
        in_name = sum(w in name_text for w in words)
        starts = name_text.startswith(words[0])
        ranked.append((-in_name, not starts, entry.category, entry.name, entry))
    ranked.sort(key=lambda r: r[:4])
    return [r[-1] for r in ranked]


# -- validation -------------------------------------------------------------------------------

_KIND_WORDS = {
    "layers": "layer",
    "optimizers": "optimizer",
    "schedules": "learning-rate schedule",
    "losses": "loss",
    "metrics": "metric",
    "callbacks": "callback",
}


def _unknown_name(kind: str, name: str, location: str, prefer_classes: bool = True) -> UserError:
    word = _KIND_WORDS[_kind(kind)]
    reason = _load()["excluded"].get(kind, {}).get(name) if isinstance(name, str) else None
    if reason:
        return UserError(f"{word} {name!r} is not allowed in tfbench: {reason}", location)
    if not isinstance(name, str) or not name:
        return UserError(f"name a {word}", location)
    elsewhere = _USER[kind].get(name)
    if elsewhere is not None:
        return UserError(
            f"{word} {name!r} comes from {elsewhere.module}, which this preset's [code] does not list",
            location,
            f'add it: [code] modules = ["{elsewhere.module}"]',
        )
    classes = [n for n in names(kind) if (entry := get(kind, n)) is not None and entry.category != IDENTIFIER_CATEGORY]
    hint = close_matches(name, classes) if prefer_classes else None
    hint = hint or close_matches(name, identifiers(kind))
    if not hint:
        hint = (
            f"see the {len(names(kind))} {kind} with `tfbench layers`"
            if kind == "layers"
            else ("valid: " + ", ".join(names(kind)[:12]) + (", …" if len(names(kind)) > 12 else ""))
        )
    return UserError(f"unknown {word} {name!r}", location, hint)


def check_identifier(kind: str, name: str, location: str) -> None:
    """Check a loss or metric given by name alone (`"mse"`, `"accuracy"`, `"Huber"`).

    Raises:
        UserError: at `location`, with close matches for a misspelt name.
    """
    if get(kind, name) is None and not _deferred(kind, name):
        raise _unknown_name(kind, name, location, prefer_classes=False)


def check_component(kind: str, name: str, args: dict[str, Any], location: str) -> None:
    """Check a Keras class name and its constructor arguments against the catalog.

    Args:
        kind: one of KINDS.
        name: the class name (`Dense`) or an alias.
        args: constructor arguments from the preset.
        location: where the component is (`model.layers[2]`); argument errors add `.ARG`.

    Raises:
        UserError: an unknown or disallowed class (located at `location`), an unknown, missing or
            mistyped argument (located at `location.ARG`), with close matches where they help.
    """
    entry = get(kind, name)
    if entry is None and _deferred(kind, name):
        return  # a class of the preset's own code, checked once the code is allowed
    if entry is None:
        raise _unknown_name(kind, name, location)
    if entry.category == IDENTIFIER_CATEGORY:
        raise UserError(
            f"{name!r} is a {_KIND_WORDS[kind]} named by a string alone; it takes no type or arguments",
            location,
            f'write it as a string: "{name}"',
        )
    if not entry.module and name not in _load()["class_names"][kind]:
        raise UserError(
            f"{name!r} is a string name of {entry.name}; a table needs the class name",
            location,
            f'type = "{entry.name}", or write "{name}" as a string',
        )
    for arg, value in args.items():
        where = f"{location}.{arg}"
        param = entry.params.get(arg)
        if param is None:
            if arg in entry.omitted:
                raise UserError(
                    f"{entry.name} argument {arg!r} cannot be set from a preset: Keras expects an object there",
                    where,
                )
            hint: str | None = close_matches(arg, entry.params) or (
                "valid: " + ", ".join(entry.params) if entry.params else f"{entry.name} takes no arguments"
            )
            raise UserError(f"{entry.name} has no argument {arg!r}", where, hint)
        check_value(param, value, where)
    missing = [p.name for p in entry.params.values() if p.required and p.name not in args]
    if missing:
        first = entry.params[missing[0]]
        more = f" (also: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        hint = f"{first.name}: {first.help}" if first.help else None
        raise UserError(f"{entry.name} needs {first.name!r}{more}", location, hint)


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "choice": "one of the listed strings",
    "int_or_tuple": "an integer or a list of integers",
    "list": "a list",
    "any": "a number, string, boolean or list",
}


def check_value(param: Param, value: Any, location: str) -> None:
    """Check one argument value against its parameter.

    Raises:
        UserError: at `location`, saying what was expected and what was given.
    """
    _check_plain(value, location)
    kind = param.kind
    if kind == "int":
        ok = _is_int(value)
    elif kind == "float":
        ok = _is_number(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "int_or_tuple":
        ok = _is_int(value) or (
            isinstance(value, list)
            and bool(value)
            and all(_is_int(v) or (isinstance(v, list) and all(_is_int(x) for x in v)) for v in value)
        )
    elif kind == "list":
        ok = isinstance(value, list)
    else:  # choice and any
        ok = True
    if kind == "choice" or (kind == "any" and param.choices and isinstance(value, str)):
        if not isinstance(value, str):
            raise UserError(f"expected one of {_quoted(param.choices)}, got {shown(value)}", location)
        if value not in param.choices:
            hint = close_matches(value, param.choices) or f"one of {_quoted(param.choices)}"
            raise UserError(f"{shown(value)} is not a valid {param.name}", location, hint)
        return
    if not ok:
        raise UserError(f"expected {_TYPE_WORDS[kind]}, got {shown(value)}", location)
    check_bounds(param, value, location)
    if param.run_dir_path and isinstance(value, str):
        check_run_dir_path(value, location)


_BOUND_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def describe_bounds(param: Param) -> str:
    """A parameter's documented range in words (`> 0`, `in [0, 1)`), or "" when it has none."""
    bounds = dict(param.bounds)
    low = next((k for k in ("gt", "ge") if k in bounds), None)
    high = next((k for k in ("lt", "le") if k in bounds), None)
    if low and high:
        return f"in {'(' if low == 'gt' else '['}{bounds[low]:g}, {bounds[high]:g}{')' if high == 'lt' else ']'}"
    return " ".join(f"{_BOUND_SIGNS[k]} {bounds[k]:g}" for k in (low, high) if k)


def check_bounds(param: Param, value: Any, location: str) -> None:
    """Check a number (or each number in a list) against the range Keras documents for it.

    Raises:
        UserError: at `location`: `must be > 0 (got -0.1)`.
    """
    if not param.bounds:
        return
    import math

    numbers = _numbers(value)
    checks = {"gt": float.__gt__, "ge": float.__ge__, "lt": float.__lt__, "le": float.__le__}
    finite = all(math.isfinite(v) for v in numbers)
    if finite and all(checks[key](float(v), float(limit)) for v in numbers for key, limit in param.bounds):
        return
    every = "every number " if isinstance(value, list) else ""
    finite_words = "" if finite else "a finite number "
    raise UserError(f"{every}must be {finite_words}{describe_bounds(param)} (got {shown(value)})", location)


def _numbers(value: Any) -> list[int | float]:
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if _is_number(value) else []


def check_run_dir_path(value: str, location: str) -> None:
    """A file a callback writes must stay inside the run directory: relative, no `..` out of it.

    Raises:
        UserError: at `location`, for an absolute, home-relative, empty or escaping path.
    """
    import posixpath

    text = value.replace("\\", "/")
    normal = posixpath.normpath(text) if text else ""
    if (
        not text.strip()
        or text.startswith(("/", "~"))
        or posixpath.isabs(normal)
        or (len(text) > 1 and text[1] == ":")
        or normal == ".."
        or normal.startswith("../")
        or normal == "."
    ):
        raise UserError(
            f"must be a relative path inside the run directory, got {shown(value)}",
            location,
            "name a file or folder such as 'logs/x.csv'; it is created inside the run directory",
        )


def resolve_run_paths(
    kind: str,
    name: str,
    args: dict[str, Any],
    run_dir: str | Path,
    location: str = "",
    reserved: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The arguments with each run-directory path (`CSVLogger.filename`, …) made absolute inside `run_dir`.

    Validation has already refused absolute and escaping paths; this is checked again here, so
    nothing can write outside the run directory even when the arguments were never validated.
    Paths left out keep the defaults the caller gives them (inside the run directory too).

    Args:
        reserved: the run directory's own files and folders (`history.csv`, `checkpoints/last.keras`):
            a callback may not write one of them, or inside one, so nothing tfbench records is lost.

    Raises:
        UserError: an argument path that is not inside the run directory, or that is tfbench's own.
    """
    entry = get(kind, name)
    if entry is None:
        return dict(args)
    resolved = dict(args)
    for arg, value in args.items():
        param = entry.params.get(arg)
        if param is not None and param.run_dir_path and isinstance(value, str):
            resolved[arg] = str(inside_run_dir(value, run_dir, f"{location}.{arg}" if location else arg, reserved))
    return resolved


def inside_run_dir(value: str, run_dir: str | Path, location: str, reserved: tuple[str, ...] = ()) -> Path:
    """A relative path a preset names (a callback's file, `data.cache`) as a path inside `run_dir`.

    Args:
        reserved: the run directory's own files and folders, which the path may not be or be inside.

    Raises:
        UserError: at `location`, for a path outside the run directory or one of tfbench's own.
    """
    import posixpath

    check_run_dir_path(value, location)
    normal = posixpath.normpath(value.replace("\\", "/"))
    clash = next((r for r in reserved if normal == r or normal.startswith(r + "/")), None)
    if clash:
        raise UserError(
            f"{value!r} is where tfbench keeps the run's {clash}", location, "name another file, e.g. 'logs/x.csv'"
        )
    return Path(run_dir) / value


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(choices: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(repr(c) for c in choices[:limit])
    return shown + (", …" if len(choices) > limit else "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_plain(value: Any, location: str) -> None:
    """Refuse anything but numbers, strings, booleans and lists of them."""
    if isinstance(value, dict):
        raise UserError(
            "a table is not accepted as an argument value (Keras would deserialize it into an "
            "object); use a number, string, boolean or list",
            location,
        )
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{location}[{i}]")
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise UserError(f"expected a number, string, boolean or list, got a {type(value).__name__}", location)
