"""Shared click options: each run setting is declared once, with its default and its check.

The decorators here stack the options of one part of the run configuration
(:mod:`probe.core.settings`) the way sqlite-utils shares its options between commands; the
``build_*`` functions turn the parsed values back into those dataclasses. Defaults are read from
the dataclasses' fields, so a default is written in exactly one place.

Every value is checked when the command line is parsed: a bad value is a usage error (exit 2)
that names the flag, never a traceback or a run that measures nothing: the parameter types
that check them are in :mod:`probe.cli.types`; :mod:`probe.core.settings` re-checks what the Python
API is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from probe.cli.types import (
    CAFile,
    Country,
    FingerprintFile,
    GeoFile,
    HttpURL,
    NonEmpty,
    Resolver,
    RunRef,
    Seconds,
    StunServer,
)
from probe.core.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONTROLS,
    DEFAULT_DB,
    ListSelection,
    MeasureConfig,
    RunRequest,
    RunSettings,
)

__all__ = [
    "DB_ENV",
    "build_request",
    "cafile_option",
    "check_endpoint_suite",
    "country_lookup",
    "db_option",
    "echo_err",
    "echo_prose",
    "endpoint_suite_options",
    "fingerprints_option",
    "geo_option",
    "list_options",
    "measure_options",
    "require_consent",
    "resolv_conf_option",
    "resolver_option",
    "run_settings_options",
    "since_option",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable naming the results database (between --db and the config file).
DB_ENV = "PROBE_DB"


def _default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise KeyError(name)  # pragma: no cover - a typo in this module


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


# --- options shared between commands --------------------------------------------------------


class ConfigOption(click.Option):
    """An option the config file may set (see :mod:`probe.host.userconfig`)."""

    configurable = True


class ConfigArgument(click.Argument):
    """An argument the config file may set (``lists``)."""

    configurable = True


def _option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=ConfigOption, **attrs)


db_option = _option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB, envvar=DB_ENV,
    show_default=True, show_envvar=True, help="Results database (also the config file's `db`).")
cafile_option = _option(
    "--cafile", type=CAFile(), help="Extra CA bundle (PEM) trusted when validating sites.")
geo_option = _option(
    "--geo", type=GeoFile(), help="IP-to-ASN database (.mmdb or ip2asn TSV) for DNS consistency.")
fingerprints_option = _option(
    "--fingerprints", multiple=True, type=FingerprintFile(),
    help="Extra block-page fingerprint file (repeatable).")

list_options = _compose(
    click.argument("lists", nargs=-1, cls=ConfigArgument, type=click.Path(dir_okay=False, allow_dash=True,
                                                       path_type=Path)),
    _option("--url", "urls", multiple=True, metavar="URL", help="Measure this URL (repeatable)."),
    _option("--category", metavar="CODES", help="Only these categories, e.g. NEWS,HUMR."),
    _option("--strict", is_flag=True, help="Any invalid list row is fatal (exit 2)."),
)

_M = MeasureConfig
resolver_option = _option(
    "--resolver", "resolvers", multiple=True, type=Resolver(), metavar="IP[:PORT]",
    help="Resolve through this UDP resolver instead of /etc/resolv.conf (repeatable).")
resolv_conf_option = _option(
    "--resolv-conf", type=click.Path(exists=True, dir_okay=False), default=None,
    help=f"resolv.conf to read the system resolver from.  [default: {_default(_M, 'resolv_conf')}]")
measure_options = _compose(
    resolver_option,
    resolv_conf_option,
    _option("--doh", multiple=True, type=HttpURL(https_only=True), metavar="URL",
                 help="DNS-over-HTTPS server (https://) used as DNS control."),
    cafile_option,
    _option("--dns-timeout", type=Seconds(0.1), default=_default(_M, "dns_timeout"),
                 show_default=True),
    _option("--tcp-timeout", type=Seconds(0.1), default=_default(_M, "tcp_timeout"),
                 show_default=True),
    _option("--tls-timeout", type=Seconds(0.1), default=_default(_M, "tls_timeout"),
                 show_default=True),
    _option("--http-timeout", type=Seconds(0.1), default=_default(_M, "http_timeout"),
                 show_default=True),
    _option("--deadline", type=Seconds(1.0), default=_default(_M, "deadline"),
                 show_default=True, help="Seconds allowed per URL, all steps and redirects included."),
    _option("--late-window", type=Seconds(0.0, 60.0), default=_default(_M, "late_window"),
                 show_default=True,
                 help="Seconds to keep listening for more DNS replies (injection evidence)."),
    _option("--body-cap", type=click.IntRange(0, 1 << 30), default=_default(_M, "body_cap"),
                 show_default=True, help="Bytes of each HTTP body kept."),
    _option("--max-redirects", type=click.IntRange(0, 50),
                 default=_default(_M, "max_redirects"), show_default=True),
    _option("--decoy-sni", default="", metavar="NAME",
                 help="After a failed TLS handshake, retry the address with this harmless SNI "
                 "(SNI filtering or a blocked address? see docs/packets.md)."),
    _option("--decoy-host", default="", metavar="NAME",
                 help="After a failed HTTP exchange, retry the address with this harmless Host."),
    _option("--dns-probe", "dns_probe", multiple=True, type=Resolver(), metavar="IP",
                 help="An address that runs no DNS server: query each name there too; any "
                 "answer is injected on the path (repeatable)."),
    _option("--quic", is_flag=True,
                 help="Also try QUIC (HTTP/3) to each https site's addresses, with its name and "
                 "with a harmless one: a verdict of its own (docs/protocols.md; needs aioquic)."),
    _option("--quic-timeout", type=Seconds(0.1), default=_default(_M, "quic_timeout"),
                 show_default=True, help="Seconds allowed per QUIC handshake."),
    _option("--ech", is_flag=True,
                 help="Also send each https site's addresses a ClientHello with and without an "
                 "Encrypted Client Hello extension: a verdict of its own (docs/protocols.md)."),
    _option("--ech-sni", default="", metavar="NAME",
                 help="The SNI of the --ech hellos instead of each site's name (e.g. an ECH "
                 "provider's public name, cloudflare-ech.com)."),
    _option("--control-first-url", is_flag=True,
                 help="Ask the control about the URL of the list only, not about each redirect "
                 "(OONI Probe's way with OONI's helper, which follows the redirects itself)."),
)

_R = RunSettings
run_settings_options = _compose(
    db_option,
    _option("--vantage", type=NonEmpty(), default=None,
                 help="Name of this vantage point  [default: from the network, e.g. AS12389-RU]"),
    _option("--asn", type=click.IntRange(1, (1 << 32) - 1), default=None,
                 help="This network's AS number (overrides what the identity check found)."),
    _option("--country", type=Country(), default=None, metavar="CC",
                 help="This network's ISO 3166 country code (overrides the IP data's)."),
    _option("--network", type=NonEmpty(), default=None, metavar="TEXT",
                 help='Free-form description of this network, e.g. "home fibre".'),
    _option("--stun", multiple=True, type=StunServer(), metavar="HOST[:PORT]",
                 help="STUN server to learn the public address from (repeatable)  "
                 "[default: $PROBE_STUN_SERVERS, else public servers]"),
    _option("--whoami", multiple=True, type=NonEmpty(), metavar="NAME",
                 help="Name whose DNS answer is the resolver's address (repeatable)  "
                 "[default: $PROBE_WHOAMI_NAMES, else whoami.akamai.net]"),
    _option("--no-identity", is_flag=True,
                 help="Do not learn the network identity (no STUN, no whoami; then the public "
                 "address is unknown and cannot be scrubbed from what is stored)."),
    _option("--require-identity", is_flag=True,
                 help="Measure only when the public address was learned (so it can be scrubbed "
                 "from what sites echo); else exit 1, the run recorded as failed."),
    _option("--control", "controls", multiple=True, type=HttpURL(), metavar="URL",
                 help="Test helper (OONI Web Connectivity protocol); repeatable, tried in turn. "
                 "Default: OONI's public helpers."),
    _option("--no-control", is_flag=True, help="Use no control: only locally provable verdicts."),
    _option("--allow-no-control", is_flag=True,
                 help="Measure even when no control answers the pre-flight check (every verdict "
                 "is then local-only); by default such a run fails with exit 1."),
    _option("--wait-lock", type=Seconds(0.0), default=_default(_R, "wait_lock"), show_default=True,
            metavar="SECONDS",
            help="Wait this long for another run on the same database to finish; then exit 75."),
    click.option("--resume", metavar="[RUN]", is_flag=False, flag_value="latest", default=None,
                 type=RunRef(),
                 help="Continue an interrupted run (default: the newest interrupted one) with "
                 "the same lists, measuring only the URLs it has not stored."),
    _option("--concurrency", type=click.IntRange(1, 4096), default=DEFAULT_CONCURRENCY,
                 show_default=True, help="URLs in flight (64: from the benchmark)."),
    _option("--per-host", type=click.IntRange(1, 1024), default=_default(_R, "per_host"),
                 show_default=True, help="URLs in flight per host name."),
    _option("--retries", type=click.IntRange(0, 5), default=_default(_R, "retries"),
                 show_default=True,
                 help="Re-measure a URL whose step failed while the control succeeded."),
    _option("--retry-pause", type=Seconds(0.0, 600.0), default=_default(_R, "retry_pause"),
                 show_default=True),
    fingerprints_option,
    geo_option,
    _option("--capture", is_flag=True,
                 help="Record packet metadata (TTL, IP ID, flags) of what comes back on the "
                 "probe's own flows: injection evidence. Needs root or CAP_NET_RAW (else a "
                 "warning, and no capture)."),
    _option("--pcap", type=click.Path(file_okay=False), default=None, metavar="DIR",
                 help="Also write the captured packets' headers (and DNS replies), your address "
                      "rewritten, to DIR/run-N.pcap (implies --capture)."),
)

_MEASURE_KEYS = ("resolvers", "resolv_conf", "doh", "cafile", "dns_timeout", "tcp_timeout",
                 "tls_timeout", "http_timeout", "deadline", "late_window", "body_cap",
                 "max_redirects", "decoy_sni", "decoy_host", "dns_probe", "control_first_url",
                 "quic", "quic_timeout", "ech", "ech_sni")
_SETTINGS_KEYS = ("db", "vantage", "concurrency", "per_host", "retries", "retry_pause",
                  "fingerprints", "geo", "allow_no_control", "wait_lock", "resume", "asn",
                  "country", "network", "capture", "pcap", "require_identity")
_LIST_KEYS = ("lists", "urls", "category", "strict")


def build_request(ctx: click.Context, params: dict[str, Any]) -> RunRequest:
    """The :class:`RunRequest` of the options above (``params``: the command's keyword arguments).

    ``--control`` and ``--no-control`` given together on the command line are a usage error; a
    control from the config file or the environment gives way to ``--no-control``.
    """
    controls: tuple[str, ...] = tuple(params.get("controls") or ())
    if params.get("no_control"):
        source = ctx.get_parameter_source("controls")
        if controls and source == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--control and --no-control exclude each other")
        controls = ()
    elif not controls:
        controls = DEFAULT_CONTROLS
    measure: dict[str, Any] = {k: params[k] for k in _MEASURE_KEYS if k in params}
    measure["resolvers"] = tuple(measure.get("resolvers") or ())
    measure["system_resolver"] = not measure["resolvers"]
    measure["doh"] = tuple(measure.get("doh") or ())
    measure["dns_probe"] = tuple(measure.get("dns_probe") or ())
    for key in ("decoy_sni", "decoy_host", "ech_sni"):
        measure[key] = (measure.get(key) or "").strip().lower()
    if measure.get("decoy_sni"):  # one harmless name for the TLS and the QUIC decoys
        measure["quic_decoy"] = measure["decoy_sni"]
    if measure.get("quic"):
        from probe.measure.quic import MISSING, available

        if not available():
            raise click.UsageError(f"--quic: {MISSING}")
    if measure.get("resolv_conf") is None:
        measure.pop("resolv_conf", None)
    settings: dict[str, Any] = {k: params[k] for k in _SETTINGS_KEYS if k in params}
    settings["fingerprints"] = tuple(str(p) for p in settings.get("fingerprints") or ())
    if settings.get("geo") is not None:
        settings["geo"] = str(settings["geo"])
    if settings.get("pcap") is not None:
        settings["pcap"] = str(settings["pcap"])
        settings["capture"] = True
    if measure.get("cafile") is not None:
        measure["cafile"] = str(measure["cafile"])
    if "no_identity" in params:  # commands with the identity options: learn who we are
        from probe.core.settings import IdentityConfig

        settings["identity"] = IdentityConfig.from_options(
            params.get("stun") or (), params.get("whoami") or (), enabled=not params["no_identity"])
    selection = ListSelection(
        lists=tuple(params.get("lists") or ()),
        urls=tuple(params.get("urls") or ()),
        category=params.get("category"),
        strict=bool(params.get("strict")),
    )
    try:
        return RunRequest(selection=selection, settings=RunSettings(controls=controls, **settings),
                          measure=MeasureConfig(**measure))
    except ValueError as exc:  # the parameter types check first; this is the last word
        raise click.UsageError(str(exc)) from None


def _since_to_iso(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--since`` as ISO text comparable with ``measured_at`` (a usage error when bad)."""
    if value is None:
        return None
    from probe.research.compare import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def since_option(help_text: str) -> Callable[[F], F]:
    """``--since DATE|AGE`` (2026-11-20, 2026-11-20T10:00 UTC, 7d, 24h), given as ISO text."""
    return click.option("--since", metavar="DATE|AGE", callback=_since_to_iso, help=help_text)


def country_lookup(geo: str | None) -> Callable[[str], str] | None:
    """The address -> country function of a command's ``--geo`` option (`probe outages`,
    `compare --isolation`, `report`); None when probe has no geo data. A file that cannot be
    read is a usage error naming the option."""
    from probe.inputs.geo import GeoError
    from probe.research.outages import country_lookup as lookup

    try:
        return lookup(geo)
    except GeoError as exc:
        raise click.BadParameter(str(exc), param_hint="--geo") from None


# --- the endpoint suites: `probe circumvention` and `probe messaging` --------------------------

#: The options both endpoint suites take (their controls, trust, timeouts, pace and output);
#: each suite adds its own (kinds, names, apps).
endpoint_suite_options = _compose(
    db_option,
    click.option("--vantage", default="default", show_default=True, help="Name of this vantage point."),
    click.option("--control", "controls", multiple=True, metavar="URL",
                 help="Test helper (OONI Web Connectivity protocol); repeatable. "
                 "Default: OONI's public helpers."),
    click.option("--no-control", is_flag=True, help="Use no control: failures stay inconclusive."),
    cafile_option,
    resolver_option,
    resolv_conf_option,
    click.option("--tcp-timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True),
    click.option("--handshake-timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True),
    click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True,
                 help="Endpoints in flight."),
    click.option("--retries", type=click.IntRange(0, 5), default=1, show_default=True,
                 help="Measure again an endpoint that failed while the control reached it."),
    click.option("--retry-pause", type=click.FloatRange(0.0, 60.0), default=2.0, show_default=True),
    click.option("--accept-risks", is_flag=True, help="Accept the risks of measuring (non-interactive)."),
    click.option("--json", "as_json", is_flag=True, help="One JSON object per endpoint on stdout."),
)  # fmt: skip


def check_endpoint_suite(vantage: str, controls: tuple[str, ...], no_control: bool) -> None:
    """The usage errors both endpoint suites share (exit 2, naming the flag)."""
    if controls and no_control:
        raise click.UsageError("--control and --no-control exclude each other")
    if not vantage.strip():
        raise click.BadParameter("must not be empty", param_hint="--vantage")


def require_consent(accept_risks: bool) -> None:
    """Informed consent before anything is measured (probe.host.consent): asked on a terminal,
    ``--accept-risks`` otherwise; a usage error when declined or missing."""
    from probe.host import consent

    interactive = consent.is_interactive()
    if not consent.ensure_consent(accept_risks, interactive, echo_prose, click.confirm):
        raise click.UsageError(
            consent.CONSENT_DECLINED_MESSAGE if interactive else consent.CONSENT_REQUIRED_MESSAGE
        )


def echo_prose(text: str) -> None:
    """Prose (the consent's) re-wrapped to the terminal: it is written at another width."""
    from probe.present.terminal import output_width
    from probe.present.text import reflow

    click.echo(reflow(text, output_width()), nl=not text.endswith("\n"))


def echo_err(line: str) -> None:
    """A line on stderr (warnings, progress for people)."""
    click.echo(line, err=True)
