"""What `tfbench datasets [QUERY]` lists: builtin, Keras and TFDS datasets with their shapes.

No TensorFlow: builtin and Keras datasets are described by tables in their modules, TFDS by the
cached catalog (`files/tfds_catalog.json`), so the listing is instant and offline.
"""

from __future__ import annotations

from typing import Any


def _rows() -> list[dict[str, Any]]:
    from tfbench.data import builtin, keras_source
    from tfbench.data.tfds_catalog import catalog

    rows: list[dict[str, Any]] = []
    for name, entry in builtin.DATASETS.items():
        rows.append({
            "name": f"builtin:{name}", "kind": "builtin", "shape": list(entry.input_shape),
            "classes": len(entry.class_names) or None, "sizes": {"train": entry.size},
            "description": entry.description,
        })
    for name, entry in keras_source.DATASETS.items():
        rows.append({
            "name": f"keras:{name}", "kind": "keras", "shape": list(entry.input_shape),
            "classes": len(entry.class_names) or None,
            "sizes": {"train": entry.sizes[0], "test": entry.sizes[1]},
            "description": entry.description,
        })
    for row in catalog()["datasets"]:
        rows.append({
            "name": f"tfds:{row['name']}", "kind": "tfds",
            "shape": row.get("shape") if row.get("input_type") != "Text" else "text",
            "classes": row.get("classes"), "sizes": row.get("sizes"),
            "description": row.get("description") or "",
        })
    return rows


def listing(query: str | None = None) -> list[dict[str, Any]]:
    """Rows `{name, kind, shape, classes, sizes, description}` matching `query` in name or description.

    Every word of the query must occur (case-insensitive), so `tfbench datasets image mnist` narrows.
    """
    rows = _rows()
    words = (query or "").lower().split()
    if not words:
        return rows
    return [r for r in rows if all(w in f"{r['name']} {r['description']}".lower() for w in words)]


def format_shape(shape: Any) -> str:
    """`[28, 28, 1]` → `28x28x1`; None dims as `?`; text as `text`."""
    if shape is None:
        return "?"
    if isinstance(shape, str):
        return shape
    if not shape:
        return "scalar"
    return "x".join("?" if d is None else str(d) for d in shape)
