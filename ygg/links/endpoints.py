"""Client and server endpoints for peer URIs, with the Go node's socket behaviour (§2.4, §2.9).

``client_endpoint`` turns a parsed :class:`~ygg.links.uri.PeerURI` into an
``IStreamClientEndpoint``: tcp and tls dial one resolved address (a name gives its first
IPv4 address if any, else its first address), tls completes its handshake before the
connect Deferred fires, unix dials the URL path, socks goes through the proxy.  TCP
sockets get ``TCP_NODELAY``, best-effort ``TCP_CONGESTION=bbr`` and, for interface-bound
dials, ``SO_BINDTODEVICE``, all before connect (:mod:`ygg.links.sockets`).  Every dial
failure arrives as a :class:`DialError` whose text reads like the Go node's
(``dial tcp 1.2.3.4:5: connect: connection refused``).

``server_endpoint`` does the same for ``Listen`` URIs.  As in Go, a wildcard host
(empty, ``0.0.0.0`` or ``::``) listens on one dual-stack IPv6 socket when the system can.

``ws``/``wss`` dial and listen like ``tcp``/``tls`` with a WebSocket upgrade on top
(:mod:`ygg.links.websocket`, imported only then: autobahn is not small); ``sockstls`` is
``socks`` with TLS through the tunnel; ``quic`` resolves like ``tcp`` and then runs over
UDP (:mod:`ygg.links.quic`, aioquic, likewise imported only then).
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from typing import Any

from twisted.internet import error as terror
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.endpoints import UNIXClientEndpoint, UNIXServerEndpoint
from twisted.internet.interfaces import (
    IHandshakeListener,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.errors import YggError
from ygg.keys import NodeKey
from ygg.links import sockets
from ygg.links.netutil import (
    AddressError,
    SocketCallError,
    connect_failure_text,
    is_link_local_unicast,
    parse_ip,
    parse_port,
    resolve_dial_address,
    split_host_port,
    split_zone,
    tcp_addr_string,
)
from ygg.links.socks import SOCKS5ClientEndpoint, SOCKSError
from ygg.links.tls import (
    Certificate,
    client_connection_creator,
    make_certificate,
    server_context_factory,
)
from ygg.links.uri import LinkURIError, PeerURI

log = Logger(namespace="ygg.links")

#: The schemes whose endpoints use the node's TLS certificate (dialing or listening).
TLS_SCHEMES = frozenset({"tls", "wss", "sockstls", "quic"})

CONNECT_TIMEOUT = 5.0
"""Seconds for a TCP, TLS (including its handshake) or unix connect (§2.4)."""

LISTEN_BACKLOG = socket.SOMAXCONN


class DialError(YggError):
    """A dial failed; ``str(e)`` reads like the Go node's error (logged as
    ``Failed to dial <TYPE> <host>: <error>``)."""


class ListenError(YggError):
    """A listener could not start (``Failed to start listener "<uri>": <error>``)."""


@dataclass(frozen=True)
class ResolvedAddress:
    """A dial target after resolution: the IP (empty for Go's "no host"), port and zone.

    ``str()`` is Go's ``TCPAddr`` form (``1.2.3.4:5``, ``[fe80::1%eth0]:5``), the remote
    part of a TCP/TLS link identity (§2.3).
    """

    ip: str
    port: int
    zone: str = ""

    def __str__(self) -> str:
        return tcp_addr_string(self.ip, self.port, self.zone)

    @property
    def link_local(self) -> bool:
        return is_link_local_unicast(self.ip)


# --- resolution --------------------------------------------------------------------------


def _address(
    reactor: Any, uri: PeerURI, options: sockets.SocketOptions, resolved: ResolvedAddress | None
) -> Deferred[ResolvedAddress]:
    """The address a dial goes to: ``resolved`` when the caller has it, else ``uri``'s
    host resolved (from the interface the options bind to)."""
    if resolved is not None:
        return succeed(resolved)
    return resolve_address(reactor, uri, bind_interface=options.interface)


def resolve_address(
    reactor: Any, uri: PeerURI, *, bind_interface: str | None = None
) -> Deferred[ResolvedAddress]:
    """Resolve a tcp/tls URI's ``host:port`` once, as the Go node does before dialing.

    A name yields its first IPv4 address if it has one, else its first address.  A
    link-local destination takes ``bind_interface`` as its zone, else the URL's zone, and
    without one fails with ``link-local address requires a zone``.  The result is what
    duplicate suppression (§2.3 b) compares; hand it to :func:`client_endpoint` as
    ``resolved`` to dial exactly that address.  Failures: :class:`DialError`.
    """
    try:
        host, port_text = split_host_port(uri.host_port)
        port = parse_port(port_text)
    except AddressError as e:
        return fail(DialError(str(e)))
    host, zone = split_zone(host)
    if host == "" or parse_ip(host) is not None:
        return _zone_checked(ResolvedAddress(host, port, zone), bind_interface)
    return resolve_dial_address(reactor, host, DialError).addCallback(
        _resolved, port, bind_interface
    )


def _resolved(host: str, port: int, bind_interface: str | None) -> Deferred[ResolvedAddress]:
    ip, zone = split_zone(host)
    return _zone_checked(ResolvedAddress(ip, port, zone), bind_interface)


def _zone_checked(address: ResolvedAddress, bind_interface: str | None) -> Deferred[Any]:
    if address.ip and is_link_local_unicast(address.ip):
        if bind_interface:
            address = ResolvedAddress(address.ip, address.port, bind_interface)
        if not address.zone:
            return fail(DialError("link-local address requires a zone"))
    return succeed(address)


# --- dialing -----------------------------------------------------------------------------


def client_endpoint(
    reactor: Any,
    uri: PeerURI,
    node_key: NodeKey,
    *,
    bind_interface: str | None = None,
    source_address: str | None = None,
    resolved: ResolvedAddress | None = None,
    tls_certificate: Certificate | None = None,
) -> IStreamClientEndpoint:
    """An endpoint dialing ``uri`` (tcp, tls, unix, socks, sockstls, ws or wss).

    ``bind_interface`` (InterfacePeers, multicast): ``SO_BINDTODEVICE`` on the socket
    (best effort) and the zone of a link-local destination.  ``source_address``: the local
    address to bind before connecting (the caller picks it per §2.4).  ``resolved``: an
    address from :func:`resolve_address`, to dial without resolving again.  Both are
    ignored for unix and socks, as in Go.  ``tls_certificate``: reuse a certificate from
    :func:`ygg.links.tls.make_certificate`.
    """
    if uri.scheme in ("tcp", "tls"):
        creator = None
        if uri.scheme == "tls":
            creator = client_connection_creator(
                node_key, uri.server_name(), certificate=tls_certificate
            )
        return _TCPDialEndpoint(
            reactor,
            uri,
            options=sockets.SocketOptions(interface=bind_interface),
            source_address=source_address,
            resolved=resolved,
            tls_creator=creator,
            timeout=CONNECT_TIMEOUT,
        )
    if uri.scheme in ("ws", "wss"):
        return _WebSocketDialEndpoint(
            reactor,
            uri,
            sockets.SocketOptions(interface=bind_interface),
            source_address,
            resolved,
            creator=(
                client_connection_creator(node_key, uri.host_name(), certificate=tls_certificate)
                if uri.scheme == "wss"
                else None
            ),
        )
    if uri.scheme == "quic":
        # Go's quic dial takes no source interface or address.
        return _QuicDialEndpoint(reactor, uri, resolved)
    if uri.scheme == "unix":
        return _Translating(
            UNIXClientEndpoint(reactor, uri.path, timeout=CONNECT_TIMEOUT),
            f"dial unix {uri.path}",
        )
    if uri.scheme == "socks":
        return _socks_endpoint(reactor, uri)
    if uri.scheme == "sockstls":
        creator = client_connection_creator(
            node_key, uri.server_name(), certificate=tls_certificate
        )
        return _SOCKSTLSEndpoint(reactor, _socks_endpoint(reactor, uri), creator, uri)
    raise LinkURIError("unknown call scheme: " + uri.scheme)


@implementer(IStreamClientEndpoint)
class _SOCKSTLSEndpoint:
    """``sockstls``: the SOCKS tunnel, then a TLS handshake through it (as tls://)."""

    def __init__(self, reactor: Any, socks: IStreamClientEndpoint, creator: Any, uri: PeerURI):
        self._reactor = reactor
        self._socks = socks
        self._creator = creator
        self._uri = uri

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        dial = _TLSDial(
            self._reactor,
            self._socks,
            self._creator,
            protocolFactory,
            CONNECT_TIMEOUT,
            self._uri.path,  # the tunnel's target, for the timeout's text
        )
        return dial.result


@implementer(IStreamClientEndpoint)
class _WebSocketDialEndpoint:
    """ws/wss: resolve like tcp, connect (and TLS for wss), then the WebSocket upgrade."""

    def __init__(
        self,
        reactor: Any,
        uri: PeerURI,
        options: sockets.SocketOptions,
        source: str | None,
        resolved: ResolvedAddress | None,
        creator: Any,
    ) -> None:
        self._reactor = reactor
        self._uri = uri
        self._options = options
        self._source = source
        self._resolved = resolved
        self._creator = creator

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        resolving = _address(self._reactor, self._uri, self._options, self._resolved)
        return resolving.addCallback(self._connect, protocolFactory)

    def _connect(self, address: ResolvedAddress, factory: IProtocolFactory) -> Deferred[Any]:
        from ygg.links import websocket  # autobahn: only when a ws/wss link exists

        stream = _TCPDialEndpoint(
            self._reactor,
            self._uri,
            options=self._options,
            source_address=self._source,
            resolved=address,
            tls_creator=self._creator,
            timeout=CONNECT_TIMEOUT,
        )
        endpoint = websocket.WebSocketClientEndpoint(self._reactor, stream, self._uri, str(address))
        return endpoint.connect(factory).addErrback(_plain_dial_error)


@implementer(IStreamClientEndpoint)
class _QuicDialEndpoint:
    """quic: resolve like tcp, then a QUIC connection from a UDP port of its own."""

    def __init__(self, reactor: Any, uri: PeerURI, resolved: ResolvedAddress | None) -> None:
        self._reactor = reactor
        self._uri = uri
        self._resolved = resolved

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        if self._resolved is not None:
            resolving: Deferred[ResolvedAddress] = succeed(self._resolved)
        else:
            resolving = resolve_address(self._reactor, self._uri)
        return resolving.addCallback(self._connect, protocolFactory)

    def _connect(self, address: ResolvedAddress, factory: IProtocolFactory) -> Deferred[Any]:
        from ygg.links import quic  # aioquic: only when a quic link exists

        endpoint = quic.QuicClientEndpoint(self._reactor, address.ip, address.port, address.zone)
        try:
            connecting = endpoint.connect(factory)
        except SocketCallError as e:
            return fail(DialError(f"listen udp: {e}"))
        return connecting.addErrback(_plain_dial_error)


def _plain_dial_error(failure: Failure) -> Failure:
    if failure.check(CancelledError, DialError):
        return failure
    error = DialError(failure.getErrorMessage())
    error.__cause__ = failure.value
    return Failure(error)


def _socks_endpoint(reactor: Any, uri: PeerURI) -> IStreamClientEndpoint:
    proxy = _TCPDialEndpoint(
        reactor, uri, options=sockets.SocketOptions(congestion=None), timeout=None
    )
    socks = SOCKS5ClientEndpoint.for_target(
        reactor,
        proxy,
        uri.path,
        uri.username or "",
        uri.password or "",
        proxy_address=uri.host_port,
    )
    return _Translating(socks, "socks connect tcp")


@implementer(IStreamClientEndpoint)
class _Translating:
    """Wraps an endpoint so that its failures become :class:`DialError`."""

    def __init__(self, endpoint: IStreamClientEndpoint, prefix: str) -> None:
        self._endpoint = endpoint
        self._prefix = prefix

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return self._endpoint.connect(protocolFactory).addErrback(_as_dial_error, self._prefix)


def _as_dial_error(failure: Failure, prefix: str) -> Failure:
    if failure.check(CancelledError, terror.ConnectingCancelledError, DialError):
        return failure
    if failure.check(SOCKSError):
        error = DialError(str(failure.value))
    else:
        error = DialError(f"{prefix}: {connect_failure_text(failure.value)}")
    error.__cause__ = failure.value
    return Failure(error)


@implementer(IStreamClientEndpoint)
class _TCPDialEndpoint:
    def __init__(
        self,
        reactor: Any,
        uri: PeerURI,
        *,
        options: sockets.SocketOptions,
        timeout: float | None,
        source_address: str | None = None,
        resolved: ResolvedAddress | None = None,
        tls_creator: Any = None,
    ) -> None:
        self._reactor = reactor
        self._uri = uri
        self._options = options
        self._timeout = timeout
        self._source = source_address
        self._resolved = resolved
        self._tls = tls_creator

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        resolving = _address(self._reactor, self._uri, self._options, self._resolved)
        return resolving.addCallback(self._connect, protocolFactory)

    def _connect(self, address: ResolvedAddress, factory: IProtocolFactory) -> Deferred[Any]:
        endpoint = _SocketEndpoint(
            self._reactor, address, self._options, self._source, self._timeout
        )
        tcp_endpoint = _Translating(endpoint, f"dial tcp {address}")
        if self._tls is None:
            return tcp_endpoint.connect(factory)
        assert self._timeout is not None
        dial = _TLSDial(self._reactor, tcp_endpoint, self._tls, factory, self._timeout, address)
        return dial.result


@implementer(IStreamClientEndpoint)
class _SocketEndpoint:
    """One TCP connect to a resolved address, through :func:`ygg.links.sockets.connect`."""

    def __init__(
        self,
        reactor: Any,
        address: ResolvedAddress,
        options: sockets.SocketOptions,
        source: str | None,
        timeout: float | None,
    ) -> None:
        self._reactor = reactor
        self._address = address
        self._options = options
        self._source = source
        self._timeout = timeout

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        address = self._address
        return sockets.connect(
            self._reactor,
            address.ip,
            address.port,
            address.zone,
            protocolFactory,
            options=self._options,
            source=self._source,
            timeout=self._timeout,
        )


@implementer(IHandshakeListener)
class _AwaitHandshake(Protocol):
    """Sits behind the TLS layer until the handshake is done, then hands over."""

    def __init__(self, dial: _TLSDial) -> None:
        self._dial = dial

    def handshakeCompleted(self) -> None:
        self._dial.handshake_done(self.transport)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._dial.lost(reason)


class _TLSDial:
    """One TLS dial: TCP connect, TLS handshake, all within ``timeout`` seconds (Go's
    ``tls.Dialer`` with a 5 s net dialer); the result fires with the caller's protocol
    connected to the TLS transport, or fails with :class:`DialError`."""

    def __init__(
        self,
        reactor: Any,
        endpoint: IStreamClientEndpoint,
        creator: Any,
        factory: IProtocolFactory,
        timeout: float,
        address: ResolvedAddress | str,
    ) -> None:
        self.result: Deferred[IProtocol] = Deferred(self._cancel)
        self._factory = factory
        self._address = address
        self._tls: Any = None
        self._cancelled = False
        self._timer = reactor.callLater(timeout, self._expire)
        from twisted.protocols.tls import TLSMemoryBIOFactory  # pyOpenSSL: with TLS links only

        helper = Factory.forProtocol(lambda: _AwaitHandshake(self))
        self._connecting = endpoint.connect(TLSMemoryBIOFactory(creator, True, helper))
        self._connecting.addCallbacks(self._tcp_up, self._tcp_failed)

    def _tcp_up(self, tls_protocol: Any) -> None:
        self._tls = tls_protocol

    def _tcp_failed(self, failure: Failure) -> None:
        if not failure.check(CancelledError, terror.ConnectingCancelledError):
            self._finish(failure)

    def handshake_done(self, tls_protocol: Any) -> None:
        protocol = self._factory.buildProtocol(tls_protocol.getPeer())
        if protocol is None:
            tls_protocol.loseConnection()
            self._finish(Failure(DialError("protocol factory refused the connection")))
            return
        tls_protocol.wrappedProtocol = protocol
        protocol.makeConnection(tls_protocol)
        if IHandshakeListener.providedBy(protocol):
            protocol.handshakeCompleted()
        self._finish(protocol)

    def lost(self, reason: Failure) -> None:
        self._finish(Failure(DialError(_tls_failure_text(reason))))

    def _expire(self) -> None:
        self._finish(Failure(DialError(f"dial tcp {self._address}: i/o timeout")))
        self._stop()

    def _cancel(self, result: Deferred[IProtocol]) -> None:
        self._cancelled = True
        if self._timer.active():
            self._timer.cancel()
        self._stop()

    def _stop(self) -> None:
        if self._tls is not None:
            self._tls.abortConnection()
        else:
            self._connecting.cancel()

    def _finish(self, value: Any) -> None:
        if self._timer.active():
            self._timer.cancel()
        if self.result.called or self._cancelled:
            return
        if isinstance(value, Failure):
            self.result.errback(value)
        else:
            self.result.callback(value)


def _tls_failure_text(reason: Failure) -> str:
    from OpenSSL import SSL  # loaded already: a TLS dial got here

    error = reason.value
    if isinstance(error, SSL.Error):
        details = [
            part[2] for part in (error.args[0] if error.args else []) if isinstance(part, tuple)
        ]
        return "tls: " + ("; ".join(d for d in details if d) or "handshake failure")
    if isinstance(error, terror.ConnectionDone | terror.ConnectionLost):
        return "EOF"
    return connect_failure_text(error)


# --- listening ---------------------------------------------------------------------------


def server_endpoint(
    reactor: Any,
    uri: PeerURI,
    node_key: NodeKey,
    *,
    bind_interface: str | None = None,
    tls_certificate: Certificate | None = None,
) -> IStreamServerEndpoint:
    """An endpoint listening on a ``Listen`` URI (tcp, tls, unix, ws or wss).

    tcp/tls bind the URL host (a name resolves like a dial); ``bind_interface``
    (multicast) makes the address ``[host%iface]:port`` as Go does.  A tls listener wraps
    the caller's factory in TLS (:func:`ygg.links.tls.server_context_factory`), whose
    handshake then runs lazily under the caller's first read.  A unix listener binds the
    URL path (refusing an existing file, as Go does) and removes it when stopped.
    Failures arrive as :class:`ListenError`.  A ws/wss listener is a tcp/tls one whose
    connections upgrade to WebSockets first (yggdrasil 0.5.12 itself refuses to listen on
    wss, pointing to a reverse proxy; ygg listens).
    """
    if uri.scheme in ("tcp", "tls", "ws", "wss"):
        tls = None
        if uri.scheme in ("tls", "wss"):
            tls = server_context_factory(node_key, certificate=tls_certificate)
        return _TCPListenEndpoint(reactor, uri, tls, bind_interface)
    if uri.scheme == "quic":
        return _QuicListenEndpoint(reactor, uri, tls_certificate or make_certificate(node_key))
    if uri.scheme == "unix":
        return _UNIXListenEndpoint(reactor, uri.path)
    raise LinkURIError(f'unrecognised scheme "{uri.scheme}"')


@implementer(IStreamServerEndpoint)
class _QuicListenEndpoint:
    """quic: one UDP port at the URL's host and port (a name resolves like a dial)."""

    def __init__(self, reactor: Any, uri: PeerURI, certificate: Certificate) -> None:
        self._reactor = reactor
        self._uri = uri
        self._certificate = certificate

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        hostport = self._uri.host_port
        try:
            host, port_text = split_host_port(hostport)
            port = parse_port(port_text)
        except AddressError as e:
            return fail(ListenError(f"listen udp {hostport}: {e}"))
        host, zone = split_zone(host)
        if host == "" or parse_ip(host) is not None:
            resolving: Deferred[str] = succeed(host)
        else:
            resolving = resolve_dial_address(self._reactor, host, DialError)
        return resolving.addCallback(self._listen, zone, port, protocolFactory)

    def _listen(self, ip: str, zone: str, port: int, factory: IProtocolFactory) -> Any:
        from ygg.links import quic  # aioquic: only when a quic listener exists

        ip, resolved_zone = split_zone(ip)
        zone = zone or resolved_zone
        parsed = parse_ip(ip)
        if not ip or (parsed is not None and parsed.is_unspecified):
            ip, zone = "::", ""  # one dual-stack socket, as for tcp
        try:
            return quic.listen(self._reactor, ip, port, zone, factory, self._certificate)
        except SocketCallError as e:
            raise ListenError(f"listen udp {tcp_addr_string(ip, port, zone)}: {e}") from e


@implementer(IStreamServerEndpoint)
class _TCPListenEndpoint:
    def __init__(self, reactor: Any, uri: PeerURI, tls: Any, bind_interface: str | None) -> None:
        self._reactor = reactor
        self._uri = uri
        self._tls = tls
        self._interface = bind_interface

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        hostport = self._uri.host_port
        if self._interface:
            try:
                host, port_text = split_host_port(hostport)
                hostport = f"[{host}%{self._interface}]:{port_text}"
            except AddressError:
                pass
        try:
            host, port_text = split_host_port(hostport)
            port = parse_port(port_text)
        except AddressError as e:
            return fail(ListenError(f"listen tcp {hostport}: {e}"))
        host, zone = split_zone(host)
        if host == "" or parse_ip(host) is not None:
            resolving: Deferred[str] = succeed(host)
        else:
            resolving = resolve_dial_address(self._reactor, host, DialError)
        if self._uri.scheme in ("ws", "wss"):
            from ygg.links import websocket  # autobahn: only when a ws/wss listener exists

            protocolFactory = websocket.server_factory(
                self._reactor, protocolFactory, self._uri.origins
            )
        if self._tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory  # pyOpenSSL: TLS only

            protocolFactory = TLSMemoryBIOFactory(self._tls, False, protocolFactory)
        return resolving.addCallback(self._listen, zone, port, protocolFactory)

    def _listen(self, ip: str, zone: str, port: int, factory: IProtocolFactory) -> Any:
        ip, resolved_zone = split_zone(ip)
        zone = zone or resolved_zone
        address = tcp_addr_string(ip, port, zone)
        parsed = parse_ip(ip)
        options = sockets.SocketOptions(interface=self._interface)
        if not ip or (parsed is not None and parsed.is_unspecified):
            if _dual_stack_supported():
                ip, zone = "::", ""
                options = sockets.SocketOptions(interface=self._interface, v6only=False)
            else:
                ip, zone = "0.0.0.0", ""
        try:
            return sockets.listen(
                self._reactor,
                ip,
                port,
                zone,
                factory,
                options=options,
                backlog=LISTEN_BACKLOG,
            )
        except SocketCallError as e:
            raise ListenError(f"listen tcp {address}: {e}") from e


@implementer(IStreamServerEndpoint)
class _UNIXListenEndpoint:
    def __init__(self, reactor: Any, path: str) -> None:
        self._reactor = reactor
        self._path = path

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        endpoint = UNIXServerEndpoint(
            self._reactor, self._path, backlog=LISTEN_BACKLOG, mode=0o777 & ~_umask()
        )
        return endpoint.listen(protocolFactory).addErrback(
            _as_listen_error, f"listen unix {self._path}"
        )


def _as_listen_error(failure: Failure, prefix: str) -> Failure:
    error = failure.value
    cause = getattr(error, "socketError", None)
    if isinstance(cause, OSError) and cause.errno is not None:
        text = connect_failure_text(cause).replace("connect: ", "bind: ", 1)
    else:
        text = str(error)
    listen_error = ListenError(f"{prefix}: {text}")
    listen_error.__cause__ = error
    return Failure(listen_error)


@functools.cache
def _dual_stack_supported() -> bool:
    """Go's ``supportsIPv4map``: can one IPv6 socket also take IPv4 connections?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::ffff:127.0.0.1", 0))
    except OSError:
        return False
    return True


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


__all__ = [
    "CONNECT_TIMEOUT",
    "DialError",
    "ListenError",
    "ResolvedAddress",
    "client_endpoint",
    "resolve_address",
    "server_endpoint",
]
