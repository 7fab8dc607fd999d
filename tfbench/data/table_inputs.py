"""The inputs a table's model takes — a named input per column, or the numeric ones as one matrix.

Without a UI; no TensorFlow. A model takes a table's raw columns by name, each a `(batch, 1)`
input. Keras maps a model's inputs over its graph once per layer, so building a model of n inputs
costs about n² (300 rows × 5,000 columns never reached a first step); a table with more numeric
columns than `max_numeric_inputs` therefore gives its model one `(batch, k)` input, `numbers`,
holding the numeric columns in the order of the plan (`TablePlan.packed` names it, and the plan's
note says so). Other columns keep inputs of their own. The same layout feeds training, `predict`
and the exports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfbench.data.tables import ColumnPlan, TableOptions, TablePlan, raw_column

PACKED_NAME = "numbers"
MANY_INPUTS = 1000  # more model inputs than this: the plan says building takes minutes
NUMERIC_KINDS = ("numeric", "date")


def pack_if_wide(plan: TablePlan, options: TableOptions, names: list[str]) -> None:
    """Set `plan.packed` (with a note) when the plan has more numeric columns than the option allows.

    Args:
        plan: the plan, its columns chosen.
        options: the table's options (`max_numeric_inputs`).
        names: every column name of the file, which the packed input's name must not take.
    """
    numeric = packed_columns(plan, packed=True)
    if len(numeric) <= options.max_numeric_inputs:
        _note_many_inputs(plan)
        return
    taken = set(names)
    name, suffix = PACKED_NAME, 2
    while name in taken:
        name, suffix = f"{PACKED_NAME}_{suffix}", suffix + 1
    plan.packed = name
    plan.notes.append(
        f"the {len(numeric):,} numeric columns are one input of the model, {name!r}: a ({len(numeric):,},) "
        f"vector in file order (more than max_numeric_inputs = {options.max_numeric_inputs}; an input per "
        "column takes minutes to build)"
    )
    _note_many_inputs(plan)


def _note_many_inputs(plan: TablePlan) -> None:
    inputs = len(layout(plan))
    if inputs > MANY_INPUTS:
        plan.notes.append(
            f"the model takes {inputs:,} inputs (a categorical or text column each): building it takes minutes; "
            "drop columns (data.options.columns) or pick fewer (data.options.features)"
        )


def packed_columns(plan: TablePlan, packed: bool | None = None) -> list[ColumnPlan]:
    """The numeric columns a packed input holds, in order (none when the plan is not packed)."""
    if not (plan.packed if packed is None else packed):
        return []
    return [c for c in plan.columns if c.kind == "numeric"]


def number_columns(plan: TablePlan) -> list[ColumnPlan]:
    """The numeric and date columns, in the order the model's numbers block takes them: packed ones first."""
    first = packed_columns(plan)
    inside = {c.name for c in first}
    return first + [c for c in plan.columns if c.kind in NUMERIC_KINDS and c.name not in inside]


def layout(plan: TablePlan) -> dict[str, tuple[int, str]]:
    """Each model input: its key (a column's name, or the packed input's) → (width, dtype)."""
    inside = packed_columns(plan)
    names = {c.name for c in inside}
    out = {plan.packed: (len(inside), "float32")} if inside else {}
    out.update({c.name: (1, c.dtype) for c in plan.columns if c.name not in names})
    return out


def model_columns(
    table: Any, plan: TablePlan, location: str | None = None, first_row: int = 0
) -> dict[str, np.ndarray]:
    """A table's (or record batch's) columns as the model's raw inputs, keyed as `layout` keys them.

    Raises:
        UserError: at `location`, a cell its column's kind cannot read (rows counted from `first_row`).
    """
    inside = packed_columns(plan)
    names = {c.name for c in inside}
    out: dict[str, np.ndarray] = {}
    if inside:
        out[plan.packed] = np.hstack([raw_column(table[c.name], c, location, first_row) for c in inside])
    out.update({c.name: raw_column(table[c.name], c, location, first_row) for c in plan.columns if c.name not in names})
    return out
