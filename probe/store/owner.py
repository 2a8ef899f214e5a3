"""Which process on which machine owns a run, so that a later probe can tell a dead run.

A run killed with SIGKILL, by a crash or by a power cut never records its end. The process that
starts a run writes its identity into ``runs.owner``; a later ``probe run`` on the same machine
checks every run still marked ``running`` and closes those whose process is gone.

Identity is Linux's view of a process: the boot (``/proc/sys/kernel/random/boot_id``), the PID
namespace, the pid and the process's start time (pids are reused). The machine and the boot are
stored as short hashes: result databases are shared, and a run's owner must not identify the
volunteer's machine to whoever reads them. Where /proc is missing (not Linux) the owner is
unknown and such runs are never closed by others.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

__all__ = ["Owner", "current_owner", "is_dead"]


@dataclass(frozen=True)
class Owner:
    """A process, as far as a later process on the same machine can recognise it."""

    machine: str  # hash of /etc/machine-id ("" when unknown)
    boot: str  # hash of the boot id ("" when unknown)
    pidns: str  # the PID namespace's inode ("" when unknown)
    pid: int
    start: int  # start time in clock ticks after boot (-1 when unknown)

    def to_text(self) -> str:
        """The ``runs.owner`` column: ``machine:boot:pidns:pid:start``."""
        return f"{self.machine}:{self.boot}:{self.pidns}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The inverse of :meth:`to_text`; None for NULL or anything malformed."""
        if not text:
            return None
        parts = text.split(":")
        if len(parts) != 5:
            return None
        try:
            return cls(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]))
        except ValueError:
            return None


def _digest(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read().strip()
    except OSError:
        return ""
    return hashlib.sha256(b"probe-run-owner\0" + data).hexdigest()[:16] if data else ""


def _pidns() -> str:
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    return link.partition("[")[2].rstrip("]")


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time after boot), or None when there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def current_owner() -> Owner:
    """This process."""
    pid = os.getpid()
    start = _start_ticks(pid)
    return Owner(
        machine=_digest("/etc/machine-id"),
        boot=_digest("/proc/sys/kernel/random/boot_id"),
        pidns=_pidns(),
        pid=pid,
        start=-1 if start is None else start,
    )


def is_dead(owner: Owner, here: Owner | None = None) -> bool:
    """True only when ``owner`` is certainly gone, judged from process ``here`` (default: us).

    Dead: the same machine has booted since (same machine id, another boot), or, in the same
    boot and PID namespace, the pid no longer exists or now belongs to a process that started
    at another time. Anything else (another machine, another container, unknown fields) is
    not known to be dead.
    """
    here = here or current_owner()
    same_machine = bool(owner.machine) and owner.machine == here.machine
    if same_machine and owner.boot and here.boot and owner.boot != here.boot:
        return True  # the machine has rebooted since
    if not (owner.boot and owner.boot == here.boot and owner.pidns and owner.pidns == here.pidns):
        return False
    if owner.pid == here.pid:
        return owner.start >= 0 and here.start >= 0 and owner.start != here.start
    try:
        os.kill(owner.pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's process: it exists
    # /proc may hide other users' processes (hidepid): unreadable means unknown, not dead.
    start = _start_ticks(owner.pid)
    return start is not None and owner.start >= 0 and start != owner.start
