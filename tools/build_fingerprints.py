#!/usr/bin/env python3
"""Regenerate probe/data/fingerprints_*.csv from a copy of OONI blocking-fingerprints.

Usage::

    python tools/build_fingerprints.py [--src /work/shared/data/ooni-blocking-fingerprints]
                                       [--dest probe/data]

The upstream rows are validated (pattern type, location, scope, regexes compile, DNS patterns are
IP addresses), de-duplicated by name, and written back in the upstream column order so that users
can extend the set with their own file in exactly the same format (``--fingerprints PATH``).
Rows are facts from "OONI blocking-fingerprints" (github.com/ooni/blocking-fingerprints); the
NOTICE written beside them credits the source. Our own additions live in
probe/data/fingerprints_extra.csv, which this script leaves alone.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probe.inputs.fingerprints import COLUMNS, FingerprintError, parse_rows  # noqa: E402

DEFAULT_SRC = Path("/work/shared/data/ooni-blocking-fingerprints")
UPSTREAM = (
    "OONI blocking-fingerprints (https://github.com/ooni/blocking-fingerprints), "
    "commit 171641e6 (2024-10-20)"
)

NOTICE = """\
Fingerprint data in this directory
==================================

fingerprints_dns.csv and fingerprints_http.csv are derived from
{upstream}.

That repository collects block-page and false-positive signatures from OONI's pipeline,
Censored Planet and the Citizen Lab. It ships no license file; its rows are facts, reproduced
here with credit to "OONI blocking-fingerprints". The files were produced by
tools/build_fingerprints.py, which validates every row and keeps the upstream columns unchanged:

    {columns}

Source files and their SHA-256 at build time:
{hashes}

fingerprints_extra.csv is maintained by the probe project: a few well-known false positives
(bot challenges) that the upstream set lacks. Each row names its source in the `source` and
`notes` columns.

Geo data: the probe ships no IP-to-ASN database. `probe geo update` downloads
ip2asn-combined.tsv.gz from iptoasn.com (public domain data, PDDL) into the user's data
directory; MaxMind GeoLite2 or DB-IP .mmdb files can be used instead (their own licenses apply).
"""


def build(src: Path, dest: Path) -> dict[str, int]:
    """Validate the upstream CSVs and write the packaged copies. Returns row counts."""
    counts: dict[str, int] = {}
    hashes = []
    for name in ("fingerprints_dns.csv", "fingerprints_http.csv"):
        path = src / name
        raw = path.read_bytes()
        hashes.append(f"    {name}  {hashlib.sha256(raw).hexdigest()}")
        text = raw.decode("utf-8-sig")
        rows = list(csv.DictReader(text.splitlines()))
        # parse_rows raises FingerprintError naming file:line for any invalid row.
        parse_rows(rows, origin=str(path))
        seen: set[str] = set()
        out_rows = []
        for row in rows:
            if row["name"] in seen:
                continue
            seen.add(row["name"])
            out_rows.append({c: (row.get(c) or "") for c in COLUMNS})
        with (dest / name).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(out_rows)
        counts[name] = len(out_rows)
    (dest / "NOTICE-fingerprints.txt").write_text(
        NOTICE.format(upstream=UPSTREAM, columns=",".join(COLUMNS), hashes="\n".join(hashes)),
        encoding="utf-8",
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--dest", type=Path, default=ROOT / "probe" / "data")
    args = ap.parse_args(argv)
    try:
        counts = build(args.src, args.dest)
    except (OSError, FingerprintError) as exc:
        print(f"build_fingerprints: {exc}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}: {n} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
