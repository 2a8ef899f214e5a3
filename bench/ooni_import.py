"""`probe import ooni` speed and memory on a large JSONL file (issue 12).

    .venv/bin/python bench/ooni_import.py                 # 100,000 measurements
    .venv/bin/python bench/ooni_import.py --count 20000   # quicker

The input is made by replicating the vendored corpus (tests/fixtures/ooni/*.jsonl.gz, real and
QA OONI measurements), each copy with its own report id so that nothing is a duplicate. The
import runs as a subprocess (`probe import ooni FILE --db DB`); its wall time and peak RSS
(ru_maxrss of the child) are printed, with measurements per second. To show that memory stays
flat, the same import on a tenth of the file is run too: the two peaks should be close.
Loopback-free: touches no network.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script (bench/ooni_import.py): bench.children below

from bench.children import run_child  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "ooni"


def make_input(path: Path, count: int) -> int:
    """Write ``count`` measurements (the corpus, replicated) to ``path``; returns its size."""
    base = []
    for f in sorted(CORPUS.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            base += [json.loads(line) for line in fh if line.strip()]
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            m = dict(base[i % len(base)])
            m["report_id"] = f"20260101T000000Z_webconnectivity_XX_{i // 500:06d}_n1_bench"
            m["measurement_uid"] = f"bench-{i:08d}"
            out.write(json.dumps(m, separators=(",", ":")) + "\n")
    return path.stat().st_size


#: Targets: the memory budget of issue 11's commands, and flat memory (10x the input may not
#: cost more than this ratio of the small import's peak).
PEAK_MIB = 200.0
FLAT_RATIO = 1.25


def run(path: Path, db: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one import in a child process."""
    r = run_child([sys.executable, "-m", "probe", "import", "ooni", str(path), "--db", str(db)],
                  timeout=4 * 3600, cwd=ROOT)  # fmt: skip
    if r.returncode != 0 or r.timed_out:
        raise SystemExit(f"probe import ooni failed ({r.returncode}): {r.stderr[-1000:]}")
    return r.wall_s, r.cpu_s, r.maxrss_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.jsonl", Path(tmp) / "big.jsonl"
        make_input(small, args.count // 10)
        size = make_input(big, args.count)
        load0 = os.getloadavg()
        t_small, cpu_small, rss_small = run(small, Path(tmp) / "small.db")
        load1 = os.getloadavg()
        t_big, cpu_big, rss_big = run(big, Path(tmp) / "big.db")
        load2 = os.getloadavg()
        n_small = args.count // 10
        print(f"input: {args.count} measurements, {size / 1e6:.0f} MB JSONL")
        print(f"{n_small:>7} measurements: {t_small:7.1f} s wall ({n_small / t_small:5.0f}/s), "
              f"{cpu_small:6.1f} s CPU ({n_small / cpu_small:5.0f}/s of CPU), peak RSS "
              f"{rss_small:.0f} MiB, load {load0[0]:.1f}-{load1[0]:.1f}")  # fmt: skip
        print(f"{args.count:>7} measurements: {t_big:7.1f} s wall ({args.count / t_big:5.0f}/s), "
              f"{cpu_big:6.1f} s CPU ({args.count / cpu_big:5.0f}/s of CPU), peak RSS "
              f"{rss_big:.0f} MiB, load {load1[0]:.1f}-{load2[0]:.1f}")  # fmt: skip
        ratio = rss_big / rss_small
        print(f"{'PASS' if rss_big <= PEAK_MIB else 'FAIL'}  peak RSS <= {PEAK_MIB:.0f} MiB: "
              f"{rss_big:.0f} MiB")
        print(f"{'PASS' if ratio <= FLAT_RATIO else 'FAIL'}  flat: peak at 10x the input <= "
              f"{FLAT_RATIO} x the small import's: {ratio:.2f}")
        per_small, per_big = cpu_small / n_small, cpu_big / args.count
        print(f"CPU per measurement: {per_small * 1e3:.1f} ms (small), {per_big * 1e3:.1f} ms "
              f"(10x): ratio {per_big / per_small:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
