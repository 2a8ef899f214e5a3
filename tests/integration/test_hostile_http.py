"""Hostile HTTP servers: decompression bombs against the probe and the test helper.

A 2.9 KB response with ``Content-Encoding: gzip, gzip`` expands to 2 GiB. The probe and the
helper must keep at most ``--body-cap`` decoded bytes, read a bounded number of raw bytes,
record the body as truncated, and stay small (the children run under a 1.5 GiB address-space
limit, so a regression fails with MemoryError instead of taking the machine's memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helper_util import ooni_request
from hostile import BombServer, HelperProcess, gzip_bomb, run_child
from servers import DNSServer, ServerLoop, TLSFiles, zone_handler

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # peak RSS budgets, timeouts

PEAK_RSS_LIMIT_MB = 150.0
BOMB_SIZE = 2 << 30


@pytest.fixture(scope="module")
def loop() -> Iterator[ServerLoop]:
    loop = ServerLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def resolver(loop: ServerLoop) -> Iterator[str]:
    """A loopback resolver (NXDOMAIN for everything): probe run checks it has a network."""
    dns = DNSServer(loop, "127.0.0.58", zone_handler({}))
    yield dns.address
    dns.close()


@pytest.fixture(scope="module")
def bombs(loop: ServerLoop) -> Iterator[dict[str, int]]:
    """Ports of bomb servers, by name."""
    double = gzip_bomb(BOMB_SIZE, layers=2)
    assert len(double) < 4096  # the attack: a few KB on the wire
    single = gzip_bomb(256 << 20, layers=1)
    deflate = zlib.compress(bytes(256 << 20), 9)
    servers = {
        "gzip, gzip": BombServer(double, "gzip, gzip"),
        "gzip": BombServer(single, "gzip"),
        "deflate": BombServer(deflate, "deflate"),
        "x-gzip,  GZIP ": BombServer(double, "x-gzip,  GZIP "),
    }
    for s in servers.values():
        loop.run(s.__aenter__())
    yield {name: s.port for name, s in servers.items()}
    for s in servers.values():
        loop.run(s.__aexit__())


@pytest.fixture(scope="module")
def tls_servers(loop: ServerLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A double-gzip bomb over TLS, and a TLS port that never answers the ClientHello."""
    tls = TLSFiles(["127.0.0.1"], tmp_path_factory.mktemp("tls"))
    bomb = BombServer(gzip_bomb(BOMB_SIZE, layers=2), "gzip, gzip")

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass

    async def start() -> list[asyncio.AbstractServer]:
        return [await asyncio.start_server(bomb._serve, "127.0.0.1", 0, ssl=tls.server_context()),
                await asyncio.start_server(stall, "127.0.0.1", 0)]

    servers = loop.run(start())
    ports = [int(s.sockets[0].getsockname()[1]) for s in servers]
    yield {"ca": tls.ca_path, "bomb": ports[0], "stall": ports[1]}
    for s in servers:
        loop.loop.call_soon_threadsafe(s.close)


def probe_run(url: str, resolver: str, tmp: Path, *extra: str) -> tuple[float, sqlite3.Row]:
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp / "cfg"))
    db = tmp / "r.db"
    child = run_child(
        "probe",
        ["run", "--url", url, "--resolver", resolver, "--no-control", "--accept-risks",
         "--db", str(db), "--retries", "0", "--no-progress", *extra],
        env=env,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("SELECT body_length, body_truncated, failure FROM http_requests").fetchone()
    finally:
        con.close()
    return child.peak_rss_mb, row


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip", "deflate", "x-gzip,  GZIP "])
def test_probe_keeps_at_most_body_cap_decoded_bytes_of_a_bomb(
    bombs: dict[str, int], resolver: str, tmp_path: Path, encoding: str
) -> None:
    url = f"http://127.0.0.1:{bombs[encoding]}/"
    peak, row = probe_run(url, resolver, tmp_path)
    assert row["failure"] is None
    assert row["body_truncated"] == 1
    assert row["body_length"] == 1 << 20  # the default --body-cap, of decoded bytes
    assert peak < PEAK_RSS_LIMIT_MB, f"probe run peaked at {peak:.0f} MB"


def test_body_cap_option_bounds_the_decoded_body(
    bombs: dict[str, int], resolver: str, tmp_path: Path
) -> None:
    _, row = probe_run(f"http://127.0.0.1:{bombs['gzip, gzip']}/", resolver, tmp_path,
                       "--body-cap", "1000")
    assert (row["body_length"], row["body_truncated"]) == (1000, 1)


def test_a_bomb_over_tls_is_bounded_too(
    tls_servers: dict[str, Any], resolver: str, tmp_path: Path
) -> None:
    peak, row = probe_run(f"https://127.0.0.1:{tls_servers['bomb']}/", resolver, tmp_path,
                          "--cafile", tls_servers["ca"])
    assert (row["body_length"], row["body_truncated"], row["failure"]) == (1 << 20, 1, None)
    assert peak < PEAK_RSS_LIMIT_MB


def test_a_tls_handshake_never_answered_times_out(
    tls_servers: dict[str, Any], resolver: str, tmp_path: Path
) -> None:
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "cfg"))
    db = tmp_path / "r.db"
    child = run_child("probe", ["run", "--url", f"https://127.0.0.1:{tls_servers['stall']}/",
                                "--resolver", resolver, "--no-control", "--accept-risks",
                                "--db", str(db), "--retries", "0", "--no-progress",
                                "--tls-timeout", "2"], env=env)
    assert child.returncode == 0, child.stderr[-2000:]
    con = sqlite3.connect(db)
    try:
        (failure,) = con.execute("SELECT failure FROM tls_handshakes").fetchone()
    finally:
        con.close()
    assert failure == "generic_timeout_error"
    assert child.peak_rss_mb < PEAK_RSS_LIMIT_MB


def test_helper_keeps_at_most_body_cap_decoded_bytes_of_a_bomb(bombs: dict[str, int]) -> None:
    url = f"http://127.0.0.1:{bombs['gzip, gzip']}/"
    with HelperProcess("--allow-private", "--resolver", "127.0.0.1:9") as helper:
        # The attack: one small POST makes the helper fetch the bomb.
        body = json.dumps(ooni_request(url, []))
        resp = httpx.post(helper.base, content=body, timeout=60, trust_env=False,
                          headers={"Content-Type": "application/json"})
        during = helper.hwm_mb()
    assert resp.status_code == 200, resp.text
    http = resp.json()["http_request"]
    assert http["failure"] is None
    assert http["body_length"] == 1 << 20 and http["x_body_truncated"] is True
    assert helper.returncode == 0
    assert max(during, helper.peak_rss_mb) < PEAK_RSS_LIMIT_MB, f"helper peaked at {during:.0f} MB"


def test_helper_refuses_a_compressed_request_bomb(bombs: dict[str, int]) -> None:
    # A gzip-encoded request body that inflates far beyond the 64 KiB request limit.
    bomb = gzip_bomb(512 << 20, layers=1)
    with HelperProcess("--resolver", "127.0.0.1:9") as helper:
        resp = httpx.post(helper.base, content=bomb, timeout=60, trust_env=False,
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        during = helper.hwm_mb()
        health = httpx.get(helper.base + "health", timeout=10, trust_env=False)
    assert resp.status_code in (400, 413)
    assert health.status_code == 200
    assert during < PEAK_RSS_LIMIT_MB, f"helper peaked at {during:.0f} MB"
