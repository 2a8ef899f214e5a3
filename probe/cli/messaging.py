"""`probe messaging`: can Telegram, WhatsApp and Signal be used from this network?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import check_endpoint_suite, echo_err, endpoint_suite_options, require_consent

#: The apps, as `--app` takes them (probe.inputs.endpointlists.MESSAGING_APPS's values; repeated
#: here so that `probe --help` imports only click: a unit test checks the two agree).
APPS = ("telegram", "whatsapp", "signal")


@cli.command("messaging")
@click.argument("lists", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@endpoint_suite_options
@click.option("--app", "apps", multiple=True, type=click.Choice(APPS),
              help="Only this app's endpoints (repeatable). Default: all three.")
@click.option("--dns-timeout", type=click.FloatRange(0.1, 60), default=4.0, show_default=True)
@click.option("--http-timeout", type=click.FloatRange(0.1, 300), default=15.0, show_default=True)
@click.option("--deadline", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="Seconds for all the steps of one service reached by name.")
@click.option("--decoy-sni", metavar="NAME",
              help="Harmless SNI tried at a service's address after its handshake failed "
              "(default: example.com; '' turns it off).")
def messaging_command(lists: tuple[Path, ...], db: Path, vantage: str, controls: tuple[str, ...],
                      no_control: bool, cafile: str | None, resolvers: tuple[str, ...],
                      resolv_conf: str | None, tcp_timeout: float, handshake_timeout: float,
                      concurrency: int, retries: int, retry_pause: float, accept_risks: bool,
                      as_json: bool, apps: tuple[str, ...], dns_timeout: float, http_timeout: float,
                      deadline: float, decoy_sni: str | None) -> None:  # fmt: skip
    """Try Telegram's data centres and web, WhatsApp's endpoints and web, and Signal's
    services, and store ok / blocked / reset / hijacked / down per endpoint.

    Each is judged against the control (OONI's test helpers, or --control): Telegram's data
    centres by address with MTProto's first exchange; WhatsApp's chat endpoints, WhatsApp Web,
    its registration service, Telegram Web and Signal's services by name, resolved through
    your resolver and compared with the control's answers, then reached over TCP (and TLS
    with one GET, Signal's certificates checked against the CA its apps pin). Like `probe
    run`, it first checks that the network works at all.

    LISTS are endpoint CSV files (docs/messaging.md); without them, the packaged list (or the
    one `probe testlists update --endpoints-url` installed).

    \b
    Examples:
      probe messaging
      probe messaging --app telegram --vantage home
      probe results --suite messaging
      probe show web.whatsapp.com
    """
    from probe.core.settings import DEFAULT_CONTROLS, DEFAULT_DECOY_SNI
    from probe.inputs.endpointlists import (
        MESSAGING_APPS,
        MESSAGING_LIST,
        MESSAGING_SUITE,
        load_endpoints,
        messaging_list,
    )
    from probe.present.circumvention import format_judged
    from probe.present.messaging import format_messaging_end
    from probe.present.terminal import output_width
    from probe.run.circumvention import Judged, SuiteConfig, run_suite

    check_endpoint_suite(vantage, controls, no_control)
    chosen = list(lists) or [messaging_list()]
    endpoints = [ep for ep in load_endpoints(chosen) if ep.kind in MESSAGING_APPS]
    if apps:
        endpoints = [ep for ep in endpoints if MESSAGING_APPS[ep.kind] in apps]
    if not endpoints:
        what = f" of {', '.join(apps)}" if apps else ""
        kinds = ", ".join(MESSAGING_APPS)
        raise click.UsageError(f"no messaging endpoint{what} in the lists (kinds: {kinds})")
    require_consent(accept_risks)
    config = SuiteConfig(controls=() if no_control else (controls or DEFAULT_CONTROLS), cafile=cafile,
                         resolvers=tuple(resolvers), resolv_conf=resolv_conf, tcp_timeout=tcp_timeout,
                         handshake_timeout=handshake_timeout, concurrency=concurrency, retries=retries,
                         retry_pause=retry_pause,
                         decoy_sni=DEFAULT_DECOY_SNI if decoy_sni is None else decoy_sni,
                         reflectors=(), dns_timeout=dns_timeout, http_timeout=http_timeout,
                         deadline=deadline)  # fmt: skip

    def show(judged: Judged) -> None:
        # JSON is the command's output (stdout); the lines for people are progress (stderr).
        click.echo(format_judged(judged, as_json, output_width(err=True)), err=not as_json)

    # Only the lists' file names are stored, never the user's directories.
    names = [p.name for p in chosen]
    if not lists:
        names = [f"{chosen[0].name} ({'packaged' if chosen[0] == MESSAGING_LIST else 'updated'})"]
    try:
        summary = run_suite(endpoints, db, vantage, names, config, show, warn=echo_err,
                            suite=MESSAGING_SUITE)  # fmt: skip
    except KeyboardInterrupt:
        click.echo("interrupted: what was measured is stored", err=True)
        sys.exit(130)
    for line in format_messaging_end(summary, db, output_width(err=True)):
        click.echo(line, err=True)
