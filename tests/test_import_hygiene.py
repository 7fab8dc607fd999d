"""Two worlds, one seam: the UI never imports TensorFlow at import time, the engine never imports Textual.

The modules are imported in a fresh interpreter (a test process has imported everything), one
after another, recording what each import brings in: a module that pulls in TensorFlow (or Textual)
is named by its own test. Only a second offender could hide behind a first, and the first already
fails. One interpreter per group instead of one per module keeps the check to a few seconds.
"""

from __future__ import annotations

import functools
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


IMPORT_EACH = """
import importlib, json, sys
for name in sys.argv[1:]:
    before = set(sys.modules)
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
    print(json.dumps([name, sorted(set(sys.modules) - before)]))
"""


@functools.cache
def _brought_in(modules: tuple[str, ...]) -> dict[str, set[str]]:
    """What importing each of `modules`, in order, in one fresh interpreter added to `sys.modules`."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *modules], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    return {name: set(new) for name, new in pairs}


def _imported_by(module: str, group: list[str]) -> set[str]:
    return _brought_in(tuple(sorted(set(group))))[module]


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
    loaded = _imported_by(module, UI_MODULES)
    ours = sorted(m for m in loaded if m.startswith("tfbench"))  # the culprit is among them
    assert "tensorflow" not in loaded, f"importing {module} imports TensorFlow, through one of {ours}"
    assert "keras" not in loaded, f"importing {module} imports Keras, through one of {ours}"


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(set(ENGINE_MODULES)))
def test_engine_modules_do_not_import_textual(module: str):
    """The engine runs without a UI (in a runner process, headless, over SSH)."""
    if not _present(module):
        pytest.skip(f"{module} is not part of this tree yet")
    loaded = _imported_by(module, ENGINE_MODULES)
    ours = sorted(m for m in loaded if m.startswith("tfbench"))  # the culprit is among them
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}, f"through one of {ours}"
    assert not {m for m in loaded if m.startswith(("tfbench.app", "tfbench.screens", "tfbench.widgets"))}
