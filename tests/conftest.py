"""Shared test set-up: quiet, deterministic TensorFlow on the CPU, and temporary run folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# No test may reach Keras' real cache (or the network behind it): point it at an empty folder.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="tfbench-keras-home-")
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)
os.environ.pop("NO_COLOR", None)
# The runs index a test writes stays out of the user's cache folder.
os.environ["TFBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="tfbench-cache-")
atexit.register(shutil.rmtree, os.environ["TFBENCH_CACHE_DIR"], ignore_errors=True)


# No test may touch the network: a connection anywhere but loopback (which the multi-worker test
# uses) fails loudly, in this process and, through PYTHONPATH, in every Python process a test starts,
# so a download that slipped into a test or a runner cannot pass quietly.
from no_network.sitecustomize import GUARD_DIR, pythonpath  # noqa: E402  (installs the guard)

inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != GUARD_DIR]
os.environ["PYTHONPATH"] = pythonpath(*inherited)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """An empty runs directory for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path
