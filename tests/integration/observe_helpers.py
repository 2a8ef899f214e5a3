"""Small helpers shared by the observe integration tests."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx

from probe.core.model import Measurement, Target
from probe.measure.engine import MeasureConfig, measure

__all__ = ["config", "run", "target"]


def target(url: str) -> Target:
    """A Target for a well-formed URL (what testlists.parse_url would give)."""
    u = httpx.URL(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    return Target(url, url, u.scheme, u.host, port, u.raw_path.decode("ascii"), source="cli")


def config(net: Any, **kw: Any) -> MeasureConfig:
    """Short timeouts and window for tests, the loopback zone resolver and the test CA."""
    base = MeasureConfig(
        resolvers=(net.resolver,),
        cafile=net.ca_path,
        late_window=0.05,
        dns_timeout=1.0,
        tcp_timeout=2.0,
        tls_timeout=2.0,
        http_timeout=3.0,
        deadline=10.0,
    )
    return dataclasses.replace(base, **kw)


def run(url: str, cfg: MeasureConfig, **kw: Any) -> Measurement:
    return asyncio.run(measure(target(url), cfg, **kw))
