"""Endpoints for peer and listener URIs (spec §2.4, §2.9): resolution and dispatch with a
memory reactor, then real tcp, tls and unix connections on loopback."""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import TimeoutError
from twisted.internet.interfaces import (
    IHostnameResolver,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.test_links_support import Collecting, Echo, RealReactorTestCase, Recorder, close_all
from ygg.keys import NodeKey
from ygg.links import endpoints, sockets
from ygg.links.endpoints import (
    DialError,
    ListenError,
    ResolvedAddress,
    client_endpoint,
    resolve_address,
    server_endpoint,
)
from ygg.links.handshake import META_SIZE, decode_meta, encode_meta
from ygg.links.netutil import SocketCallError
from ygg.links.uri import LinkURIError, parse_listen_uri, parse_peer_uri

KEY = NodeKey.generate()


@implementer(IHostnameResolver)
class FakeResolver:
    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def resolveHostName(self, receiver: Any, hostName: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(hostName)
        receiver.resolutionBegan(None)
        for address in self.answers.get(hostName, []):
            receiver.addressResolved(address)
        receiver.resolutionComplete()
        return None


def memory_reactor(answers: dict[str, list[Any]] | None = None) -> MemoryReactorClock:
    fake = MemoryReactorClock()
    fake.installNameResolver(FakeResolver(answers or {}))
    return fake


class ResolveTests(SynchronousTestCase):
    def resolve(self, text: str, answers: Any = None, **kwargs: Any) -> ResolvedAddress:
        d = resolve_address(memory_reactor(answers), parse_peer_uri(text), **kwargs)
        return self.successResultOf(d)

    def error(self, text: str, answers: Any = None, **kwargs: Any) -> str:
        d = resolve_address(memory_reactor(answers), parse_peer_uri(text), **kwargs)
        return str(self.failureResultOf(d, DialError).value)

    def test_literals(self) -> None:
        self.assertEqual(self.resolve("tcp://192.0.2.1:9001"), ResolvedAddress("192.0.2.1", 9001))
        self.assertEqual(self.resolve("tls://[2001:db8::1]:1"), ResolvedAddress("2001:db8::1", 1))
        self.assertEqual(str(self.resolve("tcp://[2001:db8::1]:1")), "[2001:db8::1]:1")

    def test_name_prefers_first_ipv4(self) -> None:
        answers = {
            "peer.example": [
                IPv6Address("TCP", "2001:db8::7", 0),
                IPv4Address("TCP", "192.0.2.7", 0),
                IPv4Address("TCP", "192.0.2.8", 0),
            ],
            "v6.example": [
                IPv6Address("TCP", "2001:db8::8", 0),
                IPv6Address("TCP", "2001:db8::9", 0),
            ],
        }
        self.assertEqual(self.resolve("tcp://peer.example:5", answers).ip, "192.0.2.7")
        self.assertEqual(self.resolve("tcp://v6.example:5", answers).ip, "2001:db8::8")
        self.assertEqual(self.error("tcp://none.example:5"), "lookup none.example: no such host")

    def test_go_address_errors(self) -> None:
        self.assertEqual(
            self.error("tcp://127.0.0.1"), "address 127.0.0.1: missing port in address"
        )
        self.assertEqual(self.error("tcp://127.0.0.1:99999"), "address 99999: invalid port")
        self.assertEqual(self.error("tcp://a:b:c:1"), "address a:b:c:1: too many colons in address")

    def test_empty_host(self) -> None:
        address = self.resolve("tcp://:9001")
        self.assertEqual((address.ip, str(address)), ("", ":9001"))

    def test_link_local_needs_a_zone(self) -> None:
        self.assertEqual(self.error("tcp://[fe80::1]:5"), "link-local address requires a zone")
        self.assertEqual(self.error("tcp://169.254.1.1:5"), "link-local address requires a zone")
        address = self.resolve("tcp://[fe80::1%25eth0]:5")
        self.assertEqual((address.zone, str(address)), ("eth0", "[fe80::1%eth0]:5"))
        self.assertTrue(address.link_local)
        # The source interface wins over the URL's zone (§2.4).
        address = self.resolve("tcp://[fe80::1%25eth0]:5", bind_interface="wlan0")
        self.assertEqual(address.zone, "wlan0")
        self.assertEqual(self.resolve("tcp://[fe80::1]:5", bind_interface="br0").zone, "br0")
        self.assertEqual(self.resolve("tcp://10.0.0.1:5", bind_interface="br0").zone, "")


class Connects:
    """Stands in for :func:`ygg.links.sockets.connect`: records each call and hands back a
    Deferred the test fires (no socket is made)."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.calls: list[dict[str, Any]] = []
        test.patch(sockets, "connect", self.connect)

    def connect(self, reactor: Any, ip: str, port: int, zone: str, factory: Any, **kwargs: Any):
        d: Deferred[Any] = Deferred()
        self.calls.append(
            {"ip": ip, "port": port, "zone": zone, "factory": factory, "d": d, **kwargs}
        )
        return d


class ClientDispatchTests(SynchronousTestCase):
    def test_tcp(self) -> None:
        connects = Connects(self)
        endpoint = client_endpoint(memory_reactor(), parse_peer_uri("tcp://192.0.2.1:9001"), KEY)
        verifyObject(IStreamClientEndpoint, endpoint)
        d = endpoint.connect(Collecting())
        (call,) = connects.calls
        self.assertEqual(
            (call["ip"], call["port"], call["zone"], call["timeout"], call["source"]),
            ("192.0.2.1", 9001, "", 5.0, None),
        )
        self.assertEqual(call["options"], sockets.SocketOptions())
        self.assertNoResult(d)
        call["d"].errback(SocketCallError("connect", errno.ECONNREFUSED))
        self.assertEqual(
            str(self.failureResultOf(d, DialError).value),
            "dial tcp 192.0.2.1:9001: connect: connection refused",
        )

    def test_timeout_text(self) -> None:
        connects = Connects(self)
        d = client_endpoint(memory_reactor(), parse_peer_uri("tcp://[2001:db8::1]:9"), KEY).connect(
            Collecting()
        )
        connects.calls[0]["d"].errback(TimeoutError())
        self.assertEqual(
            str(self.failureResultOf(d, DialError).value), "dial tcp [2001:db8::1]:9: i/o timeout"
        )

    def test_zone_source_address_and_interface(self) -> None:
        connects = Connects(self)
        uri = parse_peer_uri("tcp://[fe80::1%25eth0]:9001")
        client_endpoint(
            memory_reactor(), uri, KEY, source_address="fe80::2%eth0", bind_interface="eth1"
        ).connect(Collecting())
        (call,) = connects.calls
        self.assertEqual(
            (call["ip"], call["port"], call["zone"], call["source"]),
            ("fe80::1", 9001, "eth1", "fe80::2%eth0"),
        )
        self.assertEqual(call["options"].interface, "eth1")

    def test_resolved_address_is_used(self) -> None:
        connects = Connects(self)
        fake = memory_reactor()
        uri = parse_peer_uri("tls://peer.example:443")
        endpoint = client_endpoint(fake, uri, KEY, resolved=ResolvedAddress("192.0.2.9", 443))
        endpoint.connect(Collecting())
        self.assertEqual((connects.calls[0]["ip"], connects.calls[0]["port"]), ("192.0.2.9", 443))
        self.assertEqual(fake.nameResolver.asked, [])

    def test_tls_wraps_in_tls(self) -> None:
        connects = Connects(self)
        client_endpoint(
            memory_reactor(), parse_peer_uri("tls://192.0.2.1:1?sni=x.example"), KEY
        ).connect(Collecting())
        factory = connects.calls[0]["factory"]
        self.assertIsInstance(factory, TLSMemoryBIOFactory)
        connection = factory._creatorCallable(None)
        self.assertEqual(connection.get_servername(), b"x.example")

    def test_unix(self) -> None:
        fake = memory_reactor()
        client_endpoint(fake, parse_peer_uri("unix:///run/peer.sock"), KEY).connect(Collecting())
        address, _factory, timeout, _ = fake.unixClients[0]
        self.assertEqual((address, timeout), ("/run/peer.sock", 5.0))

    def test_socks_dials_the_proxy(self) -> None:
        connects = Connects(self)
        uri = parse_peer_uri("socks://u:p@127.0.0.1:1080/peer.example:9001")
        d = client_endpoint(memory_reactor(), uri, KEY).connect(Collecting())
        (call,) = connects.calls
        self.assertEqual((call["ip"], call["port"], call["timeout"]), ("127.0.0.1", 1080, None))
        self.assertIsNone(call["options"].congestion)
        call["d"].errback(SocketCallError("connect", errno.ECONNREFUSED))
        self.assertEqual(
            str(self.failureResultOf(d, DialError).value),
            "socks connect tcp 127.0.0.1:1080->peer.example:9001: "
            "dial tcp 127.0.0.1:1080: connect: connection refused",
        )

    def test_ws_and_wss_dial_tcp_then_upgrade(self) -> None:
        connects = Connects(self)
        for text in ("ws://192.0.2.1:80/p", "wss://name.example:443/p?sni=other"):
            with self.subTest(uri=text):
                fake = memory_reactor()
                uri = parse_peer_uri(text)
                resolved = ResolvedAddress("192.0.2.9", uri.port)
                endpoint = client_endpoint(fake, uri, KEY, resolved=resolved)
                verifyObject(IStreamClientEndpoint, endpoint)
                d = endpoint.connect(Collecting())
                call = connects.calls[-1]
                self.assertEqual(
                    (call["ip"], call["port"], call["timeout"]), ("192.0.2.9", uri.port, 5.0)
                )
                factory = call["factory"]
                if uri.scheme == "wss":
                    self.assertIsInstance(factory, TLSMemoryBIOFactory)
                    # Go's wss dialer names the URI's host and ignores ?sni=.
                    connection = factory._creatorCallable(None)
                    self.assertEqual(connection.get_servername(), b"name.example")
                call["d"].errback(SocketCallError("connect", errno.ECONNREFUSED))
                scheme = "https" if uri.scheme == "wss" else "http"
                self.assertEqual(
                    str(self.failureResultOf(d, DialError).value),
                    "failed to WebSocket dial: failed to send handshake request: "
                    f'Get "{scheme}://192.0.2.9:{uri.port}{uri.resource}": '
                    f"dial tcp 192.0.2.9:{uri.port}: connect: connection refused",
                )

    def test_sockstls_dials_the_proxy(self) -> None:
        connects = Connects(self)
        uri = parse_peer_uri("sockstls://127.0.0.1:1080/peer.example:9001")
        d = client_endpoint(memory_reactor(), uri, KEY).connect(Collecting())
        (call,) = connects.calls
        self.assertEqual((call["ip"], call["port"]), ("127.0.0.1", 1080))
        call["d"].errback(SocketCallError("connect", errno.ECONNREFUSED))
        self.assertEqual(
            str(self.failureResultOf(d, DialError).value),
            "socks connect tcp 127.0.0.1:1080->peer.example:9001: "
            "dial tcp 127.0.0.1:1080: connect: connection refused",
        )

    def test_unknown_scheme(self) -> None:
        uri = parse_listen_uri("tcp://h:1")
        bogus = type(uri)(**{**uri.__dict__, "scheme": "sctp"})
        self.assertRaises(LinkURIError, client_endpoint, memory_reactor(), bogus, KEY)


class Listens:
    """Stands in for :func:`ygg.links.sockets.listen`: records each call (no socket)."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.calls: list[dict[str, Any]] = []
        test.patch(sockets, "listen", self.listen)

    def listen(self, reactor: Any, ip: str, port: int, zone: str, factory: Any, **kwargs: Any):
        self.calls.append({"ip": ip, "port": port, "zone": zone, "factory": factory, **kwargs})
        return object()


class ServerDispatchTests(SynchronousTestCase):
    def listen(self, text: str, answers: Any = None, **kwargs: Any) -> dict[str, Any]:
        listens = Listens(self)
        endpoint = server_endpoint(memory_reactor(answers), parse_listen_uri(text), KEY, **kwargs)
        verifyObject(IStreamServerEndpoint, endpoint)
        self.successResultOf(endpoint.listen(Collecting()))
        (call,) = listens.calls
        return call

    def where(self, text: str, answers: Any = None, **kwargs: Any) -> tuple[str, int, str]:
        call = self.listen(text, answers, **kwargs)
        return call["ip"], call["port"], call["zone"]

    def test_addresses(self) -> None:
        self.assertEqual(self.where("tcp://127.0.0.1:9001"), ("127.0.0.1", 9001, ""))
        self.assertEqual(self.where("tcp://[::1]:0"), ("::1", 0, ""))
        self.assertEqual(self.where("tls://[fe80::1%25lo]:0"), ("fe80::1", 0, "lo"))
        answers = {"me.example": [IPv4Address("TCP", "192.0.2.3", 0)]}
        self.assertEqual(self.where("tcp://me.example:5", answers), ("192.0.2.3", 5, ""))
        call = self.listen("tcp://127.0.0.1:9001")
        self.assertEqual(call["backlog"], socket.SOMAXCONN)
        # Set on the listener, so that every accepted socket has them (Linux copies them).
        self.assertEqual(call["options"], sockets.SocketOptions())

    def test_wildcards_are_dual_stack(self) -> None:
        if not endpoints._dual_stack_supported():
            raise SkipTest("no IPv4-mapped IPv6 here")
        for text in ("tcp://0.0.0.0:0", "tcp://[::]:0", "tls://:0"):
            with self.subTest(text=text):
                call = self.listen(text)
                self.assertEqual(call["ip"], "::")
                self.assertIs(call["options"].v6only, False)

    def test_multicast_interface(self) -> None:
        call = self.listen("tls://[fe80::5]:0", bind_interface="eth0")
        self.assertEqual((call["ip"], call["zone"]), ("fe80::5", "eth0"))
        self.assertEqual(call["options"].interface, "eth0")

    def test_tls_wraps_the_factory(self) -> None:
        self.assertIsInstance(self.listen("tls://127.0.0.1:0")["factory"], TLSMemoryBIOFactory)
        self.assertIsInstance(self.listen("tcp://127.0.0.1:0")["factory"], Collecting)

    def test_errors(self) -> None:
        endpoint = server_endpoint(memory_reactor(), parse_listen_uri("tcp://127.0.0.1"), KEY)
        failure = self.failureResultOf(endpoint.listen(Collecting()), ListenError)
        self.assertEqual(
            str(failure.value),
            "listen tcp 127.0.0.1: address 127.0.0.1: missing port in address",
        )
        self.assertRaises(
            LinkURIError,
            server_endpoint,
            memory_reactor(),
            parse_peer_uri("socks://a:1/b:2"),
            KEY,
        )


class MetaExchange(Recorder):
    """Sends its handshake on connect, like a link."""

    def connectionMade(self) -> None:
        self.transport.write(encode_meta(self.factory.key.public))
        super().connectionMade()


class MetaFactory(Collecting):
    def __init__(self, key: NodeKey) -> None:
        super().__init__(MetaExchange)
        self.key = key


def has_bbr() -> bool:
    try:
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            return "bbr" in f.read().split()
    except OSError:
        return False


class RealLinkTests(RealReactorTestCase):
    async def serve(self, text: str, key: NodeKey) -> tuple[Any, MetaFactory]:
        factory = MetaFactory(key)
        port = await server_endpoint(reactor, parse_listen_uri(text), key).listen(factory)
        self.addCleanup(port.stopListening)
        return port, factory

    async def exchange(self, listen: str, dial: str) -> tuple[Recorder, Recorder]:
        """Listen, dial, swap handshakes; both sides check the other's key."""
        server_key, client_key = NodeKey.generate(), NodeKey.generate()
        port, servers = await self.serve(listen, server_key)
        dial = dial.replace("PORT", str(getattr(port.getHost(), "port", "")))
        endpoint = client_endpoint(reactor, parse_peer_uri(dial), client_key)
        client = await endpoint.connect(MetaFactory(client_key))
        server = await servers.first
        self.assertEqual(decode_meta(await client.wait_bytes(META_SIZE)), server_key.public)
        self.assertEqual(decode_meta(await server.wait_bytes(META_SIZE)), client_key.public)
        return client, server

    async def test_tcp(self) -> None:
        client, server = await self.exchange("tcp://127.0.0.1:0", "tcp://127.0.0.1:PORT")
        for side in (client, server):
            sock = side.transport.getHandle()
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            if has_bbr():
                name = sock.getsockopt(socket.IPPROTO_TCP, sockets.TCP_CONGESTION, 16)
                self.assertEqual(name.rstrip(b"\0"), b"bbr")
        await close_all(client, server)

    async def test_tcp_ipv6(self) -> None:
        client, server = await self.exchange("tcp://[::1]:0", "tcp://[::1]:PORT")
        self.assertEqual(client.transport.getPeer().host, "::1")
        await close_all(client, server)

    async def test_tls(self) -> None:
        client, server = await self.exchange("tls://127.0.0.1:0", "tls://127.0.0.1:PORT")
        # The dial fired only once TLS was up: the caller's protocol sits on the TLS layer.
        handle = client.transport.getHandle()
        self.assertEqual(handle.get_protocol_version_name(), "TLSv1.3")
        self.assertIsNotNone(client.transport.getPeerCertificate())
        sock = client.transport.transport.getHandle()
        self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
        await close_all(client, server)

    async def test_tls_sni_from_name(self) -> None:
        port, servers = await self.serve("tls://127.0.0.1:0", KEY)
        uri = parse_peer_uri(f"tls://localhost:{port.getHost().port}?sni=peer.example")
        resolved = ResolvedAddress("127.0.0.1", port.getHost().port)
        client = await client_endpoint(reactor, uri, KEY, resolved=resolved).connect(
            MetaFactory(KEY)
        )
        server = await servers.first
        await server.wait_bytes(META_SIZE)
        self.assertEqual(server.transport.getHandle().get_servername(), b"peer.example")
        await close_all(client, server)

    async def test_source_address(self) -> None:
        port, servers = await self.serve("tcp://127.0.0.1:0", KEY)
        uri = parse_peer_uri(f"tcp://127.0.0.1:{port.getHost().port}")
        client = await client_endpoint(reactor, uri, KEY, source_address="127.0.0.2").connect(
            Collecting()
        )
        server = await servers.first
        self.assertEqual(server.transport.getPeer().host, "127.0.0.2")
        await close_all(client, server)

    async def test_bind_interface(self) -> None:
        if os.geteuid() != 0:
            raise SkipTest("SO_BINDTODEVICE needs CAP_NET_RAW")
        port, servers = await self.serve("tcp://127.0.0.1:0", KEY)
        uri = parse_peer_uri(f"tcp://127.0.0.1:{port.getHost().port}")
        client = await client_endpoint(reactor, uri, KEY, bind_interface="lo").connect(Collecting())
        sock = client.transport.getHandle()
        device = sock.getsockopt(socket.SOL_SOCKET, sockets.SO_BINDTODEVICE, 16)
        self.assertEqual(device.rstrip(b"\0"), b"lo")
        await close_all(client, await servers.first)

    async def test_name_resolution(self) -> None:
        port, servers = await self.serve("tcp://127.0.0.1:0", KEY)
        uri = parse_peer_uri(f"tcp://localhost:{port.getHost().port}")
        address = await resolve_address(reactor, uri)
        if address.ip != "127.0.0.1":
            raise SkipTest(f"localhost resolves to {address.ip} here")
        client = await client_endpoint(reactor, uri, KEY).connect(Collecting())
        await close_all(client, await servers.first)

    async def test_refused(self) -> None:
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Collecting())
        number = port.getHost().port
        await port.stopListening()
        for scheme in ("tcp", "tls"):
            with self.subTest(scheme=scheme):
                uri = parse_peer_uri(f"{scheme}://127.0.0.1:{number}")
                with self.assertRaises(DialError) as caught:
                    await client_endpoint(reactor, uri, KEY).connect(Collecting())
                self.assertEqual(
                    str(caught.exception),
                    f"dial tcp 127.0.0.1:{number}: connect: connection refused",
                )

    async def silent_server(self) -> tuple[int, Collecting]:
        """A TCP server that accepts and never speaks (no TLS)."""
        servers = Collecting()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(servers)
        self.addCleanup(port.stopListening)
        return port.getHost().port, servers

    async def test_tls_handshake_timeout(self) -> None:
        self.patch(endpoints, "CONNECT_TIMEOUT", 0.3)
        number, servers = await self.silent_server()
        uri = parse_peer_uri(f"tls://127.0.0.1:{number}")
        with self.assertRaises(DialError) as caught:
            await client_endpoint(reactor, uri, KEY).connect(Collecting())
        self.assertEqual(str(caught.exception), f"dial tcp 127.0.0.1:{number}: i/o timeout")
        await servers.first.addCallback(lambda server: server.lost)

    async def test_tls_cancel_during_handshake(self) -> None:
        number, servers = await self.silent_server()
        uri = parse_peer_uri(f"tls://127.0.0.1:{number}")
        d = client_endpoint(reactor, uri, KEY).connect(Collecting())
        server = await servers.first
        d.cancel()
        with self.assertRaises(CancelledError):
            await d
        await server.lost

    async def test_tls_server_hangs_up(self) -> None:
        servers = Collecting()

        def hang_up(server: Recorder) -> None:
            server.transport.loseConnection()

        servers.first.addCallback(hang_up)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(servers)
        self.addCleanup(port.stopListening)
        uri = parse_peer_uri(f"tls://127.0.0.1:{port.getHost().port}")
        with self.assertRaises(DialError) as caught:
            await client_endpoint(reactor, uri, KEY).connect(Collecting())
        self.assertEqual(str(caught.exception), "EOF")

    async def test_tls_to_plain_tcp_listener(self) -> None:
        port, servers = await self.serve("tcp://127.0.0.1:0", KEY)
        uri = parse_peer_uri(f"tls://127.0.0.1:{port.getHost().port}")
        with self.assertRaises(DialError) as caught:
            await client_endpoint(reactor, uri, KEY).connect(Collecting())
        self.assertTrue(str(caught.exception).startswith("tls: "), str(caught.exception))
        await (await servers.first).lost

    async def test_tcp_listen_in_use(self) -> None:
        port, _ = await self.serve("tcp://127.0.0.1:0", KEY)
        text = f"tcp://127.0.0.1:{port.getHost().port}"
        with self.assertRaises(ListenError) as caught:
            await server_endpoint(reactor, parse_listen_uri(text), KEY).listen(Collecting())
        self.assertEqual(
            str(caught.exception),
            f"listen tcp 127.0.0.1:{port.getHost().port}: bind: address already in use",
        )


class UnixTests(RealReactorTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-links-")
        self.addCleanup(os.rmdir, self.dir)
        self.path = os.path.join(self.dir, "peer.sock")

    async def test_round_trip_and_cleanup(self) -> None:
        uri = f"unix://{self.path}"
        servers = Collecting(Echo)
        port = await server_endpoint(reactor, parse_listen_uri(uri), KEY).listen(servers)
        mode = stat.S_IMODE(os.stat(self.path).st_mode)
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(mode, 0o777 & ~umask)

        with self.assertRaises(ListenError) as caught:
            await server_endpoint(reactor, parse_listen_uri(uri), KEY).listen(Collecting())
        self.assertEqual(
            str(caught.exception), f"listen unix {self.path}: bind: address already in use"
        )

        client = await client_endpoint(reactor, parse_peer_uri(uri), KEY).connect(Collecting())
        client.transport.write(b"over unix")
        self.assertEqual(await client.wait_bytes(9), b"over unix")
        await close_all(client, await servers.first)
        await port.stopListening()
        self.assertFalse(os.path.exists(self.path))

    async def test_missing_socket(self) -> None:
        uri = parse_peer_uri(f"unix://{self.path}")
        with self.assertRaises(DialError) as caught:
            await client_endpoint(reactor, uri, KEY).connect(Collecting())
        self.assertEqual(
            str(caught.exception), f"dial unix {self.path}: connect: no such file or directory"
        )
