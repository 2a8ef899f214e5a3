"""The messaging suite against loopback servers: a stand-in Telegram data centre (MTProto), a
silent and a closed one, web services reached by name through the loopback resolver, and the
real control helper; then where people look at the results (results, show, compare, report,
export)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from helper_util import running_helper
from servers import LoopbackNet

from probe.cli import cli
from probe.core.settings import MeasureConfig
from probe.inputs.endpointlists import load_endpoints
from probe.lab import toolservers
from probe.run.circumvention import SuiteConfig, measure_endpoints
from probe.serve.app import Helper
from probe.serve.config import HelperConfig

pytestmark = pytest.mark.integration

DC_IP = "127.0.0.1"
HEADER = "kind,name,address,port,path,ca,notes,source\n"


@dataclass
class Stage:
    """The stand-in DC's port and the control helper's URL (both served by one thread)."""

    dc_port: int
    control: str


def _helper(net: LoopbackNet, cafile: str | None) -> Helper:
    mcfg = MeasureConfig(resolvers=(net.resolver,), system_resolver=False, late_window=0.0, cafile=cafile,
                         deadline=10.0, tcp_timeout=2.0, tls_timeout=2.0, http_timeout=3.0)  # fmt: skip
    return Helper.with_engine(mcfg, HelperConfig(host="127.0.0.1", port=0, allow_private=True))


def _serve(net: LoopbackNet, cafile: str | None) -> Iterator[Stage]:
    loop = asyncio.new_event_loop()
    servers = loop.run_until_complete(toolservers.start(mtproto_dcs=[(DC_IP, 0)]))
    port = servers[0].sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    helper = running_helper(_helper(net, cafile))
    base = loop.run_until_complete(helper.__aenter__())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield Stage(port, base)
    finally:
        asyncio.run_coroutine_threadsafe(helper.__aexit__(None, None, None), loop).result(10)
        for s in servers:
            loop.call_soon_threadsafe(s.close)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def stage(loopback_net: LoopbackNet) -> Iterator[Stage]:
    """The DC and a helper that trusts the loopback CA (as the Internet's helpers trust the
    services' public CAs)."""
    yield from _serve(loopback_net, loopback_net.ca_path)


@pytest.fixture
def untrusting_stage(loopback_net: LoopbackNet) -> Iterator[Stage]:
    """The DC and a helper that does not trust the loopback CA (as OONI's helpers do not trust
    the CA Signal pins)."""
    yield from _serve(loopback_net, None)


def _run(tmp_path: Path, net: LoopbackNet, stage: Stage,
         *extra: str) -> tuple[Path, dict[str, tuple[str, list[str]]]]:  # fmt: skip
    lst = tmp_path / "messaging-loopback.csv"
    lst.write_text(HEADER + "\n".join([
        f"telegram-dc,DC1,{DC_IP},{stage.dc_port},,,,loopback",
        f"telegram-dc,DC-silent,{net.blackhole_ip},{net.https_port},,,,loopback",
        f"telegram-dc,DC-down,{net.closed_ip},{stage.dc_port},,,,loopback",
        f"telegram-web,web,ok.test,{net.https_port},/,,,loopback",
        f"whatsapp,e1,ok.test,{net.http_port},,,,loopback",
        f"whatsapp-web,registration,nosuch.test,{net.https_port},/v2/register,,,loopback",
        f"signal,chat,reset.test,{net.https_port},/,,,loopback",
    ]) + "\n")  # fmt: skip
    db = tmp_path / "m.db"
    r = CliRunner().invoke(cli, ["messaging", str(lst), "--db", str(db), "--control", stage.control,
                                 "--cafile", net.ca_path, "--resolver", net.resolver, "--accept-risks",
                                 "--json", "--vantage", "home", "--retries", "0", "--tcp-timeout", "2",
                                 "--handshake-timeout", "2", "--dns-timeout", "2", "--deadline", "10",
                                 *extra])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    return db, {r["name"] if r["kind"] != "whatsapp-web" else "wa-" + r["name"]: (r["verdict"], r["reasons"])
                for r in rows}  # fmt: skip


def test_each_app_part_is_judged_against_the_control(tmp_path: Path, loopback_net: LoopbackNet,
                                                     stage: Stage) -> None:  # fmt: skip
    db, got = _run(tmp_path, loopback_net, stage)
    assert got["DC1"][0] == "ok" and f"mtproto/ok:{DC_IP}:{stage.dc_port}" in got["DC1"][1]
    # Silent after connecting, and silent to the control's HTTP too: no proof of blocking.
    assert got["DC-silent"][0] == "inconclusive" and "mtproto/silent" in got["DC-silent"][1]
    assert got["DC-down"][0] == "down"  # refused for the control as well
    assert got["web"][0] == "ok" and "https/reached:200" in got["web"][1]
    assert got["e1"][0] == "ok" and any(r.startswith("tcp/reached:") for r in got["e1"][1])
    # A name that does not exist for the control either, a service that resets everyone: not
    # censorship.
    assert got["wa-registration"][0] in ("down", "inconclusive")
    assert got["chat"][0] in ("down", "inconclusive")
    con = sqlite3.connect(db)
    suites = con.execute("SELECT DISTINCT suite FROM endpoint_measurements").fetchall()
    assert suites == [("messaging",)]
    assert con.execute("SELECT json_extract(options, '$.suite') FROM runs").fetchall() == [("messaging",)]
    assert str(tmp_path) not in db.read_bytes().decode("latin-1")  # no home paths stored

    runner = CliRunner()
    res = runner.invoke(cli, ["results", "--db", str(db), "--suite", "messaging"])
    assert res.exit_code == 0, res.output
    assert "Telegram: partly reachable" in res.output and "WhatsApp:" in res.output
    shown = runner.invoke(cli, ["show", "ok.test", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "telegram-web" in shown.output and "dns      A via" in shown.output
    assert "(control: 127.0.0.2)" in shown.output
    chat = runner.invoke(cli, ["show", f"ok.test:{loopback_net.http_port}", "--db", str(db)])
    assert chat.exit_code == 0 and "whatsapp" in chat.output and "tcp/reached" in chat.output
    dc = runner.invoke(cli, ["show", "DC1", "--db", str(db)])
    assert "answer   res_pq" in dc.output and "resPQ with our nonce" in dc.output
    cmp = runner.invoke(cli, ["compare", "--db", str(db)])
    assert cmp.exit_code == 0, cmp.output
    assert "Messaging endpoints" in cmp.output and "Messaging apps per vantage point" in cmp.output
    cj = runner.invoke(cli, ["compare", "--db", str(db), "--json"])
    assert cj.exit_code == 0 and '"messaging"' in cj.output
    doc = json.loads(cj.output)
    assert doc["messaging"]["apps"]["home"]["telegram"]["state"] == "partly reachable"
    out = tmp_path / "r.html"
    rep = runner.invoke(cli, ["report", "--db", str(db), "--out", str(out)])
    assert rep.exit_code == 0, rep.output
    html = out.read_text()
    assert 'id="messaging-h"' in html and 'id="apps"' in html and "partly reachable" in html
    exp = runner.invoke(cli, ["export", "--db", str(db), "--suite", "messaging", "--format", "jsonl"])
    lines = [json.loads(x) for x in exp.output.splitlines()]
    assert len(lines) == 7 and all(x["observation"]["kind"] == x["kind"] for x in lines)
    none = runner.invoke(cli, ["export", "--db", str(db), "--suite", "circumvention", "--format", "csv"])
    assert none.output.count("\n") == 1  # the header: no circumvention endpoint here
    # Re-judged from what is stored (hops, controls, bytes through the codec): nothing changes.
    again = runner.invoke(cli, ["reclassify", "--db", str(db)])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert "re-judged 7 circumvention endpoints; 0 verdicts changed" in said


def test_a_pinned_ca_is_trusted_for_its_service_only(tmp_path: Path, loopback_net: LoopbackNet,
                                                     untrusting_stage: Stage) -> None:  # fmt: skip
    """Signal's case: the service's certificate chains to a CA only its app trusts. Listed with
    that CA the service is reached; the helper, which does not trust it, still vouches for the
    addresses it resolved itself; without the pin the same certificate does not verify here."""
    net = loopback_net
    shutil.copy(net.ca_path, tmp_path / "pinned.pem")
    lst = tmp_path / "pinned.csv"
    lst.write_text(HEADER + f"signal,chat,ok.test,{net.https_port},/,pinned.pem,,loopback\n"
                   f"telegram-web,web,ok.test,{net.https_port},/,,,loopback\n")  # fmt: skip
    eps = load_endpoints([lst])
    cfg = SuiteConfig(controls=(untrusting_stage.control,), resolvers=(net.resolver,), tcp_timeout=2,
                      handshake_timeout=2, retries=0, dns_timeout=2, deadline=10)  # fmt: skip
    results = {obs.kind: (obs, v) for obs, _, v in asyncio.run(measure_endpoints(eps, cfg))}
    obs, v = results["signal"]
    assert v.verdict == "ok", v.reasons
    assert obs.pinned and "probe test CA" in obs.pinned[0]
    # Not pinned, not trusted here, not trusted by the control: nothing says who is at fault.
    _, web = results["telegram-web"]
    assert web.verdict not in ("ok", "blocked", "reset", "hijacked")
