"""The 38-byte link handshake (spec §2.6) against the spec vector and the captured link start."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.links.handshake import (
    META_SIZE,
    HandshakeError,
    check_remote_key,
    decode_meta,
    encode_meta,
)

CAPTURE = load_json("handshake/link-handshake.json")
SPEC_VECTOR = "6d6574610004b43f218306bfe1973f6cffbc4ea0978fe793ae8d1b8c733252dee01209853d13"
KEY_5 = bytes.fromhex(SPEC_VECTOR[12:])

A = bytes.fromhex("04859ec15a8af8cbd41c11e7f71cd73e2a4e25fa9f2cd29fa08dea50c651acb9")
B = bytes.fromhex("5cf14a93ec0830a1dc344f582afbb7c1f5f1210b65c9239c476b99cdc3c3e781")


class MetaTests(SynchronousTestCase):
    def test_size(self) -> None:
        self.assertEqual(META_SIZE, 38)

    def test_spec_vector(self) -> None:
        self.assertEqual(encode_meta(KEY_5).hex(), SPEC_VECTOR)
        self.assertEqual(decode_meta(bytes.fromhex(SPEC_VECTOR)), KEY_5)

    def test_captured_link_start(self) -> None:
        self.assertEqual(len(CAPTURE), 2)
        for side in CAPTURE:
            with self.subTest(direction=side["direction"]):
                first = bytes.fromhex(side["first_bytes_hex"])
                meta = side["parsed"]["meta"]
                key = bytes.fromhex(meta["key"])
                self.assertEqual((meta["magic"], meta["major"], meta["minor"]), ("meta", 0, 4))
                self.assertEqual(decode_meta(first[:META_SIZE]), key)
                self.assertEqual(encode_meta(key), first[:META_SIZE])
                # The ironwood frames start right after the 38 bytes.
                self.assertEqual(side["parsed"]["frames"][0]["offset"], META_SIZE)

    def test_accepts_memoryview(self) -> None:
        self.assertEqual(decode_meta(memoryview(encode_meta(A))), A)

    def test_wrong_length(self) -> None:
        for data in (b"", encode_meta(A)[:-1], encode_meta(A) + b"\x00"):
            with self.subTest(size=len(data)):
                with self.assertRaises(DecodeError) as caught:
                    decode_meta(data)
                self.assertNotIsInstance(caught.exception, HandshakeError)

    def test_version_mismatch(self) -> None:
        good = encode_meta(A)
        cases = {
            "magic": b"META" + good[4:],
            "major": good[:4] + b"\x01" + good[5:],
            "older minor": good[:5] + b"\x03" + good[6:],
            "newer minor": good[:5] + b"\x05" + good[6:],
        }
        for name, data in cases.items():
            with self.subTest(name):
                with self.assertRaises(HandshakeError) as caught:
                    decode_meta(data)
                self.assertEqual(str(caught.exception), "remote node is incompatible version")
                self.assertEqual(caught.exception.remote_version, (data[4], data[5]))
                self.assertIsInstance(caught.exception, DecodeError)

    def test_encode_needs_a_key(self) -> None:
        self.assertRaises(ValueError, encode_meta, A[:31])


class KeyCheckTests(SynchronousTestCase):
    def check(self, remote: bytes, **kwargs: object) -> None:
        options: dict[str, object] = {
            "pinned": frozenset(),
            "allowed": frozenset(),
            "inbound": False,
            "forced": False,
        }
        options.update(kwargs)
        check_remote_key(remote, **options)  # type: ignore[arg-type]

    def test_no_restrictions(self) -> None:
        self.check(A)
        self.check(A, inbound=True)

    def test_pinned(self) -> None:
        self.check(A, pinned=frozenset({A, B}))
        with self.assertRaises(HandshakeError) as caught:
            self.check(A, pinned=frozenset({B}))
        self.assertEqual(str(caught.exception), "node public key that does not match pinned keys")

    def test_allowed_applies_to_inbound_only(self) -> None:
        self.check(A, allowed=frozenset({B}))  # outbound: AllowedPublicKeys never applies
        self.check(A, allowed=frozenset({A}), inbound=True)
        with self.assertRaises(HandshakeError) as caught:
            self.check(A, allowed=frozenset({B}), inbound=True)
        self.assertEqual(
            str(caught.exception), f'node public key "{A.hex()}" is not in AllowedPublicKeys'
        )

    def test_forced_bypasses_allowed(self) -> None:
        self.check(A, allowed=frozenset({B}), inbound=True, forced=True)

    def test_pins_checked_first(self) -> None:
        with self.assertRaises(HandshakeError) as caught:
            self.check(A, pinned=frozenset({B}), allowed=frozenset({B}), inbound=True)
        self.assertIn("pinned", str(caught.exception))

    def test_allowed_may_be_any_collection(self) -> None:
        with self.assertRaises(HandshakeError):
            self.check(A, allowed=[B], inbound=True)
        self.check(A, allowed=[B, A], inbound=True)
