"""The lab's leak guard: probe traffic of the lab is only ever sent from inside a lab namespace.

The root namespace of a lab machine has a default route: a lab address (10.66.x.x) used there
leaves the machine. Every lab entry point that sends traffic calls :func:`require_lab_namespace`
first, and the driver checks the namespace it enters.

The check is positive: the calling thread's network namespace must be one of the lab's named
namespaces (``/run/netns/PREFIX-<role>``, compared by device and inode), where PREFIX is a
generated ``pl<hex>`` or a prefix chosen with ``probe lab up --prefix`` that has a lab state
file (so that an unrelated namespace that happens to look like one does not count). Comparing with PID 1's
namespace is not enough: in a container ``/proc/1/ns/net`` is often unreadable even for root.
"""

from __future__ import annotations

import os
import re

from probe.core.errors import ProbeError
from probe.lab.topology import STATE_ROOT

__all__ = [
    "LabSafetyError",
    "current_lab_namespace",
    "in_root_namespace",
    "namespace_id",
    "namespace_inode",
    "require_lab_namespace",
]

NETNS_DIR = "/run/netns"
_LAB_NS = re.compile(r"^pl[0-9a-f]{6}-[crsu124]$")
_CHOSEN_NS = re.compile(r"^([a-z][a-z0-9]{1,11})-[crsu124]$")  # topology.PREFIX_RE, role


def _is_lab_name(name: str) -> bool:
    if _LAB_NS.match(name):
        return True
    m = _CHOSEN_NS.match(name)
    if m is None:
        return False
    return (STATE_ROOT / m.group(1) / "state.json").is_file()


class LabSafetyError(ProbeError, RuntimeError):
    """Raised when lab traffic would be sent from outside the lab's namespaces."""


def namespace_inode(path: str = "/proc/thread-self/ns/net") -> str | None:
    """The network namespace identity (``net:[inode]``) of ``path``, or None when unreadable."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def namespace_id(path: str = "/proc/thread-self/ns/net") -> tuple[int, int] | None:
    """(st_dev, st_ino) of the namespace ``path`` refers to (a /proc link or a /run/netns file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def current_lab_namespace() -> str | None:
    """The name of the lab namespace the calling thread runs in, or None when it is in none."""
    here = namespace_id()
    if here is None:
        return None
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return None
    for name in names:
        if _is_lab_name(name) and namespace_id(os.path.join(NETNS_DIR, name)) == here:
            return name
    return None


def in_root_namespace() -> bool:
    """True unless the calling thread provably runs in one of the lab's namespaces."""
    return current_lab_namespace() is None


def require_lab_namespace(what: str = "lab traffic") -> str:
    """Refuse (raise :class:`LabSafetyError`) unless the caller runs inside a lab namespace.

    Returns the namespace's name.
    """
    name = current_lab_namespace()
    if name is None:
        raise LabSafetyError(
            f"refusing to run {what} outside the lab's namespaces: run it inside the lab "
            "(ip netns exec <prefix>-c ...)"
        )
    return name
