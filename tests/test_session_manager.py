"""SessionManagers wired back to back in memory on one task.Clock (spec §12.5–12.7, §18)."""

from __future__ import annotations

import random
from collections import deque

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.keys import NodeKey, ed25519_public_to_x25519
from ygg.session import crypto, wire
from ygg.session.manager import SessionInfo, SessionManager

SESSION = load_json("wire/session.json")
CAPTURE_KEYS = {
    name: NodeKey(bytes.fromhex(node["private_key"])) for name, node in SESSION["nodes"].items()
}
A, B = CAPTURE_KEYS["A"], CAPTURE_KEYS["B"]
C = NodeKey.from_seed(b"\x03" * 32)
SEQ = 1795317363  # the capture's init/ack seq
START = SEQ + 0.487


class Mesh:
    """Managers that reach each other through a FIFO queue, like a network that is never
    re-entered; ``pump`` delivers until the queue is empty."""

    def __init__(self, *keys: NodeKey) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.queue: deque[tuple[bytes, bytes, bytes]] = deque()
        self.log: list[tuple[bytes, bytes, bytes]] = []
        self.delivered: dict[bytes, list[tuple[bytes, bytes]]] = {k.public: [] for k in keys}
        self.nodes = {k.public: self.start(k) for k in keys}

    def start(self, key: NodeKey) -> SessionManager:
        def send(dest: bytes, payload: bytes) -> None:
            self.queue.append((key.public, dest, payload))

        def deliver(source: bytes, message: bytes) -> None:
            self.delivered[key.public].append((source, message))

        return SessionManager(key, self.clock, send, deliver)

    def restart(self, key: NodeKey) -> SessionManager:
        self.nodes[key.public].close()
        self.nodes[key.public] = self.start(key)
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
            self.nodes[dst].handle_packet(src, data)
        return moved

    def take(self) -> list[tuple[bytes, bytes, bytes]]:
        """Remove and return queued packets without delivering them."""
        taken = list(self.queue)
        self.queue.clear()
        return taken

    def messages(self, key: NodeKey) -> list[bytes]:
        return [message for _, message in self.delivered[key.public]]


def open_init(data: bytes, recipient: NodeKey, sender: NodeKey) -> tuple[int, wire.Init]:
    return wire.decode_init(data, recipient.x25519_private(), sender.public)


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
    """The type of an init/ack (the rest is random), the header of traffic."""
    return packet[:4].hex() if packet[0] == wire.TRAFFIC else packet[:1].hex()


class MeshTestCase(SynchronousTestCase):
    def mesh(self, *keys: NodeKey) -> Mesh:
        mesh = Mesh(*keys)

        def close() -> None:
            for node in mesh.nodes.values():
                node.close()

        self.addCleanup(close)
        return mesh

    def connected(self, *keys: NodeKey) -> Mesh:
        """A mesh where the first key has a session with each of the others."""
        mesh = self.mesh(*keys)
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
        self.assertEqual(packets[3][2][:4].hex(), "03010101")
        self.assertEqual(mesh.delivered[B.public], [(A.public, b"\x02\x01")])
        self.assertEqual(mesh.delivered[A.public], [])
        self.assertEqual([s.key for s in mesh[A].sessions()], [B.public])
        self.assertEqual([s.key for s in mesh[B].sessions()], [A.public])
        self.assertEqual(mesh[A].drops, {})
        self.assertEqual(mesh[B].drops, {"stale-init": 1})  # A's ack, same second

    def test_headers_evolve_as_captured(self) -> None:
        """The capture's message order and sizes give the capture's packets (§12.7)."""
        mesh = self.mesh(A, B)
        names = {A.public: "A", B.public: "B"}
        produced = []
        for packet in SESSION["packets"]:
            if packet["type_name"] != "traffic":
                continue
            mesh.clock.advance(max(0.0, START - 9.487 + packet["t"] - mesh.clock.seconds()))
            sender = A if packet["direction"] == "A->B" else B
            receiver = B if sender is A else A
            mesh[sender].write_to(receiver.public, bytes.fromhex(packet["inferred_message"]["hex"]))
            produced += mesh.pump()
        self.assertEqual(
            [(names[src], header(data), len(data)) for src, _, data in produced],
            [
                (p["direction"][0], header(bytes.fromhex(p["raw_hex"])), p["length"])
                for p in SESSION["packets"]
            ],
        )
        for packet, (_, _, data) in zip(SESSION["packets"], produced, strict=True):
            if packet["type_name"] in ("init", "ack"):
                recipient = CAPTURE_KEYS[packet["decryption"]["recipient"]]
                sender = A if recipient is B else B
                _, init = open_init(data, recipient, sender)
                self.assertEqual(init.key_seq, packet["decrypted"]["key_seq"])
                self.assertEqual(init.seq, packet["decrypted"]["seq"])
        checks = SESSION["cross_checks"]
        [a_info] = mesh[A].sessions()
        [b_info] = mesh[B].sessions()
        self.assertEqual((a_info.tx, a_info.rx), (113, 201))
        self.assertEqual((b_info.tx, b_info.rx), (113, 201)[::-1])
        self.assertEqual(checks["getSessions_A"], {"bytes_sent": 113, "bytes_recvd": 201})
        self.assertEqual(mesh[A].drops, {})
        self.assertEqual(mesh[B].drops, {"stale-init": 1})

    def test_only_the_latest_pre_session_message_is_kept(self) -> None:
        mesh = self.mesh(A, B)
        for message in (b"one", b"two", b"three"):
            mesh[A].write_to(B.public, message)
        inits = mesh.take()
        self.assertEqual(len(inits), 3)
        mesh[B].handle_packet(A.public, inits[-1][2])
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"three"])

    def test_every_write_resends_the_buffer_init(self) -> None:
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"1")
        mesh.clock.advance(30)
        mesh[A].write_to(B.public, b"2")
        mesh.clock.advance(59)  # the buffer lives 1 min after the last write
        mesh[A].write_to(B.public, b"3")
        (_, _, p1), (_, _, p2), (_, _, p3) = mesh.take()
        inits = [open_init(p, B, A)[1] for p in (p1, p2, p3)]
        # The same keys each time; the seq is the time of the write (ironwood keeps the
        # first seq, which a remote whose ack was lost would ignore; see design.md).
        self.assertEqual(
            {(i.current, i.next, i.key_seq) for i in inits}, {(inits[0].current, inits[0].next, 0)}
        )
        self.assertEqual([i.seq for i in inits], [SEQ, SEQ + 30, SEQ + 89])
        self.assertEqual(len({p1[1:33], p2[1:33], p3[1:33]}), 3)  # fresh ephemeral keys
        mesh.clock.advance(60)
        mesh[A].write_to(B.public, b"4")
        [(_, _, p4)] = mesh.take()
        init4 = open_init(p4, B, A)[1]
        self.assertNotEqual(init4.current, inits[0].current)
        self.assertEqual(init4.seq, SEQ + 149)
        self.assertEqual(mesh.clock.getDelayedCalls()[0].getTime(), mesh.clock.seconds() + 60)

    def test_lost_ack_heals_on_the_next_write(self) -> None:
        """B made a session from A's init but its ack was lost: A's next write a second
        later carries a newer seq, which B takes and answers, and the message flows."""
        mesh = self.mesh(A, B)
        mesh[A].write_to(B.public, b"first")
        [(_, _, init)] = mesh.take()
        mesh[B].handle_packet(A.public, init)
        mesh.take()  # B's ack, lost
        mesh.clock.advance(1)
        mesh[A].write_to(B.public, b"second")
        mesh.pump()
        self.assertEqual(mesh.messages(B), [b"second"])

    def test_inits_within_the_same_second_are_ignored(self) -> None:
        mesh = self.mesh(A, B)
        keys = [crypto.new_key_pair().public for _ in range(2)]
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ)))
        [(_, _, ack1)] = mesh.take()
        self.assertEqual(open_init(ack1, A, B)[1].key_seq, 1)
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ)))
        self.assertEqual(mesh.take(), [])
        self.assertEqual(mesh[B].drops, {"stale-init": 1})
        mesh.clock.advance(1)
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(*keys, 0, SEQ + 1)))
        [(_, _, ack2)] = mesh.take()
        kind, init = open_init(ack2, A, B)
        self.assertEqual((kind, init.key_seq, init.seq), (wire.ACK, 2, SEQ + 1))

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

    def test_session_lives_across_many_key_rotations(self) -> None:
        mesh = self.connected(A, B)
        expected: dict[bytes, list[bytes]] = {A.public: [], B.public: [b"hello"]}
        pattern = [(A, B), (B, A), (A, B), (A, B), (B, A), (B, A), (B, A)]
        key_seqs = set()
        for step in range(40):
            mesh.clock.advance(41.0)  # rotations are due every other step
            for n in range(step % 4 + 1):
                src, dst = pattern[(step + n) % len(pattern)]
                message = b"%d.%d" % (step, n)
                mesh[src].write_to(dst.public, message)
                expected[dst.public].append(message)
                if n % 2:
                    mesh.pump()
            mesh.pump()
            key_seqs.add(wire.decode_traffic_header(mesh.log[-1][2])[0])
        self.assertEqual(mesh.messages(A), expected[A.public])
        self.assertEqual(mesh.messages(B), expected[B.public])
        self.assertGreater(len(key_seqs), 10)  # keys moved on many times
        self.assertEqual([i.uptime for i in mesh[A].sessions()], [40 * 41.0])
        self.assertEqual([i.uptime for i in mesh[B].sessions()], [40 * 41.0])
        self.assertEqual(sum(1 for _, _, data in mesh.log if data[0] != wire.TRAFFIC), 3)
        self.assertEqual(mesh[A].drops, {})
        self.assertEqual(mesh[B].drops, {"stale-init": 1})

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
        self.assertEqual(len(mesh[A].sessions()), 1)
        self.assertEqual(len(mesh[B].sessions()), 1)
        mesh.clock.advance(1)
        self.assertEqual(mesh[A].sessions(), [])
        self.assertEqual(mesh[B].sessions(), [])
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
        self.assertEqual(len(mesh[A].sessions()), 1)
        self.assertEqual(len(mesh[B].sessions()), 1)
        mesh.clock.advance(1)
        self.assertEqual(mesh[A].sessions(), [])
        self.assertEqual(mesh[B].sessions(), [])

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
        self.assertEqual(packet[:4].hex(), "03020205")
        self.assertEqual(mesh.messages(B)[-1], b"after")

    def test_crossing_inits_give_the_next_recv_case(self) -> None:
        """Both sides update from each other's init in the same second and ignore the acks:
        each has rotated once more than the other knows (§12.6 next→recv)."""
        mesh = self.connected(A, B)
        mesh.clock.advance(1)
        unknown = wire.encode_traffic_header(9, 9, 1) + bytes(60)
        mesh[A].handle_packet(B.public, unknown)
        mesh[B].handle_packet(A.public, unknown)
        inits = mesh.pump()  # the inits cross, then the two acks are stale
        self.assertEqual([data[0] for _, _, data in inits], [1, 1, 2, 2])
        self.assertEqual(mesh[A].drops["stale-init"], 1)
        self.assertEqual(mesh[B].drops["stale-init"], 2)
        mesh[B].write_to(A.public, b"early")
        [(_, _, packet)] = mesh.pump()
        self.assertEqual(packet[:4].hex(), "03030101")  # A: rks 2, lks 2
        self.assertEqual(mesh.messages(A), [b"early"])
        # A's ratchet puts it two key sequences ahead of what B knows: B answers A's next
        # message with an init, which A takes once a new second has begun (as Go does).
        mesh[A].write_to(B.public, b"lost")
        mesh.pump()
        self.assertEqual(mesh[B].drops["unknown-keys"], 2)
        self.assertWorks(mesh, A, B, tries=3)

    def test_restart_of_one_side_heals(self) -> None:
        mesh = self.connected(A, B)
        mesh[B].write_to(A.public, b"hi")
        mesh.pump()
        mesh.clock.advance(0.3)
        mesh.restart(B)
        self.assertWorks(mesh, A, B, tries=5)
        for _ in range(5):
            self.assertWorks(mesh, A, B)
            self.assertWorks(mesh, B, A)
            mesh.clock.advance(25)


class BadInputTests(MeshTestCase):
    def test_replay_after_the_nonce_was_raised(self) -> None:
        mesh = self.connected(A, B)
        mesh.clock.advance(30)
        mesh[A].write_to(B.public, b"first")
        [(_, _, first)] = mesh.pump()
        mesh.clock.advance(31)  # more than a minute since B's last rotation
        mesh[A].write_to(B.public, b"second")
        [(_, _, second)] = mesh.pump()
        self.assertEqual(mesh.messages(B), [b"hello", b"first", b"second"])
        mesh[B].handle_packet(A.public, second)
        mesh[B].handle_packet(A.public, first)
        self.assertEqual(mesh.messages(B), [b"hello", b"first", b"second"])
        self.assertEqual(mesh[B].drops["replay"], 2)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_replay_within_the_minute_is_accepted_like_go(self) -> None:
        mesh = self.connected(A, B)
        mesh[A].write_to(B.public, b"again")
        [(_, _, packet)] = mesh.pump()
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh.messages(B), [b"hello", b"again", b"again"])

    def test_replay_of_the_ratcheting_packet(self) -> None:
        """The ratchet sets recvNonce to the nonce of the packet that caused it."""
        mesh = self.connected(A, B)
        hello = mesh.log[-1][2]
        self.assertEqual(hello[:4].hex(), "03010101")
        mesh[B].handle_packet(A.public, hello)
        self.assertEqual(mesh[B].drops["replay"], 1)
        self.assertEqual(mesh.messages(B), [b"hello"])

    def test_truncated_packets(self) -> None:
        mesh = self.connected(A, B)
        mesh[A].write_to(B.public, b"payload")
        [(_, _, packet)] = mesh.take()
        mesh[B].handle_packet(A.public, packet[:51])
        mesh[B].handle_packet(A.public, packet[:4])
        mesh[B].handle_packet(A.public, b"")
        self.assertEqual(mesh.take(), [])
        mesh[B].handle_packet(A.public, packet[:-1])  # does not open: B sends an init
        [(_, _, init)] = mesh.take()
        self.assertEqual(open_init(init, A, B)[0], wire.INIT)
        mesh[A].handle_packet(B.public, init[:192])
        mesh[A].handle_packet(B.public, init + b"\x00")
        self.assertEqual(mesh.take(), [])
        self.assertEqual(mesh[B].drops, {"stale-init": 1, "short": 2, "empty": 1, "open-failed": 1})
        self.assertEqual(mesh[A].drops, {"bad-init": 2})
        self.assertEqual(mesh.messages(B), [b"hello"])
        self.assertWorks(mesh, A, B)

    def test_unknown_type_and_dummy(self) -> None:
        mesh = self.connected(A, B)
        for kind in (4, 7, 255):
            mesh[B].handle_packet(A.public, bytes([kind]) + bytes(60))
        mesh[B].handle_packet(A.public, b"\x00")
        self.assertEqual(mesh[B].drops["bad-type"], 3)
        self.assertEqual(mesh[B].drops["dummy"], 1)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_traffic_encrypted_for_another_key(self) -> None:
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

    def test_unknown_key_sequence_asks_for_an_init(self) -> None:
        mesh = self.connected(A, B)
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(9, 9, 1) + bytes(60))
        self.assertEqual(mesh[B].drops["unknown-keys"], 1)
        [(_, _, init)] = mesh.take()
        self.assertEqual(open_init(init, A, B)[0], wire.INIT)
        self.assertWorks(mesh, A, B)

    def test_init_with_a_bad_signature(self) -> None:
        mesh = self.connected(A, B)
        keys = crypto.new_key_pair().public, crypto.new_key_pair().public
        init = wire.Init(*keys, 0, SEQ + 5)
        signed = (
            b"\x00" * 32 + keys[0] + keys[1] + (0).to_bytes(8, "big") + (SEQ + 5).to_bytes(8, "big")
        )
        ephemeral = crypto.new_key_pair()
        shared = crypto.precompute(ed25519_public_to_x25519(B.public), ephemeral.private)
        boxed = crypto.seal(A.sign(signed) + signed[32:], 0, shared)  # signed over another E
        mesh[B].handle_packet(A.public, b"\x01" + ephemeral.public + boxed)
        mesh[B].handle_packet(A.public, make_init(A, B, init, signed_by=C))
        self.assertEqual(mesh[B].drops["bad-signature"], 2)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_init_from_the_wrong_source_key(self) -> None:
        mesh = self.connected(A, B)
        keys = crypto.new_key_pair().public, crypto.new_key_pair().public
        packet = make_init(C, B, wire.Init(*keys, 0, SEQ + 5))  # C's valid init, claimed by A
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh[B].drops["bad-signature"], 1)
        self.assertEqual(mesh.take(), [])
        self.assertEqual([s.key for s in mesh[B].sessions()], [A.public])
        self.assertWorks(mesh, A, B)

    def test_overflowing_varints(self) -> None:
        mesh = self.connected(A, B)
        for header in (b"\x03" + b"\xff" * 9 + b"\x02", b"\x03\x01\x01" + b"\x80" * 10 + b"\x00"):
            mesh[B].handle_packet(A.public, header + bytes(60))
        self.assertEqual(mesh[B].drops["bad-varint"], 2)
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_plaintext_shorter_than_a_key(self) -> None:
        """Reachable with a multi-byte header; Go would crash here, we drop."""
        mesh = self.connected(A, B)
        session = mesh[A]._sessions[B.public]
        header = wire.encode_traffic_header(session.local_key_seq, session.remote_key_seq, 200)
        packet = header + crypto.seal(bytes(31), 200, session.send_shared)
        self.assertEqual(len(packet), 52)
        mesh[B].handle_packet(A.public, packet)
        self.assertEqual(mesh[B].drops["short-plaintext"], 1)
        self.assertEqual(mesh.messages(B), [b"hello"])
        self.assertEqual(mesh.take(), [])
        self.assertWorks(mesh, A, B)

    def test_mangled_packets_never_raise(self) -> None:
        mesh = self.connected(A, B)
        mesh.clock.advance(1)
        mesh[A].write_to(B.public, b"traffic")
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(9, 9, 1) + bytes(60))
        samples = [data for _, _, data in mesh.take()]
        samples.append(make_init(A, B, wire.Init(bytes(32), bytes(32), 0, SEQ + 1)))
        rng = random.Random(7)
        for _ in range(400):
            data = bytearray(rng.choice(samples))
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
        self.assertEqual(mesh[A].mtu, 53050)
        self.assertEqual(SessionManager.OVERHEAD, 79)
        self.assertEqual(SessionManager(A, mesh.clock, print, print, network_mtu=1500).mtu, 1421)
        with self.assertRaisesRegex(ValueError, "oversized message"):
            mesh[A].write_to(B.public, bytes(53051))
        with self.assertRaisesRegex(ValueError, "oversized message"):
            mesh[A].write_to(C.public, bytes(53051))
        mesh[A].write_to(B.public, bytes(53050))
        [(_, _, packet)] = mesh.pump()
        self.assertLessEqual(len(packet), 53129)
        self.assertEqual(mesh.messages(B)[-1], bytes(53050))

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
        self.assertEqual(mesh[A].sessions(), [])
        with self.assertRaisesRegex(ValueError, "closed"):
            mesh[A].write_to(B.public, b"x")
        mesh[B].handle_packet(A.public, make_init(A, B, wire.Init(bytes(32), bytes(32), 0, SEQ)))
        mesh[B].handle_packet(A.public, wire.encode_traffic_header(1, 1, 1) + bytes(60))
        self.assertEqual(mesh.take(), [])
        self.assertEqual(mesh.clock.getDelayedCalls(), [])
