"""`probe circumvention`: can Tor, OpenVPN and VPN endpoints be reached from this network?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import cafile_option, db_option, resolv_conf_option, resolver_option


@cli.command("circumvention")
@click.argument("lists", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option("--vantage", default="default", show_default=True, help="Name of this vantage point.")
@click.option("--control", "controls", multiple=True, metavar="URL",
              help="Test helper (OONI Web Connectivity protocol); repeatable. "
              "Default: OONI's public helpers.")
@click.option("--no-control", is_flag=True, help="Use no control: failures stay inconclusive.")
@cafile_option
@resolver_option
@resolv_conf_option
@click.option("--tcp-timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@click.option("--handshake-timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Endpoints in flight.")
@click.option("--retries", type=click.IntRange(0, 5), default=1, show_default=True,
              help="Measure again an endpoint that failed while the control reached it.")
@click.option("--retry-pause", type=click.FloatRange(0.0, 60.0), default=2.0, show_default=True)
@click.option("--accept-risks", is_flag=True, help="Accept the risks of measuring (non-interactive).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per endpoint on stdout.")
def circumvention_command(lists: tuple[Path, ...], db: Path, vantage: str, controls: tuple[str, ...],
                          no_control: bool, cafile: str | None, resolvers: tuple[str, ...],
                          resolv_conf: str | None, tcp_timeout: float,
                          handshake_timeout: float, concurrency: int, retries: int,
                          retry_pause: float, accept_risks: bool, as_json: bool) -> None:  # fmt: skip
    """Try the endpoints of circumvention tools and store ok / blocked / reset / down per endpoint.

    Like `probe run`, it first checks that the network works at all (--resolver, else the
    system's; the controls): with no network it records the run as offline and exits 1.

    LISTS are endpoint CSV files (kind,name,address,port,sni,notes,source; see
    docs/circumvention.md); without them, the packaged list of Tor directory and bridge
    authorities. Kinds: tor (TLS to an OR port), openvpn-udp / openvpn-tcp (the HARD_RESET
    handshake), tls and tcp (VPN providers' endpoints, obfs4 bridges).

    \b
    Examples:
      probe circumvention
      probe circumvention my-vpns.csv --vantage home --json
    """
    from probe.core.settings import DEFAULT_CONTROLS
    from probe.host import consent
    from probe.inputs.endpointlists import load_endpoints
    from probe.present.circumvention import format_judged, format_suite_end
    from probe.run.circumvention import Judged, SuiteConfig, run_suite

    if controls and no_control:
        raise click.UsageError("--control and --no-control exclude each other")
    if not vantage.strip():
        raise click.BadParameter("must not be empty", param_hint="--vantage")
    endpoints = load_endpoints(lists)
    interactive = consent.is_interactive()
    if not consent.ensure_consent(accept_risks, interactive, click.echo, click.confirm):
        raise click.UsageError(
            consent.CONSENT_DECLINED_MESSAGE if interactive else consent.CONSENT_REQUIRED_MESSAGE
        )
    config = SuiteConfig(controls=() if no_control else (controls or DEFAULT_CONTROLS), cafile=cafile,
                         resolvers=tuple(resolvers), resolv_conf=resolv_conf,
                         tcp_timeout=tcp_timeout, handshake_timeout=handshake_timeout,
                         concurrency=concurrency, retries=retries, retry_pause=retry_pause)  # fmt: skip

    def show(judged: Judged) -> None:
        # JSON is the command's output (stdout); the lines for people are progress (stderr).
        click.echo(format_judged(judged, as_json), err=not as_json)

    names = [p.name for p in lists] or ["circumvention.csv (packaged)"]
    try:
        summary = run_suite(endpoints, db, vantage, names, config, show, warn=_echo_err)
    except KeyboardInterrupt:
        click.echo("interrupted: what was measured is stored", err=True)
        sys.exit(130)
    click.echo(format_suite_end(summary, db), err=True)


def _echo_err(line: str) -> None:
    click.echo(line, err=True)
