"""The first packets of an OpenVPN handshake: what a censor's DPI looks for, and what proves a
server answered.

A client opens with ``P_CONTROL_HARD_RESET_CLIENT_V2`` (opcode 7) and a random 8-byte session
id; a server answers ``P_CONTROL_HARD_RESET_SERVER_V2`` (opcode 8) whose ACK array names our
packet and whose remote session id is ours. Over TCP each packet has a 2-byte length prefix.
This is the handshake OONI's ``openvpn`` experiment starts with; servers configured with
``tls-auth``/``tls-crypt`` drop it without an answer (their packets carry an HMAC we cannot make),
so lists must name servers without them. References: OpenVPN's ``ssl_pkt.h`` and its protocol
description in ``doc/doxygen/doc_protocol_overview.h``.
"""

from __future__ import annotations

import struct

__all__ = [
    "CLIENT_HARD_RESET_V2",
    "SERVER_HARD_RESET_V2",
    "client_hard_reset",
    "frame",
    "is_server_reset_for",
    "server_hard_reset",
]

CLIENT_HARD_RESET_V2 = 7
SERVER_HARD_RESET_V2 = 8


def client_hard_reset(session_id: bytes) -> bytes:
    """The client's first packet (key id 0, empty ACK array, packet id 0, no payload)."""
    if len(session_id) != 8:
        raise ValueError("an OpenVPN session id is 8 bytes")
    return bytes([CLIENT_HARD_RESET_V2 << 3]) + session_id + b"\x00" + struct.pack("!I", 0)


def server_hard_reset(server_session: bytes, client_session: bytes) -> bytes:
    """A server's answer acknowledging packet 0 of ``client_session`` (used by the lab)."""
    return (
        bytes([SERVER_HARD_RESET_V2 << 3])
        + server_session
        + b"\x01"
        + struct.pack("!I", 0)
        + client_session
        + struct.pack("!I", 0)
    )


def frame(packet: bytes) -> bytes:
    """A packet as sent over TCP: its 2-byte big-endian length first."""
    return struct.pack("!H", len(packet)) + packet


def is_server_reset_for(packet: bytes, client_session: bytes) -> bool:
    """True when ``packet`` is a server HARD_RESET acknowledging our session (nothing else is
    proof that an OpenVPN server, and not a middlebox, answered)."""
    if len(packet) < 1 + 8 + 1 or packet[0] >> 3 != SERVER_HARD_RESET_V2:
        return False
    n_acks = packet[9]
    if n_acks == 0:
        return False
    remote = 10 + 4 * n_acks
    return packet[remote : remote + 8] == client_session
