"""Text columns with many different values: their words, or their most frequent values — no TensorFlow.

A text column with more values than `max_one_hot` that is not an identifier (a car's model name,
a product title, a comment) would be one-hot over hundreds of mostly unique values, or hashed
into bins where unrelated values collide; either way the model learns the rows by heart. Values
of several words give their words instead: a multi-hot of the `max_words` most frequent words
that occur at least twice in the training split ("chevrolet chevelle malibu" → chevrolet,
chevelle, malibu), tokenised exactly as `keras.layers.TextVectorization` tokenises them inside the
model. Single-word values give their most frequent values (at least twice, at most `max_one_hot`)
one-hot, with one "other" slot for the rest. The plan's note says which, and how to drop the column.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

# `keras.layers.TextVectorization(standardize="lower_and_strip_punctuation")`: ASCII lower case, then
# these characters removed (Keras' DEFAULT_STRIP_REGEX), then split on whitespace.
STRIP = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MIN_WORDS = 1.5  # values with at least this many words on average are text, fewer are codes or names
MIN_COUNT = 2  # a word or value seen once in training teaches nothing about new rows


def words(value: str) -> list[str]:
    """A value's words as the model's `TextVectorization` finds them."""
    return re.sub(STRIP, "", value.translate(_LOWER)).split()


def mean_words(column: Any) -> float:
    """The mean number of words in a text column's non-empty values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    present = pc.drop_null(pc.cast(column, pa.string()))
    if len(present) == 0:
        return 0.0
    return pc.mean(pc.list_value_length(pc.utf8_split_whitespace(present))).as_py() or 0.0


def many_values_kind(column: Any) -> str:
    """`text` (its words) for values of several words, else `categorical` (its most frequent values)."""
    return "text" if mean_words(column) >= MIN_WORDS else "categorical"


def word_vocabulary(pairs: Iterable[tuple[Any, int]], limit: int) -> list[str]:
    """The `limit` most frequent words seen at least `MIN_COUNT` times, from (value, count) pairs."""
    counts: Counter = Counter()
    for value, count in pairs:
        for word in words(str(value)):
            counts[word] += count
    frequent = sorted((w for w, c in counts.items() if c >= MIN_COUNT), key=lambda w: (-counts[w], w))
    return frequent[:limit]


def frequent_values(pairs: list[tuple[Any, int]], limit: int) -> list[tuple[Any, int]]:
    """The `limit` most frequent (value, count) pairs seen at least `MIN_COUNT` times (pairs sorted already)."""
    return [(v, c) for v, c in pairs if c >= MIN_COUNT][:limit]


def encoding_note(column: Any, rows: int, max_one_hot: int) -> str | None:
    """The plan's note for an inferred text column with many values: what the model gets, how to drop it.

    Args:
        column: the column's `ColumnPlan`.
        rows: the training rows.
        max_one_hot: the option; a categorical column with more values than this kept its most frequent.
    """
    kind, name, distinct = column.kind, column.name, column.distinct
    kept = column.bins if kind == "hashed" else len(column.vocabulary)
    if kind == "categorical" and distinct <= max_one_hot or kind not in ("categorical", "text", "hashed"):
        return None
    drop = f'columns = {{ {name!r} = "drop" }} drops it'
    head = f"column {name!r} has {distinct:,} different values in {rows:,} rows"
    if kind == "text":
        return (
            f"{head}: its {kept:,} most frequent words (seen at least twice) are multi-hot features, "
            f"other words one more; {drop}"
        )
    if kind == "hashed":
        return f"{head}, none seen twice: hashed into {kept:,} bins; {drop}"
    return f"{head}: its {kept:,} most frequent (seen at least twice) are one-hot, the rest one 'other'; {drop}"
