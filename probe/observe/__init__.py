"""The measurement engine: DNS, TCP, TLS and HTTP observations, hop by hop (see engine.py)."""

from __future__ import annotations

from probe.observe.engine import ControlFn, MeasureConfig, aclose, measure

__all__ = ["ControlFn", "MeasureConfig", "aclose", "measure"]
