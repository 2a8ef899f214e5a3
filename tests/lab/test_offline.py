"""`probe run` in a namespace with no network says so plainly and records the run as offline."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def test_run_in_an_empty_namespace_reports_no_network(lab_tools: None, tmp_path: Path) -> None:
    ns = f"pliso{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        db = tmp_path / "iso.db"
        # Lab addresses only: the namespace has no interface up, so nothing can leave it.
        result = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "probe", "run", "--url",
             "http://site.lab.test/", "--resolver", "10.66.255.53", "--control",
             "http://10.66.255.1:8080/", "--accept-risks", "--db", str(db)],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "cfg")),
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert result.returncode == 1
    assert "no network" in result.stderr
    assert "recorded as offline" in result.stderr
    con = sqlite3.connect(db)
    assert con.execute("select status from runs").fetchall() == [("offline",)]
    assert con.execute("select count(*) from measurements").fetchone() == (0,)


def test_every_measuring_command_records_an_offline_run_the_same_way(
    lab_tools: None, tmp_path: Path
) -> None:
    # Before, `probe circumvention` with no network recorded 10 inconclusive endpoints and
    # exited 0, where `probe run` recorded an offline run and exited 1.
    endpoints = tmp_path / "endpoints.csv"
    endpoints.write_text("kind,name,address,port\ntcp,lab-relay,10.66.255.7,9001\n")
    commands = {
        "run": ["run", "--url", "http://site.lab.test/"],
        "circumvention": ["circumvention", str(endpoints)],
    }
    ns = f"pliso{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    results = {}
    try:
        for name, argv in commands.items():
            db = tmp_path / f"{name}.db"
            results[name] = (db, subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "probe", *argv,
                 "--resolver", "10.66.255.53", "--control", "http://10.66.255.1:8080/",
                 "--accept-risks", "--db", str(db)],
                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "cfg")),
            ))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    messages = set()
    for name, (db, result) in results.items():
        assert result.returncode == 1, (name, result.stderr)
        (line,) = [x for x in result.stderr.splitlines() if "no network" in x]
        messages.add(line)
        con = sqlite3.connect(db)
        assert con.execute("select status from runs").fetchall() == [("offline",)], name
        assert con.execute("select count(*) from measurements").fetchone() == (0,)
        assert con.execute("select count(*) from endpoint_measurements").fetchone() == (0,)
    assert len(messages) == 1, messages  # word for word the same
    assert messages.pop().endswith("Nothing was measured; run 1 is recorded as offline.")
