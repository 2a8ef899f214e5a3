"""The vantage point's identity and privacy in the lab.

The probe learns its address from the lab's STUN server (10.66.2.2:3478, behind the censor like
the sites) and its resolver's egress from the lab's whoami name; the fixture IP data maps the
client's network to AS64501/XA. The echo site shows the client's real address (10.66.1.2) in its
title, body, an X-Client-IP header and a redirect's Location; the whoami name, asked directly of
the authoritative server, answers with it too. After the runs, no byte of the database, its WAL
or its shared-memory file holds that address, in text or packed form.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from stored import observed

from probe.lab import topology
from probe.lab.sites import WHOAMI

pytestmark = pytest.mark.lab

GEO = str(Path(__file__).resolve().parents[1] / "fixtures" / "geo" / "ip2asn-fixture.tsv")
CLIENT = topology.CLIENT.encode()
CLIENT_PACKED = bytes(int(x) for x in topology.CLIENT.split("."))
ECHO = "echo.lab.example"


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_identity_is_learned_and_the_client_address_is_scrubbed(lab: Any, tmp_path: Path) -> None:
    db = tmp_path / "identity.db"
    urls = [f"http://{ECHO}/", f"https://{ECHO}/", f"http://{ECHO}/redirect"]
    proc = lab.probe(urls, db, extra=["--geo", GEO])
    assert proc.returncode == 0, proc.stderr
    # Asked of the authoritative server directly, the whoami name answers the client's own address.
    proc = lab.probe([f"http://{WHOAMI}/"], db,
                     extra=["--geo", GEO, "--resolver", f"{topology.AUTH_DNS}:53"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    runs = _query(db, "SELECT asn, country, resolver_ip, resolver_asn, network_changed FROM runs "
                      "ORDER BY id")  # fmt: skip
    # Through the ISP resolver, the whoami name sees the censor's outside address (AS64510 in
    # the fixture); asked directly, it sees our own address, which is never stored.
    assert runs == [(64501, "XA", topology.CENSOR_OUT, 64510, 0), (64501, "XA", None, 64501, 0)]
    assert _query(db, "SELECT asn, country FROM vantage_points") == [(64501, "XA")]

    # The echo site did show the address: what was stored says [scrubbed] in its place.
    titles = [t for (t,) in _query(db, "SELECT title FROM http_requests WHERE title IS NOT NULL")]
    assert "Your address is [scrubbed]" in titles
    ms, text, raw = observed(db)
    assert any("[scrubbed]" in v for m in ms for h in m.hops if h.http for _, v in h.http.headers)
    # The packed observations, read back: the address is in none of them either.
    assert CLIENT.decode() not in text and CLIENT_PACKED not in raw
    locations = [loc for (loc,) in _query(db, "SELECT location FROM http_requests") if loc]
    assert any(loc.endswith("client=[scrubbed]") for loc in locations)
    answers = [v for (v,) in _query(db, "SELECT a.value FROM dns_answers a JOIN dns_replies r ON "
                                        "r.id = a.reply_id JOIN dns_queries q ON q.id = r.query_id "
                                        f"WHERE q.hostname = '{WHOAMI}'")]  # fmt: skip
    assert answers == ["[scrubbed]"]

    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            data = path.read_bytes()
            assert CLIENT not in data, f"{path} holds the client's address"
            assert CLIENT_PACKED not in data, f"{path} holds the client's address (packed)"


def test_pcap_files_hold_headers_only_and_never_the_client_address(lab: Any, tmp_path: Path) -> None:
    # Before, every TCP record kept the head of its payload (the echo site's X-Client-IP, its
    # title) and every IP header the client's address; the whoami reply carried it packed.
    from scapy.layers.inet import IP, TCP
    from scapy.utils import RawPcapReader

    from probe.measure.pcap import PLACEHOLDER

    db, pcaps = tmp_path / "pcap.db", tmp_path / "pcaps"
    proc = lab.probe([f"http://{ECHO}/", f"https://{ECHO}/"], db,
                     extra=["--geo", GEO, "--pcap", str(pcaps)])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = lab.probe([f"http://{WHOAMI}/"], db, extra=[
        "--geo", GEO, "--resolver", f"{topology.AUTH_DNS}:53", "--pcap", str(pcaps)])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = sorted(pcaps.iterdir())
    assert [f.name for f in files] == ["run-1.pcap", "run-2.pcap"]
    udp = tcp = 0
    for f in files:
        data = f.read_bytes()
        assert CLIENT not in data and CLIENT_PACKED not in data, f"{f.name} holds the address"
        assert b"Your address" not in data and b"X-Client-IP" not in data
        for raw, meta in RawPcapReader(str(f)):
            pkt = IP(raw)
            assert pkt.dst == PLACEHOLDER and meta.wirelen == pkt.len >= len(raw)
            if pkt.haslayer(TCP):
                tcp += 1
                assert len(raw) == pkt.ihl * 4 + pkt[TCP].dataofs * 4
            else:
                udp += 1
    assert tcp and udp


def _holds_client(db: Path) -> list[str]:
    """The database files that hold the client's address, as text or packed, and
    ``observations`` when the stored observations hold it (they are compressed in the file, so
    they are read back: tests/stored.py)."""
    files = [path.name for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
             if path.exists() and (CLIENT in (data := path.read_bytes()) or CLIENT_PACKED in data)]
    _, text, raw = observed(db)
    return files + (["observations"] if CLIENT.decode() in text or CLIENT_PACKED in raw else [])


def test_without_stun_or_helper_the_sockets_own_address_is_still_scrubbed(
    lab: Any, tmp_path: Path
) -> None:
    # No STUN server answers (nothing listens on port 9) and no helper is asked: the public
    # address stays unknown. Without a NAT (the lab, IPv6, a server) the sites see the local
    # address of the probe's sockets, which the probe knows: before, the echo site's copies
    # of it were stored as they came (31 of them in one field report).
    db = tmp_path / "no-stun.db"
    urls = [f"http://{ECHO}/", f"https://{ECHO}/", f"http://{ECHO}/redirect"]
    proc = lab.probe(urls, db, control="none", stun="10.66.2.2:9", extra=["--geo", GEO])
    assert proc.returncode == 0, proc.stderr
    assert _holds_client(db) == []
    titles = [t for (t,) in _query(db, "SELECT title FROM http_requests WHERE title IS NOT NULL")]
    assert "Your address is [scrubbed]" in titles  # the site did echo it
    # Said at the start, at the end, and recorded with the run.
    assert "your public address is unknown (no STUN server answered)" in " ".join(proc.stderr.split())
    assert "public address stayed unknown" in proc.stdout
    (identity,) = _query(db, "SELECT identity FROM runs")[0]
    assert '"public_address": "unknown: no STUN server answered"' in identity


def test_the_helper_tells_the_address_when_no_stun_server_answers(lab: Any, tmp_path: Path) -> None:
    db = tmp_path / "helper-route.db"
    proc = lab.probe([f"http://{ECHO}/"], db, stun="10.66.2.2:9", extra=["--geo", GEO])
    assert proc.returncode == 0, proc.stderr
    assert "public address" not in proc.stderr  # learned: nothing to warn about
    (asn, identity) = _query(db, "SELECT asn, identity FROM runs")[0]
    # The helper saw the client on the lab's bypass link to it (10.66.3.2: AS64520 in the
    # fixture): the address that path leaves from, which is what a helper can tell.
    assert asn == 64520
    assert '"public_address": "learned from helper ' in identity
    assert _holds_client(db) == []
    for path in (db, Path(f"{db}-wal")):
        if path.exists():
            assert topology.CLIENT_CTL.encode() not in path.read_bytes()
    assert topology.CLIENT_CTL not in observed(db)[1]


def test_require_identity_refuses_to_measure_when_the_address_stays_unknown(
    lab: Any, tmp_path: Path
) -> None:
    db = tmp_path / "refused.db"
    proc = lab.probe([f"http://{ECHO}/"], db, control="none", stun="10.66.2.2:9",
                     extra=["--geo", GEO, "--require-identity"])  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "your public address is unknown" in proc.stderr and "--require-identity" in proc.stderr
    assert _query(db, "SELECT status FROM runs") == [("failed",)]
    assert _query(db, "SELECT count(*) FROM measurements") == [(0,)]
