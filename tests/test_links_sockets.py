"""Link sockets made by hand and adopted by the reactor (ygg.links.sockets).

A fake reactor never wakes a pending connect, so timeouts and cancels are checked with one
(and a real, non-blocking socket to loopback); connects and listeners that must complete
use the real reactor.  Every address is on this machine.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectingCancelledError, TimeoutError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.test_links_support import Collecting, RealReactorTestCase, close_all
from ygg.links import sockets
from ygg.links.netutil import SocketCallError, connect_failure_text
from ygg.links.sockets import SocketOptions, socket_address


def loopback_listener(test: SynchronousTestCase) -> int:
    """A listening socket nobody accepts from: a connect to it completes in the kernel."""
    server = socket.socket()
    test.addCleanup(server.close)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server.getsockname()[1]


class AddressTests(SynchronousTestCase):
    def test_families_and_scope_ids(self) -> None:
        self.assertEqual(socket_address("192.0.2.1", 5), (socket.AF_INET, ("192.0.2.1", 5)))
        self.assertEqual(socket_address("", 5), (socket.AF_INET, ("0.0.0.0", 5)))
        self.assertEqual(socket_address("::1", 5), (socket.AF_INET6, ("::1", 5, 0, 0)))
        lo = socket.if_nametoindex("lo")
        self.assertEqual(
            socket_address("fe80::1", 5, "lo"), (socket.AF_INET6, ("fe80::1", 5, 0, lo))
        )
        self.assertEqual(socket_address("fe80::1", 5, "7")[1][3], 7)
        for zone in ("no-such-if0", "99999999999", "²"):
            self.assertEqual(socket_address("fe80::1", 5, zone)[1][3], 0)


class OptionTests(SynchronousTestCase):
    def test_options_applied(self) -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            SocketOptions(congestion="reno", v6only=False).apply(sock)
            name = sock.getsockopt(socket.IPPROTO_TCP, sockets.TCP_CONGESTION, 16)
            self.assertEqual(name.rstrip(b"\0"), b"reno")
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            self.assertEqual(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), 0)

    def test_failures_are_best_effort(self) -> None:
        with socket.socket() as sock:
            SocketOptions(interface="no-such-if0", congestion="no-such-cc").apply(sock)


class PendingConnectTests(SynchronousTestCase):
    def connect(self, fake: MemoryReactorClock, **kwargs: Any) -> Deferred[Any]:
        port = loopback_listener(self)
        return sockets.connect(
            fake, "127.0.0.1", port, "", Collecting(), options=SocketOptions(), **kwargs
        )

    def test_timeout(self) -> None:
        fake = MemoryReactorClock()
        d = self.connect(fake, timeout=5.0)
        (pending,) = fake.writers
        self.assertNoResult(d)
        fake.advance(4.9)
        self.assertNoResult(d)
        fake.advance(0.1)
        self.assertEqual(
            connect_failure_text(self.failureResultOf(d, TimeoutError).value), "i/o timeout"
        )
        self.assertEqual(fake.writers, set())
        self.assertEqual(pending.fileno(), -1)  # closed

    def test_cancel(self) -> None:
        fake = MemoryReactorClock()
        d = self.connect(fake, timeout=5.0)
        (pending,) = fake.writers
        d.cancel()
        self.failureResultOf(d, ConnectingCancelledError)
        self.assertEqual(fake.writers, set())
        self.assertEqual(fake.getDelayedCalls(), [])
        self.assertEqual(pending.fileno(), -1)

    def test_no_timeout(self) -> None:
        fake = MemoryReactorClock()
        d = self.connect(fake)
        self.assertEqual(fake.getDelayedCalls(), [])
        d.cancel()
        self.failureResultOf(d, ConnectingCancelledError)

    def test_bind_failure(self) -> None:
        # 192.0.2.1 is not an address of this machine: bind() fails, nothing is sent.
        d = self.connect(MemoryReactorClock(), source="192.0.2.1")
        error = self.failureResultOf(d, SocketCallError).value
        self.assertEqual(str(error), "bind: cannot assign requested address")


class RealSocketTests(RealReactorTestCase):
    async def test_connect_and_listen(self) -> None:
        servers = Collecting()
        port = sockets.listen(
            reactor,
            "127.0.0.1",
            0,
            "",
            servers,
            options=SocketOptions(congestion="reno"),
            backlog=5,
        )
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        client = await sockets.connect(
            reactor,
            "127.0.0.1",
            number,
            "",
            Collecting(),
            options=SocketOptions(congestion="reno"),
            source="127.0.0.3",
            timeout=5.0,
        )
        server = await servers.first
        self.assertEqual(server.transport.getPeer().host, "127.0.0.3")
        self.assertEqual(client.transport.getPeer().port, number)
        for side in (client, server):
            sock = side.transport.getHandle()
            self.assertEqual(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
            name = sock.getsockopt(socket.IPPROTO_TCP, sockets.TCP_CONGESTION, 16)
            self.assertEqual(name.rstrip(b"\0"), b"reno")
        await close_all(client, server)

    async def test_refused(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        number = probe.getsockname()[1]
        probe.close()
        with self.assertRaises(SocketCallError) as caught:
            await sockets.connect(
                reactor, "127.0.0.1", number, "", Collecting(), options=SocketOptions(), timeout=5.0
            )
        self.assertEqual(caught.exception.errno, errno.ECONNREFUSED)
        self.assertEqual(str(caught.exception), "connect: connection refused")

    async def test_listen_in_use(self) -> None:
        port = sockets.listen(
            reactor, "::1", 0, "", Collecting(), options=SocketOptions(), backlog=5
        )
        self.addCleanup(port.stopListening)
        with self.assertRaises(SocketCallError) as caught:
            sockets.listen(
                reactor,
                "::1",
                port.getHost().port,
                "",
                Collecting(),
                options=SocketOptions(),
                backlog=5,
            )
        self.assertEqual(str(caught.exception), "bind: address already in use")
