"""Reading a small local file whose size nobody promised: the config file, endpoint lists.

A path given by a user can name anything (``/dev/zero``, a log that grew to gigabytes, a FIFO
never written): every such file is read through :func:`read_bounded`, which stops one byte past
the limit and says which file and why, as the caller's own error type.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["read_bounded"]


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
