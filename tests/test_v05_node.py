"""Whole nodes (ygg.service.Node) in memory, linked by iosim pairs on memory clocks: the
composition of both versions' cores, the dual-stack IPv6 layer and INode's asks.

A node running both versions, peered with a v0.4-only and a v0.5-only node, reaches each
through its one TUN (a recording stand-in for the device) and asks each for NodeInfo; two
nodes running both versions link over v0.5 and carry traffic there.
"""

from __future__ import annotations

import struct

from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from ygg import address as addr
from ygg import config, features
from ygg.links.protocol import LinkInfo, LinkProtocol, LinkSpec
from ygg.links.versions import V04, V05, versions_for
from ygg.service import Node

START = 1_800_000_000.0
STEP = 0.02


class RecordingPort:
    """Stands in for the TUN device: what the node writes into it."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def write(self, packet: bytes) -> None:
        self.packets.append(bytes(packet))

    def stopListening(self) -> None:
        pass


def make_node(versions: tuple[str, ...], name: str = "") -> Node:
    cfg, _ = config.parse(
        '{"AdminListen": "none", "IfName": "none", "MulticastInterfaces": [], '
        f'"ProtocolVersions": {list(versions)!r}, "NodeInfo": {{"name": "{name}"}}}}'.replace(
            "'", '"'
        )
    )
    reactor = MemoryReactorClock()
    reactor.advance(START)
    node = Node(cfg, reactor, discovery=features.Discovery((), (), ()))
    node.startService()
    # A TUN that is up: what the node writes into it is recorded.
    node.tun.port = RecordingPort()  # type: ignore[assignment]
    node.tun.mtu = node.tun.max_mtu
    return node


def spec(node: Node, outbound: bool, remote: str) -> LinkSpec:
    return LinkSpec(
        LinkInfo("tcp", "", remote),
        f"tcp://{remote}",
        outbound,
        versions=versions_for(node.links.versions),
        dial_started=node.reactor.seconds() if outbound else None,
    )


def ipv6(source: bytes, dest: bytes, payload: bytes) -> bytes:
    return struct.pack(">IHBB", 6 << 28, len(payload), 59, 64) + source + dest + payload


class Nodes(SynchronousTestCase):
    def setUp(self) -> None:
        self.nodes: list[Node] = []
        self.pumps: list[iosim.IOPump] = []
        self.links: list[tuple[LinkProtocol, LinkProtocol]] = []

    def node(self, versions: tuple[str, ...], name: str = "") -> Node:
        node = make_node(versions, name)
        self.nodes.append(node)
        self.addCleanup(node.stopService)
        return node

    def link(self, dialer: Node, listener: Node) -> tuple[LinkProtocol, LinkProtocol]:
        # Each link its own identity (a node keeps one link per identity).
        remote = f"198.51.100.{len(self.links) + 1}:1"
        client = LinkProtocol(dialer.links, lambda _: spec(dialer, True, remote))
        server = LinkProtocol(listener.links, lambda _: spec(listener, False, remote))
        self.pumps.append(
            iosim.connect(
                server,
                iosim.makeFakeServer(server),
                client,
                iosim.makeFakeClient(client),
                greet=True,
            )
        )
        self.links.append((client, server))
        return client, server

    def advance(self, seconds: float) -> None:
        for _ in range(int(seconds / STEP)):
            for node in self.nodes:
                node.reactor.advance(STEP)
            for pump in self.pumps:
                pump.flush()

    def tun_out(self, node: Node) -> list[bytes]:
        return node.tun.port.packets  # type: ignore[union-attr]

    def ping(self, source: Node, dest: Node, payload: bytes) -> bytes:
        packet = ipv6(source.address, dest.address, payload)
        source.tun.deliver(packet)  # read from the TUN
        return packet

    def reaches(self, source: Node, dest: Node, payload: bytes, seconds: float = 4.0) -> bool:
        packet = self.ping(source, dest, payload)
        for _ in range(int(seconds)):
            self.advance(1.0)
            if packet in self.tun_out(dest):
                return True
            self.ping(source, dest, payload)  # only the latest packet waits for a key
        return False


class DualStackTests(Nodes):
    def test_one_tun_reaches_a_v04_and_a_v05_node(self) -> None:
        dual = self.node((V04, V05), "dual")
        old = self.node((V04,), "old")
        new = self.node((V05,), "new")
        self.link(dual, old)
        self.link(dual, new)
        self.advance(6.0)
        self.assertEqual([c.version for c, _ in self.links], [V04, V05])
        # INode.peers: the links of both networks.
        self.assertEqual({p.key for p in dual.peers()}, {old.public_key, new.public_key})

        self.assertTrue(self.reaches(dual, old, b"to the 0.4 node"))
        self.assertTrue(self.reaches(dual, new, b"to the 0.5 node"))
        self.assertIs(dual.ipv6.network_of(old.public_key), dual.net04)
        self.assertIs(dual.ipv6.network_of(new.public_key), dual.net05)
        # Each answers over the network it was reached on; both come out of one TUN.
        self.assertTrue(self.reaches(old, dual, b"from the 0.4 node"))
        self.assertTrue(self.reaches(new, dual, b"from the 0.5 node"))
        self.assertEqual(dual.net04.drops + dual.net05.drops, {})  # type: ignore[union-attr]
        # Nothing went over the network that does not reach the key.
        v04_sessions = {s.key for s in dual.core.sessions.sessions()}
        v05_sessions = {s.key for s in dual.core05.sessions.sessions()}  # type: ignore[union-attr]
        self.assertEqual((v04_sessions, v05_sessions), ({old.public_key}, {new.public_key}))

        # INode's asks: the network that knows the key answers.
        for other, name in ((old, "old"), (new, "new")):
            asked = dual.get_node_info(other.public_key)
            self.advance(2.0)
            self.assertEqual(self.successResultOf(asked)["name"], name)
        self_of_new = dual.remote_get_self(new.public_key)
        peers_of_old = dual.remote_get_peers(old.public_key)
        self.advance(2.0)
        self.assertEqual(
            set(self.successResultOf(self_of_new)), {"key", "routing_entries"}
        )  # 0.5's getSelf
        self.assertEqual(self.successResultOf(peers_of_old), [dual.public_key])
        drops = dual.drop_counts()
        self.assertEqual(set(drops), {"tun", "ipv6", "0.4", "0.5"})

    def test_unknown_key_asked_on_both_networks_first_answer_wins(self) -> None:
        dual = self.node((V04, V05))
        new = self.node((V05,), "new")
        self.link(dual, new)
        self.advance(6.0)
        self.assertIsNone(dual.ipv6.network_of(new.public_key))
        asked = dual.get_node_info(new.public_key)
        self.advance(2.0)
        self.assertEqual(self.successResultOf(asked)["name"], "new")
        self.advance(7.0)  # the v0.4 request times out quietly

    def test_two_dual_nodes_use_v05(self) -> None:
        a = self.node((V04, V05), "a")
        b = self.node((V04, V05), "b")
        client, server = self.link(a, b)
        self.advance(6.0)
        self.assertEqual((client.version, server.version), (V05, V05))
        self.assertTrue(self.reaches(a, b, b"over v0.5"))
        self.assertTrue(self.reaches(b, a, b"and back"))
        self.assertIs(a.ipv6.network_of(b.public_key), a.net05)
        self.assertEqual(a.core.sessions.sessions(), [])
        info = a.get_node_info(b.public_key)
        self.advance(2.0)
        self.assertEqual(self.successResultOf(info)["name"], "b")
        # A subnet address of B's reaches B too.
        inside = addr.subnet_for_key(b.public_key) + bytes(7) + b"\x01"
        packet = ipv6(a.address, inside, b"to the subnet")
        a.tun.deliver(packet)
        self.advance(2.0)
        self.assertIn(packet, self.tun_out(b))

    def test_tun_mtu_cap(self) -> None:
        self.assertEqual(self.node((V04, V05)).tun.max_mtu, 65535)
        self.assertEqual(self.node((V05,)).tun.max_mtu, 65535)
        self.assertEqual(self.node((V04,)).tun.max_mtu, 53049)

    def test_group_password_from_the_config(self) -> None:
        cfg, warnings = config.parse('{"GroupPassword": "sesame", "IfName": "none"}')
        self.assertEqual((cfg.group_password, warnings), ("sesame", []))
        node = Node(cfg, MemoryReactorClock(), discovery=features.Discovery((), (), ()))
        self.assertNotEqual(node.core05.sessions._group, b"")  # type: ignore[union-attr]
        plain, _ = config.parse('{"IfName": "none"}')
        self.assertEqual(plain.group_password, "")
