"""`probe report` tells both directions: unblockings among the changes, `down` apart from
interference, one fixed colour per technique, and counts in correct English."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from report_samples import KINDS
from store_samples import sample_measurement

from probe.cli import cli
from probe.present.html import TECHNIQUE_COLOURS
from probe.store import Store

T0 = 1_790_000_000.0


def _db(path: Path, plan: dict[str, list[str]]) -> Path:
    """vantage -> per URL index, its verdict kind in each run (space-separated, oldest first)."""
    with Store.open(path) as s:
        for k, (vp, rows) in enumerate(plan.items()):
            vid = s.vantage(vp)
            for r in range(len(rows[0].split())):
                run = s.start_run(vid, ["list.csv"], {})
                t = T0 + r * 86_400 + k * 600
                s.write(run, vid, [(sample_measurement(i, started=t + i), KINDS[kinds.split()[r]])
                                   for i, kinds in enumerate(rows)])
                s.finish_run(run, "complete")
    return path


def _report(db: Path) -> str:
    out = db.with_suffix(".html")
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out.read_text()


def test_a_url_unblocked_everywhere_is_among_the_changes_as_probe_diff_lists_it(tmp_path: Path) -> None:
    # site1 was reset and is ok now, at the only vantage point: `probe diff` lists it unblocked.
    db = _db(tmp_path / "u.db", {"msk": ["ok ok", "reset ok", "ok hijacked"]})
    page = _report(db)
    diff = CliRunner().invoke(cli, ["diff", "--db", str(db), "--json"]).output
    assert '"change": "unblocked"' in diff and "site1" in diff
    rows = re.findall(r'<tr data-change="(\w+)"><td>msk</td><td>[^<]*</td><td>([^<]*)</td>', page)
    assert sorted(rows) == [("newly_blocked", "http://site2.example.org/"),
                            ("unblocked", "http://site1.example.org/")]
    assert "msk, run 1 -&gt; run 2: 1 newly blocked, 1 unblocked, 0 technique changed, 0 unclear" in page
    timeline = page[page.index('<svg id="timeline"'):]
    assert "http://site1.example.org/ @ msk: reset from" in timeline  # its history is drawn
    assert "http://site1.example.org/ @ msk: ok from" in timeline


def test_down_stays_apart_from_interference_in_the_heatmap(tmp_path: Path) -> None:
    # One URL hijacked, five down for everyone: the heatmap shows the one, the five are folded.
    db = _db(tmp_path / "d.db", {"msk": ["hijacked", *["down"] * 5], "ams": ["ok", *["down"] * 5]})
    page = _report(db)
    heat = page[page.index('<svg id="heatmap"'):page.index("</svg>", page.index('<svg id="heatmap"'))]
    assert set(re.findall(r'data-url="([^"]+)"', heat)) == {"http://site0.example.org/"}
    quiet = page[page.index('<svg id="heatmap-quiet"'):]
    quiet = quiet[:quiet.index("</svg>")]
    assert len(set(re.findall(r'data-url="([^"]+)"', quiet))) == 5
    assert "v-hijacked" not in quiet and "5 URLs down or inconclusive, never interfered with" in page


def _technique_fills(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-technique="([^"]+)"[^>]*fill="(#[0-9a-f]{6})"', page))


def test_each_technique_has_one_colour_in_every_report(tmp_path: Path) -> None:
    one = _technique_fills(_report(_db(tmp_path / "a.db", {"msk": ["reset"]})))
    two = _technique_fills(_report(_db(tmp_path / "b.db", {"msk": ["hijacked", "reset", "blocked"]})))
    assert one["reset at TLS"] == two["reset at TLS"] == TECHNIQUE_COLOURS["reset at TLS"]
    assert len(set(two.values())) == 3
    assert len(set(TECHNIQUE_COLOURS.values())) == len(TECHNIQUE_COLOURS)  # all distinct


def test_counts_are_in_correct_english(tmp_path: Path) -> None:
    db = _db(tmp_path / "p.db", {"msk": ["ok", "reset"]})
    page = _report(db)
    assert "1 vantage point;" in page and "Evidence: 1 non-ok verdict<" in page
    assert "(1 URL)" in page
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(tmp_path / "o.html")])
    assert "o.html: 1 vantage point, 1 non-ok verdict, " in r.output
