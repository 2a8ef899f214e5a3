"""Informed consent: explain the risks of measuring censorship before the first run.

Measuring censorship means trying to reach sites that someone wants unreachable, from your own
connection. Like OONI Probe, probe explains the risks once and remembers the user's acceptance in
the config directory (``$PROBE_CONFIG_DIR``, else the platform's per-user app directory).
``probe run --accept-risks`` accepts non-interactively (cron, scripts); without it a run that
cannot ask (no terminal) refuses to measure.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from probe import __version__

__all__ = [
    "CONSENT_DECLINED_MESSAGE",
    "CONSENT_REQUIRED_MESSAGE",
    "CONSENT_VERSION",
    "RISK_TEXT",
    "config_dir",
    "consent_file",
    "ensure_consent",
    "has_consented",
    "is_interactive",
    "record_consent",
    "revoke_consent",
]

#: Environment variable overriding the config directory (tests, several profiles on one host).
CONFIG_ENV = "PROBE_CONFIG_DIR"
#: Bump when RISK_TEXT changes in substance: everyone is asked again.
CONSENT_VERSION = 1

RISK_TEXT = """\
Before you measure: the risks of running probe
==============================================

probe checks whether websites are blocked by trying to reach them from YOUR Internet
connection, the way a browser would. Please read this before you start.

* You are not hidden. Your Internet provider, your employer or school, the operator of
  the Wi-Fi you use, and anyone else who can watch your traffic (including a government)
  can see that this connection looked up and contacted every site on the test lists.
  Many of those sites are chosen because they are sensitive: political opposition,
  human rights, news, religion, LGBTQI+ topics, circumvention tools, pornography,
  gambling. The pattern of traffic can also reveal that a measurement tool is running.
  probe is not a privacy or anonymity tool. (Run over a VPN or Tor, it would measure
  that network instead of yours.)

* It may be illegal or dangerous where you are. In some countries, visiting certain
  sites, or measuring or documenting censorship at all, is against the law or can draw
  the attention of the authorities, with consequences that range from a warning to
  prosecution or worse. The risk depends on your country, on who you are and on the
  lists you test. If you are unsure, seek local advice before you run it. You can pick
  fewer or less sensitive sites: `probe run --category ...`, or your own list.

* Your results can identify your network. probe keeps its results in a database on
  this machine and uploads nothing. If you publish them, share the database or merge
  it with other people's, they show your network (provider/ASN, country), your DNS
  resolver and the times you measured, which can be enough to point to you.

* probe never looks up or records your public IP address. The sites you test and
  the DNS resolvers you query do see it, as they would for any visit. So does the
  control server (test helper, by default OONI's public ones), which is also told
  each URL you test and the addresses your resolver gave for it.

Running probe means you understand these risks and accept them.
"""

CONSENT_REQUIRED_MESSAGE = (
    "probe has not been told that you accept the risks of measuring censorship "
    "(run `probe run` once on a terminal to read them, or pass --accept-risks "
    "if you have read them and accept them)."
)
CONSENT_DECLINED_MESSAGE = "Not measuring: the risks were not accepted."


def config_dir() -> Path:
    """Where probe keeps per-user state: ``$PROBE_CONFIG_DIR``, else click's app dir for "probe"
    (``~/.config/probe`` on Linux)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path(click.get_app_dir("probe"))  # the platform-aware app directory


def consent_file() -> Path:
    """The file that records the user's acceptance."""
    return config_dir() / "consent.json"


def has_consented() -> bool:
    """Whether the risks were accepted (of the current :data:`CONSENT_VERSION`). A missing,
    unreadable or corrupt consent file counts as no consent."""
    try:
        data = json.loads(consent_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("accepted") is True
        and isinstance(data.get("consent_version"), int)
        and data["consent_version"] >= CONSENT_VERSION
    )


def record_consent() -> None:
    """Remember the acceptance: a small JSON file with the time and software version.

    Written atomically (temporary file + rename). Raises ``OSError`` if the directory cannot
    be written.
    """
    path = consent_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "accepted": True,
        "consent_version": CONSENT_VERSION,
        "accepted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "software_version": __version__,
    }
    fd, tmp = tempfile.mkstemp(prefix=".consent-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def revoke_consent() -> bool:
    """Forget the acceptance (the next run asks again). Returns whether there was one."""
    try:
        consent_file().unlink()
    except FileNotFoundError:
        return False
    return True


def is_interactive() -> bool:
    """Whether probe can ask the user a question: stdin and stdout are terminals."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def ensure_consent(
    accept_risks: bool,
    interactive: bool,
    echo: Callable[[str], object],
    confirm: Callable[[str], bool],
) -> bool:
    """Decide whether a run may measure; returns ``True`` to proceed.

    - ``accept_risks`` (``--accept-risks``): record the acceptance and proceed;
    - already accepted earlier: proceed;
    - ``interactive``: show :data:`RISK_TEXT`, ask with ``confirm``; record and proceed on yes;
    - otherwise (no terminal, no flag): ``False``; the caller exits 2 with
      :data:`CONSENT_REQUIRED_MESSAGE`.

    ``echo`` and ``confirm`` are ``click.echo`` and ``click.confirm`` in the CLI. Failing to save
    the acceptance does not stop a run the user just accepted; it is reported through ``echo``.
    """
    if has_consented():
        return True
    if accept_risks:
        _record_or_warn(echo)
        return True
    if not interactive:
        return False
    echo(RISK_TEXT)
    if not confirm("Do you understand these risks and want to run probe?"):
        return False
    _record_or_warn(echo)
    return True


def _record_or_warn(echo: Callable[[str], object]) -> None:
    try:
        record_consent()
    except OSError as exc:
        echo(f"warning: could not remember your acceptance in {consent_file()}: {exc}")
