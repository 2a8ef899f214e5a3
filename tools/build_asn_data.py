#!/usr/bin/python3
"""Regenerate probe/data/ip-asn.bin from Debian's IPFire Location database.

Usage (Debian's own Python: the reader of the database is a Debian package)::

    sudo apt-get install libloc-database python3-location
    /usr/bin/python3 tools/build_asn_data.py [--src /usr/share/libloc-location/location.db]

The IPFire Location database (https://location.ipfire.org/) is licensed CC BY-SA 4.0 and is
packaged by Debian as ``libloc-database``. This script keeps, for every network (the most
specific one wins where they nest, as in libloc's own lookups), the AS number and the country,
and the name of every AS, and writes them
in probe's packed format (probe/inputs/geo/asndata.py). The result is an adaptation of that database and
is distributed under the same license: probe/data/NOTICE-ip-asn.txt says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probe.inputs.geo.asndata import pack  # noqa: E402

DEFAULT_SRC = Path("/usr/share/libloc-location/location.db")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--dest", type=Path, default=ROOT / "probe" / "data" / "ip-asn.bin")
    args = parser.parse_args()

    import ipaddress

    import location  # Debian's python3-location

    db = location.Database(str(args.src))

    def ranges() -> Iterator[tuple[int, int, int, int, str]]:
        for net in db.networks:  # nested: pack() lets the most specific win, as libloc does
            first = ipaddress.ip_address(net.first_address)
            last = ipaddress.ip_address(net.last_address)
            yield first.version, int(first), int(last), int(net.asn or 0), net.country_code or ""

    names = {int(a.number): a.name for a in db.ases}
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(db.created_at))
    meta = {
        "name": "IPFire Location database (Debian package libloc-database)",
        "source": "https://location.ipfire.org/ via Debian libloc-database",
        "vendor": db.vendor,
        "license": "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)",
        "created": created,
        "notice": "NOTICE-ip-asn.txt",
        "modified": "networks reduced to AS number and country (most specific wins); AS names kept",
    }
    counts = pack(args.dest, ranges(), names, meta)
    print(f"wrote {args.dest} ({args.dest.stat().st_size} bytes): {counts}; data of {created}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
