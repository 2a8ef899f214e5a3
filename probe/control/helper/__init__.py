"""The test-helper server: ``probe helper serve``.

An aiohttp application that answers OONI Web Connectivity test-helper requests (POST ``/`` or
``/web-connectivity``) by measuring the URL with the probe's own engine from this vantage
point: its own DNS lookup, TCP and TLS to its addresses and to the probe's, and the HTTP fetch
with redirects. It refuses work beyond ``max_in_flight`` with 503 + Retry-After, answers
``GET /health``, logs one line per request without the client's address unless asked, and
shuts down gracefully on SIGTERM (in-flight requests are finished).

The package's parts: :mod:`.config` (server policy, the engine's settings, the measure
function), :mod:`.app` (the application: handlers, counters, request log), :mod:`.connections`
(the per-client connection cap), :mod:`.privacy` (no client address in any log line) and
:mod:`.server` (serving until stopped).
"""

from __future__ import annotations

from probe.control.helper.app import Helper
from probe.control.helper.config import HelperConfig, MeasureFn, engine_measure, measure_config
from probe.control.helper.connections import ClientLimiter
from probe.control.helper.privacy import ClientScrubber
from probe.control.helper.server import run, serve

__all__ = [
    "ClientLimiter",
    "ClientScrubber",
    "Helper",
    "HelperConfig",
    "MeasureFn",
    "engine_measure",
    "measure_config",
    "run",
    "serve",
]
