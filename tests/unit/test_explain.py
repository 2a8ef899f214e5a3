"""Reasons in plain words (probe.judge.explain) and the end-of-run summary built on them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probe.judge.explain import REASONS, decisive, explain
from probe.present.summary import SHOWN_PER_VERDICT, compact_summary, summary_lines

DOC = Path(__file__).resolve().parents[2] / "docs" / "classification.md"


def _documented_codes() -> list[str]:
    """Every `stage/outcome` code of the reasons vocabulary table in docs/classification.md."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Reasons vocabulary", 1)[1].split("\n## ", 1)[0]
    codes: list[str] = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for code in re.findall(r"`([a-z]+/[a-z-]+)", first):
            codes.append(code)
    return codes


def test_every_documented_reason_has_plain_words() -> None:
    codes = _documented_codes()
    assert len(codes) > 30
    for code in codes:
        stage, outcome = code.split("/")
        if stage == "control" and outcome not in ("unavailable", "failed"):
            continue  # control/dns-KIND... are worded by pattern
        if stage == "measurement":
            continue  # measurement/F: F is a failure string
        assert code in REASONS, code
        words = explain(f"{code}:1.2.3.4")
        assert words != f"{code}:1.2.3.4" and "/" not in words.split(" ")[0]


@pytest.mark.parametrize(("reason", "expected"), [
    ("dns/blockpage:ooni.ru_1@95.213.158.61", "known block-page address in Russian Federation"),
    ("tls/reset:192.0.2.7", "connection to 192.0.2.7 reset after the TLS ClientHello named the site"),
    ("dns/injection:2-replies", "2 different DNS replies to one query"),
    ("dns/bogon:10.10.34.34", "DNS answered 10.10.34.34, a private or reserved address"),
    ("http/diff:status,title", "differs from the control's (status code, title)"),
    ("control/tcp-timeout:192.0.2.1", "the control's TCP to 192.0.2.1 failed too (timeout)"),
    ("measurement/deadline_exceeded", "ran out of time"),
])
def test_explain_words_reasons_with_their_detail(reason: str, expected: str) -> None:
    assert expected in explain(reason)


def test_explain_keeps_unknown_codes_and_words_down_as_down() -> None:
    assert explain("quic/teleported:x") == "quic/teleported:x"
    down = explain("tcp/timeout:192.0.2.1", "down")
    assert "while the control connected" not in down and "down for everyone" in down


def test_russian_block_page_fingerprint_exists_for_the_example() -> None:
    from probe.judge.explain import fingerprint_countries

    assert fingerprint_countries("ooni.ru_1") == ("RU",)


@pytest.mark.parametrize(("verdict", "stage", "reasons", "expected"), [
    ("ok", None, ["http/match"], None),
    ("hijacked", "dns", ["dns/consistent:asn", "dns/bogon:10.0.0.1", "http/diff:title"],
     "dns/bogon:10.0.0.1"),
    ("reset", "tls", ["control/tls-timeout:1.2.3.4", "tls/reset:5.6.7.8", "tls/reset:1.2.3.4"],
     "tls/reset:5.6.7.8"),
    ("down", "tcp", ["tcp/timeout:1.2.3.4", "control/tcp-timeout:1.2.3.4"], "tcp/timeout:1.2.3.4"),
    ("inconclusive", None, ["control/unavailable", "http/unverified"], "control/unavailable"),
    ("blocked", "http", [], None),
])
def test_decisive_is_the_first_reason_that_can_carry_the_verdict(
    verdict: str, stage: str | None, reasons: list[str], expected: str | None
) -> None:
    assert decisive(verdict, stage, reasons) == expected


def _row(url: str, verdict: str, stage: str, reasons: list[str]) -> dict[str, object]:
    return {"url": url, "verdict": verdict, "stage": stage, "reasons": reasons}


def test_summary_groups_non_ok_urls_by_verdict_with_their_reason_in_words() -> None:
    rows = [
        _row("http://news.example.ru/", "hijacked", "dns", ["dns/blockpage:ooni.ru_1@95.213.158.61"]),
        _row("https://www.example.org/" + "long/" * 30, "reset", "tls", ["tls/reset:192.0.2.7"]),
        _row("http://gone.example/", "down", "dns", ["dns/nxdomain", "control/dns-nxdomain"]),
    ]
    counts = {"ok": 10, "hijacked": 1, "reset": 1, "down": 1}
    lines = list(summary_lines(7, "complete", 13, 2.0, counts, Path("results/x.db"), rows, 80))
    text = "\n".join(lines)
    assert all(len(line) <= 80 for line in lines), text
    assert lines[0] == "run 7 complete: 13 URLs in 2.0 s (6.5 URLs/s)"
    assert text.index("hijacked (") < text.index("reset (") < text.index("down (")
    flat = " ".join(text.split())  # reasons wrap at 80 columns
    assert "known block-page address in Russian Federation" in flat
    assert "reset after the TLS ClientHello named the site" in flat
    assert "ok 10, blocked 0, reset 1, hijacked 1, throttled 0, down 1, inconclusive 0" in text
    assert "results: results/x.db (run 7)" in text
    assert "blocked (" not in text  # no empty groups


def test_summary_caps_each_group_and_names_the_command_for_the_rest() -> None:
    n = SHOWN_PER_VERDICT + 5
    rows = [_row(f"http://s{i}.example.com/", "blocked", "tcp", [f"tcp/timeout:192.0.2.{i}"])
            for i in range(n)]
    text = "\n".join(summary_lines(1, "complete", n, 1.0, {"blocked": n}, Path("p.db"), rows))
    assert text.count("http://s") == SHOWN_PER_VERDICT
    assert "... and 5 more: probe results --db p.db --run 1 --verdict blocked" in text


def test_compact_summary_is_one_line() -> None:
    line = compact_summary(3, "complete", 28, 12.5, {"ok": 10, "blocked": 4}, Path("r.db"))
    assert "\n" not in line and line.startswith("run 3 complete: 28 URLs in 12.5 s")
    assert "blocked 4" in line and "results in r.db (run 3)" in line

