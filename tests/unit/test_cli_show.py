"""`probe show`: the whole evidence of one measurement, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.store import Store

# (socket itself is stdlib that uuid and others import; what matters is no client library.)
NETWORK_OR_PLOTTING = ("scapy", "httpx", "httpcore", "dns", "aiohttp", "h2", "ssl", "urllib3",
                       "requests", "matplotlib", "plotly", "rich", "selenium", "datasette")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "probe.db"
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(0, started=1000.0), sample_verdict("blocked")),
                           (sample_measurement(1, started=1001.0), sample_verdict("ok"))])
        s.finish_run(run, "complete")
    return path


def _show(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["show", *args])
    return r.exit_code, r.output


def _show_apart(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr, apart."""
    r = CliRunner().invoke(cli, ["show", *args])
    return r.exit_code, r.stdout, r.stderr


def _text(db: Path, width: int) -> list[str]:
    from probe.inputs.fingerprints import default_fingerprints
    from probe.present.evidence import evidence, render_text

    with Store.open(db, create=False) as s:
        return list(render_text(evidence(s, 1, fingerprints=default_fingerprints()), width))


@pytest.mark.parametrize("width", [80, 100, 160])
def test_show_text_fits_the_terminal(db: Path, width: int) -> None:
    lines = _text(db, width)
    assert all(len(line) <= width for line in lines), [x for x in lines if len(x) > width]
    assert "verdict: BLOCKED at http (hop 1)" in lines


def test_show_gives_every_step_with_the_control_side_by_side(db: Path) -> None:
    code, out = _show("1", "--db", str(db))
    assert code == 0, out
    assert out.splitlines()[0] == "http://site0.example.org/"
    flat = " ".join(" ".join(_text(db, 400)).split())  # wide: no cell wraps
    # DNS: both replies of the raced query, the forged one marked.
    assert "reply 0 +12 ms from 127.0.0.53:53 NOERROR 10.10.34.34 << injected" in flat
    assert "reply 1 +31 ms" in flat and "<< injected" not in flat.split("reply 1", 1)[1][:80]
    # TCP per address next to the control's result for it.
    assert "TCP 10.10.34.34:80 FAILED connection_reset connected" in flat
    # TLS with the certificate; HTTP per hop with status, title, length and fingerprint.
    assert "subject CN=www.example.org; issuer CN=www.example.org; valid 2026-01-01 to 2027-01-01" in flat
    assert "302, 0 bytes, Location https://site0.example.org/ 200 \"Example\", 5120 bytes" in flat
    assert "200 \"Access denied\", 84 bytes; matches BLOCK PAGE" in flat
    assert "unavailable: connection_refused" in flat  # hop 1's control failed
    # Every reason in words, the decisive one marked.
    assert "* http/blockpage:test_1 (decided the verdict)" in flat
    assert "- dns/bogon:10.10.34.34 DNS answered 10.10.34.34, a private or reserved address" in flat


def test_show_json_has_the_evidence_for_scripts(db: Path) -> None:
    code, out = _show("1", "--db", str(db), "--json")
    assert code == 0
    ev = json.loads(out)
    assert ev["verdict"]["verdict"] == "blocked" and ev["verdict"]["decisive"] == "http/blockpage:test_1"
    assert [h["hop"] for h in ev["hops"]] == [0, 1]
    q = ev["hops"][0]["dns"][0]
    assert [r["injected"] is not None for r in q["replies"]] == [True, False]
    assert ev["hops"][0]["tcp"][0] == {"ip": "10.10.34.34", "port": 80, "failure": "connection_reset",
                                      "duration": 0.001, "control": {"ok": True, "failure": None}}
    tls = ev["hops"][1]["tls"][0]
    assert tls["certificate"]["subject"] == "CN=www.example.org" and tls["cert_valid"] is False
    http = ev["hops"][1]["http"]
    assert http["status"] == 200 and http["title"] == "Access denied"
    assert any(not fp["false_positive"] for fp in http["fingerprints"])
    assert ev["hops"][0]["control"]["http_status"] == 200


def test_show_finds_a_url_by_url_list_spelling_or_host(db: Path) -> None:
    for what in ("http://site1.example.org/", "http://site1.example.org", "HTTP://Site1.example.org"):
        code, out, err = _show_apart(what, "--db", str(db), "--json")
        assert code == 0, (what, out, err)
        assert json.loads(out)["measurement_id"] == 2 and err == ""
    # A host name shows its newest URL, and says which on stderr.
    code, out, err = _show_apart("site1.example.org", "--db", str(db), "--json")
    assert code == 0 and json.loads(out)["measurement_id"] == 2
    assert err.strip() == ("showing http://site1.example.org/, the newest measurement of host "
                           "site1.example.org; name a URL to see another")


def test_show_never_answers_a_url_with_another_url_of_its_host(tmp_path: Path) -> None:
    # Only https://site0.example.org/ is stored (the second hop of the sample is its redirect
    # target; here the list URL itself is https). Before, `probe show http://site0.example.org`
    # fell back to the host and showed the https measurement without a word.
    import dataclasses

    path = tmp_path / "https-only.db"
    m = sample_measurement(0)
    target = dataclasses.replace(m.target, url="https://site0.example.org/",
                                 original_url="https://site0.example.org", scheme="https", port=443)
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(dataclasses.replace(m, target=target), sample_verdict("ok"))])
        s.finish_run(run, "complete")
    code, out, err = _show_apart("http://site0.example.org", "--db", str(path))
    assert code == 1 and out == ""
    assert " ".join(err.split()) == (
        "Error: no measurement of http://site0.example.org/; measured of host "
        "site0.example.org: https://site0.example.org/")
    code, out, _ = _show_apart("https://site0.example.org", "--db", str(path), "--json")
    assert code == 0 and json.loads(out)["measurement_id"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (("99",), "no measurement 99"),
    (("http://nowhere.example/",), "no measurement of http://nowhere.example/"),
    (("http://site0.example.org/", "--vantage", "elsewhere"), "vantage 'elsewhere'"),
])
def test_show_unknown_measurement_exits_1_saying_what_was_looked_for(
    db: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = _show(*args, "--db", str(db))
    assert code == 1 and message in out


def test_show_imports_no_network_or_plotting_library(db: Path) -> None:
    from test_cli_startup import _modules_after

    loaded = _modules_after(
        "from click.testing import CliRunner\nfrom probe.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['show', '1', '--db', {str(db)!r}])\n"
        "assert r.exit_code == 0, r.output"
    )
    assert sorted(m for m in loaded if m.split(".")[0] in NETWORK_OR_PLOTTING) == []


def test_show_prints_the_dns_probe_answer_and_what_it_decided(tmp_path: Path) -> None:
    # With --dns-probe, the answer from the address that runs no DNS server decides between
    # interception and injection; before, `probe show` never showed that query at all.
    import dataclasses

    from probe.core.model import DNSObservation, DNSReply, Verdict

    m = sample_measurement(0)
    probe_q = DNSObservation("site0.example.org", "A", "udp://203.0.113.53:53", "udp", 1000.0,
                             0.02, None, ("192.0.2.10",),
                             (DNSReply(0.02, "203.0.113.53:53", "NOERROR", ("192.0.2.10",)),))
    m = dataclasses.replace(m, hops=(dataclasses.replace(m.hops[0], dns_probe=(probe_q,)),
                                     *m.hops[1:]))
    v = Verdict("ok", None, None, ("dns/intercepted:no-resolver@203.0.113.53", "http/match"), "t")
    path = tmp_path / "probe.db"
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(m, v)])
        s.finish_run(run, "complete")
    code, out = _show("1", "--db", str(path), "--json")
    assert code == 0, out
    (shown,) = json.loads(out)["hops"][0]["dns_probe"]
    assert shown["addresses"] == ["192.0.2.10"] and shown["rcode"] == "NOERROR"
    assert shown["decided"].startswith("intercepted: an address without a DNS server answered")
    with Store.open(path, create=False) as s:
        from probe.present.evidence import evidence, render_text

        flat = " ".join(" ".join(render_text(evidence(s, 1), 400)).split())
    assert ("DNS-PROBE A site0.example.org via udp://203.0.113.53:53 NOERROR 192.0.2.10 << "
            "intercepted") in flat
