"""The meshname server's transports: DNS over UDP and over TCP.  They only frame bytes,
decode requests (``wire``) and hand them to the server factory; nothing is logged per packet.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.internet.protocol import DatagramProtocol, ServerFactory
from twisted.protocols.basic import Int16StringReceiver
from twisted.protocols.policies import TimeoutMixin

from ygg.popura.meshname.server import MeshnameServerFactory
from ygg.popura.meshname.wire import RequestError, formerr, read_request

TCP_IDLE_TIMEOUT = 10.0
MAX_TCP_CONNECTIONS = 64


class MeshnameDatagramProtocol(DatagramProtocol):
    """DNS over UDP: decode, hand to the factory, write the reply; never log per packet."""

    noisy = False

    def __init__(self, factory: MeshnameServerFactory) -> None:
        self.factory = factory

    def logPrefix(self) -> str:
        return "Meshname DNS (UDP)"

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            message = read_request(data)
        except RequestError:
            self.factory.stats["malformed"] += 1
            self._write(formerr(data), addr)
            return
        except ValueError:
            self.factory.stats["dropped"] += 1
            return
        self.factory.messageReceived(message, self, addr)

    def writeMessage(self, data: bytes, address: Any) -> None:
        self._write(data, address)

    def _write(self, data: bytes, addr: Any) -> None:
        if self.transport is None:
            return  # stopped while the answer was on its way
        try:
            self.transport.write(data, addr)
        except (OSError, error.MessageLengthError, error.ConnectionRefusedError):
            self.factory.stats["unsent"] += 1


class MeshnameStreamProtocol(Int16StringReceiver, TimeoutMixin):
    """DNS over TCP: length-prefixed messages, idle connections closed after 10 s."""

    def __init__(self, factory: MeshnameServerFactory, owner: StreamServerFactory) -> None:
        self.factory = factory
        self.owner = owner
        self.open = False

    def connectionMade(self) -> None:
        self.open = True
        self.setTimeout(TCP_IDLE_TIMEOUT)

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        try:
            message = read_request(data)
        except RequestError:
            self.factory.stats["malformed"] += 1
            self.sendString(formerr(data))
            return
        except ValueError:
            self.factory.stats["dropped"] += 1
            self.transport.loseConnection()
            return
        self.factory.messageReceived(message, self, None)

    def writeMessage(self, data: bytes, address: Any = None) -> None:
        if self.open:
            self.sendString(data)

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self.setTimeout(None)
        self.owner.connections -= 1


class StreamServerFactory(ServerFactory):
    noisy = False

    def __init__(self, dns_factory: MeshnameServerFactory) -> None:
        self.dns_factory = dns_factory
        self.connections = 0

    def logPrefix(self) -> str:
        return "Meshname DNS (TCP)"

    def buildProtocol(self, addr: Any) -> MeshnameStreamProtocol | None:
        if self.connections >= MAX_TCP_CONNECTIONS:
            self.dns_factory.stats["tcp refused"] += 1
            return None  # the connection is closed at once
        self.connections += 1
        return MeshnameStreamProtocol(self.dns_factory, self)
