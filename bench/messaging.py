"""Figures for docs/bench.md, "messaging apps" (root: it builds a lab of its own).

    sudo .venv/bin/python -m bench.messaging --rtt-ms 0,100 --repeat 3

`probe messaging` in the lab's client namespace against the lab's stand-ins (scenario
``messaging-slow``'s list: a Telegram DC, Telegram Web, WhatsApp Web, a WhatsApp chat endpoint,
Signal's chat service), uncensored, at each round-trip time (NFQUEUE delay on the censor).
Per kind: the endpoint's own measuring time as stored (``runtime``), next to the floor of the
round trips it needs; per run: wall time and the probe's CPU time, and that CPU per endpoint.

Every packet stays inside the lab's namespaces. Figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

#: Round trips each kind needs when nothing fails (the floor of its runtime): a DC: TCP and
#: MTProto's first exchange; an HTTPS service: DNS, TCP, TLS 1.3, one GET; a chat endpoint: DNS
#: and TCP. (DNS goes to the ISP resolver, one hop before the delayed link: counted anyway.)
ROUND_TRIPS = {"telegram-dc": 2, "telegram-web": 4, "whatsapp-web": 4, "signal": 4, "whatsapp": 2}


def main() -> int:
    from bench.tunnels import endpoint_runs
    from probe.lab import messaging
    from probe.lab.lab import Lab
    from probe.lab.scenarios import by_name

    ap = argparse.ArgumentParser(prog="python -m bench.messaging")
    ap.add_argument("--rtt-ms", default="0,100", help="round-trip times to add, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenario = by_name("messaging-slow")
    n = len(scenario.endpoints)
    with Lab.create() as lab, tempfile.TemporaryDirectory(prefix="bench-messaging-") as tmp:

        def argv_of(lst: Path, db: Path) -> list[str]:
            return messaging.messaging_argv(lst, db, lab.control_url, lab.cafile)

        rows = endpoint_runs(lab, scenario, argv_of, [int(x) for x in args.rtt_ms.split(",")],
                             args.repeat, Path(tmp))  # fmt: skip
    print(f"{'RTT':>5}  {'kind':<13} {'runtime median (s)':>18} {'floor (s)':>9}")
    for rtt, per_kind, walls, cpus in rows:
        for kind in sorted(per_kind):
            floor = ROUND_TRIPS[kind] * rtt / 1000
            print(f"{rtt:>4}ms  {kind:<13} {statistics.median(per_kind[kind]):>18.3f} {floor:>9.3f}")
        cpu = statistics.median(cpus)
        print(f"{rtt:>4}ms  run: wall {statistics.median(walls):.2f} s (min {min(walls):.2f}, max "
              f"{max(walls):.2f}), probe CPU {cpu:.2f} s ({cpu / n:.2f} s per endpoint, {n} "
              f"endpoints), {args.repeat} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
