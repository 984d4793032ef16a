"""v0.5 SessionManagers back to back on one task.Clock (docs/spec-v05.md §6).

Two (or three) managers reach each other through a FIFO queue; the last class runs two of
them over two v0.5 routers linked in memory, as the node will.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg.errors import DecodeError
from ygg.keys import NodeKey, ed25519_public_to_x25519
from ygg.session import crypto, wire
from ygg.v05.network.router import Router
from ygg.v05.session.group import group_secret
from ygg.v05.session.manager import SessionInfo, SessionManager

A = NodeKey.from_seed(b"\x0a" * 32)
B = NodeKey.from_seed(b"\x0b" * 32)
C = NodeKey.from_seed(b"\x0c" * 32)
SEQ = 1_796_496_041
START = SEQ + 0.58


class Mesh:
    """Managers that reach each other through a FIFO queue, like a network that is never
    re-entered; ``pump`` delivers until the queue is empty."""

    def __init__(self, *keys: NodeKey, **kwargs: object) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.queue: deque[tuple[bytes, bytes, bytes]] = deque()
        self.log: list[tuple[bytes, bytes, bytes]] = []
        self.delivered: dict[bytes, list[tuple[bytes, bytes]]] = {k.public: [] for k in keys}
        self.kwargs = kwargs
        self.nodes = {k.public: self.start(k) for k in keys}

    def start(self, key: NodeKey, **kwargs: object) -> SessionManager:
        def send(dest: bytes, payload: bytes) -> None:
            self.queue.append((key.public, dest, payload))

        def deliver(source: bytes, message: bytes) -> None:
            self.delivered[key.public].append((source, message))

        return SessionManager(key, self.clock, send, deliver, **(kwargs or self.kwargs))

    def restart(self, key: NodeKey, **kwargs: object) -> SessionManager:
        self.nodes[key.public].close()
        self.nodes[key.public] = self.start(key, **kwargs)
        return self.nodes[key.public]

    def __getitem__(self, key: NodeKey) -> SessionManager:
        return self.nodes[key.public]

    def pump(self) -> list[tuple[bytes, bytes, bytes]]:
        """Deliver queued packets (and those they cause); return them in order."""
        moved = []
        while self.queue:
            src, dst, data = item = self.queue.popleft()
            moved.append(item)
            self.log.append(item)
            if dst in self.nodes:  # others are lost
                self.nodes[dst].handle_packet(src, data, "link")
        return moved

    def take(self) -> list[tuple[bytes, bytes, bytes]]:
        """Remove and return queued packets without delivering them."""
        taken = list(self.queue)
        self.queue.clear()
        return taken

    def messages(self, key: NodeKey) -> list[bytes]:
        return [message for _, message in self.delivered[key.public]]


def open_init(
    data: bytes, recipient: NodeKey, sender: NodeKey, group: bytes = b""
) -> tuple[int, wire.Init]:
    return wire.decode_init(data, recipient.x25519_private(), sender.public, group)


def make_init(
    sender: NodeKey, recipient: NodeKey, init: wire.Init, signed_by: NodeKey | None = None
) -> bytes:
    return wire.encode_init(
        wire.INIT,
        init,
        crypto.new_key_pair(),
        ed25519_public_to_x25519(recipient.public),
        signed_by or sender,
    )


def header(packet: bytes) -> str:
    return packet[:4].hex()


class MeshTestCase(SynchronousTestCase):
    def mesh(self, *keys: NodeKey, **kwargs: object) -> Mesh:
        mesh = Mesh(*keys, **kwargs)

        def close() -> None:
            for node in mesh.nodes.values():
                node.close()

        self.addCleanup(close)
        return mesh

    def connected(self, *keys: NodeKey, **kwargs: object) -> Mesh:
        """A mesh where the first key has a session with each of the others."""
        mesh = self.mesh(*keys, **kwargs)
        first, *others = keys
        for other in others:
            mesh[first].write_to(other.public, b"hello")
            mesh.pump()
            self.assertEqual(mesh.messages(other), [b"hello"])
        return mesh

    def assertWorks(self, mesh: Mesh, x: NodeKey, y: NodeKey, tries: int = 1) -> None:
        """A message each way arrives (after up to ``tries`` writes a second apart)."""
        for src, dst in ((x, y), (y, x)):
            for attempt in range(tries):
                message = b"check %d" % attempt
                mesh[src].write_to(dst.public, message)
                mesh.pump()
                if mesh.messages(dst)[-1:] == [message]:
                    break
                mesh.clock.advance(1.0)
            else:
                self.fail("no delivery")


class HandshakeTests(MeshTestCase):
    def test_first_message_creates_the_session_both_ways(self) -> None:
        """As captured from 0.5.12 (C to B at 8.68 s): init, ack, ack, buffered message."""
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"\x02\x01")
        packets = mesh.pump()
        self.assertEqual(
            [(src, data[0], len(data)) for src, _, data in packets],
            [(A.public, 1, 193), (B.public, 2, 193), (A.public, 2, 193), (A.public, 3, 54)],
        )
        _, init = open_init(packets[0][2], B, A)
        _, ack_b = open_init(packets[1][2], A, B)
        _, ack_a = open_init(packets[2][2], B, A)
        self.assertEqual((init.key_seq, ack_b.key_seq, ack_a.key_seq), (0, 1, 1))
        self.assertEqual((init.seq, ack_b.seq, ack_a.seq), (SEQ, SEQ, SEQ))
        self.assertEqual(ack_a.current, init.next)
        self.assertEqual(header(packets[3][2]), "03010101")
        self.assertEqual(mesh.delivered[B.public], [(A.public, b"\x02\x01")])
        self.assertEqual([s.key for s in mesh[A].sessions()], [B.public])
        self.assertEqual([s.key for s in mesh[B].sessions()], [A.public])
        self.assertEqual(mesh[A].drops, {})
        self.assertEqual(mesh[B].drops, {"stale-init": 1})  # A's ack, same second
        # B's answer: B ratcheted on A's first packet (next → send), so its header says
        # lks 2, rks 1 — 0.5.12's "03020101" in the capture.
        mesh[B].write_to(A.public, b"\x02\x02reply")
        [(_, _, reply)] = mesh.pump()
        self.assertEqual(header(reply), "03020101")
        self.assertEqual(mesh.messages(A), [b"\x02\x02reply"])

    def test_messages_wait_in_a_buffer_of_one(self) -> None:
        mesh = self.mesh(A, B)
        for message in (b"one", b"two", b"three"):
            mesh[A].write_to(B.public, message)
        inits = mesh.take()
        self.assertEqual([data[0] for _, _, data in inits], [1, 1, 1])
        self.assertEqual(mesh.messages(B), [])
        mesh[B].handle_packet(A.public, inits[-1][2])
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"three"])

    def test_every_write_resends_the_buffer_init(self) -> None:
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"1")
        mesh.clock.advance(30)
        mesh[A].write_to(B.public, b"2")
        mesh.clock.advance(59)  # the buffer lives a minute after the last write
        mesh[A].write_to(B.public, b"3")
        inits = [open_init(data, B, A)[1] for _, _, data in mesh.take()]
        self.assertEqual({(i.current, i.next, i.key_seq) for i in inits}, {(*inits[0][:2], 0)})
        self.assertEqual([i.seq for i in inits], [SEQ, SEQ + 30, SEQ + 89])

    def test_buffer_times_out(self) -> None:
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"never answered")
        [(_, _, first)] = mesh.take()
        mesh.clock.advance(59.9)
        self.assertEqual(len(mesh.clock.getDelayedCalls()), 1)
        mesh.clock.advance(0.1)
        self.assertEqual(mesh.clock.getDelayedCalls(), [])
        mesh[A].write_to(B.public, b"later")
        [(_, _, second)] = mesh.take()
        self.assertNotEqual(open_init(first, B, A)[1].current, open_init(second, B, A)[1].current)
        mesh[B].handle_packet(A.public, second)
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"later"])

    def test_lost_ack_heals_on_the_next_write(self) -> None:
        """B made a session from A's init but its ack was lost: A's next write a second
        later carries a newer seq, which B takes and answers (ygg; 0.5.12 would resend the
        same seq and wait for B's session to time out)."""
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"first")
        [(_, _, init)] = mesh.take()
        mesh[B].handle_packet(A.public, init)
        [(_, _, ack)] = mesh.take()  # lost
        self.assertEqual(ack[0], wire.ACK)
        mesh[A].write_to(B.public, b"second")  # same second: B ignores the same seq
        mesh.pump()
        self.assertEqual(mesh[B].drops["stale-init"], 1)
        mesh.clock.advance(1)
        mesh[A].write_to(B.public, b"third")
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"third"])
        self.assertWorks(mesh, A, B)

    def test_traffic_without_a_session_gets_a_throwaway_init(self) -> None:
        mesh = self.mesh(A, B)
        packet = wire.encode_traffic_header(1, 1, 1) + bytes(50)
        mesh[B].handle_packet(A.public, packet)
        mesh[B].handle_packet(A.public, packet)
        (_, to1, p1), (_, to2, p2) = mesh.take()
        self.assertEqual((to1, to2), (A.public, A.public))
        init1, init2 = open_init(p1, A, B)[1], open_init(p2, A, B)[1]
        self.assertEqual((init1.key_seq, init1.seq), (0, SEQ))
        self.assertNotEqual(init1.current, init2.current)
        self.assertEqual(mesh[B].sessions(), [])
        self.assertEqual(mesh.clock.getDelayedCalls(), [])  # no session, no buffer
        self.assertEqual(mesh[B].drops, {"no-session": 2})

    def test_inits_within_the_same_second_are_ignored(self) -> None:
        mesh = self.mesh(A, B)
        keys = [crypto.new_key_pair().public for _ in range(2)]
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ)))
        [(_, _, ack1)] = mesh.take()
        self.assertEqual(open_init(ack1, A, B)[1].key_seq, 1)
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ)))
        self.assertEqual(mesh.take(), [])
        mesh.clock.advance(1)
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ + 1)))
        [(_, _, ack2)] = mesh.take()
        kind, init = open_init(ack2, A, B)
        self.assertEqual((kind, init.key_seq, init.seq), (wire.ACK, 2, SEQ + 1))
        self.assertEqual(mesh[B].drops, {"stale-init": 1})


class GroupPasswordTests(MeshTestCase):
    def test_secret(self) -> None:
        self.assertEqual(group_secret(None), b"")
        self.assertEqual(group_secret(""), b"")
        expected = hashlib.sha256(b"ironwood/encrypted\x00" + "sécret".encode()).digest()
        self.assertEqual(group_secret("sécret"), expected)
        self.assertEqual(group_secret("sécret".encode()), expected)

    def test_same_password_makes_sessions(self) -> None:
        mesh = self.connected(A, B, group_password="members only")
        self.assertWorks(mesh, A, B)
        init = next(data for src, _, data in mesh.log if data[0] == wire.INIT)
        secret = group_secret("members only")
        self.assertEqual(open_init(init, B, A, secret)[0], wire.INIT)
        with self.assertRaisesRegex(DecodeError, "bad-signature"):
            open_init(init, B, A)  # 0.5.12's check fails: the packet is the same size
        self.assertEqual(len(init), wire.INIT_SIZE)

    def test_other_or_no_password_makes_none(self) -> None:
        for theirs in ("other", None):
            mesh = self.mesh(A, B, group_password="members only")
            mesh.restart(B, group_password=theirs)
            for sender, receiver in ((A, B), (B, A)):
                mesh[sender].write_to(receiver.public, b"hi")
                mesh.pump()
                self.assertEqual(mesh[receiver].drops["bad-signature"], 1)
                self.assertEqual(mesh.messages(receiver), [])
                self.assertEqual(mesh[receiver].sessions(), [])


class TrafficTests(MeshTestCase):
    def test_messages_both_ways(self) -> None:
        mesh = self.connected(A, B)
        for i in range(50):
            mesh[A].write_to(B.public, b"a%d" % i)
            mesh[B].write_to(A.public, b"b%d" % i)
            if i % 3 == 0:
                mesh.pump()
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"hello"] + [b"a%d" % i for i in range(50)])
        self.assertEqual(mesh.messages(A), [b"b%d" % i for i in range(50)])
        mesh.clock.advance(12.5)
        [info] = mesh[A].sessions()
        sent = sum(len(b"a%d" % i) for i in range(50)) + 5
        received = sum(len(b"b%d" % i) for i in range(50))
        self.assertEqual(info, SessionInfo(B.public, received, sent, 12.5))
        self.assertEqual(mesh[A].drops, {})

    def test_keys_ratchet_many_times(self) -> None:
        mesh = self.connected(A, B)
        expected: dict[bytes, list[bytes]] = {A.public: [], B.public: [b"hello"]}
        pattern = [(A, B), (B, A), (A, B), (A, B), (B, A), (B, A), (B, A)]
        key_seqs: set[tuple[bytes, int]] = set()
        for step in range(40):
            mesh.clock.advance(41.0)  # a ratchet is due every other step
            for n in range(step % 4 + 1):
                src, dst = pattern[(step + n) % len(pattern)]
                message = b"%d.%d" % (step, n)
                mesh[src].write_to(dst.public, message)
                expected[dst.public].append(message)
                if n % 2:
                    mesh.pump()
            mesh.pump()
            for src, _, data in mesh.log:
                if data[0] == wire.TRAFFIC:
                    key_seqs.add((src, wire.decode_traffic_header(data)[0]))
        self.assertEqual(mesh.messages(A), expected[A.public])
        self.assertEqual(mesh.messages(B), expected[B.public])
        for key in (A, B):  # each side's keys moved on more than ten times
            self.assertGreater(len({seq for src, seq in key_seqs if src == key.public}), 10)
        self.assertEqual([i.uptime for i in mesh[A].sessions()], [40 * 41.0])
        self.assertEqual(sum(1 for _, _, data in mesh.log if data[0] != wire.TRAFFIC), 3)
        self.assertEqual(mesh[A].drops, {})
        self.assertEqual(mesh[B].drops, {"stale-init": 1})

    def test_within_a_minute_the_next_keys_are_used_without_a_ratchet(self) -> None:
        """0.5.12's capture: B ratchets on C's first packet, C on B's answer; C's later
        packets come on B's next → send case until a minute has passed."""
        mesh = self.connected(A, B)
        mesh[B].write_to(A.public, b"answer")
        [(_, _, answer)] = mesh.pump()
        self.assertEqual(header(answer), "03020101")
        mesh[A].write_to(B.public, b"more")
        mesh[A].write_to(B.public, b"more")
        packets = mesh.pump()
        self.assertEqual([header(p) for _, _, p in packets], ["03020201", "03020202"])
        session = mesh[B]._sessions[A.public]
        self.assertEqual((session.local_key_seq, session.remote_key_seq), (2, 1))
        self.assertEqual(session.next_send_nonce, 2)
        mesh.clock.advance(30)
        mesh[A].write_to(B.public, b"keep")
        [(_, _, keep)] = mesh.pump()
        self.assertEqual(header(keep), "03020203")
        mesh.clock.advance(31)  # B's last ratchet was over a minute ago
        mesh[A].write_to(B.public, b"late")
        [(_, _, late)] = mesh.pump()
        self.assertEqual(header(late), "03020204")
        mesh[B].write_to(A.public, b"late")
        [(_, _, late)] = mesh.pump()
        self.assertEqual(header(late), "03030201")
        self.assertEqual((session.local_key_seq, session.remote_key_seq), (3, 2))
        self.assertEqual(mesh.messages(B)[-1], b"late")
        self.assertEqual(mesh.messages(A)[-1], b"late")

    def test_one_way_traffic_keeps_the_session(self) -> None:
        mesh = self.connected(A, B)
        for i in range(20):
            mesh.clock.advance(45)
            mesh[A].write_to(B.public, b"%d" % i)
            mesh.pump()
        self.assertEqual(mesh.messages(B)[1:], [b"%d" % i for i in range(20)])
        self.assertEqual(len(mesh[B].sessions()), 1)

    def test_sessions_time_out_after_a_minute_idle(self) -> None:
        mesh = self.connected(A, B)
        mesh.clock.advance(59)
        self.assertEqual((len(mesh[A].sessions()), len(mesh[B].sessions())), (1, 1))
        mesh.clock.advance(1)
        self.assertEqual((mesh[A].sessions(), mesh[B].sessions()), ([], []))
        self.assertEqual(mesh.clock.getDelayedCalls(), [])
        mesh[A].write_to(B.public, b"again")
        packets = mesh.pump()
        self.assertEqual([data[0] for _, _, data in packets], [1, 2, 2, 3])
        self.assertEqual(mesh.messages(B), [b"hello", b"again"])

    def test_activity_postpones_the_timeout(self) -> None:
        mesh = self.connected(A, B)
        mesh.clock.advance(50)
        mesh[B].write_to(A.public, b"ping")
        mesh.pump()
        mesh.clock.advance(59)
        self.assertEqual((len(mesh[A].sessions()), len(mesh[B].sessions())), (1, 1))
        mesh.clock.advance(1)
        self.assertEqual((mesh[A].sessions(), mesh[B].sessions()), ([], []))

    def test_update_keeps_the_send_nonce(self) -> None:
        mesh = self.connected(A, B)
        for _ in range(3):
            mesh[A].write_to(B.public, b"more")
        mesh.pump()
        mesh.clock.advance(1)
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(9, 9, 1) + bytes(60))
        mesh.pump()  # B's init: A updates (lks 2) and acks; B updates too
        mesh[A].write_to(B.public, b"after")
        [(_, _, packet)] = mesh.pump()
        self.assertEqual(header(packet), "03020205")
        self.assertEqual(mesh.messages(B)[-1], b"after")

    def test_crossing_inits_give_the_next_recv_case(self) -> None:
        """Both sides update from each other's init in the same second and ignore the
        acks: each has rotated once more than the other knows (§6.6 next → recv)."""
        mesh = self.connected(A, B)
        mesh[B].write_to(A.public, b"answer")
        mesh.pump()  # A ratchets now: the next minute, "next" packets do not ratchet
        mesh.clock.advance(1)
        unknown = wire.encode_traffic_header(9, 9, 1) + bytes(60)
        mesh[A].handle_packet(B.public, unknown)
        mesh[B].handle_packet(A.public, unknown)
        inits = mesh.pump()  # the inits cross, then both acks are stale
        self.assertEqual([data[0] for _, _, data in inits], [1, 1, 2, 2])
        mesh[B].write_to(A.public, b"early")
        mesh[B].write_to(A.public, b"early too")
        packets = mesh.pump()
        self.assertEqual(
            [header(p) for _, _, p in packets], ["03030202", "03030203"]
        )  # the send nonce goes on
        self.assertEqual(mesh.messages(A)[-2:], [b"early", b"early too"])
        mesh[A].handle_packet(B.public, packets[1][2])  # next → recv has its own nonce
        self.assertEqual(mesh[A].drops["replay"], 1)
        self.assertWorks(mesh, A, B, tries=3)

    def test_restart_of_one_side_heals(self) -> None:
        mesh = self.connected(A, B)
        mesh[B].write_to(A.public, b"hi")
        mesh.pump()
        mesh.clock.advance(0.3)
        mesh.restart(B)  # new session keys; A still holds the old session
        mesh[A].write_to(B.public, b"lost")
        mesh.pump()  # B answers with a throw-away init, A updates; B's state is gone
        self.assertEqual(mesh[B].drops["no-session"], 1)
        self.assertWorks(mesh, A, B, tries=5)
        for _ in range(5):
            self.assertWorks(mesh, A, B)
            self.assertWorks(mesh, B, A)
            mesh.clock.advance(25)

    def test_restart_heals_when_only_the_restarted_side_writes(self) -> None:
        mesh = self.connected(A, B)
        mesh.clock.advance(5)
        mesh.restart(A)
        mesh.clock.advance(1)
        self.assertWorks(mesh, A, B, tries=3)


class BadInputTests(MeshTestCase):
    def test_replay_within_the_minute_is_dropped(self) -> None:
        """v0.4 took a replay until the receive nonce moved, once a minute; v0.5 does not."""
        mesh = self.connected(A, B)
        mesh[A].write_to(B.public, b"again")
        [(_, _, packet)] = mesh.pump()
        for _ in range(3):
            mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh.messages(B), [b"hello", b"again"])
        self.assertEqual(mesh[B].drops["replay"], 3)
        self.assertEqual(mesh.take(), [])  # silently: no init is asked for
        self.assertWorks(mesh, A, B)

    def test_replay_of_the_ratcheting_packet(self) -> None:
        mesh = self.connected(A, B)
        hello = mesh.log[-1][2]
        self.assertEqual(header(hello), "03010101")
        mesh[B].handle_packet(A.public, hello)
        self.assertEqual(mesh[B].drops["replay"], 1)
        self.assertEqual(mesh.messages(B), [b"hello"])

    def test_reordered_packets_older_than_the_newest_are_dropped(self) -> None:
        mesh = self.connected(A, B)
        for message in (b"1", b"2", b"3"):
            mesh[A].write_to(B.public, message)
        first, second, third = (data for _, _, data in mesh.take())
        for packet in (first, third, second):
            mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh.messages(B), [b"hello", b"1", b"3"])
        self.assertEqual(mesh[B].drops["replay"], 1)

    def test_replay_on_the_next_send_case(self) -> None:
        mesh = self.connected(A, B)
        mesh[B].write_to(A.public, b"answer")
        mesh.pump()
        mesh[A].write_to(B.public, b"next-send")
        [(_, _, packet)] = mesh.pump()
        self.assertEqual(header(packet), "03020201")
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh[B].drops["replay"], 1)
        self.assertEqual(mesh.messages(B), [b"hello", b"next-send"])

    def test_truncated_packets(self) -> None:
        mesh = self.connected(A, B)
        mesh[A].write_to(B.public, b"payload")
        [(_, _, packet)] = mesh.take()
        mesh[B].handle_packet(A.public, packet[:51])
        mesh[B].handle_packet(A.public, packet[:4])
        mesh[B].handle_packet(A.public, b"")
        self.assertEqual(mesh.take(), [])
        mesh[B].handle_packet(A.public, packet[:-1])  # does not open: B asks for an init
        [(_, _, init)] = mesh.take()
        self.assertEqual(open_init(init, A, B)[0], wire.INIT)
        mesh[A].handle_packet(B.public, init[:192])
        mesh[A].handle_packet(B.public, init + b"\x00")
        self.assertEqual(mesh.take(), [])
        self.assertEqual(mesh[B].drops, {"stale-init": 1, "short": 2, "empty": 1, "open-failed": 1})
        self.assertEqual(mesh[A].drops, {"bad-init": 2})
        mesh[B].handle_packet(A.public, packet)  # the whole packet still opens
        self.assertEqual(mesh.messages(B), [b"hello", b"payload"])
        self.assertWorks(mesh, A, B)

    def test_traffic_for_another_key(self) -> None:
        mesh = self.connected(A, B, C)
        mesh[A].write_to(C.public, b"for C")
        [(_, _, packet)] = mesh.take()
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh[B].drops["open-failed"], 1)
        self.assertEqual(mesh.messages(B), [b"hello"])
        mesh.pump()  # B's init: A updates the session
        mesh.clock.advance(1)
        self.assertWorks(mesh, A, B, tries=3)
        self.assertWorks(mesh, A, C)

    def test_inits_wrongly_keyed_or_signed(self) -> None:
        mesh = self.connected(A, B)
        keys = crypto.new_key_pair().public, crypto.new_key_pair().public
        init = wire.Init(*keys, 0, SEQ + 5)
        mesh[B].handle_packet(A.public, make_init(A, C, init))  # boxed for C
        mesh[B].handle_packet(A.public, make_init(A, B, init, signed_by=C))
        mesh[B].handle_packet(A.public, make_init(C, B, init))  # C's, claimed by A
        self.assertEqual(mesh[B].drops["bad-init"], 1)
        self.assertEqual(mesh[B].drops["bad-signature"], 2)
        self.assertEqual(mesh.take(), [])
        self.assertEqual([s.key for s in mesh[B].sessions()], [A.public])
        self.assertWorks(mesh, A, B)

    def test_unknown_key_sequences_ask_for_an_init(self) -> None:
        mesh = self.connected(A, B)
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(9, 9, 1) + bytes(60))
        self.assertEqual(mesh[B].drops["unknown-keys"], 1)
        [(_, _, init)] = mesh.take()
        self.assertEqual(open_init(init, A, B)[0], wire.INIT)
        self.assertWorks(mesh, A, B)

    def test_unknown_type_dummy_and_bad_varints(self) -> None:
        mesh = self.connected(A, B)
        for kind in (4, 7, 255):
            mesh[B].handle_packet(A.public, bytes([kind]) + bytes(60))
        mesh[B].handle_packet(A.public, b"\x00")
        for bad in (b"\x03" + b"\xff" * 9 + b"\x02", b"\x03\x01\x01" + b"\x80" * 10 + b"\x00"):
            mesh[B].handle_packet(A.public, bad + bytes(60))
        self.assertEqual(mesh[B].drops["bad-type"], 3)
        self.assertEqual(mesh[B].drops["dummy"], 1)
        self.assertEqual(mesh[B].drops["bad-varint"], 2)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_plaintext_shorter_than_a_key(self) -> None:
        mesh = self.connected(A, B)
        session = mesh[A]._sessions[B.public]
        head = wire.encode_traffic_header(session.local_key_seq, session.remote_key_seq, 200)
        packet = head + crypto.seal(bytes(31), 200, session.send_shared)
        self.assertEqual(len(packet), 52)
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh[B].drops["short-plaintext"], 1)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)


def _samples() -> list[bytes]:
    """Real packets of every kind between A and B, made once for the fuzzing below."""
    mesh = Mesh(A, B)
    mesh[A].write_to(B.public, b"hello")
    mesh.pump()
    mesh[B].write_to(A.public, b"answer")
    mesh[A].write_to(B.public, b"more")
    mesh.pump()
    mesh[B].handle_packet(A.public, wire.encode_traffic_header(9, 9, 1) + bytes(60))
    samples = [data for _, _, data in mesh.log + mesh.take()]
    for node in mesh.nodes.values():
        node.close()
    return samples


SAMPLES = _samples()


class FuzzTests(MeshTestCase):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            st.binary(max_size=300),
            st.tuples(
                st.sampled_from(SAMPLES),
                st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=4),
                st.integers(0, 300),
            ),
        ),
        st.sampled_from([A, B, C]),
    )
    def test_random_packets_raise_nothing(self, packet, source: NodeKey) -> None:
        mesh = self.connected(A, B)
        if isinstance(packet, tuple):
            sample, changes, cut = packet
            data = bytearray(sample)
            for where, value in changes:
                data[where % len(data)] = value
            packet = bytes(data[: max(cut, 1)])
        mesh[B].handle_packet(source.public, packet, "link")
        mesh.pump()
        mesh.clock.advance(1)
        self.assertWorks(mesh, A, B, tries=3)

    def test_mangled_stream_never_raises(self) -> None:
        mesh = self.connected(A, B)
        rng = random.Random(5)
        for _ in range(400):
            data = bytearray(rng.choice(SAMPLES))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = data[: rng.randint(0, len(data))] if rng.random() < 0.3 else data
            mesh[rng.choice((A, B))].handle_packet(rng.choice((A, B, C)).public, bytes(data))
            mesh.take()
        self.assertGreater(sum(mesh[A].drops.values()) + sum(mesh[B].drops.values()), 380)
        mesh.clock.advance(1)
        self.assertWorks(mesh, A, B, tries=3)


class LimitsTests(MeshTestCase):
    def test_mtu(self) -> None:
        mesh = self.connected(A, B)
        self.assertEqual(mesh[A].mtu, 130914)  # 130993 - 79, as Go's PacketConn.MTU()
        with self.assertRaisesRegex(ValueError, "oversized message"):
            mesh[A].write_to(B.public, bytes(130915))
        with self.assertRaisesRegex(ValueError, "oversized message"):
            mesh[A].write_to(C.public, bytes(130915))
        mesh[A].write_to(B.public, bytes(130914))
        [(_, _, packet)] = mesh.pump()
        self.assertLessEqual(len(packet), 130993)
        self.assertEqual(mesh.messages(B)[-1], bytes(130914))

    def test_bad_destination(self) -> None:
        mesh = self.mesh(A, B)
        with self.assertRaisesRegex(ValueError, "bad destination address"):
            mesh[A].write_to(B.public[:31], b"x")

    def test_close_cancels_timers(self) -> None:
        mesh = self.connected(A, B)
        mesh[A].write_to(C.public, b"buffered")
        mesh.take()
        self.assertEqual(len(mesh.clock.getDelayedCalls()), 3)
        mesh[A].close()
        mesh[B].close()
        self.assertEqual(mesh.clock.getDelayedCalls(), [])
        with self.assertRaisesRegex(ValueError, "closed"):
            mesh[A].write_to(B.public, b"x")
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(bytes(32), bytes(32), 0, SEQ)))
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(1, 1, 1) + bytes(60))
        self.assertEqual(mesh.take(), [])


class Pipe:
    """One direction of an in-memory link between two routers."""

    def __init__(self, queue: deque) -> None:
        self.queue = queue
        self.target = None

    def write_body(self, body: bytes) -> None:
        self.queue.append((self, bytes(body)))

    def close(self, reason: str) -> None:
        pass


class OverRoutersTests(SynchronousTestCase):
    """Two managers over two v0.5 routers: ``send`` is the router's, which looks the key
    up first; what the router delivers is handed on with the link it came in on."""

    def test_session_over_v05_routers(self) -> None:
        clock = Clock()
        clock.advance(START)
        frames: deque = deque()
        delivered: dict[bytes, list[tuple[bytes, bytes]]] = {A.public: [], B.public: []}
        managers: dict[bytes, SessionManager] = {}
        routers: dict[bytes, Router] = {}
        for key in (A, B):
            rng = random.Random(key.public)
            router = Router(
                key,
                clock,
                deliver=lambda s, p, k=key.public: managers[k].handle_packet(
                    s, p, routers[k].arrival
                ),
                nonce=lambda r=rng: r.getrandbits(64),
            )
            routers[key.public] = router
            managers[key.public] = SessionManager(
                key,
                clock,
                router.send,
                lambda s, m, k=key.public: delivered[k].append((s, m)),
            )
            self.addCleanup(managers[key.public].close)
            self.addCleanup(router.close)
        to_b, to_a = Pipe(frames), Pipe(frames)
        a_side = routers[A.public].add_peer(B.public, to_b)
        b_side = routers[B.public].add_peer(A.public, to_a)
        to_b.target, to_a.target = b_side, a_side

        def run(seconds: float) -> None:
            for _ in range(int(seconds / 0.05)):
                clock.advance(0.05)
                while frames:
                    pipe, body = frames.popleft()
                    pipe.target.handle_body(body)

        run(10.0)  # the tree and the bloom filters settle
        managers[A.public].write_to(B.public, b"\x02over the tree")
        run(1.0)
        self.assertEqual(delivered[B.public], [(A.public, b"\x02over the tree")])
        managers[B.public].write_to(A.public, b"\x02and back")
        run(1.0)
        self.assertEqual(delivered[A.public], [(B.public, b"\x02and back")])
        self.assertEqual(managers[A.public].drops, {})
