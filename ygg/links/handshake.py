"""The 38-byte version handshake ("metadata") at the start of every link (spec §2.6).

Both sides send ``meta`` ‖ major ‖ minor ‖ ed25519 public key as soon as the stream is up,
then read the peer's 38 bytes.  Nothing is signed: the key pins and AllowedPublicKeys
checks that follow (:func:`check_remote_key`) are all the authentication 0.4.7 has.
"""

from __future__ import annotations

from collections.abc import Collection

from ygg.errors import DecodeError
from ygg.keys import PUBLIC_KEY_SIZE

MAGIC = b"meta"
VERSION_MAJOR = 0
VERSION_MINOR = 4
META_SIZE = len(MAGIC) + 2 + PUBLIC_KEY_SIZE  # 38

_HEADER = MAGIC + bytes((VERSION_MAJOR, VERSION_MINOR))


class HandshakeError(DecodeError):
    """The handshake failed a check; ``str(e)`` is the Go node's error text.

    ``remote_version`` is the peer's (major, minor) when the versions differ, for the
    ``… is incompatible version (local 0.4, remote X.Y)`` debug line.
    """

    def __init__(self, message: str, remote_version: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.remote_version = remote_version


def encode_meta(public_key: bytes) -> bytes:
    """Our 38 handshake bytes."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    return _HEADER + bytes(public_key)


def decode_meta(data: bytes) -> bytes:
    """The remote public key from its 38 handshake bytes.

    Wrong length: :class:`~ygg.errors.DecodeError`; magic or version other than
    ``meta`` 0.4: :class:`HandshakeError` ``remote node is incompatible version``.
    """
    if len(data) != META_SIZE:
        raise DecodeError("failed to decode metadata")
    data = bytes(data)
    if data[:6] != _HEADER:
        raise HandshakeError("remote node is incompatible version", (data[4], data[5]))
    return data[6:]


def check_remote_key(
    remote: bytes,
    *,
    pinned: Collection[bytes],
    allowed: Collection[bytes],
    inbound: bool,
    forced: bool,
) -> None:
    """The key checks after a good handshake, in the Go node's order (§2.6 checks 5–6).

    ``pinned``: the ``?key=`` pins of the dial URI (none for inbound links);
    ``allowed``: AllowedPublicKeys; ``forced``: an inbound link from a link-local address,
    which bypasses AllowedPublicKeys.  Raises :class:`HandshakeError`.
    """
    if pinned and bytes(remote) not in pinned:
        raise HandshakeError("node public key that does not match pinned keys")
    if inbound and not forced and allowed and bytes(remote) not in allowed:
        raise HandshakeError(f'node public key "{bytes(remote).hex()}" is not in AllowedPublicKeys')
