"""The benchmark's network: client ns == router ns (NFQUEUE delay) == server ns.

The lab's namespace toolkit (:func:`probe.lab.netns.routed_pair`) with a unique prefix per run::

    client (10.77.1.2) == veth == router (10.77.1.1 | 10.77.2.1) == veth == server
                                                                      10.77.2.2  nginx (:443, :80)
                                                                      10.77.2.3  DNS (:53)
                                                                      10.77.2.4  control helper

The router forwards; the latency knob (probe.lab.latency) delays packets leaving it on both
veths, so every round trip between client and server pays 2 x delay. Offloads stay on (this is a
benchmark, not a fingerprinting lab). Nothing here routes to the root namespace.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from probe.lab.netns import RoutedPair, in_netns, routed_pair

__all__ = ["BenchNet", "create", "delayed", "destroy", "in_netns"]

# Many short connections: room in the accept queue, and ports for the client.
_BUSY = ("net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192",
         "net.ipv4.ip_local_port_range=10000 65000", "net.ipv4.tcp_tw_reuse=1")  # fmt: skip


@dataclass(frozen=True)
class BenchNet:
    """The benchmark's names for the parts of a :class:`~probe.lab.netns.RoutedPair`."""

    pair: RoutedPair

    @property
    def prefix(self) -> str:
        return self.pair.prefix

    @property
    def client(self) -> str:
        return self.pair.client

    @property
    def router(self) -> str:
        return self.pair.router

    @property
    def server(self) -> str:
        return self.pair.server

    @property
    def client_ip(self) -> str:
        return self.pair.client_ip

    @property
    def web_ip(self) -> str:
        return self.pair.server_ips[0]

    @property
    def dns_ip(self) -> str:
        return self.pair.server_ips[1]

    @property
    def helper_ip(self) -> str:
        return self.pair.server_ips[2]

    @property
    def router_to_client(self) -> str:
        return self.pair.router_to_client

    @property
    def router_to_server(self) -> str:
        return self.pair.router_to_server


def create(prefix: str | None = None) -> BenchNet:
    """Create the namespaces, veths, addresses and routes. Call :func:`destroy` in a finally."""
    pair = routed_pair(prefix or f"pbench{os.getpid()}", "10.77", (2, 3, 4), client_sysctls=_BUSY,
                       server_sysctls=_BUSY, offload_off=False)  # fmt: skip
    return BenchNet(pair)


def destroy(net: BenchNet) -> None:
    """Delete the namespaces (their veths and processes' sockets go with them)."""
    net.pair.delete()


@contextlib.contextmanager
def delayed(net: BenchNet, rtt_ms: float, stats_out: list[dict[str, Any]]) -> Iterator[None]:
    """Add ``rtt_ms`` of round-trip time (half each way) while the block runs."""
    # Lazy: probe.lab.latency needs NetfilterQueue (the `lab` extra) only when a delay is wanted.
    from probe.lab.latency import Delay

    if rtt_ms <= 0:
        yield
        return
    delay = Delay(net.router, [net.router_to_client, net.router_to_server], rtt_ms / 2,
                  realtime=True)  # fmt: skip
    delay.start()
    try:
        yield
    finally:
        stats_out.extend(s.as_dict() for s in delay.stop())
