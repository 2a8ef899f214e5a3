"""No client address in any log line, ours or the libraries' (``--log-clients``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from probe.core.net import is_ip_literal, split_port

__all__ = ["ClientScrubber"]


# Candidates for an IP address (IPv4, IPv6, IPv4-mapped, with a zone or a :port), checked
# with ipaddress before anything is replaced.
_ADDRESS_RE = re.compile(r"(?<![\w.:])[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*(?:%[\w.-]+)?(?![\w.:])")
#: Loggers of the libraries under the helper that may name a client (aiohttp's "Error
#: handling request from ADDRESS", asyncio's accept errors with the socket's raddr).
_LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.client", "aiohttp.internal", "aiohttp.server",
                    "aiohttp.web", "aiohttp.websocket", "asyncio")


class ClientScrubber(logging.Filter):
    """Rewrites library log records so that no client address reaches the log.

    ``--log-clients none`` must hold for every line, not only ours: aiohttp logs "Error
    handling request from 203.0.113.5" and asyncio logs sockets with their peer. Every IP
    address in the message, its arguments and its traceback becomes what ``replace`` says
    (``<client>``, or a salted hash with ``--log-clients hashed``).
    """

    def __init__(self, replace: Callable[[str], str]) -> None:
        super().__init__()
        self._replace = replace

    def _scrub(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            found = m.group(0)
            if is_ip_literal(found.split("%", 1)[0]):
                return self._replace(found)
            split = split_port(found)
            if split is not None and is_ip_literal(split[0]):
                return f"{self._replace(split[0])}:{split[1]}"  # 192.0.2.1:5555
            return found  # a time, a version, a hex string: not an address

        return _ADDRESS_RE.sub(sub, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; always keep it."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = self._scrub(message), None
        if record.exc_info:
            record.exc_text = self._scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        return True

    def install(self) -> None:
        """Attach to the library loggers."""
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        """Detach from the library loggers."""
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self)
