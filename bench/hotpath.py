"""CPU of two per-URL pieces of `probe run`, trees side by side (issue 16).

    nice -n 15 .venv/bin/python -m bench.hotpath                         # this tree only
    nice -n 15 .venv/bin/python -m bench.hotpath --tree before=/tmp/old --tree after=.

For each tree (a directory holding a ``probe`` package, e.g. ``git archive COMMIT probe`` of
the commit before a change), a child process imports that tree's ``probe`` and times, in CPU
seconds (``time.process_time``):

- fingerprints: what the classifier asks of a response it cannot judge by the control alone,
  block pages and false positives (``match_response`` where the tree has it, else
  ``false_positives`` then ``blockpages``), on a 2 KB page (the benchmark's nginx page) and
  on a 62 KB one, with the packaged fingerprints;
- DNS queries: making a hop's A and AAAA ``UDPQuery`` objects (parsing the name, building the
  wire query, drawing its id), without sending them.

Trees run alternately, ``--rounds`` times; each figure is the median over rounds of the best
of ``--repeat`` loops. Side by side in one run, so the ratio holds on a loaded machine where
the absolute figures do not. Touches no network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_LINE = b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n"


def _page(lines: int) -> bytes:
    return (b"<!doctype html><html><head><meta charset='utf-8'><title>Site 17</title></head>"
            b"<body>" + _LINE * lines + b"</body></html>")  # fmt: skip


def worker(repeat: int) -> dict[str, float]:
    """Run in a child whose sys.path starts with the tree: CPU µs per call of each piece."""
    import asyncio

    import probe
    from probe.inputs.fingerprints import default_fingerprints
    from probe.measure.dns import UDPQuery

    if not str(Path(probe.__file__).resolve()).startswith(str(Path(sys.path[0]).resolve())):
        raise SystemExit(f"imported {probe.__file__}, not the tree's probe")
    fps = default_fingerprints()

    def scan(page: bytes) -> Callable[[], object]:
        headers = [("server", "nginx/1.22.1"), ("content-type", "text/html; charset=utf-8"),
                   ("content-length", str(len(page)))]  # fmt: skip
        if hasattr(fps, "match_response"):
            return lambda: fps.match_response(page, headers)
        return lambda: (fps.false_positives(page, headers), fps.blockpages(page, headers))

    def best(fn: Callable[[], object], number: int) -> float:
        fn()  # builds the automaton, fills caches: steady state is what a run sees
        times = []
        for _ in range(repeat):
            t0 = time.process_time()
            for _ in range(number):
                fn()
            times.append((time.process_time() - t0) / number * 1e6)
        return min(times)

    async def queries(number: int) -> None:
        for _ in range(number):
            UDPQuery("site17.bench.test", "A", "10.0.0.1", 53, 1.0, 0.0)
            UDPQuery("site17.bench.test", "AAAA", "10.0.0.1", 53, 1.0, 0.0)

    loop = asyncio.new_event_loop()
    try:
        dns_us = best(lambda: loop.run_until_complete(queries(100)), 20) / 100
    finally:
        loop.close()
    return {
        "fingerprints_2kb_us": best(scan(_page(30)), 500),
        "fingerprints_62kb_us": best(scan(_page(1000)), 20),
        "dns_hop_queries_us": dns_us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="a tree holding a probe package (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, args.worker)
        print(json.dumps(worker(args.repeat)))
        return
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            out = subprocess.run(
                [sys.executable, "-m", "bench.hotpath", "--worker", str(Path(tree).resolve()),
                 "--repeat", str(args.repeat)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    medians: dict[str, dict[str, float]] = {
        name: {k: round(statistics.median(r[k] for r in rs), 1) for k in rs[0]}
        for name, rs in runs.items()
    }
    first = next(iter(medians.values()))
    for key in first:
        row = "  ".join(f"{name} {m[key]:8.1f}" for name, m in medians.items())
        ratio = "" if len(medians) < 2 else f"  ratio {list(medians.values())[-1][key] / first[key]:.2f}"
        print(f"{key:24s} {row}{ratio}")
    report: dict[str, Any] = {"rounds": args.rounds, "repeat": args.repeat, "medians": medians}
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"hotpath-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_text(
        json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
