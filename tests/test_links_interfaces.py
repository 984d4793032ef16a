"""The host's interfaces read over rtnetlink (ygg.links.interfaces): the decoder on crafted
messages, then a namespace whose interface holds several IPv4 and IPv6 addresses."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, require_root, require_tool
from ygg.links import interfaces


def rtattr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + bytes(-len(raw) % 4)


def message(kind: int, payload: bytes, sequence: int = 1) -> bytes:
    raw = struct.pack("=IHHII", 16 + len(payload), kind, 2, sequence, 0) + payload
    return raw + bytes(-len(raw) % 4)


def link(index: int, name: str, flags: int) -> bytes:
    return struct.pack("=BxHiII", 0, 1, index, flags, 0) + rtattr(
        interfaces.IFLA_IFNAME, name.encode() + b"\0"
    )


def address(family: int, index: int, *attrs: bytes) -> bytes:
    return struct.pack("=BBBBI", family, 64, 0, 0, index) + b"".join(attrs)


class DecoderTests(SynchronousTestCase):
    def test_messages_in_one_datagram(self) -> None:
        data = message(16, link(3, "eth0", 0x1043)) + message(16, link(4, "wg0", 0x91), 7)
        split = list(interfaces.split_messages(data))
        self.assertEqual([(t, s) for t, s, _ in split], [(16, 1), (16, 7)])
        self.assertEqual(interfaces.parse_link(split[0][2]), (3, "eth0", 0x1043))
        self.assertEqual(interfaces.parse_link(split[1][2]), (4, "wg0", 0x91))

    def test_truncated_message_ends_the_datagram(self) -> None:
        good = message(16, link(3, "eth0", 1))
        self.assertEqual(len(list(interfaces.split_messages(good + good[:-4]))), 1)
        bogus_length = struct.pack("=IHHII", 8, 16, 0, 1, 0)  # shorter than its own header
        self.assertEqual(list(interfaces.split_messages(bogus_length + good)), [])

    def test_addresses(self) -> None:
        v4 = socket.inet_pton(socket.AF_INET, "198.51.100.1")
        v6 = socket.inet_pton(socket.AF_INET6, "fd59:6868::1")
        peer = socket.inet_pton(socket.AF_INET, "198.51.100.2")
        self.assertEqual(
            interfaces.parse_address(
                address(socket.AF_INET, 3, rtattr(interfaces.IFA_ADDRESS, v4))
            ),
            (3, "198.51.100.1"),
        )
        self.assertEqual(
            interfaces.parse_address(
                address(socket.AF_INET6, 3, rtattr(interfaces.IFA_ADDRESS, v6))
            ),
            (3, "fd59:6868::1"),
        )
        # Point-to-point: IFA_ADDRESS is the far end, IFA_LOCAL ours.
        ptp = address(
            socket.AF_INET,
            5,
            rtattr(interfaces.IFA_ADDRESS, peer),
            rtattr(interfaces.IFA_LOCAL, v4),
        )
        self.assertEqual(interfaces.parse_address(ptp), (5, "198.51.100.1"))
        # Wrong sizes and unknown families are skipped, never raised.
        self.assertIsNone(
            interfaces.parse_address(address(socket.AF_INET, 3, rtattr(1, b"\x01\x02")))
        )
        self.assertIsNone(interfaces.parse_address(address(17, 3, rtattr(1, v4))))
        self.assertIsNone(interfaces.parse_address(b"\x02"))
        self.assertEqual(interfaces.parse_link(b""), (0, "", 0))

    def test_dump_stops_at_done_and_raises_errors(self) -> None:
        class FakeSocket:
            def __init__(self, answers: list[bytes]) -> None:
                self.answers = answers
                self.sent: list[bytes] = []

            def send(self, data: bytes) -> None:
                self.sent.append(data)

            def recv(self, size: int) -> bytes:
                return self.answers.pop(0)

        sequence = next(interfaces._sequence) + 1
        first = message(16, b"A" * 16, sequence) + message(16, b"B" * 16, sequence + 99)
        done = message(interfaces.NLMSG_DONE, b"\0\0\0\0", sequence)
        fake = FakeSocket([first, done])
        payloads = list(interfaces._dump(fake, interfaces.RTM_GETLINK, b""))  # type: ignore[arg-type]
        self.assertEqual(payloads, [b"A" * 16])  # another request's answer is ignored
        self.assertEqual(struct.unpack_from("=IHH", fake.sent[0])[1:], (18, 0x301))

        sequence = next(interfaces._sequence) + 1
        error = message(interfaces.NLMSG_ERROR, struct.pack("=i", -1) + bytes(16), sequence)
        with self.assertRaises(OSError) as caught:
            list(interfaces._dump(FakeSocket([error]), 22, b""))  # type: ignore[arg-type]
        self.assertEqual(caught.exception.errno, 1)

    def test_this_host(self) -> None:
        found = {i.name: i for i in interfaces.all_interfaces()}
        lo = found["lo"]
        self.assertEqual(lo.index, socket.if_nametoindex("lo"))
        self.assertTrue(lo.flags & interfaces.IFF_LOOPBACK)
        self.assertEqual(sorted(found), sorted(name for _, name in socket.if_nameindex()))


NAMESPACE_SCRIPT = """
import json
from ygg.links import interfaces
from ygg.links.manager import source_address_for
found = {i.name: i.addresses for i in interfaces.all_interfaces()}
print(json.dumps({
    "addresses": found,
    "source": [source_address_for("ygv0", d) for d in ("198.51.100.50", "fd59:6868::9", "fe80::9")],
}))
"""


class NamespaceTests(SynchronousTestCase):
    """Needs root for ``ip netns``; skips when not root (fails under YGG_REQUIRE_INTEROP=1)."""

    V4 = ("198.51.100.1/24", "203.0.113.7/24", "198.51.100.9/24")
    V6 = ("fd59:6868:1::1/64", "fd59:6868::1/64", "fe80::77/64")

    def setUp(self) -> None:
        require_root()
        require_tool("ip")
        self.ns = f"yglif{os.getpid() % 100000}-{int(time.time() * 1000) % 100000}"
        self.ip("netns", "add", self.ns)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.ns], capture_output=True)
        self.ip("-n", self.ns, "link", "add", "ygv0", "type", "veth", "peer", "name", "ygv1")
        for cidr in self.V4:
            self.ip("-n", self.ns, "addr", "add", cidr, "dev", "ygv0")
        for cidr in self.V6:
            self.ip("-n", self.ns, "addr", "add", cidr, "dev", "ygv0", "nodad")

    def ip(self, *argv: str) -> str:
        done = subprocess.run(["ip", *argv], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_every_address_of_an_interface(self) -> None:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns, PYTHON, "-c", NAMESPACE_SCRIPT],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        result = json.loads(done.stdout)
        (shown,) = json.loads(self.ip("-n", self.ns, "-j", "addr", "show", "dev", "ygv0"))
        kernel_order = [a["local"] for a in shown["addr_info"]]
        self.assertEqual(
            sorted(kernel_order), sorted(cidr.split("/")[0] for cidr in self.V4 + self.V6)
        )
        self.assertEqual(result["addresses"]["ygv0"], kernel_order)  # all of them, as Go sees
        self.assertEqual(result["addresses"]["ygv1"], [])
        # InterfacePeers' source: the first suitable address of the destination's family
        # and class, in the kernel's order (as the Go node picks it).
        first_v6_global = next(a for a in kernel_order if a.startswith("fd59:"))
        self.assertEqual(result["source"], ["198.51.100.1", first_v6_global, "fe80::77%ygv0"])
