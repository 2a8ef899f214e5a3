"""The pre-flight's HTTP reachability check: any HTTP answer counts, nothing else does."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from servers import LoopbackNet

from probe.measure.netcheck import http_reachable

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def check(url: str, timeout: float = 3.0, ctx: ssl.SSLContext | None = None) -> bool:
    return asyncio.run(http_reachable(url, timeout, ctx))


def test_any_http_status_counts(loopback_net: LoopbackNet) -> None:
    # The loopback web server answers 404 for a name it does not serve: still an answer.
    assert check(f"http://{loopback_net.web_ip}:{loopback_net.http_port}/health")


@pytest.mark.parametrize("which", ["closed_ip", "reset_ip"])
def test_refused_and_reset_connections_are_unreachable(loopback_net: LoopbackNet, which: str) -> None:
    assert not check(f"http://{getattr(loopback_net, which)}:{loopback_net.http_port}/health")


def test_a_server_that_never_answers_is_unreachable_within_the_timeout(
    loopback_net: LoopbackNet,
) -> None:
    assert not check(f"http://{loopback_net.blackhole_ip}:{loopback_net.http_port}/", timeout=0.3)


def test_an_answer_that_is_not_http_does_not_count() -> None:
    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    async def main() -> bool:
        async with serving(ssh) as port:
            return await http_reachable(f"http://127.0.0.1:{port}/health", 3.0)

    assert asyncio.run(main()) is False


def test_an_endless_head_is_cut_off_not_buffered() -> None:
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nX-Junk: ")
        try:
            while sent < 64 << 20:
                writer.write(b"a" * 65536)
                sent += 65536
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def main() -> bool:
        async with serving(endless) as port:
            return await http_reachable(f"http://127.0.0.1:{port}/health", 10.0)

    assert asyncio.run(main()) is False
    assert sent < 32 << 20  # the client stopped reading at the 16 KiB bound (socket buffers aside)


def test_https_is_verified_with_the_context_given(tmp_path: Path) -> None:
    pytest.importorskip("trustme")
    from probe.lab.certs import CertAuthority
    from probe.measure.tls import verifying_context

    ca = CertAuthority("probe test CA")
    cert, key = ca.leaf_files(tmp_path, "cert", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    ca_path = str(ca.write(tmp_path / "ca.pem"))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        writer.close()

    async def main() -> tuple[bool, bool]:
        async with serving(answer, server_ctx) as port:
            url = f"https://127.0.0.1:{port}/health"
            return (await http_reachable(url, 3.0, verifying_context(ca_path)),
                    await http_reachable(url, 3.0))  # fmt: skip

    assert asyncio.run(main()) == (True, False)
