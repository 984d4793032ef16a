"""0.5.14's session group password (docs/spec-v05.md §6.8).

Nodes configured with the same ``GroupPassword`` sign their inits and acks over a secret
derived from it ahead of the usual fields; the packets are unchanged, so a node with
another password (or none) fails the signature check and no session forms.
"""

from __future__ import annotations

import nacl.bindings as sodium

_DOMAIN = b"ironwood/encrypted\x00"


def group_secret(password: str | bytes | None) -> bytes:
    """The 32-byte secret of ``password`` (a str is taken as UTF-8, as Go's string bytes),
    or b"" when there is none: then inits are signed exactly as 0.5.12 signs them."""
    if not password:
        return b""
    if isinstance(password, str):
        password = password.encode()
    return sodium.crypto_hash_sha256(_DOMAIN + password)  # libsodium's: no libcrypto
