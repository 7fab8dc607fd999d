"""No test touches the network: every connection beyond loopback is refused, in the test process
and in the Python processes tests start (runners, `tfbench run`, generated `train.py` scripts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from no_network.sitecustomize import REFUSAL, pythonpath
from tiny_runs import runner_env

BEYOND_LOOPBACK = [("192.0.2.1", 80), ("example.com", 443)]  # TEST-NET-1, a name

CHILD = """
import socket, sys
for address in [("192.0.2.1", 80), ("example.com", 443)]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(address)
        except OSError as error:
            print(error)
        else:
            sys.exit("connected to %r" % (address,))
"""


@pytest.mark.parametrize("address", BEYOND_LOOPBACK)
def test_a_connection_beyond_loopback_fails(address):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match=REFUSAL):
            sock.connect(address)
        with pytest.raises(OSError, match=REFUSAL):
            sock.connect_ex(address)


def test_loopback_still_connects():
    """The multi-worker test talks over loopback: the guard must let it through."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(lambda: dict(os.environ), id="inherited"),
        pytest.param(runner_env, id="runner"),
        pytest.param(lambda: {"PYTHONPATH": pythonpath(), "PATH": "/usr/bin:/bin"}, id="bare"),
    ],
)
def test_a_process_a_test_starts_refuses_the_network_too(env):
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(REFUSAL) == len(BEYOND_LOOPBACK), out.stdout
