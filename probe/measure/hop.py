"""One hop while it is measured: mutable notes that ``build()`` freezes into a :class:`Hop`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from probe.core.failures import Failure
from probe.core.model import (
    ControlObservation,
    DNSObservation,
    Hop,
    HTTPObservation,
    QUICObservation,
    TCPObservation,
    TLSHelloObservation,
    TLSObservation,
)
from probe.measure.dns import UDPQuery

__all__ = ["HopState"]


class HopState:
    """Mutable notes while a hop is measured; ``build()`` freezes them into a Hop."""

    def __init__(self, index: int, url: str, host: str, port: int, scheme: str) -> None:
        self.index = index
        self.url = url
        self.host = host
        self.port = port
        self.scheme = scheme
        self.queries: list[UDPQuery] = []
        self.probe_queries: list[UDPQuery] = []  # to addresses without a DNS server
        self.decoy_tls: list[TLSObservation] = []
        self.decoy_http: list[HTTPObservation] = []
        self.dns_static: list[DNSObservation] = []
        self.doh: list[tuple[str, str, float, asyncio.Task[DNSObservation]]] = []
        self.addresses: list[str] = []
        self.tcp: list[TCPObservation] = []
        self.tls: list[TLSObservation] = []
        self.http: HTTPObservation | None = None
        self.control: tuple[str, float, asyncio.Task[ControlObservation]] | None = None
        self.quic: list[QUICObservation] = []
        self.decoy_quic: list[QUICObservation] = []
        self.ech: list[TLSHelloObservation] = []

    def background(self) -> list[asyncio.Task[Any]]:
        """The hop's tasks still running in the background (late replies, DoH, the control)."""
        tasks: list[asyncio.Task[Any]] = [
            q.task for q in (*self.queries, *self.probe_queries) if q.task is not None
        ]
        tasks.extend(t for _, _, _, t in self.doh)
        if self.control is not None:
            tasks.append(self.control[2])
        return tasks

    def build(self, control_source: str) -> Hop:
        """The hop as observed; what is still running is recorded as past the deadline."""
        order = {ip: i for i, ip in enumerate(self.addresses)}
        dns = [*self.dns_static, *(q.observation() for q in self.queries)]
        doh = []
        for qtype, url, started, task in self.doh:
            if task.done() and not task.cancelled():
                doh.append(task.result())
            else:
                doh.append(
                    DNSObservation(
                        self.host, qtype, f"doh:{url}", "doh", started,
                        time.time() - started, Failure.DEADLINE_EXCEEDED,
                    )
                )
        control = None
        if self.control is not None:
            ctl_url, ctl_started, ctl_task = self.control
            if ctl_task.done() and not ctl_task.cancelled():
                control = ctl_task.result()
            else:
                control = ControlObservation(
                    control_source, ctl_url, ctl_started, time.time() - ctl_started, Failure.DEADLINE_EXCEEDED
                )
        return Hop(
            index=self.index,
            url=self.url,
            host=self.host,
            port=self.port,
            scheme=self.scheme,
            dns=tuple(dns),
            tcp=tuple(sorted(self.tcp, key=lambda o: order.get(o.ip, len(order)))),
            tls=tuple(sorted(self.tls, key=lambda o: order.get(o.ip, len(order)))),
            http=self.http,
            control=control,
            dns_control=tuple(doh),
            dns_probe=tuple(q.observation() for q in self.probe_queries),
            decoy_tls=tuple(self.decoy_tls),
            decoy_http=tuple(self.decoy_http),
            quic=tuple(sorted(self.quic, key=lambda o: (order.get(o.ip, len(order)), o.attempt))),
            decoy_quic=tuple(sorted(self.decoy_quic, key=lambda o: order.get(o.ip, len(order)))),
            ech=tuple(self.ech),
        )

