"""`probe run` end to end on loopback: what lands in the database, exit codes, kills, offline."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import LoopbackNet

pytestmark = pytest.mark.integration

FAST = ["--late-window", "0.2", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "3",
        "--retry-pause", "0"]


def probe(*args: str, config: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = dict(os.environ, PROBE_CONFIG_DIR=str(config))
    return subprocess.run([sys.executable, "-m", "probe", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def rows(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def measurement_ids(db: Path) -> dict[str, int]:
    return {r["url"]: r["id"] for r in rows(db, "select id, url from measurements where final = 1")}


@pytest.fixture
def helper(loopback_net: LoopbackNet, tmp_path: Path) -> Iterator[str]:
    """`probe helper serve` on loopback, resolving through the honest loopback resolver."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "helper", "serve", "--listen", f"127.0.0.1:{port}",
         "--resolver", loopback_net.resolver, "--cafile", loopback_net.ca_path, "--allow-private"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_listening(port, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    import socket

    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"helper exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("helper did not start listening")


def test_run_stores_every_step_and_prints_summary(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    net = loopback_net
    db = tmp_path / "r.db"
    targets = {
        "ok": net.url("ok.test", tls=True),
        "plain": net.url("ok.test"),
        "huge": net.url("huge.test"),
        "reset": net.url("reset.test"),
        "refused": net.url("refused.test"),
        "nx": net.url("nxdomain.test"),
        "wronghost": net.url("wronghost.test", tls=True),
        "redirect": net.url("redirect.test"),
    }
    args = [a for u in targets.values() for a in ("--url", u)]
    result = probe("run", *args, "--resolver", net.resolver, "--no-control", "--cafile", net.ca_path,
                   "--accept-risks", "--db", str(db), *FAST, config=tmp_path / "cfg")
    assert result.returncode == 0, result.stderr
    assert "complete: 8 URLs" in result.stdout
    ids = measurement_ids(db)
    assert set(ids) == set(targets.values())

    # DNS: the resolver used is recorded with every query, both A and AAAA.
    q = rows(db, "select resolver, qtype, failure from dns_queries where measurement_id = ?",
             ids[targets["nx"]])
    assert {r["qtype"] for r in q} == {"A", "AAAA"}
    assert {r["failure"] for r in q} == {"dns_nxdomain_error"}
    assert all(net.resolver.split(":")[0] in r["resolver"] for r in q)

    # TCP: the failing stage and its failure string.
    tcp = rows(db, "select failure from tcp_connects where measurement_id = ?", ids[targets["refused"]])
    assert [r["failure"] for r in tcp] == ["connection_refused"]
    http = rows(db, "select failure from http_requests where measurement_id = ?", ids[targets["reset"]])
    assert [r["failure"] for r in http] == ["connection_reset"]

    # TLS: validation for the host is recorded with the failure string.
    tls = rows(db, "select failure, cert_valid from tls_handshakes where measurement_id = ?",
               ids[targets["wronghost"]])
    assert [(r["failure"], r["cert_valid"]) for r in tls] == [("ssl_invalid_hostname", 0)]
    tls_ok = rows(db, "select failure, cert_valid, version from tls_handshakes where measurement_id = ?",
                  ids[targets["ok"]])
    assert tls_ok[0]["failure"] is None and tls_ok[0]["cert_valid"] == 1 and tls_ok[0]["version"]

    # HTTP: body cap with the truncation flag, title, redirects as hops.
    huge = rows(db, "select body_length, body_truncated from http_requests where measurement_id = ?",
                ids[targets["huge"]])
    assert [(r["body_length"], r["body_truncated"]) for r in huge] == [(1 << 20, 1)]
    plain = rows(db, "select status, title from http_requests where measurement_id = ?",
                 ids[targets["plain"]])
    assert [(r["status"], r["title"]) for r in plain] == [(200, "OK page")]
    hops = rows(db, "select hop, status from http_requests where measurement_id = ? order by hop",
                ids[targets["redirect"]])
    assert [(r["hop"], r["status"]) for r in hops] == [(0, 302), (1, 200)]

    run = rows(db, "select status, finished_at from runs")[0]
    assert run["status"] == "complete" and run["finished_at"]


def test_results_json_lines_carry_the_verdict_fields(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = probe("run", "--url", loopback_net.url("ok.test", tls=True), "--resolver",
                   loopback_net.resolver, "--no-control", "--cafile", loopback_net.ca_path,
                   "--accept-risks", "--db", str(db), "--vantage", "lo", *FAST, config=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    out = probe("results", "--db", str(db), "--run", "latest", "--json", config=tmp_path / "c")
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    record = lines[0]
    for key in ("url", "verdict", "stage", "reasons", "vantage", "run_id", "measured_at"):
        assert key in record
    assert record["vantage"] == "lo"
    assert record["verdict"] == "ok"  # an https fetch that validated end to end


def test_control_turns_a_lying_resolver_into_hijacked(
    loopback_net: LoopbackNet, helper: str, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    url = loopback_net.url("ok.test")
    result = probe("run", "--url", url, "--resolver", loopback_net.lying_resolver, "--control", helper,
                   "--cafile", loopback_net.ca_path, "--accept-risks", "--db", str(db), *FAST,
                   config=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    verdict = rows(db, "select verdict, stage, reasons from measurements where final = 1")[0]
    assert (verdict["verdict"], verdict["stage"]) == ("hijacked", "dns")
    from probe.store import Store

    with Store.open(db, readonly=True) as store:  # the control is in its hop's observations
        controls = [h.control for _, m in store.iter_measurements() for h in m.hops if h.control]
    assert controls and controls[0].source.startswith(helper.rstrip("/"))


def test_failure_for_everyone_is_down_with_a_control(
    loopback_net: LoopbackNet, helper: str, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    result = probe("run", "--url", loopback_net.url("refused.test"), "--url",
                   loopback_net.url("nxdomain.test"), "--resolver", loopback_net.resolver,
                   "--control", helper, "--cafile", loopback_net.ca_path, "--accept-risks",
                   "--db", str(db), *FAST, config=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    got = {r["url"]: (r["verdict"], r["stage"])
           for r in rows(db, "select url, verdict, stage from measurements where final = 1")}
    assert got[loopback_net.url("refused.test")] == ("down", "tcp")
    assert got[loopback_net.url("nxdomain.test")] == ("down", "dns")


def test_no_network_is_recorded_offline_and_exits_1(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = probe("run", "--url", "http://example.org/", "--resolver", loopback_net.silent_resolver,
                   "--no-control", "--accept-risks", "--db", str(db), config=tmp_path / "c")
    assert result.returncode == 1
    assert "no network" in result.stderr
    assert [r["status"] for r in rows(db, "select status from runs")] == ["offline"]
    assert rows(db, "select count(*) as n from measurements")[0]["n"] == 0


def test_non_interactive_run_without_consent_exits_2(tmp_path: Path) -> None:
    result = probe("run", "--url", "http://example.org/", "--resolver", "127.0.0.1:9", "--no-control",
                   "--db", str(tmp_path / "r.db"), config=tmp_path / "c")
    assert result.returncode == 2
    assert "--accept-risks" in result.stderr
    assert not (tmp_path / "r.db").exists()


def test_strict_run_with_bad_row_measures_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("url,category_code,category_description,date_added,source,notes\n"
                   "http://ok.example/,NEWS,News,2020-01-01,x,\nftp://nope.example/,NEWS,News,,,\n")
    result = probe("run", str(bad), "--strict", "--resolver", "127.0.0.1:9", "--no-control",
                   "--accept-risks", "--db", str(tmp_path / "r.db"), config=tmp_path / "c")
    assert result.returncode == 2
    assert f"{bad}:3" in result.stderr


def _slow_list(net: LoopbackNet, path: Path, fast: int, slow: int) -> None:
    lines = ["url,category_code,category_description,date_added,source,notes"]
    lines += [f"{net.url('ok.test', f'/?n={i}')},NEWS,News,,," for i in range(fast)]
    lines += [f"{net.url('blackhole.test', f'/?n={i}')},NEWS,News,,," for i in range(slow)]
    path.write_text("\n".join(lines) + "\n")


def _wait_for_rows(db: Path, n: int, timeout: float = 60, where: str = "1") -> int:
    """Poll ``db`` until at least ``n`` measurements (``where`` holds for them) are committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = rows(db, f"select count(*) as n from measurements where {where}")[0]["n"]
            if got >= n:
                return got
        except sqlite3.Error:
            pass  # the probe has not created its tables yet
        time.sleep(0.1)  # the poll interval, not a wait for the condition
    raise AssertionError(f"fewer than {n} measurements ({where}) after {timeout} s")


def _start_run(net: LoopbackNet, tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    lst = tmp_path / "list.csv"
    _slow_list(net, lst, fast=30, slow=40)
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "c"))
    return subprocess.Popen(
        [sys.executable, "-m", "probe", "run", str(lst), "--resolver", net.resolver, "--no-control",
         "--accept-risks", "--db", str(db), "--concurrency", "8", "--per-host", "8",
         "--http-timeout", "30", "--deadline", "60", "--late-window", "0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def test_kill_leaves_a_valid_database_with_completed_measurements(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    proc = _start_run(loopback_net, tmp_path, db)
    try:
        # Every fast URL measured and committed (the black-holed ones are still waiting).
        _wait_for_rows(db, 30, where="url like '%ok.test%' and final = 1")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rows(db, "pragma integrity_check")[0][0] == "ok"
    ok = rows(db, "select count(*) as n from measurements where url like '%ok.test%'")[0]["n"]
    assert ok == 30
    assert [r["status"] for r in rows(db, "select status from runs")] == ["running"]

    # The next run on this machine sees that the killed run's process is gone and closes it.
    ok_list = tmp_path / "ok.csv"
    ok_list.write_text("url,category_code,category_description,date_added,source,notes\n"
                       f"{loopback_net.url('ok.test', '/again')},NEWS,News,,,\n")
    again = probe("run", str(ok_list), "--resolver", loopback_net.resolver, "--no-control",
                  "--accept-risks", "--db", str(db), config=tmp_path / "c")
    assert again.returncode == 0, again.stderr
    runs = rows(db, "select id, status, finished_at, n_measurements from runs order by id")
    assert [(r["status"], r["n_measurements"]) for r in runs] == [
        ("interrupted", rows(db, "select count(*) as n from measurements where run_id = 1 "
                                 "and final = 1")[0]["n"]),
        ("complete", 1),
    ]
    last = rows(db, "select max(measured_at) as t from measurements where run_id = 1")[0]["t"]
    assert runs[0]["finished_at"] == last


def test_sigterm_records_interrupted_run_and_keeps_results(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    proc = _start_run(loopback_net, tmp_path, db)
    try:
        _wait_for_rows(db, 30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in out
    assert [r["status"] for r in rows(db, "select status from runs")] == ["interrupted"]
    assert rows(db, "select count(*) as n from measurements")[0]["n"] >= 30


def test_an_unreachable_control_fails_the_run_so_cron_notices(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    dead = f"http://127.0.0.1:{_free_port()}/"
    args = ["run", "--url", loopback_net.url("ok.test", tls=True), "--resolver",
            loopback_net.resolver, "--cafile", loopback_net.ca_path, "--control", dead,
            "--accept-risks", "--db", str(db), *FAST]
    result = probe(*args, config=tmp_path / "c")
    assert result.returncode == 1, result.stderr
    assert "no control answers" in result.stderr and "--allow-no-control" in result.stderr
    assert [r["status"] for r in rows(db, "select status from runs")] == ["failed"]
    assert rows(db, "select count(*) as n from measurements")[0]["n"] == 0

    # The explicit choice measures with local proofs only (an authenticated fetch), and says so.
    result = probe(*args, "--allow-no-control", config=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert "measuring with local proofs only" in result.stderr
    assert rows(db, "select verdict from measurements where final = 1")[0]["verdict"] == "ok"
