"""Offline IP data: ip2asn TSV and .mmdb lookups, `probe geo update` against a loopback server."""

from __future__ import annotations

import gzip
import http.server
import ipaddress
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.geo import GeoDB, GeoError, GeoInfo, default_geo_path, update_geo

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "geo" / "ip2asn-fixture.tsv"


# --- a tiny MaxMind DB writer, so the .mmdb path is tested without downloaded data ---------------
def _ctrl(kind: int, size: int) -> bytes:
    assert size < 285
    small, extra = (size, b"") if size < 29 else (29, bytes([size - 29]))
    if kind <= 7:
        return bytes([(kind << 5) | small]) + extra
    return bytes([small, kind - 7]) + extra


class U16(int):
    pass


class U64(int):
    pass


def _enc(value: Any) -> bytes:
    if isinstance(value, U16 | U64):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        return _ctrl(5 if isinstance(value, U16) else 9, len(raw)) + raw
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        return _ctrl(6, len(raw)) + raw
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(_enc(v) for v in value)
    assert isinstance(value, dict)
    return _ctrl(7, len(value)) + b"".join(_enc(k) + _enc(v) for k, v in value.items())


def write_mmdb(path: Path, records: dict[str, dict[str, Any]], db_type: str) -> None:
    """An IPv4 MaxMind DB (record size 24) mapping each prefix to its record."""
    trie: list[list[Any]] = [[None, None]]
    data = b""
    for prefix, record in records.items():
        net = ipaddress.ip_network(prefix)
        bits = format(int(net.network_address), "032b")[: net.prefixlen]
        offset, data = len(data), data + _enc(record)
        node = 0
        for k, bit in enumerate(bits):
            b = int(bit)
            if k == len(bits) - 1:
                trie[node][b] = ("data", offset)
            else:
                if trie[node][b] is None:
                    trie.append([None, None])
                    trie[node][b] = len(trie) - 1
                node = trie[node][b]
    n = len(trie)

    def rec(v: Any) -> int:
        if v is None:
            return n
        if isinstance(v, tuple):
            return n + 16 + v[1]
        return v

    tree = b"".join(
        struct.pack(">I", rec(left))[1:] + struct.pack(">I", rec(right))[1:] for left, right in trie
    )
    meta = {
        "node_count": n,
        "record_size": U16(24),
        "ip_version": U16(4),
        "database_type": db_type,
        "languages": ["en"],
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(1_700_000_000),
        "description": {"en": "probe test database"},
    }
    path.write_bytes(tree + b"\x00" * 16 + data + b"\xab\xcd\xefMaxMind.com" + _enc(meta))


# --- TSV ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def geo() -> GeoDB:
    return GeoDB.open(FIXTURE)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("10.66.2.10", GeoInfo(64510, "XB", "LAB-HOSTING (lab sites)")),
        ("10.66.2.250", GeoInfo(64511, "XA", "LAB-BLOCKPAGE (ISP block-page server)")),
        ("192.0.2.255", GeoInfo(64496, "US", "DOC-NET-1 (RFC 5737 TEST-NET-1)")),
        ("2001:db8::1", GeoInfo(64499, "NL", "DOC-NET-V6 (RFC 3849)")),
        ("[2001:db8::1]", GeoInfo(64499, "NL", "DOC-NET-V6 (RFC 3849)")),
        ("::ffff:198.51.100.4", GeoInfo(64497, "DE", "DOC-NET-2 (RFC 5737 TEST-NET-2)")),
    ],
)
def test_tsv_lookup(geo: GeoDB, ip: str, expected: GeoInfo) -> None:
    assert geo.lookup(ip) == expected


@pytest.mark.parametrize("ip", ["0.1.2.3", "10.67.0.1", "2001:db9::1", "not-an-ip"])
def test_unrouted_unknown_and_invalid_addresses_have_no_info(geo: GeoDB, ip: str) -> None:
    assert geo.lookup(ip) is None
    assert geo.asn(ip) == 0


def test_gzip_tsv_and_unsorted_rows_are_read(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    path = tmp_path / "db.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join(reversed(lines)) + "\n").encode()))
    assert GeoDB.open(path).lookup("203.0.113.9") == GeoInfo(64498, "RU", "DOC-NET-3 (RFC 5737 TEST-NET-3)")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1.0.0.0\t1.0.0.255", "expected 5 tab-separated columns"),
        ("1.0.0.0\tbogus\t13335\tUS\tCF", "does not appear to be an IPv4 or IPv6 address"),
        ("1.0.0.9\t1.0.0.0\t13335\tUS\tCF", "bad range"),
        ("1.0.0.0\t::1\t13335\tUS\tCF", "bad range"),
    ],
)
def test_bad_tsv_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("1.1.1.0\t1.1.1.255\t13335\tUS\tok\n" + line + "\n")
    with pytest.raises(GeoError, match=f"bad.tsv:2: .*{message}"):
        GeoDB.open(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="no such file"):
        GeoDB.open(tmp_path / "none.tsv")


# --- mmdb -----------------------------------------------------------------------------------------
def test_mmdb_asn_and_country_databases_combine(tmp_path: Path) -> None:
    asn = tmp_path / "asn.mmdb"
    country = tmp_path / "country.mmdb"
    write_mmdb(
        asn,
        {"192.0.2.0/24": {"autonomous_system_number": 64496, "autonomous_system_organization": "DOC-NET-1"}},
        "GeoLite2-ASN",
    )
    write_mmdb(
        country,
        {"192.0.2.0/24": {"country": {"iso_code": "us"}}, "198.51.100.0/24": {"country": {"iso_code": "DE"}}},
        "GeoLite2-Country",
    )
    db = GeoDB([asn, country])
    assert db.lookup("192.0.2.7") == GeoInfo(64496, "US", "DOC-NET-1")
    assert db.lookup("198.51.100.1") == GeoInfo(0, "DE", "")
    assert db.lookup("203.0.113.1") is None
    assert db.lookup("2001:db8::1") is None  # an IPv4-only database
    db.close()


def test_corrupt_mmdb_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"not a database")
    with pytest.raises(GeoError, match=r"not a readable \.mmdb"):
        GeoDB.open(path)


# --- probe geo update -----------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server serving a directory with the fixture (gzip) and a junk file."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "ip2asn.tsv.gz").write_bytes(gzip.compress(FIXTURE.read_bytes()))
    (root / "junk.tsv.gz").write_bytes(b"<html>captive portal</html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_update_downloads_checks_and_installs(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data" / "ip2asn.tsv.gz"
    assert update_geo(f"{server}/ip2asn.tsv.gz", dest) == dest
    assert GeoDB.open(dest).asn("10.66.2.10") == 64510
    assert not dest.with_name(dest.name + ".part").exists()


def test_update_with_invalid_content_keeps_the_previous_database(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "ip2asn.tsv.gz"
    shutil.copy(FIXTURE, dest)
    with pytest.raises(GeoError, match="not a valid geo database"):
        update_geo(f"{server}/junk.tsv.gz", dest)
    assert GeoDB.open(dest).asn("10.66.2.10") == 64510


def test_update_reports_http_errors(server: str, tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="HTTP 404"):
        update_geo(f"{server}/missing.tsv.gz", tmp_path / "x.tsv.gz")


def test_update_offline_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GeoError, match="are you online"):
        update_geo(f"http://127.0.0.1:{port}/ip2asn.tsv.gz", tmp_path / "x.tsv.gz", timeout=5)


def test_cli_update_and_lookup(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "geo.tsv.gz"
    runner = CliRunner()
    res = runner.invoke(cli, ["geo", "update", "--url", f"{server}/ip2asn.tsv.gz", "--dest", str(dest)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["geo", "lookup", "--db", str(dest), "10.66.3.1", "100.64.0.1"])
    assert res.exit_code == 0, res.output
    assert "AS64520\tXC" in res.output and "100.64.0.1\tunknown" in res.output


def test_cli_update_failure_exits_1(server: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli, ["geo", "update", "--url", f"{server}/junk.tsv.gz", "--dest", str(tmp_path / "x")]
    )
    assert res.exit_code == 1
    assert "not a valid geo database" in res.output


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path))
    assert default_geo_path() == tmp_path / "ip2asn-combined.tsv.gz"
    monkeypatch.delenv("PROBE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_geo_path() == tmp_path / "xdg" / "probe" / "ip2asn-combined.tsv.gz"
    res = CliRunner().invoke(cli, ["geo", "lookup", "192.0.2.1"])
    assert res.exit_code == 1 and "probe geo update" in res.output


def test_update_to_an_mmdb_destination_checks_it_as_mmdb(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "asn.mmdb"
    with pytest.raises(GeoError, match="not a valid geo database"):
        update_geo(f"{server}/ip2asn.tsv.gz", dest)  # a TSV is not an .mmdb
    assert sorted(p.name for p in tmp_path.iterdir()) == ["www"]


def test_update_installs_an_mmdb(server: str, tmp_path: Path) -> None:
    write_mmdb(
        tmp_path / "www" / "asn.mmdb", {"192.0.2.0/24": {"autonomous_system_number": 64496}}, "GeoLite2-ASN"
    )
    dest = tmp_path / "geo" / "asn.mmdb"
    update_geo(f"{server}/asn.mmdb", dest)
    assert GeoDB.open(dest).asn("192.0.2.1") == 64496
