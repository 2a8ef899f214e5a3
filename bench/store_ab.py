"""Store.write and reading back, this tree against another version's, in the same run.

    git archive c86cfa8 probe tests/unit/store_samples.py | tar -x -C /tmp/before
    .venv/bin/python -m bench.store_ab --before /tmp/before [--writes 6000] [--rounds 3]

Each round runs, in fresh subprocesses and alternating, each tree's ``Store.write`` of the same
realistic two-hop measurements (tests/unit/store_samples.py: every observation type, a control
per hop; two vantage points, batches of 64), then its ``iter_measurements`` over what it wrote
(the rebuild ``probe reclassify`` and the exports pay). Reports CPU per measurement, wall-clock
throughput and bytes on disk per measurement for each, and the ratio after / before per round:
the machine is shared, so only ratios measured side by side mean anything. Touches no network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
from pathlib import Path
tree, db, n, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [tree, tree + "/tests/unit"]
from store_samples import sample_measurement, sample_verdict
from probe.store import Store
assert Store.__module__.startswith("probe") and tree in sys.modules["probe"].__file__
half = n // 2
items = [(sample_measurement(i % half, started=1_790_000_000.0 + i), sample_verdict())
         for i in range(n)]
store = Store.open(db)
runs = [(store.start_run(v, [], {}), v) for v in (store.vantage("home"), store.vantage("vps"))]
cpu0, t0 = time.process_time(), time.perf_counter()
for i in range(0, n, batch):
    run_id, vid = runs[0] if i < half else runs[1]
    store.write(run_id, vid, items[i:min(i + batch, half if i < half else n)])
write_cpu, write_wall = time.process_time() - cpu0, time.perf_counter() - t0
store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
size = db.stat().st_size
cpu0 = time.process_time()
read = sum(1 for _ in store.iter_measurements())
read_cpu = time.process_time() - cpu0
store.close()
print(json.dumps({"write_cpu_ms": 1000 * write_cpu / n, "write_per_s": n / write_wall,
                  "bytes_per_measurement": size / n, "read_cpu_ms": 1000 * read_cpu / read}))
"""


def run(tree: Path, n: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(Path(tmp) / "w.db"),
                              str(n), str(batch)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the other tree (has probe/)")
    ap.add_argument("--writes", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = []
    for k in range(args.rounds):
        before = run(args.before.resolve(), args.writes, args.batch)
        after = run(ROOT, args.writes, args.batch)
        ratio = {key: round(after[key] / before[key], 2) for key in before}
        rounds.append({"before": before, "after": after, "after/before": ratio})
        print(f"round {k + 1}: " + json.dumps(rounds[-1]), flush=True)
    keys = rounds[0]["before"].keys()
    print("median after/before: " + json.dumps(
        {key: statistics.median(r["after/before"][key] for r in rounds) for key in keys}))


if __name__ == "__main__":
    main()
