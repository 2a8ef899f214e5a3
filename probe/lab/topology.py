"""The lab's network: namespaces joined by veth pairs, built with ``ip -batch``.

::

    client     hop 1        hop 2         hop 3: censor          hop 4        server
    10.66.1.2 =a0 1.1|a1 11.1= b0 11.2|b1 12.1 = r0 12.2|r1 13.1 = d0 13.2|d1 2.1 = s0 10.66.2.x
       |  (10.66.3.2)                                                             | (10.66.4.2)
       c1                                                                          s1
       |                                                                           |
       u0 (10.66.3.1) ======== uncensored (control helper) ======== u1 (10.66.4.1) -+

The probe runs in the client namespace; everything it sends to 10.66.2.0/24 crosses a chain of
four routers (:data:`CHAIN`, data), the third of which is the censor: a packet the server sends
with TTL 64 reaches the client with TTL 60, one the censor sends with TTL 64 arrives with 62.
The control helper runs in the "uncensored" namespace: the client reaches it over its own link
(10.66.3.0/24), and the helper reaches the servers over a link that bypasses the censor
(10.66.4.0/24), so its own measurements never meet the censor's rules. The uncensored namespace
does not forward, so the client cannot route around the censor through it.

Namespace names are global to the machine, so each lab has a prefix of its own (``pl`` + 6 hex
digits, or one its creator chose: :data:`PREFIX_RE`) on its namespaces, its ``/etc/netns``
entries and its state directory; interface names and addresses live inside the namespaces and
need no prefix. No interface, address or route of the lab exists in the root namespace.

Each lab has an owner, recorded in its state: the process that made it (a test session, a
``probe lab run``) or, for a lab that outlives its maker (``probe lab up``), the user. Nothing
but its owner touches a lab: :func:`labs` tells whose each one is.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from probe.lab import netns
from probe.lab.netns import Namespace, Veth, list_namespaces, ns_run

__all__ = [
    "AUTH_DNS",
    "BLOCKPAGE_IP",
    "CENSOR_IN",
    "CENSOR_OUT",
    "CHAIN",
    "CLIENT",
    "CLIENT_CTL",
    "GATEWAY",
    "HELPER",
    "HELPER_PORT",
    "LAB_NET",
    "NODNS_IP",
    "NS_PATTERN",
    "PREFIX_RE",
    "SERVER",
    "SERVER_CTL",
    "SERVER_GW",
    "STATE_ROOT",
    "UNCENSORED_OUT",
    "LabError",
    "LabInfo",
    "Router",
    "Topology",
    "build",
    "check_prefix",
    "cleanup_stale",
    "creator_uid",
    "destroy",
    "labs",
    "list_namespaces",
    "new_prefix",
    "ns_run",
]

LAB_NET = "10.66.0.0/16"
CLIENT = "10.66.1.2"
GATEWAY = "10.66.1.1"  # hop 1, the client's default router
CENSOR_IN = "10.66.12.2"  # hop 3; also the ISP resolver the client's resolv.conf names
CENSOR_OUT = "10.66.13.1"
SERVER_GW = "10.66.2.1"  # hop 4, the server's default router
SERVER = "10.66.2.2"
AUTH_DNS = "10.66.2.53"
BLOCKPAGE_IP = "10.66.2.250"
NODNS_IP = "10.66.2.99"  # a server-side host that runs no DNS server (resolver-less DNS probes)
CLIENT_CTL = "10.66.3.2"
HELPER = "10.66.3.1"
HELPER_PORT = 8780
UNCENSORED_OUT = "10.66.4.1"
SERVER_CTL = "10.66.4.2"

#: Namespaces of labs with a generated prefix, live or stale: ``pl<6 hex>-<role>``.
NS_PATTERN = re.compile(r"^(pl[0-9a-f]{6})-[crsu124]$")
#: A lab prefix a user may choose (``probe lab up --prefix``): short, so ``PREFIX-role`` stays
#: a readable namespace name, and free of anything a shell or a path would interpret.
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
#: Per-lab state (pids, configs, certificates); tmpfs, so a reboot clears it.
STATE_ROOT = Path(os.environ.get("PROBE_LAB_STATE", "/run/probe-lab"))

#: The lab could not be built, started or torn down (one error for all namespace work).
LabError = netns.NetnsError


@dataclass(frozen=True)
class Router:
    """One hop of the chain between client and server: a forwarding namespace with two veths.

    ``role`` is the namespace suffix (``r`` is the censor); ``inside``/``outside`` are
    (device, address/prefix) towards the client and towards the server; ``routes`` are the
    ``ip route add`` arguments it needs beyond its connected subnets.
    """

    hop: int
    role: str
    inside: tuple[str, str]
    outside: tuple[str, str]
    routes: tuple[str, ...]


#: The path client -> server, in hop order; the censor is hop 3. Routers other than the censor
#: only forward (and answer TTL-expired packets with ICMP time exceeded, as routers do).
CHAIN: tuple[Router, ...] = (
    Router(1, "1", ("a0", f"{GATEWAY}/24"), ("a1", "10.66.11.1/24"),
           ("default via 10.66.11.2",)),
    Router(2, "2", ("b0", "10.66.11.2/24"), ("b1", "10.66.12.1/24"),
           ("10.66.1.0/24 via 10.66.11.1", "default via 10.66.12.2")),
    Router(3, "r", ("r0", f"{CENSOR_IN}/24"), ("r1", f"{CENSOR_OUT}/24"),
           ("10.66.1.0/24 via 10.66.12.1", "10.66.11.0/24 via 10.66.12.1",
            "10.66.2.0/24 via 10.66.13.2")),
    Router(4, "4", ("d0", "10.66.13.2/24"), ("d1", f"{SERVER_GW}/24"),
           ("10.66.1.0/24 via 10.66.13.1", "10.66.11.0/24 via 10.66.13.1",
            "10.66.12.0/24 via 10.66.13.1")),
)  # fmt: skip


@dataclass(frozen=True)
class Topology:
    """Names of one lab's namespaces and where its state lives."""

    prefix: str
    server_addresses: tuple[str, ...] = ()
    client: str = field(init=False)
    censor: str = field(init=False)
    server: str = field(init=False)
    uncensored: str = field(init=False)

    def __post_init__(self) -> None:
        for role, suffix in (("client", "c"), ("censor", "r"), ("server", "s"), ("uncensored", "u")):
            object.__setattr__(self, role, f"{self.prefix}-{suffix}")

    def router(self, r: Router) -> str:
        """The namespace of router ``r`` of the chain (the censor for hop 3)."""
        return f"{self.prefix}-{r.role}"

    @property
    def namespaces(self) -> tuple[str, ...]:
        routers = tuple(self.router(r) for r in CHAIN if r.role != "r")
        return (self.client, self.censor, self.server, self.uncensored, *routers)

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.prefix


def new_prefix() -> str:
    """A namespace prefix unique to this process and moment."""
    seed = f"{os.getpid()}-{time.time_ns()}".encode()
    return "pl" + hashlib.sha256(seed).hexdigest()[:6]


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can name a lab (:data:`PREFIX_RE`); else :class:`LabError` saying why."""
    if not PREFIX_RE.fullmatch(prefix):
        raise LabError(f"invalid lab prefix {prefix!r}: 2-12 characters, a lower-case letter "
                       "then lower-case letters or digits")  # fmt: skip
    return prefix


def creator_uid() -> int:
    """The user a lab made now belongs to: the user behind ``sudo`` when there is one."""
    sudo_uid = os.environ.get("SUDO_UID", "")
    if os.geteuid() == 0 and sudo_uid.isdigit():
        return int(sudo_uid)
    return os.getuid()


def build(topo: Topology) -> None:
    """Create the namespaces, links, addresses and routes of ``topo`` (about 0.1 s)."""
    c, s, u = topo.client, topo.server, topo.uncensored
    server_addrs = dict.fromkeys((SERVER, AUTH_DNS, BLOCKPAGE_IP, NODNS_IP, *topo.server_addresses))
    spaces = [
        Namespace(c, (("c0", f"{CLIENT}/24"), ("c1", f"{CLIENT_CTL}/24")), (f"default via {GATEWAY}",)),
        Namespace(s, (*(("s0", f"{a}/24") for a in server_addrs), ("s1", f"{SERVER_CTL}/24")),
                  (f"default via {SERVER_GW}",)),
        Namespace(u, (("u0", f"{HELPER}/24"), ("u1", f"{UNCENSORED_OUT}/24")),
                  (f"10.66.2.0/24 via {SERVER_CTL}",)),
        # No ICMP rate limit: `probe trace` counts on every router answering every expired probe.
        *(Namespace(topo.router(h), (h.inside, h.outside), h.routes,
                    ("net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0")) for h in CHAIN),
    ]  # fmt: skip
    # veth pairs along the chain: client -> hop 1 -> ... -> hop 4 -> server, then the bypass.
    ends = [(c, "c0"), *((topo.router(h), dev) for h in CHAIN for dev in (h.inside[0], h.outside[0])),
            (s, "s0")]  # fmt: skip
    veths = [Veth(a_ns, a_dev, b_ns, b_dev)
             for (a_ns, a_dev), (b_ns, b_dev) in zip(ends[0::2], ends[1::2], strict=True)]
    veths += [Veth(c, "c1", u, "u0"), Veth(u, "u1", s, "s1")]
    netns.build(spaces, veths)
    _write_resolv_conf(c, CENSOR_IN)  # the ISP resolver, on the censor
    _write_resolv_conf(u, AUTH_DNS)  # the helper resolves without the censor
    _write_resolv_conf(s, AUTH_DNS)


def _write_resolv_conf(ns: str, resolver: str) -> None:
    d = Path("/etc/netns") / ns
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(f"# probe lab {ns}\nnameserver {resolver}\noptions timeout:2 attempts:1\n")


def destroy(topo: Topology) -> None:
    """Stop every process left in the lab's namespaces, delete them and the lab's state."""
    netns.delete(topo.namespaces)
    shutil.rmtree(topo.state_dir, ignore_errors=True)


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Hold the machine-wide lab lock (an ``flock`` on ``STATE_ROOT/.lock``).

    Creating a lab (its state directory and first state file) and removing stale labs take it,
    so one process's clean-up never sees another's lab half made: a state directory without
    its state file would look like a crashed lab and be torn down under the running lab.
    """
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(STATE_ROOT / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_state(state_dir: Path, info: dict[str, object]) -> None:
    """Write ``state_dir/state.json`` atomically (a reader sees the old file or the new one,
    never a truncated one that would make a live lab look stale)."""
    tmp = state_dir / f".state.json.{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, state_dir / "state.json")


@dataclass(frozen=True)
class LabInfo:
    """One lab of the machine, as its state file describes it."""

    prefix: str
    uid: int | None  # the user who made it (None: an old state file without one)
    owner_pid: int  # the process that made it
    persistent: bool  # made by `probe lab up`: lives until `probe lab down`
    live: bool  # its client namespace exists
    state: dict[str, object]

    @property
    def owner_alive(self) -> bool:
        """Whether its owner still holds it (always, for a persistent lab)."""
        if self.persistent:
            return True
        if self.owner_pid <= 0:
            return False  # no state file (or a broken one): nobody holds it
        try:
            os.kill(self.owner_pid, 0)
        except (ProcessLookupError, OverflowError):
            return False
        except PermissionError:
            return True
        return True

    def mine(self, uid: int | None = None) -> bool:
        """Whether a persistent lab belongs to user ``uid`` (default: :func:`creator_uid`)."""
        return self.persistent and self.uid == (creator_uid() if uid is None else uid)


def _read_state(prefix: str, live: bool) -> LabInfo:
    try:
        info = json.loads((STATE_ROOT / prefix / "state.json").read_text())
        if not isinstance(info, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        info = {}
    uid = info.get("uid")
    try:
        owner = int(info.get("owner", 0))
    except (TypeError, ValueError):
        owner = 0
    return LabInfo(prefix, uid if isinstance(uid, int) else None, owner,
                   bool(info.get("persistent")), live, info)  # fmt: skip


def labs() -> list[LabInfo]:
    """Every lab of the machine, live or stale, by prefix."""
    namespaces = list_namespaces()
    prefixes = {m.group(1) for ns in namespaces if (m := NS_PATTERN.match(ns))}
    if STATE_ROOT.is_dir():
        prefixes |= {p.name for p in STATE_ROOT.iterdir() if p.is_dir() and PREFIX_RE.fullmatch(p.name)}
    live = set(namespaces)
    return [_read_state(p, f"{p}-c" in live) for p in sorted(prefixes)]


def cleanup_stale() -> list[str]:
    """Delete labs left by crashed runs (owner process gone); returns the prefixes removed.

    A lab whose owner is alive, and every persistent lab, is left alone: a persistent lab is
    removed only by its user's ``probe lab down``.
    """
    removed = []
    with state_lock():  # not while another process is between creating a lab and its state
        for info in labs():
            if not _read_state(info.prefix, info.live).owner_alive:  # re-read under the lock
                destroy(Topology(info.prefix))
                removed.append(info.prefix)
    return removed
