"""No test touches the network: conftest refuses every connection beyond loopback."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("example.com", 443)])  # TEST-NET-1, a name
def test_a_connection_beyond_loopback_fails(address):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match="tests may not use the network"):
            sock.connect(address)
        with pytest.raises(OSError, match="tests may not use the network"):
            sock.connect_ex(address)


def test_loopback_still_connects():
    """The multi-worker test talks over loopback: the guard must let it through."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
