"""The node's core: the routing core and the encrypted sessions, wired together.

The router delivers traffic to the session manager; the session manager sends its packets
through the router and delivers messages here, where the first byte says whose they are
(spec yggdrasil §4.1, unchanged in v0.5): IPv6 packets for the IPv6 layer, protocol
messages (NodeInfo, remote debug) for the proto handler.  The handlers are given to the
constructor by whoever composes the node (``ygg.service.Node``).

:class:`BaseCore` is that dispatch, which both versions share; :class:`Core` is v0.4's
(its router also carries out-of-band data: the IPv6 layer's key lookups), and
``ygg.v05.core.Core`` is v0.5's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ygg.keys import NodeKey
from ygg.network.router import MTU as NETWORK_MTU
from ygg.network.router import Router
from ygg.session.manager import BaseSessionManager, SessionManager

TYPE_DUMMY = 0x00
TYPE_IPV6 = 0x01
TYPE_PROTO = 0x02

#: The largest message the session layer carries, and so the IPv6 MTU plus the type byte.
SESSION_MTU = NETWORK_MTU - SessionManager.OVERHEAD  # 53050
#: What yggdrasil calls Core.MTU(): IPv6 packets up to this size fit (53049).
IPV6_MTU = SESSION_MTU - 1

Handler = Callable[[bytes, bytes], None]
OOBHandler = Callable[[bytes, bytes, bytes], None]


def unhandled(*_: bytes) -> None:
    """For a core composed without one of the layers above it (tests, tools)."""


class BaseCore:
    """A router and a session manager (set by the subclass), and the type dispatch of
    the messages the sessions deliver.  ``drops`` counts messages of no known type."""

    router: Any
    sessions: BaseSessionManager
    #: The largest IPv6 packet this core carries.
    ipv6_mtu: int = IPV6_MTU

    def __init__(self, key: NodeKey, clock: Any, deliver_ipv6: Handler, deliver_proto: Handler):
        self.key = key
        self.public_key = key.public
        self.clock = clock
        self._ipv6 = deliver_ipv6
        self._proto = deliver_proto
        self.drops: Counter[str] = Counter()

    # -- from the network -----------------------------------------------------------------

    def _from_network(self, source: bytes, payload: bytes) -> None:
        peer = self.router.arrival  # the session layer budgets its work per link
        self.sessions.handle_packet(source, payload, peer.port if peer is not None else None)

    def _message(self, source: bytes, message: bytes) -> None:
        if not message:
            self.drops["empty"] += 1
            return
        kind = message[0]
        if kind == TYPE_IPV6:
            self._ipv6(source, message)
        elif kind == TYPE_PROTO:
            self._proto(source, message)
        else:
            self.drops["dummy" if kind == TYPE_DUMMY else "unknown-type"] += 1

    # -- to the network -------------------------------------------------------------------

    def send(self, dest: bytes, message: bytes) -> None:
        """A typed message (first byte TYPE_IPV6 or TYPE_PROTO) to the node ``dest``;
        ValueError if it is too long or the core is closed."""
        self.sessions.write_to(dest, message)

    def has_session(self, key: bytes) -> bool:
        return any(info.key == key for info in self.sessions.sessions())

    def close(self) -> None:
        self.sessions.close()
        self.router.close()


class Core(BaseCore):
    """v0.4's core: ironwood ec61cea's router and sessions."""

    def __init__(
        self,
        key: NodeKey,
        clock: Any,
        *,
        deliver_ipv6: Handler = unhandled,
        deliver_proto: Handler = unhandled,
        deliver_oob: OOBHandler = unhandled,
    ) -> None:
        super().__init__(key, clock, deliver_ipv6, deliver_proto)
        self.router = Router(key, clock, deliver=self._from_network, deliver_oob=deliver_oob)
        self.sessions = SessionManager(
            key,
            clock,
            send=self.router.send,
            deliver=self._message,
            reply=self.router.send_untracked,
        )

    def send_oob(self, dest: bytes, data: bytes) -> None:
        self.router.send_oob(dest, data)

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        """An ed25519 check through the router's cache of verified signatures."""
        return self.router.verify(key, message, signature)
