"""Encrypted sessions over the network layer (spec §12.5–12.7), sans-IO.

A :class:`SessionManager` turns messages for a remote key into session packets handed to
``send(dest, payload)``, and session packets from the network layer into messages handed
to ``deliver(source, message)``.  Time comes from the ``IReactorTime`` it is given.

State changes are finished before ``send`` or ``deliver`` is called, so either may call
back into the manager; the order of packets a single event produces is the Go node's
(an ack before the buffered message, §18).

Session packets come from keys nobody authenticated, so the public-key work they can cause
is bounded (docs/reliability.md): cheap checks first; answers to traffic of unknown
sessions and inits from keys without a session are paid for from per-link and shared
token budgets (:mod:`ygg.session.budget`); sessions made from an init are *pending* until
the remote's traffic opens, and the pending ones are capped, evicting the oldest of the
link that holds most; replies to such packets go out through ``reply``, which keeps no
route state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ygg.errors import DecodeError
from ygg.keys import PUBLIC_KEY_SIZE, NodeKey, ed25519_public_to_x25519
from ygg.network.router import MTU as NETWORK_MTU
from ygg.session.budget import Budget
from ygg.session.crypto import KEY_SIZE, KeyPair, new_key_pair, open_box, seal
from ygg.session.ratchet import U64, Session
from ygg.session.wire import (
    ACK,
    DUMMY,
    INIT,
    INIT_SIZE,
    TRAFFIC,
    TRAFFIC_OVERHEAD,
    TRAFFIC_OVERHEAD_MIN,
    Init,
    decode_init,
    decode_traffic_header,
    encode_init,
    encode_traffic_header,
)
from ygg.timers import cancel, expire_idle

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

SESSION_TIMEOUT = 60.0  # idle session, and a pre-session buffer after its last write
ROTATION_INTERVAL = 60.0  # keys advance, and recvNonce rises, at most this often


@dataclass(frozen=True, slots=True)
class Limits:
    """What unauthenticated session packets may cost, per second (a budget holds one
    second's worth).  A link gets a quarter of the shared budget, so it takes four flooding
    links to spend what a quiet one needs."""

    answers_per_link: float = 50.0  # inits answering traffic of unknown sessions
    answers: float = 200.0  # … from all links together
    opens_per_link: float = 50.0  # inits and acks opened for keys without a session
    opens: float = 200.0  # … from all links together
    inits_per_key: int = 4  # inits and acks a key with a session or buffer opens for free
    pending: int = 512  # sessions whose remote has not yet sent traffic that opens


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One row of GetSessions (§15): message bytes received / sent, seconds since creation."""

    key: bytes
    rx: int
    tx: int
    uptime: float


class _Buffer:
    """The latest message for a key without a session, and the init that asks for one."""

    __slots__ = (
        "current",
        "data",
        "init",
        "init_count",
        "init_second",
        "last_write",
        "next",
        "timer",
    )

    def __init__(self, init: Init, current: KeyPair, next: KeyPair, now: float) -> None:
        self.init = init
        self.current = current
        self.next = next
        self.data = b""
        self.last_write = now
        self.timer: IDelayedCall | None = None
        self.init_second = 0  # as Session's: acks opened this second for free
        self.init_count = 0


class BaseSessionManager:
    """The encrypted layer of one node: sessions per remote key, the pre-session buffers.

    Everything but the receive rule for session traffic, which is where ironwood v0.4
    (ec61cea) and v0.5 (743fe2f) differ: their session managers, buffers, inits and acks
    are the same code.  A subclass names its ``Session`` class and implements
    :meth:`_open`; :class:`SessionManager` is v0.4's, ``ygg.v05.session`` has v0.5's.
    """

    OVERHEAD = TRAFFIC_OVERHEAD  # 79 bytes of session framing the MTU leaves room for
    _session_type: type[Session] = Session

    def __init__(
        self,
        key: NodeKey,
        clock: IReactorTime,
        send: Callable[[bytes, bytes], None],
        deliver: Callable[[bytes, bytes], None],
        network_mtu: int = NETWORK_MTU,
        reply: Callable[[bytes, bytes], None] | None = None,
        limits: Limits = Limits(),
    ) -> None:
        """``reply`` sends like ``send`` but keeps no state for the destination (the
        router's route entry); it carries answers to packets whose source may be made up."""
        self._key = key
        self._x25519 = key.x25519_private()
        self._clock = clock
        self._send = send
        self._reply = reply or send
        self._deliver = deliver
        self._mtu = network_mtu - self.OVERHEAD
        self._sessions: dict[bytes, Session] = {}
        self._buffers: dict[bytes, _Buffer] = {}
        self._closed = False
        #: Signed ahead of every init and ack (0.5.14's group secret); empty in v0.4.
        self._group = b""
        self._limits = limits
        now = clock.seconds()
        self._answers = Budget(limits.answers_per_link, limits.answers, now)
        self._opens = Budget(limits.opens_per_link, limits.opens, now)
        # Pending sessions per link, oldest first.
        self._pending: dict[Hashable, dict[bytes, None]] = {}
        self._pending_count = 0
        #: Packets dropped and work refused, by reason.
        self.drops: Counter[str] = Counter()

    @property
    def mtu(self) -> int:
        """The largest message :meth:`write_to` accepts."""
        return self._mtu

    @property
    def pending(self) -> int:
        """Sessions made from an init whose remote has not yet sent traffic that opens."""
        return self._pending_count

    # -- sending ----------------------------------------------------------------------

    def write_to(self, dest: bytes, message: bytes) -> None:
        """Send ``message`` to the node with ed25519 key ``dest``.

        Without a session the message is kept (only the latest one) until a session is up,
        and an init is sent.  Raises ValueError for an oversized message or a bad key.
        """
        if len(message) > self._mtu:
            raise ValueError("oversized message")
        session = self._sessions.get(dest)
        if session is not None:
            if session.pending:  # we talk to it: no longer ours to evict
                self._unpend(dest, session)
            self._seal(dest, session, message)
        else:
            self._buffer_and_init(dest, message)

    def _seal(self, dest: bytes, session: Session, message: bytes) -> None:
        nonce = session.send_nonce + 1
        if nonce > U64:  # Go's nonce wrapped to 0: move to fresh keys
            session.rotate_local()
            session.recompute(0, 0)
            nonce = 0
        session.send_nonce = nonce
        packet = encode_traffic_header(session.local_key_seq, session.remote_key_seq, nonce) + seal(
            session.next_local.public + message, nonce, session.send_shared
        )
        session.tx += len(message)
        session.last_activity = self._clock.seconds()
        self._send(dest, packet)

    def _buffer_and_init(self, dest: bytes, message: bytes) -> None:
        if self._closed:
            raise ValueError("closed")
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("bad destination address")
        now = self._clock.seconds()
        buffer = self._buffers.get(dest)
        if buffer is None:
            current, next_ = new_key_pair(), new_key_pair()
            buffer = _Buffer(Init(current.public, next_.public, 0, int(now)), current, next_, now)
            buffer.timer = self._clock.callLater(SESSION_TIMEOUT, self._expire_buffer, dest, buffer)
            self._buffers[dest] = buffer
        elif int(now) > buffer.init.seq:
            # Same keys, a newer seq.  ironwood resends the very same init, which a remote
            # that made a session from it (and whose ack was lost) ignores as stale until
            # that session times out a minute later; a newer seq it takes and acks.
            old = buffer.init
            buffer.init = Init(old.current, old.next, old.key_seq, int(now))
        buffer.data = bytes(message)
        buffer.last_write = now
        self._send_init(dest, INIT, buffer.init)

    def _send_init(self, dest: bytes, kind: int, init: Init, reply: bool = False) -> None:
        recipient = ed25519_public_to_x25519(dest)
        packet = encode_init(kind, init, new_key_pair(), recipient, self._key, self._group)
        (self._reply if reply else self._send)(dest, packet)

    def _init_from(self, session: Session) -> Init:
        return Init(
            session.send.public,
            session.next_local.public,
            session.local_key_seq,
            int(self._clock.seconds()),
        )

    # -- receiving --------------------------------------------------------------------

    def handle_packet(self, source: bytes, data: bytes, link: Hashable = None) -> None:
        """A payload the network layer delivered from ``source``, which came in on ``link``
        (any hashable naming it; None for our own).  Bad input is dropped and counted in
        :attr:`drops`, never raised."""
        if not data:
            self.drops["empty"] += 1
            return
        if type(data) is not bytes:
            data = bytes(data)
        kind = data[0]
        if kind == TRAFFIC:
            session = self._sessions.get(source)
            if session is not None:
                self._open(source, session, data)
            else:
                self._answer_stranger(source, data, link)
        elif kind == INIT or kind == ACK:
            self._handle_init(source, data, link)
        elif kind == DUMMY:
            self.drops["dummy"] += 1
        else:
            self.drops["bad-type"] += 1

    def _open(self, source: bytes, session: Session, data: bytes) -> None:
        """Traffic of an existing session: open it by the version's rules and deliver it."""
        raise NotImplementedError

    def _ask_for_init(self, source: bytes, session: Session) -> None:
        """Traffic of a session did not open: send an init, at most one a second (a second
        one would carry the same seq, which the remote ignores)."""
        second = int(self._clock.seconds())
        if session.init_sent == second:
            self.drops["init-throttled"] += 1
            return
        session.init_sent = second
        self._send_init(source, INIT, self._init_from(session), session.pending)

    def _answer_stranger(self, source: bytes, data: bytes, link: Hashable) -> None:
        """Traffic without a session: an init with throw-away keys, and no state kept.

        Cheap checks first, then only while the link's and the shared answer budgets last."""
        self.drops["no-session"] += 1
        if self._closed or len(source) != PUBLIC_KEY_SIZE:
            return
        if len(data) < TRAFFIC_OVERHEAD_MIN:
            self.drops["short"] += 1
            return
        if source == self._key.public:
            self.drops["own-key"] += 1
            return
        now = self._clock.seconds()
        refused = self._answers.take(link, now)
        if refused is not None:
            self.drops["answer-budget-" + refused] += 1
            return
        throwaway = Init(new_key_pair().public, new_key_pair().public, 0, int(now))
        self._send_init(source, INIT, throwaway, reply=True)

    def _handle_init(self, source: bytes, data: bytes, link: Hashable) -> None:
        if len(data) != INIT_SIZE:
            self.drops["bad-init"] += 1
            return
        if self._closed:
            self.drops["closed"] += 1
            return
        now = self._clock.seconds()
        session = self._sessions.get(source)
        # Opening an init costs an X25519 product and a signature check: a key we have a
        # session or a buffer for gets a few a second for free, other keys pay from the
        # budgets of their link and of all links.
        known = session if session is not None else self._buffers.get(source)
        if known is None or not self._free_init(known, int(now)):
            refused = self._opens.take(link, now)
            if refused is not None:
                self.drops["init-budget-" + refused] += 1
                return
        try:
            kind, init = decode_init(data, self._x25519, source, self._group)
        except DecodeError as exc:
            self.drops[str(exc)] += 1
            return
        buffer = None
        if session is None:
            buffer = self._buffers.pop(source, None)
            if buffer is not None:  # the ack to our init: a session we asked for
                cancel(buffer.timer)
                session = self._session_type(init, now, buffer.current, buffer.next)
            else:
                self._make_room()
                session = self._session_type(init, now, new_key_pair(), new_key_pair(), link)
                self._pend(source, session)
            session.timer = self._clock.callLater(
                SESSION_TIMEOUT, self._expire_session, source, session
            )
            self._sessions[source] = session
            # A new session is answered with an ack, whether an init or an ack made it.
            self._send_init(source, ACK, self._init_from(session), session.pending)
        elif init.seq > session.seq:
            session.update(init)
            session.last_activity = now
            if kind == INIT:
                self._send_init(source, ACK, self._init_from(session), session.pending)
        else:
            self.drops["stale-init"] += 1
        if buffer is not None:
            self._seal(source, session, buffer.data)

    def _free_init(self, entry: Session | _Buffer, second: int) -> bool:
        """Whether ``entry``'s key may open another init this second without the budget."""
        if entry.init_second != second:
            entry.init_second = second
            entry.init_count = 0
        if entry.init_count >= self._limits.inits_per_key:
            return False
        entry.init_count += 1
        return True

    # -- pending sessions -------------------------------------------------------------

    def _pend(self, key: bytes, session: Session) -> None:
        session.pending = True
        self._pending.setdefault(session.link, {})[key] = None
        self._pending_count += 1

    def _unpend(self, key: bytes, session: Session) -> None:
        session.pending = False
        keys = self._pending[session.link]
        del keys[key]
        if not keys:
            del self._pending[session.link]
        self._pending_count -= 1

    def _make_room(self) -> None:
        """At the cap, evict the oldest pending session of the link holding the most."""
        if self._pending_count < self._limits.pending or not self._pending:
            return
        keys = max(self._pending.values(), key=len)
        key = next(iter(keys))
        session = self._sessions.pop(key)
        self._unpend(key, session)
        cancel(session.timer)
        self.drops["pending-evicted"] += 1

    # -- timers -----------------------------------------------------------------------

    def _expire_session(self, key: bytes, session: Session) -> None:
        expire_idle(
            self._clock,
            self._sessions,
            key,
            session,
            session.last_activity,
            SESSION_TIMEOUT,
            self._expire_session,
        )
        if session.pending and self._sessions.get(key) is not session:
            self._unpend(key, session)

    def _expire_buffer(self, key: bytes, buffer: _Buffer) -> None:
        expire_idle(
            self._clock,
            self._buffers,
            key,
            buffer,
            buffer.last_write,
            SESSION_TIMEOUT,
            self._expire_buffer,
        )

    # -- inspection, shutdown ---------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """GetSessions: one row per live session."""
        now = self._clock.seconds()
        return [
            SessionInfo(key, session.rx, session.tx, now - session.since)
            for key, session in self._sessions.items()
        ]

    def close(self) -> None:
        """Cancel every timer and forget all sessions and buffers; later writes fail."""
        self._closed = True
        for session in self._sessions.values():
            cancel(session.timer)
        for buffer in self._buffers.values():
            cancel(buffer.timer)
        self._sessions.clear()
        self._buffers.clear()
        self._pending.clear()
        self._pending_count = 0


class SessionManager(BaseSessionManager):
    """v0.4's session layer (ironwood ec61cea): the receive nonce moves once a minute."""

    def _open(self, source: bytes, session: Session, data: bytes) -> None:
        try:
            their_seq, our_seq, nonce, offset = decode_traffic_header(data)
        except DecodeError as exc:
            self.drops[str(exc)] += 1
            return
        rks = session.remote_key_seq
        to_recv = (our_seq + 1) & U64 == session.local_key_seq
        if their_seq == rks and to_recv:
            if nonce <= session.recv_nonce:
                self.drops["replay"] += 1
                return
            shared = session.recv_shared
            ratchets = False
        elif their_seq == (rks + 1) & U64 and (to_recv or our_seq == session.local_key_seq):
            shared = session.next_recv_shared() if to_recv else session.next_send_shared()
            ratchets = True
        else:
            self.drops["unknown-keys"] += 1
            self._ask_for_init(source, session)
            return
        plaintext = open_box(data[offset:], nonce, shared)
        if plaintext is None:
            self.drops["open-failed"] += 1
            self._ask_for_init(source, session)
            return
        if len(plaintext) < KEY_SIZE:
            self.drops["short-plaintext"] += 1
            return
        now = self._clock.seconds()
        rotated = session.rotated
        if rotated is None or now - rotated > ROTATION_INTERVAL:
            if ratchets:
                session.ratchet(plaintext[:KEY_SIZE], nonce)
            else:
                session.recv_nonce = nonce
            session.rotated = now
        message = plaintext[KEY_SIZE:]
        if session.pending:  # the remote holds the keys: the session is established
            self._unpend(source, session)
        session.rx += len(message)
        session.last_activity = now
        self._deliver(source, message)
