"""Shared test set-up: quiet, deterministic TensorFlow on the CPU, and temporary run folders."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# No test may reach Keras' real cache (or the network behind it): point it at an empty folder.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="tfbench-keras-home-")
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)
os.environ.pop("NO_COLOR", None)


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def _local_only(connect):
    """Wrap `socket.connect`: loopback and Unix sockets pass, anything else fails at once."""

    def guarded(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None) or _loopback(address):
            return connect(sock, address)
        raise OSError(f"tests may not use the network (tried to connect to {address!r})")

    return guarded


# No test may touch the network: in this process, a connection anywhere but loopback (which the
# multi-worker test uses) fails loudly, so a download that slipped into a test cannot pass quietly.
socket.socket.connect = _local_only(socket.socket.connect)
socket.socket.connect_ex = _local_only(socket.socket.connect_ex)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """An empty runs directory for one test."""
    path = tmp_path / "runs"
    path.mkdir()
    return path
