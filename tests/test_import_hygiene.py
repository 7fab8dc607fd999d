"""Two worlds, one seam: the UI never imports TensorFlow at import time, the engine never imports Textual.

Each module is imported in a fresh interpreter, because one import test in a shared process would
be masked by whatever an earlier test imported.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _package_modules(package: str) -> list[str]:
    path = REPO / Path(*package.split("."))
    return [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path)])]


UI_MODULES = [
    "tfbench.app",
    "tfbench.cli",
    "tfbench.messages",
    "tfbench.engine_calls",
    "tfbench.spec",
    "tfbench.catalog",
    "tfbench.engine.events",
    "tfbench.rundir",
    "tfbench.console",
    "tfbench.keras_archive",
    "tfbench.export.formats",
    "tfbench.pictures",
    "tfbench.augment_preview",
    "tfbench.explain",
    "tfbench.explain_input",
    "tfbench.explain_view",
    *_package_modules("tfbench.screens"),
    *_package_modules("tfbench.widgets"),
]
ENGINE_MODULES = [
    "tfbench.spec",
    "tfbench.catalog",
    "tfbench.errors",
    "tfbench.atomic",
    "tfbench.engine_calls",
    "tfbench.data",
    "tfbench.build",
    "tfbench.export",
    "tfbench.codegen",
    "tfbench.adapt",
    "tfbench.adaptable",
    "tfbench.system",
    "tfbench.headless",
    "tfbench.figures",
    "tfbench.console",
    "tfbench.keras_archive",
    "tfbench.pictures",
    "tfbench.augment_preview",
    "tfbench.explain",
    "tfbench.explain_input",
    "tfbench.explain_view",
    *_package_modules("tfbench.engine"),
    *_package_modules("tfbench.export"),
]


def _imported_after(module: str) -> set[str]:
    code = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("module", sorted(set(UI_MODULES)))
def test_ui_and_light_modules_do_not_import_tensorflow(module: str):
    """The first paint and `tfbench --help` must never wait for TensorFlow's import."""
    if not _present(module):
        pytest.skip(f"{module} is not part of this tree yet")
    loaded = _imported_after(module)
    assert "tensorflow" not in loaded
    assert "keras" not in loaded


@pytest.mark.parametrize("module", sorted(set(ENGINE_MODULES)))
def test_engine_modules_do_not_import_textual(module: str):
    """The engine runs without a UI (in a runner process, headless, over SSH)."""
    if not _present(module):
        pytest.skip(f"{module} is not part of this tree yet")
    loaded = _imported_after(module)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
    assert not {m for m in loaded if m.startswith(("tfbench.app", "tfbench.screens", "tfbench.widgets"))}
