"""Reliability figures (issue 10): the probe and the helper against hostile servers and clients.

    .venv/bin/python -m bench.reliability            # every scenario, prints a table + JSON
    .venv/bin/python -m bench.reliability --quick    # fewer legitimate requests

Everything runs on loopback (127.0.0.0/8). For each hostile server, ``probe run`` (one URL,
no control) and ``probe helper serve`` (one POST naming the URL) run as child processes; their
peak resident memory is their own VmHWM. Then the helper's throughput for legitimate clients
is measured alone and while 1,000 stalled connections (four client addresses, 250 each: under
the per-client cap, so all are held) never finish their headers. The figures are in
docs/reliability.md; the pass/fail guarantees are the tests in tests/integration/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

# The loopback servers of the test suite (on sys.path above, hence the ignores).
from helper_util import ooni_request  # type: ignore[import-not-found]  # noqa: E402
from hostile import (  # type: ignore[import-not-found]  # noqa: E402
    BombServer,
    HelperProcess,
    gzip_bomb,
    hold_connections,
    run_child,
)
from servers import DNSServer, ServerLoop, TLSFiles, zone_handler  # type: ignore[import-not-found]  # noqa: E402

FLOOD = 20_000


class _Raw:
    """A TCP (optionally TLS) server whose connection handler is ``serve``."""

    def __init__(self, loop: ServerLoop, serve: Callable[..., Any], ssl_ctx: ssl.SSLContext | None = None,
                 ip: str = "127.0.0.1") -> None:
        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(serve, ip, 0, ssl=ssl_ctx)

        self._loop = loop
        self.server = loop.run(start())
        self.port = int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        self._loop.loop.call_soon_threadsafe(self.server.close)


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the ClientHello (or request) and never answers."""
    try:
        while await reader.read(65536):
            pass
    except Exception:
        pass


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers with an endless body, one byte every 50 ms."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000000\r\n\r\n")
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)
    except Exception:
        pass


def _flood_handler(zone: dict[str, list[str] | str]) -> Any:
    import dns.message

    genuine = zone_handler(zone)
    junk = [os.urandom(64) for _ in range(64)]

    def handle(query: dns.message.Message) -> list[tuple[float, Any]]:
        qid = query.id.to_bytes(2, "big")
        return [*genuine(query), *((0.0, qid + junk[i % 64][2:]) for i in range(FLOOD))]

    return handle


def _probe_rss(url: str, resolver: str, cafile: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PROBE_CONFIG_DIR=tmp)
        t0 = time.monotonic()
        child = run_child("probe", ["run", "--url", url, "--resolver", resolver, "--no-control",
                                    "--accept-risks", "--db", f"{tmp}/r.db", "--retries", "0",
                                    "--no-progress", "--cafile", cafile, "--http-timeout", "5",
                                    "--tls-timeout", "5", "--deadline", "20"], env=env)
        return {"rc": child.returncode, "peak_rss_mb": round(child.peak_rss_mb, 1),
                "seconds": round(time.monotonic() - t0, 1)}


def _helper_rss(url: str, resolver: str, cafile: str) -> dict[str, Any]:
    with HelperProcess("--allow-private", "--resolver", resolver, "--cafile", cafile,
                       "--deadline", "20") as helper:
        t0 = time.monotonic()
        resp = httpx.post(helper.base, json=ooni_request(url, []), timeout=60, trust_env=False)
        seconds = time.monotonic() - t0
    http = resp.json().get("http_request", {}) if resp.status_code == 200 else {}
    return {"status": resp.status_code, "peak_rss_mb": round(helper.peak_rss_mb, 1),
            "seconds": round(seconds, 1), "failure": http.get("failure"),
            "body_length": http.get("body_length"), "truncated": http.get("x_body_truncated")}


def hostile_servers() -> list[dict[str, Any]]:
    """Peak RSS of probe run and of the helper against each hostile server."""
    loop = ServerLoop()
    tls = TLSFiles(["bomb.test", "127.0.0.1"])
    zone: dict[str, list[str] | str] = {"bomb.test": ["127.0.0.1"], "ok.test": ["127.0.0.1"]}
    dns_ok = DNSServer(loop, "127.0.0.58", zone_handler(zone))
    dns_flood = DNSServer(loop, "127.0.0.59", _flood_handler(zone))
    bomb = gzip_bomb()
    plain = BombServer(bomb, "gzip, gzip")
    loop.run(plain.__aenter__())
    ctx = tls.server_context()
    tls_bomb_server = BombServer(bomb, "gzip, gzip")
    tls_bomb = _Raw(loop, tls_bomb_server._serve, ctx)
    stall = _Raw(loop, _stall)
    tls_stall = _Raw(loop, _stall)  # a TLS client waits for a ServerHello that never comes
    drip = _Raw(loop, _drip)
    page = BombServer(b"<title>ok</title>", "identity")
    loop.run(page.__aenter__())
    scenarios = [
        ("HTTP: 2.9 KB double-gzip bomb (2 GiB)", f"http://127.0.0.1:{plain.port}/", dns_ok.address),
        ("HTTPS: the same bomb over TLS", f"https://127.0.0.1:{tls_bomb.port}/", dns_ok.address),
        ("TLS: handshake never answered", f"https://127.0.0.1:{tls_stall.port}/", dns_ok.address),
        ("HTTP: request never answered", f"http://127.0.0.1:{stall.port}/", dns_ok.address),
        ("HTTP: endless body, 20 B/s", f"http://127.0.0.1:{drip.port}/", dns_ok.address),
        (f"DNS: {FLOOD:,} junk datagrams per query", f"http://ok.test:{page.port}/", dns_flood.address),
        ("baseline: a small page", f"http://127.0.0.1:{page.port}/", dns_ok.address),
    ]
    rows = []
    try:
        for name, url, resolver in scenarios:
            row = {"scenario": name, "probe": _probe_rss(url, resolver, tls.ca_path),
                   "helper": _helper_rss(url, resolver, tls.ca_path)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        for s in (dns_ok, dns_flood, tls_bomb, stall, tls_stall, drip):
            s.close()
        loop.close()
    return rows


async def _legit_load(base: str, url: str, n: int, concurrency: int) -> tuple[float, dict[str, int]]:
    body = json.dumps(ooni_request(url, []))
    statuses: dict[str, int] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=concurrency)) as http:
        async def one() -> None:
            async with sem:
                try:
                    r = await http.post(base, content=body, timeout=30,
                                        headers={"Content-Type": "application/json"})
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                statuses[key] = statuses.get(key, 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.monotonic() - t0, statuses


def _phase_stats(secs: float, cpu: float, n: int, statuses: dict[str, int]) -> dict[str, Any]:
    return {"seconds": round(secs, 2), "per_second": round(n / secs, 1),
            "cpu_ms_per_request": round(1000 * cpu / n, 2), "statuses": statuses}


def _spread(values: list[float]) -> dict[str, float]:
    import statistics

    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def throughput(n: int, concurrency: int = 16, stalled: int = 1000, repeats: int = 5) -> dict[str, Any]:
    """Legitimate requests per second, alone and while ``stalled`` connections are held.

    Side by side in one helper: alone, held, alone, held, ..., alone (``repeats`` held phases,
    each between two alone phases, so load drift on the machine hits both alike). Each round's
    ratio is its held throughput over the mean of the alone phases around it; the helper's own
    CPU time per request (user + system, from /proc) is the load-robust cost.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = ServerLoop()
    page = BombServer(b"<title>ok</title>", "identity")
    loop.run(page.__aenter__())
    url = f"http://127.0.0.1:{page.port}/"
    out: dict[str, Any] = {"requests": n, "concurrency": concurrency, "stalled": stalled,
                           "repeats": repeats, "load_average": os.getloadavg()}
    try:
        # A 60 s header deadline keeps every stalled connection held through the measurement
        # (the worst case); the helper's file-descriptor limit is the usual 1024.
        with HelperProcess("--allow-private", "--resolver", "127.0.0.1:9", "--header-timeout", "60",
                           open_files=1024) as helper:

            async def phase() -> dict[str, Any]:
                cpu0 = helper.cpu_seconds()
                secs, st = await _legit_load(helper.base, url, n, concurrency)
                return _phase_stats(secs, helper.cpu_seconds() - cpu0, n, st)

            async def main() -> None:
                alone, held = [await phase()], []
                per = stalled // 4
                sources = [f"127.0.0.{i}" for i in (11, 12, 13, 14)]
                head = b"POST / HTTP/1.1\r\nHost: helper\r\n"
                for _ in range(repeats):
                    async with hold_connections("127.0.0.1", helper.port, per, head, sources[0]), \
                            hold_connections("127.0.0.1", helper.port, per, head, sources[1]), \
                            hold_connections("127.0.0.1", helper.port, per, head, sources[2]), \
                            hold_connections("127.0.0.1", helper.port, per, head, sources[3]):
                        async with httpx.AsyncClient(trust_env=False) as http:
                            health = (await http.get(helper.base + "health", timeout=10)).json()
                        row = await phase()
                        row["connections_held"] = health["connections"]
                        held.append(row)
                    alone.append(await phase())
                out["alone"], out["under_attack"] = alone, held

            asyncio.run(main())
            out["helper_peak_rss_mb"] = round(helper.hwm_mb(), 1)
    finally:
        loop.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    alone, held = out["alone"], out["under_attack"]

    def around(key: str, i: int) -> float:
        return float(alone[i][key] + alone[i + 1][key]) / 2

    out["ratio"] = _spread([h["per_second"] / around("per_second", i) for i, h in enumerate(held)])
    out["cpu_ratio"] = _spread([h["cpu_ms_per_request"] / around("cpu_ms_per_request", i)
                                for i, h in enumerate(held)])  # fmt: skip
    out["alone_per_second"] = _spread([a["per_second"] for a in alone])
    out["held_per_second"] = _spread([h["per_second"] for h in held])
    out["alone_cpu_ms"] = _spread([a["cpu_ms_per_request"] for a in alone])
    out["held_cpu_ms"] = _spread([h["cpu_ms_per_request"] for h in held])
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer legitimate requests")
    parser.add_argument("--skip-servers", action="store_true", help="only the throughput figures")
    parser.add_argument("--repeats", type=int, default=5, help="held phases (each between two alone)")
    parser.add_argument("--requests", type=int, default=0, help="legitimate requests per phase")
    args = parser.parse_args()
    assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
    rows = [] if args.skip_servers else hostile_servers()
    tp = throughput(args.requests or (100 if args.quick else 200), repeats=args.repeats)
    print("\n| scenario | probe run peak RSS | helper peak RSS | probe result | helper result |")
    print("|---|---|---|---|---|")
    for r in rows:
        p, h = r["probe"], r["helper"]
        cut = " (truncated)" if h["truncated"] else ""
        res = f"{h['status']} {h['failure'] or ''} {h['body_length']} B{cut}"
        print(f"| {r['scenario']} | {p['peak_rss_mb']} MB | {h['peak_rss_mb']} MB | exit {p['rc']}, "
              f"{p['seconds']} s | {res.strip()}, {h['seconds']} s |")
    held = tp["under_attack"]
    print(f"\nhelper throughput, {tp['requests']} requests per phase, {tp['repeats']} held phases "
          f"(load average {tp['load_average'][0]:.1f} before, {tp['load_average_after'][0]:.1f} after):")
    print("| | alone | with 1,000 stalled connections held | ratio held/alone |")
    print("|---|---|---|---|")
    for key, a, h, r in (("requests/s", "alone_per_second", "held_per_second", "ratio"),
                         ("helper CPU ms/request", "alone_cpu_ms", "held_cpu_ms", "cpu_ratio")):
        print(f"| {key} (median, min-max) | {tp[a]['median']} ({tp[a]['min']}-{tp[a]['max']}) | "
              f"{tp[h]['median']} ({tp[h]['min']}-{tp[h]['max']}) | "
              f"{tp[r]['median']} ({tp[r]['min']}-{tp[r]['max']}) |")
    print(f"statuses under attack: {[h['statuses'] for h in held]}; "
          f"connections held: {[h['connections_held'] for h in held]}; "
          f"helper peak RSS {tp['helper_peak_rss_mb']} MB")

if __name__ == "__main__":
    main()
