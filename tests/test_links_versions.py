"""Links of both versions without sockets: which version a link speaks, and how both sides
agree on it (ygg.links.versions), with StringTransport and in-memory pairs on task clocks."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from ygg import config, features
from ygg.errors import ConfigError
from ygg.keys import NodeKey
from ygg.links import handshake as handshake04
from ygg.links.manager import Links
from ygg.links.protocol import HANDSHAKE_TIMEOUT, LinkInfo, LinkProtocol, LinkSpec, VersionMismatch
from ygg.links.uri import LinkURIError, parse_peer_uri
from ygg.links.versions import LISTEN_WAIT, V04, V05, WAIT_MAX, dial_wait, versions_for
from ygg.network.router import Router
from ygg.service import Node
from ygg.v05 import handshake as handshake05
from ygg.v05.network import wire as wire05
from ygg.v05.network.router import Router as Router05


class Side:
    """One node: both routers (or one) and its Links on a MemoryReactorClock."""

    def __init__(self, versions: tuple[str, ...] = (V04, V05)) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)
        self.key = NodeKey.generate()
        self.router = Router(self.key, self.reactor, deliver=lambda *a: None)
        self.router05 = Router05(self.key, self.reactor, lambda *a: None)
        self.links = Links(
            self.reactor,
            self.router,
            self.key,
            jitter=lambda: 0.0,
            router05=self.router05 if V05 in versions else None,
            versions=versions,
        )
        self.links.startService()

    def protocol(
        self,
        outbound: bool,
        remote: str = "198.51.100.7:1",
        *,
        password: bytes = b"",
        priority: int = 0,
        connect_time: float = 0.0,
        speak: str | None = None,
    ) -> LinkProtocol:
        spec = LinkSpec(
            LinkInfo("tcp", "", remote),
            f"tcp://{remote}",
            outbound,
            priority,
            versions=versions_for(self.links.versions, password),
            password=password,
            speak=speak,
            dial_started=self.reactor.seconds() - connect_time if outbound else None,
        )
        return LinkProtocol(self.links, lambda transport: spec)

    def v04_peers(self) -> int:
        return len(self.router.peers)

    def v05_peers(self) -> int:
        return len(self.router05.peers)


def connected(protocol: LinkProtocol) -> StringTransport:
    transport = StringTransport()
    protocol.makeConnection(transport)
    return transport


def pair(client: LinkProtocol, server: LinkProtocol) -> iosim.IOPump:
    return iosim.connect(
        server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client), greet=True
    )


def advance(seconds: float, pump: iosim.IOPump, *sides: Side) -> None:
    """Move both clocks on in small steps, moving bytes between the steps."""
    steps = max(1, int(seconds / 0.01))
    for _ in range(steps):
        for side in sides:
            side.reactor.advance(seconds / steps)
        pump.flush()


class DialWaitTests(SynchronousTestCase):
    def test_window_from_connect_time(self) -> None:
        self.assertAlmostEqual(dial_wait(0.0), 0.05)
        self.assertAlmostEqual(dial_wait(0.1), 0.25)
        self.assertEqual(dial_wait(5.0), WAIT_MAX)
        self.assertAlmostEqual(dial_wait(-1.0), 0.05)  # a clock step back
        self.assertGreater(LISTEN_WAIT, WAIT_MAX)

    def test_password_means_v05_only(self) -> None:
        both = frozenset((V04, V05))
        self.assertEqual(versions_for(both), both)
        self.assertEqual(versions_for(both, b"pw"), {V05})
        self.assertEqual(versions_for({V04}, b"pw"), {V04})  # 0.4.7 ignores ?password=


class ListenerTests(SynchronousTestCase):
    """A listener running both versions answers in the version the dialer speaks."""

    def test_waits_for_the_dialer_then_answers_v04(self) -> None:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(False)
        transport = connected(link)
        side.reactor.advance(LISTEN_WAIT / 2)
        self.assertEqual(transport.value(), b"")
        link.dataReceived(handshake04.encode_meta(remote.public))
        # Our handshake, then the v0.4 router's first frames.
        self.assertTrue(transport.value().startswith(handshake04.encode_meta(side.key.public)))
        self.assertEqual(link.version, V04)
        self.assertEqual(side.v04_peers(), 1)
        self.assertEqual(side.v05_peers(), 0)

    def test_answers_v05_in_kind_byte_by_byte(self) -> None:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(False, priority=2)
        transport = connected(link)
        meta = handshake05.encode_meta(remote, priority=5)
        for i in range(len(meta)):  # however the bytes arrive
            link.dataReceived(meta[i : i + 1])
            if i == 5:
                self.assertEqual(transport.value(), handshake05.encode_meta(side.key, 2))
        self.assertEqual(link.version, V05)
        self.assertEqual(side.v05_peers(), 1)
        self.assertEqual(side.v04_peers(), 0)
        (peer,) = side.router05.peers[remote.public]
        self.assertEqual(peer.prio, 5)  # the higher of the two priorities, as Go

    def test_stranger_refused_on_six_bytes(self) -> None:
        side = Side()
        link = side.protocol(False)
        transport = connected(link)
        link.dataReceived(b"GET / ")
        self.assertTrue(transport.disconnecting or transport.disconnected)
        self.assertEqual(link.closing, handshake05.ERR_PREAMBLE)
        link.dataReceived(b"meta\x00\x05")  # v0.5 header with a short length
        self.assertEqual(transport.value(), b"")

    def test_bad_v05_length(self) -> None:
        side = Side()
        link = side.protocol(False)
        connected(link)
        link.dataReceived(b"meta\x00\x10")
        self.assertEqual(link.closing, handshake05.ERR_LENGTH)

    def test_silent_dialer_gets_v04_first_then_six_seconds(self) -> None:
        side = Side()
        link = side.protocol(False)
        transport = connected(link)
        side.reactor.advance(LISTEN_WAIT)
        self.assertEqual(transport.value(), handshake04.encode_meta(side.key.public))
        side.reactor.advance(HANDSHAKE_TIMEOUT - 0.1)
        self.assertIsNone(link.closing)
        side.reactor.advance(0.1)
        self.assertEqual(link.closing, "read handshake: i/o timeout")

    def test_after_answering_v04_a_v05_handshake_is_refused_as_047_does(self) -> None:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(False)
        connected(link)
        side.reactor.advance(LISTEN_WAIT)
        link.dataReceived(handshake05.encode_meta(remote))
        self.assertEqual(link.closing, "remote node is incompatible version")


class DialerTests(SynchronousTestCase):
    def test_waits_then_answers_a_v04_listener_in_kind(self) -> None:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(True, connect_time=0.1)  # waits 0.25 s
        transport = connected(link)
        side.reactor.advance(0.2)
        self.assertEqual(transport.value(), b"")
        link.dataReceived(handshake04.encode_meta(remote.public))
        self.assertTrue(transport.value().startswith(handshake04.encode_meta(side.key.public)))
        self.assertEqual(self.successResultOf(link.handshake), link)
        self.assertEqual(link.version, V04)
        self.assertEqual(side.v04_peers(), 1)

    def test_waits_then_speaks_v05(self) -> None:
        side = Side()
        link = side.protocol(True, connect_time=0.1)
        transport = connected(link)
        side.reactor.advance(0.249)
        self.assertEqual(transport.value(), b"")
        side.reactor.advance(0.002)
        self.assertEqual(transport.value(), handshake05.encode_meta(side.key))

    def test_wait_is_bounded(self) -> None:
        side = Side()
        link = side.protocol(True, connect_time=30.0)
        transport = connected(link)
        side.reactor.advance(WAIT_MAX)
        self.assertTrue(transport.value().startswith(b"meta\x00\x75"))

    def test_v04_answer_after_our_v05_asks_for_a_redial(self) -> None:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(True)
        transport = connected(link)
        side.reactor.advance(WAIT_MAX)
        link.dataReceived(handshake04.encode_meta(remote.public))
        failure = self.failureResultOf(link.handshake, VersionMismatch)
        self.assertEqual(failure.value.version, V04)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(side.links.is_connected_to(link.spec.info))  # free to dial again
        self.assertEqual(side.v04_peers() + side.v05_peers(), 0)

    def test_links_redial_in_the_remotes_version_and_remember_it(self) -> None:
        """A slow Go 0.4.7 listener: we wrote v0.5 first; the dial is made again speaking
        v0.4 at once, and later dials of that peer do the same."""
        side, remote = Side(), NodeKey.generate()
        made: list[tuple[LinkProtocol, StringTransport]] = []

        class Endpoint:
            def connect(self, factory: Any) -> Any:
                protocol = factory.buildProtocol(None)
                made.append((protocol, connected(protocol)))
                return succeed(protocol)

        uri = parse_peer_uri("tcp://198.51.100.9:7")
        info = LinkInfo("tcp", "", "198.51.100.9:7")
        dialing = side.links._connect(uri, info, Endpoint())
        side.reactor.advance(WAIT_MAX)
        first, first_transport = made[0]
        self.assertEqual(first_transport.value(), handshake05.encode_meta(side.key))
        first.dataReceived(handshake04.encode_meta(remote.public))
        first.connectionLost(Failure(ConnectionDone()))
        second, second_transport = made[1]
        # The redial writes v0.4 at once.
        self.assertEqual(second_transport.value(), handshake04.encode_meta(side.key.public))
        second.dataReceived(handshake04.encode_meta(remote.public))
        self.assertIs(self.successResultOf(dialing), second)
        self.assertEqual(side.links.known_versions[info], V04)
        self.assertEqual(side.v04_peers(), 1)

    def test_remembered_version_spoken_at_once(self) -> None:
        side = Side()
        link = side.protocol(True, speak=V04)
        transport = connected(link)
        self.assertEqual(transport.value(), handshake04.encode_meta(side.key.public))


class TwoNodesTests(SynchronousTestCase):
    def test_two_dual_nodes_agree_on_v05(self) -> None:
        a, b = Side(), Side()
        client, server = a.protocol(True), b.protocol(False)
        pump = pair(client, server)
        advance(WAIT_MAX + 0.1, pump, a, b)
        self.assertEqual((client.version, server.version), (V05, V05))
        self.assertEqual((a.v05_peers(), b.v05_peers()), (1, 1))
        self.assertEqual((a.v04_peers(), b.v04_peers()), (0, 0))
        advance(3, pump, a, b)  # the tree forms over the link; keepalives keep it up
        self.assertEqual(a.router05.get_self().root, b.router05.get_self().root)
        advance(10, pump, a, b)
        self.assertIsNone(client.closing)
        self.assertIsNone(server.closing)

    def test_v04_only_node_and_dual_node_speak_v04(self) -> None:
        for dialer, listener in (((V04,), (V04, V05)), ((V04, V05), (V04,))):
            a, b = Side(dialer), Side(listener)
            client, server = a.protocol(True), b.protocol(False)
            pump = pair(client, server)
            advance(LISTEN_WAIT, pump, a, b)
            self.assertEqual((client.version, server.version), (V04, V04), (dialer, listener))
            self.assertEqual((a.v04_peers(), b.v04_peers()), (1, 1))
            self.assertEqual((a.v05_peers(), b.v05_peers()), (0, 0))

    def test_v05_only_node_and_dual_node_speak_v05(self) -> None:
        for dialer, listener in (((V05,), (V04, V05)), ((V04, V05), (V05,))):
            a, b = Side(dialer), Side(listener)
            client, server = a.protocol(True), b.protocol(False)
            pump = pair(client, server)
            advance(LISTEN_WAIT, pump, a, b)
            self.assertEqual((client.version, server.version), (V05, V05), (dialer, listener))
            self.assertEqual((a.v05_peers(), b.v05_peers()), (1, 1))

    def test_single_version_nodes_write_at_once_as_go(self) -> None:
        side = Side((V04,))
        transport = connected(side.protocol(False))
        self.assertEqual(transport.value(), handshake04.encode_meta(side.key.public))
        side = Side((V05,))
        transport = connected(side.protocol(False, priority=3))
        self.assertEqual(transport.value(), handshake05.encode_meta(side.key, 3))

    def test_v04_only_and_v05_only_refuse_each_other_with_go_texts(self) -> None:
        a, b = Side((V04,)), Side((V05,))
        client, server = a.protocol(True), b.protocol(False)
        pump = pair(client, server)
        advance(0.1, pump, a, b)
        self.assertEqual(server.closing, handshake05.ERR_LENGTH)
        self.assertEqual(client.closing, "remote node is incompatible version")
        self.failureResultOf(client.handshake)


class PasswordTests(SynchronousTestCase):
    def test_same_password_links_other_refused_with_go_text(self) -> None:
        a, b = Side(), Side()
        client, server = a.protocol(True, password=b"sesame"), b.protocol(False, password=b"sesame")
        pump = pair(client, server)
        advance(0.1, pump, a, b)  # a password link is v0.5 only: both write at once
        self.assertEqual((client.version, server.version), (V05, V05))
        self.assertEqual((a.v05_peers(), b.v05_peers()), (1, 1))

        c, d = Side(), Side()
        client, server = c.protocol(True, password=b"wrong"), d.protocol(False, password=b"sesame")
        pump = pair(client, server)
        advance(0.1, pump, c, d)
        self.assertEqual(client.closing, handshake05.ERR_PASSWORD)
        self.assertEqual(server.closing, handshake05.ERR_PASSWORD)
        self.assertEqual(
            self.failureResultOf(client.handshake).getErrorMessage(),
            "password does not match remote side",
        )
        self.assertEqual((c.v05_peers(), d.v05_peers()), (0, 0))

    def test_no_password_against_a_password_listener(self) -> None:
        a, b = Side(), Side()
        client, server = a.protocol(True), b.protocol(False, password=b"sesame")
        pump = pair(client, server)
        advance(0.1, pump, a, b)
        self.assertEqual(server.closing, handshake05.ERR_PASSWORD)
        self.assertEqual(client.closing, handshake05.ERR_PASSWORD)
        self.failureResultOf(client.handshake)

    def test_v04_peer_refused_by_a_password_listener(self) -> None:
        side = Side()
        link = side.protocol(False, password=b"sesame")
        connected(link)
        link.dataReceived(handshake04.encode_meta(NodeKey.generate().public))
        self.assertEqual(link.closing, handshake05.ERR_LENGTH)
        self.assertEqual(side.v04_peers(), 0)

    def test_long_password_refused_with_go_text(self) -> None:
        side = Side()
        with self.assertRaises(LinkURIError) as caught:
            side.links.add_peer("tcp://198.51.100.9:7?password=" + "x" * 65)
        self.assertEqual(str(caught.exception), "invalid password supplied")
        Side((V04,)).links.add_peer("tcp://198.51.100.9:7?password=" + "x" * 65)  # as 0.4.7


class V05FrameTests(SynchronousTestCase):
    def up(self) -> tuple[Side, LinkProtocol, StringTransport, NodeKey]:
        side, remote = Side(), NodeKey.generate()
        link = side.protocol(False)
        transport = connected(link)
        link.dataReceived(handshake05.encode_meta(remote))
        return side, link, transport, remote

    def test_frames_are_uvarint_prefixed(self) -> None:
        _side, link, transport, _ = self.up()
        transport.clear()
        link.write_body(b"\x09" + b"x" * 200)
        self.assertEqual(transport.value(), wire05.put_uvarint(201) + b"\x09" + b"x" * 200)

    def test_unknown_type_closes_this_link_only(self) -> None:
        side, link, _transport, _ = self.up()
        other = side.protocol(False, "198.51.100.8:2")
        connected(other)
        other.dataReceived(handshake05.encode_meta(NodeKey.generate()))
        link.dataReceived(wire05.frame(b"\x0a"))
        self.assertEqual(link.closing, "unrecognized message type 10")
        self.assertIsNone(other.closing)

    def test_oversized_frame_length_closes(self) -> None:
        _side, link, transport, _ = self.up()
        link.dataReceived(wire05.put_uvarint(wire05.MAX_MESSAGE_SIZE + 1))
        self.assertEqual(link.closing, "oversized message")
        self.assertTrue(transport.disconnecting)

    def test_silent_v05_peer_times_out_by_the_routers_deadline(self) -> None:
        side, link, _transport, _ = self.up()
        # We sent sigReq and bloom (real frames): a 3 s read deadline, ironwood's.
        side.reactor.advance(3.01)
        self.assertEqual(link.closing, "read: i/o timeout")


class NodeTests(SynchronousTestCase):
    """ProtocolVersions in the config, and the v0.5 router in the node."""

    def node(self, text: str) -> Node:
        cfg, _ = config.parse(text)
        return Node(
            cfg,
            MemoryReactorClock(),
            discovery=features.Discovery((), (), ()),
        )

    def test_both_by_default(self) -> None:
        node = self.node('{"AdminListen": "none", "IfName": "none"}')
        self.assertEqual(node.links.versions, {V04, V05})
        self.assertIs(node.links.router05, node.router05)
        self.assertEqual(node.router05.public_key, node.public_key)
        self.assertIs(node.core05.router, node.router05)  # its traffic goes to v0.5 sessions

    def test_one_version(self) -> None:
        node = self.node('{"AdminListen": "none", "IfName": "none", "ProtocolVersions": ["0.4"]}')
        self.assertIsNone(node.router05)
        self.assertEqual(node.links.versions, {V04})
        node = self.node('{"AdminListen": "none", "IfName": "none", "ProtocolVersions": ["0.5"]}')
        self.assertEqual(node.links.versions, {V05})

    def test_bad_versions_one_line(self) -> None:
        for text in ('["0.6"]', "[]", '"0.5"'):
            with self.assertRaises(ConfigError) as caught:
                config.parse(f"{{ProtocolVersions: {text}}}")
            self.assertEqual(len(str(caught.exception).splitlines()), 1)
            self.assertTrue(str(caught.exception).startswith("ProtocolVersions"))

    def test_multicast_password(self) -> None:
        cfg, _ = config.parse('{MulticastInterfaces: [{Regex: ".*", Password: "sesame"}]}')
        self.assertEqual(cfg.multicast_interfaces[0].password, "sesame")
        self.assertIn('"Password": "sesame"', config.to_json(cfg))
        self.assertNotIn("Password", config.to_json(config.parse("{}")[0]))  # as 0.4.7 writes
        with self.assertRaises(ConfigError):
            config.parse('{MulticastInterfaces: [{Regex: ".*", Password: "' + "x" * 65 + '"}]}')


class V05KeyChecksTests(SynchronousTestCase):
    def test_pinned_key_and_allowed_public_keys(self) -> None:
        side, remote = Side(), NodeKey.generate()
        spec = LinkSpec(
            LinkInfo("tcp", "", "198.51.100.7:1"),
            "tcp://198.51.100.7:1",
            True,
            pinned=frozenset((b"\x33" * 32,)),
            speak=V05,
        )
        link = LinkProtocol(side.links, lambda transport: spec)
        connected(link)
        link.dataReceived(handshake05.encode_meta(remote))
        self.assertEqual(link.closing, "node public key that does not match pinned keys")
        self.failureResultOf(link.handshake)

        side.links.allowed_keys = frozenset((b"\x33" * 32,))
        link = side.protocol(False, "198.51.100.8:1")
        connected(link)
        link.dataReceived(handshake05.encode_meta(remote))
        self.assertEqual(
            link.closing, f'node public key "{remote.public.hex()}" is not in AllowedPublicKeys'
        )
        # Multicast's listener is "local" in v0.5: AllowedPublicKeys does not apply there.
        local = LinkSpec(LinkInfo("tls", "veth0", "fe80::2"), "tls://x", False, local=True)
        link = LinkProtocol(side.links, lambda transport: local)
        connected(link)
        link.dataReceived(handshake05.encode_meta(remote))
        self.assertIsNone(link.closing)
        self.assertEqual(side.v05_peers(), 1)
