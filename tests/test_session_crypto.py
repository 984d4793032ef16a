"""The box of the encrypted layer against the captured keys (tests/data/wire/session.json)."""

from __future__ import annotations

import nacl.bindings as sodium
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.keys import NodeKey, ed25519_public_to_x25519
from ygg.session import crypto

SESSION = load_json("wire/session.json")


class X25519FormsTests(SynchronousTestCase):
    def test_both_nodes(self) -> None:
        for name, node in SESSION["nodes"].items():
            key = NodeKey(bytes.fromhex(node["private_key"]))
            with self.subTest(node=name):
                self.assertEqual(key.public.hex(), node["public_key"])
                self.assertEqual(key.x25519_private().hex(), node["x25519_private"])
                self.assertEqual(ed25519_public_to_x25519(key.public).hex(), node["x25519_public"])
                self.assertEqual(
                    sodium.crypto_scalarmult_base(key.x25519_private()).hex(),
                    node["x25519_public"],
                )


class BoxTests(SynchronousTestCase):
    def test_nonce(self) -> None:
        self.assertEqual(crypto.nonce(1).hex(), "00" * 23 + "01")
        self.assertEqual(crypto.nonce(0), bytes(24))
        self.assertEqual(crypto.nonce(2**64 - 1).hex(), "00" * 16 + "ff" * 8)

    def test_captured_precomputed_keys(self) -> None:
        for packet in SESSION["packets"]:
            if packet["type_name"] not in ("init", "ack"):
                continue
            dec = packet["decryption"]
            shared = crypto.precompute(
                bytes.fromhex(packet["header"]["E"]), bytes.fromhex(dec["recipient_x25519_private"])
            )
            self.assertEqual(shared.hex(), dec["precomputed_key"])

    def test_captured_boxes_are_tag_first(self) -> None:
        """Resealing a captured plaintext with its key and nonce 0 gives the captured bytes."""
        for packet in SESSION["packets"]:
            if packet["type_name"] not in ("init", "ack"):
                continue
            shared = bytes.fromhex(packet["decryption"]["precomputed_key"])
            plaintext = bytes.fromhex(packet["plaintext_hex"])
            self.assertEqual(crypto.seal(plaintext, 0, shared).hex(), packet["box_hex"])
            self.assertEqual(
                crypto.open_box(bytes.fromhex(packet["box_hex"]), 0, shared), plaintext
            )

    def test_round_trip_and_failures(self) -> None:
        a, b = crypto.new_key_pair(), crypto.new_key_pair()
        shared = crypto.precompute(b.public, a.private)
        self.assertEqual(shared, crypto.precompute(a.public, b.private))
        boxed = crypto.seal(b"hello", 7, shared)
        self.assertEqual(len(boxed), 5 + crypto.BOX_OVERHEAD)
        self.assertEqual(crypto.open_box(boxed, 7, shared), b"hello")
        self.assertIsNone(crypto.open_box(boxed, 8, shared))
        self.assertIsNone(crypto.open_box(boxed[:-1], 7, shared))
        self.assertIsNone(crypto.open_box(b"", 7, shared))
        self.assertIsNone(crypto.open_box(boxed, 7, bytes(32)))

    def test_hsalsa20_is_the_box_key_derivation(self) -> None:
        a, b = crypto.new_key_pair(), crypto.new_key_pair()
        product = sodium.crypto_scalarmult(a.private, b.public)
        self.assertEqual(
            crypto.hsalsa20(product, bytes(16)), crypto.precompute(b.public, a.private)
        )

    def test_small_order_public_key_keys_like_go(self) -> None:
        """libsodium refuses these; Go keys the box with HSalsa20 of zeros.  No exception."""
        pair = crypto.new_key_pair()
        expected = crypto.hsalsa20(bytes(32), bytes(16))
        p = 2**255 - 19
        for u in (0, 1, p - 1, p, p + 1):
            public = u.to_bytes(32, "little")
            self.assertEqual(crypto.precompute(public, pair.private), expected)
