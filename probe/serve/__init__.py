"""Serving: ``probe helper serve``, the OONI-compatible test helper (control).

An aiohttp application that answers Web Connectivity test-helper requests by measuring the URL
with probe's own engine from this vantage point: :mod:`.config` (server policy, the engine's
settings, the measure function), :mod:`.app` (handlers, counters, request log),
:mod:`.connections` (the per-client connection cap), :mod:`.privacy` (no client address in any
log line) and :mod:`.server` (serving until stopped). It refuses work beyond ``max_in_flight``
with 503 + Retry-After and shuts down gracefully on SIGTERM. May import core, host, inputs and
measure; never the run, the store or the presentation.
"""
