"""Ed25519 node keys as yggdrasil 0.4.7 holds them, signatures, and the X25519 forms.

A configured private key is 64 bytes, seed ‖ public key (Go's ``ed25519.PrivateKey``).
The node's public key is the *last 32 bytes*, never re-derived from the seed, and signing
hashes those bytes too; libsodium's ``crypto_sign`` with the same 64 bytes does exactly that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import nacl.bindings as sodium
from nacl.exceptions import BadSignatureError

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
PRIVATE_KEY_SIZE = 64
SIGNATURE_SIZE = 64

_P = 2**255 - 19


@dataclass(frozen=True)
class NodeKey:
    """A node's signing key: ``private`` is seed ‖ public, as in the config file."""

    private: bytes
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.private) != PRIVATE_KEY_SIZE:
            raise ValueError(f"a private key is {PRIVATE_KEY_SIZE} bytes, not {len(self.private)}")
        object.__setattr__(self, "public", bytes(self.private[SEED_SIZE:]))

    @classmethod
    def generate(cls) -> NodeKey:
        return cls.from_seed(os.urandom(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        return cls(sodium.crypto_sign_seed_keypair(seed)[1])

    @property
    def seed(self) -> bytes:
        return self.private[:SEED_SIZE]

    def seed_matches_public(self) -> bool:
        """False for a key whose halves do not belong together (Go refuses to start)."""
        return sodium.crypto_sign_seed_keypair(self.seed)[0] == self.public

    def sign(self, message: bytes) -> bytes:
        return sodium.crypto_sign(message, self.private)[:SIGNATURE_SIZE]

    def x25519_private(self) -> bytes:
        """The Curve25519 scalar of this key (unclamped; X25519 clamps it)."""
        # libsodium's SHA-512: hashlib would load libcrypto (~3 MiB) for this one call.
        return sodium.crypto_hash_sha512(self.seed)[:32]


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification; never raises on malformed input."""
    if len(signature) != SIGNATURE_SIZE or len(public) != PUBLIC_KEY_SIZE:
        return False
    try:
        sodium.crypto_sign_open(bytes(signature) + bytes(message), bytes(public))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


#: Entries a VerifyCache keeps (~370 bytes each: 1.5 MiB full).  Replayed lookups
#: (bench/memory.py --verify-sim, --verify-traces) put the busiest node of a simulated
#: 1000-node network at 7,328 lookups of 5,607 distinct signatures in v0.4, and 4,096
#: entries already hit as often as an unbounded cache (23%; 1,024 entries: 21%); v0.5 and
#: the flapping soak need 1,024.  The cap was 65,536 (24 MiB full), which no run used.
VERIFY_CACHE_SIZE = 4096


class VerifyCache:
    """Remembers signatures that verified, so a tree hop relayed by many peers costs one check.

    The entry is the whole (key, message, signature) triple, so a hit is exactly as strong
    as a fresh verification.  Only successes are cached; a bounded FIFO keeps memory flat.
    ``hits`` and ``misses`` count lookups (a miss is a signature checked).
    """

    def __init__(self, size: int = VERIFY_CACHE_SIZE) -> None:
        self._size = size
        self._ok: dict[tuple[bytes, bytes, bytes], None] = {}
        self.hits = 0
        self.misses = 0
        if _TRACE_DIR:
            _trace(self)

    @property
    def entries(self) -> int:
        # Not __len__: an empty cache must stay truthy (``verifier or default``).
        return len(self._ok)

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        entry = (public, message, signature)
        if entry in self._ok:
            self.hits += 1
            return True
        self.misses += 1
        if not verify(public, message, signature):
            return False
        if len(self._ok) >= self._size:
            del self._ok[next(iter(self._ok))]
        self._ok[entry] = None
        return True


# -- a benchmark's view of the caches ----------------------------------------------------
#
# With YGG_VERIFY_TRACE=DIR in its environment, a node records every lookup of its caches
# (a hash of the triple and whether it verified, in order) and writes them with the counts
# to DIR/verify-<pid>-<n>.json when it exits: bench/memory.py --verify-traces replays them
# against caches of other sizes (how the size above was chosen; docs/performance.md).

_TRACE_DIR = os.environ.get("YGG_VERIFY_TRACE", "")
_traced: list[tuple[VerifyCache, list[int]]] = []


def _trace(cache: VerifyCache) -> None:
    lookups: list[int] = []
    verify_one = cache.verify

    def traced(public: bytes, message: bytes, signature: bytes) -> bool:
        ok = verify_one(public, message, signature)
        lookups.append(hash((public, message, signature)) << 1 | ok)
        return ok

    cache.verify = traced  # type: ignore[method-assign]
    if not _traced:
        import atexit

        atexit.register(_write_traces)
    _traced.append((cache, lookups))


def _write_traces() -> None:
    import json

    for n, (cache, lookups) in enumerate(_traced):
        if not lookups:
            continue
        record = {"size": cache._size, "hits": cache.hits, "misses": cache.misses}
        path = os.path.join(_TRACE_DIR, f"verify-{os.getpid()}-{n}.json")
        with open(path, "w") as f:
            json.dump({**record, "lookups": lookups}, f)


def ed25519_public_to_x25519(public: bytes) -> bytes:
    """The birational map u = (1 + y) / (1 - y) mod p, without the validation libsodium adds.

    The Go node converts any 32 bytes this way, so a peer key libsodium would refuse still
    gets a session.
    """
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    d = (1 - y) % _P
    # An inverse by Euclid is 9x faster than Fermat's d**(p-2); zero maps to zero either way.
    u = (1 + y) * pow(d, -1, _P) % _P if d else 0
    return u.to_bytes(32, "little")
