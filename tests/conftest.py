"""Shared test set-up: quiet, deterministic TensorFlow on the CPU, and temporary run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_HOME", str(Path(__file__).parent / ".keras-home-unused"))
os.environ.setdefault("NO_COLOR", "")
os.environ.pop("NO_COLOR", None)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """An empty runs directory for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path
