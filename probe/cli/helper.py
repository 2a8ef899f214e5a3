"""`probe helper serve`: run a Web Connectivity test helper (the control)."""

from __future__ import annotations

import click

from probe.cli._group import cli
from probe.cli.options import (
    cafile_option,
    geo_option,
    resolv_conf_option,
    resolver_option,
)
from probe.cli.types import Seconds

__all__ = ["helper"]


@cli.group()
def helper() -> None:
    """The test helper: a control server OONI probes and probe can both use."""


@helper.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Address to listen on; :PORT for every IPv4 and IPv6 address.")
@cafile_option
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="Serve HTTPS with this certificate chain (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="Private key for --tls-cert (PEM).")
@click.option("--max-in-flight", type=click.IntRange(1, 100000), default=64, show_default=True,
              help="Measurements at once; more requests get 503 with Retry-After.")
@click.option("--body-cap", type=click.IntRange(0, 1 << 30), default=1 << 20, show_default=True,
              help="Decoded bytes of each fetched body kept (length and hash are of the capped body).")
@resolver_option
@resolv_conf_option
@click.option("--deadline", type=Seconds(1.0), default=25.0, show_default=True,
              help="Seconds allowed per measurement, redirects included; keep it below the "
              "clients' timeout (probe: 30 s).")
@geo_option
@click.option("--header-timeout", type=Seconds(0.5, 3600.0), default=10.0, show_default=True,
              help="Seconds a connection has to deliver a request's headers (from connecting, "
              "or from the previous response); also the keep-alive idle time.")
@click.option("--body-timeout", type=Seconds(0.5, 3600.0), default=10.0, show_default=True,
              help="Seconds a client has to send a request body; more: 408.")
@click.option("--max-connections-per-client", type=click.IntRange(1, 1_000_000), default=256,
              show_default=True, help="Open connections per client address; more are closed.")
@click.option("--allow-private", is_flag=True,
              help="Also connect to loopback/private addresses a client names (labs, tests).")
@click.option("--log-clients", type=click.Choice(["none", "hashed", "full"]), default="none",
              show_default=True, help="Client addresses in the log: omitted, salted hash, or full.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(listen: str, cafile: str | None, tls_cert: str | None, tls_key: str | None,
          max_in_flight: int, body_cap: int, resolvers: tuple[str, ...], resolv_conf: str | None,
          deadline: float, geo: str | None, header_timeout: float, body_timeout: float,
          max_connections_per_client: int, allow_private: bool, log_clients: str,
          verbose: bool) -> None:
    """Serve OONI's Web Connectivity test-helper protocol (POST /), measuring with probe's engine.

    Logs one line per request to stderr, without client addresses unless --log-clients says
    otherwise. Stops gracefully on SIGTERM. See docs/helper.md for deployment.

    \b
    Examples:
      probe helper serve --listen 127.0.0.1:8080
      probe helper serve --listen :443 --tls-cert fullchain.pem --tls-key key.pem
      probe run --url https://example.org/ --control http://127.0.0.1:8080/
    """
    import logging

    from probe.core.net import parse_listen
    from probe.inputs.geo import GeoDB, GeoError, open_default_geo
    from probe.serve.config import HelperConfig, measure_config
    from probe.serve.server import run

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    try:
        mcfg = measure_config(resolvers=resolvers, resolv_conf=resolv_conf,
                              cafile=cafile,
                              body_cap=body_cap, deadline=deadline)
    except (OSError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        geo_db = GeoDB.open(geo) if geo else open_default_geo()
    except GeoError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = HelperConfig(host=host, port=port, max_in_flight=max_in_flight,
                          measure_timeout=deadline + 5.0, allow_private=allow_private,
                          header_timeout=header_timeout, body_timeout=body_timeout,
                          max_connections_per_client=max_connections_per_client,
                          log_clients=log_clients, tls_cert=tls_cert, tls_key=tls_key)
    try:
        run(config, mcfg, asn=geo_db.asn if geo_db else None)
    except OSError as exc:  # e.g. address already in use
        raise click.ClickException(f"cannot serve on {listen}: {exc}") from None
