"""Circumvention suite, pure parts: OpenVPN packets, endpoint lists, and the judge's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.core.model import ControlObservation, ControlTCP, ControlTLS, EndpointObservation
from probe.inputs.endpointlists import DEFAULT_LIST, EndpointListError, load_endpoints, parse_endpoints
from probe.judge.circumvention import judge_endpoint
from probe.measure import openvpn

HEADER = "kind,name,address,port,sni,notes,source\n"


def test_a_server_reset_must_acknowledge_our_session() -> None:
    ours, other = b"A" * 8, b"B" * 8
    first = openvpn.client_hard_reset(ours)
    assert first[0] == 0x38 and len(first) == 14
    assert openvpn.frame(first)[:2] == b"\x00\x0e"
    assert openvpn.is_server_reset_for(openvpn.server_hard_reset(b"S" * 8, ours), ours)
    assert not openvpn.is_server_reset_for(openvpn.server_hard_reset(b"S" * 8, other), ours)
    assert not openvpn.is_server_reset_for(first, ours)  # a client packet echoed back
    assert not openvpn.is_server_reset_for(b"\x40" + b"\x00" * 3, ours)  # truncated junk
    with pytest.raises(ValueError):
        openvpn.client_hard_reset(b"short")


def test_the_packaged_lists_load_with_their_sources() -> None:
    eps = load_endpoints([])
    tor = [e for e in eps if e.kind == "tor"]
    dns = [e for e in eps if e.kind != "tor"]
    assert len(tor) >= 10 and {e.kind for e in dns} == {"doh", "dot"}
    assert all(e.source.startswith("torproject/tor") for e in tor)
    assert all(e.origin.startswith("circumvention.csv:") for e in tor)
    # Every resolver names the operator's page that publishes it, and its name for TLS.
    assert all(e.source.startswith("https://") and e.sni for e in dns)
    assert all(e.origin.startswith("encrypted-dns.csv:") for e in dns)
    assert {e.sni for e in dns} >= {"cloudflare-dns.com", "dns.google", "dns.quad9.net"}
    assert DEFAULT_LIST.name == "circumvention.csv"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("vpn,x,192.0.2.1,1194,,,", "circumvention.csv:2: unknown kind 'vpn'"),
        ("tor,x,relay.example,443,,,", "is not an IP address"),
        ("tor,x,192.0.2.1,70000,,,", "port '70000' is not 1-65535"),
    ],
)
def test_bad_rows_name_the_list_and_line(row: str, message: str) -> None:
    with pytest.raises(EndpointListError, match=message):
        parse_endpoints(HEADER + row + "\n", "circumvention.csv")


def test_lists_store_only_their_names_and_drop_duplicates(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text(HEADER + "openvpn-udp,v,192.0.2.1,1194,,,me\nopenvpn-udp,v2,192.0.2.1,1194,,,me\n")
    b = tmp_path / "b.csv"
    b.write_text("kind,address\ntor,192.0.2.2\n")
    assert [e.origin for e in load_endpoints([a])] == ["a.csv:2"]
    with pytest.raises(EndpointListError, match=r"b\.csv:1: missing column"):
        load_endpoints([b])
    with pytest.raises(EndpointListError, match="cannot read"):
        load_endpoints([tmp_path / "none.csv"])


def _obs(kind: str = "tor", transport: str = "tcp", **kw: object) -> EndpointObservation:
    handshake = {"tor": "tls", "tls": "tls", "tcp": ""}.get(kind, "openvpn")
    base: dict[str, object] = {"kind": kind, "name": "r", "address": "192.0.2.9", "port": 443,
                               "transport": transport, "started": 1.0, "runtime": 0.1,
                               "handshake": handshake}  # fmt: skip
    base.update(kw)
    return EndpointObservation(**base)  # type: ignore[arg-type]


def _control(tcp_ok: bool = True, tcp_failure: str | None = None, tls: tuple[bool, str | None] | None = None,
             failure: str | None = None) -> ControlObservation:  # fmt: skip
    tls_rows = () if tls is None else (ControlTLS("192.0.2.9", 443, "192.0.2.9", tls[0], tls[1]),)
    return ControlObservation(source="http://127.0.0.1:1/", url="https://192.0.2.9:443/", started=1.0,
                              duration=0.1, failure=failure,
                              tcp=(ControlTCP("192.0.2.9", 443, tcp_ok, tcp_failure),),
                              tls=tls_rows)  # fmt: skip


TLS_COMPLETED_AT_CONTROL = (False, "ssl_unknown_authority")  # a self-signed relay: handshake worked


@pytest.mark.parametrize(
    ("obs", "control", "verdict", "reason"),
    [
        (_obs(), None, "ok", "tls/ok:192.0.2.9:443"),
        (_obs(tcp_failure="generic_timeout_error"), _control(), "blocked", "tcp/timeout:192.0.2.9:443"),
        (_obs(tcp_failure="connection_refused"), _control(), "reset", "tcp/refused:192.0.2.9:443"),
        (_obs(tcp_failure="generic_timeout_error"), _control(False, "generic_timeout_error"), "down",
         "control/tcp-timeout:192.0.2.9:443"),
        (_obs(tcp_failure="generic_timeout_error"), None, "inconclusive", "control/unavailable"),
        (_obs(tcp_failure="generic_timeout_error"), _control(failure="connection_refused"), "inconclusive",
         "control/unavailable"),
        (_obs(tcp_failure="network_unreachable"), _control(), "inconclusive",
         "tcp/local:network_unreachable"),
        (_obs(handshake_failure="connection_reset"), _control(tls=TLS_COMPLETED_AT_CONTROL), "reset",
         "tls/reset:192.0.2.9:443"),
        (_obs(handshake_failure="generic_timeout_error"), _control(tls=TLS_COMPLETED_AT_CONTROL), "blocked",
         "tls/timeout:192.0.2.9:443"),
        (_obs(handshake_failure="connection_reset"), _control(tls=(False, "connection_reset")), "down",
         "control/tls-reset:192.0.2.9:443"),
        (_obs(handshake_failure="connection_reset"), _control(), "inconclusive", "control/no-tls-result"),
        (_obs("openvpn-tcp", handshake_failure="connection_reset"), _control(), "reset",
         "openvpn/reset:192.0.2.9:443"),
        (_obs("openvpn-tcp", handshake_failure="generic_timeout_error"), _control(), "inconclusive",
         "openvpn/silent-server-possible"),
        (_obs("openvpn-udp", "udp", handshake_failure="generic_timeout_error"), None, "inconclusive",
         "control/none:udp"),
        (_obs("tcp"), _control(), "ok", "tcp/ok:192.0.2.9:443"),
    ],
)  # fmt: skip
def test_judge_endpoint(obs: EndpointObservation, control: ControlObservation | None, verdict: str,
                        reason: str) -> None:  # fmt: skip
    v = judge_endpoint(obs, control)
    assert v.verdict == verdict
    assert reason in v.reasons


def test_a_failure_the_control_did_not_see_is_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from probe.inputs.endpointlists import Endpoint
    from probe.measure.control import client
    from probe.run import circumvention as suite

    tries: list[int] = []

    async def flaky(ep: Endpoint, contexts: object, **kw: float) -> EndpointObservation:
        tries.append(1)
        failure = "generic_timeout_error" if len(tries) == 1 else None
        return _obs(address=ep.address, port=ep.port, handshake_failure=failure)

    asked: list[bool] = []

    class Control:
        def __init__(self, *a: object, **kw: object) -> None:
            pass

        async def __call__(
            self, url: str, addrs: list[str], port: int, *, http: bool = True
        ) -> ControlObservation:
            asked.append(http)
            return _control(tls=TLS_COMPLETED_AT_CONTROL)

        async def aclose(self) -> None:
            pass

    monkeypatch.setattr(suite, "measure_endpoint", flaky)
    monkeypatch.setattr(client, "ControlClient", Control)
    ep = Endpoint("tor", "r", "192.0.2.9", 443)
    cfg = suite.SuiteConfig(controls=("http://127.0.0.1:1/",), retry_pause=0.0)
    ((obs, _, verdict),) = asyncio.run(suite.measure_endpoints([ep], cfg))
    assert len(tries) == 2 and obs.attempt == 1 and verdict.verdict == "ok"
    assert asked == [False]  # a Tor relay speaks no HTTP: the helper stops after the handshake
    tries.clear()
    cfg = suite.SuiteConfig(controls=("http://127.0.0.1:1/",), retries=0)
    ((obs, _, verdict),) = asyncio.run(suite.measure_endpoints([ep], cfg))
    assert len(tries) == 1 and verdict.verdict == "blocked"
