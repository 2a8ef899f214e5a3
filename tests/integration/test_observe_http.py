"""HTTP step, redirects, the control hook and the per-URL deadline."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import pytest
from observe_helpers import config, run
from servers import HUGE_SIZE, LoopbackNet

from probe.core.model import ControlObservation
from probe.measure.engine import DEFAULT_USER_AGENT
from probe.measure.http import BROWSER_HEADERS, extract_title


def test_get_records_status_headers_body_and_title(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test", tls=True), config(loopback_net))
    http = m.hops[0].http
    assert http is not None
    assert http.failure is None and http.status == 200
    assert http.ip == loopback_net.web_ip and http.port == loopback_net.https_port
    assert http.headers[0][0] == "content-length"
    assert all(k == k.lower() for k, _ in http.headers)
    assert ("content-type", "text/html; charset=utf-8") in http.headers
    assert http.body.startswith(b"<!doctype html>")
    assert http.body_length == len(http.body)
    assert http.body_sha256 == hashlib.sha256(http.body).hexdigest()
    assert http.body_truncated is False
    assert http.title == "OK page"
    assert http.location is None


def test_request_has_host_and_browser_headers(loopback_net: LoopbackNet) -> None:
    before = len(loopback_net.web.requests)
    run(loopback_net.url("www.ok.test", "/final"), config(loopback_net))
    host, path, headers = loopback_net.web.requests[before]
    sent = {k.lower(): v for k, v in headers}
    assert (host, path) == ("www.ok.test", "/final")
    assert sent["host"] == f"www.ok.test:{loopback_net.http_port}"
    assert sent["user-agent"] == DEFAULT_USER_AGENT
    assert sent["accept"].startswith("text/html")
    # Exactly these headers, in this order (what a browser sends; what httpx sent before the
    # GET went to httpcore directly): nothing added, nothing lost.
    assert [(k.lower(), v) for k, v in headers] == [
        ("host", f"www.ok.test:{loopback_net.http_port}"),
        ("user-agent", DEFAULT_USER_AGENT),
        *((k.lower(), v) for k, v in BROWSER_HEADERS),
    ]


def test_body_is_capped_and_flagged(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("huge.test"), config(loopback_net, body_cap=100_000))
    http = m.hops[0].http
    assert http is not None and http.status == 200
    assert http.body_truncated is True
    assert http.body_length == 100_000 == len(http.body)
    assert HUGE_SIZE > 100_000


def test_reset_after_request_is_connection_reset(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("reset.test"), config(loopback_net))
    http = m.hops[0].http
    assert http is not None
    assert http.failure == "connection_reset"
    assert http.status is None


def test_silent_server_times_out_the_request(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("blackhole.test"), config(loopback_net, http_timeout=0.3))
    http = m.hops[0].http
    assert http is not None and http.failure == "generic_timeout_error"


def test_cross_origin_redirect_is_measured_step_by_step(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", tls=True), config(loopback_net))
    first, second = m.hops
    assert first.http is not None and first.http.status == 302
    assert first.http.location == loopback_net.url("ok.test", tls=True)
    assert (second.index, second.url, second.host) == (1, first.http.location, "ok.test")
    assert {d.hostname for d in second.dns} == {"ok.test"}
    assert second.tcp and second.tls and second.tls[0].sni == "ok.test"
    assert second.http is not None and second.http.title == "OK page"


def test_scheme_change_is_a_new_origin(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", "/cross", tls=True), config(loopback_net))
    assert [(h.scheme, h.host) for h in m.hops] == [("https", "redirect.test"), ("http", "www.ok.test")]
    assert m.hops[1].tls == ()
    assert m.hops[1].http is not None and m.hops[1].http.status == 200


def test_same_origin_redirect_reuses_dns_and_the_kept_alive_connection(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", "/same", tls=True), config(loopback_net))
    first, second = m.hops
    assert second.url == loopback_net.url("redirect.test", "/final", tls=True)
    assert second.dns == () and second.tcp == () and second.tls == ()
    assert second.http is not None and second.http.title == "Final page"
    assert second.http.ip == first.http.ip  # type: ignore[union-attr]


def test_relative_location_is_resolved(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", "/rel"), config(loopback_net))
    assert m.hops[0].http is not None
    assert m.hops[0].http.location == loopback_net.url("redirect.test", "/ok")
    assert m.hops[1].http is not None and m.hops[1].http.status == 404


def test_redirect_loop_stops_with_too_many_redirects(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", "/loop"), config(loopback_net, max_redirects=3))
    assert len(m.hops) == 4
    assert [h.http.failure for h in m.hops[:3]] == [None, None, None]  # type: ignore[union-attr]
    assert m.hops[-1].http is not None and m.hops[-1].http.failure == "http_too_many_redirects"


def test_invalid_location_is_recorded(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("redirect.test", "/bad"), config(loopback_net))
    (hop,) = m.hops
    assert hop.http is not None and hop.http.status == 302
    assert hop.http.failure == "http_invalid_redirect_location_host"


def test_control_runs_per_hop_with_the_probe_addresses(loopback_net: LoopbackNet) -> None:
    calls: list[tuple[str, list[str], int]] = []

    async def control(url: str, addrs: Sequence[str], port: int) -> ControlObservation:
        calls.append((url, list(addrs), port))
        return ControlObservation(source="fake", url=url, started=0.0, duration=0.0,
                                  dns_addrs=tuple(addrs))

    m = run(loopback_net.url("redirect.test", tls=True), config(loopback_net), control=control)
    assert calls == [(h.url, [loopback_net.web_ip], loopback_net.https_port) for h in m.hops]
    assert [h.control.url for h in m.hops] == [h.url for h in m.hops]  # type: ignore[union-attr]


def test_control_first_url_asks_about_the_url_of_the_list_only(loopback_net: LoopbackNet) -> None:
    calls: list[str] = []

    async def control(url: str, addrs: Sequence[str], port: int) -> ControlObservation:
        calls.append(url)
        return ControlObservation(source="fake", url=url, started=0.0, duration=0.0)

    m = run(loopback_net.url("redirect.test", tls=True),
            config(loopback_net, control_first_url=True), control=control)
    assert len(m.hops) > 1 and calls == [m.hops[0].url]  # OONI Probe's way with OONI's helper
    assert m.hops[0].control is not None and all(h.control is None for h in m.hops[1:])


def test_failing_control_becomes_a_record(loopback_net: LoopbackNet) -> None:
    async def control(url: str, addrs: Sequence[str], port: int) -> ControlObservation:
        raise ConnectionRefusedError(111, "helper down")

    m = run(loopback_net.url("ok.test"), config(loopback_net), control=control)
    ctl = m.hops[0].control
    assert ctl is not None and ctl.failure == "connection_refused" and ctl.url == m.hops[0].url
    assert m.hops[0].http is not None and m.hops[0].http.status == 200


def test_deadline_returns_what_was_seen(loopback_net: LoopbackNet) -> None:
    async def slow_control(url: str, addrs: Sequence[str], port: int) -> ControlObservation:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    cfg = config(loopback_net, deadline=0.4, tls_timeout=30, tcp_timeout=30, http_timeout=30)
    m = run(loopback_net.url("blackhole.test", tls=True), cfg, control=slow_control)
    assert m.failure == "deadline_exceeded"
    hop = m.hops[0]
    assert hop.dns[0].failure is None
    assert hop.tcp[0].failure is None
    assert hop.tls[0].failure == "deadline_exceeded"
    assert hop.control is not None and hop.control.failure == "deadline_exceeded"


def test_deadline_during_http(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, deadline=0.4, http_timeout=30)
    m = run(loopback_net.url("blackhole.test"), cfg)
    assert m.failure == "deadline_exceeded"
    assert m.hops[0].http is not None and m.hops[0].http.failure == "deadline_exceeded"


def test_attempt_is_recorded(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), config(loopback_net), attempt=2)
    assert m.attempt == 2 and m.failure is None


@pytest.mark.parametrize(
    ("body", "content_type", "title"),
    [
        (b"<html><head><title>Hello</title>", "", "Hello"),
        (b"<TITLE lang='en'>\n  Two\t words  </TITLE>", "", "Two words"),
        (b"<title>Caf&eacute; &amp; bar</title>", "", "Caf\u00e9 & bar"),
        ("<title>Привет</title>".encode("cp1251"), "text/html; charset=windows-1251", "Привет"),
        (b'<meta charset="utf-8"><title>\xc3\xa9t\xc3\xa9</title>', "text/html", "\u00e9t\u00e9"),
        (b"<html>no title here</html>", "", None),
        (b"x" * 70_000 + b"<title>too far</title>", "", None),
    ],
)
def test_title_extraction(body: bytes, content_type: str, title: str | None) -> None:
    assert extract_title(body, content_type) == title


def test_deadline_during_dns_keeps_the_query(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(loopback_net.silent_resolver,), dns_timeout=30,
                 deadline=0.3)
    m = run(loopback_net.url("ok.test"), cfg)
    assert m.failure == "deadline_exceeded"
    assert {d.qtype: d.failure for d in m.hops[0].dns} == {
        "A": "deadline_exceeded", "AAAA": "deadline_exceeded"}
    assert m.hops[0].tcp == ()


def test_unreadable_cafile_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from probe.measure.engine import MeasureConfig
    with pytest.raises(ValueError, match=r"missing\.pem"):
        MeasureConfig(cafile=str(tmp_path / "missing.pem"))


def test_garbage_response_is_malformed(loopback_net: LoopbackNet) -> None:
    from servers import ReplyServer

    server = ReplyServer(loopback_net.loop, "127.0.0.8", (0,))
    try:
        m = run(f"http://127.0.0.8:{server.ports[0]}/", config(loopback_net))
    finally:
        server.close()
    http = m.hops[0].http
    assert http is not None and http.failure == "http_response_malformed" and http.status is None


def test_closed_without_response_is_eof(loopback_net: LoopbackNet) -> None:
    from servers import ReplyServer

    server = ReplyServer(loopback_net.loop, "127.0.0.8", (0,))
    server.reply = b""
    try:
        m = run(f"http://127.0.0.8:{server.ports[0]}/", config(loopback_net))
    finally:
        server.close()
    http = m.hops[0].http
    assert http is not None and http.failure == "eof_error"
