"""What the opt-in protocol tests cost per URL (docs/bench.md, "QUIC and ECH"; root: a lab).

    sudo .venv/bin/python -m bench.protocols                        # 200 URLs, 3 rounds
    sudo .venv/bin/python -m bench.protocols --urls 400 --rtt-ms 100 --repeat 5

`probe run` over N distinct URLs of the lab's HTTP/3 site (``https://quic.lab.example/?n=I``)
with the lab's control helper, in four modes measured in the same run, their order rotating
each round: the web test alone, ``--quic``, ``--ech``, and ``--quic --ech``. Per mode: wall time,
the probe's CPU per URL (the client process's user + system time, from its rusage), and the
control helper's CPU per URL (from /proc). Then one run of ``--quic`` against a site whose
QUIC the censor blocks by SNI (``quic-sni``), where every URL pays the handshake timeouts.
The figures are ratios to the web test alone in the same round, so the machine's load cancels
out as far as it can. Every packet stays inside the lab's namespaces.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES: dict[str, tuple[str, ...]] = {
    "web": (),
    "quic": ("--quic",),
    "ech": ("--ech",),
    "quic+ech": ("--quic", "--ech"),
}


def _proc_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_probe(lab: Any, tmp: Path, host: str, n: int, args: tuple[str, ...], concurrency: int,
              tag: str) -> dict[str, Any]:
    """One `probe run` over ``n`` URLs of ``host``: wall, CPU, verdict counts."""
    db = tmp / f"{tag}.db"
    urls = [f"https://{host}/?n={i}" for i in range(n)]
    helper = lab.services.get("helper")
    before_helper = _proc_cpu(helper) if helper else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = lab.probe(urls, db, extra=("--concurrency", str(concurrency), "--per-host", str(concurrency),
                                      "--quic-timeout", "2", *args), timeout=900)  # fmt: skip
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    helper_cpu = (_proc_cpu(helper) - before_helper) if helper else 0.0
    con = sqlite3.connect(db)
    web = dict(con.execute("SELECT verdict, count(*) FROM measurements WHERE final = 1 GROUP BY 1"))
    prot = {f"{s}:{v}": c for s, v, c in con.execute(
        "SELECT suite, verdict, count(*) FROM protocol_verdicts GROUP BY 1, 2")}
    con.close()
    return {"exit": done.returncode, "wall_s": round(wall, 3), "cpu_ms_per_url": round(1000 * cpu / n, 2),
            "helper_cpu_ms_per_url": round(1000 * helper_cpu / n, 2),
            "time_ms_per_url": round(1000 * wall / n * concurrency, 1), "web": web, "protocols": prot}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table and write bench/out/protocols-<time>.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--urls", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blocked-urls", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from probe.lab.lab import Lab
    from probe.lab.scenarios import by_name

    rounds: list[dict[str, Any]] = []
    modes = list(MODES)
    with Lab.create() as lab, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lab.set_latency(args.rtt_ms / 2)
        for r in range(args.repeat):
            order = modes[r % len(modes):] + modes[: r % len(modes)]
            got = {m: run_probe(lab, tmp, "quic.lab.example", args.urls, MODES[m], args.concurrency,
                                f"r{r}-{m}") for m in order}  # fmt: skip
            rounds.append(got)
            print(f"round {r + 1}: " + ", ".join(
                f"{m} {got[m]['cpu_ms_per_url']} ms CPU/URL {got[m]['wall_s']} s" for m in modes),
                flush=True)  # fmt: skip
        lab.apply(by_name("quic-sni").censor)
        try:
            blocked = run_probe(lab, tmp, "quic-sni.lab.example", args.blocked_urls, ("--quic",),
                                args.concurrency, "blocked")  # fmt: skip
        finally:
            lab.reset()
            lab.set_latency(0)
    summary: dict[str, Any] = {}
    for m in modes:
        cpu = [rd[m]["cpu_ms_per_url"] / rd["web"]["cpu_ms_per_url"] for rd in rounds]
        wall = [rd[m]["wall_s"] / rd["web"]["wall_s"] for rd in rounds]
        summary[m] = {
            "cpu_ms_per_url": statistics.median(rd[m]["cpu_ms_per_url"] for rd in rounds),
            "helper_cpu_ms_per_url": statistics.median(rd[m]["helper_cpu_ms_per_url"] for rd in rounds),
            "wall_s": statistics.median(rd[m]["wall_s"] for rd in rounds),
            "cpu_vs_web": round(statistics.median(cpu), 3),
            # The increment over the web test alone in the same round: fixed costs (start-up,
            # identity, pre-flight) cancel out.
            "extra_cpu_ms_per_url": round(statistics.median(
                rd[m]["cpu_ms_per_url"] - rd["web"]["cpu_ms_per_url"] for rd in rounds), 2),
            "extra_helper_cpu_ms_per_url": round(statistics.median(
                rd[m]["helper_cpu_ms_per_url"] - rd["web"]["helper_cpu_ms_per_url"] for rd in rounds), 2),
            "wall_vs_web": round(statistics.median(wall), 3),
        }
    print(f"\n{args.urls} URLs, C={args.concurrency}, RTT {args.rtt_ms:g} ms, median of {args.repeat}:")
    print(f"{'mode':<10} {'CPU ms/URL':>11} {'x web':>7} {'+ms/URL':>8} {'wall s':>8} {'x web':>7} "
          f"{'helper ms/URL':>14} {'+ms/URL':>8}")
    for m, s in summary.items():
        print(f"{m:<10} {s['cpu_ms_per_url']:>11.2f} {s['cpu_vs_web']:>7.2f} "
              f"{s['extra_cpu_ms_per_url']:>8.2f} "
              f"{s['wall_s']:>8.2f} {s['wall_vs_web']:>7.2f} {s['helper_cpu_ms_per_url']:>14.2f} "
              f"{s['extra_helper_cpu_ms_per_url']:>8.2f}")
    print(f"blocked by SNI ({args.blocked_urls} URLs, --quic): {blocked['wall_s']} s, "
          f"{blocked['cpu_ms_per_url']} ms CPU/URL, verdicts {blocked['protocols']}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or ROOT / "bench" / "out" / f"protocols-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"params": vars(args) | {"out": str(out)}, "rounds": rounds,
                               "summary": summary, "blocked": blocked,
                               "load": os.getloadavg()}, indent=1))  # fmt: skip
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
