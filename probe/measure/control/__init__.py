"""The control: what an uncensored vantage point sees, for comparison with the probe.

- :mod:`probe.measure.control.protocol`: OONI's Web Connectivity test-helper protocol (pure functions);
- :mod:`probe.measure.control.client`: :class:`ControlClient`, the probe's side (httpx);
- :mod:`probe.serve`: ``probe helper serve``, the server side (aiohttp).

Import the submodules directly; this package imports nothing heavy.
"""

from __future__ import annotations

__all__: list[str] = []
