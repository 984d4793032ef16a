"""The IPv6 layer over two networks (v0.4 and v0.5 at once), and over v0.5 alone.

Which network a destination's packets go over: the first whose lookup finds its key; a
packet is never sent over both; inbound traffic teaches the network, and moves a key only
when its own network has been quiet; keys are forgotten after KEY_TIMEOUT and looked up
again everywhere; a packet too big for its network gets Packet Too Big from the TUN side.
Malformed IPv6 over v0.5 is dropped as over v0.4 (tests/test_ipv6.py's cases, again).
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests import test_ipv6 as v04
from tests.test_ipv6 import FakeTun, ipv6_packet
from ygg import address as addr
from ygg.ipv6.icmp import checksum
from ygg.ipv6.layer import (
    KEY_TIMEOUT,
    MAX_RETRYING,
    SWEEP_INTERVAL,
    SWITCH_QUIET,
    IPv6Layer,
)
from ygg.ipv6.networks import Network05
from ygg.keys import NodeKey


class FakeNetwork:
    """Records the messages sent and the partial keys looked up."""

    def __init__(self, name: str, mtu: int) -> None:
        self.name = name
        self.mtu = mtu
        self.drops: Counter[str] = Counter()
        self.sent: list[tuple[bytes, bytes]] = []
        self.lookups: list[bytes] = []

    def send(self, dest: bytes, message: bytes) -> None:
        self.sent.append((dest, message))

    def lookup(self, partial: bytes) -> None:
        self.lookups.append(partial)


class BigTun(FakeTun):
    mtu = 65535


class DualCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.me = NodeKey.generate()
        self.v04 = FakeNetwork("0.4", 53049)
        self.v05 = FakeNetwork("0.5", 65535)
        self.tun = BigTun()
        self.layer = IPv6Layer(self.me, self.clock, [self.v04, self.v05], output=self.tun)
        self.layer.start()
        self.addCleanup(self.layer.stop)
        self.peer = NodeKey.generate()
        self.peer_address = addr.address_for_key(self.peer.public)

    def out(self, payload: bytes = b"x" * 8) -> bytes:
        packet = ipv6_packet(self.layer.address, self.peer_address, payload)
        self.layer.send(packet)
        return packet

    def inbound(self, network: FakeNetwork, payload: bytes = b"y" * 8) -> bytes:
        packet = ipv6_packet(self.peer_address, self.layer.address, payload)
        self.layer.receive(network, self.peer.public, b"\x01" + packet)  # type: ignore[arg-type]
        return packet


class ChoiceTests(DualCase):
    def test_every_network_asked_first_answer_wins(self) -> None:
        packet = self.out()
        partial = addr.key_for_address(self.peer_address)[0]
        self.assertEqual((self.v04.lookups, self.v05.lookups), ([partial], [partial]))
        self.layer.learn(self.peer.public, self.v05)  # type: ignore[arg-type]
        self.assertEqual(self.v05.sent, [(self.peer.public, b"\x01" + packet)])
        self.layer.learn(self.peer.public, self.v04)  # type: ignore[arg-type]  # too late
        second = self.out(b"second!!")
        self.assertEqual(self.v05.sent[1:], [(self.peer.public, b"\x01" + second)])
        self.assertEqual(self.v04.sent, [])  # never both
        self.assertIs(self.layer.network_of(self.peer.public), self.v05)
        self.assertEqual(len(self.v04.lookups), 1)  # known now: no more lookups

    def test_subnet_found_on_v04(self) -> None:
        subnet = addr.subnet_for_key(self.peer.public)
        packet = ipv6_packet(self.layer.address, subnet + bytes(7) + b"\x05")
        self.layer.send(packet)
        partial = addr.key_for_subnet(subnet)[0]
        self.assertEqual((self.v04.lookups, self.v05.lookups), ([partial], [partial]))
        self.layer.learn(self.peer.public, self.v04)  # type: ignore[arg-type]
        self.assertEqual(self.v04.sent, [(self.peer.public, b"\x01" + packet)])
        self.assertEqual(self.v05.sent, [])

    def test_inbound_teaches_the_network(self) -> None:
        packet = self.inbound(self.v04)
        self.assertEqual(self.tun, [packet])
        self.assertIs(self.layer.network_of(self.peer.public), self.v04)
        self.out()
        self.assertEqual((len(self.v04.sent), self.v05.sent), (1, []))
        self.assertEqual(self.v04.lookups + self.v05.lookups, [])

    def test_moves_only_when_its_network_is_quiet(self) -> None:
        self.inbound(self.v05)
        self.clock.advance(SWITCH_QUIET / 2)
        self.inbound(self.v04)  # taken, but the key stays on v0.5: it was heard there lately
        self.assertEqual(len(self.tun), 2)
        self.assertIs(self.layer.network_of(self.peer.public), self.v05)
        self.clock.advance(SWITCH_QUIET)
        self.inbound(self.v04)  # v0.5 quiet for longer than SWITCH_QUIET: v0.4 now
        self.assertIs(self.layer.network_of(self.peer.public), self.v04)
        self.clock.advance(1)
        self.inbound(self.v05)
        self.assertIs(self.layer.network_of(self.peer.public), self.v04)

    def test_found_by_lookup_follows_the_remote_at_first(self) -> None:
        """A key found by a lookup was never heard from: the first traffic that comes
        from it decides (the remote's own choice), and then it stays."""
        self.out()
        self.layer.learn(self.peer.public, self.v05)  # type: ignore[arg-type]
        self.inbound(self.v04)
        self.assertIs(self.layer.network_of(self.peer.public), self.v04)
        self.inbound(self.v05)
        self.assertIs(self.layer.network_of(self.peer.public), self.v04)

    def test_forgotten_then_looked_up_everywhere(self) -> None:
        self.inbound(self.v05)
        for _ in range(3):  # use keeps it
            self.clock.advance(KEY_TIMEOUT / 2)
            self.out()
        self.assertIs(self.layer.network_of(self.peer.public), self.v05)
        self.clock.advance(KEY_TIMEOUT + SWEEP_INTERVAL)
        self.assertIsNone(self.layer.network_of(self.peer.public))
        self.out()
        self.assertEqual((len(self.v04.lookups), len(self.v05.lookups)), (1, 1))


class RetryTests(DualCase):
    def test_waiting_packet_asks_again_1_3_and_7_s_later(self) -> None:
        """A lookup sent before the network settles is lost: a packet that waits asks
        again three times, then waits for the next packet (or its two minutes)."""
        self.out()
        counts = []
        for step in (0.9, 0.2, 1.9, 0.2, 3.9, 0.2, 20.0):
            self.clock.advance(step)
            counts.append(len(self.v05.lookups))
        self.assertEqual(counts, [1, 2, 2, 3, 3, 4, 4])
        self.assertEqual(self.v04.lookups, self.v05.lookups)

    def test_no_retry_once_found(self) -> None:
        self.out()
        self.layer.learn(self.peer.public, self.v05)  # type: ignore[arg-type]
        self.clock.advance(10)
        self.assertEqual(len(self.v05.lookups), 1)

    def test_retries_are_bounded(self) -> None:
        for i in range(MAX_RETRYING + 10):
            self.layer.send(ipv6_packet(self.layer.address, b"\x02" + i.to_bytes(15, "big")))
        self.assertEqual(len(self.layer._retries), MAX_RETRYING)

    def test_stop_cancels_the_timers(self) -> None:
        self.out()
        self.layer.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class MTUTests(DualCase):
    def test_too_big_for_its_network(self) -> None:
        """The TUN takes 65535 (v0.5's cap): a bigger packet than v0.4 carries, for a key
        on v0.4, gets Packet Too Big from the destination, quoting it, with 53049."""
        self.inbound(self.v04)
        big = self.out(b"b" * 60000)
        self.assertEqual(self.v04.sent, [])
        self.assertEqual(dict(self.v04.drops), {"too-big-for-network": 1})
        ptb = self.tun[-1]
        self.assertEqual(ptb[8:24], self.peer_address)  # from the destination
        self.assertEqual(ptb[24:40], self.layer.address)  # to the sender
        self.assertEqual((ptb[40], struct.unpack(">I", ptb[44:48])[0]), (2, 53049))
        self.assertEqual(ptb[48:], big[:512])
        self.assertEqual(checksum(ptb[8:24], ptb[24:40], ptb[40:]), 0)
        fits = self.out(b"f" * (53049 - 40))
        self.assertEqual(self.v04.sent, [(self.peer.public, b"\x01" + fits)])

    def test_v05_carries_up_to_65535(self) -> None:
        self.inbound(self.v05)
        big = self.out(b"b" * (65535 - 40))
        self.assertEqual(self.v05.sent, [(self.peer.public, b"\x01" + big)])

    def test_unsendable_counted(self) -> None:
        def refuse(dest: bytes, message: bytes) -> None:
            raise ValueError("closed")

        self.inbound(self.v05)
        self.v05.send = refuse  # type: ignore[method-assign]
        self.out()
        self.assertEqual(dict(self.v05.drops), {"unsendable": 1})


class FakeCore05:
    """A v0.5 core as Network05 uses it."""

    ipv6_mtu = 65535

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.lookups: list[bytes] = []

    def send(self, dest: bytes, message: bytes) -> None:
        self.sent.append((dest, message))

    def lookup(self, partial: bytes) -> None:
        self.lookups.append(partial)


class Over05:
    """tests/test_ipv6.py's layer, over a v0.5 network instead."""

    me: NodeKey
    peer: NodeKey
    layer: IPv6Layer
    network: Any

    def make_network(self) -> tuple[Any, Any]:
        core = FakeCore05()
        return core, Network05(core)  # type: ignore[arg-type]

    def learn_peer(self) -> None:
        self.layer.learn(self.peer.public, self.network)


class PayloadLengthTests05(Over05, v04.PayloadLengthTests):
    """Payload lengths judged as Linux judges them, over v0.5."""


class InboundTests05(Over05, v04.LayerCase):
    def test_lookup_is_the_routers(self) -> None:
        self.layer.send(ipv6_packet(self.layer.address, self.peer_address))
        self.assertEqual(self.core.lookups, [addr.key_for_address(self.peer_address)[0]])

    def test_spoofed_stray_and_not_ipv6(self) -> None:
        other = addr.address_for_key(NodeKey.generate().public)
        self.receive(self.peer.public, b"\x01" + ipv6_packet(other, self.layer.address))
        self.receive(self.peer.public, b"\x01" + ipv6_packet(self.peer_address, other))
        self.receive(self.peer.public, b"\x01hello")
        self.receive(self.peer.public, b"\x01" + b"\x45" + bytes(39))
        self.assertEqual(self.tun, [])
        self.assertEqual(
            dict(self.network.drops), {"spoofed-source": 1, "not-for-us": 1, "not-ipv6": 2}
        )

    def test_too_big_for_the_tun(self) -> None:
        self.learn_peer()
        big = ipv6_packet(self.peer_address, self.layer.address, b"z" * 2000)
        self.receive(self.peer.public, b"\x01" + big)
        ((dest, message),) = self.core.sent  # Packet Too Big, back over v0.5
        self.assertEqual(dest, self.peer.public)
        self.assertEqual(struct.unpack(">I", message[1 + 44 : 1 + 48])[0], 1280)
        self.assertEqual(dict(self.network.drops), {"too-big": 1})
