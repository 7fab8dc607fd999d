"""The runs filter: a small query language over runs, for the Runs screen's `/` and `tfbench runs --filter`.

Without a UI and without TensorFlow. A query is terms separated by spaces, all of which must hold:

    status:completed train.optimizer.learning_rate>=1e-3 val_accuracy>0.95 tag:baseline cnn

A term is `FIELD OP VALUE`. OP is `:` (equal, or for text: contains), `=` (equal), `>`, `>=`, `<`,
`<=` (numbers). FIELD is `status`, `name` (the run's folder), `preset` (its Experiment's name),
`tag`, `note`, a column (`epochs`, `params`, `time`, `best`), a final metric (`val_accuracy`,
`loss`…) or any Experiment path (`train.optimizer.learning_rate`, `model.layers[1].filters`). A
word without an operator looks for that text in the run's name, preset, tags and note. Text
compares without regard to case; numbers compare as numbers (`1e-3` equals `0.001`). Quotes keep
spaces in a value (`note:"lr too high"`). A run without the field never matches.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfbench.errors import UserError
from tfbench.experiment_diff import flatten, repr_value

if TYPE_CHECKING:
    from tfbench.engine.runs import RunSummary

OPERATORS = (">=", "<=", ">", "<", "=", ":")
ORDERING = (">", ">=", "<", "<=")
TERM = re.compile(r"^(?P<field>[^:<>=\s]*)(?P<op>>=|<=|>|<|=|:)(?P<value>.*)$", re.DOTALL)
TEXT = "text"  # the field of a bare word
NAMED_FIELDS = ("status", "name", "preset", "tag", "note", "epochs", "params", "time", "best")
SYNTAX = "terms look like status:completed, val_accuracy>0.95, train.optimizer.learning_rate>=1e-3, tag:baseline"


class QueryError(UserError):
    """A term of a query that cannot be used; its location is the term as written."""


@dataclass(frozen=True)
class Term:
    """One condition: `field op value` (a bare word is `text : word`)."""

    field: str
    op: str
    value: str
    written: str
    number: float | None = None  # the value as a number, when it reads as one

    def holds(self, fields: Mapping[str, Any]) -> bool:
        """Whether a run whose fields are `fields` meets this term."""
        if self.field == TEXT:
            needle = self.value.lower()
            return any(needle in str(fields.get(key, "")).lower() for key in ("name", "preset", "note")) or any(
                needle in tag.lower() for tag in fields.get("tag", ())
            )
        if self.field not in fields:
            return False
        value = fields[self.field]
        values = value if isinstance(value, (list, tuple)) else (value,)
        return any(self.compares(v) for v in values)

    def compares(self, value: Any) -> bool:
        """Whether one value of the field meets this term."""
        number = float(value) if type(value) in (float, int) else as_number(value)  # the common case, quickly
        if self.op in ORDERING:
            if number is None or self.number is None:
                return False
            if self.op == ">":
                return number > self.number
            if self.op == ">=":
                return number >= self.number
            return number < self.number if self.op == "<" else number <= self.number
        if number is not None and self.number is not None:
            return math.isclose(number, self.number, rel_tol=1e-9, abs_tol=0.0)
        text = repr_value(value).lower()
        wanted = self.value.lower()
        return wanted in text if self.op == ":" else wanted == text


@dataclass(frozen=True)
class Query:
    """Terms that must all hold; an empty query matches every run."""

    terms: tuple[Term, ...] = ()
    text: str = ""

    def matches(self, fields: Mapping[str, Any]) -> bool:
        """Whether a run whose fields are `fields` meets every term."""
        return all(term.holds(fields) for term in self.terms)


def as_number(value: Any) -> float | None:
    """A value as a float when it is a number or reads as one (never a bool)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def parse_term(word: str) -> Term:
    """One term of a query.

    Raises:
        QueryError: no field before the operator, no value after it, or an ordering without a number.
    """
    found = TERM.match(word)
    if found is None:
        if word[:1] in "<>=!":
            raise QueryError(f"no field before {word[:2].rstrip()}", word, SYNTAX)
        return Term(TEXT, ":", word, word)
    field, op, value = found.group("field"), found.group("op"), found.group("value")
    if not field:
        raise QueryError(f"no field before {op}", word, SYNTAX)
    if not value or value[:1] in "<>=":
        raise QueryError(f"no value after {op}", word, f"write it as {field}{op}VALUE")
    number = as_number(value)
    if op in ORDERING and number is None:
        raise QueryError(f"{op} compares numbers, and {value!r} is not one", word)
    field = {"tags": "tag", "run": "name", "seconds": "time", "duration": "time"}.get(field.lower(), field)
    if field.lower() in NAMED_FIELDS:
        field = field.lower()
    return Term(field, op, value, word, number)


def parse_query(text: str) -> Query:
    """A query from its text (see the module's docstring).

    Raises:
        QueryError: naming the first term that cannot be used.
    """
    try:
        words = shlex.split(text)
    except ValueError:
        raise QueryError("a quote is not closed", text.strip(), 'close it: note:"two words"') from None
    return Query(tuple(parse_term(word) for word in words), text)


def check_fields(query: Query, known: Iterable[str]) -> None:
    """Refuse a term whose field no run has (a misspelt metric or path), when there are runs at all.

    Raises:
        QueryError: naming the term, with the closest fields the runs do have.
    """
    from tfbench.errors import close_matches

    names = set(known)
    if not names:
        return
    for term in query.terms:
        if term.field == TEXT or term.field in NAMED_FIELDS or term.field in names:
            continue
        hint = close_matches(term.field, names) or SYNTAX
        raise QueryError(f"no run has a field {term.field!r}", term.written, hint)


def run_fields(run: RunSummary) -> dict[str, Any]:
    """What a query can ask of a run: its columns, tags, note, final metrics and Experiment paths.

    A summary from the runs index carries them made already (its Experiment is not kept).
    """
    if run.query_fields:
        return run.query_fields
    fields: dict[str, Any] = flatten(run.experiment) if run.experiment else {}
    fields.update({key: value for key, value in run.final.items() if key not in fields})
    fields.update(
        status=run.status,
        name=run.name,
        preset=str(run.experiment.get("name", "")) if run.experiment else "",
        tag=tuple(run.tags),
        note=run.note,
        epochs=run.epochs_completed,
        time=run.duration,
    )
    if run.params is not None:
        fields["params"] = run.params
    if run.best_value is not None:
        fields["best"] = run.best_value
    return fields


def filter_runs(runs: list[RunSummary], text: str) -> list[RunSummary]:
    """The runs that meet the query `text`, in their order.

    Raises:
        QueryError: a term that cannot be used, or that names a field no run has.
    """
    query = parse_query(text)
    fields = [run_fields(run) for run in runs]
    check_fields(query, {key for each in fields for key in each})
    return [run for run, each in zip(runs, fields, strict=True) if query.matches(each)]
