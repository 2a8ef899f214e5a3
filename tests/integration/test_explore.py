"""`probe explore`: Datasette on loopback with descriptions, canned queries and readable bodies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_samples import build

pytestmark = pytest.mark.integration
pytest.importorskip("datasette", reason="the optional extra 'explore' (installed by .ci/setup)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def explore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = build(tmp_path_factory.mktemp("explore") / "multi.db")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "probe", "explore", "--db", str(db),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # until Datasette answers (a condition, polled), or the process died
            if proc.poll() is not None:
                raise RuntimeError(f"probe explore exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"{base}/multi"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # Stopping `probe explore` stopped Datasette too: nothing listens on the port any more.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def _get(endpoint: str, **params: str) -> Any:
    query = urllib.parse.urlencode({**params, "_shape": "array"})
    with urllib.request.urlopen(f"{endpoint}?{query}", timeout=30) as r:
        return json.load(r)


def test_blocked_now_lists_latest_interference_with_reasons_in_words(explore: str) -> None:
    rows = _get(f"{explore}/blocked_now.json", vantage="")
    assert sorted((r["vantage"], r["url"], r["verdict"]) for r in rows) == [
        ("msk-isp1", "http://site1.example.org/", "hijacked"),
        ("msk-isp1", "http://site2.example.org/", "reset"),
        ("msk-isp1", "http://site3.example.org/", "blocked"),
        ("spb-isp2", "http://site1.example.org/", "hijacked"),
    ]
    why = {r["url"]: r["why"] for r in rows if r["vantage"] == "msk-isp1"}
    assert "known block-page address in Russian Federation" in why["http://site1.example.org/"]
    assert _get(f"{explore}/blocked_now.json", vantage="ams-vps") == []


def test_blocked_at_a_not_b(explore: str) -> None:
    rows = _get(f"{explore}/blocked_at_a_not_b.json", a="msk-isp1", b="spb-isp2")
    assert sorted((r["url"], r["verdict_at_a"], r["verdict_at_b"]) for r in rows) == [
        ("http://site2.example.org/", "reset", "ok"), ("http://site3.example.org/", "blocked", "ok")]


def test_when_blocked_gives_each_change_of_verdict(explore: str) -> None:
    rows = _get(f"{explore}/when_blocked.json", url="http://site3.example.org/")
    assert [(r["vantage"], r["previous"], r["verdict"]) for r in rows] == [
        ("ams-vps", None, "ok"),
        ("msk-isp1", None, "ok"), ("msk-isp1", "ok", "blocked"),
        ("spb-isp2", None, "blocked"), ("spb-isp2", "blocked", "ok"),
    ]


def test_technique_mix_per_vantage_point(explore: str) -> None:
    rows = _get(f"{explore}/technique_mix.json")
    assert sorted((r["vantage"], r["verdict"], r["stage"], r["urls"]) for r in rows) == [
        ("msk-isp1", "blocked", "http", 1), ("msk-isp1", "hijacked", "dns", 1),
        ("msk-isp1", "reset", "tls", 1), ("spb-isp2", "hijacked", "dns", 1)]
    assert {r["pct"] for r in rows if r["vantage"] == "spb-isp2"} == {100.0}


def test_bodies_are_readable_text_not_zlib(explore: str) -> None:
    rows = _get(f"{explore}/bodies.json", sha256="")
    assert rows and all(isinstance(r["text"], str) for r in rows)
    assert any("Access denied" in r["text"] for r in rows)
    pages = _get(f"{explore}/block_pages.json")
    assert pages and "Access denied" in pages[0]["body"]


def test_tables_and_columns_carry_the_descriptions_of_docs_schema(explore: str) -> None:
    base = explore.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/-/metadata.json", timeout=30) as r:
        meta = json.load(r)["databases"]["multi"]
    tables = meta["tables"]
    assert tables["measurements"]["description"] == "one attempt at one URL"
    assert tables["measurements"]["columns"]["final"].startswith("1 for the attempt that carries")
    assert "zlib-compressed" in tables["http_bodies"]["description"]
    assert "interference" in tables["blocked"]["description"]
    assert set(meta["queries"]) >= {"blocked_now", "blocked_at_a_not_b", "when_blocked",
                                    "technique_mix"}
    with urllib.request.urlopen(f"{explore}/measurements", timeout=30) as r:
        page = r.read().decode()
    assert "one attempt at one URL" in page  # shown on the table's page


def test_tables_offer_facets_from_their_own_columns(explore: str) -> None:
    # The facets come from the database's columns (sqlite-utils' introspection): Datasette
    # counts the latest verdicts by vantage point and verdict on the view's page.
    data = _get_json(f"{explore}/latest_verdicts.json")
    facets = data["facet_results"]
    facets = facets.get("results", facets)  # Datasette 1.x nests them
    verdicts = {v["value"]: v["count"] for v in facets["verdict"]["results"]}
    assert verdicts["hijacked"] == 2 and verdicts["reset"] == 1 and verdicts["blocked"] == 1
    assert {v["value"] for v in facets["vantage"]["results"]} == {"ams-vps", "msk-isp1", "spb-isp2"}


def _get_json(endpoint: str) -> Any:
    with urllib.request.urlopen(endpoint, timeout=30) as r:
        return json.load(r)
