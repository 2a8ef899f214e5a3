"""The circumvention suite against loopback servers: a Tor-like TLS relay, an OpenVPN responder
(UDP and TCP), a closed port, a UDP flooder, and the real control helper."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helper_util import running_helper
from servers import LoopbackNet

from probe.cli import cli
from probe.inputs.endpointlists import Endpoint
from probe.lab import toolservers as lab_endpoints
from probe.run.circumvention import SuiteConfig, measure_endpoints
from probe.serve.app import Helper
from probe.serve.config import HelperConfig

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def relay_ctx(tmp_path: Path) -> object:
    pytest.importorskip("trustme")
    from probe.lab.certs import CertAuthority

    return CertAuthority("untrusted relay CA").server_context("relay.invalid", alpn=())


class _Flood(asyncio.DatagramProtocol):
    """Answers every datagram with many junk datagrams (never a real OpenVPN reply)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for i in range(200):
            self.transport.sendto(b"\x40junk" + bytes([i % 256]) * 20, addr)  # type: ignore[attr-defined]


async def _suite(relay_ctx: object, controlled: bool) -> dict[str, tuple[str, tuple[str, ...]]]:
    tls_port, vpn_port, closed, flood = _free_port(), _free_port(), _free_port(), _free_port()
    servers = await lab_endpoints.start([("127.0.0.1", tls_port)], [("127.0.0.1", vpn_port)], relay_ctx)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    flooder, _ = await loop.create_datagram_endpoint(_Flood, local_addr=("127.0.0.1", flood))
    eps = [
        Endpoint("tor", "relay", "127.0.0.1", tls_port),
        Endpoint("openvpn-udp", "vpn-udp", "127.0.0.1", vpn_port),
        Endpoint("openvpn-tcp", "vpn-tcp", "127.0.0.1", vpn_port),
        Endpoint("tcp", "bridge", "127.0.0.1", vpn_port),
        Endpoint("tor", "closed", "127.0.0.1", closed),
        Endpoint("openvpn-udp", "flood", "127.0.0.1", flood),
    ]
    try:
        if controlled:
            helper = Helper.with_engine(None, HelperConfig(host="127.0.0.1", port=0, allow_private=True))
            async with running_helper(helper) as base:
                cfg = SuiteConfig(controls=(base,), tcp_timeout=2, handshake_timeout=2)
                results = await measure_endpoints(eps, cfg)
        else:
            results = await measure_endpoints(eps, SuiteConfig(tcp_timeout=2, handshake_timeout=2))
    finally:
        flooder.close()
        for s in servers:
            s.close()  # type: ignore[attr-defined]
    return {obs.name: (v.verdict, v.reasons) for obs, _, v in results}


def test_reachable_tools_are_ok_and_a_closed_port_is_down_for_everyone(relay_ctx: object) -> None:
    got = asyncio.run(_suite(relay_ctx, controlled=True))
    assert got["relay"][0] == "ok" and got["relay"][1][0].startswith("tls/ok:")
    assert got["vpn-udp"][0] == "ok" and got["vpn-tcp"][0] == "ok" and got["bridge"][0] == "ok"
    assert got["closed"] == ("down", got["closed"][1]) and any(
        r.startswith("control/tcp-refused") for r in got["closed"][1]
    )
    # A flood of junk datagrams is not an OpenVPN server: bounded, recorded, inconclusive.
    assert got["flood"][0] == "inconclusive"
    assert "openvpn/other:127.0.0.1:" + got["flood"][1][0].rsplit(":", 1)[1] in got["flood"][1]


def test_without_a_control_failures_stay_inconclusive(relay_ctx: object) -> None:
    got = asyncio.run(_suite(relay_ctx, controlled=False))
    assert got["relay"][0] == "ok"
    assert got["closed"][0] == "inconclusive" and "control/unavailable" in got["closed"][1]


@pytest.fixture
def vpn_server() -> Iterator[int]:
    """An OpenVPN responder (UDP and TCP) on loopback, in a thread of its own (the CLI runs its
    own event loop)."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    servers = loop.run_until_complete(lab_endpoints.start((), [("127.0.0.1", port)]))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    for s in servers:
        s.close()  # type: ignore[attr-defined]
    loop.close()


def test_probe_circumvention_stores_a_run_and_prints_json(
    tmp_path: Path, vpn_server: int, loopback_net: LoopbackNet
) -> None:
    lst = tmp_path / "vpns.csv"
    lst.write_text(f"kind,name,address,port\nopenvpn-tcp,lab-vpn,127.0.0.1,{vpn_server}\n"
                   f"openvpn-udp,lab-vpn-udp,127.0.0.1,{vpn_server}\n")  # fmt: skip
    db = tmp_path / "probe.db"
    # The pre-flight check asks the loopback resolver (as `probe run` tests do).
    r = CliRunner().invoke(cli, ["circumvention", str(lst), "--db", str(db), "--no-control", "--accept-risks",
                                 "--vantage", "home", "--json",
                                 "--resolver", loopback_net.resolver])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted((x["name"], x["verdict"]) for x in rows) == [("lab-vpn", "ok"), ("lab-vpn-udp", "ok")]
    con = sqlite3.connect(db)
    assert con.execute("SELECT status, lists FROM runs").fetchall() == [("complete", '["vpns.csv"]')]
    stored = con.execute("SELECT kind, verdict, source FROM endpoint_measurements ORDER BY kind").fetchall()
    assert stored == [("openvpn-tcp", "ok", ""), ("openvpn-udp", "ok", "")]
    assert str(tmp_path) not in db.read_bytes().decode("latin-1")  # no home paths stored
    doc = (Path(__file__).resolve().parents[2] / "docs" / "circumvention.md").read_text()
    queries = [q.split("```")[0] for q in doc.split("```sql\n")[1:]]
    assert len(queries) == 2
    per_kind = con.execute(queries[1]).fetchall()
    assert per_kind == [("home", "openvpn-tcp", 1, 1), ("home", "openvpn-udp", 1, 1)]
    con.execute(queries[0]).fetchall()  # the documented query runs (nothing is blocked here)


def test_a_bad_list_is_a_usage_error(tmp_path: Path) -> None:
    lst = tmp_path / "bad.csv"
    lst.write_text("kind,name,address,port\nvpn,x,127.0.0.1,1\n")
    r = CliRunner().invoke(cli, ["circumvention", str(lst), "--db", str(tmp_path / "p.db"), "--accept-risks"])
    assert r.exit_code == 2 and "bad.csv:2: unknown kind" in r.output
    assert not (tmp_path / "p.db").exists()


def test_lab_relay_answers_a_client_hello_that_arrived_with_the_connection(relay_ctx: object) -> None:
    """The lab's NFQUEUE delay releases a client's ACK and its ClientHello together, so the relay
    accepts a connection whose ClientHello is already waiting. A relay that switched to TLS after
    accepting (StreamWriter.start_tls) lost it and stalled (docs/bench.md)."""
    loop = asyncio.new_event_loop()
    busy, release = threading.Event(), threading.Event()
    servers = loop.run_until_complete(lab_endpoints.start([("127.0.0.1", 0)], (), relay_ctx))  # type: ignore[arg-type]
    port = servers[0].sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def hold_the_loop() -> None:
        busy.set()
        release.wait()

    loop.call_soon_threadsafe(hold_the_loop)
    try:
        assert busy.wait(5)
        client = ssl.create_default_context()
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client.wrap_bio(incoming, outgoing, server_hostname="www.example.com")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            s.sendall(outgoing.read())  # queued in the kernel before the relay accepts
            release.set()
            reply = s.recv(65536)
        assert reply[:1] == b"\x16"  # a TLS handshake record, within the 5 s timeout
        incoming.write(reply)
        try:
            tls.do_handshake()  # TLS 1.3: the whole flight came at once
        except ssl.SSLWantReadError:
            pass  # a ServerHello parsed, the rest of the flight still to come
    finally:
        release.set()
        for srv in servers:
            loop.call_soon_threadsafe(srv.close)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
