"""The v0.5 per-packet paths (ARCHITECTURE rule 7) against the general ones they shortcut:
the in-place traffic decode and re-encode, the next-hop cache and what empties it, our own
traffic's cached header, and the session layer's fast open and seal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.test_v05_router import RecordingLink, exchange, make_router, v05_net
from tests.test_v05_wire import ALL_BODIES
from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.session import crypto
from ygg.session import wire as session_wire
from ygg.sim import graphs
from ygg.v05.network import wire
from ygg.v05.network.router import HOP_CACHE
from ygg.v05.network.wire import Traffic

ports = st.lists(st.integers(1, 2**64 - 1) | st.integers(1, 127), max_size=6)
small_ports = st.lists(st.integers(1, 127), max_size=6)
keys = st.binary(min_size=32, max_size=32)
watermarks = st.integers(0, 2**64 - 1) | st.integers(0, 300)


def same_as_decoder(test: SynchronousTestCase, body: bytes) -> None:
    """split_traffic is None, or says what traffic_header says (and fails where it fails)."""
    try:
        split = wire.split_traffic(body)
    except DecodeError:
        with test.assertRaises(DecodeError):
            wire.traffic_header(body)
        return
    if split is None:
        return
    p, f, watermark, offset = split
    h = wire.traffic_header(body)
    test.assertEqual(
        (tuple(body[1:p]), tuple(body[p + 1 : f]), body[f + 1 : f + 33], body[f + 33 : f + 65]),
        (h.path, h.from_path, h.source, h.dest),
    )
    test.assertEqual((watermark, offset), (h.watermark, h.payload_offset))
    for new in (0, 5, 200, 2**64 - 1):
        test.assertEqual(
            wire.with_watermark(body, f + 65, offset, new), wire.reroute_traffic(body, h, new)
        )


class SplitTrafficTests(SynchronousTestCase):
    @given(ports, ports, keys, keys, watermarks, st.binary(max_size=40))
    @settings(max_examples=300)
    def test_agrees_with_the_decoder(
        self,
        path: list[int],
        from_path: list[int],
        source: bytes,
        dest: bytes,
        wm: int,
        data: bytes,
    ) -> None:
        body = wire.encode_body(Traffic(tuple(path), tuple(from_path), source, dest, wm, data))
        split = wire.split_traffic(body)
        if max((*path, *from_path), default=0) < 0x80:
            self.assertIsNotNone(split)
        else:
            self.assertIsNone(split)  # multi-byte ports: the general decoder's
        same_as_decoder(self, body)

    @given(st.binary(max_size=120))
    def test_garbage(self, tail: bytes) -> None:
        same_as_decoder(self, b"\x09" + tail)
        self.assertIsNone(wire.split_traffic(b"\x08" + tail))
        self.assertIsNone(wire.split_traffic(b""))

    def test_go_captures(self) -> None:
        traffic = [body for body in ALL_BODIES if body[0] == wire.TRAFFIC]
        self.assertGreater(len(traffic), 10)
        for body in traffic:
            self.assertIsNotNone(wire.split_traffic(body))
            same_as_decoder(self, body)

    def test_non_canonical_ports_go_the_general_way(self) -> None:
        # port 1 as two bytes: Go re-encodes it as one, and so must a forwarder
        body = b"\x09\x81\x00\x00\x00" + bytes(64) + b"\x05payload"
        self.assertIsNone(wire.split_traffic(body))
        self.assertEqual(wire.traffic_header(body).path, (1,))


class HopCacheTests(SynchronousTestCase):
    def test_a_new_link_is_taken_at_once(self) -> None:
        net = v05_net(graphs.line(3), 3)
        self.assertEqual(exchange(self, net, 0, 2), 2)
        net.link(0, 2)
        net.run(5.0)
        self.assertEqual(exchange(self, net, 0, 2), 1)
        net.cut(0, 2)
        net.run(5.0)
        self.assertEqual(exchange(self, net, 0, 2), 2)

    def test_cache_is_bounded(self) -> None:
        router = make_router(1)
        router.add_peer(NodeKey.from_seed(b"\x02" * 32).public, RecordingLink())
        for i in range(HOP_CACHE + 50):
            path = bytes((1 + i % 127, 1 + i // 127 % 127, 1 + i // 16129))
            body = b"\x09" + path + b"\x00\x00" + bytes(64) + b"\x7fdata"
            router.handle_traffic(body)
        self.assertLessEqual(len(router._hops), HOP_CACHE)

    def test_changes_empty_it(self) -> None:
        router = make_router(1)
        router._hops[b"\x01"] = (0, None, (1,))
        epoch = router.route_epoch
        peer = router.add_peer(NodeKey.from_seed(b"\x02" * 32).public, RecordingLink())
        self.assertEqual((router._hops, router.route_epoch > epoch), ({}, True))
        for change in (
            router.tree.reset_cache,
            lambda: router.remove_peer(peer),
        ):
            router._hops[b"\x01"] = (0, None, (1,))
            epoch = router.route_epoch
            change()
            self.assertEqual((router._hops, router.route_epoch > epoch), ({}, True))


class SessionFastPathTests(SynchronousTestCase):
    @given(
        st.integers(0, 2**64 - 1) | st.integers(0, 2**30),
        st.integers(0, 300),
        st.integers(0, 300),
    )
    def test_traffic_header_round_trip(self, nonce: int, lks: int, rks: int) -> None:
        header = session_wire.encode_traffic_header(lks, rks, nonce)
        slow = b"\x03" + b"".join(
            wire.put_uvarint(v) for v in (lks, rks, nonce)
        )  # the uvarints are v0.4's and v0.5's alike
        self.assertEqual(header, slow)
        data = header + bytes(60)
        self.assertEqual(session_wire.decode_traffic_header(data), (lks, rks, nonce, len(header)))

    def test_overflowing_nonce_is_refused(self) -> None:
        data = b"\x03\x01\x01" + b"\xff" * 9 + b"\x02" + bytes(60)
        with self.assertRaises(DecodeError):
            session_wire.decode_traffic_header(data)
        data = b"\x03\x01\x01" + b"\xff" * 9 + b"\x01" + bytes(60)
        self.assertEqual(session_wire.decode_traffic_header(data)[2], 2**64 - 1)


class PacketCryptoTests(SynchronousTestCase):
    """The one-buffer box forms against the plain ones (the Go vectors check those)."""

    @given(st.binary(max_size=12), st.binary(max_size=32), st.binary(max_size=3000), keys)
    @settings(max_examples=60)
    def test_seal_packet_is_header_and_seal(
        self, header: bytes, inner: bytes, message: bytes, shared: bytes
    ) -> None:
        packet = crypto.seal_packet(header, inner, message, 77, shared)
        self.assertEqual(packet, header + crypto.seal(inner + message, 77, shared))

    @given(st.binary(max_size=12), st.binary(max_size=3000), keys)
    @settings(max_examples=60)
    def test_open_at_is_open_box_of_the_tail(
        self, head: bytes, plaintext: bytes, shared: bytes
    ) -> None:
        data = head + crypto.seal(plaintext, 9, shared)
        opened = crypto.open_at(data, len(head), 9, shared)
        assert opened is not None
        self.assertEqual((len(opened), opened[:]), (len(plaintext), plaintext))
        self.assertIsNone(crypto.open_at(data, len(head), 10, shared))  # the wrong nonce
        self.assertIsNone(crypto.open_at(data[:-1], len(head), 9, shared))  # cut short
        self.assertIsNone(crypto.open_at(data, len(data) - 15, 9, shared))  # under a tag


class SplitFrameTests(SynchronousTestCase):
    """Frames cut anywhere across reads (a 64 KiB frame always is) come out whole."""

    @given(
        st.lists(st.integers(1, 70_000), min_size=1, max_size=6),
        st.lists(st.integers(1, 70_000), min_size=1, max_size=12),
    )
    @settings(max_examples=150)
    def test_any_cut(self, sizes: list[int], cuts: list[int]) -> None:
        bodies = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
        stream = b"".join(wire.frame(body) for body in bodies)
        reader = wire.FrameReader()
        out: list[bytes] = []
        pos = 0
        for cut in cuts * (len(stream) // sum(cuts) + 1):
            out += reader.feed(stream[pos : pos + cut])
            pos += cut
            if pos >= len(stream):
                break
            self.assertLess(reader.pending(), wire.MAX_MESSAGE_SIZE + 10)
        self.assertEqual((out, reader.pending()), (bodies, 0))

    def test_cut_length_then_error(self) -> None:
        reader = wire.FrameReader(1000)
        self.assertEqual(reader.feed(b"\x01\x09\xe9"), [b"\x09"])  # a cut length
        self.assertEqual(reader.pending(), 1)
        with self.assertRaises(wire.FrameError) as caught:
            reader.feed(b"\x07")  # 1001: over the limit
        self.assertEqual((str(caught.exception), reader.pending()), ("oversized message", 0))
