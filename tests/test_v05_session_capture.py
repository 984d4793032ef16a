"""v0.5 sessions against the capture of three yggdrasil 0.5.12 nodes (tests/data/v05).

In the capture B (root) – A – C exchanged NodeInfo and remote-debug requests: sessions C↔B,
A↔B and C↔A, 32 distinct session packets.  What can be checked from it:

* every init and ack opens with the recipient's key (index.json has all private keys),
  its signature verifies, and a v0.5 manager holding that key takes it;
* the traffic cannot be decrypted: it is boxed with X25519 session keys that each Go
  process drew at random and that never appear on the wire (only their public halves,
  in the inits and acks).  So instead three of our managers, with A's, B's and C's keys,
  are made to write what the Go nodes wrote, when they wrote it (the message lengths come
  from the boxes' sizes); every packet they produce must match the captured one in kind,
  key seqs, seq, nonce and size, the session keys must be reused in the same pattern, and
  the byte counters must equal the Go nodes' getSessions replies.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.session import wire as session_wire
from ygg.v05.network import wire
from ygg.v05.session.group import group_secret
from ygg.v05.session.manager import SessionManager

INDEX = load_json("v05/index.json")
LINKS = load_json("v05/links.json")
KEYS = {name: NodeKey(bytes.fromhex(INDEX["private_keys"][name])) for name in "ABC"}
NAMES = {key.public: name for name, key in KEYS.items()}
#: The Unix time at the capture's zero (as tests/test_v05_capture.py pins it).
BASE = 1796496032.9


def _body(frame: dict[str, Any]) -> bytes:
    raw = bytes.fromhex(frame["raw_hex"])
    _, start = wire.get_uvarint(raw, 0, len(raw), "frame")
    return raw[start:]


def _session_packets() -> list[tuple[float, str, str, bytes]]:
    """(time, source, dest, session packet) of every distinct session packet, in time order.

    A packet forwarded by A is seen on both of A's links: its first sighting counts.  C's
    link has its own clock; it is put on B's by A's root announcement, which A sent on
    both links at once (as tests/test_v05_capture.py does)."""
    by_dir = {}
    for conn in LINKS[:2]:  # B dialled A (connection 1), C dialled A (connection 2)
        for direction in conn["directions"]:
            by_dir[(conn["connection"], direction["direction"])] = direction["frames"]

    def first_announce(frames: list[dict[str, Any]]) -> float:
        return next(f["t"] for f in frames if f["type"] == wire.ANNOUNCE)

    offset = first_announce(by_dir[(1, "listener->dialer")]) - first_announce(
        by_dir[(2, "listener->dialer")]
    )
    seen: dict[bytes, tuple[float, str, str, bytes]] = {}
    for (conn, _), frames in by_dir.items():
        for frame in frames:
            if frame["type"] != wire.TRAFFIC:
                continue
            traffic = wire.decode_body(_body(frame))
            t = frame["t"] + (offset if conn == 2 else 0.0)
            payload = bytes(traffic.payload)
            if payload not in seen or t < seen[payload][0]:
                seen[payload] = (t, NAMES[traffic.source], NAMES[traffic.dest], payload)
    return sorted(seen.values())


PACKETS = _session_packets()


def _describe(payload: bytes, dest: str, source: str) -> tuple:
    """What must be equal between a captured packet and ours (the rest is random)."""
    if payload[0] == session_wire.TRAFFIC:
        lks, rks, nonce, _ = session_wire.decode_traffic_header(payload)
        return ("traffic", lks, rks, nonce, len(payload))
    kind, init = session_wire.decode_init(payload, KEYS[dest].x25519_private(), KEYS[source].public)
    return ("init" if kind == session_wire.INIT else "ack", init.key_seq, init.seq)


def _writes() -> list[tuple[float, str, str, int]]:
    """(time, writer, to, message length) of what the Go nodes wrote.

    Every traffic packet is a write, but the first one after an init of the same pair:
    that message was written with the init, buffered, and sent once the ack came."""
    writes = []
    buffered: dict[tuple[str, str], int] = {}
    for t, source, dest, payload in PACKETS:
        if payload[0] == session_wire.INIT and (source, dest) not in buffered:
            buffered[(source, dest)] = len(writes)
            writes.append([t, source, dest, -1])
        elif payload[0] == session_wire.TRAFFIC:
            _, _, _, offset = session_wire.decode_traffic_header(payload)
            length = len(payload) - offset - 16 - 32  # tag, next key, message
            index = buffered.pop((source, dest), None)
            if index is not None:
                writes[index][3] = length
            else:
                writes.append([t, source, dest, length])
    return [tuple(w) for w in writes]  # type: ignore[misc]


class CapturedHandshakeTests(SynchronousTestCase):
    def test_the_capture_holds_three_sessions(self) -> None:
        pairs = {(s, d) for _, s, d, _ in PACKETS}
        self.assertEqual(
            pairs, {("C", "B"), ("B", "C"), ("A", "B"), ("B", "A"), ("C", "A"), ("A", "C")}
        )
        kinds = [p[0] for _, _, _, p in PACKETS]
        self.assertEqual((kinds.count(1), kinds.count(2), kinds.count(3)), (3, 6, 23))

    def test_inits_and_acks_open_and_verify(self) -> None:
        for _, source, dest, payload in PACKETS:
            if payload[0] == session_wire.TRAFFIC:
                continue
            kind, init = session_wire.decode_init(
                payload, KEYS[dest].x25519_private(), KEYS[source].public
            )
            self.assertEqual(init.key_seq, 0 if kind == session_wire.INIT else 1)
            self.assertIn(init.seq, (1796496041, 1796496043))
            with self.assertRaisesRegex(DecodeError, "bad-signature"):  # no group password
                session_wire.decode_init(
                    payload,
                    KEYS[dest].x25519_private(),
                    KEYS[source].public,
                    group_secret("sesame"),
                )

    def test_our_manager_takes_the_captured_packets(self) -> None:
        """Ours in each Go node's place, fed what the others sent it: every init and ack
        is taken (a session per sender), and answered as Go answers; the traffic was
        boxed for the Go node's session keys, so it does not open and is answered with an
        init — nothing is delivered, nothing raises."""
        for name in "ABC":
            clock = Clock()
            sent: list[tuple[bytes, bytes]] = []
            delivered: list[tuple[bytes, bytes]] = []
            manager = SessionManager(
                KEYS[name],
                clock,
                lambda d, p, sent=sent: sent.append((d, p)),
                lambda s, m, delivered=delivered: delivered.append((s, m)),
            )
            self.addCleanup(manager.close)
            senders = set()
            for t, source, dest, payload in PACKETS:
                if dest != name:
                    continue
                clock.advance(BASE + t - clock.seconds())
                manager.handle_packet(KEYS[source].public, payload, "link")
                senders.add(KEYS[source].public)
            self.assertEqual({s.key for s in manager.sessions()}, senders)
            self.assertEqual(delivered, [])
            drops = manager.drops
            self.assertNotIn("bad-init", drops)
            self.assertNotIn("bad-signature", drops)
            self.assertGreater(drops["open-failed"] + drops["unknown-keys"], 0)
            for dest, payload in sent:  # our answers open for their recipients
                if payload[0] != session_wire.TRAFFIC:
                    _describe(payload, NAMES[dest], name)


class ReproductionTests(SynchronousTestCase):
    def test_our_managers_write_what_go_wrote(self) -> None:
        clock = Clock()
        clock.advance(BASE)
        queue: deque[tuple[str, str, bytes]] = deque()
        ours: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        managers: dict[str, SessionManager] = {}
        delivered: dict[str, list[bytes]] = defaultdict(list)
        for name in "ABC":
            managers[name] = SessionManager(
                KEYS[name],
                clock,
                lambda d, p, n=name: queue.append((n, NAMES[d], p)),
                lambda s, m, n=name: delivered[n].append(m),
            )
            self.addCleanup(managers[name].close)
        getsessions = {  # when each node's getSessions was asked (its uptimes tell)
            name: load_json(f"v05/admin/{name}.getSessions.reply.json")["response"]["sessions"]
            for name in "ABC"
        }
        checked = False
        for t, source, dest, length in _writes():
            if t > 10.3 and not checked:  # between the two rounds of requests
                self.check_counters(managers, getsessions)
                checked = True
            clock.advance(BASE + t - clock.seconds())
            managers[source].write_to(KEYS[dest].public, b"\x02" + bytes(length - 1))
            while queue:
                src, dst, payload = queue.popleft()
                ours[(src, dst)].append(payload)
                managers[dst].handle_packet(KEYS[src].public, payload, "link")
        self.assertTrue(checked)
        captured: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        for _, source, dest, payload in PACKETS:
            captured[(source, dest)].append(payload)
        self.assertEqual(ours.keys(), captured.keys())
        for pair, packets in captured.items():
            self.assertEqual(
                [_describe(p, pair[1], pair[0]) for p in ours[pair]],
                [_describe(p, pair[1], pair[0]) for p in packets],
                pair,
            )
        self.assertEqual(sum(len(v) for v in delivered.values()), len(_writes()))
        drops = sum((m.drops for m in managers.values()), Counter())
        self.assertEqual(drops, {"stale-init": 3})  # each session's second ack, as in Go
        self.check_key_pattern(ours, captured)

    def check_counters(
        self, managers: dict[str, SessionManager], replies: dict[str, list[dict]]
    ) -> None:
        for name, rows in replies.items():
            theirs = {(r["key"], r["bytes_recvd"], r["bytes_sent"]) for r in rows}
            mine = {(s.key.hex(), s.rx, s.tx) for s in managers[name].sessions()}
            self.assertEqual(mine, theirs, name)

    def check_key_pattern(
        self, ours: dict[tuple[str, str], list[bytes]], captured: dict[tuple[str, str], list[bytes]]
    ) -> None:
        """The X25519 keys the inits and acks carry recur in the same places: e.g. C's ack
        carries as current the key its init named next (its buffer's pair)."""
        mapping: dict[bytes, bytes] = {}
        for pair, packets in captured.items():
            for theirs, mine in zip(packets, ours[pair], strict=True):
                if theirs[0] == session_wire.TRAFFIC:
                    continue
                recipient = KEYS[pair[1]].x25519_private()
                sender = KEYS[pair[0]].public
                _, a = session_wire.decode_init(theirs, recipient, sender)
                _, b = session_wire.decode_init(mine, recipient, sender)
                for go_key, our_key in ((a.current, b.current), (a.next, b.next)):
                    self.assertEqual(mapping.setdefault(go_key, our_key), our_key)
        self.assertEqual(len(set(mapping.values())), len(mapping))  # one to one
        self.assertEqual(len(mapping), 15)  # 18 keys sent, 3 of them twice
