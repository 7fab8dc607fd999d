"""The house's shape holds: the two worlds apart (import-linter's contract in pyproject.toml), no
import circle inside tfbench/, and no `_private` name of one tfbench module used from another."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tfbench"

# Private names used across modules: none. A new one fails the test.
KNOWN_PRIVATE_USES: set[str] = set()


def test_engine_modules_never_import_textual():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _circles(exclude_type_checking: bool) -> set[frozenset[str]]:
    """The strongly connected groups of tfbench modules in the import graph (Tarjan's algorithm).

    grimp's graph holds every import statement, those inside functions too, so a lazy import that
    closes a circle counts.
    """
    graph = grimp.build_graph("tfbench", exclude_type_checking_imports=exclude_type_checking, cache_dir=None)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.add(frozenset(group))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_at_run_time():
    circles = _circles(exclude_type_checking=True)
    assert not circles, "import circles: " + "; ".join(" ↔ ".join(sorted(c)) for c in circles)


def test_no_import_circle_even_for_type_checking():
    """A type the other side needs is named with a Protocol (e.g. `engine.callbacks.TrainingRun`)."""
    circles = _circles(exclude_type_checking=False)
    assert not circles, "import circles: " + "; ".join(" ↔ ".join(sorted(c)) for c in circles)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _defined_names(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, names it assigns, and attributes it
    assigns on `self` or `cls` (setting another object's `_x` is a use, not a definition)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(module: str, tree: ast.AST, others: set[str], modules: set[str]) -> set[str]:
    """`from tfbench.x import _y`, `x._y` on an imported tfbench module, and `obj._y` (obj not self
    or cls) where `_y` is defined by another tfbench module and not by this one."""
    own = _defined_names(tree)
    aliases: dict[str, str] = {}
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfbench"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif _is_private(alias.name):
                    uses.add(f"{module} uses {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.add(f"{module} uses {aliases[node.value.id]}.{node.attr}")
        elif isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        elif node.attr in others and node.attr not in own:
            uses.add(f"{module} reaches {ast.unparse(node)}")
    return uses


def _all_private_uses() -> set[str]:
    trees = {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}
    defined = {m: _defined_names(t) for m, t in trees.items()}
    uses = set()
    for module, tree in trees.items():
        others = set().union(*(names for m, names in defined.items() if m != module))
        uses |= _private_uses(module, tree, others, set(trees))
    return uses


@pytest.mark.slow
def test_no_private_name_is_used_from_another_module():
    new = _all_private_uses() - KNOWN_PRIVATE_USES
    assert not new, "private names used across modules:\n" + "\n".join(sorted(new))


@pytest.mark.slow
def test_the_known_exceptions_are_still_there():
    """Once a known private use is gone, its exception must go too (so it cannot come back)."""
    gone = KNOWN_PRIVATE_USES - _all_private_uses()
    assert not gone, "remove from KNOWN_PRIVATE_USES: " + ", ".join(sorted(gone))


def test_the_scan_sees_what_it_must(tmp_path):
    """The private-name scan catches each form it looks for, and leaves a module's own names alone."""
    code = (
        "from tfbench.engine.events import _clean\n"
        "from tfbench.engine import run\n"
        "def f(r, self):\n"
        "    run._private_helper()\n"
        "    r._stop_reason = 1\n"
        "    self._mine = r._mine\n"
    )
    uses = _private_uses("tfbench.x", ast.parse(code), {"_stop_reason", "_mine"}, {"tfbench.engine.run"})
    assert uses == {
        "tfbench.x uses tfbench.engine.events._clean",
        "tfbench.x uses tfbench.engine.run._private_helper",
        "tfbench.x reaches r._stop_reason",
    }
