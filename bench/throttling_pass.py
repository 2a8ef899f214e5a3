"""CPU of the throttling pass at the end of `probe run` (probe/judge/throttling.py ``judge_run``).

    .venv/bin/python -m bench.throttling_pass                         # 30,000 URLs
    .venv/bin/python -m bench.throttling_pass --urls 30000 --large-share 0.5 --before 402a0a9

Builds a synthetic run database through ``Store.write`` (realistic two-hop measurements from
tests/unit/store_samples.py: DNS with replies, TCP, TLS with a certificate chain, HTTP, a control
per hop with probe's helper's speed report), 90 % of them ``ok``, of which ``--large-share``
fetched a body of at least 64 KiB (the rest 2-60 KiB) and one, with ``--throttled``, far slower
than the others. Then times ``judge_run`` on copies of it: this tree's, and (``--before REV``)
the one of an older commit, loaded from git, side by side in the same process, alternating, and
prints the median CPU seconds of each and their ratio, with the verdicts each changed (they must
be the same). Touches no network.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))  # store_samples: hand-built Measurements


def _page(n: int, nbytes: int, transfer: float) -> Any:
    """A measurement whose final fetch moved ``nbytes`` in ``transfer`` seconds, control fast."""
    from store_samples import sample_measurement

    from probe.core.model import ControlObservation

    m = sample_measurement(n, body=b"")
    hop0, hop1 = m.hops
    http = dataclasses.replace(hop1.http, body=None, body_length=nbytes, wire_bytes=nbytes,
                               ttfb=0.05, duration=0.05 + transfer, path_rtt=0.03)  # fmt: skip
    control = ControlObservation(source="https://127.0.0.1:9443/", url=hop1.url, started=m.started,
                                 duration=0.3, http_status=200, http_body_length=nbytes,
                                 http_ttfb=0.02, http_transfer=0.004 * max(1, nbytes >> 16),
                                 http_wire_bytes=nbytes, http_rtt=0.02)  # fmt: skip
    return dataclasses.replace(m, hops=(hop0, dataclasses.replace(hop1, http=http, control=control)))


def build(path: Path, urls: int, large_share: float, throttled: bool, seed: int = 1) -> None:
    """The synthetic run database (one complete run of ``urls`` final measurements)."""
    from probe.core.model import Verdict
    from probe.store import Store

    rnd = random.Random(seed)
    ok = Verdict("ok", None, None, ("http/match",), "bench")
    blocked = Verdict("blocked", "tls", 1, ("tls/timeout:192.0.2.11",), "bench")
    with Store.open(path) as s:
        vid = s.vantage("bench")
        run = s.start_run(vid, [], {})
        batch: list[Any] = []
        for n in range(urls):
            large = rnd.random() < large_share
            nbytes = rnd.randint(64 << 10, 1 << 20) if large else rnd.randint(2 << 10, 60 << 10)
            transfer = 0.004 * max(1, nbytes >> 16) * rnd.uniform(0.8, 1.25)
            if throttled and n == urls // 2:
                nbytes, transfer = 256 << 10, 40.0  # a page far slower than the others
            verdict = ok if rnd.random() < 0.9 or (throttled and n == urls // 2) else blocked
            batch.append((_page(n, nbytes, transfer), verdict))
            if len(batch) == 500:
                s.write(run, vid, batch)
                batch = []
        if batch:
            s.write(run, vid, batch)
        s.finish_run(run, "complete")


def _module_at(rev: str) -> ModuleType:
    """probe/judge/throttling.py as of ``rev`` (a git revision), as a module of its own."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:probe/judge/throttling.py"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    spec = importlib.util.spec_from_loader(f"throttling_{rev}", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    exec(compile(src, f"{rev}:probe/judge/throttling.py", "exec"), mod.__dict__)
    return mod


def _time(mod: Any, db: Path, scratch: Path) -> tuple[float, list[tuple[int, str]]]:
    from probe.store import Store

    work = scratch / "work.db"
    shutil.copyfile(db, work)
    with Store.open(work, create=False) as s:
        s.conn.execute("SELECT count(*) FROM observations").fetchone()  # warm the page cache
        t0 = time.process_time()
        changes = mod.judge_run(s, 1)
        cpu = time.process_time() - t0
    work.unlink()
    return cpu, sorted((c.measurement_id, c.new.verdict) for c in changes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--urls", type=int, default=30_000)
    ap.add_argument("--large-share", type=float, default=0.2,
                    help="share of pages with a body of at least 64 KiB")
    ap.add_argument("--throttled", action="store_true", help="one page far slower than the rest")
    ap.add_argument("--before", metavar="REV", help="also time probe/judge/throttling.py of this commit")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from probe.judge import throttling
    mods: dict[str, Any] = {"after": throttling}
    if args.before:
        mods = {"before": _module_at(args.before), **mods}
    with tempfile.TemporaryDirectory() as d:
        scratch = Path(d)
        db = scratch / "run.db"
        t0 = time.monotonic()
        build(db, args.urls, args.large_share, args.throttled)
        built = time.monotonic() - t0
        cpu: dict[str, list[float]] = {k: [] for k in mods}
        changed: dict[str, list[tuple[int, str]]] = {}
        for _ in range(args.repeat):
            for name, mod in mods.items():
                secs, changed[name] = _time(mod, db, scratch)
                cpu[name].append(secs)
        out: dict[str, Any] = {
            "urls": args.urls, "large_share": args.large_share, "throttled": args.throttled,
            "db_mb": round(os.path.getsize(db) / 1e6, 1), "build_s": round(built, 1),
            "cpu_s": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
            "changed": {k: len(v) for k, v in changed.items()},
            "same_verdicts": len({json.dumps(v) for v in changed.values()}) == 1,
        }  # fmt: skip
        if "before" in cpu:
            before, after = statistics.median(cpu["before"]), statistics.median(cpu["after"])
            out["before_over_after"] = round(before / after, 1)
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
