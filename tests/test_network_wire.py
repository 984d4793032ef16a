"""ironwood network-layer wire formats: the real node's frames, spec §16 vectors, round trips."""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.keys import NodeKey, verify
from ygg.network import wire
from ygg.network.wire import (
    BootstrapAck,
    Label,
    PathLookup,
    PathNotify,
    PathResponse,
    Setup,
    SetupToken,
    Teardown,
    TreeHop,
    TreeInfo,
)

TYPE_NAMES = {
    "dummy": wire.DUMMY,
    "tree": wire.TREE,
    "dhtBootstrap": wire.BOOTSTRAP,
    "dhtBootstrapAck": wire.BOOTSTRAP_ACK,
    "dhtSetup": wire.SETUP,
    "dhtTeardown": wire.TEARDOWN,
    "pathNotify": wire.PATH_NOTIFY,
    "pathLookup": wire.PATH_LOOKUP,
    "pathResponse": wire.PATH_RESPONSE,
    "dhtTraffic": wire.DHT_TRAFFIC,
    "pathTraffic": wire.PATH_TRAFFIC,
}

CLASSES = {
    wire.TREE: TreeInfo,
    wire.BOOTSTRAP: Label,
    wire.BOOTSTRAP_ACK: BootstrapAck,
    wire.SETUP: Setup,
    wire.TEARDOWN: Teardown,
    wire.PATH_NOTIFY: PathNotify,
    wire.PATH_LOOKUP: PathLookup,
    wire.PATH_RESPONSE: PathResponse,
}

FRAMES = load_json("wire/frames.json")
HANDSHAKE = load_json("handshake/link-handshake.json")


# -- the JSON's view of a body ----------------------------------------------------------------


def label_fields(label: Label) -> dict[str, Any]:
    return {
        "sig": label.sig.hex(),
        "key": label.key.hex(),
        "root": label.root.hex(),
        "seq": label.seq,
        "path": list(label.path),
    }


def token_fields(token: SetupToken) -> dict[str, Any]:
    return {"sig": token.sig.hex(), "source": token.source.hex(), "dest": label_fields(token.dest)}


def notify_fields(notify: PathNotify) -> dict[str, Any]:
    return {"sig": notify.sig.hex(), "dest": notify.dest.hex(), "label": label_fields(notify.label)}


def tree_fields(info: TreeInfo) -> dict[str, Any]:
    return {
        "root": info.root.hex(),
        "seq": info.seq,
        "hops": [{"next": h.next.hex(), "port": h.port, "sig": h.sig.hex()} for h in info.hops],
    }


def traffic_json(body: bytes, offset: int) -> dict[str, Any]:
    source, dest, kind, payload = wire.traffic_fields(body, offset)
    return {"source": source.hex(), "dest": dest.hex(), "kind": kind, "payload_hex": payload.hex()}


def fields_of(body: bytes) -> dict[str, Any]:
    """Decode a body with ygg.network.wire into the shape of frames.json's ``fields``."""
    ptype = body[0]
    if ptype == wire.DUMMY:
        fields: dict[str, Any] = {"payload_hex": body[1:].hex()}
        prio = wire.dummy_priority(body)
        if prio is not None:
            fields["priority"] = prio
        return fields
    if ptype == wire.DHT_TRAFFIC:
        return traffic_json(body, wire.split_dht_traffic(body))
    if ptype == wire.PATH_TRAFFIC:
        ports, offset = wire.split_path_traffic(body)
        return {"path": ports, **traffic_json(body, offset)}
    obj = wire.decode_body(body)
    if isinstance(obj, TreeInfo):
        return tree_fields(obj)
    if isinstance(obj, Label):
        return label_fields(obj)
    if isinstance(obj, BootstrapAck):
        return {
            "bootstrap_len": len(obj.bootstrap.encode()),
            "bootstrap": label_fields(obj.bootstrap),
            "token": token_fields(obj.token),
        }
    if isinstance(obj, Setup):
        return {"sig": obj.sig.hex(), "seq": obj.seq, "token": token_fields(obj.token)}
    if isinstance(obj, Teardown):
        return {
            "seq": obj.seq,
            "key": obj.key.hex(),
            "root": obj.root.hex(),
            "root_seq": obj.root_seq,
        }
    if isinstance(obj, PathNotify):
        return notify_fields(obj)
    if isinstance(obj, PathLookup):
        return {
            "notify_len": len(obj.notify.encode()),
            "notify": notify_fields(obj.notify),
            "rpath": list(obj.rpath),
        }
    assert isinstance(obj, PathResponse)
    return {"from": obj.from_key.hex(), "path": list(obj.path), "rpath": list(obj.rpath)}


def reencode(body: bytes) -> bytes:
    """Decode a body and build it again from the decoded values only."""
    ptype = body[0]
    if ptype == wire.DUMMY:
        prio = wire.dummy_priority(body)
        return wire.KEEPALIVE if prio is None else wire.priority_body(prio)
    if ptype == wire.DHT_TRAFFIC:
        return wire.dht_traffic(*wire.traffic_fields(body, wire.split_dht_traffic(body)))
    if ptype == wire.PATH_TRAFFIC:
        ports, offset = wire.split_path_traffic(body)
        return wire.path_traffic(ports, *wire.traffic_fields(body, offset))
    return wire.body(ptype, wire.decode_body(body).encode())


def signatures(obj: object) -> list[tuple[bytes, bytes, bytes]]:
    """(signer, message, signature) of every signature an object carries, signers per §5.13."""
    if isinstance(obj, TreeInfo):
        return list(obj.signed_hops())
    if isinstance(obj, Label):
        return [(obj.key, obj.message(), obj.sig)]
    if isinstance(obj, SetupToken):
        return [(obj.dest.key, obj.message(), obj.sig), *signatures(obj.dest)]
    if isinstance(obj, BootstrapAck):
        return signatures(obj.bootstrap) + signatures(obj.token)
    if isinstance(obj, Setup):
        return [(obj.token.source, obj.message(), obj.sig), *signatures(obj.token)]
    if isinstance(obj, PathNotify):
        return [(obj.label.key, obj.message(), obj.sig), *signatures(obj.label)]
    if isinstance(obj, PathLookup):
        return signatures(obj.notify)
    return []


def signed_part(obj: object, what: str) -> tuple[bytes, bytes, bytes]:
    """The (signer, message, signature) frames.json names ``what`` (``hops[1]``, ``token.dest``)."""
    if what.startswith("hops["):
        assert isinstance(obj, TreeInfo)
        i = int(what[5:-1])
        return obj.hop_signer(i), obj.hop_message(i), obj.hops[i].sig
    names = what.split(".")
    own = {Label: "label", Setup: "setup", PathNotify: "notify"}.get(type(obj))
    if names[0] == own:
        names = names[1:]
    for name in names:
        obj = getattr(obj, name)
    return signatures(obj)[0]  # an object's own signature comes first


def captured_frames() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, f) for d in FRAMES["directions"] for f in d["frames"]]


def handshake_bodies(connection: dict[str, Any]) -> list[bytes]:
    return [
        bytes([f["type"]]) + bytes.fromhex(f["body_hex"]) for f in connection["parsed"]["frames"]
    ]


def stream_of(direction: dict[str, Any]) -> bytes:
    """One direction's TCP stream, rebuilt from the frames and the omitted keepalives."""
    pieces = [(f["stream_offset"], f["raw_hex"]) for f in direction["frames"]]
    pieces += [(k["stream_offset"], k["raw_hex"]) for k in direction["omitted_keepalives"]]
    stream = bytes.fromhex(direction["meta_hex"])
    for offset, raw in sorted(pieces):
        assert offset == len(stream), (offset, len(stream))
        stream += bytes.fromhex(raw)
    assert len(stream) == direction["stream_bytes"]
    return stream


# -- captured frames -----------------------------------------------------------------------------


class CapturedFrameTests(SynchronousTestCase):
    """Every frame the Go node sent, in frames.json and link-handshake.json."""

    def test_frames_decode_to_their_fields(self) -> None:
        for _direction, f in captured_frames():
            raw = bytes.fromhex(f["raw_hex"])
            [body] = wire.FrameReader().feed(raw)
            self.assertEqual(len(body), f["length"])
            self.assertEqual(body[0], f["type"])
            self.assertEqual(TYPE_NAMES[f["type_name"]], f["type"])
            self.assertEqual(fields_of(body), f["fields"], f["index"])
            if f["type"] in CLASSES:
                self.assertIsInstance(wire.decode_body(body), CLASSES[f["type"]])

    def test_frames_reencode_byte_for_byte(self) -> None:
        for _direction, f in captured_frames():
            raw = bytes.fromhex(f["raw_hex"])
            self.assertEqual(wire.frame(reencode(raw[2:])), raw, f["index"])

    def test_listed_signatures_over_our_messages(self) -> None:
        for _direction, f in captured_frames():
            if f["type"] not in CLASSES:
                continue
            obj = wire.decode_body(bytes.fromhex(f["raw_hex"])[2:])
            for listed in f.get("signatures", []):
                signer, message, sig = signed_part(obj, listed["what"])
                self.assertEqual(message.hex(), listed["message_hex"], listed["what"])
                self.assertEqual(sig.hex(), listed["signature"])
                self.assertEqual(signer.hex(), listed["signer"])
                self.assertTrue(verify(signer, message, sig))
            # the JSON lists every signature the frame carries
            self.assertEqual(len(signatures(obj)), len(f.get("signatures", [])))

    def test_tree_derived(self) -> None:
        for direction, f in captured_frames():
            if f["type"] != wire.TREE:
                continue
            info = wire.decode_body(bytes.fromhex(f["raw_hex"])[2:])
            assert isinstance(info, TreeInfo)
            derived = f["derived"]
            self.assertEqual(info.from_key().hex(), derived["from"])
            self.assertEqual(info.dest().hex(), derived["dest"])
            self.assertEqual(info.ports()[:-1], derived["sender_coords"])
            self.assertEqual(info.check_loops(), derived["check_loops"])
            self.assertEqual(derived["from"], direction["sender_key"])
            self.assertEqual(derived["dest"], direction["receiver_key"])

    def test_streams_split_the_same_however_fed(self) -> None:
        for direction in FRAMES["directions"]:
            stream = stream_of(direction)
            self.assertEqual(stream[:38].hex(), direction["meta_hex"])
            links = stream[38:]
            whole = wire.FrameReader().feed(links)
            self.assertEqual(
                len(whole), len(direction["frames"]) + len(direction["omitted_keepalives"])
            )
            reader = wire.FrameReader()
            one_by_one = [b for i in range(len(links)) for b in reader.feed(links[i : i + 1])]
            self.assertEqual(reader.pending(), 0)
            self.assertEqual(one_by_one, whole)
            rng = random.Random(7)
            reader = wire.FrameReader()
            chunked, pos = [], 0
            while pos < len(links):
                step = rng.randint(1, 400)
                chunked += reader.feed(links[pos : pos + step])
                pos += step
            self.assertEqual(chunked, whole)
            self.assertEqual(
                [b for b in whole if b != wire.KEEPALIVE],
                [bytes.fromhex(f["raw_hex"])[2:] for f in direction["frames"] if f["length"] > 1],
            )

    def test_handshake_capture(self) -> None:
        keys = [c["parsed"]["meta"]["key"] for c in HANDSHAKE]
        for n, connection in enumerate(HANDSHAKE):
            sender, receiver = keys[n], keys[1 - n]
            stream = bytes.fromhex(connection["first_bytes_hex"])
            self.assertEqual(stream[:38], b"meta\x00\x04" + bytes.fromhex(sender))
            frames = connection["parsed"]["frames"]
            for f, next_f in itertools.pairwise(frames):
                self.assertEqual(f["offset"] + 2 + f["len"], next_f["offset"])
            bodies = handshake_bodies(connection)
            joined = b"".join(wire.frame(b) for b in bodies)
            self.assertEqual(stream[38:], joined[: len(stream) - 38])
            for f, body in zip(frames, bodies, strict=True):
                self.assertEqual(len(body), f["len"])
                self.assertEqual(TYPE_NAMES[f["type_name"]], f["type"])
                self.assertEqual(reencode(body), body, f["offset"])
                if f["type"] not in CLASSES:
                    fields_of(body)  # traffic: the header is there
                    continue
                obj = wire.decode_body(body)
                self.assertIsInstance(obj, CLASSES[f["type"]])
                for signer, message, sig in signatures(obj):
                    self.assertTrue(verify(signer, message, sig), f["offset"])
                self.assertEqual(bool(signatures(obj)), f["type"] != wire.PATH_RESPONSE)
                if "tree" in f:
                    assert isinstance(obj, TreeInfo)
                    self.assertEqual(tree_fields(obj), f["tree"])
                    self.assertEqual(obj.from_key().hex(), sender)
                    self.assertEqual(obj.dest().hex(), receiver)


# -- spec §16 ------------------------------------------------------------------------------------

A = NodeKey.from_seed(b"\x01" * 32)
B = NodeKey.from_seed(b"\x02" * 32)
SEQ = 1700000000


class SpecVectorTests(SynchronousTestCase):
    def test_keys(self) -> None:
        self.assertEqual(
            A.public.hex(), "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        )
        self.assertEqual(
            B.public.hex(), "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
        )
        self.assertLess(B.public, A.public)

    def test_link_start_announcement(self) -> None:
        info = TreeInfo(A.public, 0).add_hop(B.public, 1, A.sign)
        message = A.public + bytes(8) + B.public + b"\x01"
        self.assertEqual(info.hop_message(0), message)
        sig = bytes.fromhex(
            "a988b5f016aa0c0370fc56877717e23faa2ff64b9c68030eaca8acb33a86a1d6"
            "eba57f63661f98c3d865696527b8f12ce178e0385baf713ce50f5dd130bef10b"
        )
        self.assertEqual(info.hops[0].sig, sig)
        raw = wire.frame(wire.body(wire.TREE, info.encode()))
        self.assertEqual(raw, bytes.fromhex("008a01") + message + sig)
        self.assertEqual(len(raw) - 2, 138)
        self.assertEqual((info.from_key(), info.dest(), info.ports()), (A.public, B.public, [1]))

    def test_root_announcement(self) -> None:
        info = TreeInfo(B.public, SEQ).add_hop(A.public, 1, B.sign)
        self.assertEqual(
            info.hop_message(0), B.public + bytes.fromhex("000000006553f100") + A.public + b"\x01"
        )
        self.assertEqual(
            info.hops[0].sig.hex(),
            "b2aac56745472d203ea9d321498b0142dfee9e11e085bf2560b2eec91f3cb21b"
            "ff1720d45bfce6b472f5c44212b1dea1c6a21898f728958cd16ed3d97948f10b",
        )

    def test_label(self) -> None:
        label = Label.signed(A.sign, A.public, B.public, SEQ, [1])
        self.assertEqual(label.message(), B.public + bytes.fromhex("000000006553f100") + b"\x01")
        sig = bytes.fromhex(
            "85a6cbaaa7fc938977849becc897f6badf0a705d272f91d2bbba800d4cadb3eb"
            "59ea0b2cc440cc95fe3441bf0fcf79d037f18846a8dc35625848a1bfe67c3306"
        )
        self.assertEqual(label.sig, sig)
        encoded = label.encode()
        self.assertEqual(encoded, sig + A.public + B.public + bytes.fromhex("000000006553f100 01"))
        self.assertEqual(len(encoded), 137)
        self.assertEqual(wire.frame(wire.body(wire.BOOTSTRAP, encoded))[:3].hex(), "008a02")
        self.assertEqual(wire.decode_body(wire.body(wire.BOOTSTRAP, encoded)), label)

    def test_traffic(self) -> None:
        path = wire.path_traffic([3, 0], A.public, B.public, wire.KIND_STANDARD, b"hi")
        self.assertEqual(
            wire.frame(path), bytes.fromhex("00460a0300") + A.public + B.public + b"\x01hi"
        )
        self.assertEqual(len(path), 70)
        dht = wire.dht_traffic(A.public, B.public, wire.KIND_STANDARD, b"hi")
        self.assertEqual(wire.frame(dht), bytes.fromhex("004409") + A.public + B.public + b"\x01hi")
        self.assertEqual(len(dht), 68)
        ports, offset = wire.split_path_traffic(path)
        self.assertEqual((ports, offset), ([3, 0], 3))
        self.assertEqual(wire.path_to_dht_traffic(path, offset), dht)
        self.assertEqual(
            wire.reroute_path_traffic([0], path, offset),
            wire.path_traffic([0], A.public, B.public, wire.KIND_STANDARD, b"hi"),
        )
        self.assertEqual(
            wire.traffic_fields(path, offset), (A.public, B.public, wire.KIND_STANDARD, b"hi")
        )

    def test_teardown(self) -> None:
        teardown = Teardown(5, A.public, B.public, SEQ)
        raw = wire.frame(wire.body(wire.TEARDOWN, teardown.encode()))
        self.assertEqual(
            raw,
            bytes.fromhex("005105")
            + (5).to_bytes(8, "big")
            + A.public
            + B.public
            + SEQ.to_bytes(8, "big"),
        )
        self.assertEqual(len(teardown.encode()), 80)
        self.assertEqual(wire.decode_body(raw[2:]), teardown)

    def test_keepalive_and_priority(self) -> None:
        self.assertEqual(wire.frame(wire.KEEPALIVE).hex(), "000100")
        self.assertEqual(wire.frame(wire.priority_body(5)).hex(), "0003007005")
        self.assertEqual(wire.dummy_priority(wire.priority_body(5)), 5)
        self.assertIsNone(wire.dummy_priority(wire.KEEPALIVE))
        self.assertIsNone(wire.dummy_priority(b"\x00p"))  # Go wants two payload bytes
        self.assertIsNone(wire.dummy_priority(b"\x00q\x05"))
        self.assertRaises(ValueError, wire.priority_body, 256)

    def test_signed_constructors_verify(self) -> None:
        label = Label.signed(B.sign, B.public, B.public, SEQ, [])
        token = SetupToken.signed(B.sign, A.public, label)
        setup = Setup.signed(A.sign, 2**63 + 5, token)
        notify = PathNotify.signed(
            A.sign, B.public, Label.signed(A.sign, A.public, B.public, SEQ, [1])
        )
        ack = BootstrapAck(Label.signed(A.sign, A.public, B.public, SEQ, [1]), token)
        for obj in (setup, ack, PathLookup(notify, (4,))):
            found = signatures(obj)
            self.assertTrue(found)
            for signer, message, sig in found:
                self.assertTrue(verify(signer, message, sig))


# -- varints and paths -------------------------------------------------------------------------

UVARINTS = [
    (0, "00"),
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (255, "ff01"),
    (300, "ac02"),
    (16384, "808001"),
    (2**64 - 1, "ffffffffffffffffff01"),
]


class UvarintTests(SynchronousTestCase):
    def test_spec_vectors(self) -> None:
        for value, encoded in UVARINTS:
            self.assertEqual(wire.put_uvarint(value).hex(), encoded)
            self.assertEqual(wire.get_uvarint(bytes.fromhex(encoded)), (value, len(encoded) // 2))

    def test_out_of_range(self) -> None:
        self.assertRaises(ValueError, wire.put_uvarint, -1)
        self.assertRaises(ValueError, wire.put_uvarint, 2**64)

    def test_go_edge_cases(self) -> None:
        get = wire.get_uvarint
        self.assertEqual(get(b""), (0, 0))
        self.assertEqual(get(b"\x80"), (0, 0))  # truncated: nothing consumed
        self.assertEqual(get(b"\xff" * 10), (0, 0))  # 10 bytes, all "more follows"
        self.assertEqual(get(b"\x81\x00"), (1, 2))  # non-minimal accepted
        self.assertEqual(get(b"\x80" * 9 + b"\x01"), (2**63, 10))
        self.assertEqual(get(b"\xff" * 9 + b"\x02"), (0, -10))  # 10th byte > 1
        self.assertEqual(get(b"\xff" * 9 + b"\x7f\x00"), (0, -10))
        self.assertEqual(get(b"\xff" * 10 + b"\x00"), (0, -11))  # 11th byte reached
        self.assertEqual(get(b"\x80" * 20), (0, -11))
        self.assertEqual(get(b"\x05\xac\x02", 1), (300, 2))
        self.assertEqual(get(b"\x05\xac\x02", 1, 2), (0, 0))  # the end bound cuts it
        self.assertEqual(get(b"\x05\xac\x02", 3), (0, 0))

    def test_decode_path_go_semantics(self) -> None:
        self.assertEqual(wire.decode_path(b"\x01\x02\x00\x07", 0), ([1, 2, 0], 3))
        self.assertEqual(wire.decode_path(b"\x09\x01\x02", 1), ([1, 2], 3))  # runs to the end
        self.assertEqual(wire.decode_path(b"", 0), ([], 0))
        self.assertEqual(wire.decode_path(b"\x01\xac\x02\x00", 0), ([1, 300, 0], 4))
        # overflow: value 0, all 11 bytes consumed (network layer takes abs(n))
        self.assertEqual(wire.decode_path(b"\x03" + b"\xff" * 11 + b"\x05", 0), ([3, 0], 12))
        # truncated: value 0, nothing consumed
        self.assertEqual(wire.decode_path(b"\x03\x80\x80", 0), ([3, 0], 1))
        self.assertEqual(wire.decode_path(b"\x03\x04\x00", 0, 2), ([3, 4], 2))
        self.assertEqual(wire.encode_path([1, 300, 0]), b"\x01\xac\x02\x00")
        self.assertEqual(wire.encode_path([]), b"")

    @given(st.integers(0, 2**64 - 1), st.binary(max_size=3), st.binary(max_size=3))
    def test_round_trip(self, value: int, before: bytes, after: bytes) -> None:
        encoded = wire.put_uvarint(value)
        self.assertEqual(wire.get_uvarint(encoded), (value, len(encoded)))
        self.assertEqual(
            wire.get_uvarint(before + encoded + after, len(before)), (value, len(encoded))
        )

    @given(st.lists(st.integers(1, 2**64 - 1), max_size=8), st.binary(max_size=5))
    def test_path_round_trip(self, ports: list[int], after: bytes) -> None:
        encoded = wire.encode_path([*ports, 0])
        self.assertEqual(
            wire.decode_path(b"\x0a" + encoded + after, 1), ([*ports, 0], 1 + len(encoded))
        )
        self.assertEqual(wire.decode_path(wire.encode_path(ports), 0), (ports, len(encoded) - 1))


# -- round trips of every type -----------------------------------------------------------------

keys = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)
u64 = st.integers(0, 2**64 - 1)
ports = st.one_of(st.integers(1, 300), st.integers(1, 2**64 - 1))
routes = st.lists(ports, max_size=6).map(tuple)
labels = st.builds(Label, sigs, keys, keys, u64, routes)
tokens = st.builds(SetupToken, sigs, keys, labels)
hops = st.builds(TreeHop, keys, st.one_of(st.integers(0, 300), u64), sigs)
trees = st.builds(TreeInfo, keys, u64, st.lists(hops, max_size=4).map(tuple))
notifies = st.builds(PathNotify, sigs, keys, labels)
responses = st.one_of(
    st.builds(PathResponse, keys, routes.map(lambda r: (*r, 0)), routes),
    st.builds(PathResponse, keys, routes, st.just(())),  # no 0 at all: still valid (§5.10)
)


class RoundTripTests(SynchronousTestCase):
    def check(self, ptype: int, obj: Any) -> None:
        payload = obj.encode()
        self.assertEqual(type(obj).decode(payload), obj)
        self.assertEqual(wire.decode_body(wire.body(ptype, payload)), obj)
        self.assertEqual(type(obj).decode(memoryview(bytearray(payload))), obj)

    @given(trees)
    def test_tree(self, info: TreeInfo) -> None:
        self.check(wire.TREE, info)

    @given(labels)
    def test_bootstrap(self, label: Label) -> None:
        self.check(wire.BOOTSTRAP, label)

    @given(labels, tokens)
    def test_bootstrap_ack(self, label: Label, token: SetupToken) -> None:
        self.check(wire.BOOTSTRAP_ACK, BootstrapAck(label, token))

    @given(sigs, u64, tokens)
    def test_setup(self, sig: bytes, seq: int, token: SetupToken) -> None:
        self.check(wire.SETUP, Setup(sig, seq, token))

    @given(u64, keys, keys, u64)
    def test_teardown(self, seq: int, key: bytes, root: bytes, root_seq: int) -> None:
        self.check(wire.TEARDOWN, Teardown(seq, key, root, root_seq))

    @given(notifies)
    def test_notify(self, notify: PathNotify) -> None:
        self.check(wire.PATH_NOTIFY, notify)

    @given(notifies, routes)
    def test_lookup(self, notify: PathNotify, rpath: tuple[int, ...]) -> None:
        self.check(wire.PATH_LOOKUP, PathLookup(notify, rpath))

    @given(responses)
    def test_response(self, response: PathResponse) -> None:
        self.check(wire.PATH_RESPONSE, response)

    @given(routes, keys, keys, st.integers(0, 255), st.binary(max_size=100))
    def test_traffic(
        self, route: tuple[int, ...], source: bytes, dest: bytes, kind: int, payload: bytes
    ) -> None:
        body = wire.path_traffic([*route, 0], source, dest, kind, payload)
        found, offset = wire.split_path_traffic(body)
        self.assertEqual(found, [*route, 0])
        self.assertEqual(wire.traffic_fields(body, offset), (source, dest, kind, payload))
        self.assertEqual(wire.traffic_dest(body, offset), dest)
        dht = wire.dht_traffic(source, dest, kind, payload)
        self.assertEqual(wire.path_to_dht_traffic(body, offset), dht)
        self.assertEqual(
            wire.traffic_fields(dht, wire.split_dht_traffic(dht)), (source, dest, kind, payload)
        )
        self.assertEqual(
            wire.reroute_path_traffic(found[1:], body, offset),
            wire.path_traffic(found[1:], source, dest, kind, payload),
        )

    def test_label_path_may_end_with_zero(self) -> None:
        """Go's label decoder stops after a 0 and only then wants the end: (1, 0) is a label."""
        label = Label(bytes(64), bytes(32), bytes(32), 1, (1, 0))
        self.assertEqual(Label.decode(label.encode()), label)

    def test_tree_decoding_checks_nothing_but_sizes(self) -> None:
        info = TreeInfo(bytes(32), 9, (TreeHop(b"\x01" * 32, 0, bytes(64)),))
        self.assertEqual(TreeInfo.decode(info.encode()), info)  # bad signature, port 0
        self.assertEqual(TreeInfo.decode(bytes(40)), TreeInfo(bytes(32), 0))  # zero hops
        loop = TreeInfo(bytes(32), 9, (TreeHop(bytes(32), 1, bytes(64)),))
        self.assertFalse(TreeInfo.decode(loop.encode()).check_loops())

    def test_wrong_sizes_refused_when_built(self) -> None:
        self.assertRaises(ValueError, Label, bytes(63), bytes(32), bytes(32), 0, ())
        self.assertRaises(ValueError, TreeHop, bytes(31), 1, bytes(64))
        self.assertRaises(ValueError, Teardown, 0, bytes(32), bytes(33), 0)


# -- bad input ----------------------------------------------------------------------------------


def captured_body(ptype: int) -> bytes:
    for _direction, f in captured_frames():
        if f["type"] == ptype:
            return bytes.fromhex(f["raw_hex"])[2:]
    raise LookupError(ptype)


def some_label() -> Label:
    return Label(b"\x11" * 64, b"\x22" * 32, b"\x33" * 32, 7, (1,))


class BadInputTests(SynchronousTestCase):
    def test_every_truncation_is_refused_or_a_shorter_packet(self) -> None:
        """Cutting a captured body never raises anything but DecodeError; what still decodes
        is a shorter packet that encodes to exactly the cut bytes (a label losing its last
        port, a tree losing its last hop)."""
        for _direction, f in captured_frames():
            body = bytes.fromhex(f["raw_hex"])[2:]
            if f["type"] not in CLASSES:
                continue
            for cut in range(1, len(body)):
                prefix = body[:cut]
                try:
                    obj = wire.decode_body(prefix)
                except DecodeError:
                    continue
                self.assertEqual(wire.body(f["type"], obj.encode()), prefix)

    def test_truncated_frames_of_each_type(self) -> None:
        cases = {
            "tree, into the signature": captured_body(wire.TREE)[:-1],
            "tree, into the seq": captured_body(wire.TREE)[:40],
            "tree, into a hop key": captured_body(wire.TREE)[:60],
            "tree, port varint cut": wire.body(wire.TREE, bytes(72) + b"\x80\x80"),
            "bootstrap, into the root": captured_body(wire.BOOTSTRAP)[:100],
            "bootstrap, into the seq": captured_body(wire.BOOTSTRAP)[: 1 + 130],
            "ack, into the token": captured_body(wire.BOOTSTRAP_ACK)[:-1],
            "ack, into the bootstrap": captured_body(wire.BOOTSTRAP_ACK)[:100],
            "setup, into the seq": captured_body(wire.SETUP)[: 1 + 64 + 7],
            "setup, into the token": captured_body(wire.SETUP)[:-1],
            "teardown, 79 bytes": wire.body(wire.TEARDOWN, bytes(79)),
            "teardown, 81 bytes": wire.body(wire.TEARDOWN, bytes(81)),
            "notify, into the dest": captured_body(wire.PATH_NOTIFY)[: 1 + 64 + 31],
            "notify, into the label": captured_body(wire.PATH_NOTIFY)[:200],
            "lookup, notify length overruns": captured_body(wire.PATH_LOOKUP)[:-1],
            "response, into the key": captured_body(wire.PATH_RESPONSE)[:32],
            "empty body": b"",
        }
        for what, body in cases.items():
            self.assertRaises(DecodeError, wire.decode_body, body)
            self.assertTrue(what)

    def test_traffic_too_short(self) -> None:
        self.assertRaises(DecodeError, wire.split_dht_traffic, b"\x09" + bytes(64))
        self.assertRaises(DecodeError, wire.traffic_dest, b"\x09" + bytes(64), 1)
        self.assertEqual(wire.traffic_dest(b"\x09" + bytes(32) + b"\x07" * 33, 1), b"\x07" * 32)
        self.assertEqual(wire.split_dht_traffic(b"\x09" + bytes(65)), 1)
        self.assertRaises(DecodeError, wire.split_path_traffic, b"\x0a\x00" + bytes(64))
        self.assertEqual(wire.split_path_traffic(b"\x0a\x00" + bytes(65)), ([0], 2))
        # no 0 in the route: it swallows the header
        self.assertRaises(DecodeError, wire.split_path_traffic, b"\x0a" + b"\x01" * 80)
        self.assertRaises(DecodeError, wire.split_path_traffic, b"\x0a")
        # a route cut mid-varint consumes nothing, so the header check fails
        self.assertRaises(DecodeError, wire.split_path_traffic, b"\x0a\x80\x80")
        for ptype in (wire.DHT_TRAFFIC, wire.PATH_TRAFFIC):
            body = captured_body(ptype)
            ports, offset = wire.split_path_traffic(body) if ptype == wire.PATH_TRAFFIC else ([], 1)
            split = (
                wire.split_path_traffic if ptype == wire.PATH_TRAFFIC else wire.split_dht_traffic
            )
            self.assertRaises(DecodeError, split, body[: offset + 64])
            self.assertEqual(ports, [0] if ptype == wire.PATH_TRAFFIC else [])

    def test_unknown_types(self) -> None:
        for ptype in (11, 12, 255):
            self.assertRaises(DecodeError, wire.decode_body, bytes([ptype]) + bytes(100))

    def test_dummy_and_traffic_are_not_objects(self) -> None:
        for body in (wire.KEEPALIVE, captured_body(wire.DHT_TRAFFIC), captured_body(10)):
            error = self.assertRaises(ValueError, wire.decode_body, body)
            self.assertNotIsInstance(error, DecodeError)

    def test_rpath_ending_with_zero(self) -> None:
        notify = PathNotify(bytes(64), bytes(32), some_label())
        good = PathLookup(notify, (2,)).encode()
        self.assertRaises(DecodeError, PathLookup.decode, good + b"\x00")
        self.assertRaises(DecodeError, PathLookup.decode, good + b"\x00\x03")  # bytes after a 0
        self.assertRaises(DecodeError, PathLookup.decode, good + b"\x80")  # cut varint
        self.assertEqual(PathLookup.decode(good + b"\x03").rpath, (2, 3))
        key = b"\x44" * 32
        self.assertRaises(DecodeError, PathResponse.decode, key + b"\x00\x01\x00")
        self.assertRaises(DecodeError, PathResponse.decode, key + b"\x00\x00")
        self.assertRaises(DecodeError, PathResponse.decode, key + b"\x00\x00\x01")
        self.assertRaises(DecodeError, PathResponse.decode, key + b"\x00\x80")

    def test_response_path_without_zero_is_fine(self) -> None:
        key = b"\x44" * 32
        response = PathResponse.decode(key + b"\x01\x02")
        self.assertEqual(response, PathResponse(key, (1, 2), ()))
        self.assertEqual(PathResponse.decode(key), PathResponse(key, (), ()))

    def test_trailing_bytes_after_label(self) -> None:
        encoded = some_label().encode()
        self.assertRaises(DecodeError, Label.decode, encoded + b"\x00\x01")
        self.assertRaises(DecodeError, Label.decode, encoded + b"\x80")  # cut varint eats nothing
        for body in (
            wire.body(wire.BOOTSTRAP, encoded + b"\x00\x05"),
            wire.body(wire.PATH_NOTIFY, bytes(96) + encoded + b"\x00\x05"),
            wire.body(wire.SETUP, bytes(72 + 96) + encoded + b"\x00\x05"),
        ):
            self.assertRaises(DecodeError, wire.decode_body, body)
        # a final 0 is part of the path, not trailing data
        self.assertEqual(Label.decode(encoded + b"\x00").path, (1, 0))

    def test_ack_length_prefix(self) -> None:
        ack = captured_body(wire.BOOTSTRAP_ACK)
        self.assertEqual(ack[1:3], wire.put_uvarint(137))
        over = wire.body(wire.BOOTSTRAP_ACK, wire.put_uvarint(len(ack)) + ack[3:])
        self.assertRaises(DecodeError, wire.decode_body, over)
        huge = wire.body(wire.BOOTSTRAP_ACK, wire.put_uvarint(2**64 - 1) + ack[3:])
        self.assertRaises(DecodeError, wire.decode_body, huge)  # Go would panic here
        lookup = captured_body(wire.PATH_LOOKUP)
        huge = wire.body(wire.PATH_LOOKUP, wire.put_uvarint(2**64 - 1) + lookup[3:])
        self.assertRaises(DecodeError, wire.decode_body, huge)
        short = wire.body(wire.BOOTSTRAP_ACK, wire.put_uvarint(135) + ack[3:])
        self.assertRaises(DecodeError, wire.decode_body, short)

    def test_tree_port_overflow_is_port_zero(self) -> None:
        """Go's tree decoder takes an overflowing port varint as 0 and moves past it."""
        payload = bytes(32) + bytes(8) + b"\x01" * 32 + b"\xff" * 11 + b"\x02" * 64
        info = TreeInfo.decode(payload)
        self.assertEqual(info.ports(), [0])
        self.assertEqual(info.hops[0].sig, b"\x02" * 64)


# -- framing ----------------------------------------------------------------------------------


class FrameReaderTests(SynchronousTestCase):
    def test_zero_length(self) -> None:
        reader = wire.FrameReader()
        good = wire.frame(wire.KEEPALIVE)
        error = self.assertRaises(DecodeError, reader.feed, good + b"\x00\x00" + good)
        self.assertEqual(error.bodies, [wire.KEEPALIVE])
        self.assertRaises(DecodeError, reader.feed, good)  # the stream stays failed
        reader = wire.FrameReader()
        self.assertEqual(reader.feed(b"\x00"), [])
        self.assertRaises(DecodeError, reader.feed, b"\x00")

    def test_frame_limits(self) -> None:
        self.assertRaises(ValueError, wire.frame, bytes(wire.MAX_BODY + 1))
        self.assertRaises(ValueError, wire.frame, b"")
        self.assertRaises(ValueError, wire.frame_header, bytes(wire.MAX_BODY + 1))
        self.assertEqual(wire.frame_header(b"\x00p\x05"), b"\x00\x03")
        big = bytes([wire.DHT_TRAFFIC]) + bytes(range(256)) * 255 + bytes(254)
        self.assertEqual(len(big), wire.MAX_BODY)
        raw = wire.frame(big)
        self.assertEqual(raw[:2], b"\xff\xff")
        reader = wire.FrameReader()
        out = [b for i in range(len(raw)) for b in reader.feed(raw[i : i + 1])]
        self.assertEqual(out, [big])
        self.assertEqual(wire.FrameReader().feed(raw * 3), [big] * 3)

    def test_partial_then_rest(self) -> None:
        reader = wire.FrameReader()
        raw = wire.frame(b"\x01abc") + wire.frame(b"\x02de")
        self.assertEqual(reader.feed(raw[:3]), [])
        self.assertEqual(reader.pending(), 3)
        self.assertEqual(reader.feed(raw[3:8]), [b"\x01abc"])
        self.assertEqual(reader.feed(memoryview(raw)[8:]), [b"\x02de"])
        self.assertEqual(reader.pending(), 0)

    @given(
        st.lists(st.binary(min_size=1, max_size=300), max_size=12),
        st.lists(st.integers(0, 4000), max_size=12),
    )
    def test_any_split(self, bodies: list[bytes], cuts: list[int]) -> None:
        stream = b"".join(map(wire.frame, bodies))
        reader = wire.FrameReader()
        out: list[bytes] = []
        last = 0
        for cut in sorted(c for c in cuts if c <= len(stream)):
            out += reader.feed(stream[last:cut])
            last = cut
        out += reader.feed(stream[last:])
        self.assertEqual(out, bodies)
        self.assertEqual(reader.pending(), 0)
