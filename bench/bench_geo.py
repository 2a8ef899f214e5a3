"""IP-to-ASN lookups: the bundled memory-mapped table against an in-memory floor.

    .venv/bin/python -m bench.bench_geo [--n 200000]

Prints the cost of opening the bundled table (time, RSS), the cost of a lookup, and the ratio
to a floor measured in the same run: ``bisect`` over a Python list of the same IPv4 starts (what
the old TSV reader held in memory, at ~40 bytes per range instead of 8). Offline: no packet.
"""

from __future__ import annotations

import argparse
import bisect
import ipaddress
import random
import time


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="lookups per measurement")
    args = ap.parse_args()

    from probe.inputs.geo import GeoDB, bundled_geo_path

    r0 = _rss_mb()
    t0 = time.perf_counter()
    geo = GeoDB([bundled_geo_path()])
    opened = time.perf_counter() - t0
    r1 = _rss_mb()
    rng = random.Random(1)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(args.n)]
    r_data = _rss_mb()  # the addresses themselves are not the table's cost

    t0 = time.perf_counter()
    for ip in ips:
        geo.asn(ip)
    asn_us = (time.perf_counter() - t0) / args.n * 1e6
    t0 = time.perf_counter()
    for ip in ips:
        geo.lookup(ip)
    lookup_us = (time.perf_counter() - t0) / args.n * 1e6
    r2 = _rss_mb()

    table = geo._sources[0]
    starts = table._v4.tolist()  # the floor: the same search over an in-memory list
    t0 = time.perf_counter()
    for ip in ips:
        bisect.bisect_right(starts, int(ipaddress.ip_address(ip)))
    floor_us = (time.perf_counter() - t0) / args.n * 1e6
    print(f"open bundled table: {opened * 1000:.2f} ms, RSS +{r1 - r0:.1f} MB "
          f"({bundled_geo_path().stat().st_size / 1e6:.1f} MB file, memory-mapped)")
    print(f"asn(ip):    {asn_us:.2f} us/lookup   ({asn_us / floor_us:.2f} x the floor)")
    print(f"lookup(ip): {lookup_us:.2f} us/lookup   (with the AS name; "
          f"{lookup_us / floor_us:.2f} x the floor)")
    print(f"floor (parse + bisect on an in-memory list): {floor_us:.2f} us/lookup")
    print(f"RSS growth over {2 * args.n} lookups: +{r2 - r_data:.1f} MB (pages of the table touched)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
