"""ygg.ipv6.length against the running kernel: the same malformed packets written into a
real TUN (root; in a network namespace of its own) are taken, trimmed or dropped by Linux
exactly as the IPv6 layer takes, trims or drops them before they reach the mesh or the TUN."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, require_root
from tests.processes import child_env
from tests.tun_probe import DEST, SOURCE
from ygg.ipv6.length import HOP_BY_HOP, IPV6_HEADER, kept_length

UDP = 17
DATAGRAM = struct.pack(">HHHH", 5555, 9999, 13, 0) + b"hello"  # checksum not looked at


def packet(body: bytes, payload_length: int, next_header: int = UDP) -> bytes:
    header = struct.pack(">IHBB", 6 << 28, payload_length, next_header, 64)
    return header + ipaddress.IPv6Address(SOURCE).packed + ipaddress.IPv6Address(DEST).packed + body


def hop_by_hop(*options: bytes, length_field: int = 0) -> bytes:
    header = bytes((UDP, length_field)) + b"".join(options)
    return header + bytes(-len(header) % 8)


PADN = bytes((1, 4, 0, 0, 0, 0))
JUMBO_OF_70000 = bytes((0xC2, 4)) + struct.pack(">I", 70000)
JUMBO_OF_21 = bytes((0xC2, 4)) + struct.pack(">I", 21)

CASES = {
    "exact": packet(DATAGRAM, 13),
    "says 65535": packet(DATAGRAM, 65535),
    "one byte short": packet(DATAGRAM, 14),
    "trailing bytes": packet(DATAGRAM + b"GARBAGE", 13),
    "zero, UDP next, with data": packet(DATAGRAM, 0),
    "zero, bare header": packet(b"", 0),
    "hop-by-hop, exact": packet(hop_by_hop(PADN) + DATAGRAM, 21, HOP_BY_HOP),
    "hop-by-hop, trailing": packet(hop_by_hop(PADN) + DATAGRAM + b"XY", 21, HOP_BY_HOP),
    "zero, hop-by-hop without jumbo": packet(hop_by_hop(PADN) + DATAGRAM, 0, HOP_BY_HOP),
    "zero, hop-by-hop, trailing": packet(hop_by_hop(PADN) + DATAGRAM + b"XY", 0, HOP_BY_HOP),
    "zero, jumbo of 70000": packet(hop_by_hop(JUMBO_OF_70000) + DATAGRAM, 0, HOP_BY_HOP),
    "zero, jumbo of its size": packet(hop_by_hop(JUMBO_OF_21) + DATAGRAM, 0, HOP_BY_HOP),
    "zero, hop-by-hop missing": packet(b"", 0, HOP_BY_HOP),
    "zero, hop-by-hop cut short": packet(hop_by_hop(PADN, length_field=1), 0, HOP_BY_HOP),
}


def transport_bytes(data: bytes) -> int | None:
    """What a raw UDP socket gets of ``data`` if Linux takes it as ygg.ipv6.length says."""
    kept = kept_length(data)
    if kept < 0:
        return None
    if data[6] == HOP_BY_HOP:
        return kept - IPV6_HEADER - (data[IPV6_HEADER + 1] + 1) * 8
    return kept - IPV6_HEADER


class KernelAgreementTests(SynchronousTestCase):
    def test_same_as_linux(self) -> None:
        require_root()
        done = subprocess.run(
            ["unshare", "--net", "--", PYTHON, "-m", "tests.tun_probe"],
            input=json.dumps([p.hex() for p in CASES.values()]),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=child_env(),
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        kernel = dict(zip(CASES, json.loads(done.stdout), strict=True))
        ours = {name: transport_bytes(data) for name, data in CASES.items()}
        self.assertEqual(ours, kernel)
        # The probe saw what it was meant to: some taken whole, some trimmed, some dropped.
        self.assertEqual(kernel["exact"], 13)
        self.assertEqual(kernel["trailing bytes"], 13)
        self.assertIsNone(kernel["says 65535"])
