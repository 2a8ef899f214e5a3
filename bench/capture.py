"""Cost of ``probe run --capture``: throughput and memory with capture against without.

    sudo .venv/bin/python -m bench.capture --urls 2000 --concurrency 64 --rtt-ms 100 --repeat 3

Uses the throughput benchmark's lab (bench/throughput.py: client == router with NFQUEUE delay ==
nginx, dnsmasq, control helper) and runs ``probe run`` over the same N URLs without and with
``--capture`` in one invocation, alternating the order (plain, capture, capture, plain, ...)
so that a change in the machine's load does not favour one side. Reports the median run of
each, the ratio capture / plain (target >= 0.8 at C = 64), peak RSS of both, and the number of
packets the capture stored. Writes bench/out/capture-<time>.json. See docs/packets.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import probedb, throughput
from bench.children import PROBE_EXTRA_ARGS
from bench.services import write_url_list

__all__ = ["main"]

TARGET_RATIO = 0.8


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.capture", description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rtt-ms", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (alternating)")
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--pcap", action="store_true",
                    help="also run a third side, capture writing a --pcap file (scapy's cost)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, NFQUEUE, packet capture); run with sudo")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or throughput.OUT / f"capture-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    timeouts = {"dns_timeout": 4.0, "tcp_timeout": 10.0, "tls_timeout": 10.0, "http_timeout": 15.0,
                "deadline": 60.0}  # fmt: skip
    c = args.concurrency
    result: dict[str, Any] = {"params": vars(args) | {"out": str(out)}, "started": stamp,
                              "cores": os.cpu_count(), "loadavg": os.getloadavg()}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="probe-bench-capture-"))
    sides = ("plain", "capture", "pcap") if args.pcap else ("plain", "capture")
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    extra = {"plain": [], "capture": ["--capture"], "pcap": ["--pcap", str(workdir / "pcap")]}
    try:
        with throughput.lab(workdir, helper=not args.no_control, nginx_workers=1) as (net, services):
            control = not args.no_control and services.control_url is not None
            lst = write_url_list(workdir / f"urls-{args.urls}.csv", args.urls)
            for i in range(args.repeat):
                order = sides if i % 2 == 0 else sides[::-1]
                for side in order:
                    PROBE_EXTRA_ARGS[:] = extra[side]
                    print(f"run {i + 1}/{args.repeat}: {side}, C={c}, {args.urls} URLs ...", flush=True)
                    fig = throughput.probe_once(
                        net, services, workdir, [lst], args.urls, c, args.rtt_ms, timeouts,
                        args.timeout, None, control,
                    )
                    fig["packets_stored"] = probedb.packets(workdir / f"probe-c{c}.db")
                    runs[side].append(fig)
                    print(f"  {fig['urls_per_s']} URLs/s, peak RSS {fig['peak_rss_mb']} MB, "
                          f"cpu {fig['cpu_ms_per_url']} ms/URL, packets {fig['packets_stored']}, "
                          f"valid {fig['valid']}", flush=True)  # fmt: skip
    finally:
        PROBE_EXTRA_ARGS[:] = []
        shutil.rmtree(workdir, ignore_errors=True)
    median = {side: throughput.median_run(runs[side]) for side in sides}
    plain, cap = median["plain"], median["capture"]
    ratio = throughput.ratio(cap["urls_per_s"], plain["urls_per_s"])
    met = ratio is not None and ratio >= TARGET_RATIO
    result.update(runs=runs, median=median, ratio=ratio, target={"ratio": TARGET_RATIO, "met": met})
    if args.pcap:
        result["pcap_ratio"] = throughput.ratio(median["pcap"]["urls_per_s"], plain["urls_per_s"])
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{'':<8} {'URLs/s':>8} {'CPU ms/URL':>11} {'peak RSS MB':>12} {'packets':>8}")
    for name, f in median.items():
        print(f"{name:<8} {f['urls_per_s']:>8} {f['cpu_ms_per_url']:>11} {f['peak_rss_mb']:>12} "
              f"{f['packets_stored'] or 0:>8}")  # fmt: skip
    print(f"capture / plain throughput: {ratio} (target >= {TARGET_RATIO}); wrote {out}")
    if args.pcap:
        print(f"pcap (capture + scapy writing the file) / plain throughput: {result['pcap_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
