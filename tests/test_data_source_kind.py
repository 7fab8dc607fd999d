"""A data-source kind is held to the `DataSource` Protocol: by the type checker, and at run time."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfbench.data import registry
from tfbench.data.registry import DataSource
from tfbench.data.tables import type_for

EXAMPLE = Path(__file__).with_name("source_kind_example.py")
REPO = Path(__file__).parents[1]
# Each hook as the example writes it: the line that provides it.
HOOKS = {
    "OPTIONS": "OPTIONS = ExampleOptions\n",
    "PICKER": 'PICKER = Picker("example", "example:PATH", suffixes=(".example",))\n',
    "PATHS": 'PATHS = ("target",)\n',
    "NAMED_IO": "NAMED_IO = False\n",
    "NORMALIZES_ITSELF": "NORMALIZES_ITSELF = False\n",
    "overview": "overview = None\n",
    "describe": "def describe(",
    "load": "def load(",
    "loader_code": "def loader_code(",
}


def without(text: str, line: str) -> str:
    """The example with the hook that begins `line` left out (a function: its whole definition)."""
    start = text.index(line)
    end = text.index("\n\n\n", start) + 1 if line.startswith("def ") else start + len(line)
    return text[:start] + text[end:]


def mypy(cache: Path, *files: Path) -> tuple[int, str]:
    """The project's type checker on `files`, with a cache of its own (about 10 s cold)."""
    config = ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache)]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *config, *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def test_every_registered_kind_provides_every_hook():
    for kind, path in registry.SOURCES.items():
        assert isinstance(importlib.import_module(path), DataSource), kind


@pytest.mark.slow
def test_the_type_checker_names_the_hook_a_new_kind_lacks_or_mistypes(tmp_path):
    text = EXAMPLE.read_text()
    assert all(line in text for line in HOOKS.values())  # the example provides each hook as written above
    variants = {}
    for hook, line in HOOKS.items():
        name = f"kind_without_{hook.lower()}"
        variants[hook] = tmp_path / f"{name}.py"
        variants[hook].write_text(without(text, line).replace("source_kind_example", name))
    mistyped = tmp_path / "kind_with_a_string_for_paths.py"
    mistyped.write_text(
        text.replace(HOOKS["PATHS"], 'PATHS = "target"\n').replace("source_kind_example", mistyped.stem)
    )
    code, out = mypy(tmp_path / "mypy_cache", EXAMPLE, *variants.values(), mistyped)
    assert code == 1, out
    assert f"{EXAMPLE.name}:" not in out, out  # the complete example passes
    for hook, path in variants.items():
        missing = re.search(
            rf"{path.name}:\d+: note: .*missing following .DataSource. protocol member:\n.*note:\s+(\w+)", out
        )
        assert missing and missing.group(1) == hook, (hook, out)
    assert re.search(rf"{mistyped.name}:\d+: note: +PATHS: expected \"tuple\[str, \.\.\.\]\", got \"str\"", out), out


def test_a_registered_kind_gets_defaults_for_optional_hooks_and_is_refused_without_a_required_one(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    example = importlib.import_module("source_kind_example")
    monkeypatch.setitem(registry.SOURCES, "example", "source_kind_example")
    monkeypatch.delattr(example, "NORMALIZES_ITSELF")
    monkeypatch.delattr(example, "PATHS")
    assert not isinstance(example, DataSource)
    module = registry.source_module("example")
    assert module.NORMALIZES_ITSELF is False and registry.path_fields("example") == ()
    monkeypatch.delattr(example, "loader_code")
    with pytest.raises(TypeError, match="source_kind_example lacks loader_code"):
        registry.source_module("example")


def test_the_registry_hands_out_a_kind_s_hooks_typed():
    assert registry.path_fields("csv") == ("target", "test_path") and registry.path_fields("builtin") == ()
    with pytest.raises(ValueError, match="'images' is not a table kind"):
        type_for("images")
