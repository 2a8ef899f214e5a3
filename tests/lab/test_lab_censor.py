"""`probe lab censor`: techniques switched on by hand in a lab made by `probe lab up`, measured
as a user would from its client namespace, refused (exit 2, nothing changed) when two act on
the same traffic, and switched off again, censor programs and delays included, by a later
command than the one that started them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from service_priority import favour_services

from probe.cli import cli

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab-censor")]


@pytest.fixture(scope="module")
def lab_up(lab: Any) -> Iterator[Any]:
    """A lab as `probe lab up` makes it (persistent: `probe lab censor` attaches to it), next to
    the session's, torn down after the module."""
    from probe.lab.lab import Lab

    prefix = f"cen{os.getpid() % 10**6}"
    with Lab.create(env=dict(os.environ), prefix=prefix, persistent=True) as up:  # __exit__: down()
        favour_services(up)
        yield up


def _censor(lab: Any, *args: str) -> Result:
    return CliRunner().invoke(cli, ["lab", "censor", "--prefix", lab.topo.prefix, *args])


def _state(lab: Any) -> dict[str, Any]:
    got: dict[str, Any] = json.loads((lab.state_dir / "state.json").read_text())
    return got


def _forward_rules(lab: Any) -> list[str]:
    from probe.lab.topology import ns_run

    out = ns_run(lab.topo.censor, ["iptables", "-S", "LAB-FWD"])
    return [line for line in out.splitlines() if line.startswith("-A")]


def _check(lab: Any, tmp: Path, names: tuple[str, ...]) -> list[str]:
    """Measure the URLs of scenarios ``names`` in ``lab`` as it is; every mismatch with their
    expectations, in words (empty: all as the scenarios say)."""
    from probe.lab.checks import check
    from probe.lab.lab import _read_db
    from probe.lab.scenarios import by_name

    expects = [e for n in names for e in by_name(n).targets]
    db = tmp / f"{'+'.join(names) or 'none'}.db"
    done = lab.probe([e.url for e in expects], db)
    assert done.returncode == 0, done.stderr
    stored = _read_db(db)
    problems = []
    for e in expects:
        o = check(e, *stored.get(e.url, (None, None)))
        problems += [f"{e.url}: {x}" for x in (*o.observation_errors, *o.verdict_errors)]
    return problems


def test_techniques_switched_on_censor_the_running_lab_until_switched_off(
    lab_up: Any, tmp_path: Path
) -> None:
    on = _censor(lab_up, "dns-bogon", "tls-sni-rst")
    assert on.exit_code == 0, on.output
    assert "switched on: dns-bogon, tls-sni-rst" in on.output
    assert all(len(line) <= 80 for line in on.output.splitlines())
    # A second command adds to what is on.
    more = _censor(lab_up, "tcp-reset")
    assert more.exit_code == 0, more.output
    assert "switched on: dns-bogon, tls-sni-rst, tcp-reset" in more.output
    assert _check(lab_up, tmp_path, ("dns-bogon", "tls-sni-rst", "tcp-reset", "clean")) == []
    listed = _censor(lab_up, "--list")
    assert listed.exit_code == 0 and "switched on: dns-bogon, tls-sni-rst, tcp-reset" in listed.output
    # Off by name, then everything.
    part = _censor(lab_up, "--off", "tcp-reset")
    assert part.exit_code == 0 and "switched on: dns-bogon, tls-sni-rst\n" in part.output
    off = _censor(lab_up, "--off")
    assert off.exit_code == 0 and "no technique is switched on" in off.output
    assert _forward_rules(lab_up) == []
    again = _censor(lab_up, "--off", "dns-bogon")
    assert again.exit_code == 0 and "dns-bogon: was not switched on" in again.output
    # The sites the censor had reset or lied about are reachable again.
    from probe.lab.scenarios import by_name

    db = tmp_path / "after.db"
    urls = [by_name(n).targets[0].url for n in ("dns-bogon", "tls-sni-rst", "tcp-reset")]
    done = lab_up.probe(urls, db)
    assert done.returncode == 0, done.stderr
    from probe.lab.lab import _read_db

    assert {u: v.verdict for u, (_, v) in _read_db(db).items()} == dict.fromkeys(urls, "ok")


def test_techniques_on_the_same_traffic_are_refused_and_nothing_changes(lab_up: Any) -> None:
    assert _censor(lab_up, "tls-sni-rst").exit_code == 0
    try:
        rules = _forward_rules(lab_up)
        # The site's own firewall resetting the same ClientHello would hide the censor's reset.
        refused = _censor(lab_up, "down-everywhere")
        assert refused.exit_code == 2, refused.output
        assert "tls-sni-rst and down-everywhere cannot be combined" in refused.output
        assert "naming tls-rst.lab.example" in refused.output
        assert "nothing was switched on" in refused.output
        # Two named at once that rewrite the same name's DNS.
        both = _censor(lab_up, "dns-bogon", "dns-outage")
        assert both.exit_code == 2 and "dns-bogon and dns-outage cannot be combined" in both.output
        assert _forward_rules(lab_up) == rules
        assert _state(lab_up)["censor_on"] == ["tls-sni-rst"]
        # A group stands for its scenarios; an unknown name is a usage error naming the groups.
        typo = _censor(lab_up, "no-such-technique")
        assert typo.exit_code == 2 and "groups: web, packets" in typo.output
    finally:
        assert _censor(lab_up, "--off").exit_code == 0


def _alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_programs_and_delays_started_by_one_command_are_stopped_by_the_next(lab_up: Any) -> None:
    on = _censor(lab_up, "fet-entropy", "tunnels-slow")
    assert on.exit_code == 0, on.output
    try:
        state = _state(lab_up)
        fet = int(state["censor_programs"]["fet"])
        delays = [int(p) for p in state["delay_pids"]]
        assert _alive(fet) and delays and all(_alive(p) for p in delays)
        assert state["delay_ms"] == 150.0
    finally:
        off = _censor(lab_up, "--off")
    assert off.exit_code == 0, off.output
    state = _state(lab_up)
    assert not _alive(fet) and not any(_alive(p) for p in delays)
    assert state["censor_programs"] == {} and state["delay_pids"] == [] and state["censor_on"] == []
