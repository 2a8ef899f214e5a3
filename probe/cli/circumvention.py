"""`probe circumvention`: can Tor, VPN protocols and encrypted DNS be used from this network?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import (
    check_endpoint_suite,
    echo_err,
    endpoint_suite_options,
    require_consent,
)


@cli.command("circumvention")
@click.argument("lists", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@endpoint_suite_options
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only endpoints of this kind (repeatable): tor, tls, tcp, openvpn-tcp, "
              "openvpn-udp, doh, dot, fet, wireguard.")
@click.option("--dns-name", "names", multiple=True, metavar="NAME",
              help="Name to resolve through each doh/dot resolver and ask the control about "
              "(repeatable; default: example.com, www.torproject.org).")
@click.option("--decoy-sni", metavar="NAME",
              help="Harmless SNI tried at a resolver's address after its handshake failed "
              "(default: example.com; '' turns it off).")
@click.option("--fet-tries", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Random-bytes exchanges per reflector (the GFW blocked about 1 in 4).")
@click.option("--reflector", "reflectors", multiple=True, metavar="URL",
              help="Helper whose reflector to measure (fet, wireguard); repeatable. "
              "Default: the controls'.")
@click.option("--no-reflector", is_flag=True, help="Ask no helper for its reflector.")
def circumvention_command(lists: tuple[Path, ...], db: Path, vantage: str, controls: tuple[str, ...],
                          no_control: bool, cafile: str | None, resolvers: tuple[str, ...],
                          resolv_conf: str | None, tcp_timeout: float,
                          handshake_timeout: float, concurrency: int, retries: int,
                          retry_pause: float, kinds: tuple[str, ...], names: tuple[str, ...],
                          decoy_sni: str | None, fet_tries: int, reflectors: tuple[str, ...],
                          no_reflector: bool, accept_risks: bool, as_json: bool) -> None:  # fmt: skip
    """Try the endpoints of circumvention tools and store ok / blocked / reset / down per endpoint.

    Like `probe run`, it first checks that the network works at all (--resolver, else the
    system's; the controls): with no network it records the run as offline and exits 1.

    LISTS are endpoint CSV files (kind,name,address,port,sni,notes,source[,key]; see
    docs/circumvention.md); without them, the packaged lists: Tor directory and bridge
    authorities, and public DoH/DoT resolvers. Kinds: tor (TLS to an OR port), openvpn-udp /
    openvpn-tcp (the HARD_RESET handshake), tls and tcp (VPN providers' endpoints, obfs4
    bridges), doh / dot (encrypted DNS: reachability, and answers against the control's), fet
    and wireguard (fully encrypted traffic and a WireGuard handshake, against a reflector: a
    helper run with --reflector, found through --control or --reflector).

    \b
    Examples:
      probe circumvention
      probe circumvention --kind doh --kind dot --dns-name www.bbc.com
      probe circumvention my-vpns.csv --vantage home --json
      probe circumvention --control https://th.example.org/   # + its reflector
    """
    from probe.core.settings import DEFAULT_CONTROLS, DEFAULT_DECOY_SNI, DEFAULT_ENCRYPTED_DNS_NAMES
    from probe.inputs.endpointlists import KINDS, TWIN_KINDS, load_endpoints
    from probe.present.circumvention import format_judged, format_no_reflector, format_suite_end
    from probe.present.terminal import output_width
    from probe.run.circumvention import Judged, SuiteConfig, run_suite

    check_endpoint_suite(vantage, controls, no_control)
    if reflectors and no_reflector:
        raise click.UsageError("--reflector and --no-reflector exclude each other")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kind {unknown[0]!r} (one of {', '.join(KINDS)})",
                                 param_hint="--kind")  # fmt: skip
    endpoints = load_endpoints(lists)
    if kinds:
        endpoints = [ep for ep in endpoints if ep.kind in kinds]
    wants_reflector = not no_reflector and (not kinds or bool(set(TWIN_KINDS) & set(kinds)))
    if not endpoints and not wants_reflector:
        raise click.UsageError(f"no endpoint of kind {', '.join(kinds)} in the lists")
    require_consent(accept_risks)
    config = SuiteConfig(controls=() if no_control else (controls or DEFAULT_CONTROLS), cafile=cafile,
                         resolvers=tuple(resolvers), resolv_conf=resolv_conf,
                         tcp_timeout=tcp_timeout, handshake_timeout=handshake_timeout,
                         concurrency=concurrency, retries=retries, retry_pause=retry_pause,
                         names=names or DEFAULT_ENCRYPTED_DNS_NAMES,
                         decoy_sni=DEFAULT_DECOY_SNI if decoy_sni is None else decoy_sni,
                         fet_tries=fet_tries,
                         reflectors=() if not wants_reflector else (reflectors or None))  # fmt: skip

    def show(judged: Judged) -> None:
        # JSON is the command's output (stdout); the lines for people are progress (stderr).
        click.echo(format_judged(judged, as_json, output_width(err=True)), err=not as_json)

    list_names = [p.name for p in lists] or ["circumvention.csv, encrypted-dns.csv (packaged)"]
    try:
        summary = run_suite(endpoints, db, vantage, list_names, config, show, warn=echo_err)
    except KeyboardInterrupt:
        click.echo("interrupted: what was measured is stored", err=True)
        sys.exit(130)
    listed = any(ep.kind in TWIN_KINDS for ep in endpoints)
    if wants_reflector and not summary.reflector and not listed and not no_control:
        click.echo(format_no_reflector(), err=True)
    click.echo(format_suite_end(summary, db), err=True)
