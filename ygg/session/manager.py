"""Encrypted sessions over the network layer (spec §12.5–12.7), sans-IO.

A :class:`SessionManager` turns messages for a remote key into session packets handed to
``send(dest, payload)``, and session packets from the network layer into messages handed
to ``deliver(source, message)``.  Time comes from the ``IReactorTime`` it is given.

State changes are finished before ``send`` or ``deliver`` is called, so either may call
back into the manager; the order of packets a single event produces is the Go node's
(an ack before the buffered message, §18).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ygg.errors import DecodeError
from ygg.keys import PUBLIC_KEY_SIZE, NodeKey, ed25519_public_to_x25519
from ygg.session.crypto import KEY_SIZE, KeyPair, new_key_pair, open_box, seal
from ygg.session.ratchet import U64, Session
from ygg.session.wire import (
    ACK,
    DUMMY,
    INIT,
    TRAFFIC,
    TRAFFIC_OVERHEAD,
    Init,
    decode_init,
    decode_traffic_header,
    encode_init,
    encode_traffic_header,
)
from ygg.timers import cancel, expire_idle

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

NETWORK_MTU = 53129
SESSION_TIMEOUT = 60.0  # idle session, and a pre-session buffer after its last write
ROTATION_INTERVAL = 60.0  # keys advance, and recvNonce rises, at most this often


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One row of GetSessions (§15): message bytes received / sent, seconds since creation."""

    key: bytes
    rx: int
    tx: int
    uptime: float


class _Buffer:
    """The latest message for a key without a session, and the init that asks for one."""

    __slots__ = ("current", "data", "init", "last_write", "next", "timer")

    def __init__(self, init: Init, current: KeyPair, next: KeyPair, now: float) -> None:
        self.init = init
        self.current = current
        self.next = next
        self.data = b""
        self.last_write = now
        self.timer: IDelayedCall | None = None


class SessionManager:
    """The encrypted layer of one node: sessions per remote key, the pre-session buffers."""

    OVERHEAD = TRAFFIC_OVERHEAD  # 79 bytes of session framing the MTU leaves room for

    def __init__(
        self,
        key: NodeKey,
        clock: IReactorTime,
        send: Callable[[bytes, bytes], None],
        deliver: Callable[[bytes, bytes], None],
        network_mtu: int = NETWORK_MTU,
    ) -> None:
        self._key = key
        self._x25519 = key.x25519_private()
        self._clock = clock
        self._send = send
        self._deliver = deliver
        self._mtu = network_mtu - self.OVERHEAD
        self._sessions: dict[bytes, Session] = {}
        self._buffers: dict[bytes, _Buffer] = {}
        self._closed = False
        self.drops: Counter[str] = Counter()

    @property
    def mtu(self) -> int:
        """The largest message :meth:`write_to` accepts."""
        return self._mtu

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

    def _send_init(self, dest: bytes, kind: int, init: Init) -> None:
        recipient = ed25519_public_to_x25519(dest)
        self._send(dest, encode_init(kind, init, new_key_pair(), recipient, self._key))

    def _init_from(self, session: Session) -> Init:
        return Init(
            session.send.public,
            session.next_local.public,
            session.local_key_seq,
            int(self._clock.seconds()),
        )

    # -- receiving --------------------------------------------------------------------

    def handle_packet(self, source: bytes, data: bytes) -> None:
        """A payload the network layer delivered from ``source``.  Bad input is dropped and
        counted in :attr:`drops`, never raised."""
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
                self._answer_stranger(source)
        elif kind == INIT or kind == ACK:
            self._handle_init(source, data)
        elif kind == DUMMY:
            self.drops["dummy"] += 1
        else:
            self.drops["bad-type"] += 1

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
            self._send_init(source, INIT, self._init_from(session))
            return
        plaintext = open_box(data[offset:], nonce, shared)
        if plaintext is None:
            self.drops["open-failed"] += 1
            self._send_init(source, INIT, self._init_from(session))
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
        session.rx += len(message)
        session.last_activity = now
        self._deliver(source, message)

    def _answer_stranger(self, source: bytes) -> None:
        """Traffic without a session: an init with throw-away keys, and no state kept."""
        self.drops["no-session"] += 1
        if self._closed or len(source) != PUBLIC_KEY_SIZE:
            return
        now = int(self._clock.seconds())
        self._send_init(source, INIT, Init(new_key_pair().public, new_key_pair().public, 0, now))

    def _handle_init(self, source: bytes, data: bytes) -> None:
        try:
            kind, init = decode_init(data, self._x25519, source)
        except DecodeError as exc:
            self.drops[str(exc)] += 1
            return
        if self._closed:
            self.drops["closed"] += 1
            return
        now = self._clock.seconds()
        session = self._sessions.get(source)
        existed = session is not None
        buffer = None
        if session is None:
            buffer = self._buffers.pop(source, None)
            if buffer is not None:
                cancel(buffer.timer)
                send, next_local = buffer.current, buffer.next
            else:
                send, next_local = new_key_pair(), new_key_pair()
            session = Session(
                init.current, init.next, init.seq, now, new_key_pair(), send, next_local
            )
            session.timer = self._clock.callLater(
                SESSION_TIMEOUT, self._expire_session, source, session
            )
            self._sessions[source] = session
        if init.seq > session.seq:
            session.update(init)
            session.last_activity = now
            if kind == INIT or not existed:  # an ack creating the session is answered like an init
                self._send_init(source, ACK, self._init_from(session))
        else:
            self.drops["stale-init"] += 1
        if buffer is not None:
            self._seal(source, session, buffer.data)

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
