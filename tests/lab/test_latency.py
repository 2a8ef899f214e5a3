"""The lab's latency knob (probe.lab.latency) adds the round-trip time it is configured for.

Root only: three namespaces client == router == server with a unique prefix. Times are checked
only from below (a delay program can only make packets later, never earlier), so a busy machine
cannot make these tests flaky.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from probe.lab.netns import RoutedPair, routed_pair

pytestmark = [pytest.mark.lab, pytest.mark.slow]  # round-trip times, packets in time

SERVER_IP = "10.78.2.2"
PORT = 7000


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables, NFQUEUE)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return "NetfilterQueue is not installed"
    return None


def _lab_env() -> dict[str, str]:
    """Environment for Python run with ``ip netns exec`` in a lab namespace: the test guard stays
    on (it knows the session's root namespace from PROBE_NETGUARD_ROOTNS)."""
    return dict(os.environ)


@pytest.fixture(scope="module")
def net() -> Iterator[RoutedPair]:
    reason = _lab_unavailable()
    if reason:
        pytest.skip(reason)
    n = routed_pair(f"tlat{os.getpid()}", "10.78", (2,))
    assert n.server_ips == (SERVER_IP,)
    server = None
    try:
        # A TCP listener that accepts and closes: connect time is exactly one round trip.
        server = subprocess.Popen(
            ["ip", "netns", "exec", n.server, sys.executable, "-c",
             "import socket\n"
             f"s=socket.create_server(('{SERVER_IP}',{PORT}),backlog=128)\n"
             "print('ready',flush=True)\n"
             "while True:\n    c,_=s.accept(); c.close()\n"],
            stdout=subprocess.PIPE, text=True, env=_lab_env(),
        )  # fmt: skip
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield n
    finally:
        if server is not None:
            server.kill()
            server.wait()
        n.delete()


def connect_times_ms(net: RoutedPair, n: int = 5) -> list[float]:
    """TCP connect times from the client namespace to the server, in milliseconds."""
    code = (
        "import socket,time\n"
        f"for _ in range({n}):\n"
        "    t=time.perf_counter()\n"
        f"    s=socket.create_connection(('{SERVER_IP}',{PORT}),timeout=10)\n"
        "    print((time.perf_counter()-t)*1000); s.close()\n"
    )
    r = subprocess.run(["ip", "netns", "exec", net.client, sys.executable, "-c", code],
                       capture_output=True, text=True, check=True, env=_lab_env())  # fmt: skip
    return [float(x) for x in r.stdout.split()]


def nfqueue_rules(net: RoutedPair) -> list[str]:
    r = subprocess.run(["ip", "netns", "exec", net.router, "iptables", "-t", "mangle", "-S"],
                       capture_output=True, text=True, check=True)  # fmt: skip
    return [line for line in r.stdout.splitlines() if "NFQUEUE" in line]


def test_delay_both_ways_adds_the_configured_round_trip_to_tcp_connect(net: RoutedPair) -> None:
    from probe.lab.latency import Delay

    with Delay(net.router, [net.router_to_client, net.router_to_server], delay_ms=40):
        times = connect_times_ms(net)
    assert len(times) == 5
    assert min(times) >= 80.0  # 40 ms each way: every connect waits at least one 80 ms RTT


def test_delay_on_one_interface_delays_one_direction_only_from_below(net: RoutedPair) -> None:
    from probe.lab.latency import Delay

    with Delay(net.router, [net.router_to_server], delay_ms=30):
        times = connect_times_ms(net, 3)
    assert min(times) >= 30.0


def test_stop_removes_the_rules_and_reports_the_packets_it_delayed(net: RoutedPair) -> None:
    from probe.lab.latency import Delay

    delay = Delay(net.router, [net.router_to_client, net.router_to_server], delay_ms=10, queue=5)
    delay.start()
    try:
        assert len(nfqueue_rules(net)) == 2
        connect_times_ms(net, 2)
    finally:
        stats = delay.stop()
    assert nfqueue_rules(net) == []
    assert [s.queue for s in stats] == [5, 6]
    # Two connects: SYN, ACK, FIN, ACK... out of each side; both directions saw packets.
    assert all(s.packets >= 2 for s in stats)
    assert all(s.queue_dropped == 0 and s.user_dropped == 0 for s in stats)


def test_set_delay_changes_the_round_trip(net: RoutedPair) -> None:
    from probe.lab.latency import Delay

    with Delay(net.router, [net.router_to_client, net.router_to_server], delay_ms=5) as delay:
        delay.set_delay(35)
        times = connect_times_ms(net, 3)
    assert min(times) >= 70.0


def test_queue_bypass_lets_traffic_through_when_no_program_runs(net: RoutedPair) -> None:
    from probe.lab.latency import install_delay_rule, remove_delay_rule

    install_delay_rule(net.router, net.router_to_server, 9)
    try:
        assert len(nfqueue_rules(net)) == 1
        times = connect_times_ms(net, 2)  # would time out (and raise) without --queue-bypass
    finally:
        remove_delay_rule(net.router, net.router_to_server, 9)
    assert len(times) == 2
    assert nfqueue_rules(net) == []


def test_install_is_idempotent(net: RoutedPair) -> None:
    from probe.lab.latency import install_delay_rule, remove_delay_rule

    try:
        install_delay_rule(net.router, net.router_to_client, 11)
        install_delay_rule(net.router, net.router_to_client, 11)
        assert len(nfqueue_rules(net)) == 1
    finally:
        remove_delay_rule(net.router, net.router_to_client, 11)
    assert nfqueue_rules(net) == []


def test_negative_delay_is_a_usage_error() -> None:
    """A bad argument is a usage error (exit 2) naming the option, not a traceback."""
    r = subprocess.run([sys.executable, "-m", "probe.lab.latency", "--queue", "1",
                        "--delay-ms", "-5"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2
    assert "--delay-ms" in r.stderr


def test_many_concurrent_connections_all_wait_the_round_trip_and_none_is_dropped(net: RoutedPair) -> None:
    """A burst (200 connects at once) is held and released, not dropped or let through early."""
    from probe.lab.latency import Delay

    code = (
        "import asyncio,time\n"
        "async def one():\n"
        "    t=time.perf_counter()\n"
        f"    r,w=await asyncio.open_connection('{SERVER_IP}',{PORT})\n"
        "    d=(time.perf_counter()-t)*1000; w.close(); return d\n"
        "async def main():\n"
        "    ds=await asyncio.gather(*(one() for _ in range(200)))\n"
        "    print(len(ds), min(ds))\n"
        "asyncio.run(main())\n"
    )
    delay = Delay(net.router, [net.router_to_client, net.router_to_server], delay_ms=25)
    delay.start()
    try:
        r = subprocess.run(["ip", "netns", "exec", net.client, sys.executable, "-c", code],
                           capture_output=True, text=True, check=True, env=_lab_env())  # fmt: skip
    finally:
        stats = delay.stop()
    count, fastest = r.stdout.split()
    assert int(count) == 200
    assert float(fastest) >= 50.0
    assert sum(s.packets for s in stats) >= 400  # at least SYN and ACK of each, through the queues
    assert all(s.queue_dropped == 0 and s.user_dropped == 0 for s in stats)
