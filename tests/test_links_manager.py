"""The link layer without sockets: two nodes' Links joined by in-memory transports."""

from __future__ import annotations

import itertools

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import fail
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from ygg.keys import NodeKey
from ygg.links.handshake import encode_meta
from ygg.links.manager import (
    MAX_REDIAL_DELAY,
    Links,
    PersistentPeer,
    tcp_identity,
)
from ygg.links.protocol import HANDSHAKE_TIMEOUT, LinkInfo, LinkProtocol, LinkSpec
from ygg.links.uri import LinkURIError, parse_peer_uri
from ygg.network.router import Router


class Side:
    """One node's Router and Links on a MemoryReactorClock."""

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)
        self.key = NodeKey.generate()
        self.router = Router(self.key, self.reactor, deliver=lambda *a: None)
        self.links = Links(
            self.reactor, self.router, self.key, allowed_public_keys=allowed, jitter=lambda: 0.0
        )
        self.links.startService()

    def protocol(
        self,
        outbound: bool,
        remote: str = "198.51.100.7:1",
        pinned=frozenset(),
        forced: bool = False,
    ) -> LinkProtocol:
        spec = LinkSpec(LinkInfo("tcp", "", remote), f"tcp://{remote}", outbound, 0, pinned, forced)
        return LinkProtocol(self.links, lambda transport: spec)


def pump_pair(client: LinkProtocol, server: LinkProtocol) -> iosim.IOPump:
    return iosim.connect(
        server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client), greet=True
    )


class Captured:
    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self, level: LogLevel = LogLevel.info) -> list[str]:
        """What a node logging at ``level`` would show."""
        return [formatEvent(e) for e in self.events if e["log_level"] >= level]


class HandshakeTests(SynchronousTestCase):
    def test_link_comes_up_both_sides(self) -> None:
        a, b = Side(), Side()
        client, server = a.protocol(True), b.protocol(False)
        pump = pump_pair(client, server)
        pump.flush()
        self.assertEqual(client.remote_key, b.key.public)
        self.assertEqual(server.remote_key, a.key.public)
        self.assertEqual(len(a.router.peers), 1)
        self.assertEqual(len(b.router.peers), 1)
        self.assertEqual(self.successResultOf(client.handshake), client)
        # Tree announcements went across: both know the other's info now.
        for _ in range(5):
            pump.pump()
        self.assertEqual(len(a.router.get_peers()), 1)
        self.assertEqual(a.router.get_self().root, min(a.key.public, b.key.public))
        self.assertGreater(client.bytes_sent, 38)
        self.assertEqual(client.bytes_sent, server.bytes_recvd)

    def test_wrong_version_closes(self) -> None:
        a = Side()
        server = a.protocol(False)
        transport = iosim.FakeTransport(server, isServer=True)
        server.makeConnection(transport)
        server.dataReceived(b"meta\x00\x05" + bytes(32))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(server.closing, "remote node is incompatible version")
        self.assertEqual(a.router.peers, {})

    def test_pinned_key(self) -> None:
        a = Side()
        client = a.protocol(True, pinned=frozenset({b"\x01" * 32}))
        client.makeConnection(iosim.FakeTransport(client, isServer=False))
        client.dataReceived(encode_meta(b"\x02" * 32))
        self.assertEqual(client.closing, "node public key that does not match pinned keys")
        self.failureResultOf(client.handshake)

    def test_allowed_public_keys_inbound_only_and_not_forced(self) -> None:
        allowed = "03" * 32
        a = Side(allowed=(allowed,))
        stranger = encode_meta(b"\x04" * 32)
        server = a.protocol(False)
        server.makeConnection(iosim.FakeTransport(server, isServer=True))
        server.dataReceived(stranger)
        self.assertEqual(
            server.closing, f'node public key "{"04" * 32}" is not in AllowedPublicKeys'
        )
        forced = a.protocol(False, remote="fe80::1", forced=True)
        forced.makeConnection(iosim.FakeTransport(forced, isServer=True))
        forced.dataReceived(stranger)
        self.assertIsNone(forced.closing)
        outbound = a.protocol(True, remote="198.51.100.9:2")
        outbound.makeConnection(iosim.FakeTransport(outbound, isServer=False))
        outbound.dataReceived(encode_meta(b"\x05" * 32))
        self.assertIsNone(outbound.closing)

    def test_silent_peer_dropped_after_six_seconds(self) -> None:
        a = Side()
        server = a.protocol(False)
        transport = iosim.FakeTransport(server, isServer=True)
        server.makeConnection(transport)
        a.reactor.advance(HANDSHAKE_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnecting)
        a.reactor.advance(0.2)
        self.assertEqual(server.closing, "read handshake: i/o timeout")

    def test_duplicate_identity_closed_without_handshake(self) -> None:
        a = Side()
        first = a.protocol(False, remote="fe80::1")
        first.makeConnection(iosim.FakeTransport(first, isServer=True))
        second = a.protocol(False, remote="fe80::1")
        transport = iosim.FakeTransport(second, isServer=True)
        second.makeConnection(transport)
        self.assertEqual(second.closing, "duplicate")
        self.assertEqual(transport.stream, [])  # not even our meta was sent

    def test_bad_frame_closes_with_one_line(self) -> None:
        captured = Captured(self)
        a, b = Side(), Side()
        client, server = a.protocol(True), b.protocol(False)
        pump = pump_pair(client, server)
        pump.flush()
        server.dataReceived(b"\x00\x02\x0b\x00")  # type 11
        pump.flush()
        self.assertEqual(server.closing, "unrecognized packet type 11")
        self.assertEqual(b.router.peers, {})
        lines = [t for t in captured.texts() if "unrecognized packet type" in t]
        self.assertEqual(len(lines), 1)
        self.assertIn("Disconnected inbound TCP", lines[0])


class IdentityTests(SynchronousTestCase):
    def test_tcp_identity(self) -> None:
        self.assertEqual(tcp_identity(None, "192.0.2.1", 5), "192.0.2.1:5")
        self.assertEqual(tcp_identity(None, "2001:db8::1", 5), "[2001:db8::1]:5")
        self.assertEqual(tcp_identity(None, "fe80::1", 5, "eth0"), "fe80::1")
        self.assertEqual(tcp_identity("fe80::1%eth0", "fe80::1", 5, "eth0"), "[fe80::1%eth0]:5")
        self.assertEqual(tcp_identity("127.0.0.1", "127.0.0.1", 7), "127.0.0.1:7")

    def test_addresses_in_logs(self) -> None:
        from ygg.links.protocol import _address_text

        self.assertEqual(_address_text(IPv4Address("TCP", "127.0.0.1", 9)), "127.0.0.1:9")
        self.assertEqual(_address_text(IPv6Address("TCP", "::1", 9)), "[::1]:9")


class PersistentPeerTests(SynchronousTestCase):
    def test_backoff_and_log_once(self) -> None:
        captured = Captured(self)
        a = Side()
        attempts: list[float] = []

        def refuse(uri, interface=""):
            attempts.append(a.reactor.seconds())
            from ygg.links.endpoints import DialError

            return fail(DialError("dial tcp 192.0.2.1:1: connect: connection refused"))

        a.links.dial = refuse  # type: ignore[method-assign]
        peer = PersistentPeer(a.links, parse_peer_uri("tcp://192.0.2.1:1"), "")
        peer.setServiceParent(a.links)
        for _ in range(int(10 * MAX_REDIAL_DELAY)):
            a.reactor.advance(1.0)
        gaps = [round(b - x, 3) for x, b in itertools.pairwise(attempts)]
        self.assertEqual(gaps[:7], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0])
        self.assertTrue(all(g == MAX_REDIAL_DELAY for g in gaps[6:]))
        warnings = [t for t in captured.texts() if "Failed to dial TCP" in t]
        self.assertEqual(len(warnings), 1)
        self.assertIn("retrying with backoff", warnings[0])
        peer.disownServiceParent()
        count = len(attempts)
        a.reactor.advance(10 * MAX_REDIAL_DELAY)
        self.assertEqual(len(attempts), count)

    def test_max_backoff_caps_the_wait(self) -> None:
        """``?maxbackoff=`` (v0.5) moves the cap: down to 30 s, or up past a minute."""
        for text, cap in (("30s", 30.0), ("5m", 300.0)):
            with self.subTest(maxbackoff=text):
                a = Side()
                attempts: list[float] = []

                def refuse(uri, interface="", a=a, attempts=attempts):
                    attempts.append(a.reactor.seconds())
                    return fail(RuntimeError("refused"))

                a.links.dial = refuse  # type: ignore[method-assign]
                a.links.add_peer(f"tcp://192.0.2.1:1?maxbackoff={text}")
                for _ in range(int(6 * cap)):
                    a.reactor.advance(1.0)
                gaps = [round(b - x, 3) for x, b in itertools.pairwise(attempts)]
                expected = [min(cap, 2.0**n) for n in range(len(gaps))]
                self.assertEqual(gaps, expected)
                self.assertEqual(gaps[-1], cap)
                self.flushLoggedErrors(RuntimeError)

    def test_add_remove(self) -> None:
        a = Side()
        a.links.dial = lambda uri, interface="": fail(RuntimeError("no"))  # type: ignore
        a.links.add_peer("tcp://192.0.2.1:1")
        with self.assertRaises(Exception) as caught:
            a.links.add_peer("tcp://192.0.2.1:1")
        self.assertEqual(str(caught.exception), "peer already configured")
        with self.assertRaises(Exception) as caught:
            a.links.remove_peer("tcp://192.0.2.9:1")
        self.assertEqual(str(caught.exception), "peer not configured")
        a.links.remove_peer("tcp://192.0.2.1:1")
        with self.assertRaises(Exception) as caught:
            a.links.add_peer("foo://x")
        self.assertEqual(str(caught.exception), "unknown call scheme: foo")
        self.flushLoggedErrors(RuntimeError)


class ConfiguredPeerTests(SynchronousTestCase):
    """Peers and addPeer entries that cannot work are refused with one clear line; a
    repeated one is used once (as yggdrasil 0.4.7 runs such a file)."""

    LONG_UNIX = "unix:///tmp/" + "s" * 120
    BAD_NAMES = ("tcp://\u202eevil:1", f"tcp://{'a' * 64}:1", f"tls://{'é' * 70}:1")

    def links(self, **kwargs: object) -> Links:
        side = Side()
        return Links(side.reactor, side.router, side.key, **kwargs)  # type: ignore[arg-type]

    def test_duplicate_peers_entry_used_once(self) -> None:
        captured = Captured(self)
        links = self.links(
            peers=("tcp://127.0.0.1:1", "tcp://127.0.0.1:1"),
            interface_peers={"eth9": ("tcp://127.0.0.1:1", "tcp://127.0.0.1:1")},
        )
        self.assertEqual(
            sorted(links.persistent), [("tcp://127.0.0.1:1", ""), ("tcp://127.0.0.1:1", "eth9")]
        )
        warnings = [t for t in captured.texts(LogLevel.warn) if "more than once" in t]
        self.assertEqual(
            warnings,
            [
                "Peer tcp://127.0.0.1:1 is configured more than once; using it once",
                "Peer tcp://127.0.0.1:1 is configured more than once for interface eth9; "
                "using it once",
            ],
        )

    def test_undialable_peers_entries_logged_and_skipped(self) -> None:
        captured = Captured(self)
        links = self.links(peers=(self.LONG_UNIX, *self.BAD_NAMES, "tcp://127.0.0.1:1"))
        self.assertEqual(list(links.persistent), [("tcp://127.0.0.1:1", "")])
        errors = [t for t in captured.texts(LogLevel.error) if t.startswith("Failed to add peer")]
        self.assertEqual(len(errors), 4)
        self.assertEqual(
            errors[0], "Failed to add peer: unix socket path too long: 125 bytes, at most 107"
        )
        self.assertTrue(all("is not a valid domain name" in t for t in errors[1:]), errors)

    def test_add_peer_refuses_through_the_admin_error_path(self) -> None:
        from ygg.admin.methods import add_peer
        from ygg.admin.registry import AdminError

        links = Side().links
        node = type("Node", (), {"links": links})()
        for uri, expected in (
            (self.LONG_UNIX, "unix socket path too long: 125 bytes, at most 107"),
            (self.BAD_NAMES[0], 'host "\\u202eevil" is not a valid domain name'),
        ):
            with self.subTest(uri=uri):
                with self.assertRaises(AdminError) as caught:
                    add_peer(node, {"uri": uri})
                self.assertTrue(str(caught.exception).startswith(expected), str(caught.exception))
        self.assertEqual(links.persistent, {})

    def test_listener_with_a_long_unix_path_is_refused(self) -> None:
        captured = Captured(self)
        links = self.links(listen=(self.LONG_UNIX,))
        links.startService()
        self.addCleanup(links.stopService)
        (line,) = [t for t in captured.texts(LogLevel.error) if "Invalid listener URI" in t]
        self.assertIn("unix socket path too long", line)
        self.assertEqual(links.reactor.unixServers, [])


class QuicVersionTests(SynchronousTestCase):
    """quic links speak v0.5 only; a node without v0.5 refuses quic as 0.4.7 does."""

    def test_quic_links_are_v05_only(self) -> None:
        from tests.test_links_versions import Side as BothSide
        from ygg.links.versions import V04, V05

        links = BothSide((V04, V05)).links
        self.assertEqual(links.link_versions("", "quic"), frozenset((V05,)))
        self.assertEqual(links.link_versions("", "ws"), frozenset((V04, V05)))

    def test_a_v04_node_refuses_quic(self) -> None:
        from tests.test_links_versions import Side as BothSide
        from ygg.links.manager import Listener
        from ygg.links.versions import V04

        captured = Captured(self)
        links = BothSide((V04,)).links
        with self.assertRaises(LinkURIError) as caught:
            links.add_peer("quic://192.0.2.1:1")
        self.assertEqual(str(caught.exception), "unknown call scheme: quic")
        Listener(links, "quic://127.0.0.1:0").setServiceParent(links)
        self.assertIn(
            "Invalid listener URI 'quic://127.0.0.1:0' specified, ignoring "
            '(unrecognised scheme "quic")',
            captured.texts(),
        )
