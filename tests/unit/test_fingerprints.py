"""Fingerprint data files, the user-extensible CSV format and the matcher."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path

import pytest

from probe.inputs.fingerprints import (
    COLUMNS,
    SCAN_LIMIT,
    FingerprintError,
    default_fingerprints,
    load_fingerprints,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared/data/ooni-blocking-fingerprints")
HEADER = ",".join(COLUMNS)


def write(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_packaged_set_has_the_upstream_rows_and_our_false_positives() -> None:
    fps = default_fingerprints()
    names = {f.name for f in fps.all}
    assert {"ooni.cn_0", "ooni.ru_1", "probe.fp_cloudflare_just_a_moment"} <= names
    assert sum(f.false_positive for f in fps.all) > 400
    assert default_fingerprints() is fps  # loaded once


def test_packaged_files_credit_ooni_blocking_fingerprints() -> None:
    notice = (ROOT / "probe" / "data" / "NOTICE-fingerprints.txt").read_text()
    assert "OONI blocking-fingerprints" in notice


def test_dns_fingerprints_match_addresses_and_cname_targets_in_canonical_form() -> None:
    fps = default_fingerprints()
    assert [f.name for f in fps.match_dns("8.7.198.45")] == ["ooni.cn_0"]
    assert [f.name for f in fps.match_dns("Restricted.Tri.co.id.")] == ["ooni.id_41"]
    assert fps.match_dns("192.0.2.1") == []


def test_each_pattern_type_and_location(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.csv",
        "t.full,isp,,header.server,full,BlockServer 1.0,5,,me,,",
        "t.prefix,isp,,header.location,prefix,http://block.example/,5,,me,,",
        "t.contains,isp,,body,contains,Access to this site is restricted,5,,me,,",
        r"t.regexp,isp,,body,regexp,blocked by order no\. \d+,5,,me,,",
        "t.fp,fp,,body,contains,Checking your browser,5,,me,,",
    )
    fps = load_fingerprints([path], packaged=False)

    def names(body: bytes, headers=()) -> set[str]:
        return {f.name for f in fps.blockpages(body, list(headers))}

    assert names(b"", [("Server", "BlockServer 1.0")]) == {"t.full"}
    assert names(b"", [("server", "BlockServer 1.0 extra")]) == set()
    assert names(b"", [("location", "http://block.example/?u=x")]) == {"t.prefix"}
    assert names(b"<p>Access to this site is restricted</p>") == {"t.contains"}
    assert names(b"blocked by order no. 42") == {"t.regexp"}
    assert {f.name for f in fps.false_positives(b"Checking your browser...", [])} == {"t.fp"}
    assert names(b"Checking your browser...") == set()  # scope fp is never a block page


def test_matching_is_case_sensitive_like_the_upstream_patterns(tmp_path: Path) -> None:
    fps = load_fingerprints(
        [write(tmp_path / "m.csv", "t.busy,fp,,body,contains,BUSY,5,,me,,")], packaged=False
    )
    assert fps.false_positives(b"the line is busy", []) == []
    assert len(fps.false_positives(b"BUSY", [])) == 1


def test_body_in_another_charset_matches_a_utf8_pattern() -> None:
    fps = default_fingerprints()
    pattern = next(f.pattern for f in fps.all if f.name == "ooni.ru_1")
    body = ("<html><body>" + pattern + "</body></html>").encode("cp1251")
    headers = [("content-type", "text/html; charset=windows-1251")]
    assert "ooni.ru_1" in {f.name for f in fps.blockpages(body, headers)}
    meta = b'<meta charset="windows-1251">' + body
    assert "ooni.ru_1" in {f.name for f in fps.blockpages(meta, [])}


def test_only_the_first_scan_limit_bytes_are_searched(tmp_path: Path) -> None:
    fps = load_fingerprints(
        [write(tmp_path / "m.csv", "t.x,isp,,body,contains,NEEDLE-42,5,,me,,")], packaged=False
    )
    assert fps.blockpages(b"a" * 100 + b"NEEDLE-42", [])
    assert not fps.blockpages(b"a" * SCAN_LIMIT + b"NEEDLE-42", [])


def test_user_file_extends_and_overrides_the_packaged_set(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.csv",
        "ooni.cn_0,fp,,dns,full,8.7.198.45,5,,me,,",
        "my.dns,isp,,dns,full,198.51.100.1,5,,me,,",
    )
    fps = load_fingerprints([path])
    assert fps.match_dns("198.51.100.1")[0].name == "my.dns"
    assert fps.match_dns("8.7.198.45")[0].scope == "fp"
    assert len(fps) == len(default_fingerprints()) + 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,isp,,body,glob,abc,5,,me,,", "unknown pattern_type"),
        ("x,isp,,cookie,contains,abc,5,,me,,", "unknown location_found"),
        ("x,isp,,body,regexp,(unclosed,5,,me,,", "bad regexp"),
        ("x,isp,,dns,contains,1.2.3.4,5,,me,,", "must be pattern_type full"),
        (",isp,,body,contains,abc,5,,me,,", "missing name"),
        ("x,isp,,body,contains,abc,high,,me,,", "not an integer"),
        ("x,isp,,body,contains,abc,5,,me,,,extra", "more cells"),
    ],
)
def test_bad_rows_are_reported_with_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", "ok.1,isp,,body,contains,fine,5,,me,,", row)
    with pytest.raises(FingerprintError) as err:
        load_fingerprints([path], packaged=False)
    assert f"{path}:3" in str(err.value) and message in str(err.value)


def test_missing_column_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "cols.csv"
    bad.write_text("name,pattern\nx,y\n")
    with pytest.raises(FingerprintError, match=r"cols.csv:1: missing column"):
        load_fingerprints([bad], packaged=False)
    with pytest.raises(FingerprintError, match="cannot read"):
        load_fingerprints([tmp_path / "nope.csv"], packaged=False)


def test_blank_lines_and_a_bom_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + "\n\nx,isp,,body,contains,abc,5,,me,,\n").encode())
    assert len(load_fingerprints([path], packaged=False)) == 1


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="the shared OONI blocking-fingerprints copy is not on this machine"
)
def test_builder_regenerates_the_packaged_files_identically(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_fingerprints.py"),
            "--src",
            str(SHARED),
            "--dest",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fingerprints_http.csv: 1729 rows" in out.stdout
    for name in ("fingerprints_dns.csv", "fingerprints_http.csv", "NOTICE-fingerprints.txt"):
        assert (tmp_path / name).read_bytes() == (ROOT / "probe" / "data" / name).read_bytes()
    with (tmp_path / "fingerprints_dns.csv").open(encoding="utf-8") as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS


def test_one_pass_finds_exactly_what_a_substring_search_per_pattern_finds() -> None:
    # The automaton must report every contains-pattern present, overlapping or nested in
    # another, duplicated across fingerprints, and nothing else, in the fingerprints' order.
    fps = default_fingerprints()
    body_patterns = [fp for fp in fps.all if fp.location == "body" and fp.pattern_type == "contains"]
    rng = random.Random(20261130)
    for _ in range(200):
        picked = rng.sample(body_patterns, rng.randint(0, 6))
        parts = [fp.pattern.encode("utf-8") for fp in picked]
        # Cut some patterns in half so that near misses are in the body too.
        halves = (fp.pattern.encode("utf-8") for fp in rng.sample(body_patterns, 3))
        parts += [p[: len(p) // 2] for p in halves]
        rng.shuffle(parts)
        body = b" ".join(parts)
        for false_positive in (True, False):
            expected = [
                fp
                for fp in body_patterns
                if fp.false_positive == false_positive and fp.pattern.encode("utf-8") in body
            ]
            hits = fps.false_positives(body, []) if false_positive else fps.blockpages(body, [])
            got = [fp for fp in hits if fp.pattern_type == "contains"]
            assert got == expected


def test_nested_and_overlapping_patterns_are_all_found(tmp_path: Path) -> None:
    rows = "".join(
        f"{name},isp,,body,contains,{pattern},,,,,\n"
        for name, pattern in [("a", "block"), ("b", "blocked"), ("c", "ked pa"), ("d", "block"), ("e", "zzz")]
    )
    path = tmp_path / "fp.csv"
    path.write_text(",".join(COLUMNS) + "\n" + rows)
    fps = load_fingerprints([path], packaged=False)
    assert [fp.name for fp in fps.blockpages(b"<p>blocked page</p>", [])] == ["a", "b", "c", "d"]
