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
@click.option("--reflector", is_flag=True,
              help="Also open the reflector: TCP echo, UDP echo and a WireGuard responder, for "
              "probes' fully-encrypted-traffic and WireGuard tests (bounded; docs/helper.md).")
@click.option("--reflector-tcp", "reflector_tcp", multiple=True, type=click.IntRange(0, 65535),
              metavar="PORT", help="TCP echo ports (repeatable; default 8781 and 8782).")
@click.option("--reflector-udp", type=click.IntRange(0, 65535), default=8781, show_default=True,
              metavar="PORT", help="UDP echo port.")
@click.option("--reflector-wireguard", type=click.IntRange(0, 65535), default=51820, show_default=True,
              metavar="PORT", help="WireGuard responder port.")
@click.option("--reflector-key", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="The WireGuard responder's private key (`wg genkey` output); default: a new "
              "key at each start (probes read the public key from /health).")
@click.option("--reflector-rate", type=click.FloatRange(0.1, 10000), default=20.0, show_default=True,
              help="Datagrams and new connections per second per client address.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(listen: str, cafile: str | None, tls_cert: str | None, tls_key: str | None,
          max_in_flight: int, body_cap: int, resolvers: tuple[str, ...], resolv_conf: str | None,
          deadline: float, geo: str | None, header_timeout: float, body_timeout: float,
          max_connections_per_client: int, allow_private: bool, log_clients: str,
          reflector: bool, reflector_tcp: tuple[int, ...], reflector_udp: int,
          reflector_wireguard: int, reflector_key: str | None, reflector_rate: float,
          verbose: bool) -> None:
    """Serve OONI's Web Connectivity test-helper protocol (POST /), measuring with probe's engine.

    Logs one line per request to stderr, without client addresses unless --log-clients says
    otherwise. Stops gracefully on SIGTERM. See docs/helper.md for deployment.

    \b
    Examples:
      probe helper serve --listen 127.0.0.1:8080
      probe helper serve --listen :443 --tls-cert fullchain.pem --tls-key key.pem
      probe run --url https://example.org/ --control http://127.0.0.1:8080/
      probe helper serve --listen :8080 --reflector   # + echo, WireGuard
    """
    import logging

    from probe.core.net import parse_listen
    from probe.core.wgkey import decode_key
    from probe.inputs.geo import GeoDB, GeoError, open_default_geo
    from probe.serve.config import HelperConfig, measure_config
    from probe.serve.reflector import ReflectorConfig
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
    reflector_config = None
    if reflector:
        private = None
        if reflector_key:
            try:
                with open(reflector_key, encoding="ascii") as fh:
                    private = decode_key(fh.read(200))
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                raise click.BadParameter(str(exc), param_hint="--reflector-key") from None
        reflector_config = ReflectorConfig(
            tcp_echo=reflector_tcp or (8781, 8782), udp_echo=reflector_udp, wireguard=reflector_wireguard,
            private_key=private, rate=reflector_rate, burst=max(2, int(reflector_rate * 2)),
        )
    elif reflector_tcp or reflector_key:
        raise click.UsageError("--reflector-tcp and --reflector-key need --reflector")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = HelperConfig(host=host, port=port, max_in_flight=max_in_flight,
                          measure_timeout=deadline + 5.0, allow_private=allow_private,
                          header_timeout=header_timeout, body_timeout=body_timeout,
                          max_connections_per_client=max_connections_per_client,
                          log_clients=log_clients, tls_cert=tls_cert, tls_key=tls_key,
                          reflector=reflector_config)
    try:
        run(config, mcfg, asn=geo_db.asn if geo_db else None)
    except OSError as exc:  # e.g. address already in use
        raise click.ClickException(f"cannot serve on {listen}: {exc}") from None
