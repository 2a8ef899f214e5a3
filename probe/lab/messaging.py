"""The lab's messaging apps: stand-ins for Telegram's data centres and the apps' services at lab
addresses (never the real ones), and how a messaging scenario is measured (`probe messaging` in
the client namespace, with the scenario's own endpoint list).

Servers, all in the server namespace behind the censor:

- ``DC_IP``: a stand-in Telegram data centre on 443 and 80 (probe/lab/toolservers.py
  ``--mtproto``): MTProto's first exchange, and an HTTP answer for the control helper's fetch;
- the services reached by name are lab sites (probe/lab/sites.py): ``web.telegram``,
  ``web.whatsapp``, ``e1.whatsapp`` (a chat endpoint, TCP only) and ``chat.signal`` under
  ``lab.example``, served by the lab's web server with the lab CA's certificates;
- a DC down for everyone is ``DOWN_IP`` (probe/lab/tunnels.py), where nothing listens.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from probe.core.net import format_endpoint
from probe.inputs.endpointlists import MESSAGING_APPS

if TYPE_CHECKING:
    from probe.lab.scenarios import Scenario

__all__ = [
    "DC_IP",
    "DC_PORTS",
    "SERVICES",
    "TOOL_ADDRESSES",
    "is_messaging",
    "messaging_argv",
    "services",
]

DC_IP = "10.66.2.220"
#: The ports Telegram's apps and OONI's experiment use.
DC_PORTS = (443, 80)
#: Addresses the server namespace carries for these servers.
TOOL_ADDRESSES = (DC_IP,)
#: The services reached by name, as lab sites: kind -> (list name, unique in a scenario; host
#: name; port).
SERVICES = {
    "telegram-web": ("tg-web", "web.telegram.lab.example", 443),
    "whatsapp-web": ("wa-web", "web.whatsapp.lab.example", 443),
    "whatsapp": ("wa-e1", "e1.whatsapp.lab.example", 443),
    "signal": ("signal-chat", "chat.signal.lab.example", 443),
}
#: `probe messaging` options the scenarios share: short steps (the lab answers in ms).
ARGS = ("--tcp-timeout", "2", "--handshake-timeout", "2", "--dns-timeout", "2", "--http-timeout", "5",
        "--deadline", "15", "--retry-pause", "0.2", "--decoy-sni", "clean.lab.example")  # fmt: skip


def services() -> dict[str, tuple[str, list[str]]]:
    """The servers: (``server``, the namespace role; command line), by name."""
    dcs = [a for port in DC_PORTS for a in ("--mtproto", format_endpoint(DC_IP, port))]
    return {"telegram-dc": ("server", [sys.executable, "-m", "probe.lab.toolservers", *dcs])}


def is_messaging(scenario: Scenario) -> bool:
    """True when the scenario's endpoints are the messaging apps' (`probe messaging`)."""
    return bool(scenario.endpoints) and all(e.kind in MESSAGING_APPS for e in scenario.endpoints)


def messaging_argv(listfile: Path, db: Path, control: str, cafile: str) -> list[str]:
    """`probe messaging` for a scenario's list (run in the client namespace)."""
    return ["messaging", str(listfile), "--db", str(db), "--vantage", "lab", "--control", control,
            "--cafile", cafile, "--accept-risks", "--json", *ARGS]  # fmt: skip
