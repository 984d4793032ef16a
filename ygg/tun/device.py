"""The TUN interface (spec yggdrasil §5.5): packets between the kernel and the IPv6 layer.

The device is opened with ``twisted.pair.tuntap`` (IFF_TUN, no packet-info header) and
configured with three ioctls (:mod:`ygg.tun.ifconfig`): the MTU (IfMTU, at least 1280, at
most what the node's networks carry: 53049 with v0.4 alone, 65535 once v0.5 runs, as 0.5
caps it), our address with prefix length 7 (which gives the kernel its route to 200::/7,
covering 300::/8 too) and link up.  The device disappears when the node stops.  A device
that cannot take a packet (its queue full) drops it and counts the drop.  Twisted's TUN
port announces its opening and closing in lines that name its internals; they are logged
at debug.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.protocol import AbstractDatagramProtocol
from twisted.logger import Logger, LogLevel
from twisted.pair.raw import IRawPacketProtocol
from twisted.pair.tuntap import TuntapPort
from twisted.python import log as legacy_log
from zope.interface import implementer

from ygg import address as addr
from ygg.config import MAX_IF_MTU, MIN_IF_MTU, effective_mtu
from ygg.core.core import IPV6_MTU
from ygg.errors import YggError
from ygg.tun.ifconfig import InterfaceConfig

log = Logger(namespace="ygg.tun")

READ_SIZE = 65535


class TunError(YggError):
    pass


@implementer(IRawPacketProtocol)
class _TunProtocol(AbstractDatagramProtocol):
    noisy = False

    def __init__(self, tun: TunService) -> None:
        self.tun = tun

    def datagramReceived(self, data: bytes, partial: int = 0) -> None:
        self.tun.deliver(data)

    # IRawPacketProtocol's registration API is for protocol demultiplexing; unused here.
    def addProto(self, num: int, proto: Any) -> None:
        raise NotImplementedError


# What Twisted's TuntapPort logs through twisted.python.log while opening and closing: the
# log context gives those events their level and namespace.
_PORT_CHATTER = {"log_level": LogLevel.debug, "log_namespace": "ygg.tun", "system": "ygg.tun"}


class _TunPort(TuntapPort):
    def startListening(self) -> None:
        legacy_log.callWithContext(_PORT_CHATTER, super().startListening)

    def connectionLost(self, reason: Any = None) -> None:
        legacy_log.callWithContext(_PORT_CHATTER, super().connectionLost, reason)


def wants_tun(if_name: str) -> bool:
    return if_name not in ("none", "dummy", "")


class TunService(Service):
    """The TUN device: packets read from it go to ``deliver`` (the IPv6 layer's outbound
    side); ``write`` puts packets into it; ``mtu`` is 0 while it is not up.  ``max_mtu``
    is the largest IPv6 packet the node's networks carry."""

    def __init__(
        self,
        deliver: Callable[[bytes], None],
        address: bytes,
        if_name: str,
        if_mtu: int,
        reactor: Any,
        max_mtu: int = IPV6_MTU,
    ) -> None:
        self.deliver = deliver
        self.address = address
        self.requested_name = if_name
        self.requested_mtu = if_mtu
        self.max_mtu = max_mtu
        self.reactor = reactor
        self.port: TuntapPort | None = None
        self.name = ""
        self.mtu = 0
        self.drops: Counter[str] = Counter()

    @property
    def enabled(self) -> bool:
        return self.port is not None

    def startService(self) -> None:
        super().startService()
        if not wants_tun(self.requested_name):
            log.debug("Not starting TUN as ifname is none or dummy")
            return
        if os.geteuid() != 0:
            log.warn(
                "Not starting TUN: creating {ifname} needs root (or CAP_NET_ADMIN); "
                "running without one",
                ifname=self.requested_name,
            )
            return
        name = b"" if self.requested_name == "auto" else self.requested_name.encode()
        port = _TunPort(name, _TunProtocol(self), maxPacketSize=READ_SIZE, reactor=self.reactor)
        try:
            port.startListening()
        except Exception as e:  # CannotListenError and OSError from the ioctl
            raise TunError(f"failed to create TUN {self.requested_name}: {e}") from None
        self.port = port
        self.name = port.interface.decode() if isinstance(port.interface, bytes) else port.interface
        try:
            self.mtu = self._configure()
        except Exception as e:
            port.stopListening()
            self.port = None
            raise TunError(f"failed to configure TUN {self.name}: {e}") from None
        log.info("Interface name: {name}", name=self.name)
        log.info(
            "Interface IPv6: {address}/{length}",
            address=addr.format_address(self.address),
            length=addr.PREFIX_LENGTH,
        )
        log.info("Interface MTU: {mtu}", mtu=self.mtu)

    def _configure(self) -> int:
        requested = min(self.requested_mtu, self.max_mtu)
        with InterfaceConfig(self.name) as interface:
            interface.set_mtu(effective_mtu(self.requested_mtu, self.max_mtu))
            mtu = max(MIN_IF_MTU, min(MAX_IF_MTU, interface.mtu()))
            if mtu != requested:
                log.warn(
                    "Warning: Interface MTU {wanted} automatically adjusted to {mtu} "
                    "(supported range is 1280-65535)",
                    wanted=self.requested_mtu,
                    mtu=mtu,
                )
            interface.add_address(self.address, addr.PREFIX_LENGTH)
            interface.up()
        return mtu

    def write(self, packet: bytes) -> None:
        port = self.port
        if port is None:
            self.drops["closed"] += 1
            return
        try:
            port.write(packet)
        except OSError as e:
            # A full queue (or a device going down): drop, as a router does.
            self.drops[errno.errorcode.get(e.errno or 0, "error")] += 1

    def stopService(self) -> Any:
        super().stopService()
        self.mtu = 0
        port, self.port = self.port, None
        if port is None:
            return None
        return port.stopListening()
