"""TCP sockets that the link layer makes itself, tunes, and then gives to the reactor.

The Go node sets ``SO_BINDTODEVICE`` (InterfacePeers, multicast), ``TCP_CONGESTION`` and
``IPV6_V6ONLY`` on a socket *before* ``connect()``/``bind()``; Twisted's ``connectTCP`` and
``listenTCP`` make their sockets out of reach.  So the socket is made here, connected
without blocking (the reactor's ``IReactorFDSet`` says when it is writable, a timer bounds
the wait) or bound and listening, and then handed over with the public
``IReactorSocket.adoptStreamConnection`` / ``adoptStreamPort``.

Linux copies ``TCP_NODELAY``, ``TCP_CONGESTION`` and ``SO_BINDTODEVICE`` from a listening
socket to each socket it accepts, so setting them on the listener covers inbound links.

Failures: ``SocketCallError`` (an ``OSError`` whose ``str()`` is Go's ``<call>: <reason>``),
Twisted's ``TimeoutError`` for a connect that took too long, ``ConnectingCancelledError``
for a cancelled one.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any

from twisted.internet import error as terror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IListeningPort, IProtocol, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.links.netutil import SocketCallError, split_zone

log = Logger(namespace="ygg.links")

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


@dataclass(frozen=True)
class SocketOptions:
    """What the Go node sets on a link socket before connect or bind (each best effort,
    as in Go, except ``IPV6_V6ONLY``, which a dual-stack listener depends on)."""

    interface: str | None = None
    nodelay: bool = True
    congestion: str | None = "bbr"
    v6only: bool | None = None

    def apply(self, sock: socket.socket) -> None:
        if self.interface:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.interface.encode())
            except OSError as e:
                log.debug(
                    "Failed to set SO_BINDTODEVICE: {interface} ({error})",
                    interface=self.interface,
                    error=e,
                )
        if self.v6only is not None and sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(self.v6only))
        if self.congestion:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, self.congestion.encode())
            except OSError as e:
                log.debug(
                    "Failed to set tcp_congestion_control to {name} for socket: {error}",
                    name=self.congestion,
                    error=e,
                )
        if self.nodelay:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass


def socket_address(ip: str, port: int, zone: str = "") -> tuple[socket.AddressFamily, Any]:
    """The family and ``sockaddr`` for an IP literal, a port and an IPv6 zone.

    No IP means this machine (IPv4 any, as Go dials it).  A zone is an interface name or
    an index; one that names nothing becomes scope 0, and the kernel refuses a link-local
    address with it (Go's ``invalid argument``).
    """
    if ":" not in ip:
        return socket.AF_INET, (ip or "0.0.0.0", port)
    return socket.AF_INET6, (ip, port, 0, _scope_id(zone))


def _scope_id(zone: str) -> int:
    if not zone:
        return 0
    try:
        return socket.if_nametoindex(zone)
    except (OSError, ValueError):
        pass
    if zone.isascii() and zone.isdigit() and int(zone) <= 0xFFFFFFFF:
        return int(zone)
    return 0


def connect(
    reactor: Any,
    ip: str,
    port: int,
    zone: str,
    factory: IProtocolFactory,
    *,
    options: SocketOptions,
    source: str | None = None,
    timeout: float | None = None,
) -> Deferred[IProtocol]:
    """Connect to ``ip``:``port`` (from ``source``, an IP with an optional ``%zone``, if
    given); fires with ``factory``'s protocol on the connected transport."""
    family, address = socket_address(ip, port, zone)
    try:
        sock = _call(socket.socket, "socket", family, socket.SOCK_STREAM)
    except SocketCallError as e:
        return fail(e)
    try:
        sock.setblocking(False)
        _call(options.apply, "setsockopt", sock)
        if source:
            source_ip, source_zone = split_zone(source)
            _call(sock.bind, "bind", socket_address(source_ip, 0, source_zone)[1])
        code = sock.connect_ex(address)
    except OSError as e:
        sock.close()
        if not isinstance(e, SocketCallError):
            e = SocketCallError("connect", e.errno or errno.EINVAL)
        return fail(e)
    pending = _Connecting(reactor, sock, family, factory, _twisted_address(ip, port, zone))
    if code == 0:
        pending.doWrite()
    elif code in _IN_PROGRESS:
        pending.wait(timeout)
    else:
        pending.failed(SocketCallError("connect", code))
    return pending.result


def listen(
    reactor: Any,
    ip: str,
    port: int,
    zone: str,
    factory: IProtocolFactory,
    *,
    options: SocketOptions,
    backlog: int,
) -> IListeningPort:
    """Listen on ``ip``:``port`` (``::`` or ``0.0.0.0`` for all); raises
    ``SocketCallError`` when the socket cannot bind or listen."""
    family, address = socket_address(ip, port, zone)
    sock = _call(socket.socket, "socket", family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go and Twisted do
        _call(options.apply, "setsockopt", sock)
        _call(sock.bind, "bind", address)
        _call(sock.listen, "listen", backlog)
        sock.setblocking(False)
        return reactor.adoptStreamPort(sock.fileno(), family, factory)  # type: ignore[no-any-return]
    finally:
        sock.close()  # the reactor holds its own duplicate


def _call(function: Any, name: str, *args: Any) -> Any:
    try:
        return function(*args)
    except OSError as e:
        raise SocketCallError(name, e.errno or errno.EINVAL) from None


def _twisted_address(ip: str, port: int, zone: str) -> IPv4Address | IPv6Address:
    if ":" in ip:
        return IPv6Address("TCP", f"{ip}%{zone}" if zone else ip, port)
    return IPv4Address("TCP", ip or "0.0.0.0", port)


class _Captured:
    """Hands ``adoptStreamConnection`` the caller's factory and keeps the protocol built."""

    def __init__(self, factory: IProtocolFactory) -> None:
        self.factory = factory
        self.protocol: IProtocol | None = None

    def buildProtocol(self, addr: Any) -> IProtocol | None:
        self.protocol = self.factory.buildProtocol(addr)
        return self.protocol


class _Connecting:
    """A non-blocking connect under way: an ``IWriteDescriptor`` the reactor wakes when
    the socket is writable, that is, connected or failed."""

    def __init__(
        self,
        reactor: Any,
        sock: socket.socket,
        family: socket.AddressFamily,
        factory: IProtocolFactory,
        address: IPv4Address | IPv6Address,
    ) -> None:
        self.reactor = reactor
        self.sock: socket.socket | None = sock
        self.family = family
        self.factory = factory
        self.address = address
        self.timer: Any = None
        self.watching = False
        self.result: Deferred[IProtocol] = Deferred(self._cancel)

    def wait(self, timeout: float | None) -> None:
        self.watching = True
        self.reactor.addWriter(self)
        if timeout is not None:
            self.timer = self.reactor.callLater(timeout, self.failed, terror.TimeoutError())

    # -- IWriteDescriptor -----------------------------------------------------------------

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "ygg-connect"

    def doWrite(self) -> None:
        sock = self.sock
        if sock is None:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.failed(SocketCallError("connect", code))
            return
        self._unwatch()
        self.sock = None
        captured = _Captured(self.factory)
        try:
            self.reactor.adoptStreamConnection(sock.fileno(), self.family, captured)
        except OSError as e:  # reset at once: the reactor's getpeername() failed
            self._finish(Failure(SocketCallError("connect", e.errno or errno.ENOTCONN)))
            return
        finally:
            sock.close()  # the reactor holds its own duplicate
        if captured.protocol is None:
            self._finish(Failure(terror.NoProtocol()))
        else:
            self._finish(captured.protocol)

    def connectionLost(self, reason: Failure) -> None:
        # The reactor saw an error or hang-up on the socket (a refused connect comes this
        # way): the socket's own error says which.
        error: BaseException = reason.value
        if self.sock is not None:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                error = SocketCallError("connect", code)
        self.failed(error)

    # -- ending ---------------------------------------------------------------------------

    def failed(self, error: BaseException) -> None:
        self._close()
        self._finish(Failure(error))

    def _cancel(self, result: Deferred[IProtocol]) -> None:
        self._close()
        result.errback(terror.ConnectingCancelledError(self.address))

    def _close(self) -> None:
        self._unwatch()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _unwatch(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        if self.watching:
            self.watching = False
            self.reactor.removeWriter(self)

    def _finish(self, value: Any) -> None:
        fire_once(self.result, value)


def fire_once(result: Deferred[Any], value: Any) -> None:
    """Fire a dial's ``result`` with ``value`` (a Failure errbacks), unless it has fired:
    a dial ends once, by whichever of its outcome, its timeout or its cancel comes first."""
    if result.called:
        return
    if isinstance(value, Failure):
        result.errback(value)
    else:
        result.callback(value)
