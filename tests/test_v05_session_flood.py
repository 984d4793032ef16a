"""Floods of unauthenticated session packets at a v0.5 session manager.

v0.5's session layer shares v0.4's flood defences (the same base manager and budgets), so
the v0.4 flood tests (tests/test_session_flood.py) run again here with the v0.5 manager in
its place: every bound they check must hold as it is.  Then what is v0.5's own: replays of
a genuine packet are dropped before any crypto, and the v0.5 router under a flood.
"""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests import test_session_flood as v04
from ygg.keys import NodeKey
from ygg.session.manager import Limits
from ygg.v05.network import wire as network_wire
from ygg.v05.network.router import Router
from ygg.v05.session import manager as manager_module
from ygg.v05.session.manager import SessionManager


class V05:
    """Mixin: the v0.4 flood tests' nodes get a v0.5 SessionManager."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.patch(v04, "SessionManager", SessionManager)  # type: ignore[attr-defined]


class TrafficFloodTests(V05, v04.TrafficFloodTests):
    pass


class InitFloodTests(V05, v04.InitFloodTests):
    pass


class KnownKeyTests(V05, v04.KnownKeyTests):
    def test_the_nodes_are_v05(self) -> None:
        target = self.node(v04.TARGET)
        self.assertIsInstance(target.manager, SessionManager)
        self.assertEqual(target.manager.mtu, 130914)


class ReplayFloodTests(V05, v04.FloodTestCase):
    def test_replays_cost_no_crypto_and_no_answer(self) -> None:
        """A genuine packet replayed 10,000 times: dropped on its nonce, before the box."""
        target = self.node(v04.TARGET)
        genuine = self.node(v04.GENUINE)
        self.handshake(target, genuine, b"\x02hello")
        genuine.manager.write_to(v04.TARGET.public, b"\x02again")
        [(source, _, packet)] = self.outbox
        self.outbox.clear()
        target.manager.handle_packet(source, packet, v04.GENUINE_LINK)
        opened = []
        real_open = manager_module.open_at

        def counted(*args: object) -> object:
            opened.append(1)
            return real_open(*args)  # type: ignore[arg-type]

        self.patch(manager_module, "open_at", counted)
        target.sent.clear()
        self.flood(target, lambda: (source, packet), 10_000, 0.001)
        self.assertEqual(opened, [])
        self.assertEqual(target.sent, [])
        self.assertEqual(target.manager.drops["replay"], 10_000)
        self.assertEqual(
            target.delivered, [(v04.GENUINE.public, m) for m in (b"\x02hello", b"\x02again")]
        )
        self.handshake(target, genuine, b"\x02still up")
        self.assertEqual(target.delivered[-1], (v04.GENUINE.public, b"\x02still up"))


class Link:
    def write_body(self, body: bytes) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


class RouterFloodTests(SynchronousTestCase):
    """The flood as traffic frames on a link into a v0.5 router with a v0.5 manager."""

    def test_made_up_keys_through_the_router(self) -> None:
        clock = Clock()
        clock.advance(v04.START)
        managers: list[SessionManager] = []
        router = Router(
            v04.TARGET,
            clock,
            deliver=lambda s, p: managers[0].handle_packet(s, p, router.arrival),
        )
        managers.append(SessionManager(v04.TARGET, clock, router.send, lambda s, m: None))
        self.addCleanup(managers[0].close)
        self.addCleanup(router.close)
        attacker = router.add_peer(NodeKey.generate().public, Link())
        other = router.add_peer(NodeKey.generate().public, Link())

        def frame() -> bytes:
            return network_wire.traffic_body(
                (),
                (),
                os.urandom(32),
                v04.TARGET.public,
                network_wire.WATERMARK_NONE,
                v04.bogus_traffic(),
            )

        for _ in range(2000):
            attacker.handle_body(frame())
        drops = managers[0].drops
        answered = 2000 - drops["answer-budget-link"]
        self.assertEqual(drops["no-session"], 2000)
        self.assertEqual(answered, Limits().answers_per_link)
        # The router's send looks each made-up key up: a rumor (held a minute) per answer.
        # Bounded by the answer budget; a send that keeps no state would make it none.
        self.assertEqual(len(router.pathfinder.rumors), answered)
        other.handle_body(frame())  # another link is still answered
        self.assertEqual(2001 - drops["answer-budget-link"], answered + 1)
        self.assertEqual(router.pathfinder.paths, {})
