"""The IPv6 layer without a TUN: address checks, key lookups, buffering, Packet Too Big."""

from __future__ import annotations

import ipaddress
import struct

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg import address as addr
from ygg.ipv6.icmp import checksum, packet_too_big
from ygg.ipv6.layer import KEY_TIMEOUT, LOOKUP, RESPONSE, SWEEP_INTERVAL, IPv6Layer
from ygg.keys import NodeKey


class FakeCore:
    """Records what the layer sends; the router's verify is a real signature check."""

    def __init__(self, key: NodeKey) -> None:
        from ygg.keys import verify

        self.key = key
        self.public_key = key.public
        self.sent: list[tuple[bytes, bytes]] = []
        self.oob: list[tuple[bytes, bytes]] = []
        self.router = type("R", (), {"verify": staticmethod(verify)})()

    def send(self, dest: bytes, message: bytes) -> None:
        self.sent.append((dest, message))

    def send_oob(self, dest: bytes, data: bytes) -> None:
        self.oob.append((dest, data))


def ipv6_packet(
    source: bytes, dest: bytes, payload: bytes = b"x" * 8, next_header: int = 59
) -> bytes:
    return struct.pack(">IHBB", 6 << 28, len(payload), next_header, 64) + source + dest + payload


class LayerCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.me = NodeKey.generate()
        self.core = FakeCore(self.me)
        self.layer = IPv6Layer(self.core, self.clock)
        self.layer.start()
        self.tun: list[bytes] = []
        self.layer.write_tun = self.tun.append
        self.peer = NodeKey.generate()
        self.peer_address = addr.address_for_key(self.peer.public)
        self.peer_subnet = addr.subnet_for_key(self.peer.public)


class OutboundTests(LayerCase):
    def test_lookup_then_buffered_packet_flows(self) -> None:
        packet = ipv6_packet(self.layer.address, self.peer_address)
        self.layer.send(packet)
        self.assertEqual(self.core.sent, [])
        ((dest, data),) = self.core.oob
        partial = addr.key_for_address(self.peer_address)[0]
        self.assertEqual(dest, partial)
        self.assertEqual(data[0], LOOKUP)
        # The peer answers the lookup: the waiting packet goes to its key.
        response = bytes((RESPONSE,)) + self.peer.sign(self.me.public)
        self.layer.handle_oob(self.peer.public, self.me.public, response)
        self.assertEqual(self.core.sent, [(self.peer.public, b"\x01" + packet)])
        # Known now: the next packet goes straight out.
        self.layer.send(packet)
        self.assertEqual(len(self.core.sent), 2)
        self.assertEqual(len(self.core.oob), 1)

    def test_only_the_latest_packet_waits(self) -> None:
        first = ipv6_packet(self.layer.address, self.peer_address, b"first!!!")
        second = ipv6_packet(self.layer.address, self.peer_address, b"second!!")
        self.layer.send(first)
        self.layer.send(second)
        self.assertEqual(len(self.core.oob), 2)  # a lookup for every packet, as Go does
        self.layer.handle_oob(
            self.peer.public, self.me.public, bytes((RESPONSE,)) + self.peer.sign(self.me.public)
        )
        self.assertEqual(self.core.sent, [(self.peer.public, b"\x01" + second)])

    def test_subnet_destination_and_source(self) -> None:
        inside = self.layer.subnet + bytes(7) + b"\x01"
        dest = self.peer_subnet + bytes(7) + b"\x09"
        self.layer.send(ipv6_packet(inside, dest))
        ((partial, _),) = self.core.oob
        self.assertEqual(partial, addr.key_for_subnet(self.peer_subnet)[0])

    def test_drops(self) -> None:
        layer = self.layer
        layer.send(b"\x45" + bytes(39))  # IPv4
        layer.send(b"\x60" + bytes(10))  # short
        layer.send(ipv6_packet(ipaddress.IPv6Address("fe80::1").packed, self.peer_address))
        layer.send(ipv6_packet(layer.address, ipaddress.IPv6Address("2001:db8::1").packed))
        self.assertEqual(self.core.oob, [])
        self.assertEqual(
            dict(layer.drops), {"not-ipv6": 1, "undersized": 1, "source": 1, "destination": 1}
        )

    def test_lookup_signature_vector(self) -> None:
        """Spec §5.3: seed #5 looking up 202:7bb0:749d:3f5f:648f:b5d5:fa15:a202."""
        key = NodeKey.from_seed(
            bytes.fromhex("687b915c7fe7a6919f401f702dc091bc74446ecd698a112b6364eeb035d024ef")
        )
        core = FakeCore(key)
        layer = IPv6Layer(core, Clock())
        target = ipaddress.IPv6Address("202:7bb0:749d:3f5f:648f:b5d5:fa15:a202").packed
        layer.send(ipv6_packet(layer.address, target))
        ((dest, data),) = core.oob
        self.assertEqual(dest.hex(), "3089f16c5814136e094540bd4bbfbfff" + "ff" * 16)
        self.assertEqual(
            data.hex(),
            "01fa9984d5eb91065a559b10716ede6846f7db30c7b8ee8d58f77e026b1c7bdce67908434b44847426cc"
            "ad2573c64cac903e907fcd1b361d9bfbbe0fe72914770f",
        )


class InboundTests(LayerCase):
    def test_delivered_and_key_learnt(self) -> None:
        packet = ipv6_packet(self.peer_address, self.layer.address)
        self.layer.receive(self.peer.public, b"\x01" + packet)
        self.assertEqual(self.tun, [packet])
        self.assertIn(self.peer.public, self.layer.by_key)

    def test_spoofed_and_stray(self) -> None:
        other = addr.address_for_key(NodeKey.generate().public)
        self.layer.receive(self.peer.public, b"\x01" + ipv6_packet(other, self.layer.address))
        self.layer.receive(self.peer.public, b"\x01" + ipv6_packet(self.peer_address, other))
        self.layer.receive(self.peer.public, b"\x01hello")
        self.assertEqual(self.tun, [])
        self.assertEqual(
            dict(self.layer.drops), {"spoofed-source": 1, "not-for-us": 1, "not-ipv6": 1}
        )

    def test_too_big_gets_packet_too_big(self) -> None:
        big = ipv6_packet(self.peer_address, self.layer.address, b"z" * 2000)
        self.layer.receive(self.peer.public, b"\x01" + big)
        self.assertEqual(self.tun, [])
        # The PTB goes back to the sender's address (a lookup first: key not learnt yet).
        self.layer.handle_oob(
            self.peer.public, self.me.public, bytes((RESPONSE,)) + self.peer.sign(self.me.public)
        )
        ((dest, message),) = self.core.sent
        self.assertEqual(dest, self.peer.public)
        ptb = message[1:]
        self.assertEqual(ptb[6], 58)
        self.assertEqual(ptb[7], 255)
        self.assertEqual(ptb[8:24], self.layer.address)
        self.assertEqual(ptb[24:40], self.peer_address)
        self.assertEqual(ptb[40], 2)
        self.assertEqual(struct.unpack(">I", ptb[44:48])[0], 1280)
        self.assertEqual(ptb[48:], big[:512])
        self.assertEqual(checksum(ptb[8:24], ptb[24:40], ptb[40:]), 0)  # verifies

    def test_lookup_for_our_subnet_is_answered(self) -> None:
        partial = addr.key_for_address(self.layer.address)[0]
        asker = NodeKey.generate()
        self.layer.handle_oob(asker.public, partial, bytes((LOOKUP,)) + asker.sign(partial))
        ((dest, data),) = self.core.oob
        self.assertEqual(dest, asker.public)
        self.assertEqual(data, bytes((RESPONSE,)) + self.me.sign(asker.public))
        # A bad signature, a wrong size, or someone else's subnet: no answer.
        self.layer.handle_oob(asker.public, partial, bytes((LOOKUP,)) + bytes(64))
        self.layer.handle_oob(asker.public, partial, b"\x01\x02")
        elsewhere = addr.key_for_address(self.peer_address)[0]
        self.layer.handle_oob(asker.public, elsewhere, bytes((LOOKUP,)) + asker.sign(elsewhere))
        self.assertEqual(len(self.core.oob), 1)


class ExpiryTests(LayerCase):
    def test_keys_and_buffers_expire(self) -> None:
        self.layer.receive(
            self.peer.public, b"\x01" + ipv6_packet(self.peer_address, self.layer.address)
        )
        self.layer.send(ipv6_packet(self.layer.address, addr.address_for_key(b"\x01" * 32)))
        self.clock.advance(KEY_TIMEOUT + SWEEP_INTERVAL + 1)
        self.assertEqual(self.layer.by_key, {})
        self.assertEqual(self.layer.address_buffer, {})


class PacketTooBigTests(SynchronousTestCase):
    def test_format(self) -> None:
        source = ipaddress.IPv6Address("200::1").packed
        dest = ipaddress.IPv6Address("201::2").packed
        offending = ipv6_packet(source, dest, b"q" * 2000)
        ptb = packet_too_big(offending, 1300)
        self.assertEqual(len(ptb), 40 + 8 + 512)
        self.assertEqual(struct.unpack(">H", ptb[4:6])[0], 520)  # observed from the Go node
        self.assertEqual(ptb[8:24], dest)
        self.assertEqual(ptb[24:40], source)
        small = packet_too_big(offending[:100], 1300)
        self.assertEqual(small[48:], offending[:100])
