"""Network namespaces joined by veth pairs: the one toolkit of the lab, the benchmark and tests.

A topology is data: :class:`Namespace` (addresses, routes, sysctls per namespace) and
:class:`Veth` (a pair of interfaces between two namespaces). :func:`build` creates it quickly
(one ``ip -batch`` in the root namespace for the namespaces and veth pairs, then one shell per
namespace, in parallel, for sysctls, offloads, addresses and routes); :func:`delete` stops what
runs inside and removes it. :func:`routed_pair` is the common small case, client == router ==
server, used by the benchmark and the latency tests; the censorship lab
(:mod:`probe.lab.topology`) builds its chain of routers from the same parts.

Namespace names are global to the machine: callers give them a prefix of their own. Interface
names and addresses live inside the namespaces. Nothing here touches the root namespace's
interfaces, addresses or routes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.core.errors import ProbeError

__all__ = [
    "Namespace",
    "NetnsError",
    "RoutedPair",
    "Veth",
    "build",
    "delete",
    "in_netns",
    "list_namespaces",
    "ns_run",
    "routed_pair",
    "run",
]

#: sysctls every namespace gets: spoofed (injected) packets pass, and no IPv6 (the labs are v4).
BASE_SYSCTLS = (
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)


class NetnsError(ProbeError, RuntimeError):
    """A namespace command failed; the message has the command and its stderr."""


@dataclass(frozen=True)
class Veth:
    """A veth pair: device ``a_dev`` in namespace ``a_ns``, its peer ``b_dev`` in ``b_ns``."""

    a_ns: str
    a_dev: str
    b_ns: str
    b_dev: str


@dataclass(frozen=True)
class Namespace:
    """One namespace: ``addresses`` are (device, address/prefix); ``routes`` are ``ip route add``
    arguments; ``sysctls`` come after :data:`BASE_SYSCTLS`. ``offload_off`` turns checksum
    offload off on its veths (sniffed real packets would otherwise carry bad checksums where
    injected ones carry good ones: a false fingerprint)."""

    name: str
    addresses: tuple[tuple[str, str], ...] = ()
    routes: tuple[str, ...] = ()
    sysctls: tuple[str, ...] = ()
    offload_off: bool = True

    def script(self, devices: Sequence[str]) -> str:
        """The shell script that configures this namespace once its veths exist."""
        lines = [f"sysctl -qw {shlex.quote(s)}" for s in (*BASE_SYSCTLS, *self.sysctls)]
        # A veth's rp_filter was copied from the host's "default" when it was created.
        lines += [f"sysctl -qw net.ipv4.conf.{d}.rp_filter=0" for d in devices]
        if self.offload_off:
            lines += [f"ethtool -K {d} tx off >/dev/null 2>&1 || true" for d in devices]
        batch = "link set lo up\n"
        batch += "".join(f"addr add {addr} dev {dev}\n" for dev, addr in self.addresses)
        batch += "".join(f"link set {d} up\n" for d in devices)
        batch += "".join(f"route add {r}\n" for r in self.routes)
        lines.append(f"ip -batch - <<'EOF'\n{batch}EOF")
        return "set -e\n" + "\n".join(lines) + "\n"


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a command, return its stdout; :class:`NetnsError` on failure when ``check``."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv[:6])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def in_netns(ns: str, *argv: str) -> list[str]:
    """``ip netns exec NS argv...``"""
    return ["ip", "netns", "exec", ns, *argv]


def ns_run(ns: str, argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a command inside namespace ``ns`` and return its stdout."""
    return run(in_netns(ns, *argv), stdin=stdin, check=check)


def list_namespaces() -> list[str]:
    """Names of all network namespaces of the machine."""
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def build(namespaces: Sequence[Namespace], veths: Sequence[Veth]) -> None:
    """Create ``namespaces`` joined by ``veths`` and configure them (about 0.1 s).

    On failure everything made so far is deleted and :class:`NetnsError` says what failed.
    """
    if shutil.which("ip") is None:
        raise NetnsError("network namespaces need iproute2 (ip)")
    names = [ns.name for ns in namespaces]
    batch = "".join(f"netns add {n}\n" for n in names)
    batch += "".join(f"link add name {v.a_dev} netns {v.a_ns} type veth peer name {v.b_dev} "
                     f"netns {v.b_ns}\n" for v in veths)  # fmt: skip
    try:
        run(["ip", "-batch", "-"], stdin=batch)
    except NetnsError:
        delete(names)
        raise
    devices: dict[str, list[str]] = {n: [] for n in names}
    for v in veths:
        devices[v.a_ns].append(v.a_dev)
        devices[v.b_ns].append(v.b_dev)
    procs = {
        ns.name: subprocess.Popen(in_netns(ns.name, "sh", "-c", ns.script(devices[ns.name])),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for ns in namespaces
    }  # fmt: skip
    errors = []
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{name}: {err.strip()}")
    if errors:
        delete(names)
        raise NetnsError("namespace setup failed: " + "; ".join(errors))


def _kill_pids(pids: Sequence[int]) -> None:
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
            time.sleep(0.02)  # polling a process we do not own for its exit: no event to wait on
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def delete(names: Sequence[str]) -> None:
    """Stop every process left in the namespaces ``names``, delete them and their
    ``/etc/netns`` entries (names that do not exist are skipped)."""
    existing = set(list_namespaces())
    for ns in names:
        if ns in existing:
            out = run(["ip", "netns", "pids", ns], check=False)
            _kill_pids([int(x) for x in out.split() if x.isdigit()])
    batch = "".join(f"netns del {ns}\n" for ns in names if ns in existing)
    if batch:
        run(["ip", "-force", "-batch", "-"], stdin=batch, check=False)
    for ns in names:
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


@dataclass(frozen=True)
class RoutedPair:
    """client (``client_ip``) == router == server (``server_ips``): names and addresses."""

    prefix: str
    client_ip: str
    router_client_ip: str
    router_server_ip: str
    server_ips: tuple[str, ...]
    router_to_client: str = "r-cli"  # the router's interface towards the client
    router_to_server: str = "r-srv"  # the router's interface towards the server

    @property
    def client(self) -> str:
        return f"{self.prefix}-c"

    @property
    def router(self) -> str:
        return f"{self.prefix}-r"

    @property
    def server(self) -> str:
        return f"{self.prefix}-s"

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.client, self.router, self.server)

    def delete(self) -> None:
        """Remove the three namespaces (and whatever runs in them)."""
        delete(self.namespaces)


def routed_pair(prefix: str, subnet: str, server_hosts: Sequence[int] = (2,), *,
                client_sysctls: Sequence[str] = (), server_sysctls: Sequence[str] = (),
                offload_off: bool = True) -> RoutedPair:  # fmt: skip
    """Build client == router == server under ``prefix``; ``subnet`` is the first two octets
    (``"10.77"``): the client side is SUBNET.1.0/24, the server side SUBNET.2.0/24 with the
    server on hosts ``server_hosts``. The router forwards; delete with :meth:`RoutedPair.delete`."""
    pair = RoutedPair(prefix, f"{subnet}.1.2", f"{subnet}.1.1", f"{subnet}.2.1",
                      tuple(f"{subnet}.2.{h}" for h in server_hosts))  # fmt: skip
    build(
        [
            Namespace(pair.client, ((("c0", f"{pair.client_ip}/24"),)),
                      (f"default via {pair.router_client_ip}",), tuple(client_sysctls), offload_off),
            Namespace(pair.router, ((pair.router_to_client, f"{pair.router_client_ip}/24"),
                                    (pair.router_to_server, f"{pair.router_server_ip}/24")),
                      (), ("net.ipv4.ip_forward=1",), offload_off),
            Namespace(pair.server, tuple(("s0", f"{ip}/24") for ip in pair.server_ips),
                      (f"default via {pair.router_server_ip}",), tuple(server_sysctls), offload_off),
        ],
        [Veth(pair.router, pair.router_to_client, pair.client, "c0"),
         Veth(pair.router, pair.router_to_server, pair.server, "s0")],
    )  # fmt: skip
    return pair
