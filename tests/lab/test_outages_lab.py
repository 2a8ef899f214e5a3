"""National isolation and outages in the lab: a censor that drops everything bound for "foreign"
prefixes (by the lab's own IP-to-country data) while "domestic" sites keep working, and the
same network with no censor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

FOREIGN = "10.66.2.26-10.66.2.49"
# The lab's sites live in 10.66.2.10-.39: the first ones "at home" (RU), the rest "abroad" (DE).
# The resolver's upstream (10.66.2.53) stays at home, as a national DNS would.
GEO = (
    "10.66.2.0\t10.66.2.25\t64500\tRU\tLAB-HOME\n"
    "10.66.2.26\t10.66.2.49\t64501\tDE\tLAB-ABROAD\n"
    "10.66.2.50\t10.66.2.255\t64500\tRU\tLAB-HOME\n"
)


def _sites() -> list[Any]:
    """The lab's sites that answer within the lab's timeouts (not the slow ones)."""
    from probe.lab.sites import SITES

    return [s for s in SITES if s.ip and s.kind not in ("slow", "trickle")]


def _outages(lab: Any, tmp: Path, censor: Any) -> list[dict[str, Any]]:

    geo = tmp / "lab-geo.tsv"
    geo.write_text(GEO)
    db = tmp / "iso.db"
    urls = [f"https://{s.name}/" for s in _sites()]
    lab.apply(censor)
    try:
        done = lab.probe(urls, db, extra=["--geo", str(geo)])
    finally:
        lab.reset()
    assert done.returncode == 0, done.stderr
    argv = [sys.executable, "-m", "probe", "outages", "--db", str(db), "--geo", str(geo), "--country", "RU",
            "--json"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_censor_that_cuts_the_country_off_is_isolation(lab: Any, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor

    found = _outages(lab, tmp_path, Censor(forward=(f"-m iprange --dst-range {FOREIGN} -j DROP",)))
    assert [o["state"] for o in found] == ["isolated"]
    abroad = [s for s in _sites() if 26 <= int(str(s.ip).rsplit(".", 1)[1]) <= 49]
    assert found[0]["evidence"].endswith(f" 0/{len(abroad)} abroad")


def test_the_same_network_without_a_censor_has_no_outage(lab: Any, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor

    assert _outages(lab, tmp_path, Censor()) == []


def test_a_resolver_that_stops_answering_is_a_dns_outage(lab: Any, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor

    sites = _sites()
    silent = Censor(resolver=tuple((s.name, "drop", (), 0.0) for s in sites))
    found = _outages(lab, tmp_path, silent)
    assert [o["state"] for o in found] == ["dns"]
    assert found[0]["evidence"].startswith("resolver silent for 100% of URLs while the control answered")
