"""`probe trace URL`: find the hop where the censor reacts to a Host or SNI (root)."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("trace")
@click.argument("url")
@click.option("--control-name", default="example.com", show_default=True, metavar="NAME",
              help="Harmless name sent on the same path for comparison.")
@click.option("--ip", metavar="IP", help="Address to trace to (default: resolve the URL's host).")
@click.option("--max-ttl", type=click.IntRange(1, 64), default=16, show_default=True,
              help="Highest TTL tried (bounds the packets sent).")
@click.option("--wait", type=click.FloatRange(0.05, 10.0), default=1.0, show_default=True,
              help="Seconds to wait for an answer per TTL.")
@db_option
@click.option("--vantage", default="default", show_default=True, help="Name of this vantage point.")
@click.option("--no-store", is_flag=True, help="Do not store the trace.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def trace_command(url: str, control_name: str, ip: str | None, max_ttl: int, wait: float, db: Path,
                  vantage: str, no_store: bool, as_json: bool) -> None:  # fmt: skip
    """Send the URL's trigger (HTTP Host, or TLS SNI for https) with growing IP TTL, next to a
    harmless name, and report the link between two hops where the trigger is reset or silently
    dropped while the harmless name passes, and whether the censor is on-path or in-path.

    Needs root or CAP_NET_RAW (exit 2 without). Sends at most about 2 x MAX_TTL x 7 packets;
    see docs/packets.md.

    \b
    Examples:
      sudo probe trace https://blocked.example/ --control-name example.org
      sudo probe trace http://news.example/ --ip 192.0.2.10 --json
    """
    import asyncio
    import socket

    from probe.core.net.addresses import is_ip_literal
    from probe.core.net.urls import parse_url
    from probe.measure.trace import trace
    from probe.present.trace import render_trace, trace_json

    try:
        target = parse_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    kind = "tls" if target.scheme == "https" else "http"
    address: str
    if ip is None:
        if is_ip_literal(target.host):
            address = target.host
        else:
            try:
                address = str(socket.getaddrinfo(target.host, target.port, socket.AF_INET)[0][4][0])
            except OSError as exc:
                raise click.ClickException(f"cannot resolve {target.host}: {exc}") from None
    elif not is_ip_literal(ip) or ":" in ip:
        raise click.BadParameter(f"{ip!r} is not an IPv4 address", param_hint="--ip")
    else:
        address = ip
    result = asyncio.run(trace(target.url, target.host, address, target.port, kind, control_name,
                               max_ttl=max_ttl, wait=wait))  # fmt: skip
    trace_id = None
    if not no_store:
        from probe.store import Store

        with Store.open(db, check=True) as store:
            trace_id = store.write_trace(result, vantage)
    if as_json:
        click.echo(trace_json(result, trace_id))
        return
    stored = f"; stored as trace {trace_id} in {db}" if trace_id else ""
    for line in render_trace(result, stored=stored):
        click.echo(line)
