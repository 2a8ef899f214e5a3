"""Hostile HTTP servers: decompression bombs against the probe and the test helper.

A 2.9 KB response with ``Content-Encoding: gzip, gzip`` expands to 2 GiB. The probe and the
helper must keep at most ``--body-cap`` decoded bytes, read a bounded number of raw bytes,
record the body as truncated, and stay small (the children run under a 1.5 GiB address-space
limit, so a regression fails with MemoryError instead of taking the machine's memory).
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helper_util import ooni_request
from hostile import BombServer, HelperProcess, gzip_bomb, run_child
from servers import DNSServer, ServerLoop, zone_handler

pytestmark = pytest.mark.integration

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
