"""The NaCl box as the encrypted layer uses it (spec §12.1).

Keys are X25519; a shared key is precomputed once (``crypto_box_beforenm``) and then used
with XSalsa20-Poly1305.  A sealed box is the 16-byte Poly1305 tag followed by the
ciphertext, and the 24-byte nonce is 16 zero bytes followed by a big-endian u64.
"""

from __future__ import annotations

import struct
from functools import cache
from typing import NamedTuple, Protocol

import nacl.bindings as sodium
from nacl._sodium import ffi, lib
from nacl.exceptions import CryptoError

KEY_SIZE = 32
BOX_OVERHEAD = 16

_nonce = struct.Struct(">16xQ").pack


class KeyPair(NamedTuple):
    public: bytes
    private: bytes


def new_key_pair() -> KeyPair:
    """A fresh random X25519 key pair."""
    public, private = sodium.crypto_box_keypair()
    return KeyPair(public, private)


def nonce(n: int) -> bytes:
    """The 24-byte box nonce for the counter ``n``."""
    return _nonce(n)


def precompute(public: bytes, private: bytes) -> bytes:
    """The shared box key of ``public`` and ``private``: HSalsa20 of their X25519 product.

    libsodium refuses a public key of small order (the product is all zeros); the Go node
    does not, and keys the box with HSalsa20 of 32 zero bytes.  So do we.
    """
    try:
        return sodium.crypto_box_beforenm(public, private)
    except CryptoError:
        return _zero_shared()


# seal and open_box run once per packet: they call libsodium through PyNaCl's own cffi
# binding (what nacl.bindings wraps), without the wrappers' per-call checks — the nonce
# and shared key are ours, always 24 and 32 bytes — which cost as much as the cipher on
# a 1280-byte packet.  Their buffers are not zeroed first (the cipher writes every byte),
# and the packet forms build a whole packet in one buffer: at 64 KiB a copy costs more
# than all the Python around it.
_new = ffi.new_allocator(should_clear_after_alloc=False)
_buffer = ffi.buffer
_from_buffer = ffi.from_buffer
_memmove = ffi.memmove
_box = lib.crypto_box_easy_afternm
_box_open = lib.crypto_box_open_easy_afternm


def seal(plaintext: bytes, n: int, shared: bytes) -> bytes:
    """tag ‖ ciphertext of ``plaintext`` under ``shared`` with nonce ``n``."""
    if len(shared) != KEY_SIZE:
        raise ValueError("Invalid shared key")
    size = len(plaintext)
    out = _new("unsigned char[]", size + BOX_OVERHEAD)
    _box(out, plaintext, size, _nonce(n), shared)
    return _buffer(out)[:]


def seal_packet(header: bytes, inner: bytes, message: bytes, n: int, shared: bytes) -> bytes:
    """``header ‖ seal(inner ‖ message, n, shared)``, built in one buffer (the box is
    sealed in place, as libsodium allows)."""
    if len(shared) != KEY_SIZE:
        raise ValueError("Invalid shared key")
    h = len(header)
    i = len(inner)
    size = i + len(message)
    start = h + BOX_OVERHEAD
    out = _new("unsigned char[]", start + size)
    _memmove(out, header, h)
    _memmove(out + start, inner, i)
    _memmove(out + start + i, message, size - i)
    _box(out + h, out + start, size, _nonce(n), shared)
    return _buffer(out)[:]


def open_box(boxed: bytes, n: int, shared: bytes) -> bytes | None:
    """The plaintext of a sealed box, or None when it does not authenticate."""
    size = len(boxed) - BOX_OVERHEAD
    if size < 0 or len(shared) != KEY_SIZE:
        return None
    out = _new("unsigned char[]", size or 1)
    if _box_open(out, boxed, size + BOX_OVERHEAD, _nonce(n), shared):
        return None
    return _buffer(out, size)[:]


class Sliceable(Protocol):
    """What :func:`open_at` returns: slicing it gives bytes."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> bytes: ...


def open_at(data: bytes, offset: int, n: int, shared: bytes) -> Sliceable | None:
    """The plaintext of the sealed box ``data[offset:]``, or None when it does not
    authenticate: a buffer whose slices are bytes (one copy for what the caller keeps,
    none of the box)."""
    size = len(data) - offset - BOX_OVERHEAD
    if size < 0 or offset < 0 or len(shared) != KEY_SIZE:
        return None
    out = _new("unsigned char[]", size or 1)
    boxed = _from_buffer("unsigned char[]", data) + offset
    if _box_open(out, boxed, size + BOX_OVERHEAD, _nonce(n), shared):
        return None
    return _buffer(out, size)


@cache
def _zero_shared() -> bytes:
    return hsalsa20(bytes(32), bytes(16))


def hsalsa20(key: bytes, data: bytes) -> bytes:
    """The HSalsa20 core (32-byte key, 16-byte input).  Only the small-order case needs it."""
    mask = 0xFFFFFFFF
    k = struct.unpack("<8I", key)
    i = struct.unpack("<4I", data)
    x = [0x61707865, *k[:4], 0x3320646E, *i, 0x79622D32, *k[4:], 0x6B206574]

    def quarter(a: int, b: int, c: int, d: int) -> None:
        for target, s1, s2, shift in ((b, a, d, 7), (c, b, a, 9), (d, c, b, 13), (a, d, c, 18)):
            v = (x[s1] + x[s2]) & mask
            x[target] ^= ((v << shift) | (v >> (32 - shift))) & mask

    for _ in range(10):
        quarter(0, 4, 8, 12)
        quarter(5, 9, 13, 1)
        quarter(10, 14, 2, 6)
        quarter(15, 3, 7, 11)
        quarter(0, 1, 2, 3)
        quarter(5, 6, 7, 4)
        quarter(10, 11, 8, 9)
        quarter(15, 12, 13, 14)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])
