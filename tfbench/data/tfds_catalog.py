"""The TensorFlow Datasets catalog, cached as JSON in the package so listing is quick and offline.

Without a UI and without TensorFlow when reading. `python -m tfbench.data.tfds_catalog` regenerates
`files/tfds_catalog.json` from the installed `tensorflow_datasets` (each builder's features come
from its code, so this needs no network); split sizes are recorded where TFDS knows them.
"""

from __future__ import annotations

import json
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG = Path(__file__).parent / "files" / "tfds_catalog.json"


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """The cached catalog: `{"tfds_version": …, "datasets": [{name, shape, classes, …}]}`."""
    try:
        return json.loads(CATALOG.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"tfds_version": None, "datasets": []}


def catalog_names() -> list[str]:
    """Every dataset name in the cached catalog."""
    return [row["name"] for row in catalog()["datasets"]]


def _row(name: str) -> dict[str, Any]:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir="/nonexistent-tfbench-catalog")
    info = builder.info
    features = info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    x_key = y_key = None
    supervised = info.supervised_keys
    if supervised and all(isinstance(k, str) for k in supervised[:2]):
        x_key, y_key = supervised[0], supervised[1]
    else:
        for kind in (tfds.features.Image, tfds.features.Text):
            x_key = x_key or next((k for k in keys if isinstance(features[k], kind)), None)
        y_key = next((k for k in keys if isinstance(features[k], tfds.features.ClassLabel)), None)
    shape = None
    kind = None
    if x_key in keys:
        feature = features[x_key]
        kind = type(feature).__name__
        shape = [] if isinstance(feature, tfds.features.Text) else list(getattr(feature, "shape", []) or [])
    classes = None
    class_names = None
    if y_key in keys and isinstance(features[y_key], tfds.features.ClassLabel):
        classes = int(features[y_key].num_classes)
        names = list(features[y_key].names)
        class_names = names if len(names) <= 20 else names[:20] + ["…"]
    sizes = {k: int(v.num_examples) for k, v in info.splits.items()} if info.splits else None
    return {
        "name": name,
        "description": (info.description or "").strip().split("\n")[0][:200],
        "input": x_key,
        "input_type": kind,
        "shape": shape,
        "label": y_key,
        "classes": classes,
        "class_names": class_names,
        "sizes": sizes,
        "homepage": info.homepage,
    }


def generate(path: Path = CATALOG, budget_s: float = 900.0) -> dict[str, Any]:
    """Rebuild the cached catalog from the installed TFDS (no downloads)."""
    import tensorflow_datasets as tfds

    from tfbench.atomic import write_text

    start = time.time()
    rows, failed = [], []
    for name in sorted(tfds.list_builders()):
        if time.time() - start > budget_s:
            failed.append(name)
            continue
        try:
            rows.append(_row(name))
        except Exception:  # noqa: BLE001 - a builder needing an optional package: listed by name only
            rows.append({"name": name, "description": "", "shape": None, "classes": None, "sizes": None})
            failed.append(name)
    data = {"tfds_version": tfds.__version__, "datasets": rows, "without_details": failed}
    write_text(path, json.dumps(data, indent=0, sort_keys=True, ensure_ascii=False) + "\n")
    return data


if __name__ == "__main__":
    made = generate()
    print(
        f"{len(made['datasets'])} datasets ({len(made['without_details'])} without details) -> {CATALOG}",
        file=sys.stderr,
    )
