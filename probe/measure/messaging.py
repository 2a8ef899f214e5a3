"""Messaging services reached by name (``telegram-web``, ``whatsapp``, ``whatsapp-web``,
``signal``): measured as the web is, hop by hop, into one endpoint observation.

The name is resolved where the app resolves it (the probe's resolvers, with the late-reply
window that shows injection), the control helper is asked about the same URL, and every
address is connected to; HTTPS services then get a TLS handshake (verified against the
system's CAs, ``--cafile`` and the CA the app pins, when the list names one) and one GET, as
OONI's experiments do; WhatsApp's chat endpoints speak their own protocol on 443 and 5222, so
reaching them is the test (the engine stops after TCP). The engine records; nothing here
judges (probe/judge/messaging.py does).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from cryptography import x509

from probe.core.model import EndpointObservation, Hop
from probe.core.net import parse_url
from probe.core.settings import MeasureConfig
from probe.inputs.endpointlists import HTTPS_KINDS, Endpoint
from probe.measure.engine import ControlFn, measure

__all__ = ["measure_service", "pinned_subjects", "summary"]


@functools.lru_cache(maxsize=8)
def pinned_subjects(path: str) -> tuple[str, ...]:
    """The subjects (RFC 4514) of the certificates in a pinned CA file (read once per path)."""
    with open(path, "rb") as fh:
        data = fh.read(1 << 20)
    return tuple(c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(data))


def _without_body(hop: Hop) -> Hop:
    """The hop without its response body (its length, SHA-256 and title stay): the service's
    rules never read it, and a page may echo the user's public address, which a run of this
    suite does not learn and so could not scrub."""
    h = hop.http
    return hop if h is None or not h.body else dataclasses.replace(hop, http=dataclasses.replace(h, body=b""))


def summary(hops: tuple[Hop, ...]) -> dict[str, Any]:
    """The flat fields of an endpoint observation from the first hop's steps: the first
    connect (and handshake) that worked, else the first failure."""
    if not hops:
        return {}
    hop = hops[0]
    out: dict[str, Any] = {}
    tcp = next((t for t in hop.tcp if t.failure is None), hop.tcp[0] if hop.tcp else None)
    if tcp is not None:
        out.update(tcp_failure=tcp.failure, tcp_duration=tcp.duration)
    if hop.scheme == "https" and hop.tls:
        tls = next((t for t in hop.tls if t.failure is None and t.cert_valid), hop.tls[0])
        out.update(handshake="tls", handshake_failure=tls.failure, handshake_duration=tls.duration,
                   sni=tls.sni, tls_version=tls.version)  # fmt: skip
    return out


async def measure_service(
    ep: Endpoint, cfg: MeasureConfig, control: ControlFn | None, attempt: int = 0
) -> EndpointObservation:
    """Measure one service reached by name (network failures are recorded, never raised)."""
    service_cfg = dataclasses.replace(cfg, extra_ca=ep.ca) if ep.ca else cfg
    m = await measure(parse_url(ep.url), service_cfg, control, attempt,
                      connect_only=ep.kind not in HTTPS_KINDS)  # fmt: skip
    obs = EndpointObservation(
        kind=ep.kind, name=ep.name, address=ep.address, port=ep.port, transport=ep.transport,
        started=m.started, runtime=m.runtime, source=ep.source, attempt=attempt,
        hops=tuple(_without_body(h) for h in m.hops),
        measure_failure=m.failure, pinned=pinned_subjects(ep.ca) if ep.ca else (),
    )  # fmt: skip
    return dataclasses.replace(obs, **summary(m.hops))
