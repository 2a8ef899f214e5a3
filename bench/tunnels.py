"""Figures for docs/bench.md, "encrypted DNS and VPN protocols" (root: it builds a lab of its own).

    sudo .venv/bin/python -m bench.tunnels --rtt-ms 0,100 --repeat 3

`probe circumvention` in the lab's client namespace against the lab's DoH and DoT resolver
(two names each, the control helper asked about both) and the lab reflector's fully
encrypted traffic echo and WireGuard responder, uncensored, at each round-trip time (NFQUEUE
delay on the censor). Per kind: the endpoint's own measuring time as stored (``runtime``),
and per run: wall time and the probe's CPU time, next to the floor of the round trips each
kind needs (DoH/DoT: TCP, TLS 1.3, one per name; fet: six connections of three round trips
each, the twin and ``--fet-tries`` 5 random; wireguard: two datagram exchanges).

Every packet stays inside the lab's namespaces. Figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Round trips each kind needs when nothing fails (the floor of its runtime).
ROUND_TRIPS = {"doh": 1 + 1 + 2, "dot": 1 + 1 + 2, "fet": 6 * 3, "wireguard": 2}


#: Per round-trip time: each kind's stored runtimes, the runs' wall times, their CPU times.
Rows = list[tuple[int, dict[str, list[float]], list[float], list[float]]]


def endpoint_runs(lab: Any, scenario: Any, argv_of: Callable[[Path, Path], list[str]], rtts: list[int],
                  repeat: int, tmp: Path) -> Rows:
    """Run an endpoint suite on ``scenario``'s list ``repeat`` times per round-trip time in the
    lab's client namespace: per RTT, each kind's stored runtimes, the runs' wall and CPU times.
    ``argv_of(list, db)`` is the command line; every endpoint must be ``ok``."""
    from probe.lab import tunnels
    from probe.lab.lab import read_endpoints

    lst = tmp / "endpoints.csv"
    lst.write_text(tunnels.endpoint_list(scenario))
    rows: Rows = []
    for rtt in rtts:
        lab.set_latency(rtt / 2)
        per_kind: dict[str, list[float]] = {}
        walls, cpus = [], []
        for i in range(repeat):
            argv = argv_of(lst, tmp / f"b{rtt}-{i}.db")
            argv = [a if a != "2" else "10" for a in argv]  # no step may time out at 100 ms RTT
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            done = subprocess.run(lab.client_argv(argv), capture_output=True, text=True, timeout=300)
            walls.append(time.monotonic() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-2000:])
            for d in read_endpoints(tmp / f"b{rtt}-{i}.db").values():
                if d["verdict"] != "ok":
                    raise SystemExit(f"{d['name']}: {d['verdict']} {d['reasons']}")
                per_kind.setdefault(d["kind"], []).append(float(d["observation"]["runtime"]))
        rows.append((rtt, per_kind, walls, cpus))
    lab.set_latency(0)
    return rows


def main() -> int:
    from probe.lab import tunnels
    from probe.lab.lab import Lab
    from probe.lab.scenarios import by_name

    ap = argparse.ArgumentParser(prog="python -m bench.tunnels")
    ap.add_argument("--rtt-ms", default="0,100", help="round-trip times to add, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenario = by_name("tunnels-slow")
    with Lab.create() as lab, tempfile.TemporaryDirectory(prefix="bench-tunnels-") as tmp:

        def argv_of(lst: Path, db: Path) -> list[str]:
            return [*tunnels.circumvention_argv(scenario, lst, db, lab.control_url, lab.cafile),
                    "--fet-tries", "5"]

        rows = endpoint_runs(lab, scenario, argv_of, [int(x) for x in args.rtt_ms.split(",")],
                             args.repeat, Path(tmp))  # fmt: skip
    print(f"{'RTT':>5}  {'kind':<10} {'runtime median (s)':>18} {'floor (s)':>9}")
    for rtt, per_kind, walls, cpus in rows:
        for kind in sorted(per_kind):
            floor = ROUND_TRIPS[kind] * rtt / 1000
            print(f"{rtt:>4}ms  {kind:<10} {statistics.median(per_kind[kind]):>18.3f} {floor:>9.3f}")
        print(f"{rtt:>4}ms  run: wall {statistics.median(walls):.2f} s (min {min(walls):.2f}, max "
              f"{max(walls):.2f}), probe CPU {statistics.median(cpus):.2f} s, {args.repeat} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
