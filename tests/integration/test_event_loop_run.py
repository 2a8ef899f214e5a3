"""`probe run` (and the helper) on uvloop and on asyncio's loop observe and judge alike."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import LoopbackNet

pytestmark = pytest.mark.integration

FAST = ["--late-window", "0.2", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "3",
        "--retry-pause", "0", "--no-identity"]  # fmt: skip

# What is compared: per URL, the verdict and what each step saw.
_STEPS = """
select m.url, m.verdict,
  (select group_concat(coalesce(failure, 'ok'), ',') from
     (select failure from dns_queries q where q.measurement_id = m.id and q.control = 0
      order by q.qtype)),
  (select group_concat(coalesce(failure, 'ok'), ',') from tcp_connects t where t.measurement_id = m.id),
  (select group_concat(coalesce(failure, 'ok') || ':' || coalesce(cert_valid, '-'), ',')
     from tls_handshakes s where s.measurement_id = m.id),
  (select group_concat(coalesce(failure, 'ok') || ':' || coalesce(status, '-') || ':' || body_length, ',')
     from http_requests h where h.measurement_id = m.id),
  (select group_concat(coalesce(failure, 'ok') || ':' || coalesce(http_status, '-'), ',')
     from controls c where c.measurement_id = m.id)
from measurements m where m.final = 1 order by m.url
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(loop: str, net: LoopbackNet, tmp_path: Path) -> list[tuple[object, ...]]:
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / f"cfg-{loop}"), PROBE_EVENT_LOOP=loop)
    port = _free_port()
    helper = subprocess.Popen(
        [sys.executable, "-m", "probe", "helper", "serve", "--listen", f"127.0.0.1:{port}",
         "--resolver", net.resolver, "--cafile", net.ca_path, "--allow-private"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(400):
            if helper.poll() is not None:
                raise RuntimeError(f"helper exited: {helper.stderr.read() if helper.stderr else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        urls = [net.url("ok.test", tls=True), net.url("ok.test"), net.url("redirect.test"),
                net.url("reset.test"), net.url("refused.test"), net.url("nxdomain.test"),
                net.url("wronghost.test", tls=True), net.url("huge.test")]  # fmt: skip
        db = tmp_path / f"{loop}.db"
        result = subprocess.run(
            [sys.executable, "-m", "probe", "run", *(a for u in urls for a in ("--url", u)),
             "--resolver", net.resolver, "--control", f"http://127.0.0.1:{port}/",
             "--cafile", net.ca_path, "--accept-risks", "--db", str(db), *FAST],
            env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        helper.terminate()
        helper.wait(timeout=10)
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute(_STEPS)]
    finally:
        con.close()


def test_uvloop_and_asyncio_give_the_same_observations_and_verdicts(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    pytest.importorskip("uvloop")
    on_asyncio = _run("asyncio", loopback_net, tmp_path)
    on_uvloop = _run("uvloop", loopback_net, tmp_path)
    assert len(on_asyncio) == 8
    assert on_uvloop == on_asyncio
