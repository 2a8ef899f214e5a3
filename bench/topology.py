"""The benchmark's network: client ns == router ns (NFQUEUE delay) == server ns.

A minimal, self-contained three-namespace topology with a unique name prefix per run::

    client (10.77.1.2) == veth == router (10.77.1.1 | 10.77.2.1) == veth == server
                                                                      10.77.2.2  nginx (:443, :80)
                                                                      10.77.2.3  DNS (:53)
                                                                      10.77.2.4  control helper

The router forwards; the latency knob (probe.lab.latency) delays packets leaving it on both
veths, so every round trip between client and server pays 2 x delay. Offloads stay on (this is a
benchmark, not a fingerprinting lab). Nothing here routes to the root namespace.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

__all__ = ["BenchNet", "create", "destroy", "in_netns"]


@dataclass(frozen=True)
class BenchNet:
    prefix: str
    client: str
    router: str
    server: str
    client_ip: str = "10.77.1.2"
    router_client_ip: str = "10.77.1.1"
    router_server_ip: str = "10.77.2.1"
    web_ip: str = "10.77.2.2"
    dns_ip: str = "10.77.2.3"
    helper_ip: str = "10.77.2.4"
    router_to_client: str = "r-cli"  # router's interface towards the client
    router_to_server: str = "r-srv"  # router's interface towards the servers


def _run(*argv: str, input: str | None = None) -> None:
    subprocess.run(argv, input=input, text=True, check=True, capture_output=True)


def in_netns(ns: str, *argv: str) -> list[str]:
    """``ip netns exec NS argv...``"""
    return ["ip", "netns", "exec", ns, *argv]


def create(prefix: str | None = None) -> BenchNet:
    """Create the namespaces, veths, addresses and routes. Call :func:`destroy` in a finally."""
    prefix = prefix or f"pbench{os.getpid()}"
    net = BenchNet(prefix, f"{prefix}-c", f"{prefix}-r", f"{prefix}-s")
    try:
        _run("ip", "-batch", "-", input="".join(
            f"netns add {ns}\n" for ns in (net.client, net.router, net.server)
        ))  # fmt: skip
        _run("ip", "-n", net.router, "-batch", "-", input=f"""\
link add {net.router_to_client} type veth peer name c-rtr netns {net.client}
link add {net.router_to_server} type veth peer name s-rtr netns {net.server}
addr add {net.router_client_ip}/24 dev {net.router_to_client}
addr add {net.router_server_ip}/24 dev {net.router_to_server}
link set lo up
link set {net.router_to_client} up
link set {net.router_to_server} up
""")
        _run("ip", "-n", net.client, "-batch", "-", input=f"""\
addr add {net.client_ip}/24 dev c-rtr
link set lo up
link set c-rtr up
route add default via {net.router_client_ip}
""")
        _run("ip", "-n", net.server, "-batch", "-", input=f"""\
addr add {net.web_ip}/24 dev s-rtr
addr add {net.dns_ip}/24 dev s-rtr
addr add {net.helper_ip}/24 dev s-rtr
link set lo up
link set s-rtr up
route add default via {net.router_server_ip}
""")
        _run(*in_netns(net.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        for ns in (net.client, net.server):
            # Many short connections: room in the accept queue, and ports for the client.
            _run(*in_netns(ns, "sysctl", "-qw", "net.core.somaxconn=8192",
                           "net.ipv4.tcp_max_syn_backlog=8192",
                           "net.ipv4.ip_local_port_range=10000 65000",
                           "net.ipv4.tcp_tw_reuse=1"))  # fmt: skip
    except BaseException:
        destroy(net)
        raise
    return net


def destroy(net: BenchNet) -> None:
    """Delete the namespaces (their veths and processes' sockets go with them)."""
    for ns in (net.client, net.router, net.server):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
