"""The key state of one session and how it moves (spec §12.5).

The remote side is known by two public keys, ``current`` and ``next``, numbered by the
remote key sequence (rks).  We hold three key pairs, ``recv``, ``send`` and ``next_local``,
numbered by the local key sequence (lks).  Traffic we seal carries ``next_local.public``
inside the box, so the remote learns our next key before we move to it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from ygg.session.crypto import KeyPair, new_key_pair, precompute

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.session.wire import Init

U64 = (1 << 64) - 1


class Session:
    """Per remote key: the two sides' keys, key sequences, nonces and counters.

    Sequence numbers and nonces are Go ``uint64``: arithmetic on them wraps at 2**64.
    """

    __slots__ = (
        "_next_recv_shared",
        "_next_send_shared",
        "current",
        "init_count",
        "init_second",
        "init_sent",
        "last_activity",
        "link",
        "local_key_seq",
        "next",
        "next_local",
        "pending",
        "recv",
        "recv_nonce",
        "recv_shared",
        "remote_key_seq",
        "rotated",
        "rx",
        "send",
        "send_nonce",
        "send_shared",
        "seq",
        "since",
        "timer",
        "tx",
    )

    def __init__(
        self, init: Init, now: float, send: KeyPair, next_local: KeyPair, link: Hashable = None
    ) -> None:
        """The session an accepted init or ack makes: a new session (§12.5) at once updated
        by that init.  ``send`` and ``next_local`` are the pairs the new session holds in
        those places (fresh, or a pre-session buffer's); the update moves them down a place
        and adds a fresh next pair.  The recv pair and shared keys a new session would make
        first are thrown away by that update, so they are not made."""
        self.current = init.current
        self.next = init.next
        self.seq = init.seq
        self.remote_key_seq = init.key_seq
        self.local_key_seq = 1
        self.recv = send
        self.send = next_local
        self.next_local = new_key_pair()
        self.since = now
        self.last_activity = now
        self.rotated: float | None = None
        self.rx = 0
        self.tx = 0
        self.timer: IDelayedCall | None = None
        #: The link the creating init came in on, and whether the remote has yet to prove
        #: it holds the keys (by traffic that opens) — until then the session may be evicted.
        self.link = link
        self.pending = False
        #: Inits and acks from this key opened in the second ``init_second``; the second
        #: of the last init we sent because its traffic did not open.
        self.init_second = 0
        self.init_count = 0
        self.init_sent = 0
        self.recompute(0, 0)

    def recompute(self, recv_nonce: int, send_nonce: int) -> None:
        """Shared keys from ``current`` and our recv/send keys; set both nonces."""
        self.recv_shared = precompute(self.current, self.recv.private)
        self.send_shared = precompute(self.current, self.send.private)
        self.recv_nonce = recv_nonce
        self.send_nonce = send_nonce
        self._next_send_shared: bytes | None = None
        self._next_recv_shared: bytes | None = None

    def rotate_local(self) -> None:
        """recv ← send ← next_local ← fresh; lks + 1.  The caller recomputes."""
        self.recv = self.send
        self.send = self.next_local
        self.next_local = new_key_pair()
        self.local_key_seq = (self.local_key_seq + 1) & U64

    def update(self, init: Init) -> None:
        """Take the remote's keys from an accepted init or ack; the send nonce never goes back."""
        self.current = init.current
        self.next = init.next
        self.seq = init.seq
        self.remote_key_seq = init.key_seq
        self.rotate_local()
        self.recompute(0, self.send_nonce)

    def ratchet(self, inner_key: bytes, nonce: int) -> None:
        """The remote moved to its next key (traffic in a "next" case): both sides advance."""
        self.current = self.next
        self.next = inner_key
        self.remote_key_seq = (self.remote_key_seq + 1) & U64
        self.rotate_local()
        self.recompute(nonce, 0)

    def next_send_shared(self) -> bytes:
        """Box key for traffic from the remote's next key to our send key (cached)."""
        shared = self._next_send_shared
        if shared is None:
            shared = self._next_send_shared = precompute(self.next, self.send.private)
        return shared

    def next_recv_shared(self) -> bytes:
        """Box key for traffic from the remote's next key to our recv key (cached)."""
        shared = self._next_recv_shared
        if shared is None:
            shared = self._next_recv_shared = precompute(self.next, self.recv.private)
        return shared
