"""The meshname feature's service: the DNS server on ``Meshname.Listen``, UDP and TCP.

Builds the pieces from the config (``zone``, ``authority``, ``forwarder``, the server
factory of ``server``, the ``protocols``) and listens.  Imported only when the feature
is enabled; bad settings stop the node here, a port in use only turns the feature off.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.logger import Logger

from ygg.popura.meshname.authority import MeshnameAuthority
from ygg.popura.meshname.forwarder import (
    MAX_PENDING,
    UPSTREAM_TIMEOUT,
    MeshForwarder,
    default_upstream,
)
from ygg.popura.meshname.metrics import MeshnameCollector
from ygg.popura.meshname.names import parse_listen
from ygg.popura.meshname.protocols import MeshnameDatagramProtocol, StreamServerFactory
from ygg.popura.meshname.server import MeshnameServerFactory
from ygg.popura.meshname.wire import MAX_DATAGRAM
from ygg.popura.meshname.zone import parse_zone

log = Logger(namespace="meshname")


def _format_where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MeshnameService(Service):
    """The feature: the DNS server on ``Meshname.Listen`` (UDP, and TCP on the same port).

    Bad settings (Listen, a record) raise ``ConfigError`` here, when the node is built,
    so the node stops with one line naming them.  A port that cannot be bound only turns
    the feature off, with one error line.
    """

    def __init__(
        self,
        node: Any,
        config: Any,
        *,
        upstream: Callable[[ipaddress.IPv6Address], tuple[str, int]] = default_upstream,
        timeout: float = UPSTREAM_TIMEOUT,
        max_pending: int = MAX_PENDING,
        meship: bool = True,
    ) -> None:
        self.node = node
        self.reactor = node.reactor
        self.host, self.port = parse_listen(config.listen)
        self.zone = parse_zone(config.config)
        own = ipaddress.IPv6Address(bytes(node.address))
        local: frozenset[ipaddress.IPv6Address] = frozenset()
        if self.port == 53 and self.host in ("::", str(own)):
            # Forwarding a name of our own address would come back to this server.
            local = frozenset({own})
        self.stats: Counter = Counter()
        self.authority = MeshnameAuthority(self.zone, local, meship)
        self.forwarder = MeshForwarder(
            self.reactor,
            self.authority.classify,
            upstream=upstream,
            timeout=timeout,
            max_pending=max_pending,
            stats=self.stats,
            # Real lookups go through our TUN; a test's own upstream needs none.
            reachable=node.tun_enabled if upstream is default_upstream else lambda: True,
        )
        self.factory = MeshnameServerFactory(self.authority, self.forwarder, self.stats)
        self.udp_port: Any = None
        self.tcp_port: Any = None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the server listens (host, port), once started; None if it could not."""
        if self.udp_port is None:
            return None
        return self.host, self.udp_port.getHost().port

    def startService(self) -> None:
        super().startService()
        for warning in self.zone.warnings:
            log.warn("Meshname: {warning}", warning=warning)
        where = _format_where(self.host, self.port)
        try:
            self.udp_port = self.reactor.listenUDP(
                self.port,
                MeshnameDatagramProtocol(self.factory),
                interface=self.host,
                maxPacketSize=MAX_DATAGRAM,
            )
        except (error.CannotListenError, OSError) as e:
            log.error(
                "Meshname: cannot listen on {where}: {reason}; the meshname DNS server is off",
                where=where,
                reason=_reason(e),
            )
            return
        port = self.udp_port.getHost().port
        where = _format_where(self.host, port)
        try:
            self.tcp_port = self.reactor.listenTCP(
                port, StreamServerFactory(self.factory), interface=self.host
            )
        except (error.CannotListenError, OSError) as e:
            log.warn(
                "Meshname: cannot listen on TCP {where}: {reason}; serving UDP only",
                where=where,
                reason=_reason(e),
            )
        self.node.register_metrics(
            MeshnameCollector(self.stats, self.factory.rcodes, self.forwarder.latencies)
        )
        log.info(
            "Meshname DNS server listening on {where} ({transports})",
            where=where,
            transports="UDP and TCP" if self.tcp_port else "UDP",
        )

    def stopService(self) -> defer.Deferred:
        super().stopService()
        ports = [p for p in (self.udp_port, self.tcp_port) if p is not None]
        self.udp_port = self.tcp_port = None
        stopping = [defer.maybeDeferred(p.stopListening) for p in ports]
        stopping.append(self.forwarder.close())
        return defer.gatherResults(stopping).addCallback(lambda _: None)


def _reason(e: BaseException) -> str:
    inner = getattr(e, "socketError", None)
    if inner is not None:
        return getattr(inner, "strerror", None) or str(inner)
    return getattr(e, "strerror", None) or str(e)
