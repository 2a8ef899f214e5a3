"""`probe show URL|MEASUREMENT_ID`: the whole evidence of one measurement, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import db_option

if TYPE_CHECKING:
    from probe.store import Store


@cli.command("show")
@click.argument("what", metavar="URL|MEASUREMENT_ID|ADDRESS:PORT|ENDPOINT")
@db_option
@click.option("--vantage", metavar="NAME", help="The URL's newest measurement from this vantage point.")
@click.option("--run", "run_id", type=click.IntRange(min=1), metavar="ID",
              help="The URL's measurement in this run.")
@click.option("--json", "as_json", is_flag=True, help="The evidence as one JSON document.")
def show_command(what: str, db: Path, vantage: str | None, run_id: int | None, as_json: bool) -> None:
    """Show the whole evidence of one measurement, step by step.

    WHAT is a measurement id (from `probe results --json`), a URL (its newest final
    measurement, narrowed by --vantage or --run; the URL exactly, `http://x` never shows
    `https://x`), or a host name (its newest measured URL, named on stderr). For each hop:
    every DNS query and reply (injected replies marked), TCP per address, TLS with the
    certificate, HTTP with the fingerprints it matches, each next to what the control saw;
    then the verdict and every reason in plain words.

    WHAT may also be a circumvention or messaging endpoint (`probe circumvention`, `probe
    messaging`): ADDRESS:PORT ([ADDRESS]:PORT for IPv6), a service's HOST[:PORT], or the
    endpoint's name from its list: the newest measurement of each kind there (OpenVPN over
    UDP and TCP may share a port), step by step with the control.

    \b
    Examples:
      probe show http://example.org/
      probe show 42 --json | jq .verdict
      probe show 128.31.0.39:9101          # a Tor directory authority's OR port
      probe show web.whatsapp.com          # a messaging service
    """
    from probe.inputs.fingerprints import default_fingerprints
    from probe.present.evidence import EvidenceError, dumps, evidence, find_measurement, render_text
    from probe.present.terminal import output_width
    from probe.store import Store

    endpoint = _address_port(what)
    with Store.open(db, create=False) as store:
        if endpoint is not None:
            _show_endpoints(store, what, endpoint, vantage, run_id, as_json)
            return
        try:
            found = find_measurement(store, what, vantage, run_id)
        except EvidenceError:
            if what.isdigit() or "/" in what or not _show_endpoints(
                    store, what, _host_port(what), vantage, run_id, as_json, missing_ok=True):
                raise
            return
        if found.note:
            click.echo(found.note, err=True)
        ev = evidence(store, found.measurement_id, fingerprints=default_fingerprints())
    if as_json:
        click.echo(dumps(ev))
        return
    for line in render_text(ev, output_width(100)):
        click.echo(line)


def _address_port(what: str) -> tuple[str, int] | None:
    """``ADDRESS:PORT`` or ``[ADDRESS]:PORT`` with a literal IP address, else None."""
    from probe.core.net import parse_endpoint

    try:
        return parse_endpoint(what)
    except ValueError:
        return None


def _host_port(what: str) -> tuple[str, int] | None:
    """``HOST:PORT`` with a host name (a messaging service: ``e1.whatsapp.net:5222``), else None."""
    host, sep, port = what.rpartition(":")
    return (host.lower(), int(port)) if sep and host and port.isdigit() and 0 < int(port) < 65536 else None


def _show_endpoints(store: Store, what: str, endpoint: tuple[str, int] | None, vantage: str | None,
                    run_id: int | None, as_json: bool, missing_ok: bool = False) -> bool:
    """Print the newest measurement of each endpoint at ``endpoint`` (or named ``what``)."""
    from probe.present.circumvention import dumps, render_endpoint
    from probe.present.evidence import EvidenceError
    from probe.store.circumvention import endpoint_measurements_at

    address, port = endpoint if endpoint is not None else (None, None)
    found = endpoint_measurements_at(store, address, port, name=None if endpoint else what,
                                     vantage=vantage, run_id=run_id)  # fmt: skip
    if not found:
        if missing_ok:
            return False
        narrowed = ", ".join(f"{k} {v!r}" for k, v in (("vantage", vantage), ("run", run_id)) if v)
        raise EvidenceError(f"no endpoint measurement of {what!r}" + (f" ({narrowed})" if narrowed else ""))
    if as_json:
        click.echo(dumps({"endpoint_measurements": found}))
        return True
    for i, d in enumerate(found):
        if i:
            click.echo("")
        for line in render_endpoint(d):
            click.echo(line)
    return True
