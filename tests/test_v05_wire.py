"""ironwood v0.5 link frames: the frames captured from yggdrasil 0.5.12, round trips, garbage.

The capture (tests/data/v05/, README there): B (root) – A – C on loopback, B's link with the
password "sesame"; nodeinfo and remote-debug traffic both ways, then C stopped and B sending
to it again (a path-broken frame).  Every frame type but dummy appears.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.address import address_for_key, key_for_address, key_for_subnet, subnet_for_key
from ygg.errors import DecodeError
from ygg.keys import NodeKey, verify
from ygg.session import wire as session_wire
from ygg.v05.network import bloom, wire
from ygg.v05.network.wire import (
    Announce,
    Bloom,
    Dummy,
    FrameError,
    FrameReader,
    KeepAlive,
    PathBroken,
    PathLookup,
    PathNotify,
    PathNotifyInfo,
    SigReq,
    SigRes,
    Traffic,
)

INDEX = load_json("v05/index.json")
LINKS = load_json("v05/links.json")
PRIVATE = {name: NodeKey(bytes.fromhex(k)) for name, k in INDEX["private_keys"].items()}
NAMES = {key.public: name for name, key in PRIVATE.items()}
A, B, C = (PRIVATE[n].public for n in "ABC")
MASKS = {name: bloom.mask(bloom.transform(PRIVATE[name].public)) for name in "ABC"}


class Direction:
    """One direction of a link that came up: who sent it, to whom, and its frame bodies."""

    def __init__(self, conn: dict[str, Any], side: dict[str, Any], other: dict[str, Any]) -> None:
        self.name = f"{conn['connection']} {side['direction']}"
        self.sender = bytes.fromhex(side["meta"]["public_key"])
        self.receiver = bytes.fromhex(other["meta"]["public_key"])
        self.frames = side["frames"]
        self.raw = [bytes.fromhex(f["raw_hex"]) for f in self.frames]
        self.stream = b"".join(self.raw)
        self.bodies = [FrameReader().feed(raw)[0] for raw in self.raw]
        self.packets = [wire.decode_body(body) for body in self.bodies]

    def of_type(self, kind: type) -> list[Any]:
        return [p for p in self.packets if isinstance(p, kind)]

    def route(self) -> str:
        return f"{NAMES[self.sender]}->{NAMES[self.receiver]}"


def directions() -> list[Direction]:
    out = []
    for conn in LINKS:
        sides = conn["directions"]
        if all(side["frames"] for side in sides):
            out.append(Direction(conn, sides[0], sides[1]))
            out.append(Direction(conn, sides[1], sides[0]))
    return out


DIRECTIONS = directions()
ROUTES = {d.route(): d for d in DIRECTIONS}
ALL_BODIES = [body for d in DIRECTIONS for body in d.bodies]


class CapturedFrameTests(SynchronousTestCase):
    def test_links(self) -> None:
        self.assertEqual(sorted(ROUTES), ["A->B", "A->C", "B->A", "C->A"])
        seen = {body[0] for body in ALL_BODIES}
        self.assertEqual(seen, set(range(1, 10)))  # every type but the unused dummy

    def test_frames_are_contiguous(self) -> None:
        for d in DIRECTIONS:
            offset = 123  # right after the 0.5 handshake
            for frame, raw in zip(d.frames, d.raw, strict=True):
                self.assertEqual(frame["offset"], offset, d.name)
                offset += len(raw)

    def test_stream_splits_in_any_chunks(self) -> None:
        rng = random.Random(5)
        for d in DIRECTIONS:
            reader = FrameReader()
            bodies: list[bytes] = []
            pos = 0
            while pos < len(d.stream):
                step = rng.choice((1, 2, 3, 7, 64, 300, 5000))
                bodies += reader.feed(d.stream[pos : pos + step])
                pos += step
            self.assertEqual(bodies, d.bodies, d.name)
            self.assertEqual(reader.pending(), 0)
            self.assertEqual([wire.frame(b) for b in bodies], d.raw)

    def test_decode_reencode(self) -> None:
        for body in ALL_BODIES:
            packet = wire.decode_body(body)
            self.assertEqual(packet.TYPE, body[0])
            self.assertEqual(wire.encode_body(packet), body)

    def test_fields_match_the_dump(self) -> None:
        for d in DIRECTIONS:
            for frame, packet in zip(d.frames, d.packets, strict=True):
                fields = frame["fields"]
                for name in ("seq", "nonce", "port", "watermark"):
                    if name in fields:
                        self.assertEqual(getattr(packet, name), fields[name])
                for name in ("key", "parent", "source", "dest"):
                    if name in fields:
                        self.assertEqual(getattr(packet, name).hex(), fields[name])

    def test_signatures(self) -> None:
        checked = 0
        for d in DIRECTIONS:
            for packet in d.packets:
                if isinstance(packet, SigRes):
                    self.assertTrue(packet.check(d.receiver, d.sender, verify))
                    self.assertFalse(packet.check(d.sender, d.receiver, verify))
                    checked += 1
                elif isinstance(packet, Announce):
                    self.assertTrue(packet.check(verify))
                    self.assertEqual(packet.port == 0, packet.is_root())
                    bad = Announce(packet.key, packet.parent, packet.seq + 1, *_tail(packet))
                    self.assertFalse(bad.check(verify))
                    checked += 1
                elif isinstance(packet, PathNotify):
                    self.assertTrue(packet.check(verify))
                    self.assertFalse(packet.with_watermark(0).check(lambda *a: False))
                    checked += 1
        self.assertEqual(checked, 23)

    def test_link_start(self) -> None:
        """Each side opens with sigReq, an empty bloom, then the answer to the peer's sigReq."""
        for d in DIRECTIONS:
            self.assertEqual(
                [p.TYPE for p in d.packets[:3]], [wire.SIG_REQ, wire.BLOOM, wire.SIG_RES]
            )
            self.assertEqual(d.packets[1], Bloom(0))
            peer = ROUTES[f"{NAMES[d.receiver]}->{NAMES[d.sender]}"]
            self.assertEqual(d.packets[2].req, peer.packets[0])

    def test_ports(self) -> None:
        """A gave B port 1 and C port 2; B and C each gave A port 1."""
        expected = {"A->B": 1, "A->C": 2, "B->A": 1, "C->A": 1}
        for route, port in expected.items():
            self.assertEqual({r.port for r in ROUTES[route].of_type(SigRes)}, {port}, route)

    def test_tree(self) -> None:
        """B is the root (smallest key); A's parent is B, C's parent is A."""
        self.assertLess(B, C)
        self.assertLess(C, A)
        announced = {(a.key, a.parent) for d in DIRECTIONS for a in d.of_type(Announce)}
        self.assertIn((B, B), announced)
        self.assertIn((A, B), announced)
        self.assertIn((C, A), announced)
        # B never hears of C: a node learns only its own and its peers' ancestries.
        self.assertNotIn(C, {a.key for a in ROUTES["A->B"].of_type(Announce)})
        for d in DIRECTIONS:
            for a in d.of_type(Announce):
                # A root signs the same bytes twice (as child and as parent): same signature.
                self.assertEqual(a.sig == a.psig, a.is_root())
                if a.is_root():
                    self.assertEqual((a.seq, a.port), (1, 0))
                else:
                    self.assertEqual(a.seq, 2)  # self seq + 1 when the request was made

    def test_blooms_hold_the_transformed_keys(self) -> None:
        """A filter is the sender's own key plus what its other on-tree peers sent it."""
        for d in DIRECTIONS:
            for packet in d.of_type(Bloom):
                members = [n for n, m in MASKS.items() if packet.bits & m == m]
                union = functools.reduce(lambda bits, n: bits | MASKS[n], members, 0)
                self.assertEqual(packet.bits, union, d.name)
        last = {route: d.of_type(Bloom)[-1].bits for route, d in ROUTES.items()}
        self.assertEqual(last["B->A"], MASKS["B"])
        self.assertEqual(last["C->A"], MASKS["C"])
        self.assertEqual(last["A->B"], MASKS["A"] | MASKS["C"])
        self.assertEqual(last["A->C"], MASKS["A"] | MASKS["B"])

    def test_sessions_inside_traffic(self) -> None:
        """v0.5's session init/ack are v0.4's: ygg.session.wire opens them."""
        opened = 0
        for d in DIRECTIONS:
            for tr in d.of_type(Traffic):
                self.assertEqual(tr.source in (A, B, C), True)
                kind = tr.payload[0]
                if kind in (session_wire.INIT, session_wire.ACK):
                    private = PRIVATE[NAMES[tr.dest]].x25519_private()
                    got, init = session_wire.decode_init(tr.payload, private, tr.source)
                    self.assertEqual(got, kind)
                    self.assertEqual(init.key_seq, 0 if kind == session_wire.INIT else 1)
                    opened += 1
                else:
                    self.assertEqual(kind, session_wire.TRAFFIC)
                    session_wire.decode_traffic_header(tr.payload)
        self.assertGreaterEqual(opened, 10)

    def test_forwarding_reencodes_like_go(self) -> None:
        """A forwards B's traffic to C with the watermark lowered to its own distance."""
        into_a = [tr for tr in ROUTES["B->A"].of_type(Traffic) if tr.dest == C]
        out_of_a = {tr.payload: tr for tr in ROUTES["A->C"].of_type(Traffic) if tr.source == B}
        # The last one was sent after C had left: A answered with a path-broken instead.
        self.assertNotIn(into_a[-1].payload, out_of_a)
        self.assertGreater(len(into_a), 1)
        for tr in into_a[:-1]:
            forwarded = out_of_a[tr.payload]
            self.assertEqual((tr.watermark, forwarded.watermark), (2, 1))
            body = wire.encode_body(tr)
            header = wire.traffic_header(body)
            self.assertEqual(wire.reroute_traffic(body, header, 1), wire.encode_body(forwarded))

    def test_lookups_are_forwarded_unchanged(self) -> None:
        from_c = {wire.encode_body(p) for p in ROUTES["C->A"].of_type(PathLookup) if p.dest == B}
        to_b = {wire.encode_body(p) for p in ROUTES["A->B"].of_type(PathLookup) if p.source == C}
        self.assertTrue(from_c)
        self.assertEqual(from_c, to_b)

    def test_path_broken(self) -> None:
        [broken] = [p for d in DIRECTIONS for p in d.of_type(PathBroken)]
        self.assertEqual((broken.source, broken.dest, broken.path), (B, C, ()))
        sent = [tr for tr in ROUTES["B->A"].of_type(Traffic) if tr.dest == C]
        self.assertEqual(sent[-1].from_path, broken.path)

    def test_traffic_header(self) -> None:
        for d in DIRECTIONS:
            for body, packet in zip(d.bodies, d.packets, strict=True):
                if isinstance(packet, Traffic):
                    h = wire.traffic_header(body)
                    self.assertEqual(
                        (h.path, h.from_path, h.source, h.dest, h.watermark),
                        (
                            packet.path,
                            packet.from_path,
                            packet.source,
                            packet.dest,
                            packet.watermark,
                        ),
                    )
                    self.assertEqual(body[h.payload_offset :], packet.payload)

    def test_keepalive(self) -> None:
        keepalives = [wire.frame(body) for body in ALL_BODIES if body[0] == wire.KEEPALIVE]
        self.assertEqual(len(keepalives), 7)
        self.assertEqual(set(keepalives), {wire.KEEPALIVE_FRAME})

    def test_truncated_bodies(self) -> None:
        for body in ALL_BODIES:
            for cut in range(1, len(body)):
                try:
                    packet = wire.decode_body(body[:cut])
                except DecodeError:
                    continue
                # Only these may end anywhere: their last field is "the rest".
                self.assertIn(packet.TYPE, (wire.DUMMY, wire.KEEPALIVE, wire.TRAFFIC))

    def test_extra_bytes(self) -> None:
        for body in ALL_BODIES:
            if body[0] in (wire.DUMMY, wire.KEEPALIVE, wire.TRAFFIC):
                continue
            with self.assertRaises(DecodeError):
                wire.decode_body(body + b"\x00")


def _tail(a: Announce) -> tuple[int, int, bytes, bytes]:
    return a.nonce, a.port, a.psig, a.sig


class VarintTests(SynchronousTestCase):
    VECTORS = {
        0: "00",
        1: "01",
        127: "7f",
        128: "8001",
        300: "ac02",
        16384: "808001",
        2**64 - 1: "ffffffffffffffffff01",
    }

    def test_vectors(self) -> None:
        for value, hexed in self.VECTORS.items():
            self.assertEqual(wire.put_uvarint(value).hex(), hexed)
            raw = bytes.fromhex(hexed)
            self.assertEqual(wire.get_uvarint(raw, 0, len(raw), "t"), (value, len(raw)))

    def test_non_minimal_accepted(self) -> None:
        self.assertEqual(wire.get_uvarint(b"\x81\x00", 0, 2, "t"), (1, 2))
        self.assertEqual(SigReq.decode(b"\x81\x00\x80\x00"), SigReq(1, 0))

    def test_strict(self) -> None:
        for raw in (b"", b"\x80", b"\xff" * 9, b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x02"):
            with self.subTest(raw=raw.hex()), self.assertRaises(DecodeError):
                wire.get_uvarint(raw, 0, len(raw), "t")

    def test_out_of_range(self) -> None:
        for value in (-1, 2**64):
            with self.assertRaises(ValueError):
                wire.put_uvarint(value)

    def test_paths(self) -> None:
        self.assertEqual(wire.put_path(()), b"\x00")
        self.assertEqual(wire.put_path((1, 300)), b"\x01\xac\x02\x00")
        self.assertEqual(wire.get_path(b"\x01\xac\x02\x00xx", 0, 6, "t"), ((1, 300), 4))
        with self.assertRaises(ValueError):
            wire.put_path((1, 0))
        for raw in (b"", b"\x01\x02", b"\x01\x80"):
            with self.assertRaises(DecodeError):
                wire.get_path(raw, 0, len(raw), "t")


class FrameTests(SynchronousTestCase):
    def test_frame(self) -> None:
        self.assertEqual(wire.frame(b"\x01"), wire.KEEPALIVE_FRAME)
        self.assertEqual(wire.frame(b"x" * 200)[:2], b"\xc8\x01")
        for bad in (b"", b"x" * (wire.MAX_MESSAGE_SIZE + 1)):
            with self.assertRaises(ValueError):
                wire.frame(bad)

    def test_non_minimal_length(self) -> None:
        self.assertEqual(FrameReader().feed(b"\x81\x00\x01"), [b"\x01"])

    def test_errors(self) -> None:
        cases = {
            b"\x00": "empty message",
            b"\x80\x80\x09": "oversized message",  # 147456 > 131070
            b"\xff" * 10 + b"\x01": "binary: varint overflows a 64-bit integer",
        }
        for data, text in cases.items():
            reader = FrameReader()
            with self.assertRaises(FrameError) as caught:
                reader.feed(wire.KEEPALIVE_FRAME + data)
            self.assertEqual(str(caught.exception), text)
            self.assertEqual(caught.exception.bodies, [b"\x01"])
            with self.assertRaises(FrameError):
                reader.feed(wire.KEEPALIVE_FRAME)

    def test_limit_is_configurable(self) -> None:
        big = wire.frame(b"x" * 1000)
        self.assertEqual(FrameReader(1000).feed(big), [b"x" * 1000])
        with self.assertRaises(FrameError):
            FrameReader(999).feed(big)

    def test_pending_is_bounded(self) -> None:
        reader = FrameReader()
        reader.feed(wire.put_uvarint(wire.MAX_MESSAGE_SIZE))
        for _ in range(10):
            reader.feed(b"x" * 10000)
        self.assertLessEqual(reader.pending(), wire.MAX_MESSAGE_SIZE + 10)
        self.assertEqual(len(reader.feed(b"x" * (wire.MAX_MESSAGE_SIZE - 100000))), 1)
        self.assertEqual(reader.pending(), 0)

    def test_constants(self) -> None:
        self.assertEqual(wire.MAX_MESSAGE_SIZE, 65535 * 2)
        self.assertEqual(wire.NETWORK_MTU, 130993)
        self.assertEqual(len(Traffic((), (), A, B, wire.WATERMARK_NONE, b"").encode()) + 1, 77)
        self.assertEqual([wire.DUMMY, wire.KEEPALIVE, wire.SIG_REQ, wire.TRAFFIC], [0, 1, 2, 9])


class BloomWireTests(SynchronousTestCase):
    def test_sizes(self) -> None:
        self.assertEqual(len(Bloom(0).encode()), 32)
        self.assertEqual(len(Bloom((1 << 8192) - 1).encode()), 32)
        mixed = Bloom.from_words([5] * 128)
        self.assertEqual(len(mixed.encode()), 32 + 128 * 8)
        self.assertEqual(Bloom.decode(mixed.encode()), mixed)

    def test_bit_order(self) -> None:
        """Filter bit i is bit i % 64 of word i // 64; a map bit is 0x80 >> word % 8."""
        encoded = Bloom(1 << 65).encode()
        self.assertEqual(encoded[0], 0xBF)  # words 0 and 2-7 all zero, word 1 is not
        self.assertEqual(encoded[32:], (2).to_bytes(8, "big"))

    def test_errors(self) -> None:
        flags = bytearray(32)
        flags[0] = flags[16] = 0x80
        cases = [
            bytes(31),
            bytes(flags) + bytes(127 * 8),  # word 0 flagged twice
            bytes(32),  # no flags: 128 words needed
            b"\xff" * 16 + bytes(16) + b"x",  # a word too many
        ]
        for data in cases:
            with self.assertRaises(DecodeError):
                Bloom.decode(data)

    def test_refuses_out_of_range(self) -> None:
        for bits in (-1, 1 << 8192):
            with self.assertRaises(ValueError):
                Bloom(bits)


class BloomHashTests(SynchronousTestCase):
    def test_murmur3(self) -> None:
        self.assertEqual(bloom.murmur3_128(b""), (0, 0))
        self.assertEqual(bloom.murmur3_128(b"hello"), (0xCBD8A7B341BD9B02, 0x5B1E906A48AE1D19))

    def test_locations(self) -> None:
        key = bloom.transform(A)
        self.assertEqual(key.hex(), "db995fe25169" + "ff" * 26)
        self.assertEqual(bloom.locations(key), (2625, 6244, 2781, 5536, 1785, 6556, 3093, 4696))
        bits = bloom.add(0, key)
        self.assertTrue(bloom.contains(bits, key))
        self.assertFalse(bloom.contains(bits, bloom.transform(B)))

    @given(st.binary(min_size=32, max_size=32))
    def test_lookups_by_address_match(self, key: bytes) -> None:
        """Why 0.5 needs no key lookup protocol: a node's address or subnet, turned into a
        partial key and transformed, is the very value the node put in its bloom."""
        own = bloom.transform(key)
        by_address = key_for_address(address_for_key(key))[0]
        by_subnet = key_for_subnet(subnet_for_key(key))[0]
        self.assertEqual(bloom.transform(by_address), own)
        self.assertEqual(bloom.transform(by_subnet), own)


keys = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)
u64 = st.integers(0, 2**64 - 1)
paths = st.lists(st.integers(1, 2**64 - 1), max_size=6).map(tuple)
words = st.lists(st.sampled_from([0, 2**64 - 1]) | u64, min_size=128, max_size=128)
packets = st.one_of(
    st.builds(Dummy, st.binary(max_size=8)),
    st.builds(KeepAlive, st.binary(max_size=8)),
    st.builds(SigReq, u64, u64),
    st.builds(SigRes, u64, u64, u64, sigs),
    st.builds(Announce, keys, keys, u64, u64, u64, sigs, sigs),
    words.map(Bloom.from_words),
    st.builds(PathLookup, keys, keys, paths),
    st.builds(PathNotify, paths, u64, keys, keys, st.builds(PathNotifyInfo, u64, paths, sigs)),
    st.builds(PathBroken, paths, u64, keys, keys),
    st.builds(Traffic, paths, paths, keys, keys, u64, st.binary(max_size=40)),
)


class PropertyTests(SynchronousTestCase):
    @given(packets)
    def test_round_trip(self, packet: wire.Packet) -> None:
        body = wire.encode_body(packet)
        self.assertEqual(wire.decode_body(body), packet)
        self.assertEqual(FrameReader().feed(wire.frame(body)), [body])

    @given(st.lists(packets, min_size=1, max_size=4), st.integers(1, 50))
    def test_stream(self, sent: list[wire.Packet], chunk: int) -> None:
        stream = b"".join(wire.frame(wire.encode_body(p)) for p in sent)
        reader = FrameReader()
        bodies = []
        for pos in range(0, len(stream), chunk):
            bodies += reader.feed(stream[pos : pos + chunk])
        self.assertEqual([wire.decode_body(b) for b in bodies], sent)

    @given(st.binary(max_size=200))
    def test_garbage_body(self, body: bytes) -> None:
        for candidate in (body, *(bytes((t,)) + body for t in range(11))):
            try:
                packet = wire.decode_body(candidate)
            except DecodeError:
                continue
            self.assertEqual(packet.TYPE, candidate[0])

    @given(st.binary(max_size=300))
    def test_garbage_stream(self, data: bytes) -> None:
        try:
            for body in FrameReader().feed(data):
                try:
                    wire.decode_body(body)
                except DecodeError:
                    pass
        except FrameError:
            pass

    @given(st.data())
    def test_mutated_capture(self, data: st.DataObject) -> None:
        body = bytearray(data.draw(st.sampled_from(ALL_BODIES)))
        for _ in range(data.draw(st.integers(1, 6))):
            action = data.draw(st.integers(0, 2))
            pos = data.draw(st.integers(0, len(body)))
            if action == 0 and pos < len(body):
                body[pos] = data.draw(st.integers(0, 255))
            elif action == 1:
                body[pos:pos] = data.draw(st.binary(min_size=1, max_size=12))
            elif len(body) > 1:
                del body[pos : pos + data.draw(st.integers(1, 12))]
        try:
            wire.decode_body(bytes(body))
            wire.traffic_header(bytes(body))
        except DecodeError:
            pass

    @given(st.data())
    def test_huge_values(self, data: st.DataObject) -> None:
        """Lengths and counts come from the wire: nothing allocates beyond the frame."""
        big = wire.put_uvarint(data.draw(st.integers(2**20, 2**64 - 1)))
        for body in (b"\x02" + big + big, b"\x05" + b"\x00" * 32, b"\x09" + b"\x7f" * 500):
            try:
                wire.decode_body(body)
            except DecodeError:
                pass
