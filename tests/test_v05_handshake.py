"""The v0.5 link handshake against the handshakes captured from yggdrasil 0.5.12.

tests/data/v05/links.json holds every connection of the capture (tests/data/v05/README.md):
two links that came up (one with the password "sesame", one without), four refused for a
wrong or missing password, and the attempts between 0.5.12 and 0.4.7 nodes.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.v05 import handshake
from ygg.v05.handshake import (
    ERR_HASH,
    ERR_LENGTH,
    ERR_PASSWORD,
    ERR_PASSWORD_INVALID,
    ERR_PREAMBLE,
    HandshakeError,
    Metadata,
    check_meta,
    decode_meta,
    encode_meta,
    password_hash,
    sniff_version,
)

INDEX = load_json("v05/index.json")
LINKS = load_json("v05/links.json")
BEACONS = load_json("v05/beacons.json")
V04_CAPTURE = load_json("handshake/link-handshake.json")
PASSWORD = INDEX["password"].encode()
KEYS = {
    NodeKey(bytes.fromhex(k)).public: NodeKey(bytes.fromhex(k))
    for k in INDEX["private_keys"].values()
}
PASSWORD_PORT = INDEX["ports"]["password"]

A = NodeKey.from_seed(b"A" * 32)

# Computed from docs/spec-v05.md §2 with seed "A"*32 (checked against the capture below).
VECTOR_NO_PASSWORD = (
    "6d657461007500000002000000010002000500020020"
    "db995fe25169d141cab9bbba92baa01f9f2e1ece7df4cb2ac05190f37fcc1f9d"
    "0003000100"
    "1ba37b94e1971091646d5403ff11b1ba32399da425dfe6fae1145907b0acaa0d"
    "60d44d15a649d865f392af3e5d92873f5ab74f8bf6256358f1b87c32e7589b07"
)


def captured_metas() -> list[tuple[dict, dict, bytes]]:
    """(connection, direction, raw bytes) of every 0.5 handshake in the capture."""
    out = []
    for conn in LINKS:
        for side in conn["directions"]:
            if side["meta"].get("version") == "0.5":
                out.append((conn, side, bytes.fromhex(side["meta"]["raw_hex"])))
    return out


def v04_metas() -> list[bytes]:
    out = [
        bytes.fromhex(side["meta"]["raw_hex"])
        for conn in LINKS
        for side in conn["directions"]
        if side["meta"].get("version") == "0.4"
    ]
    out += [bytes.fromhex(side["first_bytes_hex"])[:38] for side in V04_CAPTURE]
    return out


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack(">HH", kind, len(value)) + value


def message(fields: bytes, signature: bytes = bytes(64)) -> bytes:
    rest = fields + signature
    return b"meta" + struct.pack(">H", len(rest)) + rest


class CapturedTests(SynchronousTestCase):
    def test_the_capture_has_both_kinds(self) -> None:
        metas = captured_metas()
        self.assertEqual(len(metas), 15)
        passwords = {conn["listener_password"] for conn, _, _ in metas}
        self.assertEqual(passwords, {"", "sesame"})
        self.assertEqual(len(v04_metas()), 5)

    def test_decode_reencode(self) -> None:
        for conn, side, raw in captured_metas():
            with self.subTest(connection=conn["connection"], direction=side["direction"]):
                meta = decode_meta(raw)
                self.assertEqual(len(raw), 123)
                self.assertEqual((meta.major, meta.minor), (0, 5))
                self.assertEqual(meta.public_key.hex(), side["meta"]["public_key"])
                self.assertEqual(meta.priority, side["meta"]["priority"])
                self.assertEqual(meta.encode(), raw)

    def test_sign_reproduces_the_go_node(self) -> None:
        """Ed25519 is deterministic: our signing gives the Go node's bytes exactly."""
        seen = set()
        for _, _, raw in captured_metas():
            meta = decode_meta(raw)
            key = KEYS[meta.public_key]
            matches = [
                pw for pw in (b"", PASSWORD, b"wrong") if encode_meta(key, meta.priority, pw) == raw
            ]
            self.assertEqual(len(matches), 1, raw.hex())
            seen.add((meta.public_key, meta.priority, matches[0]))
        # A signed for both of its listeners, C sent priority 3, D tried "wrong" and "".
        self.assertIn((A.public, 0, PASSWORD), seen)
        self.assertIn((A.public, 0, b""), seen)
        self.assertEqual(len(seen), 6)

    def test_spec_vector(self) -> None:
        self.assertEqual(encode_meta(A).hex(), VECTOR_NO_PASSWORD)
        raws = {raw for _, _, raw in captured_metas()}
        self.assertIn(bytes.fromhex(VECTOR_NO_PASSWORD), raws)

    def test_password_checks(self) -> None:
        for conn, side, raw in captured_metas():
            with self.subTest(connection=conn["connection"], direction=side["direction"]):
                meta = decode_meta(raw)
                listener_pw = conn["listener_password"].encode()
                if side["meta"]["check"] == "ok":
                    self.assertEqual(check_meta(meta, listener_pw), meta.public_key)
                    self.assertTrue(meta.verify(listener_pw))
                    # The wrong password fails, whichever way round.
                    other = b"" if listener_pw else PASSWORD
                    self.assertFalse(meta.verify(other))
                    with self.assertRaises(HandshakeError) as caught:
                        check_meta(meta, other)
                    self.assertEqual(str(caught.exception), ERR_PASSWORD)
                else:
                    self.assertEqual(side["meta"]["check"], ERR_PASSWORD)
                    with self.assertRaises(HandshakeError):
                        check_meta(meta, listener_pw)

    def test_refused_links_carry_no_frames(self) -> None:
        for conn in LINKS:
            checks = [side["meta"].get("check") for side in conn["directions"]]
            up = checks == ["ok", "ok"]
            for side in conn["directions"]:
                self.assertEqual(bool(side["frames"]), up, conn["connection"])

    def test_signed_bytes(self) -> None:
        """The signature is over BLAKE2b-512(key, key=password) and nothing else."""
        for _, _, raw in captured_metas():
            meta = decode_meta(raw)
            for pw in (b"", PASSWORD):
                digest = password_hash(meta.public_key, pw)
                self.assertEqual(len(digest), 64)
                self.assertEqual(
                    meta.verify(pw), KEYS[meta.public_key].sign(digest) == meta.signature
                )

    def test_beacon_hash_is_the_same_hash(self) -> None:
        for beacon in BEACONS:
            key = bytes.fromhex(beacon["public_key"])
            self.assertEqual(beacon["hash"], password_hash(key, PASSWORD).hex())


class SniffTests(SynchronousTestCase):
    def test_v04(self) -> None:
        for raw in v04_metas():
            self.assertEqual(sniff_version(raw[:6]), (0, 4))
            self.assertEqual(raw[:6], b"meta\x00\x04")

    def test_v05(self) -> None:
        for _, _, raw in captured_metas():
            self.assertEqual(sniff_version(raw[:6]), (0, 5))
            self.assertEqual(sniff_version(raw), (0, 5))

    def test_needs_six_bytes(self) -> None:
        for n in range(6):
            self.assertIsNone(sniff_version(b"meta\x00\x75"[:n]))

    def test_not_yggdrasil(self) -> None:
        for data in (b"GET / HTTP/1.1", b"\x16\x03\x01", b"Meta\x00\x04", b"x"):
            with self.assertRaises(HandshakeError) as caught:
                sniff_version(data)
            self.assertEqual(str(caught.exception), ERR_PREAMBLE)

    def test_bad_length(self) -> None:
        for length in (0, 1, 3, 5, 63):
            with self.assertRaises(HandshakeError) as caught:
                sniff_version(b"meta" + struct.pack(">H", length))
            self.assertEqual(str(caught.exception), ERR_LENGTH)
        self.assertEqual(sniff_version(b"meta\x00\x40"), (0, 5))

    def test_go_refuses_a_v04_meta_as_too_short(self) -> None:
        for raw in v04_metas():
            with self.assertRaises(HandshakeError) as caught:
                handshake.body_length(raw[:6])
            self.assertEqual(str(caught.exception), ERR_LENGTH)


class ParseTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.meta = Metadata.signed(A, 7, PASSWORD)
        self.raw = self.meta.encode()

    def test_round_trip(self) -> None:
        self.assertEqual(decode_meta(self.raw), self.meta)
        self.assertEqual(decode_meta(memoryview(self.raw)), self.meta)
        self.assertEqual(check_meta(self.meta, PASSWORD), A.public)

    def test_layout(self) -> None:
        fields = tlv(0, b"\x00\x00") + tlv(1, b"\x00\x05") + tlv(2, A.public) + tlv(3, b"\x07")
        self.assertEqual(self.raw, message(fields, self.meta.signature))
        self.assertEqual(len(self.raw), handshake.HEADER_SIZE + 117)

    def test_unknown_and_repeated_fields(self) -> None:
        """Go skips unknown fields and keeps the last copy of a repeated one."""
        fields = tlv(9, b"future") + tlv(3, b"\x01") + self.meta.fields() + tlv(3, b"\x09")
        meta = decode_meta(message(fields, self.meta.signature))
        self.assertEqual(meta.priority, 9)
        self.assertEqual(check_meta(meta, PASSWORD), A.public)

    def test_missing_key(self) -> None:
        meta = decode_meta(message(tlv(0, b"\x00\x00") + tlv(1, b"\x00\x05")))
        self.assertEqual(meta.public_key, b"")
        with self.assertRaises(HandshakeError) as caught:
            check_meta(meta, PASSWORD)
        self.assertEqual(str(caught.exception), ERR_HASH)

    def test_bad_field_sizes(self) -> None:
        """0.5.14 refuses these (0.5.12 let them pass); no Go node sends them."""
        good = self.meta.fields()
        cases = {
            "short major": tlv(0, b"\x00") + good,
            "long minor": good + tlv(1, b"\x00\x05\x00"),
            "short key": tlv(2, A.public[:31]) + good,
            "long key": good + tlv(2, A.public + b"x"),
            "empty priority": good + tlv(3, b""),
            "past the end": good + struct.pack(">HH", 9, 200) + b"xx",
            "stray bytes": good + b"\x00\x00",
        }
        for name, fields in cases.items():
            with self.subTest(name), self.assertRaises(HandshakeError) as caught:
                decode_meta(message(fields, self.meta.signature))
            self.assertEqual(str(caught.exception), ERR_LENGTH)

    def test_missing_versions_read_as_zero(self) -> None:
        meta = decode_meta(message(tlv(2, A.public), self.meta.signature))
        self.assertEqual((meta.major, meta.minor, meta.priority), (0, 0, 0))

    def test_length_disagrees(self) -> None:
        for data in (self.raw[:-1], self.raw + b"\x00", self.raw[:6]):
            with self.subTest(size=len(data)), self.assertRaises(DecodeError):
                decode_meta(data)

    def test_check_order(self) -> None:
        """Go checks the signature before the version."""
        old = Metadata(A.public, A.sign(password_hash(A.public)), 0, 0, 4)
        with self.assertRaises(HandshakeError) as caught:
            check_meta(decode_meta(old.encode()))
        self.assertEqual(
            str(caught.exception), "remote node incompatible version (local 0.5, remote 0.4)"
        )
        self.assertEqual(caught.exception.remote_version, (0, 4))
        forged = Metadata(A.public, bytes(64), 0, 0, 4)
        with self.assertRaises(HandshakeError) as caught:
            check_meta(forged)
        self.assertEqual(str(caught.exception), ERR_PASSWORD)

    def test_password_limits(self) -> None:
        longest = b"p" * 64
        self.assertTrue(Metadata.signed(A, 0, longest).verify(longest))
        with self.assertRaises(ValueError):
            Metadata.signed(A, 0, longest + b"p")
        with self.assertRaises(HandshakeError) as caught:
            check_meta(self.meta, longest + b"p")
        self.assertEqual(str(caught.exception), ERR_PASSWORD_INVALID)
        self.assertFalse(self.meta.verify(longest + b"p"))

    def test_encode_refuses_bad_values(self) -> None:
        with self.assertRaises(ValueError):
            Metadata.signed(A, 256)
        with self.assertRaises(ValueError):
            Metadata(b"short", bytes(64)).encode()
        with self.assertRaises(ValueError):
            Metadata(A.public, bytes(63)).encode()


keys32 = st.binary(min_size=32, max_size=32)
sigs64 = st.binary(min_size=64, max_size=64)
u16 = st.integers(0, 0xFFFF)


class PropertyTests(SynchronousTestCase):
    @given(keys32, sigs64, st.integers(0, 255), u16, u16)
    def test_round_trip(self, key: bytes, sig: bytes, prio: int, major: int, minor: int) -> None:
        meta = Metadata(key, sig, prio, major, minor)
        self.assertEqual(decode_meta(meta.encode()), meta)

    @given(st.binary(max_size=300))
    def test_garbage_raises_only_decode_error(self, data: bytes) -> None:
        for candidate in (data, b"meta" + data, b"meta" + struct.pack(">H", len(data)) + data):
            try:
                sniff_version(candidate)
                check_meta(decode_meta(candidate))
            except DecodeError:
                pass

    @given(st.data())
    def test_mutated_capture(self, data: st.DataObject) -> None:
        metas = captured_metas()
        raw = bytearray(metas[data.draw(st.integers(0, len(metas) - 1))][2])
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        for candidate in (bytes(raw), bytes(raw[:cut])):
            try:
                meta = decode_meta(candidate)
                check_meta(meta, data.draw(st.sampled_from([b"", PASSWORD])))
            except DecodeError:
                pass
