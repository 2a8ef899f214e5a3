"""One small HTTP/1.1 exchange over asyncio streams, for the checks that run before a run measures.

The pre-flight check (is a control helper there?) and the identity check (which address does
the helper see?) each need one request and a short answer, at the very start of a run. An HTTP
client would first cost ~0.1 s of importing and setting up; this starts the connection at once
and parses the answer with h11 (httpcore's HTTP/1.1 parser), so the round trips overlap the
run's imports instead of following them. Everything read is bounded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from probe.measure import localaddrs

if TYPE_CHECKING:
    import ssl

__all__ = ["HEAD_MAX", "exchange"]

#: Bytes of an answer's head read at most.
HEAD_MAX = 16 << 10


async def exchange(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "",
    timeout: float = 3.0,
    ssl_context: ssl.SSLContext | None = None,
    body_max: int = 0,
) -> tuple[int, bytes] | None:
    """``(status, body)`` of one request to ``url``, or None when no HTTP answer came.

    ``ssl_context`` verifies an ``https`` server (None: the system's CAs). Up to ``body_max``
    bytes of the answer's body are read (0: none, the status line is enough); a longer body
    is no answer. Never raises for network failures: refused, reset, TLS, a timeout, not HTTP.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", parts.netloc.rpartition("@")[2]), ("Connection", "close"),
               ("User-Agent", "probe-preflight")]  # fmt: skip
    if body or method == "POST":
        headers += [("Content-Length", str(len(body)))]
        if content_type:
            headers += [("Content-Type", content_type)]
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=(ssl_context or True) if https else None,
                server_hostname=host if https else None,
            )  # fmt: skip
            localaddrs.note(writer.get_extra_info("sockname"))
            try:
                import h11  # after the connect: its first packet leaves before this import

                conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_MAX)
                out = conn.send(h11.Request(method=method, target=target, headers=headers))
                if body:
                    out += conn.send(h11.Data(data=body))
                writer.write(out + conn.send(h11.EndOfMessage()))
                await writer.drain()
                while (event := conn.next_event()) is h11.NEED_DATA:
                    conn.receive_data(await reader.read(4096))  # b"": the server closed
                if not isinstance(event, h11.Response | h11.InformationalResponse):
                    return None
                status = event.status_code
                if not body_max:
                    return status, b""
                data = bytearray()
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        conn.receive_data(await reader.read(4096))
                        continue
                    if isinstance(part, h11.Data):
                        data += part.data
                        if len(data) > body_max:
                            return None
                        continue
                    break  # EndOfMessage, or the connection closed
                return status, bytes(data)
            finally:
                writer.close()
    except Exception:  # refused, reset, TLS, a timeout, not HTTP: no answer
        return None
