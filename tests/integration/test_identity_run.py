"""`probe run`'s network identity on loopback: STUN, whoami, vantage names, overrides, scrubbing.

A loopback STUN server answers a documentation address (192.0.2.77, as a NAT would) and the
loopback resolver answers a whoami name with another (198.51.100.53); the fixture IP data maps
them to AS64496/US and AS64497/DE. A web server shows the "public" address in a title, a body,
a header and a redirect's Location; after the run, no byte of the database files holds it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web as aioweb
from servers import ZONE, DNSServer, Page, ServerLoop, WebServer, zone_handler
from stored import observed

from probe.lab.stun import StunProtocol

pytestmark = pytest.mark.integration

PUBLIC = "192.0.2.77"  # what STUN says (TEST-NET-1 -> AS64496, US in the fixture)
RESOLVER_EGRESS = "198.51.100.53"  # what the whoami name says (TEST-NET-2 -> AS64497, DE)
GEO = str(Path(__file__).resolve().parents[1] / "fixtures" / "geo" / "ip2asn-fixture.tsv")
WEB = "127.0.0.2"


@dataclass
class IdentityNet:
    stun: str
    resolver: str
    http_port: int
    stun_protocol: StunProtocol
    helper: str  # a helper that tells every client it is PUBLIC (as if behind a NAT)


@pytest.fixture(scope="module")
def net() -> Iterator[IdentityNet]:
    loop = ServerLoop()
    zone = dict(ZONE)
    zone.update({"echo.test": [WEB], "whoami.test": [RESOLVER_EGRESS]})
    dns_server = DNSServer(loop, "127.0.0.53", zone_handler(zone))
    echo = {
        "/": Page(200, f"<html><head><title>Your IP is {PUBLIC}</title></head><body>You are {PUBLIC}"
                  "</body></html>".encode(), headers=[("X-Client-IP", PUBLIC)]),
        "/redirect": Page(302, headers=[("Location", f"/seen?client={PUBLIC}")]),
        "/seen": Page(200, f"<title>seen</title>{PUBLIC}".encode()),
    }
    web = WebServer(loop, WEB, {"echo.test": echo}, None)
    proto = StunProtocol(mapped=PUBLIC)

    async def start_stun() -> asyncio.DatagramTransport:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: proto, local_addr=("127.0.0.1", 0))
        return transport

    transport = loop.run(start_stun())
    port = transport.get_extra_info("sockname")[1]

    async def address(request: aioweb.Request) -> aioweb.Response:
        if (await request.json()).get("x_client_address") is True:
            return aioweb.json_response({"x_client_address": PUBLIC})
        return aioweb.json_response({"error": "this helper only tells addresses"}, status=400)

    async def health(request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({"status": "ok"})

    async def start_helper() -> aioweb.AppRunner:
        app = aioweb.Application()
        app.router.add_post("/", address)
        app.router.add_get("/health", health)
        runner = aioweb.AppRunner(app, access_log=None)
        await runner.setup()
        await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    helper = loop.run(start_helper())
    helper_url = f"http://127.0.0.1:{helper.addresses[0][1]}/"
    try:
        yield IdentityNet(f"127.0.0.1:{port}", dns_server.address, web.http_port, proto, helper_url)
    finally:
        loop.run(helper.cleanup())
        loop.loop.call_soon_threadsafe(transport.close)
        web.close()
        dns_server.close()
        loop.close()


def probe_run(
    net: IdentityNet, tmp_path: Path, *extra: str, stun: str | None = None,
    control: tuple[str, ...] = ("--no-control",),
) -> tuple[subprocess.CompletedProcess[str], Path]:
    db = tmp_path / "identity.db"
    argv = [sys.executable, "-m", "probe", "run", "--db", str(db), "--resolver", net.resolver,
            *control, "--accept-risks", "--no-progress", "--geo", GEO, "--stun", stun or net.stun,
            "--whoami", "whoami.test", "--late-window", "0.1", "--retries", "0",
            "--url", f"http://echo.test:{net.http_port}/",
            "--url", f"http://echo.test:{net.http_port}/redirect", *extra]
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "config"))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    return proc, db


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()



def test_run_stores_the_network_identity_and_names_the_vantage_after_it(
    net: IdentityNet, tmp_path: Path
) -> None:
    proc, db = probe_run(net, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT name, asn, as_org, country FROM vantage_points") == [
        ("AS64496-US", 64496, "DOC-NET-1 (RFC 5737 TEST-NET-1)", "US")]
    (run,) = query(db, "SELECT asn, country, resolver_ip, resolver_asn, network_changed, identity "
                       "FROM runs")
    assert run[:5] == (64496, "US", RESOLVER_EGRESS, 64497, 0)
    assert '"when": "end"' in str(run[5])  # checked again at the end: same network
    assert "vantage AS64496-US: network AS64496" in proc.stdout


def test_the_public_address_is_in_no_byte_of_the_database(net: IdentityNet, tmp_path: Path) -> None:
    proc, db = probe_run(net, tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The site really showed it: the stored title, header and Location say [scrubbed] instead.
    titles = {t for (t,) in query(db, "SELECT title FROM http_requests WHERE title IS NOT NULL")}
    assert "Your IP is [scrubbed]" in titles
    ms, text, raw = observed(db)
    assert any("[scrubbed]" in v for m in ms for h in m.hops if h.http for _, v in h.http.headers)
    assert PUBLIC not in text and bytes([192, 0, 2, 77]) not in raw
    locations = [loc for (loc,) in query(db, "SELECT location FROM http_requests") if loc]
    assert locations and all(loc.endswith("/seen?client=[scrubbed]") for loc in locations)
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            data = path.read_bytes()
            assert PUBLIC.encode() not in data, path
            assert bytes([192, 0, 2, 77]) not in data, path


def test_overrides_replace_what_was_found(net: IdentityNet, tmp_path: Path) -> None:
    proc, db = probe_run(net, tmp_path, "--asn", "12389", "--country", "ru", "--network", "home fibre")
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT name, asn, as_org, country, network FROM vantage_points") == [
        ("AS12389-RU", 12389, None, "RU", "home fibre")]


def test_no_identity_keeps_the_default_name(net: IdentityNet, tmp_path: Path) -> None:
    before = net.stun_protocol.requests
    proc, db = probe_run(net, tmp_path, "--no-identity")
    assert proc.returncode == 0, proc.stderr
    assert net.stun_protocol.requests == before  # no STUN request at all
    assert query(db, "SELECT name, asn FROM vantage_points") == [("default", None)]


def test_unreachable_stun_leaves_the_identity_unknown_and_still_measures(
    net: IdentityNet, tmp_path: Path
) -> None:
    proc, db = probe_run(net, tmp_path, stun="127.0.0.1:9")  # nobody listens there
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT name, asn FROM vantage_points") == [("default", None)]
    (identity,) = query(db, "SELECT identity FROM runs")[0]
    assert "stun 127.0.0.1:9: connection_refused" in str(identity)
    assert query(db, "SELECT count(*) FROM measurements WHERE final = 1") == [(2,)]


def test_bad_country_is_a_usage_error(net: IdentityNet, tmp_path: Path) -> None:
    proc, _ = probe_run(net, tmp_path, "--country", "Russia")
    assert proc.returncode == 2 and "--country" in proc.stderr


def test_a_helper_that_tells_the_address_stands_in_for_stun(net: IdentityNet, tmp_path: Path) -> None:
    # No STUN server answers; the run's helper tells the client its address (as probe's own
    # helper does when asked {"x_client_address": true}). Before, nothing was learned, so the
    # echo site's copies of the address were stored.
    proc, db = probe_run(net, tmp_path, "--allow-no-control", stun="127.0.0.1:9",
                         control=("--control", net.helper))
    assert proc.returncode == 0, proc.stderr
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            data = path.read_bytes()
            assert PUBLIC.encode() not in data, path
            assert bytes([192, 0, 2, 77]) not in data, path
    _, text, raw = observed(db)  # the packed observations, read back
    assert PUBLIC not in text and bytes([192, 0, 2, 77]) not in raw
    assert query(db, "SELECT name, asn FROM vantage_points") == [("AS64496-US", 64496)]
    (identity,) = query(db, "SELECT identity FROM runs")[0]
    assert f'"public_address": "learned from helper {net.helper}"' in str(identity)
    assert "public address" not in proc.stderr


def test_an_unknown_address_is_said_recorded_and_can_stop_the_run(
    net: IdentityNet, tmp_path: Path
) -> None:
    proc, db = probe_run(net, tmp_path, stun="127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    assert "your public address is unknown (no STUN server answered)" in " ".join(proc.stderr.split())
    assert "your public address stayed unknown" in proc.stdout
    (identity,) = query(db, "SELECT identity FROM runs")[0]
    assert '"public_address": "unknown: no STUN server answered"' in str(identity)

    refused, db = probe_run(net, tmp_path, "--require-identity", stun="127.0.0.1:9")
    assert refused.returncode == 1
    assert "Error: your public address is unknown" in refused.stderr
    assert "--require-identity" in refused.stderr
    assert query(db, "SELECT status, n_measurements FROM runs ORDER BY id") == [
        ("complete", 2), ("failed", 0)]

    both, _ = probe_run(net, tmp_path, "--require-identity", "--no-identity")
    assert both.returncode == 2 and "--require-identity" in both.stderr
