"""A small multi-vantage database for the HTML report's tests: verdicts that change over runs."""

from __future__ import annotations

from pathlib import Path

from store_samples import sample_measurement

from probe.core.model import Verdict
from probe.store import Store

#: Verdict, stage and reason of each kind used below.
KINDS = {
    "ok": Verdict("ok", None, None, ("http/match",), "test-1"),
    "hijacked": Verdict("hijacked", "dns", 0, ("dns/blockpage:ooni.ru_1@95.213.158.61",), "test-1"),
    "reset": Verdict("reset", "tls", 1, ("tls/reset:192.0.2.10",), "test-1"),
    "blocked": Verdict("blocked", "http", 1, ("http/blockpage:test_1",), "test-1"),
    "blocked-tcp": Verdict("blocked", "tcp", 0, ("tcp/timeout:192.0.2.10",), "test-1"),
    "down": Verdict("down", "dns", 0, ("dns/nxdomain", "control/dns-nxdomain"), "test-1"),
}
#: vantage -> per URL index, the verdict kind in each of three runs (oldest first).
PLAN = {
    "msk-isp1": ["ok ok ok", "ok hijacked hijacked", "reset reset reset", "ok ok blocked",
                 "down down down", "ok ok ok"],
    "spb-isp2": ["ok ok ok", "hijacked hijacked hijacked", "ok ok ok", "blocked-tcp blocked-tcp ok",
                 "down down down", "ok ok ok"],
    "ams-vps": ["ok ok ok", "ok ok ok", "ok ok ok", "ok ok ok", "down down down", "ok ok ok"],
}
#: Latest verdicts (the last run of each vantage point), by vantage point.
LATEST = {vp: [plan.split()[-1].split("-")[0] for plan in rows] for vp, rows in PLAN.items()}


def build(path: Path) -> Path:
    """Write the sample database at ``path`` (three vantage points x three runs x six URLs)."""
    with Store.open(path) as s:
        for k, (vp, rows) in enumerate(PLAN.items()):
            vid = s.vantage(vp, asn=64500 + k, country="RU" if "isp" in vp else "NL")
            for r in range(3):
                run = s.start_run(vid, ["list.csv"], {})
                t = 1_790_000_000.0 + r * 86_400 + k * 600
                batch = [(sample_measurement(i, started=t + i), KINDS[plan.split()[r]])
                         for i, plan in enumerate(rows)]
                s.write(run, vid, batch)
                s.finish_run(run, "complete")
    return path
