"""Hostile peers for the reliability suite: decompression bombs, junk DNS, stalled clients.

Everything talks to 127.0.0.0/8 only. Used by the reliability tests and by
``bench/reliability.py`` (the figures in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BombServer",
    "Child",
    "HelperProcess",
    "closed_by_peer",
    "gzip_bomb",
    "hold_connections",
    "raise_open_files_limit",
    "run_child",
    "vm_hwm_mb",
    "zeros_crc32",
]

#: Address-space limit of the children the tests run against hostile servers: a regression
#: ends in MemoryError inside the child, never in gigabytes taken from a shared machine.
CHILD_MEMORY_LIMIT = 1536 << 20


@dataclass(frozen=True)
class Child:
    """A finished child process: exit status, output, and its own peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float


# Runs ``python -m MODULE ARGS`` and, at exit, writes the process's VmHWM (peak resident set of
# its own address space) to $PROBE_TEST_HWM_FILE. Not ru_maxrss: after fork from a large test
# process, ru_maxrss still counts the parent's pages the child held before exec.
_HWM_WRAPPER = """
import atexit, os, runpy, sys
def _hwm():
    with open("/proc/self/status") as f:
        kb = next((l.split()[1] for l in f if l.startswith("VmHWM:")), "0")
    with open(os.environ["PROBE_TEST_HWM_FILE"], "w") as out:
        out.write(kb)
atexit.register(_hwm)
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(
    module: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    memory_limit: int = CHILD_MEMORY_LIMIT,
) -> Child:
    """``python -m module args`` under an address-space limit, with its peak RSS (VmHWM)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    with tempfile.TemporaryDirectory() as tmp:
        hwm = os.path.join(tmp, "hwm")
        child_env = dict(env if env is not None else os.environ, PROBE_TEST_HWM_FILE=hwm)
        proc = subprocess.run([sys.executable, "-c", _HWM_WRAPPER, module, *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=child_env, preexec_fn=limit, timeout=timeout)
        try:
            with open(hwm) as f:
                peak = int(f.read() or 0) / 1024
        except FileNotFoundError:
            peak = 0.0  # killed before exit: no figure
        return Child(proc.returncode, proc.stdout, proc.stderr, peak)


_POLY = 0xEDB88320  # CRC-32 (reflected), as gzip uses


def _gf2_times(mat: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def zeros_crc32(n: int, crc: int = 0) -> int:
    """``zlib.crc32(bytes(n), crc)`` in O(log n) (zlib's crc32_combine idea, for zeros).

    Appending zero bytes is a linear map on the CRC register: build it for one zero bit and
    square it, instead of feeding gigabytes of zeros to zlib.
    """
    if n <= 0:
        return crc
    crc ^= 0xFFFFFFFF
    odd = [_POLY] + [1 << (k - 1) for k in range(1, 32)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the first pass: one zero byte
        if n & 1:
            crc = _gf2_times(even, crc)
        n >>= 1
        if not n:
            break
        odd = _gf2_square(even)
        if n & 1:
            crc = _gf2_times(odd, crc)
        n >>= 1
        if not n:
            break
    return crc ^ 0xFFFFFFFF


def _gzip_of_zeros(size: int, block: int = 1 << 22) -> bytes:
    """A valid gzip member of ``size`` zero bytes, built without compressing them all.

    After a full flush the compressor's output for the same input block repeats exactly, so
    one block's bytes are repeated; the trailer's CRC and size are computed directly.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zero = bytes(block)
    first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    steady = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(size, block)
    parts = [first] if blocks else []
    parts.extend([steady] * max(0, blocks - 1))
    if not blocks:
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # nothing flushed: start afresh
    final = c.compress(bytes(rest)) + c.flush()  # the stream's last block: the rest
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = zeros_crc32(size).to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    return header + b"".join(parts) + final + trailer


def gzip_bomb(size: int = 2 << 30, layers: int = 2) -> bytes:
    """``size`` zero bytes gzipped ``layers`` times (``Content-Encoding: gzip, gzip``)."""
    data = _gzip_of_zeros(size)
    for _ in range(layers - 1):
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        data = c.compress(data) + c.flush()
    return data


class BombServer:
    """An HTTP server answering every request with ``body`` and ``Content-Encoding``."""

    def __init__(self, body: bytes, encoding: str, ip: str = "127.0.0.1") -> None:
        self.body = body
        self.encoding = encoding
        self.ip = ip
        self.port = 0
        self.requests = 0
        self._server: asyncio.AbstractServer | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                f"Content-Encoding: {self.encoding}\r\nContent-Length: {len(self.body)}\r\n\r\n"
            )
            writer.write(head.encode() + self.body)
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> BombServer:
        self._server = await asyncio.start_server(self._serve, self.ip, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()


@contextlib.asynccontextmanager
async def hold_connections(
    host: str, port: int, count: int, first_bytes: bytes, source: str = "127.0.0.1"
) -> AsyncIterator[list[socket.socket]]:
    """Open ``count`` connections to host:port from ``source``, send ``first_bytes``, hold them.

    Plain non-blocking sockets (no asyncio transports: a thousand of them would cost the
    test's own loop more than the server under test). A connection the server refuses
    (closed or reset at once) is held all the same. Closed on exit.
    """
    loop = asyncio.get_running_loop()
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((source, 0))
            socks.append(s)
            await loop.sock_connect(s, (host, port))
            if first_bytes:
                with contextlib.suppress(ConnectionError):
                    await loop.sock_sendall(s, first_bytes)
        yield socks
    finally:
        for s in socks:
            s.close()


async def closed_by_peer(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes the connection (b"" after a reset)."""
    loop = asyncio.get_running_loop()
    data = b""
    try:
        while chunk := await loop.sock_recv(sock, 65536):
            data += chunk
    except ConnectionError:
        pass
    return data


def raise_open_files_limit() -> None:
    """Let this (test) process hold a few thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class HelperProcess:
    """``probe helper serve`` in a child process on a free loopback port, memory-limited.

    ``base`` is its URL once started; ``log`` collects its stderr; ``peak_rss_mb`` is set
    when it is stopped (VmHWM). ``hwm_mb()`` reads its peak RSS while it runs.
    """

    def __init__(
        self, *args: str, memory_limit: int = CHILD_MEMORY_LIMIT, open_files: int | None = None
    ) -> None:
        self.args = args
        self.memory_limit = memory_limit
        self.open_files = open_files  # RLIMIT_NOFILE (soft and hard), as on a default system
        self.log: list[str] = []
        self.base = ""
        self.port = 0
        self.peak_rss_mb = 0.0
        self.returncode: int | None = None
        self._listening = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m and not self.port:
                self.port = int(m.group(1))
                self._listening.set()
        self._listening.set()  # exited: never hang the caller

    def start(self, timeout: float = 60.0) -> HelperProcess:
        limit, files = self.memory_limit, self.open_files

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            if files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "probe", "helper", "serve", "--listen", "127.0.0.1:0", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=preexec,
        )
        threading.Thread(target=self._read, args=(self._proc.stderr,), daemon=True).start()
        if not self._listening.wait(timeout) or not self.port:
            self.stop()
            raise RuntimeError("helper did not start: " + "".join(self.log[-20:]))
        self.base = f"http://127.0.0.1:{self.port}/"
        return self

    def hwm_mb(self) -> float:
        """Peak resident memory so far (VmHWM), in MB."""
        assert self._proc is not None
        return vm_hwm_mb(self._proc.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the helper has used so far: a cost that, unlike wall
        time, does not grow when other work shares the machine."""
        assert self._proc is not None
        with open(f"/proc/{self._proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 60.0) -> None:
        proc = self._proc
        if proc is None or self.returncode is not None:
            return
        with contextlib.suppress(OSError):
            self.peak_rss_mb = vm_hwm_mb(proc.pid)  # its own peak, up to the stop
        proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.returncode = proc.wait()

    def __enter__(self) -> HelperProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
