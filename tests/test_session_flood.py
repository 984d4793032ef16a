"""Floods of unauthenticated session packets: the work they cause is bounded (issue 14).

The network layer does not authenticate a packet's source key, so anyone can send session
packets "from" fresh random keys.  These tests feed tens of thousands of them straight into
a SessionManager (and through a Core's router) on a task.Clock and count the work that
follows — inits sent, key pairs generated, sessions and route entries held — never seconds.
A genuine peer's session must still come up during the flood.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg.core.core import Core
from ygg.keys import NodeKey, ed25519_public_to_x25519
from ygg.network import wire as network_wire
from ygg.session import crypto, wire
from ygg.session import manager as manager_module
from ygg.session import ratchet as ratchet_module
from ygg.session.manager import Limits, SessionManager

START = 1_700_000_000.25
FLOOD = 20_000
TARGET = NodeKey.from_seed(b"\x07" * 32)
GENUINE = NodeKey.from_seed(b"\x08" * 32)
ATTACK_LINK, GENUINE_LINK = 1, 2


def bogus_traffic() -> bytes:
    """Session traffic as an attacker sends it: a plausible header, random box."""
    return wire.encode_traffic_header(0, 0, 1) + os.urandom(60)


def made_up_init(recipient: NodeKey) -> tuple[bytes, bytes]:
    """(source key, init): a valid init signed by a key made up for it."""
    sender = NodeKey.generate()
    keys = crypto.new_key_pair().public, crypto.new_key_pair().public
    packet = wire.encode_init(
        wire.INIT,
        wire.Init(*keys, 0, int(START)),
        crypto.new_key_pair(),
        ed25519_public_to_x25519(recipient.public),
        sender,
    )
    return sender.public, packet


class Node:
    """A SessionManager whose sends are queued with the link they will arrive on."""

    def __init__(self, key: NodeKey, clock: Clock, outbox: list, **kwargs: object) -> None:
        self.key = key
        self.delivered: list[tuple[bytes, bytes]] = []
        self.sent: list[tuple[bytes, bytes]] = []

        def send(dest: bytes, payload: bytes) -> None:
            self.sent.append((dest, payload))
            outbox.append((key.public, dest, payload))

        self.manager = SessionManager(
            key, clock, send, lambda s, m: self.delivered.append((s, m)), **kwargs
        )

    def inits_sent(self) -> int:
        return sum(1 for _, payload in self.sent if payload[0] in (wire.INIT, wire.ACK))


class FloodTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.outbox: list[tuple[bytes, bytes, bytes]] = []
        self.key_pairs = Counter[str]()
        real = crypto.new_key_pair

        def counted() -> crypto.KeyPair:
            self.key_pairs["made"] += 1
            return real()

        self.patch(manager_module, "new_key_pair", counted)
        self.patch(ratchet_module, "new_key_pair", counted)

    def node(self, key: NodeKey, **kwargs: object) -> Node:
        node = Node(key, self.clock, self.outbox, **kwargs)
        self.addCleanup(node.manager.close)
        return node

    def flood(
        self, target: Node, packets: Callable[[], tuple[bytes, bytes]], count: int, step: float
    ) -> None:
        """``count`` packets from the attack link, ``step`` seconds apart; what the
        target sends back is lost (the made-up keys are nobody's)."""
        handle = target.manager.handle_packet
        for _ in range(count):
            source, data = packets()
            handle(source, data, ATTACK_LINK)
            self.clock.advance(step)
        self.outbox.clear()

    def handshake(self, target: Node, genuine: Node, message: bytes) -> None:
        """``genuine`` writes to ``target`` over its own link; packets are delivered at once
        (no time passes) until both sides are quiet."""
        genuine.manager.write_to(target.key.public, message)
        nodes = {target.key.public: target, genuine.key.public: genuine}
        while self.outbox:
            source, dest, payload = self.outbox.pop(0)
            if dest in nodes:
                nodes[dest].manager.handle_packet(source, payload, GENUINE_LINK)


class TrafficFloodTests(FloodTestCase):
    def test_answers_to_made_up_keys_are_bounded(self) -> None:
        """20,000 traffic packets from fresh keys in 20 s: each would be answered with an
        init (three key pairs, a signature, a box); the link's budget answers 50 a second."""
        target = self.node(TARGET)
        self.flood(target, lambda: (os.urandom(32), bogus_traffic()), FLOOD, 0.001)
        seconds = FLOOD * 0.001
        budget = Limits().answers_per_link * (seconds + 1)
        self.assertLessEqual(target.inits_sent(), budget)
        self.assertGreater(target.inits_sent(), 0)  # strangers are still answered
        self.assertEqual(self.key_pairs["made"], 3 * target.inits_sent())
        self.assertEqual(target.manager.sessions(), [])
        drops = target.manager.drops
        self.assertEqual(drops["no-session"], FLOOD)
        self.assertEqual(drops["answer-budget-link"], FLOOD - target.inits_sent())

    def test_short_and_own_key_traffic_is_not_answered(self) -> None:
        target = self.node(TARGET)
        target.manager.handle_packet(os.urandom(32), bogus_traffic()[:51], ATTACK_LINK)
        target.manager.handle_packet(TARGET.public, bogus_traffic(), ATTACK_LINK)
        self.assertEqual(target.sent, [])
        self.assertEqual(target.manager.drops["short"], 1)
        self.assertEqual(target.manager.drops["own-key"], 1)

    def test_other_links_are_still_answered(self) -> None:
        target = self.node(TARGET)
        self.flood(target, lambda: (os.urandom(32), bogus_traffic()), 5000, 0.0)
        before = target.inits_sent()
        for _ in range(10):
            target.manager.handle_packet(os.urandom(32), bogus_traffic(), GENUINE_LINK)
        self.assertEqual(target.inits_sent(), before + 10)

    def test_shared_budget_bounds_many_links(self) -> None:
        target = self.node(TARGET)
        limits = Limits()
        for link in range(100):
            for _ in range(200):
                target.manager.handle_packet(os.urandom(32), bogus_traffic(), link)
        self.assertEqual(target.inits_sent(), limits.answers)
        self.assertGreater(target.manager.drops["answer-budget-shared"], 0)

    def test_genuine_session_completes_during_the_flood(self) -> None:
        target = self.node(TARGET)
        genuine = self.node(GENUINE)
        self.flood(target, lambda: (os.urandom(32), bogus_traffic()), FLOOD // 2, 0.0005)
        now = self.clock.seconds()
        self.handshake(target, genuine, b"\x02ping")
        self.assertEqual(target.delivered, [(GENUINE.public, b"\x02ping")])
        target.manager.write_to(GENUINE.public, b"\x02pong")
        self.handshake(target, genuine, b"\x02again")
        self.assertEqual(genuine.delivered, [(TARGET.public, b"\x02pong")])
        self.assertEqual(self.clock.seconds(), now)  # within the round trips, no retry
        self.flood(target, lambda: (os.urandom(32), bogus_traffic()), FLOOD // 2, 0.0005)
        self.assertEqual([s.key for s in target.manager.sessions()], [GENUINE.public])


class InitFloodTests(FloodTestCase):
    def test_bogus_inits_are_opened_within_budget(self) -> None:
        """Random 193-byte inits cost an X25519 product each to find out they are bogus."""
        target = self.node(TARGET)
        self.flood(target, lambda: (os.urandom(32), b"\x01" + os.urandom(192)), FLOOD, 0.001)
        drops = target.manager.drops
        opened = drops["bad-init"]
        self.assertLessEqual(opened, Limits().opens_per_link * (FLOOD * 0.001 + 1))
        self.assertEqual(opened + drops["init-budget-link"], FLOOD)
        self.assertEqual(target.sent, [])

    def test_sessions_from_made_up_keys_are_capped(self) -> None:
        target = self.node(TARGET, limits=Limits(pending=64))
        genuine = self.node(GENUINE)
        self.handshake(target, genuine, b"\x02established")
        self.assertEqual(target.delivered, [(GENUINE.public, b"\x02established")])
        inits = [made_up_init(TARGET) for _ in range(300)]
        made = self.key_pairs["made"]
        self.flood(target, iter(inits).__next__, len(inits), 0.02)
        sessions = {s.key for s in target.manager.sessions()}
        self.assertEqual(len(sessions), 64 + 1)
        self.assertIn(GENUINE.public, sessions)  # confirmed: never evicted
        self.assertEqual(target.manager.pending, 64)
        self.assertEqual(target.manager.drops["pending-evicted"], 300 - 64)
        self.assertEqual({source for source, _ in inits[-64:]}, sessions - {GENUINE.public})
        # Each accepted init: three key pairs for the session, one for the ack.
        self.assertEqual(self.key_pairs["made"] - made, 4 * 300)

    def test_eviction_takes_from_the_link_holding_most(self) -> None:
        target = self.node(TARGET, limits=Limits(pending=8))
        for _ in range(8):
            source, init = made_up_init(TARGET)
            target.manager.handle_packet(source, init, ATTACK_LINK)
        other, init = made_up_init(TARGET)
        target.manager.handle_packet(other, init, GENUINE_LINK)
        source, init = made_up_init(TARGET)
        target.manager.handle_packet(source, init, ATTACK_LINK)
        keys = {s.key for s in target.manager.sessions()}
        self.assertIn(other, keys)
        self.assertEqual(len(keys), 8)
        self.assertEqual(target.manager.drops["pending-evicted"], 2)

    def test_pending_sessions_expire_or_become_ours(self) -> None:
        target = self.node(TARGET)
        made = [made_up_init(TARGET) for _ in range(3)]
        for source, init in made:
            target.manager.handle_packet(source, init, ATTACK_LINK)
        self.assertEqual(target.manager.pending, 3)
        self.clock.advance(30.0)
        target.manager.write_to(made[0][0], b"\x02we talk to it")
        self.assertEqual(target.manager.pending, 2)
        self.clock.advance(31.0)
        self.assertEqual(target.manager.pending, 0)
        self.assertEqual([s.key for s in target.manager.sessions()], [made[0][0]])
        target.manager.close()
        self.assertEqual((target.manager.pending, target.manager.sessions()), (0, []))

    def test_genuine_session_completes_during_an_init_flood(self) -> None:
        target = self.node(TARGET)
        genuine = self.node(GENUINE)
        inits = [made_up_init(TARGET) for _ in range(200)]
        self.flood(target, iter(inits).__next__, len(inits), 0.0)  # the link's budget is spent
        self.flood(target, lambda: (os.urandom(32), b"\x01" + os.urandom(192)), 5000, 0.0)
        self.handshake(target, genuine, b"\x02ping")
        self.assertEqual(target.delivered, [(GENUINE.public, b"\x02ping")])

    def test_ack_of_our_own_init_is_taken_while_the_link_budget_is_spent(self) -> None:
        target = self.node(TARGET)
        genuine = self.node(GENUINE)
        self.flood(target, lambda: (os.urandom(32), b"\x01" + os.urandom(192)), 5000, 0.0)
        target.manager.write_to(GENUINE.public, b"\x02hello")
        nodes = {TARGET.public: target, GENUINE.public: genuine}
        while self.outbox:
            source, dest, payload = self.outbox.pop(0)
            nodes[dest].manager.handle_packet(source, payload, ATTACK_LINK)
        self.assertEqual(genuine.delivered, [(TARGET.public, b"\x02hello")])


class KnownKeyTests(FloodTestCase):
    def established(self) -> tuple[Node, Node]:
        target = self.node(TARGET)
        genuine = self.node(GENUINE)
        self.handshake(target, genuine, b"\x02hello")
        self.assertEqual(target.delivered, [(GENUINE.public, b"\x02hello")])
        target.sent.clear()
        return target, genuine

    def test_failed_traffic_is_answered_once_a_second(self) -> None:
        """Forged traffic "from" a peer with a session: an init per second at most (a
        second init in the same second carries the same seq, which the peer ignores)."""
        target, _ = self.established()
        self.flood(target, lambda: (GENUINE.public, bogus_traffic()), 10_000, 0.001)
        self.assertLessEqual(target.inits_sent(), 11)
        drops = target.manager.drops
        self.assertEqual(drops["open-failed"] + drops["unknown-keys"], 10_000)
        self.assertEqual(target.manager.drops["init-throttled"], 10_000 - target.inits_sent())

    def test_forged_inits_from_a_known_key_are_within_budget(self) -> None:
        target, genuine = self.established()
        self.clock.advance(1.0)  # the handshake's ack was opened for free this second
        self.flood(target, lambda: (GENUINE.public, b"\x01" + os.urandom(192)), 10_000, 0.0)
        limits = Limits()
        self.assertEqual(
            target.manager.drops["bad-init"], limits.inits_per_key + limits.opens_per_link
        )
        self.clock.advance(1.0)
        genuine.manager.write_to(TARGET.public, b"\x02still")
        source, _, payload = self.outbox.pop()
        target.manager.handle_packet(source, payload, GENUINE_LINK)
        self.assertEqual(target.delivered[-1], (GENUINE.public, b"\x02still"))


class LinkFrameTests(SynchronousTestCase):
    """The same flood as frames on a link into a Core: the router holds nothing for it."""

    def test_no_route_entries_for_made_up_keys(self) -> None:
        clock = Clock()
        clock.advance(START)
        core = Core(TARGET, clock)
        self.addCleanup(core.close)
        written: list[bytes] = []

        class Link:
            def write_body(self, body: bytes) -> None:
                written.append(body)

            def close(self, reason: str) -> None:
                pass

        attacker = core.router.add_peer(NodeKey.generate().public, Link())
        other = core.router.add_peer(NodeKey.generate().public, Link())
        for _ in range(2000):
            body = network_wire.path_traffic([0], os.urandom(32), TARGET.public, 1, bogus_traffic())
            attacker.handle_body(body)
        drops = core.sessions.drops
        self.assertEqual(drops["no-session"], 2000)
        self.assertEqual(drops["answer-budget-link"], 2000 - Limits().answers_per_link)
        self.assertEqual(core.router.pathfinder.paths, {})
        body = network_wire.path_traffic([0], os.urandom(32), TARGET.public, 1, bogus_traffic())
        other.handle_body(body)
        self.assertEqual(drops["answer-budget-link"], 2000 - Limits().answers_per_link)
        self.assertEqual(drops["no-session"], 2001)
