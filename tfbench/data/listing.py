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
        rows.append(
            {
                "name": f"builtin:{name}",
                "kind": "builtin",
                "shape": list(entry.input_shape),
                "classes": len(entry.class_names) or None,
                "sizes": {"train": entry.size},
                "description": entry.description,
            }
        )
    for name, dataset in keras_source.DATASETS.items():
        rows.append(
            {
                "name": f"keras:{name}",
                "kind": "keras",
                "shape": list(dataset.input_shape),
                "classes": len(dataset.class_names) or None,
                "sizes": {"train": dataset.sizes[0], "test": dataset.sizes[1]},
                "description": dataset.description,
            }
        )
    for row in catalog()["datasets"]:
        rows.append(
            {
                "name": f"tfds:{row['name']}",
                "kind": "tfds",
                "shape": row.get("shape") if row.get("input_type") != "Text" else "text",
                "classes": row.get("classes"),
                "sizes": row.get("sizes"),
                "description": row.get("description") or "",
            }
        )
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
    """`[28, 28, 1]` → `28x28x1`; None dims as `?`; text as `text`; named features as `9 features`."""
    if shape is None:
        return "?"
    if isinstance(shape, str):
        return shape
    if not shape:
        return "scalar"
    if any(isinstance(d, str) for d in shape):  # a table of named feature columns (tfds:diamonds)
        return f"{len(shape)} features"
    return "x".join("?" if d is None else str(d) for d in shape)


# The name column is at most this wide; a longer name is printed whole on a line of its own, with
# its details on the next line, so names stay copyable and the columns stay aligned.
NAME_WIDTH = 28
_MIN_DESCRIPTION = 16
_MIN_NAME = 14


def format_table(rows: list[dict[str, Any]], width: int) -> list[str]:
    """The lines `tfbench datasets` prints: name, shape, classes, sizes, description.

    Every line fits in `width` columns: descriptions are cut with `…`, and names longer than
    `NAME_WIDTH` take a line of their own (never cut — they are what a user copies into a preset).
    """
    cells = []
    for r in rows:
        sizes = r.get("sizes") or {}
        size_text = "/".join(f"{v:,}" for v in sizes.values() if v) or "-"
        classes = f"{r['classes']} classes" if r.get("classes") else ("regression" if r["kind"] != "tfds" else "")
        cells.append((r["name"], format_shape(r.get("shape")), classes, size_text, r.get("description") or ""))
    if not cells:
        return []
    shape_w, classes_w, sizes_w = (max(len(c[i]) for c in cells) for i in (1, 2, 3))
    middle = 2 + shape_w + 1 + classes_w + 1 + sizes_w + 1
    # On a narrow terminal the name column gives way first, so some description still shows.
    name_w = min(max(len(c[0]) for c in cells), NAME_WIDTH, max(width - middle - _MIN_DESCRIPTION, _MIN_NAME))
    room = width - name_w - middle
    lines = []
    for name, shape, classes, size_text, description in cells:
        if len(description) > room:
            description = description[: room - 1].rstrip() + "…" if room >= 4 else ""
        details = f"{shape:<{shape_w}} {classes:<{classes_w}} {size_text:<{sizes_w}} {description}"
        if len(name) > name_w:
            lines.append(name)
            name = ""
        lines.append(f"{name:<{name_w}}  {details}".rstrip())
    return lines
