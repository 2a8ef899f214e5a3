"""What a results database holds, read back for tests that scan it (the privacy checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def observed(db: Path) -> tuple[list[Any], str, bytes]:
    """Every stored measurement rebuilt, its observations' JSON (packed in the database since
    schema version 11: a scan of the file's bytes cannot see into them) and its DNS wire bytes."""
    from probe.store import Store

    with Store.open(db, readonly=True) as s:
        text = "\n".join(r[0] for r in s.conn.execute(
            "SELECT observations_json(data) FROM observations"))
        ms = [m for _, m in s.iter_measurements()]
    raw = b"".join(r.raw for m in ms for h in m.hops
                   for q in (*h.dns, *h.dns_control, *h.dns_probe) for r in q.replies)
    return ms, text, raw
