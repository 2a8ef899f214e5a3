"""The lab's circumvention scenarios: encrypted DNS resolvers, the reflector, and how a
scenario's endpoints are measured (`probe circumvention` in the client namespace) and checked.

Servers, all in the server namespace behind the censor:

- ``RESOLVER_IP``: a DNS-over-HTTPS (443) and DNS-over-TLS (853) resolver named
  ``RESOLVER_NAME`` (a certificate of the lab CA), answering through the lab's authoritative
  server (probe/lab/toolservers.py);
- ``DOWN_IP``: an address where nothing listens (a resolver down for everyone);
- ``REFLECTOR_IP``: a second control helper, ``probe helper serve --reflector``, whose reflector
  the probe finds through its ``/health`` (``--reflector URL``), as it would on the Internet;
- ``BLOCKED_RELAY`` and ``OPEN_RELAY``: Tor-like relays (TLS on 9001 with a certificate of a CA
  nobody trusts, as Tor relays' are self-signed), and ``VPN``: an OpenVPN server answering the
  first handshake packet over UDP and TCP on 1194 (probe/lab/toolservers.py);

and in the censor namespace two lying resolvers that scenarios redirect DoH/DoT to (NAT).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from probe.core.net import format_endpoint
from probe.lab.topology import AUTH_DNS

if TYPE_CHECKING:
    # Types only: the scenarios (data) import this module's addresses.
    from probe.lab.scenarios import Scenario

__all__ = [
    "BLOCKED_RELAY",
    "DOWN_IP",
    "OPEN_RELAY",
    "REFLECTOR_IP",
    "REFLECTOR_PORT",
    "REFLECTOR_URL",
    "RESOLVER_IP",
    "RESOLVER_NAME",
    "TOOL_ADDRESSES",
    "TRUSTED_LIAR",
    "UNTRUSTED_LIAR",
    "VPN",
    "circumvention_argv",
    "endpoint_list",
    "services",
]

RESOLVER_IP = "10.66.2.210"
RESOLVER_NAME = "resolver.lab.example"
DOWN_IP = "10.66.2.211"
REFLECTOR_IP = "10.66.2.212"
REFLECTOR_PORT = 8780
REFLECTOR_URL = f"http://{format_endpoint(REFLECTOR_IP, REFLECTOR_PORT)}/"
#: The reflector's ports (the defaults of `probe helper serve --reflector`).
REFLECTOR_TCP = (8781, 8782)
REFLECTOR_WIREGUARD = 51820
BLOCKED_RELAY = "10.66.2.201"  # a relay the circumvention scenarios' censor blackholes
OPEN_RELAY = "10.66.2.202"
VPN = "10.66.2.203"
#: Addresses the server namespace carries for these servers.
TOOL_ADDRESSES = (RESOLVER_IP, DOWN_IP, REFLECTOR_IP, BLOCKED_RELAY, OPEN_RELAY, VPN)
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
    rcert, rkey = certs["relay"]
    liar = [py, "-m", "probe.lab.toolservers", "--lie-nxdomain"]
    anywhere = "0.0.0.0"  # the censor's resolvers take what its NAT rules redirect to them
    return {
        "resolvers": ("server", [py, "-m", "probe.lab.toolservers",
                                 "--doh", format_endpoint(RESOLVER_IP, 443),
                                 "--dot", format_endpoint(RESOLVER_IP, 853),
                                 "--upstream", format_endpoint(AUTH_DNS, 53), "--cert", cert, "--key", key]),
        "liar-trusted": ("censor", [*liar, "--doh", format_endpoint(anywhere, TRUSTED_LIAR[0]),
                                    "--dot", format_endpoint(anywhere, TRUSTED_LIAR[1]),
                                    "--cert", cert, "--key", key]),
        "liar-untrusted": ("censor", [*liar, "--doh", format_endpoint(anywhere, UNTRUSTED_LIAR[0]),
                                      "--dot", format_endpoint(anywhere, UNTRUSTED_LIAR[1]),
                                      "--cert", ccert, "--key", ckey]),
        "relays": ("server", [py, "-m", "probe.lab.toolservers",
                              "--tls", format_endpoint(BLOCKED_RELAY, 9001),
                              "--tls", format_endpoint(OPEN_RELAY, 9001),
                              "--openvpn", format_endpoint(VPN, 1194), "--cert", rcert, "--key", rkey]),
        # A reflector generous enough for the scenarios (the helper's defaults are for the Internet).
        "reflector": ("server", [py, "-m", "probe", "helper", "serve", "--listen",
                                 format_endpoint(REFLECTOR_IP, REFLECTOR_PORT), "--reflector",
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
