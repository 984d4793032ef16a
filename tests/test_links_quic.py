"""QUIC links (quic://) as yggdrasil 0.5.12's link_quic.go makes them: a dial's deadline on a
task clock, then real connections over loopback UDP through the endpoints."""

from __future__ import annotations

import socket

from aioquic.quic.connection import QuicConnection
from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.test_links_support import Collecting, Echo, RealReactorTestCase, Recorder, close_all
from ygg.keys import NodeKey
from ygg.links import quic
from ygg.links.endpoints import (
    DialError,
    ListenError,
    ResolvedAddress,
    client_endpoint,
    server_endpoint,
)
from ygg.links.handshake import META_SIZE, decode_meta, encode_meta
from ygg.links.tls import make_certificate
from ygg.links.uri import parse_listen_uri, parse_peer_uri

KEY = NodeKey.generate()


class Meta(Recorder):
    """Writes a v0.4 handshake at once, as a link does."""

    def connectionMade(self) -> None:
        self.transport.write(encode_meta(self.factory.key.public))
        super().connectionMade()


def metas(key: NodeKey, protocol: type[Recorder] = Meta) -> Collecting:
    factory = Collecting(protocol)
    factory.key = key  # type: ignore[attr-defined]
    return factory


class DialDeadlineTests(SynchronousTestCase):
    def test_silent_peer_times_out_like_quic_go(self) -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        clock = MemoryReactorClock()
        uri = parse_peer_uri(f"quic://127.0.0.1:{silent.getsockname()[1]}")
        resolved = ResolvedAddress("127.0.0.1", uri.port)
        d = client_endpoint(clock, uri, KEY, resolved=resolved).connect(Collecting())
        self.assertNoResult(d)
        self.assertEqual(len(clock.readers), 1)  # the dial's own UDP socket
        clock.advance(quic.HANDSHAKE_TIMEOUT)
        failure = self.failureResultOf(d, DialError)
        self.assertEqual(str(failure.value), "timeout: handshake did not complete in time")
        for _ in range(100):  # the close runs its course, then the socket goes
            clock.advance(0.1)
        self.assertEqual(clock.readers, set())


class StrayInitialTests(SynchronousTestCase):
    def test_a_connection_without_a_link_is_dropped_after_the_handshake_time(self) -> None:
        clock = MemoryReactorClock()
        port = quic.listen(clock, "127.0.0.1", 0, "", Collecting(), make_certificate(KEY))
        self.addCleanup(port._listener.udp.close)
        [reader] = clock.readers
        client = QuicConnection(configuration=quic.client_configuration())
        client.connect(("127.0.0.1", port.getHost().port), now=clock.seconds())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            for data, addr in client.datagrams_to_send(now=clock.seconds()):
                raw.sendto(data, addr)
            reader.doRead()  # loopback delivers at once
        self.assertEqual(len(set(port._listener.connections.values())), 1)
        clock.advance(quic.HANDSHAKE_TIMEOUT)
        for _ in range(100):
            clock.advance(0.1)
        self.assertEqual(port._listener.connections, {})
        self.successResultOf(port.stopListening())
        self.assertEqual(clock.readers, set())


class RealQuicTests(RealReactorTestCase):
    async def listen(self, factory: Collecting, text: str = "quic://127.0.0.1:0") -> int:
        port = await server_endpoint(reactor, parse_listen_uri(text), NodeKey.generate()).listen(
            factory
        )
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def test_handshakes_cross_and_the_stream_is_whole(self) -> None:
        server_key, client_key = NodeKey.generate(), NodeKey.generate()
        servers = metas(server_key)
        port = await self.listen(servers)
        dial = client_endpoint(reactor, parse_peer_uri(f"quic://127.0.0.1:{port}"), client_key)
        client = await dial.connect(metas(client_key))
        server = await servers.first
        self.assertEqual(decode_meta(await client.wait_bytes(META_SIZE)), server_key.public)
        self.assertEqual(decode_meta(await server.wait_bytes(META_SIZE)), client_key.public)
        self.assertEqual(server.transport.getPeer().port, client.transport.getHost().port)
        big = bytes(range(256)) * 1200  # past the stream's first flow-control window
        client.transport.write(big)
        self.assertEqual(
            await server.wait_bytes(META_SIZE + len(big)), encode_meta(client_key.public) + big
        )
        await close_all(client, server)
        self.assertIsInstance(self.successResultOf(server.lost), ConnectionDone)
        await client.transport.closed  # the connection's close has run its course

    async def test_echo_both_ways(self) -> None:
        servers = Collecting(Echo)
        port = await self.listen(servers)
        dial = client_endpoint(reactor, parse_peer_uri(f"quic://127.0.0.1:{port}"), KEY)
        client = await dial.connect(Collecting(Recorder))
        payload = b"x" * 300_000
        client.transport.write(payload)
        self.assertEqual(await client.wait_bytes(len(payload)), payload)
        await close_all(client, await servers.first)
        await client.transport.closed

    async def test_stopped_listener_waits_for_its_links(self) -> None:
        servers = Collecting(Echo)
        listening = await server_endpoint(
            reactor, parse_listen_uri("quic://127.0.0.1:0"), KEY
        ).listen(servers)
        port = listening.getHost().port
        client = await client_endpoint(
            reactor, parse_peer_uri(f"quic://127.0.0.1:{port}"), KEY
        ).connect(Collecting(Recorder))
        client.transport.write(b"hi")
        server = await servers.first
        stopped = listening.stopListening()
        self.assertNoResult(stopped)
        client.transport.write(b" there")
        self.assertEqual(await client.wait_bytes(8), b"hi there")  # the link goes on
        await close_all(client, server)
        await stopped
        await client.transport.closed

    async def test_port_in_use(self) -> None:
        port = await self.listen(Collecting(Recorder))
        with self.assertRaises(ListenError) as caught:
            await server_endpoint(
                reactor, parse_listen_uri(f"quic://127.0.0.1:{port}"), KEY
            ).listen(Collecting(Recorder))
        self.assertEqual(
            str(caught.exception), f"listen udp 127.0.0.1:{port}: bind: address already in use"
        )
