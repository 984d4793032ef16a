"""The IPv6 layer over v0.4 without a TUN: address checks, key lookups (v0.4's signed
out-of-band lookup, ygg.ipv6.networks.Network04), buffering, Packet Too Big.
tests/test_ipv6_dual.py has the layer over two networks."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg import address as addr
from ygg.ipv6.icmp import checksum, packet_too_big
from ygg.ipv6.layer import KEY_TIMEOUT, SWEEP_INTERVAL, IPv6Layer
from ygg.ipv6.networks import LOOKUP, RESPONSE, Network04
from ygg.keys import NodeKey


class FakeCore:
    """A v0.4 core that records what is sent through it; ``verify`` is a real check."""

    ipv6_mtu = 53049

    def __init__(self, key: NodeKey) -> None:
        self.key = key
        self.sent: list[tuple[bytes, bytes]] = []
        self.oob: list[tuple[bytes, bytes]] = []

    def send(self, dest: bytes, message: bytes) -> None:
        self.sent.append((dest, message))

    def send_oob(self, dest: bytes, data: bytes) -> None:
        self.oob.append((dest, data))

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        from ygg.keys import verify

        return verify(key, message, signature)


class FakeTun(list):
    """The packets written into the TUN; up, with the smallest MTU."""

    mtu = 1280

    def write(self, packet: bytes) -> None:
        self.append(packet)


class Composed:
    """A layer over one v0.4 network around ``core``, the loop closed as the node does."""

    def __init__(self, core: FakeCore, clock: Clock, tun: FakeTun | None = None) -> None:
        self.network = Network04(core, core.key, found=self.found)  # type: ignore[arg-type]
        self.layer = IPv6Layer(
            core.key, clock, [self.network], output=FakeTun() if tun is None else tun
        )

    def found(self, key: bytes) -> None:
        self.layer.learn(key, self.network)


def layer_for(core: FakeCore, clock: Clock, tun: FakeTun | None = None) -> IPv6Layer:
    return Composed(core, clock, tun).layer


def ipv6_packet(
    source: bytes, dest: bytes, payload: bytes = b"x" * 8, next_header: int = 59
) -> bytes:
    return struct.pack(">IHBB", 6 << 28, len(payload), next_header, 64) + source + dest + payload


class LayerCase(SynchronousTestCase):
    """A layer over one network: v0.4's here; tests/test_ipv6_dual.py runs some of these
    tests again over v0.5's (``make_network`` and ``learn_peer`` are what differ)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.me = NodeKey.generate()
        self.tun = FakeTun()
        self.core, self.network = self.make_network()
        self.layer = IPv6Layer(self.me, self.clock, [self.network], output=self.tun)
        self.layer.start()
        self.peer = NodeKey.generate()
        self.peer_address = addr.address_for_key(self.peer.public)
        self.peer_subnet = addr.subnet_for_key(self.peer.public)

    def make_network(self) -> tuple[Any, Any]:
        core = FakeCore(self.me)
        return core, Network04(core, self.me, found=self.found)  # type: ignore[arg-type]

    def found(self, key: bytes) -> None:
        self.layer.learn(key, self.network)

    def learn_peer(self) -> None:
        """The peer's key becomes known (here by a lookup response)."""
        self.network.handle_oob(
            self.peer.public, self.me.public, bytes((RESPONSE,)) + self.peer.sign(self.me.public)
        )

    def receive(self, source: bytes, message: bytes) -> None:
        self.layer.receive(self.network, source, message)

    def drops(self) -> dict[str, int]:
        """The layer's drops and the network's together."""
        return dict(self.layer.drops + self.network.drops)


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
        self.network.handle_oob(self.peer.public, self.me.public, response)
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
        self.network.handle_oob(
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
        layer = layer_for(core, Clock())
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
        self.receive(self.peer.public, b"\x01" + packet)
        self.assertEqual(self.tun, [packet])
        self.assertIn(self.peer.public, self.layer.by_key)

    def test_spoofed_and_stray(self) -> None:
        other = addr.address_for_key(NodeKey.generate().public)
        self.receive(self.peer.public, b"\x01" + ipv6_packet(other, self.layer.address))
        self.receive(self.peer.public, b"\x01" + ipv6_packet(self.peer_address, other))
        self.receive(self.peer.public, b"\x01hello")
        self.assertEqual(self.tun, [])
        self.assertEqual(
            dict(self.network.drops), {"spoofed-source": 1, "not-for-us": 1, "not-ipv6": 1}
        )
        self.assertEqual(dict(self.layer.drops), {})

    def test_too_big_gets_packet_too_big(self) -> None:
        big = ipv6_packet(self.peer_address, self.layer.address, b"z" * 2000)
        self.receive(self.peer.public, b"\x01" + big)
        self.assertEqual(self.tun, [])
        # The PTB goes back to the sender's address (a lookup first: key not learnt yet).
        self.network.handle_oob(
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
        self.network.handle_oob(asker.public, partial, bytes((LOOKUP,)) + asker.sign(partial))
        ((dest, data),) = self.core.oob
        self.assertEqual(dest, asker.public)
        self.assertEqual(data, bytes((RESPONSE,)) + self.me.sign(asker.public))
        # A bad signature, a wrong size, or someone else's subnet: no answer.
        self.network.handle_oob(asker.public, partial, bytes((LOOKUP,)) + bytes(64))
        self.network.handle_oob(asker.public, partial, b"\x01\x02")
        elsewhere = addr.key_for_address(self.peer_address)[0]
        self.network.handle_oob(asker.public, elsewhere, bytes((LOOKUP,)) + asker.sign(elsewhere))
        self.assertEqual(len(self.core.oob), 1)


class ExpiryTests(LayerCase):
    def test_keys_and_buffers_expire(self) -> None:
        self.receive(self.peer.public, b"\x01" + ipv6_packet(self.peer_address, self.layer.address))
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


def declaring(packet: bytes, payload_length: int) -> bytes:
    """``packet`` with its payload-length field set to ``payload_length``."""
    return packet[:4] + struct.pack(">H", payload_length) + packet[6:]


# Hop-by-Hop headers (next: UDP): one holding a Jumbo Payload option (type 0xC2) of 70,000
# bytes, and one holding only padding (PadN).
JUMBO_HOP_BY_HOP = bytes((17, 0, 0xC2, 4)) + struct.pack(">I", 70000)
PADDED_HOP_BY_HOP = bytes((17, 0, 1, 4, 0, 0, 0, 0))


class PayloadLengthTests(LayerCase):
    """A payload-length field that disagrees with the packet's real length, both ways: what
    Linux's IPv6 input does with such a packet written into a TUN, the layer does first
    (ygg.ipv6.length; tests/test_ipv6_kernel.py holds it to the running kernel)."""

    def setUp(self) -> None:
        super().setUp()
        self.learn_peer()  # so an outbound packet goes straight to the core

    def outbound(self, payload: bytes, next_header: int = 17) -> bytes:
        return ipv6_packet(self.layer.address, self.peer_address, payload, next_header)

    def inbound(self, payload: bytes, next_header: int = 17) -> bytes:
        return ipv6_packet(self.peer_address, self.layer.address, payload, next_header)

    def both_ways(self, outbound: bytes, inbound: bytes) -> None:
        self.layer.send(outbound)
        self.receive(self.peer.public, b"\x01" + inbound)

    def sent(self) -> list[bytes]:
        return [message[1:] for _, message in self.core.sent]

    def test_truncated_dropped(self) -> None:
        self.both_ways(  # 60 bytes saying 65,575; 61 saying 62
            declaring(self.outbound(b"u" * 20), 65535), declaring(self.inbound(b"u" * 21), 22)
        )
        self.assertEqual((self.sent(), self.tun), ([], []))
        self.assertEqual(dict(self.layer.drops), {"truncated": 1})
        self.assertEqual(dict(self.network.drops), {"truncated": 1})

    def test_trailing_bytes_cut_off(self) -> None:
        packet = declaring(self.outbound(b"u" * 20), 8)
        self.both_ways(packet, declaring(self.inbound(b"v" * 20), 8))
        self.assertEqual(self.sent(), [packet[:48]])
        self.assertEqual(self.tun, [declaring(self.inbound(b"v" * 8), 8)])
        self.assertEqual((self.layer.trimmed, self.drops()), (2, {}))

    def test_zero_length_with_data(self) -> None:
        """0 declared, UDP next: the kernel keeps the bare header, and so does the layer."""
        self.both_ways(declaring(self.outbound(b"u" * 20), 0), declaring(self.inbound(b"u"), 0))
        self.assertEqual(self.sent(), [declaring(self.outbound(b""), 0)])
        self.assertEqual(self.tun, [declaring(self.inbound(b""), 0)])
        self.assertEqual(self.layer.trimmed, 2)

    def test_jumbograms_dropped(self) -> None:
        for payload in (
            JUMBO_HOP_BY_HOP + b"u" * 32,  # says 70,000 bytes, has 40
            JUMBO_HOP_BY_HOP[:4] + struct.pack(">I", 8 + 32) + b"u" * 32,  # a jumbo of 40
            bytes((17, 1)) + bytes(6) + b"u" * 2,  # its header says 16 bytes; 10 there
            b"",  # no Hop-by-Hop header at all
        ):
            self.both_ways(
                declaring(self.outbound(payload, next_header=0), 0),
                declaring(self.inbound(payload, next_header=0), 0),
            )
        self.assertEqual((self.sent(), self.tun), ([], []))
        self.assertEqual(self.drops(), {"jumbogram": 4, "truncated": 4})

    def test_zero_length_without_jumbo_option_taken_whole(self) -> None:
        """Linux takes it whole (RFC 2675 says to refuse it): so does the layer."""
        packet = declaring(self.outbound(PADDED_HOP_BY_HOP + b"u" * 13, next_header=0), 0)
        self.layer.send(packet)
        self.assertEqual(self.sent(), [packet])

    def test_exact_lengths_untouched(self) -> None:
        packets = [self.outbound(b""), self.outbound(PADDED_HOP_BY_HOP + b"u" * 8, 0)]
        for packet in packets:
            self.layer.send(packet)
        self.assertEqual(self.sent(), packets)
        self.assertEqual((self.drops(), self.layer.trimmed), ({}, 0))
