"""Offline IP data: ip2asn TSV and .mmdb lookups, `probe geo update` against a loopback server."""

from __future__ import annotations

import gzip
import http.server
import ipaddress
import json
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.inputs.geo import (
    GeoDB,
    GeoError,
    GeoInfo,
    bundled_geo_path,
    default_geo_path,
    default_geo_sources,
    describe_source,
    geo_url,
    open_default_geo,
    update_geo,
)
from probe.inputs.geo.asndata import PackedTable, pack

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


def test_update_downloads_packs_and_installs(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "data" / "ip-asn.bin"
    assert update_geo(f"{server}/ip2asn.tsv.gz", dest) == dest
    packed, tsv = GeoDB.open(dest), GeoDB.open(FIXTURE)
    for ip in ("10.66.1.1", "10.66.2.10", "10.66.2.250", "10.66.2.251", "10.66.3.1", "192.0.2.255",
               "198.51.100.4", "203.0.113.9", "2001:db8::1", "::ffff:198.51.100.4", "10.67.0.1"):
        assert packed.lookup(ip) == tsv.lookup(ip), ip
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ip-asn.bin"]


def test_update_records_source_license_and_the_date_of_the_data(server: str, tmp_path: Path) -> None:
    os.utime(tmp_path / "www" / "ip2asn.tsv.gz", (1_700_000_000, 1_700_000_000))  # Last-Modified
    dest = update_geo(f"{server}/ip2asn.tsv.gz", tmp_path / "ip-asn.bin", license="CC0 (test)")
    info = describe_source(dest)
    assert info["format"] == "packed"
    assert info["source"] == f"{server}/ip2asn.tsv.gz"
    assert info["license"] == "CC0 (test)"
    assert info["created"] == "2023-11-14T22:13:20Z"
    assert info["age_days"] >= 1000 and info["fetched"]


def test_update_uses_the_configured_url(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_GEO_URL", f"{server}/ip2asn.tsv.gz")
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path / "data"))
    assert geo_url() == f"{server}/ip2asn.tsv.gz"
    assert update_geo() == tmp_path / "data" / "ip-asn.bin"
    # The download now takes precedence over the bundled table.
    assert default_geo_sources() == [tmp_path / "data" / "ip-asn.bin"]
    geo = open_default_geo()
    assert geo is not None and geo.asn("10.66.3.1") == 64520


def test_update_with_invalid_content_keeps_the_previous_database(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "ip-asn.bin"
    update_geo(f"{server}/ip2asn.tsv.gz", dest)
    with pytest.raises(GeoError, match=r"not a valid ip2asn table: .*junk\.tsv\.gz:1: expected 5"):
        update_geo(f"{server}/junk.tsv.gz", dest)
    assert GeoDB.open(dest).asn("10.66.2.10") == 64510
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ip-asn.bin", "www"]
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
    dest = tmp_path / "geo.bin"
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
    assert "not a valid ip2asn table" in res.output


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path))
    assert default_geo_path() == tmp_path / "ip-asn.bin"
    monkeypatch.delenv("PROBE_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_geo_path() == tmp_path / "xdg" / "probe" / "ip-asn.bin"


def test_update_refuses_an_mmdb_url_without_a_destination(server: str) -> None:
    with pytest.raises(GeoError, match="needs --dest"):
        update_geo(f"{server}/asn.mmdb")


def test_update_with_a_corrupt_mmdb_leaves_nothing(server: str, tmp_path: Path) -> None:
    (tmp_path / "www" / "bad.mmdb").write_bytes(b"no")
    with pytest.raises(GeoError, match="not a valid geo database"):
        update_geo(f"{server}/bad.mmdb", tmp_path / "geo" / "asn.mmdb")
    assert list((tmp_path / "geo").iterdir()) == []


def test_update_installs_an_mmdb(server: str, tmp_path: Path) -> None:
    write_mmdb(
        tmp_path / "www" / "asn.mmdb", {"192.0.2.0/24": {"autonomous_system_number": 64496}}, "GeoLite2-ASN"
    )
    dest = tmp_path / "geo" / "asn.mmdb"
    update_geo(f"{server}/asn.mmdb", dest)
    assert GeoDB.open(dest).asn("192.0.2.1") == 64496


# --- the packed table and the bundled data ----------------------------------------------------------
def test_packed_table_lets_the_most_specific_range_win(tmp_path: Path) -> None:
    def v4(a: str) -> int:
        return int(ipaddress.IPv4Address(a))

    ranges = [
        (4, v4("10.0.0.0"), v4("10.255.255.255"), 64500, "AA"),  # a /8 ...
        (4, v4("10.1.0.0"), v4("10.1.255.255"), 64501, "BB"),  # ... with a /16 inside
        (4, v4("10.1.2.0"), v4("10.1.2.255"), 64502, "CC"),  # ... with a /24 inside that
        (4, v4("11.0.0.0"), v4("11.0.0.255"), 0, ""),  # nothing known: a gap
        (6, int(ipaddress.IPv6Address("2001:db8::")), int(ipaddress.IPv6Address("2001:db8:ffff:ffff::")) - 1
         + (1 << 64), 64503, "DD"),
    ]
    path = tmp_path / "t.bin"
    counts = pack(path, reversed(ranges), {64501: "B-NET", 64502: "C-NET"}, {"source": "test"})
    table = PackedTable(path)
    assert counts["ipv4_ranges"] == 6 and table.meta == {"source": "test"}

    def look(a: str) -> tuple[int, str] | None:
        return table.lookup(ipaddress.ip_address(a))

    assert look("9.255.255.255") is None
    assert look("10.0.0.1") == (64500, "AA")
    assert look("10.1.0.1") == (64501, "BB")
    assert look("10.1.2.3") == (64502, "CC")
    assert look("10.1.3.0") == (64501, "BB")  # back to the /16 after the /24
    assert look("10.2.0.0") == (64500, "AA")  # back to the /8 after the /16
    assert look("11.0.0.1") is None and look("255.255.255.255") is None
    assert look("2001:db8:1::1") == (64503, "DD") and look("2001:db9::1") is None
    assert look("::ffff:10.1.2.3") == (64502, "CC")
    assert table.org(64502) == "C-NET" and table.org(64500) == "" and table.org(1) == ""
    table.close()


@pytest.mark.parametrize("content", [b"PRBASN1\n", b"PRBASN1\n\x05\x00\x00\x00{}"])
def test_truncated_packed_table_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(content)
    with pytest.raises(GeoError, match="not a valid packed ASN table"):
        GeoDB.open(path)


def test_bundled_data_is_used_on_a_fresh_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path / "nothing-downloaded"))
    assert default_geo_sources() == [bundled_geo_path()]
    geo = open_default_geo()
    assert geo is not None
    # Offline lookups in the shipped table (no packet is sent for them).
    assert geo.lookup("8.8.8.8") == GeoInfo(15169, "US", "GOOGLE")
    assert geo.asn("2001:4860:4860::8888") == 15169
    assert geo.lookup("10.66.2.10") is None  # private space is nobody's
    info = describe_source(bundled_geo_path())
    assert info["license"].startswith("CC BY-SA 4.0") and "ipfire" in info["source"].lower()
    assert (bundled_geo_path().parent / info.get("notice", "NOTICE-ip-asn.txt")).exists()


def test_cli_path_shows_the_data_in_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path))
    res = CliRunner().invoke(cli, ["geo", "path"])
    assert res.exit_code == 0, res.output
    assert "bundled" in res.output and "CC BY-SA 4.0" in res.output and "days old" in res.output
    res = CliRunner().invoke(cli, ["geo", "path", "--json"])
    assert json.loads(res.output)["format"] == "packed"
    res = CliRunner().invoke(cli, ["geo", "lookup", "8.8.8.8"])
    assert res.exit_code == 0 and "AS15169\tUS\tGOOGLE" in res.output


def test_update_never_touches_files_beside_the_table_and_keeps_it_when_the_new_one_is_empty(
    server: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data" / "ip-asn.bin"
    dest.parent.mkdir()
    # Files of the user's that carry the names the update once used for its temporary files.
    mine = {dest.parent / "ip-asn.bin.download": b"mine", dest.parent / "ip-asn.bin.tmp": b"also mine"}
    for path, data in mine.items():
        path.write_bytes(data)
    update_geo(f"{server}/ip2asn.tsv.gz", dest)
    with pytest.raises(GeoError):
        update_geo(f"{server}/junk.tsv.gz", dest)
    # A table with no usable range (unrouted space only) is refused before it replaces the old one.
    unrouted = b"0.0.0.0\t0.255.255.255\t0\tNone\tNot routed\n"
    (tmp_path / "www" / "empty.tsv.gz").write_bytes(gzip.compress(unrouted))
    with pytest.raises(GeoError, match="no address ranges"):
        update_geo(f"{server}/empty.tsv.gz", dest)
    assert GeoDB.open(dest).asn("10.66.2.10") == 64510
    assert {p: p.read_bytes() for p in mine} == mine
    assert sorted(p.name for p in dest.parent.iterdir()) == [
        "ip-asn.bin", "ip-asn.bin.download", "ip-asn.bin.tmp"]
