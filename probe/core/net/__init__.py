"""The network vocabulary every part of probe speaks: URLs, hosts, addresses, endpoints, resolvers.

One definition of each idea, which the test lists, the engine, the control client, the test
helper and the classifier all call (after dnspython's ``dns.inet`` and httpx's ``_urlparse``):

- :mod:`probe.core.net.urls`: URL -> :class:`~probe.core.model.Target`, with the one IDNA policy;
- :mod:`probe.core.net.addresses`: IP literals, canonical addresses, address classes, public names;
- :mod:`probe.core.net.hostport`: ``host:port`` parsing and ``[IPv6]:port`` formatting;
- :mod:`probe.core.net.resolvers`: resolver specifications, resolv.conf (read in one place) and
  which resolvers a run asks (one rule);
- :mod:`probe.core.net.policy`: which addresses may be connected to on someone else's behalf (the
  test helper's SSRF guard).

Nothing here does network I/O, and nothing heavy is imported (``idna`` lazily, on a non-ASCII
host only).
"""

from __future__ import annotations

from probe.core.net.addresses import (
    addr_class,
    canon_ip,
    family,
    is_ip_literal,
    is_public_name,
    related_hosts,
)
from probe.core.net.hostport import (
    Endpoint,
    authority,
    bracket,
    format_endpoint,
    host_of,
    parse_endpoint,
    parse_hostport,
    parse_listen,
    split_hostport,
    split_port,
)
from probe.core.net.policy import is_public_address
from probe.core.net.resolvers import (
    DEFAULT_RESOLV_CONF,
    RunResolvers,
    format_resolver,
    parse_resolver,
    read_resolv_conf,
    run_resolvers,
    system_nameservers,
)
from probe.core.net.urls import DEFAULT_PORTS, InvalidURL, idna_host, is_valid_host, parse_url

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_RESOLV_CONF",
    "Endpoint",
    "InvalidURL",
    "RunResolvers",
    "addr_class",
    "authority",
    "bracket",
    "canon_ip",
    "family",
    "format_endpoint",
    "format_resolver",
    "host_of",
    "idna_host",
    "is_ip_literal",
    "is_public_address",
    "is_public_name",
    "is_valid_host",
    "parse_endpoint",
    "parse_hostport",
    "parse_listen",
    "parse_resolver",
    "parse_url",
    "read_resolv_conf",
    "related_hosts",
    "run_resolvers",
    "split_hostport",
    "split_port",
    "system_nameservers",
]
