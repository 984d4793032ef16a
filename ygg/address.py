"""Node keys to 200::/7 addresses and 300::/64 subnets, and back to partial keys.

The mapping is yggdrasil 0.4's (src/address): invert the key's bits, count the leading
ones, then keep the bits after the first zero.  Addresses therefore sort the way keys do
(more leading zero bits in the key = a "higher" address), and an address or subnet names
only a prefix of a key: the lookup key carries the known high bits with all unknown low
bits set to one.
"""

from __future__ import annotations

import ipaddress

KEY_SIZE = 32
KEY_BITS = 8 * KEY_SIZE
ADDRESS_PREFIX = 0x02
SUBNET_PREFIX = 0x03
#: Prefix length of the route the TUN interface gets (200::/7 covers 300::/8 too).
PREFIX_LENGTH = 7
#: Address bits 16..127 carry the key (after the prefix byte and the count byte).
_ADDRESS_KEY_BITS = 112
_SUBNET_KEY_BITS = 48
_ALL_ONES = (1 << KEY_BITS) - 1


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a key is {KEY_SIZE} bytes, not {len(key)}")


def address_for_key(key: bytes) -> bytes:
    """The 16-byte 200::/7 address of a 32-byte ed25519 public key."""
    _check_key(key)
    value = int.from_bytes(key, "big")
    # Leading ones of the inverted key are the leading zeros of the key.
    ones = KEY_BITS - value.bit_length()
    rest_bits = KEY_BITS - ones - 1  # after the ones and the first zero
    packed = b""
    if rest_bits >= 8:
        rest = (value ^ _ALL_ONES) & ((1 << rest_bits) - 1)
        whole_bytes = rest_bits // 8
        packed = (rest >> (rest_bits - 8 * whole_bytes)).to_bytes(whole_bytes, "big")
    # The count is stored in one byte, as the Go code does (only the all-zero key wraps).
    body = bytes((ADDRESS_PREFIX, ones & 0xFF)) + packed[:14]
    return body.ljust(16, b"\x00")


def subnet_for_key(key: bytes) -> bytes:
    """The 8-byte prefix of the key's 300::/64 subnet."""
    return bytes((SUBNET_PREFIX,)) + address_for_key(key)[1:8]


def is_valid_address(address: bytes) -> bool:
    return len(address) == 16 and address[0] == ADDRESS_PREFIX


def is_valid_subnet(subnet: bytes) -> bool:
    return len(subnet) >= 8 and subnet[0] == SUBNET_PREFIX


def _partial_key(address16: bytes, carried_bits: int) -> tuple[bytes, bytes]:
    ones = address16[1]
    value = ((1 << ones) - 1) << (KEY_BITS - ones) if ones else 0
    carried = int.from_bytes(address16[2:16], "big")
    shift = KEY_BITS - (ones + 1) - _ADDRESS_KEY_BITS
    value |= carried << shift if shift >= 0 else carried >> -shift
    key = (value ^ _ALL_ONES).to_bytes(KEY_SIZE, "big")
    known = min(KEY_BITS, ones + 1 + carried_bits)
    mask = (_ALL_ONES ^ ((1 << (KEY_BITS - known)) - 1)).to_bytes(KEY_SIZE, "big")
    return key, mask


def key_for_address(address: bytes) -> tuple[bytes, bytes]:
    """The partial key an address names, and the mask of its known bits.

    Unknown bits of the key are ones, which is what the DHT lookup for an address expects.
    """
    if len(address) != 16:
        raise ValueError("an address is 16 bytes")
    return _partial_key(address, _ADDRESS_KEY_BITS)


def key_for_subnet(subnet: bytes) -> tuple[bytes, bytes]:
    """The partial key a /64 subnet names (its first 8 bytes), and the mask of known bits."""
    if len(subnet) < 8:
        raise ValueError("a subnet is 8 bytes")
    return _partial_key(bytes(subnet[:8]) + bytes(8), _SUBNET_KEY_BITS)


def key_matches(key: bytes, partial: bytes, mask: bytes) -> bool:
    """Whether a full key agrees with a partial key on the bits the mask marks as known."""
    m = int.from_bytes(mask, "big")
    return int.from_bytes(key, "big") & m == int.from_bytes(partial, "big") & m


def format_address(address: bytes) -> str:
    """RFC 5952 text, as Go's net.IP.String() prints it."""
    return str(ipaddress.IPv6Address(bytes(address[:16])))


def format_subnet(subnet: bytes) -> str:
    return f"{ipaddress.IPv6Address(bytes(subnet[:8]) + bytes(8))}/64"
