"""Keys to addresses and subnets, against what yggdrasil 0.4.7 printed."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.address import (
    address_for_key,
    format_address,
    format_subnet,
    is_valid_address,
    is_valid_subnet,
    key_for_address,
    key_for_subnet,
    key_matches,
    subnet_for_key,
)
from ygg.keys import NodeKey

# spec/yggdrasil.md §1.7: (public key, address, subnet)
SPEC_ROWS = [
    (
        "bdbacfd82240de3dcd123924cbb55256fb8dab08aa98e305528ab84f419e6efb",
        "200:848a:604f:bb7e:4384:65db:8db6:6895",
        "300:848a:604f:bb7e::/64",
    ),
    (
        "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
        "202:24ae:c219:8a4a:de94:eae2:b97e:ac87",
        "302:24ae:c219:8a4a::/64",
    ),
    (
        "000fedcba98765432100112233445566778899aabbccddeeff0123456789abcd",
        "20c:246:8acf:1357:9bdf:fddb:b997:7553",
        "30c:246:8acf:1357::/64",
    ),
    ("00" * 31 + "01", "2ff::", "3ff::/64"),
    ("ff" * 32, "200::", "300::/64"),
    ("00" * 32, "200::", "300::/64"),
]

PARTIAL_KEYS = [
    ("200:848a:604f:bb7e:4384:65db:8db6:6895", "bdbacfd82240de3dcd123924cbb57fff" + "ff" * 16),
    ("202:24ae:c219:8a4a:de94:eae2:b97e:ac87", "3b6a27bcceb6a42d62a3a8d02a6f1fff" + "ff" * 16),
    ("200:9781:bcf9:f280:3cd1:8126:87:62be", "b43f218306bfe1973f6cffbc4ea0ffff" + "ff" * 16),
    ("20c:246:8acf:1357:9bdf:fddb:b997:7553", "000fedcba98765432100112233445567" + "ff" * 16),
    ("202:7bb0:749d:3f5f:648f:b5d5:fa15:a202", "3089f16c5814136e094540bd4bbfbfff" + "ff" * 16),
]

PARTIAL_SUBNET_KEYS = [
    ("300:848a:604f:bb7e::", "bdbacfd82240" + "ff" * 26),
    ("302:24ae:c219:8a4a::", "3b6a27bcceb6bfff" + "ff" * 24),
    ("300:9781:bcf9:f280::", "b43f218306bf" + "ff" * 26),
]


def packed(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


class KeyVectorTests(SynchronousTestCase):
    def test_go_node_vectors(self) -> None:
        """Every vector the Go node printed, the mismatched-halves one included."""
        for vector in load_json("keys.json")["vectors"]:
            key = NodeKey(bytes.fromhex(vector["private_key"]))
            self.assertEqual(key.public.hex(), vector["private_key"][64:])
            self.assertEqual(
                format_address(address_for_key(key.public)), vector["address_flag_output"]
            )
            self.assertEqual(
                format_subnet(subnet_for_key(key.public)), vector["subnet_flag_output"]
            )
            if vector["seed_derives_public_key"] is not None:
                self.assertEqual(key.seed_matches_public(), vector["seed_derives_public_key"])

    def test_spec_rows(self) -> None:
        for public, address, subnet in SPEC_ROWS:
            key = bytes.fromhex(public)
            self.assertEqual(format_address(address_for_key(key)), address)
            self.assertEqual(format_subnet(subnet_for_key(key)), subnet)

    def test_seed_rows(self) -> None:
        self.assertEqual(NodeKey.from_seed(bytes(32)).public.hex(), SPEC_ROWS[1][0])

    def test_partial_keys(self) -> None:
        for address, partial in PARTIAL_KEYS:
            self.assertEqual(key_for_address(packed(address))[0].hex(), partial)
        for subnet, partial in PARTIAL_SUBNET_KEYS:
            self.assertEqual(key_for_subnet(packed(subnet)[:8])[0].hex(), partial)

    def test_validity(self) -> None:
        self.assertTrue(is_valid_address(packed("200::1")))
        self.assertFalse(is_valid_address(packed("300::1")))
        self.assertTrue(is_valid_subnet(packed("300::")[:8]))
        self.assertFalse(is_valid_subnet(packed("200::")[:8]))


class KeyRoundTripTests(SynchronousTestCase):
    @given(st.binary(min_size=32, max_size=32).filter(any))  # the all-zero key wraps (spec §1.2)
    def test_address_names_its_key(self, key: bytes) -> None:
        address = address_for_key(key)
        self.assertTrue(is_valid_address(address))
        partial, mask = key_for_address(address)
        self.assertTrue(key_matches(key, partial, mask))
        subnet = subnet_for_key(key)
        self.assertEqual(subnet[1:], address[1:8])
        partial, mask = key_for_subnet(subnet)
        self.assertTrue(key_matches(key, partial, mask))

    def test_random_keys_ordered_like_addresses(self) -> None:
        """More leading zeros in a key give a larger count byte."""
        for _ in range(50):
            key = os.urandom(32)
            zeros = 256 - int.from_bytes(key, "big").bit_length()
            self.assertEqual(address_for_key(key)[1], zeros)
