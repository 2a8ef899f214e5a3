"""WireGuard keys as text: base64 of 32 bytes (``wg genkey``, ``wg pubkey``), one definition for
the endpoint lists, the probe and the helper's reflector."""

from __future__ import annotations

import base64

__all__ = ["decode_key", "encode_key"]


def encode_key(key: bytes) -> str:
    """A 32-byte key as WireGuard writes it (base64)."""
    return base64.b64encode(key).decode()


def decode_key(text: str) -> bytes:
    """A WireGuard key (base64 of 32 bytes); ValueError naming the text otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{text[:64]!r} is not a WireGuard key (base64 of 32 bytes)")
    return raw
