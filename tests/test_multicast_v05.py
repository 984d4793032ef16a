"""Multicast beacons of both versions without sockets: the v0.5 format against the 0.5.12
capture (tests/data/v05/beacons.json), and which beacons are answered and how."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.config import MulticastInterface
from ygg.links.interfaces import Interface
from ygg.links.multicast import Multicast, _Selected, beacon, beacon05, parse_beacon05
from ygg.links.versions import V04, V05
from ygg.v05.handshake import password_hash

LL = "fe80::1"


class FakeLinks:
    def __init__(self, versions: tuple[str, ...] = (V04, V05)) -> None:
        self.reactor = MemoryReactorClock()
        self.public_key = b"\x01" * 32
        self.versions = frozenset(versions)
        self.calls: list[tuple[str, str, str | None]] = []

    def call(self, uri: str, interface: str = "", speak: str | None = None) -> Deferred[Any]:
        self.calls.append((uri, interface, speak))
        return Deferred()


def multicast(links: FakeLinks, password: str = "", listen: bool = True) -> Multicast:
    entry = MulticastInterface("veth0", True, listen, 0, 2, password)
    m = Multicast(links, (entry,), list_interfaces=lambda: [])  # type: ignore[arg-type]
    m.selected["veth0"] = _Selected(Interface("veth0", 3, 0, (LL,)), entry, LL)
    return m


class FormatTests(SynchronousTestCase):
    def test_ours_byte_for_byte_as_captured(self) -> None:
        for row in load_json("v05/beacons.json"):
            key = bytes.fromhex(row["public_key"])
            digest = password_hash(key, row["password"].encode())
            self.assertEqual(beacon05(key, row["port"], digest).hex(), row["raw_hex"])
            self.assertEqual(
                parse_beacon05(bytes.fromhex(row["raw_hex"])), (key, row["port"], digest)
            )

    def test_not_v05(self) -> None:
        key = b"\x02" * 32
        self.assertIsNone(parse_beacon05(beacon(key, LL, 9001)))  # a v0.4 beacon
        good = beacon05(key, 9001, password_hash(key))
        self.assertIsNone(parse_beacon05(good[:-1]))  # the hash cut short
        self.assertIsNone(parse_beacon05(good[:39]))
        self.assertIsNone(parse_beacon05(b"\x00\x00\x00\x04" + good[4:]))


class AnswerTests(SynchronousTestCase):
    key = b"\x02" * 32

    def test_v05_beacon_dialled_speaking_v05(self) -> None:
        links = FakeLinks()
        m = multicast(links)
        m.received("veth0", beacon05(self.key, 9100, password_hash(self.key)), LL)
        uri = f"tls://[{LL}]:9100/?key={self.key.hex()}&priority=2"
        self.assertEqual(links.calls, [(uri, "veth0", V05)])

    def test_password_must_match(self) -> None:
        links = FakeLinks()
        m = multicast(links, password="se same&")
        m.received("veth0", beacon05(self.key, 9100, password_hash(self.key, b"other")), LL)
        self.assertEqual(links.calls, [])
        m.received("veth0", beacon05(self.key, 9100, password_hash(self.key, b"se same&")), LL)
        ((uri, _, speak),) = links.calls
        self.assertTrue(uri.endswith("&password=se%20same%26"), uri)
        self.assertEqual(speak, V05)

    def test_v04_beacon_dialled_without_forcing_a_version(self) -> None:
        links = FakeLinks()
        m = multicast(links)
        m.received("veth0", beacon(self.key, LL, 9100), LL)
        self.assertEqual(
            links.calls, [(f"tls://[{LL}]:9100/?key={self.key.hex()}&priority=2", "veth0", None)]
        )

    def test_each_version_only_when_enabled(self) -> None:
        v05 = beacon05(self.key, 9100, password_hash(self.key))
        v04 = beacon(self.key, LL, 9100)
        links = FakeLinks((V04,))
        multicast(links).received("veth0", v05, LL)
        self.assertEqual(links.calls, [])
        links = FakeLinks((V05,))
        multicast(links).received("veth0", v04, LL)
        self.assertEqual(links.calls, [])
        links = FakeLinks()
        multicast(links, password="x").received("veth0", v04, LL)  # a password: v0.5 only
        self.assertEqual(links.calls, [])

    def test_own_and_unlistened(self) -> None:
        links = FakeLinks()
        own = links.public_key
        multicast(links).received("veth0", beacon05(own, 9100, password_hash(own)), LL)
        multicast(links, listen=False).received(
            "veth0", beacon05(self.key, 9100, password_hash(self.key)), LL
        )
        multicast(links).received("other0", beacon05(self.key, 9100, password_hash(self.key)), LL)
        self.assertEqual(links.calls, [])
