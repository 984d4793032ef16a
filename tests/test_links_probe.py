"""Handshake probes (ygg.links.probe, INode.probe_peer): deterministic with a task clock
and StringTransports behind a fake endpoint, against ygg's own link protocol in memory,
and once over real loopback sockets (tcp and tls) against a node's listener."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from tests.test_links_support import RealReactorTestCase
from tests.test_links_versions import Side
from ygg import config, features, service
from ygg.errors import YggError
from ygg.interfaces import ProbeError
from ygg.keys import NodeKey
from ygg.links import endpoints, probe
from ygg.links import handshake as handshake04
from ygg.links.endpoints import DialError, ResolvedAddress
from ygg.links.uri import parse_peer_uri
from ygg.links.versions import V04, V05
from ygg.service import Node
from ygg.v05 import handshake as handshake05

TIMEOUT = 5.0


class FakeEndpoint:
    """Records the dial; the test completes it with ``Probes.connect``."""

    def __init__(self, probes: Probes, uri: Any, resolved: Any) -> None:
        self.probes, self.uri, self.resolved = probes, uri, resolved

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred(lambda d: self.probes.cancelled.append(self.uri.text))
        self.probes.dials.append((self, factory, d))
        return d


class Probes(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.ours = NodeKey.generate()
        self.theirs = NodeKey.generate()
        self.dials: list[tuple[FakeEndpoint, Any, Deferred[Any]]] = []
        self.cancelled: list[str] = []
        self.resolving: dict[str, Deferred[ResolvedAddress]] = {}

        def client_endpoint(reactor: Any, uri: Any, key: Any, **kwargs: Any) -> FakeEndpoint:
            self.assertIs(key, self.ours)
            return FakeEndpoint(self, uri, kwargs.get("resolved"))

        def resolve_address(reactor: Any, uri: Any, **kwargs: Any) -> Deferred[ResolvedAddress]:
            if uri.host.startswith("192.0.2."):
                return succeed(ResolvedAddress(uri.host, uri.port))
            d: Deferred[ResolvedAddress] = Deferred(lambda d: self.cancelled.append(uri.host))
            self.resolving[uri.host] = d
            return d

        self.patch(endpoints, "client_endpoint", client_endpoint)
        self.patch(endpoints, "resolve_address", resolve_address)

    def probe(self, uri: str, version: str) -> Deferred[float]:
        return probe.probe_handshake(
            self.clock, parse_peer_uri(uri), version, self.ours, timeout=TIMEOUT
        )

    def connect(self) -> tuple[Any, StringTransport]:
        """The last dial connects: its protocol on a StringTransport."""
        _, factory, d = self.dials[-1]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        d.callback(protocol)
        return protocol, transport

    def refused(self, d: Deferred[float], kind: str) -> str:
        failure = self.failureResultOf(d, ProbeError)
        self.assertEqual(failure.value.kind, kind, str(failure.value))
        return str(failure.value)


class HandshakeTests(Probes):
    def test_v04_timed_to_the_remote_handshake(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V04)
        self.clock.advance(0.010)
        protocol, transport = self.connect()
        self.assertEqual(transport.value(), handshake04.encode_meta(self.ours.public))
        self.clock.advance(0.020)
        protocol.dataReceived(handshake04.encode_meta(self.theirs.public) + b"\0\x05frame")
        self.assertAlmostEqual(self.successResultOf(d), 0.030)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_v05_signed_for_the_password_read_in_pieces(self) -> None:
        d = self.probe("tls://192.0.2.1:1?password=sesame&priority=3", V05)
        protocol, transport = self.connect()
        ours = handshake05.decode_meta(transport.value())
        self.assertEqual(handshake05.check_meta(ours, b"sesame"), self.ours.public)
        self.assertEqual(ours.priority, 3)
        theirs = handshake05.encode_meta(self.theirs, 0, b"sesame")
        for i, byte in enumerate(theirs):
            self.clock.advance(0.001)
            protocol.dataReceived(bytes((byte,)))
            if i < len(theirs) - 1:
                self.assertNoResult(d)
        self.assertAlmostEqual(self.successResultOf(d), 0.001 * len(theirs))

    def test_the_other_version_is_refused(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V05)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake04.encode_meta(self.theirs.public))
        self.assertEqual(self.refused(d, ProbeError.VERSION), "remote speaks v0.4, not v0.5")
        d = self.probe("tcp://192.0.2.1:1", V04)
        protocol, transport = self.connect()
        protocol.dataReceived(handshake05.encode_meta(self.theirs)[:6])  # the header tells
        self.assertEqual(self.refused(d, ProbeError.VERSION), "remote speaks v0.5, not v0.4")
        self.assertTrue(transport.disconnecting)

    def test_a_v05_handshake_of_another_minor_version(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V05)
        protocol, _ = self.connect()
        meta = handshake05.Metadata.signed(self.theirs)
        other = handshake05.Metadata(meta.public_key, meta.signature, 0, 0, 6)
        protocol.dataReceived(other.encode())
        text = self.refused(d, ProbeError.VERSION)
        self.assertEqual(text, "remote node incompatible version (local 0.5, remote 0.6)")

    def test_a_wrong_key_password_or_peer(self) -> None:
        pinned = NodeKey.generate().public.hex()
        d = self.probe(f"tcp://192.0.2.1:1?key={pinned}", V05)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake05.encode_meta(self.theirs))
        self.assertIn("does not match pinned keys", self.refused(d, ProbeError.KEY))

        d = self.probe("tcp://192.0.2.1:1", V04)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake04.encode_meta(self.ours.public))
        self.assertEqual(self.refused(d, ProbeError.KEY), "the remote is this node")

        d = self.probe("tcp://192.0.2.1:1?password=right", V05)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake05.encode_meta(self.theirs, 0, b"wrong"))
        self.assertEqual(self.refused(d, ProbeError.HANDSHAKE), handshake05.ERR_PASSWORD)

        d = self.probe("tcp://192.0.2.1:1", V05)
        protocol, _ = self.connect()
        protocol.dataReceived(b"HTTP/1.1 400 Bad Request\r\n")
        self.assertEqual(self.refused(d, ProbeError.HANDSHAKE), handshake05.ERR_PREAMBLE)

    def test_closed_before_its_handshake(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V05)
        protocol, _ = self.connect()
        protocol.dataReceived(b"meta")
        protocol.connectionLost(None)
        text = self.refused(d, ProbeError.HANDSHAKE)
        self.assertEqual(text, "remote closed the connection before its handshake")


class DialTests(Probes):
    def test_unreachable(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V04)
        self.dials[-1][2].errback(DialError("dial tcp 192.0.2.1:1: connect: connection refused"))
        text = self.refused(d, ProbeError.UNREACHABLE)
        self.assertEqual(text, "dial tcp 192.0.2.1:1: connect: connection refused")

    def test_timeouts_close_what_is_open(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V05)
        self.clock.advance(TIMEOUT)
        self.assertEqual(self.refused(d, ProbeError.TIMEOUT), "no v0.5 handshake within 5 s")
        self.assertEqual(self.cancelled, ["tcp://192.0.2.1:1"])
        d = self.probe("tcp://192.0.2.1:1", V05)
        _, transport = self.connect()
        self.clock.advance(TIMEOUT)
        self.refused(d, ProbeError.TIMEOUT)
        self.assertTrue(transport.disconnecting)

    def test_resolution_is_not_timed_but_counts_against_the_timeout(self) -> None:
        d = self.probe("tls://peer.example:443", V05)
        self.assertEqual(self.dials, [])
        self.clock.advance(2.0)
        self.resolving.pop("peer.example").callback(ResolvedAddress("198.51.100.1", 443))
        self.assertEqual(self.dials[-1][0].resolved, ResolvedAddress("198.51.100.1", 443))
        self.clock.advance(0.040)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake05.encode_meta(self.theirs))
        self.assertAlmostEqual(self.successResultOf(d), 0.040)

        d = self.probe("tls://slow.example:443", V05)
        self.clock.advance(TIMEOUT)
        self.refused(d, ProbeError.TIMEOUT)
        self.assertIn("slow.example", self.cancelled)

        d = self.probe("tls://nx.example:443", V05)
        self.resolving.pop("nx.example").errback(DialError("lookup nx.example: no such host"))
        self.assertIn("no such host", self.refused(d, ProbeError.UNREACHABLE))

    def test_unix_is_not_resolved(self) -> None:
        d = self.probe("unix:///run/peer.sock", V04)
        self.assertIsNone(self.dials[-1][0].resolved)
        protocol, _ = self.connect()
        protocol.dataReceived(handshake04.encode_meta(self.theirs.public))
        self.assertEqual(self.successResultOf(d), 0.0)

    def test_cancel(self) -> None:
        d = self.probe("tcp://192.0.2.1:1", V05)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.cancelled, ["tcp://192.0.2.1:1"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_what_v04_cannot_be(self) -> None:
        for uri in ("tcp://192.0.2.1:1?password=x", "quic://192.0.2.1:1"):
            text = self.refused(self.probe(uri, V04), ProbeError.VERSION)
            self.assertIn("the link is v0.5", text)
        self.assertEqual(self.dials, [])
        with self.assertRaises(ValueError):
            self.probe("tcp://192.0.2.1:1", "0.6")


class AgainstOurLinksTests(SynchronousTestCase):
    """A probe against ygg's own listener (LinkProtocol) in memory: a node running both
    versions answers the probe in the version it speaks; one running one refuses the
    other, as Go does; no link joins a router."""

    def run_probe(self, listener: Side, version: str) -> Any:
        key = NodeKey.generate()
        clock = listener.reactor
        made: list[Any] = []

        class Endpoint:
            def connect(self, factory: Any) -> Deferred[Any]:
                made.append(factory.buildProtocol(None))
                return succeed(made[-1])

        self.patch(endpoints, "client_endpoint", lambda *a, **k: Endpoint())
        d = probe.probe_handshake(clock, parse_peer_uri("unix:///x"), version, key, timeout=TIMEOUT)
        server = listener.protocol(False)
        pump = iosim.connect(
            server, iosim.makeFakeServer(server), made[0], iosim.makeFakeClient(made[0])
        )
        for _ in range(300):
            clock.advance(0.01)
            pump.flush()
        return d, server

    def test_a_dual_listener_answers_either_version(self) -> None:
        for version in (V04, V05):
            side = Side()
            d, server = self.run_probe(side, version)
            self.assertIsInstance(self.successResultOf(d), float)
            self.assertEqual(server.version, version)
        self.assertEqual((side.v04_peers(), side.v05_peers()), (0, 0))  # the link is gone

    def test_a_single_version_listener_refuses_the_other(self) -> None:
        for listener, asked in (((V04,), V05), ((V05,), V04)):
            d, _ = self.run_probe(Side(listener), asked)
            failure = self.failureResultOf(d, ProbeError)
            self.assertEqual(failure.value.kind, ProbeError.VERSION)


class NodeProbeTests(SynchronousTestCase):
    """INode.probe_peer: the node's key and TLS certificate, the URI parsed."""

    def node(self, versions: str) -> Node:
        text = f'{{"AdminListen": "none", "IfName": "none", "ProtocolVersions": {versions}}}'
        cfg, _ = config.parse(text)
        return Node(cfg, MemoryReactorClock(), discovery=features.Discovery((), (), ()))

    def test_the_node_probes_with_its_key(self) -> None:
        seen: list[Any] = []

        def fake(*args: Any, **kwargs: Any) -> Deferred[float]:
            seen.append((args, kwargs))
            return succeed(0.5)

        self.patch(service, "probe_handshake", fake)
        node = self.node('["0.4"]')
        self.assertEqual(node.versions(), (V04,))
        # A v0.4 node may still ask whether a peer serves v0.5.
        self.assertEqual(self.successResultOf(node.probe_peer("tcp://192.0.2.1:1", V05)), 0.5)
        ((args, kwargs),) = seen
        self.assertEqual((args[1].text, args[2]), ("tcp://192.0.2.1:1", V05))
        self.assertIs(args[3], node.node_key)
        self.assertEqual(kwargs["timeout"], 6.0)
        self.assertIsNone(kwargs["certificate"])  # tcp: no certificate, no pyOpenSSL
        node.probe_peer("tls://192.0.2.1:1", V04)
        self.assertIs(seen[-1][1]["certificate"], node.links.certificate)
        with self.assertRaises(YggError):
            node.probe_peer("http://192.0.2.1:1", V05)
        self.assertEqual(self.node('["0.4", "0.5"]').versions(), (V04, V05))
        self.assertEqual(self.node('["0.5"]').versions(), (V05,))


class LoopbackTests(RealReactorTestCase):
    """Real sockets: a node's tcp and tls listeners (both versions) on 127.0.0.1."""

    async def test_tcp_and_tls_both_versions(self) -> None:
        from ygg.links.manager import Links
        from ygg.network.router import Router
        from ygg.v05.network.router import Router as Router05

        key = NodeKey.generate()
        router = Router(key, reactor, deliver=lambda *a: None)
        router05 = Router05(key, reactor, lambda *a: None)
        links = Links(
            reactor,
            router,
            key,
            listen=("tcp://127.0.0.1:0", "tls://127.0.0.1:0"),
            router05=router05,
        )
        links.startService()
        self.addCleanup(router05.close)
        self.addCleanup(router.close)
        self.addCleanup(links.stopService)
        while not all(listener.port for listener in links.listeners):
            await self.sleep(0.01)
        ours = NodeKey.generate()
        for listener in links.listeners:
            uri = f"{listener.uri.scheme}://{listener.address}"
            for version in (V04, V05):
                seconds = await probe.probe_handshake(
                    reactor, parse_peer_uri(uri), version, ours, timeout=TIMEOUT
                )
                self.assertGreater(seconds, 0.0)
                self.assertLess(seconds, TIMEOUT)
        await self.sleep(0.1)  # our closes reach the listener's links
        self.assertEqual(links.up, set())
