"""The key state of one v0.5 session and its receive rule (docs/spec-v05.md §6.5–6.6).

The keys move exactly as in v0.4 (``ygg.session.ratchet``): a ratchet and an update each
shift our three pairs down a place, and ``fixShared`` recomputes the shared keys.  What
v0.5 changed is what a traffic packet is checked against.  Each of the three ways a packet
can be keyed has its own nonce, and every packet that opens raises it:

* current → recv (the remote's current key to our recv key): ``recv_nonce``, raised on
  every good packet — in v0.4 only once a minute, so replays within it were taken;
* next → send and next → recv (the remote moved to its next key): ``next_send_nonce`` and
  ``next_recv_nonce``, both reset whenever the shared keys are recomputed — v0.4 had no
  check there at all.

The ratchet itself (the remote's next key becomes its current) still happens at most once
a minute; between ratchets, packets on a "next" case open and raise that case's nonce only.
"""

from __future__ import annotations

from ygg.session import ratchet as v04
from ygg.session.ratchet import U64

#: The three receive cases (the header's key seqs against ours), and "none of them".
UNKNOWN, CURRENT, NEXT_SEND, NEXT_RECV = 0, 1, 2, 3
RATCHET_INTERVAL = 60.0  # the remote's next key is taken at most this often


class Session(v04.Session):
    """Per remote key, as in v0.4, plus the nonces of the two "next" cases."""

    __slots__ = ("next_recv_nonce", "next_send_nonce")

    def recompute(self, recv_nonce: int, send_nonce: int) -> None:
        """ironwood's ``_fixShared``: shared keys anew, both "next" nonces back to 0."""
        super().recompute(recv_nonce, send_nonce)
        self.next_send_nonce = 0
        self.next_recv_nonce = 0

    def receive_key(self, their_seq: int, our_seq: int, nonce: int) -> tuple[int, bytes | None]:
        """(case, box key) for traffic whose header carries the sender's key seq
        ``their_seq``, its view of ours ``our_seq``, and ``nonce``.  The case is UNKNOWN
        when the seqs fit none (the caller asks for an init); the key is None when the
        nonce is not above the case's (a replay: dropped without an answer)."""
        rks = self.remote_key_seq
        lks = self.local_key_seq
        to_recv = (our_seq + 1) & U64 == lks
        if their_seq == rks:
            if not to_recv:
                return UNKNOWN, None
            return CURRENT, self.recv_shared if nonce > self.recv_nonce else None
        if their_seq != (rks + 1) & U64:
            return UNKNOWN, None
        if our_seq == lks:
            return NEXT_SEND, self.next_send_shared() if nonce > self.next_send_nonce else None
        if to_recv:
            return NEXT_RECV, self.next_recv_shared() if nonce > self.next_recv_nonce else None
        return UNKNOWN, None

    def received(self, case: int, nonce: int, inner_key: bytes, now: float) -> None:
        """A packet of ``case`` opened: raise that case's nonce; on a "next" case, ratchet
        to the remote's next key (which the packet carried as ``inner_key``) unless the
        last ratchet was a minute ago or less."""
        if case == CURRENT:
            self.recv_nonce = nonce
            return
        if case == NEXT_SEND:
            self.next_send_nonce = nonce
        else:
            self.next_recv_nonce = nonce
        rotated = self.rotated
        if rotated is None or now - rotated > RATCHET_INTERVAL:
            self.ratchet(inner_key, nonce)  # recomputes: recv_nonce = nonce, the rest 0
            self.rotated = now
