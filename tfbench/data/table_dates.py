"""Dates as tables write them: the written forms recognised, parsed with pyarrow, handed to the model as ISO text.

Without a UI; no TensorFlow. pyarrow's CSV reader recognises ISO dates by itself; every other
common form reaches the plan as text, and `text_form` finds the one a column is written in —
month names (`Jan 1 2000`, `1 January 2000`), year first with slashes, US month/day/year and
European day/month/year (slashes, dots, dashes), each with or without a time — the way pandas reads
them: one form for the whole column, the US order when both orders fit (pandas' `dayfirst=False`).
A whole-number column named like a time (`time`, `timestamp`, `created_at`, …) whose values are
Unix seconds (or milliseconds) of the years 1973–2100 is a date too (`unix_form`).

Whatever the file's form, the model takes a date as ISO text, `YYYY-MM-DD HH:MM:SS` (shorter
forms such as `YYYY-MM-DD` too), and parses it with TensorFlow ops (`tfbench.data.feature_space`),
so the exported model takes an ISO date column as the file writes it. Another form is converted to
ISO text by tfbench's reader (`iso_text`), which `tfbench predict` uses; a client of the SavedModel
converts it the same way.
"""

from __future__ import annotations

from typing import Any

ISO = "2000-01-31 13:45:00 (ISO)"
UNIX_SECONDS = "Unix seconds"
UNIX_MILLISECONDS = "Unix milliseconds"
_TIMES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")


def _with_times(*dates: str) -> list[str]:
    return [date + time for date in dates for time in _TIMES]


# Each written form and the strptime formats that read it (tried per value, in order).
FORMS: dict[str, list[str]] = {
    ISO: ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    "2000/01/31 (year/month/day)": _with_times("%Y/%m/%d"),
    "Jan 31 2000 (month name)": _with_times("%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y"),
    "31 Jan 2000 (day and month name)": _with_times("%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y")
    + ["%a, %d %b %Y %H:%M:%S", "%a %b %d %H:%M:%S %Y"],
    "01/31/2000 (US month/day/year)": _with_times("%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y"),
    "31/01/2000 (day/month/year)": _with_times("%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y", "%d.%m.%y"),
}
ISO_CLEAN = (r"^(\d{4}-\d{1,2}-\d{1,2})(?:[T ](\d{1,2}:\d{2}(?::\d{2})?))?.*$", r"\1 \2")  # T, fractions, zones
SAMPLE = 1000  # values a form is first tried on
UNIX_RANGE = (1e8, 4.11e9)  # 1973-03-03 .. 2100-03-29 in seconds
TIME_WORDS = ("time", "date", "timestamp", "epoch", "created", "updated", "modified", "when")


def text_form(column: Any) -> str | None:
    """The written form every non-empty value of a text column is in, or None when it is not dates."""
    import pyarrow.compute as pc

    present = pc.drop_null(column)
    if len(present) == 0:
        return None
    sample = present.slice(0, SAMPLE) if hasattr(present, "slice") else present[:SAMPLE]
    for form in FORMS:
        if parsed(sample, form).null_count == 0 and parsed(present, form).null_count == 0:
            return form
    return None


def best_form(column: Any) -> str:
    """The form that reads the most values of a text column (to name the first one it cannot read)."""
    import pyarrow.compute as pc

    present = pc.drop_null(column)
    return min(FORMS, key=lambda form: parsed(present, form).null_count)


def unix_form(column: Any, name: str, named: bool = True) -> str | None:
    """`UNIX_SECONDS` or `UNIX_MILLISECONDS` for a whole-number column of Unix times, else None.

    Args:
        named: whether the column must be named like a time (inferred kinds); a column forced to be a
            date need not.
    """
    import numpy as np
    import pyarrow.compute as pc

    present = pc.drop_null(column)
    if len(present) == 0:
        return None
    values = present.to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.mod(values, 1) == 0):
        return None
    return unix_range_form(float(values.min()), float(values.max()), name, named)


def unix_range_form(low: float, high: float, name: str, named: bool = True) -> str | None:
    """Like `unix_form`, from a whole-number column's name and range (a streamed column's running counts)."""
    words = name.lower()
    if named and not any(word in words for word in TIME_WORDS) and not words.endswith(("_at", "_ts")):
        return None
    for form, scale in ((UNIX_SECONDS, 1), (UNIX_MILLISECONDS, 1000)):
        if UNIX_RANGE[0] * scale <= low and high <= UNIX_RANGE[1] * scale:
            return form
    return None


def parsed(column: Any, form: str) -> Any:
    """The column as timestamps (seconds, no time zone): typed dates as they are, text read in `form`
    (null where a value is not in it), Unix numbers converted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    kind = column.type
    if t.is_timestamp(kind) or t.is_date(kind):
        return pc.cast(pc.cast(column, pa.timestamp("ms")), pa.timestamp("s"), safe=False)
    if form in (UNIX_SECONDS, UNIX_MILLISECONDS):
        seconds = pc.cast(column, pa.float64())
        if form == UNIX_MILLISECONDS:
            seconds = pc.divide(seconds, 1000.0)
        return pc.cast(pc.cast(pc.floor(seconds), pa.int64()), pa.timestamp("s"))
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    if form == ISO or not form:
        text = pc.replace_substring_regex(text, pattern=ISO_CLEAN[0], replacement=ISO_CLEAN[1])
        text = pc.utf8_trim_whitespace(text)
    found = None
    for fmt in FORMS.get(form or ISO, FORMS[ISO]):
        attempt = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        found = attempt if found is None else pc.coalesce(found, attempt)
    return found


def first_unreadable(column: Any, form: str) -> int | None:
    """The index of the first non-empty value `form` cannot read, or None."""
    import pyarrow.compute as pc

    bad = pc.and_(pc.is_valid(column), pc.is_null(parsed(column, form)))
    index = pc.index(bad, True).as_py()
    return None if index < 0 else index


def iso_text(timestamps: Any) -> Any:
    """Timestamps as the ISO text the model takes (`YYYY-MM-DD HH:MM:SS`), "" where missing."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.strftime(timestamps, format="%Y-%m-%d %H:%M:%S"), "")


def date_note(name: str, form: str) -> str:
    """The plan's note for a date column: what it gives the model and, unless ISO, how it was read."""
    note = f"column {name!r} is a date: it gives elapsed days and cyclic day-of-year and weekday features"
    if form in (UNIX_SECONDS, UNIX_MILLISECONDS):
        return (
            f"{note}; it holds {form}, read as dates (the model takes them as ISO text, YYYY-MM-DD HH:MM:SS; "
            f'columns = {{ {name!r} = "numeric" }} keeps the numbers)'
        )
    if form and form != ISO:
        return f"{note}; it is written like {form} (the model takes it as ISO text, YYYY-MM-DD HH:MM:SS)"
    return note
