"""MLflow tracking URIs in a preset: which are accepted, and how their paths resolve — without MLflow.

A preset's relative paths resolve against its folder (DESIGN.md), and a tracking store that is a
file or a folder is one of them: `sqlite:///mlflow.db` beside `my.toml` is that folder's
`mlflow.db`, wherever tfbench runs. Servers (`http://…`, `postgresql://…`, `databricks`) are
passed on as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")
SQLITE = "sqlite:///"
FILE = "file://"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
EXAMPLES = "sqlite:///mlflow.db, a folder, http://HOST:5000, postgresql://…, mysql://… or databricks"


def scheme_of(uri: str) -> str | None:
    """The URI's scheme without a driver (`postgresql+psycopg2` → `postgresql`); None for a path."""
    if uri in ("databricks", "databricks-uc", "uc"):
        return uri
    match = _SCHEME.match(uri)
    if match is None or len(match.group("scheme")) == 1:  # `C:\\…` is a path
        return None
    return match.group("scheme").split("+", 1)[0].lower()


def check_tracking_uri(uri: str) -> str:
    """An accepted tracking URI, stripped.

    Raises:
        ValueError: empty, or a scheme MLflow has no store for.
    """
    uri = uri.strip()
    if not uri:
        raise ValueError(f"name a tracking store: {EXAMPLES}")
    scheme = scheme_of(uri)
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"unknown tracking URI scheme {scheme!r}; use {EXAMPLES}")
    return uri


def _path_of(uri: str) -> tuple[str, str] | None:
    """(prefix, path) of a URI naming a local file or folder; None for servers and in-memory stores."""
    if uri.startswith(SQLITE):
        path = uri[len(SQLITE) :]
        return (SQLITE, path) if path and path != ":memory:" else None
    if uri.startswith(FILE):
        return FILE, uri[len(FILE) :]
    if scheme_of(uri) is None:
        return "", uri
    return None


def uri_absolute(uri: str, base: str | Path) -> str:
    """`uri` with its file or folder made absolute against `base` (servers unchanged)."""
    found = _path_of(uri.strip())
    if found is None:
        return uri
    prefix, path = found
    return prefix + os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def uri_relative(uri: str, base: str | Path) -> str:
    """`uri` with a file or folder inside `base` written relative to it (a saved preset can move)."""
    found = _path_of(uri)
    if found is None:
        return uri
    prefix, path = found
    base = os.path.abspath(base)
    if not os.path.isabs(path) or os.path.commonpath([base, os.path.abspath(path)]) != base:
        return uri
    return prefix + Path(os.path.relpath(path, base)).as_posix()
