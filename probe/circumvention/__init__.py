"""Circumvention reachability: do the tools people use to get around censorship (Tor, OpenVPN,
VPN providers' TLS/TCP endpoints) still connect from this network? See docs/circumvention.md."""

from probe.circumvention.endpoints import DEFAULT_LIST, Endpoint, EndpointListError, load_endpoints
from probe.circumvention.judge import judge_endpoint
from probe.circumvention.measure import EndpointObservation, measure_endpoint
from probe.circumvention.suite import SuiteConfig, SuiteSummary, measure_endpoints, run_suite

__all__ = [
    "DEFAULT_LIST",
    "Endpoint",
    "EndpointListError",
    "EndpointObservation",
    "SuiteConfig",
    "SuiteSummary",
    "judge_endpoint",
    "load_endpoints",
    "measure_endpoint",
    "measure_endpoints",
    "run_suite",
]
