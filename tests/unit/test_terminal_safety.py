"""Hostile text never reaches the terminal raw: page titles, headers, vantage point names, list
rows and OONI fields with OSC 52/8/0, DCS, CSI, APC/PM/SOS, C1 controls, a forged line and a
bidirectional override, through every command that prints stored, network or file text."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import Measurement, Verdict
from probe.present.terminal import clean, clean_lines, json_safe
from probe.store import Store

#: Every kind of sequence a terminal acts on, as a hostile page title would carry them.
HOSTILE = (
    "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write the clipboard
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a disguised link
    "\x1b]0;pwned\x07"  # OSC 0: the window title
    "\x1bP+q544e\x1b\\"  # DCS: a terminfo query
    "\x1b[2J\x1b[31m"  # CSI: clear the screen, red
    "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\"  # APC, PM, SOS strings
    "\x9b31m\x9d0;c1\x9c"  # the same in 8-bit C1 form
    "\x1b"  # a stray ESC
    "\rverdict: OK\n"  # a forged line
    "\u202etxt.exe"  # a bidirectional override
)
#: What may remain in output: printable text, line feeds, tabs (geo lookup's columns), and the
#: CR of CSV's CRLF line ends.
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def assert_safe(text: str) -> None:
    bad = sorted(set(_RAW.findall(text.replace("\r\n", "\n"))))
    assert not bad, f"raw control characters reach the terminal: {bad!r}"


def _hostile_measurement(n: int, started: float) -> Measurement:
    m = sample_measurement(n, started=started)
    hop0, hop1 = m.hops
    dns = tuple(dataclasses.replace(q, replies=tuple(
        dataclasses.replace(r, cnames=(f"cdn{HOSTILE}.example",)) for r in q.replies)) for q in hop0.dns)
    assert hop0.http is not None and hop0.control is not None and hop1.http is not None
    hop0 = dataclasses.replace(
        hop0, dns=dns,
        http=dataclasses.replace(hop0.http, headers=(("location", f"https://x/{HOSTILE}"),
                                                     ("server", f"nginx{HOSTILE}"))),
        control=dataclasses.replace(hop0.control, http_title=f"Control {HOSTILE}"))
    hop1 = dataclasses.replace(hop1, http=dataclasses.replace(hop1.http, title=f"Title {HOSTILE}"),
                               control=dataclasses.replace(hop1.control, failure=f"eof{HOSTILE}")
                               if hop1.control else None)
    target = dataclasses.replace(m.target, category_code=f"NEWS{HOSTILE}")
    return dataclasses.replace(m, target=target, hops=(hop0, hop1))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.db"
    blocked = Verdict("blocked", "http", 1, (f"http/blockpage:{HOSTILE}",), "test-1")
    ok = Verdict("ok", None, None, ("http/match",), "test-1")
    with Store.open(path) as s:
        vid = s.vantage(f"vp{HOSTILE}")
        for k, verdict in enumerate((ok, blocked)):
            run = s.start_run(vid, [f"list{HOSTILE}.csv"], {})
            s.write(run, vid, [(_hostile_measurement(0, 1_790_000_000.0 + k * 86_400), verdict, True)])
            s.finish_run(run, "complete")
        s.finish_run(s.start_run(vid, [], {}), "offline")  # an outage, with the name in it
    return path


def _run(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.output


@pytest.mark.parametrize("args", [
    ["results", "--run", "all"], ["results", "--run", "all", "--json"],
    ["results", "--run", "all", "--csv"], ["runs"], ["runs", "--json"], ["compare"],
    ["compare", "--csv"], ["compare", "--json"], ["diff", "--from", "1", "--to", "2"],
    ["diff", "--from", "1", "--to", "2", "--json"], ["outages"], ["outages", "--json"],
    ["show", "http://site0.example.org/", "--run", "2"],
    ["show", "http://site0.example.org/", "--run", "2", "--json"],
    ["diff", "--vantage", "nowhere"],  # an error listing the (hostile) names it knows
])  # fmt: skip
def test_commands_never_print_stored_text_raw(db: Path, args: list[str]) -> None:
    out = _run(*args, "--db", str(db))
    assert_safe(out)
    assert "pwned" in out or "vp" in out  # the text is there, disarmed


def test_show_prints_the_hostile_title_escaped_where_it_can_be_read(db: Path) -> None:
    from probe.present.evidence import evidence, render_text

    with Store.open(db, create=False) as s:
        wide = "\n".join(render_text(evidence(s, 2), 2000))  # no cell wraps
    assert_safe(wide)
    assert '200 "Title \\x1b]52;c;cHduZWQ=\\x07\\x1b]8;;http://evil.example/' in wide
    assert "\\x9b31m\\x9d0;c1\\x9c" in wide and "\\u202etxt.exe" in wide
    assert "\\rverdict: OK\\n" in wide  # the forged line is not a line
    doc = json.loads(_run("show", "http://site0.example.org/", "--run", "2", "--json", "--db", str(db)))
    assert doc["hops"][1]["http"]["title"] == f"Title {HOSTILE}"  # JSON keeps it, as escapes


def test_a_hostile_test_list_is_reported_safely(tmp_path: Path) -> None:
    bad = tmp_path / "list\x1b]0;pwned\x07\x9b31m.csv"  # a file name cannot hold "/"
    bad.write_text("url,category_code,category_description,date_added,source,notes\n"
                   f"http://ok.example/,NEWS,News{HOSTILE.splitlines()[0]},2020-01-01,,\n"
                   f"not a url {HOSTILE.splitlines()[0]},NEWS,News,2020-01-01,,\n")
    r = CliRunner().invoke(cli, ["testlists", str(bad)])
    assert r.exit_code == 0, r.output
    assert_safe(r.output)
    assert "not a url \\x1b]52;c;" in r.output  # the warning quotes the row, disarmed
    r = CliRunner().invoke(cli, ["testlists", str(bad), "--json"])
    assert_safe(r.output)
    assert json.loads(r.output.splitlines()[-1])["path"] == str(bad)


def test_a_hostile_ooni_file_is_imported_and_reported_safely(tmp_path: Path) -> None:
    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "ooni" / "fastpath.jsonl.gz"
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    first["probe_cc"] = f"RU{HOSTILE}"
    first["probe_asn"] = f"AS1{HOSTILE}"
    bad = dict(first, input=f"http://x.example/{HOSTILE}")
    f = tmp_path / "hostile.jsonl"
    f.write_text(json.dumps(first) + "\n" + json.dumps(bad) + "\n" + "{not json" + HOSTILE + "\n")
    db = tmp_path / "ooni.db"
    r = CliRunner().invoke(cli, ["import", "ooni", str(f), "--db", str(db)])
    assert "imported 1 of" in r.output, r.output
    assert_safe(r.output)
    for args in (["--report"], ["--report", "--json"]):
        r = CliRunner().invoke(cli, ["import", "ooni", *args, "--db", str(db)])
        assert r.exit_code == 0, r.output
        assert_safe(r.output)
    r = CliRunner().invoke(cli, ["results", "--db", str(db), "--run", "all"])
    assert_safe(r.output)


def test_errors_quoting_a_config_file_are_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.toml").write_text('"bad\\u001b]0;pwned\\u0007key" = 1\n')
    monkeypatch.setenv("PROBE_CONFIG_DIR", str(cfg))
    r = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2
    assert_safe(r.output)
    assert "bad\\x1b]0;pwned\\x07key" in r.output


def test_renderers_of_the_lab_progress_and_geo_disarm_what_they_quote() -> None:
    from probe.inputs.geo import GeoInfo
    from probe.present.geo import format_lookup
    from probe.present.progress import LogProgress

    lines: list[str] = []
    LogProgress(lines.append).problem(f"network changed: AS1 {HOSTILE}")
    info = GeoInfo(asn=1, country="RU", org=f"Org{HOSTILE}")
    for text in (*lines, format_lookup("192.0.2.1", info)):
        assert_safe(text)


def test_the_sanitizer_escapes_every_control_and_keeps_the_rest() -> None:
    assert clean("plain text, 中文, émoji 😀") == "plain text, 中文, émoji 😀"
    assert clean("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert clean("a\tb\nc\rd\x7f\x85\x9b\u202e\u2066\u2028") == \
        "a\\tb\\nc\\rd\\x7f\\x85\\x9b\\u202e\\u2066\\u2028"
    assert clean_lines("one\ntwo\x1b[2J") == "one\ntwo\\x1b[2J"
    assert clean(42) == "42"
    encoded = json.dumps({"t": HOSTILE}, ensure_ascii=False)
    assert json.loads(json_safe(encoded)) == {"t": HOSTILE}
    assert_safe(json_safe(encoded))


def test_the_html_report_escapes_hostile_text_for_html(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as s:
        vid = s.vantage("<script>alert(1)</script>")
        run = s.start_run(vid, [], {})
        m = _hostile_measurement(0, 1_790_200_000.0)
        m = dataclasses.replace(m, target=dataclasses.replace(m.target, category_code="<b>X</b>"))
        s.write(run, vid, [(m, Verdict("blocked", "http", 1, ("http/blockpage:<img src=x>",), "t"), True)])
        s.finish_run(run, "complete")
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x>" not in page and "<b>X</b>" not in page
    assert "\x1b" not in page and "\x9b" not in page  # the evidence blocks are disarmed too
