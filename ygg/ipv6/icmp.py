"""ICMPv6 Packet Too Big, as the Go node sends it back over the mesh (spec yggdrasil §5.4)."""

from __future__ import annotations

import struct

ICMPV6 = 58
PACKET_TOO_BIG = 2
HOP_LIMIT = 255
MAX_QUOTED = 512


def checksum(source: bytes, dest: bytes, message: bytes) -> int:
    """The ICMPv6 checksum: one's complement sum over the IPv6 pseudo-header and message."""
    pseudo = source + dest + struct.pack(">I3xB", len(message), ICMPV6)
    data = pseudo + message
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def packet_too_big(offending: bytes, mtu: int) -> bytes:
    """A whole IPv6 packet telling the sender of ``offending`` to use ``mtu``: from the
    offending packet's destination to its source, quoting at most its first 512 bytes."""
    quoted = bytes(offending[:MAX_QUOTED])
    source, dest = bytes(offending[24:40]), bytes(offending[8:24])
    body = struct.pack(">BBHI", PACKET_TOO_BIG, 0, 0, mtu) + quoted
    body = body[:2] + struct.pack(">H", checksum(source, dest, body)) + body[4:]
    header = struct.pack(">IHBB", 6 << 28, len(body), ICMPV6, HOP_LIMIT)
    return header + source + dest + body
