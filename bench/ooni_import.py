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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def run(path: Path, db: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one import in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "probe", "import", "ooni", str(path), "--db", str(db)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: run the small import first.
    return dt, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.jsonl", Path(tmp) / "big.jsonl"
        make_input(small, args.count // 10)
        size = make_input(big, args.count)
        t_small, rss_small = run(small, Path(tmp) / "small.db")
        t_big, rss_big = run(big, Path(tmp) / "big.db")
        print(f"input: {args.count} measurements, {size / 1e6:.0f} MB JSONL")
        print(f"{args.count // 10:>7} measurements: {t_small:7.1f} s  {args.count // 10 / t_small:7.0f}/s  "
              f"peak RSS {rss_small:.0f} MiB")  # fmt: skip
        print(f"{args.count:>7} measurements: {t_big:7.1f} s  {args.count / t_big:7.0f}/s  "
              f"peak RSS {rss_big:.0f} MiB")  # fmt: skip
        print(f"peak RSS ratio (10x the input): {rss_big / rss_small:.2f}")


if __name__ == "__main__":
    main()
