"""The three admin front doors under the attacks an outside review found.

Each door is started on a ``MemoryReactorClock`` through its service, exactly as the node
builds it, and connections are made in memory (``StringTransport``), so thousands of
requests and minutes of idle time take milliseconds.  The real-socket versions of these
attacks live next to the doors' other real-socket tests.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransportWithDisconnection
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.nodes import remove_tree, short_tempdir
from ygg import config
from ygg.admin import amp as admin_amp
from ygg.admin.json_socket import AdminSocketService
from ygg.admin.limits import Slots, client_of
from ygg.admin.registry import Method, Registry
from ygg.admin.shell import AdminShellService
from ygg.admin.shell.keyfiles import AuthorizedKeysFile
from ygg.links.socks import SOCKS5ClientEndpoint

GET_SELF = b'{"request":"getSelf","keepalive":true}'


def registry() -> Registry:
    r = Registry()
    r.register(Method("getSelf", "Show details about this node", lambda n, a: {"key": "k"}))
    r.register(Method("getTUN", "Show TUN", lambda n, a: {"enabled": False}))
    return r


class Conn:
    """One in-memory connection to a door's factory."""

    def __init__(self, factory: Any, peer: Any) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=peer)
        self.protocol = factory.buildProtocol(peer)
        if self.protocol is None:  # a factory that refuses in buildProtocol
            self.transport.connected = False
            return
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    @property
    def open(self) -> bool:
        return self.protocol is not None and self.transport.connected

    def send(self, data: bytes) -> None:
        if self.open:
            self.protocol.dataReceived(data)

    def received(self) -> bytes:
        return self.transport.value()


def tcp(host: str = "127.0.0.1", port: int = 40000) -> Any:
    return (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)


def listening_factory(service: Any, memory: MemoryReactorClock) -> Any:
    service.startService()
    servers = memory.tcpServers + memory.unixServers
    assert len(servers) == 1, servers
    factory = servers[0][1]
    factory.doStart()
    return factory


class InfoLines:
    """Events at info level or above published while it is installed."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self)
        case.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_level", LogLevel.info) >= LogLevel.info:
            self.events.append(event)

    def texts(self) -> list[str]:
        return [formatEvent(e) for e in self.events]


# --------------------------------------------------------------------------- JSON socket


class JSONSocketAttackTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        service = AdminSocketService(None, registry(), "tcp://127.0.0.1:9001", self.clock)
        self.factory = listening_factory(service, self.clock)

    def connect(self, host: str = "127.0.0.1", port: int = 40000) -> Conn:
        return Conn(self.factory, tcp(host, port))

    def test_pipelined_keepalive_requests(self) -> None:
        """Attack 2: a thousand keepalive requests in one write are all answered, in
        order, on the open connection (they used to recurse until RecursionError)."""
        conn = self.connect()
        conn.send(GET_SELF * 1000)
        self.assertEqual(conn.received().count(b'"status": "success"'), 1000)
        self.assertTrue(conn.open)
        conn.send(b'{"request":"getTUN"}')
        self.assertTrue(conn.received().endswith(b'"enabled": false\n  }\n}\n'))
        self.assertFalse(conn.open)

    def test_replies_wait_for_a_reader(self) -> None:
        """While the transport's write buffer is full (it pauses its producer), no more
        requests are answered and no more input is read; then all are, in order."""
        conn = self.connect()
        self.assertIs(conn.transport.producer, conn.protocol)
        conn.protocol.pauseProducing()
        self.assertEqual(conn.transport.producerState, "paused")
        conn.send(GET_SELF * 10)
        self.assertEqual(conn.received(), b"")
        conn.protocol.resumeProducing()
        self.assertEqual(conn.received().count(b'"status": "success"'), 10)
        self.assertEqual(conn.transport.producerState, "producing")

    def test_idle_connections_do_not_lock_out_a_newcomer(self) -> None:
        """Attack 3: with every place held by an idle connection, a newcomer is still
        answered; the longest-idle connection gives up its place."""
        idle = [self.connect(f"127.0.0.{1 + i % 100}", 40000 + i) for i in range(128)]
        self.clock.advance(1)
        newcomer = self.connect("127.0.1.1")
        newcomer.send(b'{"request":"getTUN"}')
        self.assertIn(b'"enabled": false', newcomer.received())
        self.assertFalse(idle[0].open)
        self.assertTrue(all(conn.open for conn in idle[1:]))

    def test_trickled_bytes_do_not_keep_a_connection(self) -> None:
        """Attack 3: one byte every 200 s is not a request: closed 300 s after the last
        reply (or the connect)."""
        conn = self.connect()
        conn.send(GET_SELF)
        for _ in range(3):
            self.clock.advance(200)
            conn.send(b" ")
        self.assertFalse(conn.open)

    def test_one_client_cannot_take_every_place(self) -> None:
        """Per-client limit: one address holds at most a quarter of the places; its own
        longest-idle connection makes room for its next one."""
        mine = [self.connect("127.0.0.1", 40000 + i) for i in range(200)]
        self.assertEqual(sum(conn.open for conn in mine), 32)
        self.assertTrue(mine[-1].open)
        others = [self.connect(f"127.0.0.{2 + i % 3}", 50000 + i) for i in range(96)]
        self.assertTrue(all(conn.open for conn in others))
        self.assertEqual(sum(conn.open for conn in mine), 32)


# --------------------------------------------------------------------------- AMP


def amp_call(ask: int, method: bytes, arguments: bytes | None = None) -> bytes:
    box = amp.Box({b"_command": b"Call", b"_ask": str(ask).encode(), b"method": method})
    if arguments is not None:
        box[b"arguments"] = arguments
    return box.serialize()


def amp_boxes(data: bytes) -> list[dict[bytes, bytes]]:
    boxes: list[dict[bytes, bytes]] = []
    parser = amp.BinaryBoxProtocol(boxes)  # type: ignore[arg-type]
    parser.boxReceiver = type("R", (), {"ampBoxReceived": boxes.append})()
    parser.dataReceived(data)
    return boxes


class AMPAttackTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        service = admin_amp.AdminAMPService(None, registry(), "tcp:9002", self.clock)
        self.factory = listening_factory(service, self.clock)

    def connect(self, host: str = "127.0.0.1", port: int = 40000) -> Conn:
        return Conn(self.factory, tcp(host, port))

    def test_idle_connections_do_not_lock_out_a_newcomer(self) -> None:
        """Attack 4: 128 connections that never send a byte; a newcomer still gets in."""
        idle = [self.connect(f"127.0.0.{1 + i % 100}", 40000 + i) for i in range(128)]
        self.clock.advance(1)
        newcomer = self.connect("127.0.1.1")
        newcomer.send(amp_call(1, b"getTUN"))
        self.assertEqual(amp_boxes(newcomer.received())[0][b"page"], b'{"enabled":false}')
        self.assertEqual(sum(conn.open for conn in idle), 127)

    def test_idle_connections_time_out(self) -> None:
        """Attack 4: a connection with no command for five minutes is closed."""
        conns = [self.connect(port=40000 + i) for i in range(3)]
        conns[0].send(amp_call(1, b"getTUN"))
        self.clock.advance(299)
        conns[1].send(amp_call(1, b"getTUN"))
        self.clock.advance(2)
        self.assertEqual([conn.open for conn in conns], [False, True, False])

    def test_a_box_that_never_ends(self) -> None:
        """AMP bounds keys and values but not their number: a box is cut at 1 MiB."""
        conn = self.connect()
        pairs = b"".join(amp.Box({b"k%06d" % i: b"v" * 1000}).serialize()[:-2] for i in range(1100))
        conn.send(pairs[: len(pairs) // 2])
        self.assertTrue(conn.open)
        conn.send(pairs[len(pairs) // 2 :])
        self.assertFalse(conn.open)

    def test_deeply_nested_arguments(self) -> None:
        """Attack 4: arguments nested 5000 deep are refused as bad JSON; the connection
        stays open and answers the next call."""
        conn = self.connect()
        conn.send(amp_call(1, b"getTUN", b"[" * 5000 + b"]" * 5000))
        (box,) = amp_boxes(conn.received())
        self.assertEqual(
            (box[b"_error_code"], box[b"_error_description"]),
            (b"ADMIN_ERROR", b"Failed to unmarshal request"),
        )
        conn.send(amp_call(2, b"getTUN"))
        self.assertEqual(amp_boxes(conn.received())[1][b"page"], b'{"enabled":false}')
        self.assertEqual(self.flushLoggedErrors(), [])


# --------------------------------------------------------------------------- SSH


class SSHAttackTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = short_tempdir("yat")
        self.addCleanup(remove_tree, self.dir)
        self.clock = MemoryReactorClock()
        cfg = config.AdminShellConfig(
            listen="tcp:9022",
            host_key_file=f"{self.dir}/host_key",
            authorized_keys_file=f"{self.dir}/authorized_keys",
        )
        Path(cfg.authorized_keys_file).write_bytes(b"")
        service = AdminShellService(None, registry(), cfg, self.clock)
        self.factory = listening_factory(service, self.clock)

    def connect(self, host: str = "127.0.0.1", port: int = 40000) -> Conn:
        conn = Conn(self.factory, tcp(host, port))
        conn.send(b"SSH-2.0-OpenSSH_9.2\r\n")
        return conn

    def test_version_only_connections_time_out_from_accept(self) -> None:
        """Attack 5: the login timeout runs from the TCP accept, not from key exchange."""
        conns = [self.connect(f"127.0.0.{1 + i}") for i in range(20)]
        self.clock.advance(59)
        self.assertTrue(all(conn.open for conn in conns))
        self.clock.advance(1)
        self.assertFalse(any(conn.open for conn in conns))

    def test_version_only_connections_do_not_lock_out_a_login(self) -> None:
        """Attack 5: 40 connections that sent only their version; a newcomer still gets
        its place (the longest-idle of the crowd is closed instead)."""
        crowd = [self.connect(f"127.0.0.{1 + i}", 40000 + i) for i in range(40)]
        self.clock.advance(1)
        newcomer = self.connect("127.0.1.1")
        self.assertTrue(newcomer.open)
        self.assertLessEqual(sum(conn.open for conn in crowd), 31)


# --------------------------------------------------------------------------- logging


class QuietConnectionTests(SynchronousTestCase):
    """Attack 10: a connection that comes and goes logs nothing at info level."""

    def test_amp(self) -> None:
        clock = MemoryReactorClock()
        factory = listening_factory(
            admin_amp.AdminAMPService(None, registry(), "tcp:9002", clock), clock
        )
        lines = InfoLines(self)
        for i in range(3):
            conn = Conn(factory, tcp(port=40000 + i))
            conn.send(amp_call(1, b"getTUN"))
            conn.transport.loseConnection()
        self.assertEqual(lines.texts(), [])

    def test_ssh(self) -> None:
        directory = short_tempdir("yat")
        self.addCleanup(remove_tree, directory)
        clock = MemoryReactorClock()
        cfg = config.AdminShellConfig(
            listen="tcp:9022",
            host_key_file=f"{directory}/host_key",
            authorized_keys_file=f"{directory}/authorized_keys",
        )
        Path(cfg.authorized_keys_file).write_bytes(b"")
        factory = listening_factory(AdminShellService(None, registry(), cfg, clock), clock)
        lines = InfoLines(self)
        for i in range(3):
            conn = Conn(factory, tcp(port=40000 + i))
            conn.send(b"SSH-2.0-OpenSSH_9.2\r\n")
            conn.transport.loseConnection()
        clock.advance(120)
        self.assertEqual(lines.texts(), [])

    def test_socks_dials(self) -> None:
        """The SOCKS client's factory is not noisy ("Starting factory" at every dial)."""
        factories: list[Any] = []

        class Proxy:
            def connect(self, factory: Any) -> Deferred[Any]:
                factories.append(factory)
                return Deferred()

        SOCKS5ClientEndpoint(None, Proxy(), "127.0.0.1", 1).connect(Factory())
        self.assertEqual([f.noisy for f in factories], [False])


class QuietStartTests(TestCase):
    """The JSON socket's start is one line, yggdrasil's; Twisted's own port lines are
    not at info level."""

    def test_unix_socket_start(self) -> Deferred[Any]:
        directory = short_tempdir("yat")
        self.addCleanup(remove_tree, directory)
        lines = InfoLines(self)
        service = AdminSocketService(None, registry(), f"unix://{directory}/a.sock", reactor)
        service.startService()
        self.assertEqual(lines.texts(), [f"UNIX admin socket listening on {directory}/a.sock"])
        return service.stopService()  # type: ignore[return-value]


# --------------------------------------------------------------------------- who is a client


class ClientIdentityTests(SynchronousTestCase):
    def test_unix_peer_is_its_uid(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)

        class Transport:
            def getPeer(self) -> Any:
                return UNIXAddress(None)

            def getHandle(self) -> socket.socket:
                return ours

        self.assertEqual(client_of(Transport()), f"uid {os.geteuid()}")

    def test_tcp_peer_is_its_address(self) -> None:
        transport = StringTransportWithDisconnection(peerAddress=tcp("::1", 5))
        self.assertEqual(client_of(transport), "::1")


# --------------------------------------------------------------------------- the shared helper


class Held:
    def __init__(self, peer: Any, rank: int | None = 0, handle: Any = None) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=peer)
        self.transport.protocol = self
        self.rank = rank
        self.handle = handle
        self.lost = False
        if handle is not None:
            self.transport.getHandle = lambda: handle  # type: ignore[attr-defined]

    def eviction_rank(self) -> int | None:
        return self.rank

    def connectionLost(self, reason: Any) -> None:
        self.lost = True


class SlotsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.slots = Slots("test door", 4, 3, self.clock)

    def admit(self, held: Held) -> bool:
        self.clock.advance(1)
        return self.slots.admit(held)

    def test_closed_peers_go_first(self) -> None:
        """A connection whose peer has already closed is dropped before a live one, even
        one idle for longer: the cap counts live connections only."""
        ours, theirs = socket.socketpair(socket.AF_UNIX)
        self.addCleanup(ours.close)
        live = [Held(tcp(f"10.0.0.{i}")) for i in range(3)]
        gone = Held(tcp("10.0.0.9"), handle=ours)
        for held in [*live, gone]:
            self.assertTrue(self.admit(held))
        theirs.close()
        self.assertTrue(self.admit(Held(tcp("10.0.0.10"))))
        self.assertEqual([h.lost for h in [*live, gone]], [False, False, False, True])

    def test_the_biggest_client_pays(self) -> None:
        crowd = [Held(tcp("10.0.0.1")) for _ in range(3)]
        loner = Held(tcp("10.0.0.2"))
        for held in [loner, *crowd]:  # the loner is the longest idle
            self.assertTrue(self.admit(held))
        self.assertTrue(self.admit(Held(tcp("10.0.0.3"))))
        self.assertEqual([h.lost for h in [loner, *crowd]], [False, True, False, False])

    def test_per_client_limit_closes_its_own(self) -> None:
        others = Held(tcp("10.0.0.2"))
        mine = [Held(tcp("10.0.0.1")) for _ in range(3)]
        for held in [others, *mine]:
            self.assertTrue(self.admit(held))
        self.assertTrue(self.admit(Held(tcp("10.0.0.1"))))
        self.assertEqual([h.lost for h in [others, *mine]], [False, True, False, False])

    def test_lowest_rank_then_longest_idle(self) -> None:
        held = [Held(tcp(f"10.0.0.{i}"), rank=r) for i, r in enumerate((1, 0, 0, None))]
        for h in held:
            self.assertTrue(self.admit(h))
        self.slots.touch(held[1])  # now the most recently active of the rank-0 ones
        self.assertTrue(self.admit(Held(tcp("10.0.0.9"))))
        self.assertEqual([h.lost for h in held], [False, False, True, False])

    def test_busy_connections_stay_and_the_newcomer_is_refused(self) -> None:
        lines = InfoLines(self)
        busy = [Held(tcp(f"10.0.0.{i}"), rank=None) for i in range(4)]
        for h in busy:
            self.assertTrue(self.admit(h))
        for _ in range(5):
            self.assertFalse(self.admit(Held(tcp("10.0.0.9"))))
        self.assertFalse(any(h.lost for h in busy))
        self.assertEqual(lines.texts(), ["test door: refused a connection: all 4 are busy"])
        self.clock.advance(60)
        self.assertFalse(self.admit(Held(tcp("10.0.0.9"))))
        self.assertEqual(
            lines.texts()[1],
            "test door: refused a connection: all 4 are busy (4 more like this not logged)",
        )

    def test_close_all(self) -> None:
        held = [Held(tcp(f"10.0.0.{i}")) for i in range(3)]
        for h in held:
            self.assertTrue(self.admit(h))
        closing = self.slots.close_all()
        self.assertNoResult(closing)
        for h in held:
            self.assertTrue(h.transport.disconnected)
            self.slots.release(h)  # what the protocol's connectionLost does
        self.successResultOf(closing)
        self.assertEqual(len(self.slots), 0)


class AuthorizedKeysLogTests(SynchronousTestCase):
    def test_problems_logged_once_per_change(self) -> None:
        """Anyone can make the shell read the file by offering a key: a bad line is
        reported when the file changes, not at every read."""
        directory = short_tempdir("yat")
        self.addCleanup(remove_tree, directory)
        path = Path(directory, "authorized_keys")
        keys = AuthorizedKeysFile(str(path))
        lines = InfoLines(self)
        for _ in range(3):
            self.assertEqual(keys.getAuthorizedKeys(b"x"), [])
        path.write_bytes(b'from="10.0.0.1" ssh-ed25519 AAAA\n')
        for _ in range(3):
            self.assertEqual(keys.getAuthorizedKeys(b"x"), [])
        self.assertEqual(len(lines.texts()), 2, lines.texts())
