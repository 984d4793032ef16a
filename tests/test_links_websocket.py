"""WebSocket links (ws://, wss://) as yggdrasil 0.5's link_ws.go makes them: the upgrade
request and answer, the stream in binary messages, health checks, origins; in memory, then
over real loopback sockets."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IStreamClientEndpoint, ITransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.test_links_support import Collecting, Echo, RealReactorTestCase, Recorder, close_all
from ygg.keys import NodeKey
from ygg.links import websocket
from ygg.links.endpoints import DialError, client_endpoint, server_endpoint
from ygg.links.handshake import META_SIZE, decode_meta, encode_meta
from ygg.links.uri import parse_listen_uri, parse_peer_uri

KEY = NodeKey.generate()
ADDRESS = IPv4Address("TCP", "127.0.0.1", 9001)
KEY_HEADER = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"


class Transport(StringTransport):
    """A StringTransport that, like a TCP transport, lets an unregistered producer go."""

    def unregisterProducer(self) -> None:
        self.producer = None


def upgrade(path: str = "/", *, protocol: str | None = "ygg-ws", extra: str = "") -> bytes:
    """An upgrade request as Go's coder/websocket writes it."""
    lines = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nConnection: Upgrade\r\n"
        f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n{KEY_HEADER}"
    )
    if protocol:
        lines += f"Sec-WebSocket-Protocol: {protocol}\r\n"
    return (lines + extra + "\r\n").encode()


class ListenerTests(SynchronousTestCase):
    """The listener's answers to what an HTTP client can send (Go's wsServer)."""

    def serve(self, origins: tuple[str, ...] = ()) -> tuple[Any, StringTransport, Collecting]:
        links = Collecting(Recorder)
        factory = websocket.server_factory(MemoryReactorClock(), links, origins)
        proto = factory.buildProtocol(ADDRESS)
        transport = Transport(peerAddress=ADDRESS)
        proto.makeConnection(transport)
        return proto, transport, links

    def test_health_paths_answer_ok(self) -> None:
        for path in ("/health", "/healthz"):
            for request in (f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), upgrade(path)):
                proto, transport, links = self.serve()
                proto.dataReceived(request)
                answer = transport.value()
                self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer)
                self.assertTrue(answer.endswith(b"\r\n\r\nOK"), answer)
                self.assertEqual(links.built, [])

    def test_plain_get_is_refused(self) -> None:
        proto, transport, links = self.serve()
        proto.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 426 Upgrade Required\r\n"))
        self.assertEqual(links.built, [])

    def test_upgrade_with_ygg_ws_starts_a_link(self) -> None:
        proto, transport, links = self.serve()
        proto.dataReceived(upgrade(protocol="binary, YGG-WS"))
        answer = transport.value().decode()
        self.assertTrue(answer.startswith("HTTP/1.1 101 Switching Protocols\r\n"), answer)
        self.assertIn("Sec-WebSocket-Protocol: YGG-WS\r\n", answer)
        self.assertIn("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", answer)
        self.assertNotIn("Server:", answer)
        self.assertNotIn("Extensions", answer)
        [link] = links.built
        self.assertEqual(link.transport.getPeer(), ADDRESS)
        verifyObject(ITransport, link.transport)

    def test_upgrade_without_ygg_ws_is_closed_with_policy_violation(self) -> None:
        proto, transport, links = self.serve()
        proto.dataReceived(upgrade(protocol="binary"))
        answer = transport.value()
        head, _, frame = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "))
        self.assertNotIn(b"Sec-WebSocket-Protocol", head)
        # A close frame: FIN+close, length, status 1008, Go's reason.
        reason = b"client must speak the ygg-ws subprotocol"
        self.assertEqual(frame, bytes([0x88, 2 + len(reason)]) + (1008).to_bytes(2, "big") + reason)
        self.assertEqual(links.built, [])

    def test_cross_origin_is_forbidden_unless_allowed(self) -> None:
        origin = "Origin: https://evil.example\r\n"
        proto, transport, links = self.serve()
        proto.dataReceived(upgrade(extra=origin))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 403 Forbidden\r\n"))
        self.assertIn(b"not authorized for Host", transport.value())
        self.assertEqual(links.built, [])
        for allowed in (("*.example",), ("*",)):
            proto, transport, links = self.serve(allowed)
            proto.dataReceived(upgrade(extra=origin))
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), allowed)

    def test_same_origin_passes(self) -> None:
        proto, transport, _ = self.serve()
        proto.dataReceived(upgrade(extra="Origin: http://127.0.0.1:9001\r\n"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))


class CheckOriginTests(SynchronousTestCase):
    def test_go_rules(self) -> None:
        check = websocket.check_origin
        self.assertEqual(check("", "h:1", ()), "")
        self.assertEqual(check("http://H:1", "h:1", ()), "")
        self.assertEqual(check("https://a.example", "h:1", ("*.example",)), "")
        self.assertEqual(check("https://a.example:8443", "h:1", ("*.example:*",)), "")
        self.assertEqual(check("https://x.a.example", "h:1", ("a.example",)) != "", True)
        self.assertEqual(check("https://anything", "h:1", ("other", "*")), "")
        self.assertEqual(
            check("https://evil", "h:1", ()),
            "request Origin 'evil' is not authorized for Host 'h:1'",
        )
        self.assertEqual(
            check("null", "h:1", ()), "request Origin 'null' is not a valid URL with a host"
        )


@implementer(IStreamClientEndpoint)
class MemoryPair:
    """A stream endpoint whose connections meet ``server_factory`` in memory."""

    def __init__(self, server_factory: Any) -> None:
        self.server_factory = server_factory
        self.pumps: list[iosim.IOPump] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        client = factory.buildProtocol(ADDRESS)
        server = self.server_factory.buildProtocol(ADDRESS)
        pump = iosim.connect(
            server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client), greet=False
        )
        self.pumps.append(pump)
        return succeed(client)

    def flush(self) -> None:
        for pump in self.pumps:
            pump.flush()


class InMemoryLinkTests(SynchronousTestCase):
    """A dial and a listener joined in memory: the stream arrives whole, in order."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.servers = Collecting(Echo)
        self.pair = MemoryPair(websocket.server_factory(self.reactor, self.servers))

    def dial(self, text: str = "ws://127.0.0.1:9001/ygg?password=secret&key=00") -> Any:
        uri = parse_peer_uri(text)
        endpoint = websocket.WebSocketClientEndpoint(self.reactor, self.pair, uri, "127.0.0.1:9001")
        connecting = endpoint.connect(Collecting(Recorder))
        self.pair.flush()
        return self.successResultOf(connecting)

    def test_request_is_gos(self) -> None:
        self.dial()
        [echo] = self.servers.built
        headers = echo.transport._ws.http_request_data.decode()
        self.assertTrue(headers.startswith("GET /ygg?key=00 HTTP/1.1\r\n"), headers)
        self.assertIn("Host: 127.0.0.1:9001\r\n", headers)
        self.assertIn("Sec-WebSocket-Protocol: ygg-ws\r\n", headers)
        self.assertNotIn("secret", headers)
        self.assertNotIn("User-Agent", headers)
        self.assertNotIn("Origin", headers)
        self.assertNotIn("Extensions", headers)

    def test_stream_in_binary_messages_both_ways(self) -> None:
        client = self.dial()
        client.transport.write(b"meta")
        client.transport.writeSequence([b"\x00\x04", b"x" * 200_000])
        self.pair.flush()
        [echo] = self.servers.built
        self.assertEqual(echo.data, b"meta\x00\x04" + b"x" * 200_000)
        self.assertEqual(client.data, echo.data)

    def test_close_is_a_clean_end_of_stream(self) -> None:
        client = self.dial()
        [echo] = self.servers.built
        client.transport.loseConnection()
        self.pair.flush()
        self.assertIsInstance(self.successResultOf(client.lost), ConnectionDone)
        self.assertIsInstance(self.successResultOf(echo.lost), ConnectionDone)

    def test_text_message_ends_the_link(self) -> None:
        client = self.dial()
        [echo] = self.servers.built
        echo.transport._ws.sendMessage(b"hello", isBinary=False)
        self.pair.flush()
        self.assertEqual(client.data, b"")
        self.assertIsInstance(self.successResultOf(client.lost), ConnectionLost)
        self.assertIn("1003", str(self.successResultOf(echo.lost)))

    def test_upgrade_timeout(self) -> None:
        @implementer(IStreamClientEndpoint)
        class Silent:
            def connect(self, factory: Any) -> Deferred[Any]:
                proto = factory.buildProtocol(ADDRESS)
                proto.makeConnection(Transport(peerAddress=ADDRESS))
                return succeed(proto)

        uri = parse_peer_uri("ws://127.0.0.1:9001")
        endpoint = websocket.WebSocketClientEndpoint(self.reactor, Silent(), uri, "127.0.0.1:9001")
        connecting = endpoint.connect(Collecting(Recorder))
        self.assertNoResult(connecting)
        self.reactor.advance(websocket.UPGRADE_TIMEOUT)
        failure = self.failureResultOf(connecting, websocket.WebSocketDialError)
        self.assertEqual(
            str(failure.value),
            "failed to WebSocket dial: failed to send handshake request: "
            'Get "http://127.0.0.1:9001/": i/o timeout',
        )

    def test_refused_upgrade_reports_the_status(self) -> None:
        self.pair = MemoryPair(websocket.server_factory(self.reactor, self.servers, ()))
        uri = parse_peer_uri("ws://127.0.0.1:9001/health")
        endpoint = websocket.WebSocketClientEndpoint(self.reactor, self.pair, uri, "127.0.0.1:9001")
        connecting = endpoint.connect(Collecting(Recorder))
        self.pair.flush()
        failure = self.failureResultOf(connecting, websocket.WebSocketDialError)
        self.assertEqual(
            str(failure.value),
            "failed to WebSocket dial: expected handshake response status code 101 but got 200",
        )


class RealWebSocketTests(RealReactorTestCase):
    """ws and wss through the real endpoints on loopback: both sides exchange a v0.4
    handshake over the WebSocket."""

    async def exchange(self, listen: str) -> None:
        server_key, client_key = NodeKey.generate(), NodeKey.generate()

        class Meta(Recorder):
            def connectionMade(self) -> None:
                self.transport.write(encode_meta(self.factory.key.public))
                super().connectionMade()

        servers = Collecting(Meta)
        servers.key = server_key  # type: ignore[attr-defined]
        port = await server_endpoint(reactor, parse_listen_uri(listen), server_key).listen(servers)
        self.addCleanup(port.stopListening)
        scheme = listen.split(":")[0]
        dial = f"{scheme}://127.0.0.1:{port.getHost().port}/"
        clients = Collecting(Meta)
        clients.key = client_key  # type: ignore[attr-defined]
        client = await client_endpoint(reactor, parse_peer_uri(dial), client_key).connect(clients)
        server = await servers.first
        self.assertEqual(decode_meta(await client.wait_bytes(META_SIZE)), server_key.public)
        self.assertEqual(decode_meta(await server.wait_bytes(META_SIZE)), client_key.public)
        await close_all(client, server)

    async def test_ws(self) -> None:
        await self.exchange("ws://127.0.0.1:0")

    async def test_wss(self) -> None:
        await self.exchange("wss://127.0.0.1:0")

    async def test_refused(self) -> None:
        probe = await server_endpoint(reactor, parse_listen_uri("tcp://127.0.0.1:0"), KEY).listen(
            Collecting(Recorder)
        )
        port = probe.getHost().port
        await probe.stopListening()
        endpoint = client_endpoint(reactor, parse_peer_uri(f"ws://127.0.0.1:{port}"), KEY)
        with self.assertRaises(DialError) as caught:
            await endpoint.connect(Collecting(Recorder))
        self.assertEqual(
            str(caught.exception),
            "failed to WebSocket dial: failed to send handshake request: "
            f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: '
            "connection refused",
        )
