"""What each Arrow type means for a table model — without a UI; no TensorFlow (pyarrow when called).

A column reaches the model as one of five families: float, int, bool, date or string. `plain`
turns the Arrow types that stand for one of them into it (dictionary-encoded columns, what pandas
writes for `category`, into their values; durations and times of day into seconds; bytes that
are UTF-8 into text), and `unusable` says why any other column cannot be a feature (nested
lists, structs and maps, intervals, raw bytes, a column with no values), so the plan drops it with
a note instead of failing on it.
"""

from __future__ import annotations

from typing import Any

FAMILIES = ("float", "int", "bool", "date", "string")


def type_family(arrow_type: Any) -> str:
    """ "float", "int", "bool", "date" or "string" for a pyarrow type (dictionaries by their values)."""
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return type_family(arrow_type.value_type)
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type) or t.is_duration(arrow_type) or t.is_time(arrow_type):
        return "float"
    if t.is_integer(arrow_type):
        return "int"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return "date"
    return "string"


def unusable(arrow_type: Any) -> str | None:
    """Why a column of this type cannot be a feature (words for a note), or None when it can."""
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return unusable(arrow_type.value_type)
    if t.is_null(arrow_type):
        return "has no values"
    if t.is_struct(arrow_type):
        return "holds records (a struct type)"
    if t.is_map(arrow_type):
        return "holds maps"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return "holds lists"
    if getattr(t, "is_list_view", None) and (t.is_list_view(arrow_type) or t.is_large_list_view(arrow_type)):
        return "holds lists"
    if t.is_union(arrow_type):
        return "holds values of mixed types (a union type)"
    if t.is_interval(arrow_type):
        return "holds calendar intervals"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "holds raw bytes, not text"
    if type_family(arrow_type) == "string" and not _is_text(arrow_type):
        return f"has the type {arrow_type}, which a table model cannot take"
    return None


def _is_text(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return t.is_string(arrow_type) or t.is_large_string(arrow_type) or getattr(t, "is_string_view", bool)(arrow_type)


def is_categorical(arrow_type: Any) -> bool:
    """Whether the file says the column is categorical (dictionary-encoded, as pandas writes `category`)."""
    import pyarrow.types as t

    return t.is_dictionary(arrow_type)


def plain(column: Any) -> Any:
    """The column in its family's plain type: dictionaries decoded, durations and times in seconds (float64).

    Other columns come back as they are; an unusable one too (the plan drops it before it is read).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    kind = column.type
    if t.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
        kind = column.type
    if t.is_duration(kind) or t.is_time(kind):
        unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[kind.unit]
        whole = pa.int64() if t.is_duration(kind) or kind.bit_width == 64 else pa.int32()
        return pc.multiply(pc.cast(pc.cast(column, whole), pa.float64()), unit)
    if t.is_large_string(kind) or getattr(t, "is_string_view", bool)(kind):
        return pc.cast(column, pa.string())
    return column
