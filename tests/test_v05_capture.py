"""Our v0.5 router in the Go node A's place, fed what B and C sent A (tests/data/v05).

In the capture A (yggdrasil 0.5.12) listened, B (the root) and C (A's child) dialled it.
Here the frames B and C sent are replayed, at their capture times, into a Router holding
A's key, and what our router writes is compared with what the Go node wrote.  Three
things the Go node drew at random or from the wall clock are given to ours: the nonces of
A's signature requests (in A's frames), and the Unix time (notify seqs), so every frame
A sent is reproducible byte for byte — except A's own session traffic and lookups
(A's session layer is not part of the router), and keepalives once that traffic started.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.keys import NodeKey
from ygg.v05.network import wire
from ygg.v05.network.router import Router

#: The Unix time at the first capture's zero: notify seqs 1796496041 at 8.71 s and
#: 1796496043 at 10.43 s pin it to [1796496032.58, 1796496033.29).
BASE = 1796496032.9
TRAFFIC_STARTS = 8.6  # capture seconds: A's own sessions begin here


def body_of(frame: dict) -> bytes:
    raw = bytes.fromhex(frame["raw_hex"])
    _, start = wire.get_uvarint(raw, 0, len(raw), "frame")
    return raw[start:]


class Link:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.written: list[tuple[float, bytes]] = []
        self.closed: str | None = None

    def write_body(self, body: bytes) -> None:
        self.written.append((self.clock.seconds() - BASE, bytes(body)))

    def close(self, reason: str) -> None:
        self.closed = reason


class ReplayTests(SynchronousTestCase):
    def setUp(self) -> None:
        index = load_json("v05/index.json")
        conns = load_json("v05/links.json")
        self.keys = {name: bytes.fromhex(index["public_keys"][name]) for name in "ABC"}
        b_conn, c_conn = conns[0], conns[1]  # B dialled A's password port, C the plain one
        self.from_b, self.to_b = self.directions(b_conn)
        self.from_c, self.to_c = self.directions(c_conn)
        # The two connections' clocks: A's tick sent its root info on both at once.
        self.c_offset = self.first(self.to_b, wire.ANNOUNCE) - self.first(self.to_c, wire.ANNOUNCE)
        # A's nonces, in the order A drew them: its root info, the requests to B and C at
        # link start, then the requests after adopting B (to B, then C).
        ann = wire.decode_body(body_of(self.to_b[3]))
        reqs_b = [wire.decode_body(body_of(f)) for f in self.to_b if f["type"] == wire.SIG_REQ]
        reqs_c = [wire.decode_body(body_of(f)) for f in self.to_c if f["type"] == wire.SIG_REQ]
        nonces = iter(
            [ann.nonce, reqs_b[0].nonce, reqs_c[0].nonce, reqs_b[1].nonce, reqs_c[1].nonce]
        )
        self.delivered: list[tuple[bytes, bytes]] = []
        self.clock = Clock()
        # A's ticks fell at x.550 on B's connection clock: start A's router on one.
        self.clock.advance(BASE + self.first(self.to_b, wire.ANNOUNCE) - 1.0)
        self.router = Router(
            NodeKey(bytes.fromhex(index["private_keys"]["A"])),
            self.clock,
            deliver=lambda source, payload: self.delivered.append((source, payload)),
            nonce=lambda: next(nonces),
        )
        self.run_capture()

    def directions(self, conn: dict) -> tuple[list[dict], list[dict]]:
        by = {d["direction"]: d["frames"] for d in conn["directions"]}
        return by["dialer->listener"], by["listener->dialer"]

    def first(self, frames: list[dict], ptype: int) -> float:
        return next(f["t"] for f in frames if f["type"] == ptype)

    def run_capture(self) -> None:
        # Each link comes up when A wrote its first frame on it (its sigReq: the latency
        # clock starts there); frames the peer sent before wait for that, as in a socket.
        b_up = self.to_b[0]["t"]
        c_up = self.to_c[0]["t"] + self.c_offset
        events = [(b_up, "up", "B", None), (c_up, "up", "C", None)]
        events += [(max(b_up, f["t"]), "frame", "B", body_of(f)) for f in self.from_b]
        events += [
            (max(c_up, f["t"] + self.c_offset), "frame", "C", body_of(f)) for f in self.from_c
        ]
        # C was stopped after its last frame; its link closed then.
        events += [(self.from_c[-1]["t"] + self.c_offset + 0.01, "down", "C", None)]
        events.sort(key=lambda e: (e[0], e[1] != "up"))  # stable: each stream keeps order
        self.links: dict[str, Link] = {}
        self.peers = {}
        for t, what, who, body in events:
            self.clock.advance(BASE + t - self.clock.seconds())
            if what == "up":
                self.links[who] = Link(self.clock)
                self.peers[who] = self.router.add_peer(
                    self.keys[who], self.links[who], 3 if who == "C" else 0
                )  # C dialled with ?priority=3
            elif what == "down":
                self.router.remove_peer(self.peers[who])
            else:
                self.peers[who].handle_body(body)  # raises if our router rejected it
        self.clock.advance(2.0)
        for link in self.links.values():
            self.assertIsNone(link.closed)

    def comparable(self, frames: list[bytes]) -> list[bytes]:
        """A's frames but its own sessions' traffic and lookups."""
        out = []
        for body in frames:
            packet = wire.decode_body(body)
            if (
                isinstance(packet, (wire.Traffic, wire.PathLookup))
                and packet.source == self.keys["A"]
            ):
                continue
            out.append(body)
        return out

    def check_link(self, name: str, go_frames: list[dict]) -> None:
        ours = self.links[name].written
        early_ours = [b for t, b in ours if t < TRAFFIC_STARTS]
        early_go = [body_of(f) for f in go_frames if f["t"] < TRAFFIC_STARTS]
        self.assertEqual(early_ours, early_go)  # every byte, keepalives included
        late_ours = [b for t, b in ours if t >= TRAFFIC_STARTS and b[0] != wire.KEEPALIVE]
        late_go = [
            body_of(f)
            for f in go_frames
            if f["t"] >= TRAFFIC_STARTS and f["type"] != wire.KEEPALIVE
        ]
        self.assertEqual(self.comparable(late_ours), self.comparable(late_go))

    def test_control_and_forwarding_towards_b(self) -> None:
        self.check_link("B", self.to_b)

    def test_control_and_forwarding_towards_c(self) -> None:
        # times on C's link are on C's connection clock
        go = [dict(f, t=f["t"] + self.c_offset) for f in self.to_c]
        self.check_link("C", go)

    def test_link_start_order(self) -> None:
        for name in "BC":
            types = [b[0] for _, b in self.links[name].written[:3]]
            self.assertEqual(types, [wire.SIG_REQ, wire.BLOOM, wire.SIG_RES])

    def test_path_broken_after_c_left(self) -> None:
        broken = [b for _, b in self.links["B"].written if b[0] == wire.PATH_BROKEN]
        self.assertEqual(
            broken[-1], b"\x08\x00\x01" + self.keys["B"] + self.keys["C"]
        )  # `43 08 00 01 ‖ B ‖ C` in the capture

    def test_traffic_for_a_is_delivered(self) -> None:
        sent = [
            wire.decode_body(body_of(f))
            for f in self.from_b + self.from_c
            if f["type"] == wire.TRAFFIC
        ]
        for_a = [(t.source, t.payload) for t in sent if t.dest == self.keys["A"]]
        self.assertTrue(for_a)
        self.assertEqual(sorted(self.delivered), sorted(for_a))

    def test_admin_views_match_go(self) -> None:
        """A's getSelf/getTree/getPeers fields, as the Go node answered (before C left)."""
        # the replay ends after C left; rebuild the view A had at its admin calls
        go_tree = load_json("v05/admin/A.getTree.reply.json")["response"]["tree"]
        ours = {t.key.hex(): (t.parent.hex(), t.sequence) for t in self.router.get_tree()}
        for entry in go_tree:
            self.assertEqual(ours[entry["key"]], (entry["parent"], entry["sequence"]))
        go_peers = load_json("v05/admin/A.getPeers-after-C-left.reply.json")["response"]["peers"]
        peers = self.router.get_peers()
        self.assertEqual(
            [(p.key.hex(), p.port, p.priority, p.cost) for p in peers],
            [(p["key"], p["port"], p["priority"], p["cost"]) for p in go_peers],
        )
        self.assertEqual(self.router.get_self().coords, (1,))
