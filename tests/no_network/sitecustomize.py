"""Refuse the network in the test process and in every Python process a test starts.

Python imports `sitecustomize` at start-up from any folder on `PYTHONPATH`, so a child whose
`PYTHONPATH` is built with `pythonpath()` (a runner, `tfbench run`, a generated `train.py`) gets
the same guard as the test process, which loads this file from conftest. Loopback and Unix
sockets still connect: the multi-worker test talks over loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket

GUARD_DIR = os.path.dirname(os.path.abspath(__file__))
REFUSAL = "tests may not use the network"


def pythonpath(*paths: object) -> str:
    """A `PYTHONPATH` for a child process: `paths` first, then this guard."""
    return os.pathsep.join([*(str(p) for p in paths), GUARD_DIR])


def loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def local_only(connect):
    """Wrap `socket.connect`: loopback and Unix sockets pass, anything else fails at once."""

    def guarded(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None) or loopback(address):
            return connect(sock, address)
        raise OSError(f"{REFUSAL} (tried to connect to {address!r})")

    guarded.refuses_the_network = True
    return guarded


def install() -> None:
    """Guard `socket.connect`/`connect_ex` once per process, however often this is loaded."""
    if getattr(socket.socket.connect, "refuses_the_network", False):
        return
    socket.socket.connect = local_only(socket.socket.connect)
    socket.socket.connect_ex = local_only(socket.socket.connect_ex)


install()
