"""v0.5's session layer (docs/spec-v05.md §6), sans-IO, beside v0.4's.

Shaped like ``ygg.session.manager.SessionManager`` — ``write_to(dest, message)``,
``handle_packet(source, payload, link)``, the ``send``/``deliver``/``reply`` callables,
``sessions()``, ``drops``, ``close()`` — and built on the same base: ironwood's session
manager (buffers, inits, acks, timeouts) is the same code in v0.4 and v0.5, and so are
ygg's flood defences around it (budgets per link and shared, the pending cap, at most one
init a second for a failing session; docs/reliability.md).  What is v0.5's own:

* the receive rule (:mod:`ygg.v05.session.ratchet`): a nonce per receive case, raised by
  every packet that opens, so a replayed packet is dropped (count ``replay``) without an
  answer, and the remote's next key is still taken at most once a minute;
* the MTU: the v0.5 network carries 130993 bytes, so a message may be 130914;
* 0.5.14's optional group password, signed into every init and ack (§6.8).

``send`` is the v0.5 router's ``send`` (which looks a key up when it has no path to it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.session.crypto import KEY_SIZE, open_at, seal_packet
from ygg.session.manager import BaseSessionManager, Limits, SessionInfo
from ygg.session.ratchet import U64
from ygg.session.wire import TRAFFIC, decode_traffic_header, encode_traffic_header
from ygg.v05.network.wire import NETWORK_MTU
from ygg.v05.session.group import group_secret
from ygg.v05.session.ratchet import UNKNOWN, Session

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

__all__ = ["Limits", "SessionInfo", "SessionManager"]

_LIMITS = Limits()


class SessionManager(BaseSessionManager):
    """The encrypted layer of a v0.5 node: sessions per remote key, pre-session buffers."""

    _session_type = Session

    def __init__(
        self,
        key: NodeKey,
        clock: IReactorTime,
        send: Callable[[bytes, bytes], None],
        deliver: Callable[[bytes, bytes], None],
        network_mtu: int = NETWORK_MTU,
        reply: Callable[[bytes, bytes], None] | None = None,
        limits: Limits = _LIMITS,
        group_password: str | bytes | None = None,
    ) -> None:
        """As v0.4's; ``group_password`` is 0.5.14's ``GroupPassword``: when set, sessions
        form only with nodes configured with the same one (none: as 0.5.12)."""
        super().__init__(key, clock, send, deliver, network_mtu, reply, limits)
        self._group = group_secret(group_password)

    # The per-packet paths (ARCHITECTURE rule 7) are the base class's, written out for an
    # established session: no calls but the crypto's and the callables'.

    def write_to(self, dest: bytes, message: bytes) -> None:
        session = self._sessions.get(dest)
        if session is None or session.pending or len(message) > self._mtu:
            super().write_to(dest, message)  # buffers, inits, unpending, errors
            return
        nonce = session.send_nonce + 1
        if nonce > U64:
            super().write_to(dest, message)  # the base class moves to fresh keys
            return
        session.send_nonce = nonce
        packet = seal_packet(
            encode_traffic_header(session.local_key_seq, session.remote_key_seq, nonce),
            session.next_local.public,
            message,
            nonce,
            session.send_shared,
        )
        session.tx += len(message)
        session.last_activity = self._clock.seconds()
        self._send(dest, packet)

    def handle_packet(self, source: bytes, data: bytes, link: Hashable = None) -> None:
        if type(data) is bytes and data and data[0] == TRAFFIC:
            session = self._sessions.get(source)
            if session is not None:
                self._open(source, session, data)
                return
        super().handle_packet(source, data, link)

    def _open(self, source: bytes, session: Session, data: bytes) -> None:  # type: ignore[override]
        try:
            their_seq, our_seq, nonce, offset = decode_traffic_header(data)
        except DecodeError as exc:
            self.drops[str(exc)] += 1
            return
        case, shared = session.receive_key(their_seq, our_seq, nonce)
        if case == UNKNOWN:
            self.drops["unknown-keys"] += 1
            self._ask_for_init(source, session)
            return
        if shared is None:
            self.drops["replay"] += 1
            return
        plaintext = open_at(data, offset, nonce, shared)
        if plaintext is None:
            self.drops["open-failed"] += 1
            self._ask_for_init(source, session)
            return
        if len(plaintext) < KEY_SIZE:  # only with long varints; Go would panic here
            self.drops["short-plaintext"] += 1
            return
        now = self._clock.seconds()
        session.received(case, nonce, plaintext[:KEY_SIZE], now)
        message = plaintext[KEY_SIZE:]
        if session.pending:  # the remote holds the keys: the session is established
            self._unpend(source, session)
        session.rx += len(message)
        session.last_activity = now
        self._deliver(source, message)
