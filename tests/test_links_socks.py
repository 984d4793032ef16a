"""The SOCKS5 client (spec §2.1, §2.4): bytes on the wire with a fake proxy, then real
connections through microsocks."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.helpers import require_tool
from tests.test_links_support import Collecting, Echo, RealReactorTestCase, Recorder, close_all
from ygg.keys import NodeKey
from ygg.links.endpoints import DialError, client_endpoint, server_endpoint
from ygg.links.socks import SOCKS5ClientEndpoint, SOCKSError
from ygg.links.uri import parse_listen_uri, parse_peer_uri

GREETING = bytes.fromhex("05020002")
OK_REPLY_V4 = bytes.fromhex("05000001") + bytes(4) + b"\x00\x00"


@implementer(IStreamClientEndpoint)
class FakeProxy:
    """Connects the factory's protocol to a StringTransport at once (or fails)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.transport = StringTransport()
        self.protocol: Any = None

    def connect(self, factory: Any) -> Deferred[Any]:
        if self.error is not None:
            return fail(self.error)
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        return succeed(self.protocol)

    def written(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def reply(self, data: bytes) -> None:
        self.protocol.dataReceived(data)


class FakeFactory:
    def __init__(self) -> None:
        self.built: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        proto = Recorder()
        self.built.append(proto)
        return proto


class NegotiationTests(SynchronousTestCase):
    def dial(
        self, host: str = "target.example", port: int = 9001, **kwargs: Any
    ) -> tuple[FakeProxy, Deferred[Any], FakeFactory]:
        proxy = FakeProxy()
        endpoint = SOCKS5ClientEndpoint(
            None, proxy, host, port, proxy_address="127.0.0.1:1080", **kwargs
        )
        verifyObject(IStreamClientEndpoint, endpoint)
        factory = FakeFactory()
        return proxy, endpoint.connect(factory), factory

    def failure_text(self, d: Deferred[Any]) -> str:
        failure = self.failureResultOf(d, SOCKSError)
        return str(failure.value)

    def test_domain_target_without_auth(self) -> None:
        proxy, d, factory = self.dial()
        self.assertEqual(proxy.written(), GREETING)
        proxy.reply(b"\x05\x00")
        self.assertEqual(
            proxy.written(), b"\x05\x01\x00\x03\x0etarget.example" + (9001).to_bytes(2, "big")
        )
        self.assertNoResult(d)
        proxy.reply(OK_REPLY_V4 + b"meta")
        protocol = self.successResultOf(d)
        self.assertIs(protocol, factory.built[0])
        self.assertIs(protocol.transport, proxy.transport)
        self.assertEqual(protocol.data, b"meta")
        proxy.reply(b" more")
        self.assertEqual(protocol.data, b"meta more")
        protocol.transport.write(b"out")
        self.assertEqual(proxy.written(), b"out")
        proxy.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsInstance(self.successResultOf(protocol.lost), ConnectionDone)

    def test_ip_targets(self) -> None:
        cases = {
            "192.0.2.1": b"\x01\xc0\x00\x02\x01",
            "::ffff:192.0.2.1": b"\x01\xc0\x00\x02\x01",  # Go's To4() sends it as IPv4
            "2001:db8::1": b"\x04" + bytes.fromhex("20010db8000000000000000000000001"),
            "fe80::1%eth0": b"\x03\x0cfe80::1%eth0",  # not an IP to Go: sent as a name
        }
        for host, address in cases.items():
            with self.subTest(host=host):
                proxy, _d, _ = self.dial(host, 5)
                proxy.written()
                proxy.reply(b"\x05\x00")
                self.assertEqual(proxy.written(), b"\x05\x01\x00" + address + b"\x00\x05")

    def test_username_password(self) -> None:
        proxy, d, _ = self.dial(username="user", password="pa:ss")
        self.assertEqual(proxy.written(), GREETING)
        proxy.reply(b"\x05\x02")
        self.assertEqual(proxy.written(), b"\x01\x04user\x05pa:ss")
        proxy.reply(b"\x01\x00")
        self.assertEqual(proxy.written()[:4], b"\x05\x01\x00\x03")
        proxy.reply(b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x00")
        self.successResultOf(d)

    def test_empty_password_allowed(self) -> None:
        proxy, _d, _ = self.dial(username="user")
        proxy.written()
        proxy.reply(b"\x05\x02")
        self.assertEqual(proxy.written(), b"\x01\x04user\x00")

    def test_reply_with_domain_in_pieces(self) -> None:
        proxy, d, _ = self.dial()
        proxy.reply(b"\x05\x00")
        for piece in (b"\x05\x00", b"\x00\x03", b"\x04ab", b"cd\x00", b"\x01rest"):
            self.assertNoResult(d)
            proxy.reply(piece)
        self.assertEqual(self.successResultOf(d).data, b"rest")

    def test_errors(self) -> None:
        prefix = "socks connect tcp 127.0.0.1:1080->target.example:9001: "
        cases = [
            ([b"\x04\x00"], "unexpected protocol version 4"),
            ([b"\x05\xff"], "no acceptable authentication methods"),
            ([b"\x05\x01"], "unsupported authentication method 1"),
            ([b"\x05\x02"], "invalid username/password"),
            ([b"\x05\x00", b"\x05\x05\x00\x01"], "unknown error connection refused"),
            ([b"\x05\x00", b"\x05\x01\x00\x01"], "unknown error general SOCKS server failure"),
            ([b"\x05\x00", b"\x05\x09\x00\x01"], "unknown error unknown code: 9"),
            ([b"\x05\x00", b"\x05\x00\x01\x01"], "non-zero reserved field"),
            ([b"\x05\x00", b"\x05\x00\x00\x02"], "unknown address type 2"),
        ]
        for replies, reason in cases:
            with self.subTest(reason=reason):
                proxy, d, factory = self.dial()
                for data in replies:
                    proxy.reply(data)
                self.assertEqual(self.failure_text(d), prefix + reason)
                self.assertTrue(proxy.transport.disconnecting)
                self.assertEqual(factory.built, [])

    def test_reply_code_kept(self) -> None:
        proxy, d, _ = self.dial()
        proxy.reply(b"\x05\x00\x05\x02\x00\x01")
        error = self.failureResultOf(d, SOCKSError).value
        self.assertEqual(error.reply, 2)
        self.assertEqual(error.reason, "unknown error connection not allowed by ruleset")

    def test_auth_failures(self) -> None:
        for answer, reason in (
            (b"\x01\x01", "username/password authentication failed"),
            (b"\x05\x00", "invalid username/password version"),
        ):
            with self.subTest(reason=reason):
                proxy, d, _ = self.dial(username="u", password="p")
                proxy.reply(b"\x05\x02" + answer)
                self.assertTrue(self.failure_text(d).endswith(": " + reason))

    def test_proxy_closes_early(self) -> None:
        proxy, d, _ = self.dial()
        proxy.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.failure_text(d).endswith(": EOF"))
        proxy, d, _ = self.dial()
        proxy.reply(b"\x05")
        proxy.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.failure_text(d).endswith(": unexpected EOF"))

    def test_proxy_unreachable(self) -> None:
        proxy = FakeProxy(ConnectionRefusedError("refused"))
        d = SOCKS5ClientEndpoint(None, proxy, "1.2.3.4", 5, proxy_address="127.0.0.1:1080").connect(
            FakeFactory()
        )
        self.assertEqual(
            self.failure_text(d),
            "socks connect tcp 127.0.0.1:1080->1.2.3.4:5: "
            "dial tcp 127.0.0.1:1080: connect: connection refused",
        )

    def test_bad_target_fails_after_reaching_the_proxy(self) -> None:
        cases = {
            "nohost": "address nohost: missing port in address",
            "h:abc": 'strconv.Atoi: parsing "abc": invalid syntax',
            "h:0": "port number out of range 0",
            "h:70000": "port number out of range 70000",
            "": "missing port in address",
        }
        for target, reason in cases.items():
            with self.subTest(target=target):
                proxy = FakeProxy()
                d = SOCKS5ClientEndpoint.for_target(
                    None, proxy, target, proxy_address="127.0.0.1:1080"
                ).connect(FakeFactory())
                self.assertEqual(self.failure_text(d), "socks connect tcp: " + reason)
                self.assertEqual(proxy.transport.value(), b"")
                self.assertTrue(proxy.transport.disconnecting)
        d = SOCKS5ClientEndpoint.for_target(
            None, FakeProxy(ConnectionRefusedError()), "nohost", proxy_address="p:1"
        ).connect(FakeFactory())
        self.assertEqual(
            self.failure_text(d), "socks connect tcp: dial tcp p:1: connect: connection refused"
        )

    def test_for_target_splits_ipv6(self) -> None:
        proxy = FakeProxy()
        SOCKS5ClientEndpoint.for_target(None, proxy, "[2001:db8::1]:7").connect(FakeFactory())
        proxy.written()
        proxy.reply(b"\x05\x00")
        self.assertEqual(proxy.written()[3:4], b"\x04")

    def test_fqdn_too_long(self) -> None:
        proxy, d, _ = self.dial("a" * 256, 5)
        proxy.reply(b"\x05\x00")
        self.assertTrue(self.failure_text(d).endswith(": FQDN too long"))

    def test_cancel(self) -> None:
        proxy, d, _ = self.dial()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(proxy.transport.disconnecting or proxy.transport.disconnected)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MicrosocksTests(RealReactorTestCase):
    """Through a real SOCKS5 proxy (Debian's microsocks) to a local echo server."""

    async def start_proxy(self, *extra: str) -> int:
        binary = require_tool("microsocks")
        port = free_port()
        proc = subprocess.Popen(
            [binary, "-i", "127.0.0.1", "-p", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stop() -> None:
            proc.terminate()
            proc.wait(5)

        self.addCleanup(stop)
        for _ in range(50):  # wait until it accepts connections
            try:
                probe = await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Collecting())
            except ConnectionRefusedError:
                await self.sleep(0.02)
                continue
            await close_all(probe)
            return port
        self.fail("microsocks did not start")

    async def start_echo(self) -> int:
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Collecting(Echo))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    async def round_trip(self, uri: str) -> None:
        endpoint = client_endpoint(reactor, parse_peer_uri(uri), NodeKey.generate())
        client = await endpoint.connect(Collecting())
        client.transport.write(b"hello through socks")
        self.assertEqual(await client.wait_bytes(19), b"hello through socks")
        await close_all(client)

    async def dial_error(self, uri: str) -> str:
        endpoint = client_endpoint(reactor, parse_peer_uri(uri), NodeKey.generate())
        try:
            client = await endpoint.connect(Collecting())
        except DialError as e:
            return str(e)
        await close_all(client)
        self.fail("connected")

    async def test_connect_without_auth(self) -> None:
        proxy, echo = await self.start_proxy(), await self.start_echo()
        await self.round_trip(f"socks://127.0.0.1:{proxy}/127.0.0.1:{echo}")

    async def test_connect_with_auth(self) -> None:
        proxy, echo = await self.start_proxy("-u", "user", "-P", "secret"), await self.start_echo()
        await self.round_trip(f"socks://user:secret@127.0.0.1:{proxy}/127.0.0.1:{echo}")
        text = await self.dial_error(f"socks://user:wrong@127.0.0.1:{proxy}/127.0.0.1:{echo}")
        self.assertEqual(
            text,
            f"socks connect tcp 127.0.0.1:{proxy}->127.0.0.1:{echo}: "
            "username/password authentication failed",
        )
        text = await self.dial_error(f"socks://127.0.0.1:{proxy}/127.0.0.1:{echo}")
        self.assertTrue(text.endswith(": invalid username/password"), text)

    async def test_sockstls_runs_tls_through_the_tunnel(self) -> None:
        """0.5.12's sockstls: the SOCKS tunnel, then TLS with the peer inside it."""
        proxy = await self.start_proxy()
        listen = parse_listen_uri("tls://127.0.0.1:0")
        port = await server_endpoint(reactor, listen, NodeKey.generate()).listen(Collecting(Echo))
        self.addCleanup(port.stopListening)
        await self.round_trip(f"sockstls://127.0.0.1:{proxy}/127.0.0.1:{port.getHost().port}")

    async def test_refused_target(self) -> None:
        proxy, closed = await self.start_proxy(), free_port()
        text = await self.dial_error(f"socks://127.0.0.1:{proxy}/127.0.0.1:{closed}")
        self.assertEqual(
            text,
            f"socks connect tcp 127.0.0.1:{proxy}->127.0.0.1:{closed}: "
            "unknown error connection refused",
        )

    async def test_proxy_not_running(self) -> None:
        proxy = free_port()
        text = await self.dial_error(f"socks://127.0.0.1:{proxy}/127.0.0.1:1")
        self.assertEqual(
            text,
            f"socks connect tcp 127.0.0.1:{proxy}->127.0.0.1:1: "
            f"dial tcp 127.0.0.1:{proxy}: connect: connection refused",
        )
