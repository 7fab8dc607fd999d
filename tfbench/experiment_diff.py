"""The settings on which Experiments differ, as dotted paths: for comparing runs, and for what
changed in a run's `experiment.toml` since it ran.

Without a UI and without TensorFlow: plain dicts (`Experiment.to_dict()`) in, strings out.
"""

from __future__ import annotations

from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested Experiment dict as dotted paths (`model.layers[1].units`) to leaf values."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
    else:
        out[prefix] = value
    return out


def experiment_differences(experiments: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The settings on which the given Experiments differ, side by side.

    Args:
        experiments: Experiment dicts, one per run.

    Returns:
        (dotted path, [that setting's value in each run, "—" where a run lacks it]) for every
        path whose values are not all equal, in the order the paths first appear.
    """
    flats = [flatten(exp) for exp in experiments]
    keys: list[str] = []
    seen = set()
    for flat in flats:
        for key in flat:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    rows = []
    for key in keys:
        values = [repr_value(flat[key]) if key in flat else "—" for flat in flats]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


def repr_value(value: Any) -> str:
    """A setting's value as a preset would spell it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(repr_value(v) for v in value) + "]"
    return str(value)
