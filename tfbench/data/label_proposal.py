"""Which column of a table is its label: a ranked proposal with a short reason — without a UI; no TensorFlow.

A table picked in the workbench without a label used to train on its last column, whatever it held
(penguins.csv's `year`: three "classes" 2007/2008/2009). The proposal ranks the columns that can be
a label at all (values of a type a model predicts, at least two of them, not unique per row, not a
date) in three tiers, the later column first within a tier (labels tend to sit at the end):

1. named like a label: `label`, `target`, `y`, `outcome` first, then names real datasets give their
   labels (`class`, `species`, `survived`, `price`, `quality`, `diagnosis`, …);
2. a text column with few distinct values (a category to predict);
3. the last column (what a preset without `label` trains on).

Presets keep their documented default (the last column); the workbench writes the proposal into the
Experiment, so the preset it saves names its label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tfbench.data.arrow_types import is_categorical, plain, type_family, unusable

# Names that say "this is what to predict" whatever the data is.
LABEL_WORDS = frozenset({"label", "labels", "target", "targets", "y", "outcome", "outcomes", "ground_truth"})
# Names real datasets give their labels (normalised: lower case, `_` between words).
LABEL_NAMES = frozenset(
    {
        "class", "classes", "category", "species", "variety", "cultivar", "genre", "digit", "emotion",
        "survived", "survival", "diagnosis", "disease", "diabetes", "malignant", "cancer", "readmitted",
        "price", "saleprice", "sale_price", "medv", "charges", "quality", "rating",
        "grade", "response", "result", "verdict", "sentiment", "churn", "churned", "exited", "attrition",
        "default", "fraud", "is_fraud", "isfraud", "spam", "is_spam", "clicked", "converted", "purchased",
        "approved", "loan_status",
    }
)  # fmt: skip
MAX_FEW = 20  # a text column with at most this many distinct values (each seen twice on average) is a category


@dataclass(frozen=True)
class LabelCandidate:
    """A column that could be the label, and why it ranks where it does (one short phrase)."""

    column: str
    reason: str


def normalised(name: str) -> str:
    """A column name as the name lists spell it: `Sale Price` → `sale_price`, `isFraud` → `isfraud`."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def name_tier(name: str) -> int | None:
    """0 for a name that says "label" in any data, 1 for a name real datasets give their labels, else None."""
    word = normalised(name)
    if word in LABEL_WORDS or LABEL_WORDS & {"label", "target", "outcome"} & set(word.split("_")):
        return 0
    return 1 if word in LABEL_NAMES else None


def can_be_label(column: Any, rows: int, distinct: int) -> bool:
    """Whether a model could predict this column: a plain type, two values or more, not unique per row."""
    if unusable(column.type) or distinct < 2:
        return False
    family = type_family(column.type)
    if family == "date":
        return False
    unique_per_row = distinct == rows - column.null_count and rows >= 20
    return not (unique_per_row and family in ("string", "int"))


def rank_columns(table: Any) -> list[LabelCandidate]:
    """The columns of a `pyarrow.Table` that could be its label, most likely first, each with its reason.

    Columns that fit no tier (a number in the middle of the table) are left out; the last column
    that can be a label is always in the list, so it is empty only when no column can be one.
    """
    import pyarrow.compute as pc

    ranked: list[tuple[int, int, LabelCandidate]] = []
    names = table.column_names
    usable = []
    for index, name in enumerate(names):
        column = table[name]
        distinct = 0 if unusable(column.type) else pc.count_distinct(plain(column)).as_py()
        if not can_be_label(column, table.num_rows, distinct):
            continue
        usable.append(index)
        tier = name_tier(name)
        if tier is not None:
            ranked.append((tier, -index, LabelCandidate(name, "named like a label")))
        elif few_values(column, table.num_rows, distinct):
            ranked.append((2, -index, LabelCandidate(name, f"few distinct values: {distinct}")))
    if usable and all(c.column != names[usable[-1]] for _, _, c in ranked):
        last = usable[-1]
        reason = "the last column" if last == len(names) - 1 else "the last column that can be a label"
        ranked.append((3, -last, LabelCandidate(names[last], reason)))
    return [candidate for _, _, candidate in sorted(ranked, key=lambda t: (t[0], t[1]))]


def few_values(column: Any, rows: int, distinct: int) -> bool:
    """A text, true/false or dictionary column with a handful of values, each seen twice or more on average."""
    categorical = type_family(column.type) in ("string", "bool") or is_categorical(column.type)
    return categorical and distinct <= MAX_FEW and distinct * 2 <= rows


def propose(path: str, fmt: str, delimiter: str = ",", encoding: str = "utf-8") -> list[LabelCandidate]:
    """The ranked label candidates of a CSV or Parquet file (read as `tables.read_table` reads it, cached).

    Raises:
        UserError: at `data.source`, a file that cannot be read as a table.
    """
    from tfbench.data.tables import read_table

    return rank_columns(read_table(path, fmt, delimiter, "data.source", encoding))
