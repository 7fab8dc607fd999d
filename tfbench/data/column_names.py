"""A table's column names where Keras and TensorFlow need names of their own — no TensorFlow.

A CSV header may hold any text ("bill length (mm)", "Température", a tab, a quote), and the model
takes its columns by those names. Keras layer names may not contain "/", TensorFlow's name scopes
take only ASCII letters, digits and `_.-/>`, and a SavedModel's signature arguments must be Python
identifiers. So each column also gets a *serving name*: the column name itself when it is already
an identifier (`bill_length_mm`), otherwise its letters folded to ASCII and every other run of
characters turned into one `_` (`bill length (mm)` → `bill_length_mm`, `Température` →
`Temperature`), made unique by a suffix (`_2`, `_3`, …). The preprocessing's inner layers are
named with it, and the SavedModel's `serving_default` signature takes it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _folded(name: str) -> str:
    """`name` in ASCII letters, digits and single underscores, starting with a letter."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_")
    if not text or not text[0].isalpha():
        text = f"column_{text}".rstrip("_")
    return text


def serving_names(names: Iterable[str]) -> dict[str, str]:
    """Each column's serving name, unique among them; the same for the same set of names in any order."""
    names = sorted(set(names))
    taken = {n for n in names if _IDENTIFIER.fullmatch(n)}
    result = {n: n for n in taken}
    for name in names:
        if name in result:
            continue
        base = candidate = _folded(name)
        suffix = 2
        while candidate in taken:
            candidate = f"{base}_{suffix}"
            suffix += 1
        taken.add(candidate)
        result[name] = candidate
    return result


def input_name(name: str, serving: str) -> str:
    """The name of the model's `keras.Input` for a column: the column's own, unless Keras refuses it ("/")."""
    return name if name and "/" not in name else serving


def by_serving_name(columns: dict[str, Any]) -> dict[str, Any]:
    """Named columns (raw names) keyed by their serving names, as a SavedModel's signature takes them."""
    names = serving_names(columns)
    return {names[name]: value for name, value in columns.items()}
