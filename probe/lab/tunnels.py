"""The lab's circumvention scenarios: encrypted DNS resolvers, the reflector, and how a
scenario's endpoints are measured (`probe circumvention` in the client namespace) and checked.

Servers, all in the server namespace behind the censor:

- ``RESOLVER_IP``: a DNS-over-HTTPS (443) and DNS-over-TLS (853) resolver named
  ``RESOLVER_NAME`` (a certificate of the lab CA), answering through the lab's authoritative
  server (probe/lab/toolservers.py);
- ``DOWN_IP``: an address where nothing listens (a resolver down for everyone);
- ``REFLECTOR_IP``: a second control helper, ``probe helper serve --reflector``, whose reflector
  the probe finds through its ``/health`` (``--reflector URL``), as it would on the Internet;

and in the censor namespace two lying resolvers that scenarios redirect DoH/DoT to (NAT).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.lab.topology import AUTH_DNS

if TYPE_CHECKING:
    # Types only: the scenarios (data) import this module's addresses.
    from probe.lab.checks import Outcome
    from probe.lab.scenarios import EndpointExpect, Scenario

__all__ = [
    "DOWN_IP",
    "REFLECTOR_IP",
    "REFLECTOR_PORT",
    "REFLECTOR_URL",
    "RESOLVER_IP",
    "RESOLVER_NAME",
    "TOOL_ADDRESSES",
    "TRUSTED_LIAR",
    "UNTRUSTED_LIAR",
    "check_endpoint",
    "circumvention_argv",
    "endpoint_list",
    "observed_endpoint",
    "read_endpoints",
    "services",
]

RESOLVER_IP = "10.66.2.210"
RESOLVER_NAME = "resolver.lab.example"
DOWN_IP = "10.66.2.211"
REFLECTOR_IP = "10.66.2.212"
REFLECTOR_PORT = 8780
REFLECTOR_URL = f"http://{REFLECTOR_IP}:{REFLECTOR_PORT}/"
#: The reflector's ports (the defaults of `probe helper serve --reflector`).
REFLECTOR_TCP = (8781, 8782)
REFLECTOR_WIREGUARD = 51820
#: Addresses the server namespace carries for these servers.
TOOL_ADDRESSES = (RESOLVER_IP, DOWN_IP, REFLECTOR_IP)
#: A name every resolver is asked about, which the control resolves too.
NAME = "clean.lab.example"
#: `probe circumvention` options the scenarios share: short steps (the lab answers in ms).
ARGS = ("--tcp-timeout", "2", "--handshake-timeout", "2", "--retry-pause", "0.2", "--dns-name", NAME,
        "--decoy-sni", NAME, "--fet-tries", "2", "--reflector", REFLECTOR_URL)  # fmt: skip


#: Ports of the censor's own resolvers (the NAT rules of scenarios redirect DoH and DoT there):
#: one with a certificate the client trusts (a state CA installed on the device), one with the
#: censor's untrusted CA. Both answer NXDOMAIN for every name.
TRUSTED_LIAR = (4443, 4853)
UNTRUSTED_LIAR = (5443, 5853)


def services(state_dir: Path, certs: dict[str, tuple[str, str]]) -> dict[str, tuple[str, list[str]]]:
    """The servers: (``server`` or ``censor``, the namespace role; command line), by name."""
    py = sys.executable
    cert, key = certs["valid"]
    ccert, ckey = certs["censor"]
    liar = [py, "-m", "probe.lab.toolservers", "--lie-nxdomain"]
    return {
        "resolvers": ("server", [py, "-m", "probe.lab.toolservers", "--doh", f"{RESOLVER_IP}:443", "--dot",
                                 f"{RESOLVER_IP}:853", "--upstream", f"{AUTH_DNS}:53", "--cert", cert,
                                 "--key", key]),
        "liar-trusted": ("censor", [*liar, "--doh", f"0.0.0.0:{TRUSTED_LIAR[0]}", "--dot",
                                    f"0.0.0.0:{TRUSTED_LIAR[1]}", "--cert", cert, "--key", key]),
        "liar-untrusted": ("censor", [*liar, "--doh", f"0.0.0.0:{UNTRUSTED_LIAR[0]}", "--dot",
                                      f"0.0.0.0:{UNTRUSTED_LIAR[1]}", "--cert", ccert, "--key", ckey]),
        # A reflector generous enough for the scenarios (the helper's defaults are for the Internet).
        "reflector": ("server", [py, "-m", "probe", "helper", "serve", "--listen",
                                 f"{REFLECTOR_IP}:{REFLECTOR_PORT}", "--reflector",
                                 "--reflector-rate", "200"]),
    }  # fmt: skip


def endpoint_list(scenario: Scenario) -> str:
    """The endpoint CSV of the scenario's listed endpoints."""
    rows = ["kind,name,address,port,sni,notes,source"]
    rows += [f"{e.kind},{e.name},{e.address},{e.port},{e.sni},,lab" for e in scenario.endpoints if e.address]
    return "\n".join(rows) + "\n"


def circumvention_argv(scenario: Scenario, listfile: Path, db: Path, control: str, cafile: str) -> list[str]:
    """`probe circumvention` for the scenario (run in the client namespace)."""
    reflector = any(not e.address for e in scenario.endpoints)
    args = [a for a in ARGS if reflector or a not in ("--reflector", REFLECTOR_URL)]
    return ["circumvention", str(listfile), "--db", str(db), "--vantage", "lab", "--control", control,
            "--cafile", cafile, "--accept-risks", "--json", *args, *([] if reflector else ["--no-reflector"])]


def read_endpoints(db: Path) -> dict[str, dict[str, Any]]:
    """The stored endpoint results by name (with the observation), from a probe database."""
    from probe.store import Store
    from probe.store.circumvention import endpoint_measurements_at

    if not db.exists():
        return {}
    with Store.open(db, create=False) as store:
        return {d["name"]: d for d in endpoint_measurements_at(store, None, None)}


def observed_endpoint(d: dict[str, Any]) -> str:
    """A one-line summary of what was observed at one endpoint."""
    obs = d["observation"]
    parts = []
    if obs.get("tcp_failure"):
        parts.append(f"tcp:{obs['tcp_failure']}")
    elif obs.get("handshake") in ("tls", "openvpn"):
        parts.append(f"{obs['handshake']}:{obs.get('handshake_failure') or 'ok'}")
    if obs.get("decoy_sni"):
        parts.append(f"decoy:{obs.get('decoy_failure') or 'ok'}")
    for q in obs.get("queries") or []:
        parts.append(f"{q['name']}={','.join(q['addresses']) or q.get('rcode') or q.get('failure')}")
    for t in obs.get("trials") or []:
        what = f"{t['step']}:{t['failure']}" if t.get("failure") else (t.get("detail") or "ok")
        parts.append(f"{t['role']}@{t['port']} {what}")
    return "; ".join(parts) or "nothing"


def check_endpoint(e: EndpointExpect, d: dict[str, Any] | None) -> Outcome:
    """Check one stored endpoint result against ``e``."""
    from probe.lab.checks import Outcome

    if d is None:
        return Outcome(e.url, ("the probe stored no result for this endpoint",), ("no verdict",),
                       "nothing", "-")  # fmt: skip
    seen = observed_endpoint(d)
    obs_errors = []
    if e.observed and e.observed not in seen:
        obs_errors.append(f"observed: expected {e.observed!r} in {seen!r}")
    if d["kind"] != e.kind:
        obs_errors.append(f"kind: expected {e.kind}, got {d['kind']}")
    verdict_errors = []
    got = d["verdict"] + (f"/{d['stage']}" if d["stage"] else "")
    if d["verdict"] != e.verdict:
        verdict_errors.append(f"verdict: expected {e.verdict}, got {d['verdict']}")
    if e.stage is not None and d["stage"] != e.stage:
        verdict_errors.append(f"stage: expected {e.stage}, got {d['stage']}")
    if e.reason and not any(e.reason in r for r in d["reasons"]):
        verdict_errors.append(f"reason: expected {e.reason!r} in {d['reasons']}")
    return Outcome(e.url, tuple(obs_errors), tuple(verdict_errors), seen, got)


def dumps(d: dict[str, Any]) -> str:
    """A stored endpoint result as one JSON line (for `probe lab run -v`)."""
    return json.dumps({k: d[k] for k in ("name", "verdict", "stage", "reasons")}, sort_keys=True)
