"""The measurement engine: DNS, TCP, TLS and HTTP observations, hop by hop (see engine.py)."""

from __future__ import annotations

from probe import httpstack

httpstack.load()  # before any module here imports httpx: without the parts probe never runs

from probe.observe.engine import ControlFn, MeasureConfig, aclose, measure  # noqa: E402

__all__ = ["ControlFn", "MeasureConfig", "aclose", "measure"]
