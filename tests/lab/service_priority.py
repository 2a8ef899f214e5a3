"""The CPU priority of the lab's services in the test session.

They stand for other machines (the sites, resolvers, control helper and the censor's tools), so
they run ahead of the session's own processes: on a loaded machine (parallel test workers, other
sessions) the probe under test then waits for the CPU, not the network it measures. Starved, the
control helper missed the probe's 3 s pre-flight check and the OpenVPN server its 2 s handshake,
and scenarios failed because of the machine's load, not the probe.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.lab.lab import Lab

#: Nice value of the lab's services (root may lower it below the default 0).
SERVICE_NICE = -5


def favour(pid: int) -> None:
    """Give process ``pid``, every thread of it, the lab services' priority (gone: nothing)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.setpriority(os.PRIO_PROCESS, int(tid), SERVICE_NICE)


def favour_services(lab: Lab) -> None:
    """Give every service process of ``lab`` the lab services' priority."""
    for pid in lab.services.values():
        favour(pid)
