"""The v0.5 link handshake ("metadata", docs/spec-v05.md §2): encode, decode, sign, verify.

Both sides write ``meta`` ‖ u16be(length) ‖ TLV fields ‖ ed25519 signature as soon as the
stream is up, then read the peer's.  A field is u16be(type) ‖ u16be(length) ‖ value; the
signature is over BLAKE2b-512 of the sender's public key, keyed with the link password
(empty: unkeyed), so a wrong password and a forged key fail the same check.  Only the key is
signed: versions and priority are not authenticated, and the bytes can be replayed.

:func:`decode_meta` parses as 0.5.14 does (unknown fields skipped, the last copy of a field
wins, sizes checked); :func:`check_meta` then applies Go's checks in Go's order, raising
:class:`HandshakeError` with the Go node's error text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.bindings as sodium

from ygg.errors import DecodeError
from ygg.keys import NodeKey, verify

MAGIC = b"meta"
VERSION_MAJOR = 0
VERSION_MINOR = 5

# TLV field types (yggdrasil-go src/core/version.go); new ones may only be appended.
META_VERSION_MAJOR = 0
META_VERSION_MINOR = 1
META_PUBLIC_KEY = 2
META_PRIORITY = 3

HEADER_SIZE = 6  # "meta" ‖ u16be(length of the rest)
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
HASH_SIZE = 64  # BLAKE2b-512
PASSWORD_MAX = 64  # BLAKE2b's longest key; yggdrasil refuses longer ?password= values
HANDSHAKE_TIMEOUT = 6.0  # seconds for writing ours and reading theirs, one deadline

# Go's texts (src/core/version.go, link.go): logged with the failed link, so kept verbatim.
ERR_PREAMBLE = "invalid handshake, remote side is not Yggdrasil"
ERR_LENGTH = "invalid handshake length, possible version mismatch"
ERR_PASSWORD_INVALID = "invalid password supplied, check your config"
ERR_HASH = "invalid hash length"
ERR_PASSWORD = "password does not match remote side"

_U16 = struct.Struct(">H")
_FIELD = struct.Struct(">HH")
_FIELD_SIZES = {META_VERSION_MAJOR: 2, META_VERSION_MINOR: 2, META_PUBLIC_KEY: 32, META_PRIORITY: 1}


class HandshakeError(DecodeError):
    """A handshake that fails a check; ``str(e)`` is the Go node's error text.

    ``remote_version`` is the peer's (major, minor) when only the versions differ.
    """

    def __init__(self, message: str, remote_version: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.remote_version = remote_version


def check_password(password: bytes) -> bytes:
    """``password`` if usable as a link password; ValueError (Go's text) if too long."""
    if len(password) > PASSWORD_MAX:
        raise ValueError("invalid password supplied")
    return bytes(password)


def password_hash(public_key: bytes, password: bytes = b"") -> bytes:
    """BLAKE2b-512 of ``public_key`` keyed with ``password``: what the handshake signs.

    The multicast beacon of 0.5 carries the same hash (docs/spec-v05.md §7.4).
    """
    # libsodium's BLAKE2b: hashlib would map libcrypto (~3.4 MiB) into every node.
    return sodium.crypto_generichash_blake2b_salt_personal(
        bytes(public_key), digest_size=HASH_SIZE, key=bytes(password)
    )


@dataclass(frozen=True, slots=True)
class Metadata:
    """One side's handshake.  ``public_key`` is ``b""`` when the peer sent none."""

    public_key: bytes
    signature: bytes
    priority: int = 0
    major: int = VERSION_MAJOR
    minor: int = VERSION_MINOR

    @classmethod
    def signed(cls, key: NodeKey, priority: int = 0, password: bytes = b"") -> Metadata:
        """Our handshake: version 0.5, our key and link priority, signed for ``password``."""
        if not 0 <= priority <= 255:
            raise ValueError(f"a link priority is 0-255, not {priority}")
        signature = key.sign(password_hash(key.public, check_password(password)))
        return cls(key.public, signature, priority)

    def fields(self) -> bytes:
        """The TLV fields, in the order and form Go writes them."""
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValueError(f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(self.public_key)}")
        return b"".join(
            (
                _FIELD.pack(META_VERSION_MAJOR, 2),
                _U16.pack(self.major),
                _FIELD.pack(META_VERSION_MINOR, 2),
                _U16.pack(self.minor),
                _FIELD.pack(META_PUBLIC_KEY, PUBLIC_KEY_SIZE),
                self.public_key,
                _FIELD.pack(META_PRIORITY, 1),
                bytes((self.priority,)),
            )
        )

    def encode(self) -> bytes:
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"a signature is {SIGNATURE_SIZE} bytes, not {len(self.signature)}")
        rest = self.fields() + self.signature
        return MAGIC + _U16.pack(len(rest)) + rest

    def verify(self, password: bytes = b"") -> bool:
        """Whether the signature matches the key and ``password`` (never raises)."""
        if len(self.public_key) != PUBLIC_KEY_SIZE or len(password) > PASSWORD_MAX:
            return False
        return verify(self.public_key, password_hash(self.public_key, password), self.signature)


def encode_meta(key: NodeKey, priority: int = 0, password: bytes = b"") -> bytes:
    """Our handshake bytes (123 of them)."""
    return Metadata.signed(key, priority, password).encode()


def body_length(header: bytes) -> int:
    """How many bytes follow the 6-byte header; HandshakeError as Go refuses the header."""
    if len(header) < HEADER_SIZE:
        raise DecodeError("handshake header: too short")
    if bytes(header[:4]) != MAGIC:
        raise HandshakeError(ERR_PREAMBLE)
    (length,) = _U16.unpack_from(header, 4)
    if length < SIGNATURE_SIZE:
        raise HandshakeError(ERR_LENGTH)
    return length


def sniff_version(prefix: bytes) -> tuple[int, int] | None:
    """The protocol a peer speaks, from the first bytes it sent (docs/spec-v05.md §2.5).

    ``(0, 4)`` for the 38-byte 0.4 metadata (``meta 00 04``), ``(0, 5)`` for the 0.5 form
    (a length of 64 or more after ``meta``; its TLVs hold the real version), None while
    fewer than 6 bytes are known.  Anything else raises :class:`HandshakeError`.
    """
    if len(prefix) < HEADER_SIZE:
        if bytes(prefix[:4]) != MAGIC[: len(prefix[:4])]:
            raise HandshakeError(ERR_PREAMBLE)
        return None
    if bytes(prefix[4:6]) == b"\x00\x04" and bytes(prefix[:4]) == MAGIC:
        return (0, 4)
    body_length(prefix)
    return (VERSION_MAJOR, VERSION_MINOR)


def decode_meta(data: bytes) -> Metadata:
    """The whole handshake (header, fields, signature); the signature is not checked here.

    Unknown fields are skipped and the last copy of a repeated field wins, as in every Go
    version.  A known field of the wrong size, a field running past the signature or stray
    bytes before it raise :class:`HandshakeError` (``ERR_LENGTH``), as 0.5.14 does; 0.5.12
    let them pass (docs/spec-v05.md §2.2) but never sends them.
    """
    length = body_length(data)
    if len(data) != HEADER_SIZE + length:
        raise DecodeError(f"handshake: {len(data)} bytes, the header says {HEADER_SIZE + length}")
    buf = bytes(data)
    end = len(buf) - SIGNATURE_SIZE
    fields: dict[int, bytes] = {}
    pos = HEADER_SIZE
    while pos < end:
        if end - pos < _FIELD.size:
            raise HandshakeError(ERR_LENGTH)
        kind, size = _FIELD.unpack_from(buf, pos)
        pos += _FIELD.size
        need = _FIELD_SIZES.get(kind, size)
        if end - pos < size or size != need:
            raise HandshakeError(ERR_LENGTH)
        fields[kind] = buf[pos : pos + size]
        pos += size
    major = _U16.unpack(fields[META_VERSION_MAJOR])[0] if META_VERSION_MAJOR in fields else 0
    minor = _U16.unpack(fields[META_VERSION_MINOR])[0] if META_VERSION_MINOR in fields else 0
    priority = fields[META_PRIORITY][0] if META_PRIORITY in fields else 0
    return Metadata(fields.get(META_PUBLIC_KEY, b""), buf[end:], priority, major, minor)


def check_meta(meta: Metadata, password: bytes = b"") -> bytes:
    """The remote key of a decoded handshake, after Go's checks in Go's order.

    The signature is checked before the version, so a peer of another version whose
    signature scheme differs is told "password does not match remote side".
    """
    if len(password) > PASSWORD_MAX:
        raise HandshakeError(ERR_PASSWORD_INVALID)
    if len(meta.public_key) != PUBLIC_KEY_SIZE:
        raise HandshakeError(ERR_HASH)
    if not verify(meta.public_key, password_hash(meta.public_key, password), meta.signature):
        raise HandshakeError(ERR_PASSWORD)
    if (meta.major, meta.minor) != (VERSION_MAJOR, VERSION_MINOR):
        raise HandshakeError(
            f"remote node incompatible version (local {VERSION_MAJOR}.{VERSION_MINOR}, "
            f"remote {meta.major}.{meta.minor})",
            (meta.major, meta.minor),
        )
    return meta.public_key
