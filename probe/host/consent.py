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
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import click

from probe import __version__
from probe.core.settings import (
    DEFAULT_CONTROLS,
    DEFAULT_GEO_URL,
    DEFAULT_STUN_FALLBACK,
    DEFAULT_STUN_SERVERS,
    DEFAULT_TESTLISTS_SOURCE,
    DEFAULT_WHOAMI_NAMES,
    OPERATORS,
    MeasureConfig,
    server_host,
)

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
    "risk_text",
]

#: Environment variable overriding the config directory (tests, several profiles on one host).
CONFIG_ENV = "PROBE_CONFIG_DIR"
#: Bump when RISK_TEXT changes in substance: everyone is asked again. 2: the text names every
#: third party probe contacts by default and says why it learns your public address (1 said,
#: wrongly, that probe never looks it up).
CONSENT_VERSION = 2
#: The width the text is written for: it fits a volunteer's 80-column terminal with a column
#: to spare (a line of exactly 80 wraps on some terminals); no word or command is broken.
WIDTH = 79
_NBSP = "\u00a0"  # joins the words of a command, so that wrapping never splits it


def _code(command: str) -> str:
    """A command the reader may type: kept on one line by the wrapping."""
    return "`" + command.replace(" ", _NBSP) + "`"


_TITLE = "Before you measure: the risks of running probe"

# Paragraphs of the text, unwrapped: a str is a paragraph, a tuple a bullet and its
# sub-bullets. The list of third parties is made from the defaults the code uses (settings).
_INTRO = (
    "probe checks whether websites are blocked by trying to reach them from YOUR Internet "
    "connection, the way a browser would. Please read this before you start."
)
_NOT_HIDDEN = (
    "You are not hidden. Your Internet provider, your employer or school, the operator of the "
    "Wi-Fi you use, and anyone else who can watch your traffic (including a government) can "
    "see that this connection looked up and contacted every site on the test lists. Many of "
    "those sites are chosen because they are sensitive: political opposition, human rights, "
    "news, religion, LGBTQI+ topics, circumvention tools, pornography, gambling. The pattern "
    "of traffic can also reveal that a measurement tool is running. probe is not a privacy "
    "or anonymity tool. (Run over a VPN or Tor, it would measure that network instead of "
    "yours.)"
)
_ILLEGAL = (
    "It may be illegal or dangerous where you are. In some countries, visiting certain "
    "sites, or measuring or documenting censorship at all, is against the law or can draw "
    "the attention of the authorities, with consequences that range from a warning to "
    "prosecution or worse. The risk depends on your country, on who you are and on the lists "
    "you test. If you are unsure, seek local advice before you run it. You can pick fewer or "
    f"less sensitive sites: {_code('probe run --category ...')}, or your own list."
)
_RESULTS = (
    "Your results can identify your network. probe keeps its results in a database on this "
    "machine and uploads nothing. If you publish them, share the database or merge it with "
    "other people's, they show your network (provider/ASN, country), your DNS resolver and "
    "the times you measured, which can be enough to point to you."
)


def _named(servers: tuple[str, ...], last: str = ", ") -> str:
    """``host (operator), host (operator)``: each default server with who runs it."""
    names = []
    for server in servers:
        host = server_host(server)
        names.append(host if OPERATORS[host] == host else f"{host} ({OPERATORS[host]})")
    return last.join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]


def _third_parties() -> tuple[str, ...]:
    """The bullet naming everyone a run contacts by default, and what each learns."""
    controls = ", ".join(server_host(c) for c in DEFAULT_CONTROLS)
    operators = sorted({OPERATORS[server_host(c)] for c in DEFAULT_CONTROLS})
    doh = MeasureConfig().doh
    return (
        "Who else probe contacts, and what each learns. Besides the sites you test and your "
        "DNS resolver (which see your address, as for any visit), a run contacts:",
        f"the control servers (test helpers) {controls}, run by {' and '.join(operators)}: "
        "they learn your public address, that you run a measurement tool, and each URL you "
        "test with the addresses your resolver gave for it;",
        f"STUN servers, asked for your public address: {_named(DEFAULT_STUN_SERVERS)}; only "
        f"if none of them answers, {_named(DEFAULT_STUN_FALLBACK)}. Each learns your public "
        "address;",
        f"the name {_named(DEFAULT_WHOAMI_NAMES)}, looked up through your resolver: its "
        "server learns your resolver's address;",
        (f"DNS-over-HTTPS servers {_named(doh)}: they learn your address and every name you "
         "test." if doh else
         "no DNS-over-HTTPS server, unless you name one (--doh)."),
    )


def _why_address() -> str:
    return (
        "probe learns your public address only to remove it: it is replaced by [scrubbed], "
        "with this machine's own addresses, in every page, header and DNS answer it keeps, "
        "and it is never stored, logged or uploaded. If no server tells it, probe says so "
        f"({_code('--require-identity')} then refuses to measure). "
        f"{_code('probe testlists update')} and {_code('probe geo update')}, only when you run "
        f"them, download from {_named((DEFAULT_TESTLISTS_SOURCE, DEFAULT_GEO_URL), ' and ')}. "
        "Servers you give (--control, --stun, --whoami, --doh) replace these."
    )


def _wrap(text: str, first: str, rest: str, width: int) -> list[str]:
    lines = textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace(_NBSP, " ") for line in lines]


def risk_text(width: int = WIDTH) -> str:
    """The risk disclosure, wrapped to ``width`` columns without breaking a word."""
    contacts = _third_parties()
    blocks = [
        [_TITLE, "=" * len(_TITLE)],
        _wrap(_INTRO, "", "", width),
        *(_wrap(text, "* ", "  ", width) for text in (_NOT_HIDDEN, _ILLEGAL, _RESULTS)),
        [*_wrap(contacts[0], "* ", "  ", width),
         *(line for sub in contacts[1:] for line in _wrap(sub, "  - ", "    ", width)),
         *_wrap(_why_address(), "  ", "  ", width)],
        _wrap("Running probe means you understand these risks and accept them.", "", "", width),
    ]
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


RISK_TEXT = risk_text()

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
