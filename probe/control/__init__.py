"""The control: what an uncensored vantage point sees, for comparison with the probe.

- :mod:`probe.control.protocol`: OONI's Web Connectivity test-helper protocol (pure functions);
- :mod:`probe.control.client`: :class:`ControlClient`, the probe's side (httpx);
- :mod:`probe.control.helper`: ``probe helper serve``, the server side (aiohttp).

Import the submodules directly; this package imports nothing heavy.
"""

from __future__ import annotations

__all__: list[str] = []
