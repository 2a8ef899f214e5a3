"""Instructions per URL: `probe run` against the lean floor, counted by valgrind (issue 28).

    sudo .venv/bin/python -m bench.instructions --urls 40,200 --concurrency 8
    sudo .venv/bin/python -m bench.instructions --probe-tree /tmp/before --urls 40,200

Without the control only: under valgrind the run's imports hold the event loop for longer than
the pre-flight check's 3 s, so the check finds no helper and the run stops (by design); the
control client's share comes from py-spy (``bench.throughput --pyspy``).

On a machine shared with other work, CPU seconds per URL move by ±10 % from run to run, and
wall-clock ratios by far more. ``valgrind --tool=callgrind`` counts the instructions a process
executes, whatever else runs: the same run gives the same count to within a fraction of a per
cent. This runs the lean floor (bench/floor.py ``--lean``) and `probe run` under callgrind in
the throughput benchmark's lab (bench/throughput.py's namespaces, nginx, dnsmasq; RTT
``--rtt-ms``), each over two list sizes, and reports per client:

- **per URL**: (instructions at the long list - at the short one) / the difference in URLs:
  the marginal cost of a URL, free of start-up (imports, pre-flight, identity) and end costs;
- **fixed**: what is left at the short list: the cost of a run with no URL;
- **at N URLs**: fixed / N + per URL, for the throughput benchmark's N (``--at``, 2000): what
  its CPU-per-URL ratio would be without the noise.

Under valgrind a client runs about 50 times slower, so the concurrency is low and the probe's
timeouts generous (nothing here is about time). Callgrind's output files (``--keep DIR``) open
with ``callgrind_annotate`` for the C functions (OpenSSL, the interpreter, uvloop, SQLite).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import probedb
from bench.children import (
    PROBE_TREE,
    child_env,
    compile_bytecode,
    floor_argv,
    probe_argv,
    probe_env,
    run_child,
    use_probe_tree,
)
from bench.services import write_url_list
from bench.throughput import OUT, lab
from bench.topology import delayed

__all__ = ["main", "marginal"]

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
#: Timeouts for `probe run` under valgrind: a step that takes 50 times longer must not fail.
_TIMEOUTS = {"dns_timeout": 60.0, "tcp_timeout": 60.0, "tls_timeout": 60.0, "http_timeout": 60.0,
             "deadline": 600.0}  # fmt: skip


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]


def _count(stderr: str) -> int | None:
    m = _COLLECTED.search(stderr)
    return int(m.group(1)) if m else None


def marginal(short: tuple[int, int], long: tuple[int, int]) -> tuple[float, float]:
    """(instructions per URL, fixed instructions) from two (URLs, instructions) points."""
    (n1, i1), (n2, i2) = short, long
    per_url = (i2 - i1) / (n2 - n1)
    return per_url, i1 - n1 * per_url


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.instructions",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--urls", default="40,200", help="two list sizes, short,long")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rtt-ms", type=float, default=10.0)
    ap.add_argument("--probe-tree", type=Path, action="append", default=[], metavar="DIR",
                    help="also count the probe package in DIR (repeatable; e.g. `git archive REV "
                    "probe` of main) beside this checkout's")
    ap.add_argument("--no-lean", action="store_true",
                    help="skip the lean floor (its count does not change between runs: compare "
                    "with another run's)")
    ap.add_argument("--at", type=int, default=2000, help="report the per-URL cost at this many URLs")
    ap.add_argument("--keep", type=Path, help="keep callgrind's output files in this directory")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.urls.split(",")]
    if len(sizes) != 2 or not 0 < sizes[0] < sizes[1]:
        ap.error("--urls: two sizes, the short one first")
    if shutil.which("valgrind") is None:
        ap.error("valgrind is not installed (apt-get install valgrind)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or OUT / f"instructions-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"params": {"urls": sizes, "concurrency": args.concurrency,
                                         "rtt_ms": args.rtt_ms, "control": False,
                                         "at": args.at}, "clients": {},
                              "bytecode": compile_bytecode()}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="probe-instr-"))
    keep = args.keep or workdir
    keep.mkdir(parents=True, exist_ok=True)
    trees: list[tuple[str, Path | None]] = [("probe", None)]
    trees += [(f"probe@{t.name}", t) for t in args.probe_tree]
    try:
        with lab(workdir, helper=False, nginx_workers=1) as (net, services):
            assert services.ca is not None
            lists = {n: write_url_list(workdir / f"urls-{n}.csv", n) for n in sizes}
            for name, tree in ([] if args.no_lean else [("lean", None)]) + trees:
                points = []
                for n in sizes:
                    cg = keep / f"callgrind-{name.replace('/', '_')}-{n}.out"
                    if name == "lean":
                        cmd = floor_argv([lists[n]], net, services.ca, args.concurrency, 600.0,
                                         lean=True)  # fmt: skip
                        env = child_env(workdir)
                        ok: int | None = None
                    else:
                        if tree is not None:
                            use_probe_tree(tree, workdir)
                        db = workdir / f"{name}-{n}.db".replace("/", "_")
                        cmd = probe_argv([lists[n]], net, services.ca, args.concurrency, db,
                                         None, _TIMEOUTS)  # fmt: skip
                        env = probe_env(workdir)
                    print(f"{name}: {n} URLs under callgrind ...", flush=True)
                    with delayed(net, args.rtt_ms, []):
                        r = run_child([*_callgrind(cg), *cmd], net.client, timeout=args.timeout,
                                      env=env, workdir=workdir)  # fmt: skip
                    if name == "lean":
                        try:
                            ok = json.loads(r.stdout.strip().splitlines()[-1])["ok"]
                        except (ValueError, IndexError, KeyError):
                            ok = None
                    else:
                        ok, _ = probedb.probe_ok(db)
                    count = _count(r.stderr)
                    points.append({"urls": n, "instructions": count, "ok": ok,
                                   "returncode": r.returncode, "cpu_s": round(r.cpu_s, 2)})  # fmt: skip
                    if count is None or r.returncode != 0:
                        points[-1]["stderr"] = r.stderr[-1500:]
                    out.write_text(json.dumps(result, indent=2))
                if tree is not None:
                    PROBE_TREE.clear()  # back to this checkout for the next client
                entry: dict[str, Any] = {"points": points}
                if all(p["instructions"] for p in points):
                    per_url, fixed = marginal((sizes[0], points[0]["instructions"]),
                                              (sizes[1], points[1]["instructions"]))  # fmt: skip
                    entry.update(per_url=round(per_url), fixed=round(fixed),
                                 at_n=round(fixed / args.at + per_url))  # fmt: skip
                result["clients"][name] = entry
                out.write_text(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print(result)
    print(f"wrote {out}")
    return 0


def _print(result: dict[str, Any]) -> None:
    p = result["params"]
    lean = result["clients"].get("lean", {})
    print(f"\ninstructions (callgrind), lists of {p['urls'][0]} and {p['urls'][1]} URLs, "
          f"C={p['concurrency']}, {'with' if p['control'] else 'without'} the control")
    print(f"{'client':<22} {'M instr/URL':>12} {'fixed M':>9} {'at ' + str(p['at']):>10} "
          f"{'/lean URL':>9} {'/lean at':>9}  ok")  # fmt: skip
    for name, e in result["clients"].items():
        if "per_url" not in e:
            print(f"{name:<22} failed: {[pt.get('stderr', '')[-200:] for pt in e['points']]}")
            continue
        r1 = e["per_url"] / lean["per_url"] if lean.get("per_url") else None
        r2 = e["at_n"] / lean["at_n"] if lean.get("at_n") else None
        oks = "/".join(str(pt["ok"]) for pt in e["points"])
        print(f"{name:<22} {e['per_url'] / 1e6:12.2f} {e['fixed'] / 1e6:9.0f} "
              f"{e['at_n'] / 1e6:10.2f} {_r(r1):>9} {_r(r2):>9}  {oks}")  # fmt: skip


def _r(x: float | None) -> str:
    return f"{x:.3f}" if x is not None else "-"


if __name__ == "__main__":
    sys.exit(main())
