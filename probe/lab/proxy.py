"""The censor's transparent proxy and TLS interceptor (run in the censor namespace).

::

    python -m probe.lab.proxy --http 0.0.0.0:3129 --tls 0.0.0.0:3443 \\
        --cert censor.pem --key censor.key --config PROXY.json

* ``--http``: the scenario's NAT rule redirects port-80 flows here (``-j REDIRECT``). The proxy
  reads the request head; when its Host is in ``block_hosts`` it answers with the block page
  (as ISP middleboxes do), otherwise it connects to the original destination (SO_ORIGINAL_DST)
  and relays both ways.
* ``--tls``: port-443 flows redirected here meet a certificate for the name issued by the
  censor's own CA (interception). A client that accepts it gets the block page.

``PROXY.json`` (``{"block_hosts": [...], "redirect_hosts": {host: location}}``) is re-read
whenever it changes; a Host in ``redirect_hosts`` gets a forged 302 to its location.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import struct
import sys

from probe.core.net import host_of, parse_listen
from probe.lab.blockpage import blockpage_response
from probe.lab.dnsserver import ConfigFile
from probe.lab.safety import require_lab_namespace

__all__ = ["main", "original_destination", "redirect_response"]

SO_ORIGINAL_DST = 80
_HEAD_LIMIT = 64 * 1024


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """The destination a REDIRECTed/DNATed IPv4 connection was addressed to (SO_ORIGINAL_DST)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _HEAD_LIMIT:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
    return data


def _host_of(head: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return host_of(value.decode("latin-1"))
    return ""


def redirect_response(location: str) -> bytes:
    """A forged 302 to ``location`` (an ISP box sending users to its warning page)."""
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        writer.close()
        await writer.wait_closed()


async def serve(http: tuple[str, int], tls: tuple[str, int] | None, cert: str | None,
                key: str | None, config: str | None) -> None:
    """Serve the proxy (and the interceptor when ``tls`` is given) until cancelled."""
    require_lab_namespace("the censor's proxy")
    cfg = ConfigFile(config, {})

    async def on_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            dst = original_destination(sock)
            head = await asyncio.wait_for(_read_head(reader), 15)
            if not head:
                return
            blocked = {h.lower() for h in cfg.get().get("block_hosts", [])}
            redirects = cfg.get().get("redirect_hosts", {})
            host = _host_of(head)
            if host in blocked:
                writer.write(blockpage_response())
                await writer.drain()
                return
            if host in redirects:
                writer.write(redirect_response(str(redirects[host])))
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*dst), 10)
            up_writer.write(head)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            await _close(up_writer)
        except (TimeoutError, OSError) as exc:
            print(f"proxy: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            await _close(writer)

    async def on_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(_read_head(reader), 15)
            if head:
                writer.write(blockpage_response())
                await writer.drain()
        except (TimeoutError, OSError, ssl.SSLError):
            pass  # the client refused our certificate: that is the point
        finally:
            await _close(writer)

    servers = [await asyncio.start_server(on_http, *http, reuse_address=True)]
    if tls and cert and key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
        servers.append(await asyncio.start_server(on_tls, *tls, ssl=ctx, reuse_address=True,
                                                  ssl_handshake_timeout=15))  # fmt: skip
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()


def _hostport(text: str) -> tuple[str, int]:
    host, port = parse_listen(text)
    return host or "0.0.0.0", port


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.proxy")
    ap.add_argument("--http", required=True, help="IP:PORT of the transparent HTTP proxy")
    ap.add_argument("--tls", help="IP:PORT of the TLS interceptor")
    ap.add_argument("--cert", help="interception certificate (PEM)")
    ap.add_argument("--key", help="its key")
    ap.add_argument("--config", help="JSON with block_hosts, re-read on change")
    args = ap.parse_args(argv)
    try:
        asyncio.run(serve(_hostport(args.http), _hostport(args.tls) if args.tls else None,
                          args.cert, args.key, args.config))  # fmt: skip
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
