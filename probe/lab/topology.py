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
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

_SYSCTL_ROUTERLESS = (
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)


class LabError(RuntimeError):
    """The lab could not be built, started or torn down."""


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


def _run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv[:6])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def ns_run(ns: str, argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a command inside namespace ``ns`` (``ip netns exec``) and return its stdout."""
    return _run(["ip", "netns", "exec", ns, *argv], stdin=stdin, check=check)


def _ns_script(batch: str, sysctls: Sequence[str], devs: Sequence[str]) -> str:
    # One shell per namespace: sysctls, checksum offload off, then the ip batch.
    lines = [f"sysctl -qw {s}" for s in sysctls]
    lines += [f"ethtool -K {d} tx off >/dev/null 2>&1 || true" for d in devs]
    lines.append(f"ip -batch - <<'EOF'\n{batch}EOF")
    return "set -e\n" + "\n".join(lines) + "\n"


def build(topo: Topology) -> None:
    """Create the namespaces, links, addresses and routes of ``topo`` (about 0.1 s)."""
    if shutil.which("ip") is None:
        raise LabError("the lab needs iproute2 (ip)")
    c, s, u = topo.client, topo.server, topo.uncensored
    # veth pairs along the chain: client -> hop 1 -> ... -> hop 4 -> server, then the bypass.
    ends = [(c, "c0"), *((topo.router(h), dev) for h in CHAIN for dev in (h.inside[0], h.outside[0])),
            (s, "s0")]  # fmt: skip
    root_batch = "".join(f"netns add {ns}\n" for ns in topo.namespaces)
    for (ns_a, dev_a), (ns_b, dev_b) in zip(ends[0::2], ends[1::2], strict=True):
        root_batch += f"link add name {dev_a} netns {ns_a} type veth peer name {dev_b} netns {ns_b}\n"
    root_batch += (
        f"link add name c1 netns {c} type veth peer name u0 netns {u}\n"
        f"link add name u1 netns {u} type veth peer name s1 netns {s}\n"
    )
    try:
        _run(["ip", "-batch", "-"], stdin=root_batch)
    except LabError:
        destroy(topo)
        raise
    ups = "link set lo up\n"
    client = ups + (
        f"addr add {CLIENT}/24 dev c0\nlink set c0 up\n"
        f"addr add {CLIENT_CTL}/24 dev c1\nlink set c1 up\n"
        f"route add default via {GATEWAY}\n"
    )
    server = ups + f"addr add {SERVER}/24 dev s0\n"
    for addr in dict.fromkeys((AUTH_DNS, BLOCKPAGE_IP, NODNS_IP, *topo.server_addresses)):
        if addr != SERVER:
            server += f"addr add {addr}/24 dev s0\n"
    server += (
        f"link set s0 up\nroute add default via {SERVER_GW}\n"
        f"addr add {SERVER_CTL}/24 dev s1\nlink set s1 up\n"
    )
    uncensored = ups + (
        f"addr add {HELPER}/24 dev u0\nlink set u0 up\n"
        f"addr add {UNCENSORED_OUT}/24 dev u1\nlink set u1 up\n"
        f"route add 10.66.2.0/24 via {SERVER_CTL}\n"
    )
    devices: dict[str, tuple[str, ...]] = {c: ("c0", "c1"), s: ("s0", "s1"), u: ("u0", "u1")}
    scripts = {
        c: _ns_script(client, _SYSCTL_ROUTERLESS, devices[c]),
        s: _ns_script(server, _SYSCTL_ROUTERLESS, devices[s]),
        u: _ns_script(uncensored, _SYSCTL_ROUTERLESS, devices[u]),
    }
    for h in CHAIN:
        ns = topo.router(h)
        batch = ups
        for dev, addr in (h.inside, h.outside):
            batch += f"addr add {addr} dev {dev}\nlink set {dev} up\n"
        batch += "".join(f"route add {r}\n" for r in h.routes)
        devices[ns] = (h.inside[0], h.outside[0])
        # No ICMP rate limit: `probe trace` counts on every router answering every expired probe.
        sysctls = (*_SYSCTL_ROUTERLESS, "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0")
        scripts[ns] = _ns_script(batch, sysctls, devices[ns])
    procs = {
        ns: subprocess.Popen(
            ["ip", "netns", "exec", ns, "sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ns, script in scripts.items()
    }
    errors = []
    for ns, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{ns}: {err.strip()}")
    if errors:
        destroy(topo)
        raise LabError("lab setup failed: " + "; ".join(errors))
    # Each veth's rp_filter is copied from "default" at creation time, which was the host's.
    for ns, devs in devices.items():
        ns_run(ns, ["sh", "-c", " ".join(f"sysctl -qw net.ipv4.conf.{d}.rp_filter=0;" for d in devs)])
    _write_resolv_conf(c, CENSOR_IN)  # the ISP resolver, on the censor
    _write_resolv_conf(u, AUTH_DNS)  # the helper resolves without the censor
    _write_resolv_conf(s, AUTH_DNS)


def _write_resolv_conf(ns: str, resolver: str) -> None:
    d = Path("/etc/netns") / ns
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(f"# probe lab {ns}\nnameserver {resolver}\noptions timeout:2 attempts:1\n")


def _kill_pids(pids: Sequence[int]) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 2.0
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.02)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _ns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in out.split() if x.isdigit()]


def destroy(topo: Topology) -> None:
    """Stop every process left in the lab's namespaces, delete them and the lab's state."""
    existing = set(list_namespaces())
    for ns in topo.namespaces:
        if ns in existing:
            _kill_pids(_ns_pids(ns))
    batch = "".join(f"netns del {ns}\n" for ns in topo.namespaces if ns in existing)
    if batch:
        _run(["ip", "-force", "-batch", "-"], stdin=batch, check=False)
    for ns in topo.namespaces:
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    shutil.rmtree(topo.state_dir, ignore_errors=True)


def list_namespaces() -> list[str]:
    """Names of all network namespaces of the machine."""
    out = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


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
