"""The v0.5 core: v0.5's router and sessions, and the same type dispatch as v0.4's
(docs/spec-v05.md §7.1: session payload byte 0 is unchanged).

What is v0.5's own here:

* the key lookup of the IPv6 layer is the router's path lookup for a partial key, and the
  full key comes back through ``path_notify`` (§7.4); there is no out-of-band data;
* answers to packets of unknown sessions go out by ``Router.send_untracked``, which keeps
  no rumor or path for a made-up source;
* IPv6 packets are capped as 0.5's ``Core.MTU()`` caps them: min(session MTU − 1, 65535)
  = 65535 (§4.11).  Protocol messages are not (0.5 writes them to the session layer
  directly), so they may be up to the session MTU (130914).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ygg.core.core import TYPE_DUMMY, TYPE_IPV6, TYPE_PROTO, BaseCore, Handler, unhandled
from ygg.keys import NodeKey
from ygg.v05.network.router import MTU as NETWORK_MTU
from ygg.v05.network.router import Router
from ygg.v05.session.manager import SessionManager

SESSION_MTU = NETWORK_MTU - SessionManager.OVERHEAD  # 130914
#: 0.5's Core.MTU(): the largest IPv6 packet it sends or takes, and the TUN's largest MTU.
IPV6_MTU = min(SESSION_MTU - 1, 65535)


class Core(BaseCore):
    """v0.5's core: ironwood 743fe2f's router and sessions."""

    ipv6_mtu = IPV6_MTU

    def __init__(
        self,
        key: NodeKey,
        clock: Any,
        *,
        deliver_ipv6: Handler = unhandled,
        deliver_proto: Handler = unhandled,
        path_notify: Callable[[bytes], None] | None = None,
        tree_notify: Callable[[], None] | None = None,
        group_password: str | bytes | None = None,
        nonce: Callable[[], int] | None = None,
    ) -> None:
        """``path_notify(key)`` hears of every key a path was found to (the IPv6 layer's
        key store); ``tree_notify()`` that the tree changed; ``group_password`` is 0.5.14's
        ``GroupPassword`` (sessions only with nodes that have the same one)."""
        super().__init__(key, clock, deliver_ipv6, deliver_proto)
        self.router = Router(
            key,
            clock,
            self._from_network,
            path_notify=path_notify,
            tree_notify=tree_notify,
            nonce=nonce,
        )
        self.sessions = SessionManager(
            key,
            clock,
            send=self.router.send,
            deliver=self._message,
            reply=self.router.send_untracked,
            group_password=group_password,
        )

    def _message(self, source: bytes, message: bytes) -> None:
        # BaseCore's dispatch with 0.5's cap, in one call per packet.
        if not message:
            self.drops["empty"] += 1
            return
        kind = message[0]
        if kind == TYPE_IPV6:
            if len(message) > IPV6_MTU + 1:
                self.drops["oversized-ipv6"] += 1  # 0.5 reads at most Core.MTU() bytes
                return
            self._ipv6(source, message)
        elif kind == TYPE_PROTO:
            self._proto(source, message)
        else:
            self.drops["dummy" if kind == TYPE_DUMMY else "unknown-type"] += 1

    def send(self, dest: bytes, message: bytes) -> None:
        if len(message) > IPV6_MTU + 1 and message[0] == TYPE_IPV6:
            raise ValueError("oversized message")
        self.sessions.write_to(dest, message)

    def lookup(self, partial: bytes) -> None:
        """Look up the key behind an address or subnet: ``path_notify`` hears the answer."""
        self.router.lookup(partial)
