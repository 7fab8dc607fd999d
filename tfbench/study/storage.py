"""Where a study is stored, opening it, and checking that a stored study searches what this one does
— without TensorFlow.

A study is stored in its own journal file by default, or wherever `--storage` says: another journal
file, or any Optuna database URL (`sqlite:///…`, `postgresql://…`). A storage that cannot be opened
(an unknown URL kind, a missing database driver, a file that is not a journal or not a database)
is the user's mistake, said in one line. Optuna records only a study's direction, so what a tfbench
study searches — its objective, direction and space — is kept in a study attribute, and a process
that joins a stored study from a preset searching anything else is refused, naming what differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfbench.diskspace import disk_full
from tfbench.errors import UserError
from tfbench.study.space import TuneSettings

JOURNAL_FILE = "study.journal"
SEARCH_ATTR = "tfbench_search"  # the study user attribute holding objective, direction and space
STORAGE_HINT = "use a journal file path, sqlite:///FILE.db, postgresql://… or mysql://…"
DRIVER_HINTS = {
    "mysql": "pip install mysqlclient, or PyMySQL and a mysql+pymysql://… URL",
    "postgresql": 'pip install "psycopg[binary]", or another driver and a postgresql+DRIVER://… URL',
}


def storage_url(study_dir: Path, storage: str | None) -> str:
    """The storage a study uses: a URL as given (a relative SQLite path made absolute), a journal file
    path, or the study's own journal (a path relative to the study directory: it moves with it)."""
    if storage is None or storage == JOURNAL_FILE:
        return str((Path(study_dir) / JOURNAL_FILE).resolve())
    if "://" in storage:
        return absolute_sqlite(storage)
    return str(Path(storage).resolve())


def absolute_sqlite(url: str) -> str:
    """`sqlite:///relative.db` with the path made absolute, so workers and `--resume` find it from anywhere."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    path, sep, query = url[len(prefix) :].partition("?")
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    return f"{prefix}{Path(path).resolve()}{sep}{query}"


def open_storage(url: str, location: str | None = None) -> Any:
    """An Optuna storage for a URL or a journal file path.

    Args:
        url: the storage, as `storage_url` gives it.
        location: how errors name it (`--storage`, a study's journal path).

    Raises:
        UserError: a storage that cannot be opened, or a journal that is damaged, in one line.
        OSError: a full disk (the caller stops the study and says to free space).
    """
    location = location or url
    if "://" in url:
        return database_storage(url, location)
    from optuna.storages.journal import JournalStorage

    from tfbench.study.journal import StudyJournal

    try:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(StudyJournal(url, location))
    except OSError as exc:
        if disk_full(exc):
            raise
        raise UserError(f"cannot open the study storage: {exc.strerror or exc}", location) from None


def database_storage(url: str, location: str) -> Any:
    """Optuna's RDBStorage for a database URL, its failures said in one line."""
    import optuna
    import sqlalchemy.exc

    scheme = url.split("://", 1)[0]
    if scheme.startswith("sqlite") and (url.rstrip("/") == "sqlite:" or ":memory:" in url):
        raise UserError(
            "an in-memory database lives in one process: the trial workers could not share it",
            location,
            "name a file, e.g. sqlite:///study.db",
        )
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if scheme.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
        raise UserError(
            f"the database driver for {scheme} is not installed" + (f" (no module {missing})" if missing else ""),
            location,
            DRIVER_HINTS.get(scheme.split("+")[0], "install the driver SQLAlchemy names for it (pip install …)"),
        ) from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise UserError(f"unknown kind of storage {scheme!r}", location, STORAGE_HINT) from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise UserError(f"not a storage URL ({first_line(exc)})", location, STORAGE_HINT) from None
    except sqlalchemy.exc.DBAPIError as exc:
        raise UserError(
            f"cannot open the database: {first_line(exc.orig)}",
            location,
            "is it a database of this kind, in a folder that exists and can be written?",
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot open the database: {first_line(exc)}", location) from None


def shown_storage(url: str) -> str:
    """A storage as messages show it: a database URL without its password."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    credentials, at, host = netloc.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}{slash}{path}"


def first_line(exc: BaseException | None) -> str:
    """An error's message, first line only (SQLAlchemy adds a paragraph and a link)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def search_record(settings: TuneSettings) -> dict[str, Any]:
    """What a study searches, as stored beside it: plain JSON data."""
    record = {"objective": settings.objective, "direction": settings.direction, "space": settings.to_dict()["space"]}
    return json.loads(json.dumps(record))


def check_join(study: Any, settings: TuneSettings, location: str) -> None:
    """Check that a stored Optuna study searches what `settings` say; record it when it says nothing yet.

    A study stored by an earlier tfbench (or by Optuna itself) has no record: its direction and its
    trials' parameter distributions are checked instead.

    Raises:
        UserError: what differs (objective, direction, space), one line.
    """
    mine = search_record(settings)
    stored = study.user_attrs.get(SEARCH_ATTR)
    differences = compare(stored, mine) if isinstance(stored, dict) else unrecorded_differences(study, settings)
    if differences:
        raise UserError(
            f"the stored study {study.study_name!r} searches something else: {'; '.join(differences)}",
            location,
            "give this search its own --study name, or join with the stored study's preset",
        )
    if not isinstance(stored, dict):
        study.set_user_attr(SEARCH_ATTR, mine)


def compare(stored: dict[str, Any], mine: dict[str, Any]) -> list[str]:
    """What differs between a stored search record and this one, as short phrases."""
    out = [
        f"{key} {stored.get(key)} there, {mine[key]} here"
        for key in ("objective", "direction")
        if stored.get(key) != mine[key]
    ]
    theirs, ours = stored.get("space") or {}, mine["space"]
    for path in sorted(set(theirs) | set(ours)):
        if path not in ours:
            out.append(f'space "{path}" only there')
        elif path not in theirs:
            out.append(f'space "{path}" only here')
        elif theirs[path] != ours[path]:
            out.append(f'space "{path}" {json.dumps(theirs[path])} there, {json.dumps(ours[path])} here')
    return out


def unrecorded_differences(study: Any, settings: TuneSettings) -> list[str]:
    """Differences from a stored study without a search record: its directions and its trials' distributions."""
    directions = [d.name.lower() for d in study.directions]
    if directions != [settings.direction]:
        return [f"direction {', '.join(directions)} there, {settings.direction} here"]
    ours = {p.path: p.distribution() for p in settings.params}
    out: list[str] = []
    for trial in study.get_trials(deepcopy=False):
        for path, distribution in trial.distributions.items():
            phrase = f'space "{path}" only there' if path not in ours else f'space "{path}" differs'
            if ours.get(path) != distribution and phrase not in out:
                out.append(phrase)
    return out
