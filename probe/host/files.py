"""Files whose size nobody promised: a local file a user named, a file downloaded for an update.

A path given by a user can name anything (``/dev/zero``, a log that grew to gigabytes, a FIFO
never written): every such file is read through :func:`read_bounded`, which stops one byte past
the limit and says which file and why, as the caller's own error type. Every update download
(``probe geo update``, ``probe testlists update``) goes through :func:`download_bounded`, which
writes the raw bytes (never decompressed) and stops one chunk past its limit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["download_bounded", "read_bounded"]


def read_bounded(path: Path, limit: int, *, what: str, error: type[Exception]) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises ``error`` with a message naming the path when it cannot be read (``cannot read:``
    and the system's reason) or holds more than ``limit`` bytes (``larger than ...: not``
    ``what``, e.g. "a config file"). Decoding is the caller's: formats differ in what they allow.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        size = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
        raise error(f"{path}: larger than {size}: not {what}")
    return data


def download_bounded(
    client: httpx.Client, url: str, dest: Path, limit: int, *, what: str, error: type[Exception],
    total: float | None = None,
) -> Mapping[str, str]:
    """GET ``url`` into ``dest`` (its raw bytes, at most ``limit``) and return the headers.

    Raises ``error`` naming the URL for a status other than 200, a body larger than ``limit``
    (``larger than ...: not`` ``what``), or a network failure (``cannot fetch ...``); ``dest``
    may then hold part of the body: the caller stages downloads and removes what failed. The
    body is never decoded, so no Content-Encoding can make it larger than it was on the wire.

    ``total`` bounds the whole request in seconds, not each read: a server trickling a byte
    every few seconds never trips a read timeout, so at ``total`` a timer shuts the connection's
    socket down (which wakes the blocked read) and ``error`` says the download took too long.
    """
    # httpx only here, for downloads: read-only commands import this module for read_bounded.
    from probe.host.httpstack import load

    load()  # before httpx is first imported (probe/host/httpstack.py)
    import httpx

    start = time.monotonic()
    expired = threading.Event()
    timer: threading.Timer | None = None
    slow = f"{url}: not complete after {total or 0:g} s (a stalled or trickling server); not {what}"
    try:
        with client.stream("GET", url, headers={"Accept-Encoding": "identity"},
                           timeout=httpx.USE_CLIENT_DEFAULT if total is None else total) as response:
            if total is not None:
                remaining = total - (time.monotonic() - start)
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if remaining <= 0 or sock is None:
                    raise error(slow)
                timer = threading.Timer(remaining, _cut, (sock, expired))
                timer.daemon = True
                timer.start()
            if response.status_code != 200:
                raise error(f"{url}: HTTP {response.status_code}")
            size = 0
            with dest.open("wb") as fh:
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise error(f"{url}: larger than {limit >> 20} MiB: not {what}")
                    if expired.is_set():
                        raise error(slow)
                    fh.write(chunk)
            if expired.is_set():
                raise error(slow)
            return response.headers
    except httpx.HTTPError as exc:
        if expired.is_set() or (total is not None and time.monotonic() - start >= total):
            raise error(slow) from None
        raise error(f"cannot fetch {url}: {exc or type(exc).__name__} (are you online?)") from None
    finally:
        if timer is not None:
            timer.cancel()


def _cut(sock: socket.socket, expired: threading.Event) -> None:
    """The deadline of a download: shut its socket down, so that a blocked read returns."""
    expired.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed: the download ended as the timer fired
        pass
