"""Throttling in the lab: a censor that polices one site's TLS connections (by SNI) to a few
few KB/s while the other sites run at full speed, next to its benign look-alikes: a site
slow for everyone, and a slow network for everyone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]  # transfer speeds; ~40 s by design

REFERENCES = ("clean", "tls-rst", "tls-drop", "http-rst", "http-drop")
TARGET = "tls-fin"


def _run(lab: Any, tmp: Path, name: str) -> dict[str, tuple[str, list[str]]]:
    from probe.lab.sites import DOMAIN

    urls = [f"https://{s}.{DOMAIN}/large/128" for s in (*REFERENCES, TARGET)]
    urls.append(f"https://trickle.{DOMAIN}/")
    db = tmp / f"{name}.db"
    # Throttled and trickled transfers take seconds: longer HTTP timeouts than the lab's.
    done = lab.probe(urls, db, extra=["--http-timeout", "50", "--deadline", "60"])
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(db)
    rows = con.execute("SELECT domain, verdict, reasons FROM measurements WHERE final = 1").fetchall()
    return {d.split(".")[0]: (v, json.loads(r)) for d, v, r in rows}


def test_a_censor_throttling_one_sni_is_found_and_a_slow_server_is_not(lab: Any, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor

    lab.apply(Censor(forward=(
        f"-p tcp --dport 443 -m string --algo bm --string {TARGET}.lab.example -j CONNMARK --set-mark 0x7",
        "-p tcp --sport 443 -m connmark --mark 0x7 -m hashlimit --hashlimit-above 4kb/s "
        "--hashlimit-burst 4kb --hashlimit-mode srcip,srcport,dstip,dstport --hashlimit-name labthr -j DROP",
    )))  # fmt: skip
    try:
        got = _run(lab, tmp_path, "throttled")
    finally:
        lab.reset()
    verdict, reasons = got[TARGET]
    assert verdict == "throttled", got
    assert reasons[0].startswith("http/throttled:") and reasons[1].startswith("control/http-speed:")
    assert all(got[r][0] == "ok" for r in REFERENCES), got
    # The server itself trickles: slow here and at the control, so not throttling.
    verdict, reasons = got["trickle"]
    assert verdict == "ok" and any(r.startswith("control/http-speed:") for r in reasons), got


def test_a_slow_network_for_everyone_throttles_nothing(lab: Any, tmp_path: Path) -> None:
    lab.set_bandwidth("4mbit")
    try:
        got = _run(lab, tmp_path, "slow-network")
    finally:
        lab.set_bandwidth(None)
    assert not [k for k, (v, _) in got.items() if v == "throttled"], got
    assert got[TARGET][0] == "ok"
