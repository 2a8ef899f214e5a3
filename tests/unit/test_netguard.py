"""The network guard itself: loopback passes, anything else fails loudly from the root namespace."""

from __future__ import annotations

import socket
import subprocess
import sys

import netguard
import pytest


def test_loopback_connect_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("10.66.2.2", 443), ("2001:db8::1", 53)])
def test_other_addresses_fail_loudly_from_the_root_namespace(address: tuple[str, int]) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s, pytest.raises(netguard.NetworkGuardError):
        s.sendto(b"x", address)
    with socket.socket(family, socket.SOCK_STREAM) as s, pytest.raises(netguard.NetworkGuardError):
        s.connect(address)


def test_subprocesses_inherit_the_guard() -> None:
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 53))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "NetworkGuardError" in result.stderr
