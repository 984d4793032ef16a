"""Which bits a key sets in a v0.5 bloom filter (docs/spec-v05.md §5.2).

ironwood uses bits-and-blooms/bloom v3.7.0 with m = 8192 bits and k = 8: MurmurHash3
x64-128 (seed 0) of the key and of the key followed by one 0x01 byte give four 64-bit
values h0..h3; hash i sets bit ``(h[i % 2] + i * h[2 + ((i + i % 2) % 4) // 2]) mod 2**64
mod 8192``.  yggdrasil inserts not the node key but its *transform*: the partial key of
the node's /64 subnet, so a lookup for any address or subnet of that node matches.
Filters are held as Python ints (bit i = filter bit i), as :class:`wire.Bloom` carries them.
"""

from __future__ import annotations

import struct

from ygg.address import key_for_subnet, subnet_for_key
from ygg.v05.network.wire import BLOOM_BITS

HASHES = 8
_M64 = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_BLOCK = struct.Struct("<QQ")


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """MurmurHash3 x64-128 as (h1, h2)."""
    h1 = h2 = seed
    size = len(data)
    blocks = size // 16
    for i in range(blocks):
        k1, k2 = _BLOCK.unpack_from(data, 16 * i)
        h1 ^= (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64
        h1 = (_rotl(h1, 27) + h2) & _M64
        h1 = (h1 * 5 + 0x52DCE729) & _M64
        h2 ^= (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64
        h2 = (_rotl(h2, 31) + h1) & _M64
        h2 = (h2 * 5 + 0x38495AB5) & _M64
    tail = bytes(data[16 * blocks :])
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl((k2 * _C2) & _M64, 33) * _C1) & _M64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl((k1 * _C1) & _M64, 31) * _C2) & _M64
    h1 ^= size
    h2 ^= size
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    return h1, h2


def locations(data: bytes) -> tuple[int, ...]:
    """The 8 bit positions ``data`` sets (with repeats, as Go computes them)."""
    h = murmur3_128(data) + murmur3_128(bytes(data) + b"\x01")
    return tuple(
        ((h[i % 2] + i * h[2 + ((i + i % 2) % 4) // 2]) & _M64) % BLOOM_BITS for i in range(HASHES)
    )


def mask(data: bytes) -> int:
    """The bits ``data`` sets, as one int."""
    bits = 0
    for location in locations(data):
        bits |= 1 << location
    return bits


def add(bits: int, data: bytes) -> int:
    return bits | mask(data)


def contains(bits: int, data: bytes) -> bool:
    """False: ``data`` was certainly never added; True: it probably was."""
    m = mask(data)
    return bits & m == m


def transform(key: bytes) -> bytes:
    """yggdrasil's bloom transform: the partial key of ``key``'s /64 subnet (unknown bits 1)."""
    return key_for_subnet(subnet_for_key(key))[0]
