"""Session packet codecs against the captured session (tests/data/wire/session.json)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.keys import NodeKey, ed25519_public_to_x25519, verify
from ygg.session import crypto, wire

SESSION = load_json("wire/session.json")
NODES = {name: NodeKey(bytes.fromhex(n["private_key"])) for name, n in SESSION["nodes"].items()}
HANDSHAKE = [p for p in SESSION["packets"] if p["type_name"] in ("init", "ack")]
TRAFFIC = [p for p in SESSION["packets"] if p["type_name"] == "traffic"]


class CapturedInitAckTests(SynchronousTestCase):
    def test_capture_has_three_handshake_packets(self) -> None:
        self.assertEqual([p["type_name"] for p in HANDSHAKE], ["init", "ack", "ack"])

    def test_decode(self) -> None:
        for packet in HANDSHAKE:
            raw = bytes.fromhex(packet["raw_hex"])
            recipient = NODES[packet["decryption"]["recipient"]]
            fields = packet["decrypted"]
            with self.subTest(index=packet["index"]):
                self.assertEqual(len(raw), wire.INIT_SIZE)
                kind, init = wire.decode_init(
                    raw, recipient.x25519_private(), bytes.fromhex(packet["network_source"])
                )
                self.assertEqual(kind, packet["type"])
                self.assertEqual(init.current.hex(), fields["current"])
                self.assertEqual(init.next.hex(), fields["next"])
                self.assertEqual(init.key_seq, fields["key_seq"])
                self.assertEqual(init.seq, fields["seq"])

    def test_signature_message_layout(self) -> None:
        for packet in HANDSHAKE:
            fields = packet["decrypted"]
            message = (
                bytes.fromhex(packet["header"]["E"])
                + bytes.fromhex(fields["current"])
                + bytes.fromhex(fields["next"])
                + fields["key_seq"].to_bytes(8, "big")
                + fields["seq"].to_bytes(8, "big")
            )
            self.assertEqual(message.hex(), packet["signature"]["message_hex"])
            self.assertTrue(
                verify(
                    bytes.fromhex(packet["network_source"]),
                    message,
                    bytes.fromhex(fields["sig"]),
                )
            )
            self.assertEqual(
                bytes.fromhex(packet["plaintext_hex"]),
                bytes.fromhex(fields["sig"]) + message[crypto.KEY_SIZE :],
            )

    def test_wrong_source_key_is_a_bad_signature(self) -> None:
        packet = HANDSHAKE[0]
        raw = bytes.fromhex(packet["raw_hex"])
        recipient = NODES[packet["decryption"]["recipient"]]
        with self.assertRaisesRegex(DecodeError, "^bad-signature$"):
            wire.decode_init(raw, recipient.x25519_private(), recipient.public)

    def test_wrong_recipient_key_does_not_open(self) -> None:
        packet = HANDSHAKE[0]
        raw = bytes.fromhex(packet["raw_hex"])
        sender = bytes.fromhex(packet["network_source"])
        with self.assertRaisesRegex(DecodeError, "^bad-init$"):
            wire.decode_init(raw, NODES["A"].x25519_private(), sender)

    def test_malformed(self) -> None:
        packet = HANDSHAKE[1]
        raw = bytes.fromhex(packet["raw_hex"])
        private = NODES[packet["decryption"]["recipient"]].x25519_private()
        sender = bytes.fromhex(packet["network_source"])
        for bad in (
            raw[:-1],
            raw + b"\x00",
            b"",
            b"\x03" + raw[1:],
            raw[:100] + bytes([raw[100] ^ 1]) + raw[101:],
        ):
            with self.assertRaises(DecodeError):
                wire.decode_init(bad, private, sender)


class InitEncodingTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        a, b = NODES["A"], NODES["B"]
        init = wire.Init(b"\x11" * 32, b"\x22" * 32, 5, 1795317363)
        ephemeral = crypto.new_key_pair()
        for kind in (wire.INIT, wire.ACK):
            raw = wire.encode_init(kind, init, ephemeral, ed25519_public_to_x25519(b.public), a)
            self.assertEqual(len(raw), 193)
            self.assertEqual(raw[0], kind)
            self.assertEqual(raw[1:33], ephemeral.public)
            self.assertEqual(wire.decode_init(raw, b.x25519_private(), a.public), (kind, init))

    def test_big_sequence_numbers(self) -> None:
        a, b = NODES["A"], NODES["B"]
        init = wire.Init(b"\x11" * 32, b"\x22" * 32, 2**64 - 1, 2**64 - 2)
        raw = wire.encode_init(
            wire.INIT, init, crypto.new_key_pair(), ed25519_public_to_x25519(b.public), a
        )
        self.assertEqual(wire.decode_init(raw, b.x25519_private(), a.public)[1], init)


class TrafficHeaderTests(SynchronousTestCase):
    def test_captured_headers(self) -> None:
        self.assertEqual(len(TRAFFIC), 6)
        for packet in TRAFFIC:
            raw = bytes.fromhex(packet["raw_hex"])
            header = packet["header"]
            with self.subTest(index=packet["index"]):
                lks, rks, nonce, offset = wire.decode_traffic_header(raw)
                self.assertEqual(
                    (lks, rks, nonce),
                    (header["local_key_seq"], header["remote_key_seq"], header["nonce"]),
                )
                self.assertEqual(raw[:offset].hex(), header["header_hex"])
                self.assertEqual(raw[offset:].hex(), packet["box_hex"])
                self.assertEqual(wire.encode_traffic_header(lks, rks, nonce), raw[:offset])
                self.assertEqual(len(raw), offset + 16 + 32 + packet["message_length"])

    def test_sizes(self) -> None:
        self.assertEqual(wire.INIT_SIZE, 193)
        self.assertEqual(wire.TRAFFIC_OVERHEAD_MIN, 52)
        self.assertEqual(wire.TRAFFIC_OVERHEAD, 79)
        header = wire.encode_traffic_header(1, 1, 1)
        self.assertEqual(header.hex(), "03010101")
        shared = crypto.precompute(crypto.new_key_pair().public, crypto.new_key_pair().private)
        packet = header + crypto.seal(bytes(32), 1, shared)  # next key, empty message
        self.assertEqual(len(packet), 52)

    def test_multi_byte_varints(self) -> None:
        for values in ((128, 0, 1), (0, 300, 16384), (2**64 - 1, 2**63, 127), (1, 2, 2**64 - 1)):
            header = wire.encode_traffic_header(*values)
            packet = header + bytes(48)
            self.assertEqual(wire.decode_traffic_header(packet), (*values, len(header)))
        self.assertEqual(wire.encode_traffic_header(128, 0, 1).hex(), "0380010001")

    def test_short_and_bad_type(self) -> None:
        good = wire.encode_traffic_header(1, 1, 1) + bytes(48)
        with self.assertRaisesRegex(DecodeError, "^short$"):
            wire.decode_traffic_header(good[:51])
        with self.assertRaisesRegex(DecodeError, "^short$"):
            wire.decode_traffic_header(b"")
        with self.assertRaisesRegex(DecodeError, "^bad-type$"):
            wire.decode_traffic_header(b"\x02" + good[1:])

    def test_overflowing_varints(self) -> None:
        padding = bytes(60)
        for header in (
            b"\x03" + b"\xff" * 9 + b"\x02",  # 10th byte > 1
            b"\x03" + b"\x80" * 10 + b"\x00",  # 11th byte
            b"\x03\x01" + b"\xff" * 9 + b"\x7f",
            b"\x03\x01\x01" + b"\x80" * 10 + b"\x01",
        ):
            with self.subTest(header=header.hex()), self.assertRaisesRegex(DecodeError, "varint"):
                wire.decode_traffic_header(header + padding)
        # the largest value still fits
        header = b"\x03" + b"\xff" * 9 + b"\x01" + b"\x00\x00"
        self.assertEqual(wire.decode_traffic_header(header + padding)[0], 2**64 - 1)
