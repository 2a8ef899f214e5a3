"""Configure the censor namespace: base chains once, then one scenario's rules at a time.

The censor's iptables rules live in chains of their own (``LAB-FWD`` in filter, jumped to from
FORWARD; ``LAB-PRE`` in nat, jumped to from PREROUTING; ``LAB-LOCAL`` in filter, jumped to from
INPUT, for what reaches the censor itself), so a reset flushes only them and leaves the latency
knob's mangle rules alone. The server and the uncensored namespace have a ``LAB-IN`` chain of
their own (the sites' own firewall; the client's link to the control helper). Every change is
one ``iptables-restore --noflush``
(atomic), followed by ``conntrack -F`` so that no flow keeps a NAT mapping from the scenario
before. The resolver, proxy and injector read their JSON files on change; they are replaced
atomically (write + rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from probe.lab.quiccensor import QUEUE
from probe.lab.scenarios import Censor
from probe.lab.topology import LabError, Topology, ns_run

__all__ = ["CONFIG_FILES", "apply", "install_base", "set_bandwidth"]

#: The per-service configuration files in the lab's state directory.
CONFIG_FILES = {
    "resolver": "resolver-overrides.json",
    "proxy": "proxy.json",
    "injector": "injector.json",
    "quic": "quic-censor.json",
}
#: Seconds a flow stays blocked after a QUIC Initial naming a blocked SNI (the GFW: ~2 minutes).
QUIC_RESIDUAL = 120

_SERVER_BASE = """*filter
:LAB-IN - [0:0]
-A INPUT -j LAB-IN
COMMIT
"""

_BASE = """*filter
:LAB-FWD - [0:0]
:LAB-LOCAL - [0:0]
:LAB-PRIME - [0:0]
-A FORWARD -j LAB-FWD
-A INPUT -j LAB-LOCAL
-A LAB-PRIME -m conntrack --ctstate INVALID -j RETURN
COMMIT
*nat
:LAB-PRE - [0:0]
-A PREROUTING -j LAB-PRE
COMMIT
"""


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def install_base(topo: Topology) -> None:
    """Create the lab chains, and prime conntrack (iptables-nft tracks flows only once a rule
    needs it; a flow opened before the first NAT rule would be picked up mid-stream). The
    server gets a ``LAB-IN`` chain for scenarios where the site itself refuses a client, the
    uncensored namespace one for the shutdown that cuts the client's link to the helper."""
    ns_run(topo.censor, ["iptables-restore", "--noflush"], stdin=_BASE)
    for ns in (topo.server, topo.uncensored):
        ns_run(ns, ["iptables-restore", "--noflush"], stdin=_SERVER_BASE)


def _rules(censor: Censor) -> str:
    lines = ["*filter", "-F LAB-FWD"]
    lines += [f"-A LAB-FWD {r}" for r in censor.forward]
    if censor.quic_sni or censor.quic_drop_data:  # every UDP/443 datagram, both ways, through it
        lines += [f"-A LAB-FWD -p udp --{d}port 443 -j NFQUEUE --queue-num {QUEUE} --queue-bypass"
                  for d in ("d", "s")]  # fmt: skip
    lines += ["-F LAB-LOCAL", *(f"-A LAB-LOCAL {r}" for r in censor.censor_input)]
    lines += ["COMMIT", "*nat", "-F LAB-PRE"]
    lines += [f"-A LAB-PRE {r}" for r in censor.nat]
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def _input_rules(rules: tuple[str, ...]) -> str:
    return "\n".join(["*filter", "-F LAB-IN", *(f"-A LAB-IN {r}" for r in rules), "COMMIT", ""])


def apply(topo: Topology, state_dir: Path, censor: Censor) -> None:
    """Make the censor do exactly what ``censor`` says (``Censor()`` resets it)."""
    overrides = {
        name.lower(): {"action": action, "addresses": list(addrs), "delay": delay}
        for name, action, addrs, delay in censor.resolver
    }
    _write_json(state_dir / CONFIG_FILES["resolver"], overrides)
    _write_json(
        state_dir / CONFIG_FILES["proxy"],
        {
            "block_hosts": list(censor.proxy_block),
            "redirect_hosts": {host.lower(): loc for host, loc in censor.proxy_redirect},
        },
    )
    _write_json(
        state_dir / CONFIG_FILES["injector"],
        {
            "dns": {name.lower(): list(addrs) for name, addrs in censor.inject_dns},
            "tcp": [{"port": p, "hex": h, "flags": f} for p, h, f in censor.inject_tcp]
            + [{"port": p, "hex": h, "flags": f, "ttl": "copy"}
               for p, h, f in censor.inject_tcp_copy_ttl],
        },
    )
    _write_json(
        state_dir / CONFIG_FILES["quic"],
        {"block": [n.lower() for n in censor.quic_sni], "residual": QUIC_RESIDUAL,
         "drop_data": list(censor.quic_drop_data)},
    )
    for what, ns, rules in (("censor", topo.censor, _rules(censor)),
                            ("server", topo.server, _input_rules(censor.server_input)),
                            ("helper link", topo.uncensored, _input_rules(censor.helper_input))):  # fmt: skip
        try:
            ns_run(ns, ["iptables-restore", "--noflush"], stdin=rules)
        except LabError as exc:
            raise LabError(f"{what} rules rejected: {exc}\n{rules}") from None
    # Flows of the previous scenario must not keep their conntrack (NAT) state.
    ns_run(topo.censor, ["conntrack", "-F"], check=False)


def set_bandwidth(censor_ns: str, rate: str | None, ifaces: tuple[str, ...] = ("r0", "r1")) -> None:
    """Cap the censor's forwarding rate with tbf on ``ifaces`` (e.g. ``"8mbit"``); None removes it."""
    for dev in ifaces:
        ns_run(censor_ns, ["tc", "qdisc", "del", "dev", dev, "root"], check=False)
        if rate:
            ns_run(censor_ns, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                               "burst", "32kb", "latency", "100ms"])  # fmt: skip
