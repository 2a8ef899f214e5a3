"""Network guard: any connect/send to an address that is neither loopback nor inside a
network namespace created by the tests fails loudly.

Installed in the pytest process by tests/conftest.py, and in every Python subprocess the tests
start through tests/netguard_site/sitecustomize.py (PYTHONPATH + PROBE_NETGUARD=1).
A thread may reach other addresses only when it runs in a network namespace other than the
machine's root one: that is the lab, whose namespaces have no route out of the machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket

__all__ = ["NetworkGuardError", "install", "is_allowed"]


class NetworkGuardError(AssertionError):
    """Raised when a test tries to reach an address outside loopback and the lab."""


def _netns_inode(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


# The root namespace is the one the test session started in: tests/conftest.py records it in
# PROBE_NETGUARD_ROOTNS, so subprocesses entering a lab namespace (ip netns exec) still know it.
# /proc/1/ns/net is only a fallback: some sandboxes hide PID 1's namespace even from root.
_ROOT_NS = os.environ.get("PROBE_NETGUARD_ROOTNS") or _netns_inode("/proc/1/ns/net")


def _in_lab_namespace() -> bool:
    current = _netns_inode("/proc/thread-self/ns/net")
    # When the root namespace cannot be identified, assume the worst.
    return _ROOT_NS is not None and current is not None and current != _ROOT_NS


def is_allowed(address: object) -> bool:
    """True when a socket address may be contacted from the current thread."""
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths, netlink, packet sockets
    host = address[0]
    if not isinstance(host, str):
        return True
    host = host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:
        return True
    return _in_lab_namespace()


def _check(address: object) -> None:
    if not is_allowed(address):
        raise NetworkGuardError(
            f"test tried to reach {address!r}: only loopback and lab namespaces are allowed"
        )


_installed = False


def install() -> None:
    """Patch socket.socket so that connect/connect_ex/sendto/sendmsg check the address."""
    global _installed
    if _installed:
        return
    _installed = True
    base = socket.socket
    orig_connect, orig_connect_ex = base.connect, base.connect_ex
    orig_sendto, orig_sendmsg = base.sendto, base.sendmsg

    def connect(self, address):  # type: ignore[no-untyped-def]
        _check(address)
        return orig_connect(self, address)

    def connect_ex(self, address):  # type: ignore[no-untyped-def]
        _check(address)
        return orig_connect_ex(self, address)

    def sendto(self, data, *args):  # type: ignore[no-untyped-def]
        if args:
            _check(args[-1])
        return orig_sendto(self, data, *args)

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):  # type: ignore[no-untyped-def]
        if address is not None:
            _check(address)
            return orig_sendmsg(self, buffers, ancdata, flags, address)
        return orig_sendmsg(self, buffers, ancdata, flags)

    base.connect = connect  # type: ignore[method-assign]
    base.connect_ex = connect_ex  # type: ignore[method-assign]
    base.sendto = sendto  # type: ignore[method-assign]
    base.sendmsg = sendmsg  # type: ignore[method-assign]
