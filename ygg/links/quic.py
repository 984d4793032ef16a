"""QUIC links (``quic://``) as yggdrasil 0.5.12 makes them (``src/core/link_quic.go``).

One QUIC connection per link, TLS 1.3 inside it with the node's self-signed certificate
(no ALPN, no verification: the link handshake checks keys), and the link's byte stream on
the first bidirectional stream the dialer opens; the v0.5 handshake and framing ride on
it unchanged.  quic-go's settings are kept: a minute of idle timeout, a keepalive every
20 s, and the handshake within 5 s.

The QUIC protocol is aioquic's ``QuicConnection``, which is sans-IO: datagrams in and out
and one timer, driven here by a Twisted ``DatagramProtocol`` and ``callLater`` on the
reactor we are handed.  A listener's one UDP port serves every connection, told apart by
their connection IDs; a dial has a UDP port of its own, as quic-go's ``DialAddr`` does.
This module, and so aioquic, is imported only when a quic peer or listener exists.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from aioquic.buffer import Buffer
from aioquic.quic import events
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReadDescriptor,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.errors import YggError
from ygg.links.netutil import SocketCallError
from ygg.links.sockets import fire_once, socket_address
from ygg.links.tls import Certificate

IDLE_TIMEOUT = 60.0  # quic-go MaxIdleTimeout
KEEPALIVE_PERIOD = 20.0  # quic-go KeepAlivePeriod
HANDSHAKE_TIMEOUT = 5.0  # quic-go's default HandshakeIdleTimeout
LINGER = 1.0
"""Seconds between our stream's end (FIN) and the connection's close, for the peer to read
what came before it (a failed handshake's bytes)."""
HIGH_WATER = 1 << 20  # bytes buffered in the stream before the link is paused
LOW_WATER = 1 << 18  # and resumed
READS_PER_WAKEUP = 64  # datagrams read at most per reactor wakeup


class QuicDialError(YggError):
    """A QUIC dial failed; ``str(e)`` reads like quic-go's error."""


def client_configuration() -> QuicConfiguration:
    # No server name: quic-go's dial in 0.5.12 is handed the shared TLS config, whose
    # ServerName is empty, and dials an IP address.
    return QuicConfiguration(
        is_client=True,
        alpn_protocols=None,
        verify_mode=ssl.CERT_NONE,
        idle_timeout=IDLE_TIMEOUT,
    )


def server_configuration(certificate: Certificate) -> QuicConfiguration:
    cert, key = certificate
    return QuicConfiguration(
        is_client=False,
        alpn_protocols=None,
        idle_timeout=IDLE_TIMEOUT,
        certificate=cert.to_cryptography(),
        private_key=key.to_cryptography_key(),
    )


def _address(sockaddr: Any) -> IPv4Address | IPv6Address:
    """A Twisted address for a ``sockaddr`` (an IPv6 one's scope becomes its zone)."""
    host, port = sockaddr[0], sockaddr[1]
    if ":" not in host:
        return IPv4Address("UDP", host, port)
    if len(sockaddr) > 3 and sockaddr[3] and "%" not in host:
        try:
            host = f"{host}%{socket.if_indextoname(sockaddr[3])}"
        except OSError:
            host = f"{host}%{sockaddr[3]}"
    return IPv6Address("UDP", host, port)


@implementer(ITransport)
class QuicLink:
    """One QUIC connection carrying one link: the link protocol's transport.

    ``send`` writes a datagram to an address; ``on_closed`` is called once the
    connection has ended and sent its last datagram (the owner then forgets it).
    ``on_cids`` tells a listener of connection IDs issued (True) and retired (False).
    """

    def __init__(
        self,
        reactor: Any,
        quic: QuicConnection,
        send: Callable[[bytes, Any], None],
        host: Any,
        peer: Any,
        *,
        on_closed: Callable[[QuicLink], None],
        on_cids: Callable[[bytes, bool], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.quic = quic
        self._send = send
        self._host = host
        self._peer = _address(peer)
        self._on_closed = on_closed
        self._on_cids = on_cids
        self.link: IProtocol | None = None
        self.stream_id: int | None = None
        #: Called once the handshake completed (the dialer then opens its stream).
        self.on_handshake: Callable[[], None] | None = None
        #: Called with the first stream the peer opens (a listener's link starts there).
        self.on_stream: Callable[[int], None] | None = None
        #: Called if the connection ends before it carried a link.
        self.on_failed: Callable[[str], None] | None = None
        self._timer: Any = None
        self._timer_at: float | None = None
        self._flush: Any = None
        self._keepalive: Any = None
        self._linger: Any = None
        self._producer: Any = None
        self._paused = False
        self._lost = False
        self._done = False
        #: Fires once the connection has ended and sent its last datagram (the link itself
        #: is told at once that it is closed).
        self.closed: Deferred[None] = Deferred()

    # -- datagrams ------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.quic.receive_datagram(data, addr, now=self.reactor.seconds())
        self._process()

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.quic.handle_timer(now=self.reactor.seconds())
        self._process()

    def _process(self) -> None:
        self._handle_events()
        self.transmit()

    def transmit(self) -> None:
        """Send what aioquic has queued and set its timer."""
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._flush = None
        if self._done:
            return
        now = self.reactor.seconds()
        for data, addr in self.quic.datagrams_to_send(now=now):
            self._send(data, addr)
        self._check_resume()
        timer_at = self.quic.get_timer()
        if self._timer is not None and self._timer_at != timer_at:
            self._timer.cancel()
            self._timer = None
        if self._timer is None and timer_at is not None:
            self._timer = self.reactor.callLater(max(0.0, timer_at - now), self._on_timer)
        self._timer_at = timer_at

    def _transmit_soon(self) -> None:
        # Writes in one turn of the reactor leave in the same datagrams.
        if self._flush is None and not self._done:
            self._flush = self.reactor.callLater(0, self.transmit)

    def _handle_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted):
                self._keepalive = self.reactor.callLater(KEEPALIVE_PERIOD, self._ping)
                if self.on_handshake is not None:
                    self.on_handshake()
            elif isinstance(event, events.StreamDataReceived):
                self._stream_data(event)
            elif isinstance(event, events.ConnectionIdIssued) and self._on_cids:
                self._on_cids(event.connection_id, True)
            elif isinstance(event, events.ConnectionIdRetired) and self._on_cids:
                self._on_cids(event.connection_id, False)
            elif isinstance(event, events.ConnectionTerminated):
                self._terminated(event)
            elif isinstance(event, events.StreamReset) and event.stream_id == self.stream_id:
                self._lose(ConnectionLost(f"stream reset by peer (code {event.error_code})"))
                self.abortConnection()

    def _stream_data(self, event: events.StreamDataReceived) -> None:
        if self.stream_id is None and self.on_stream is not None:
            # Only a stream the dialer opened, and the first: quic-go's AcceptStream.
            if event.stream_id % 4 != 0:
                return
            self.stream_id = event.stream_id
            self.on_stream(event.stream_id)
        if event.stream_id != self.stream_id or self.link is None:
            return
        if event.data and not self._lost:
            self.link.dataReceived(event.data)
        if event.end_stream:
            # The peer is done (quic-go closes only its stream): so is the connection.
            self._lose(ConnectionDone())
            self._close_connection()

    def _terminated(self, event: events.ConnectionTerminated) -> None:
        if event.reason_phrase == "Idle timeout":
            text = "timeout: no recent network activity"
        elif event.error_code == QuicErrorCode.NO_ERROR:
            text = ""
        else:
            text = f"QUIC error {event.error_code:#x}: {event.reason_phrase or 'closed'}"
        if self.link is None and self.on_failed is not None:
            self.on_failed(text or "connection closed")
        self._lose(ConnectionLost(text) if text else ConnectionDone())
        self._finish()

    def _ping(self) -> None:
        self._keepalive = None
        if self._done:
            return
        self.quic.send_ping(0)
        self.transmit()
        self._keepalive = self.reactor.callLater(KEEPALIVE_PERIOD, self._ping)

    # -- the link -----------------------------------------------------------------------

    def start_link(self, link: IProtocol, stream_id: int) -> None:
        self.stream_id = stream_id
        self.link = link
        link.makeConnection(self)  # type: ignore[arg-type]

    def _lose(self, reason: BaseException) -> None:
        if self._lost:
            return
        self._lost = True
        if self.link is not None:
            self.link.connectionLost(Failure(reason))

    def _close_connection(self, code: int = QuicErrorCode.NO_ERROR, reason: str = "") -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._linger = None
        if not self._done:
            self.quic.close(error_code=code, reason_phrase=reason)
            self.transmit()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        for call in (self._timer, self._flush, self._keepalive, self._linger):
            if call is not None and call.active():
                call.cancel()
        self._on_closed(self)
        self.closed.callback(None)

    # -- ITransport -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._lost or self.stream_id is None or not data:
            return
        self.quic.send_stream_data(self.stream_id, bytes(data))
        self._transmit_soon()
        if self._producer is not None and not self._paused and self._buffered() > HIGH_WATER:
            self._paused = True
            self._producer.pauseProducing()

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """The end of our stream (quic-go's Stream.Close), then the connection's close a
        moment later: the peer reads what we wrote before it sees the end."""
        if self._lost:
            return
        if self.stream_id is not None:
            self.quic.send_stream_data(self.stream_id, b"", end_stream=True)
            self.transmit()
        self._lose(ConnectionDone())
        self._linger = self.reactor.callLater(LINGER, self._close_connection)

    def abortConnection(self) -> None:
        self._lose(ConnectionAborted())
        if not self._done:
            self._close_connection()

    def getPeer(self) -> Any:
        return self._peer

    def getHost(self) -> Any:
        return self._host

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer

    def unregisterProducer(self) -> None:
        self._producer = None

    def _buffered(self) -> int:
        """Bytes written to our stream and not yet acknowledged (aioquic keeps them in the
        stream's sender; it has no public count, so a missing attribute reads as 0)."""
        stream = getattr(self.quic, "_streams", {}).get(self.stream_id)
        buffer = getattr(getattr(stream, "sender", None), "_buffer", b"")
        return len(buffer)

    def _check_resume(self) -> None:
        if self._paused and self._buffered() < LOW_WATER:
            self._paused = False
            if self._producer is not None:
                self._producer.resumeProducing()


# -- sockets --------------------------------------------------------------------------------


@implementer(IReadDescriptor)
class _UDPSocket:
    """A non-blocking UDP socket read by the reactor.  Twisted's ``udp.Port`` would log a
    line as each opens and closes, and every dial (and redial) has a port of its own."""

    def __init__(self, reactor: Any, sock: socket.socket, receive: Callable[[bytes, Any], None]):
        self.reactor = reactor
        self.sock: socket.socket | None = sock
        self.receive = receive
        host, port = sock.getsockname()[:2]
        self.host = _address((host, port))
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "ygg-quic"

    def doRead(self) -> None:
        for _ in range(READS_PER_WAKEUP):
            if self.sock is None:
                return
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:  # nothing more to read (or an ICMP error: QUIC times out)
                return
            self.receive(data, addr)

    def write(self, data: bytes, addr: Any) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass  # dropped, as the network may drop it: QUIC sends again

    def connectionLost(self, reason: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None


def _udp_socket(ip: str, port: int, zone: str = "") -> tuple[socket.socket, Any]:
    """A bound non-blocking UDP socket, and the ``sockaddr`` form of ``ip``:``port``;
    SocketCallError (Go's ``bind: …`` text) when it cannot be made."""
    family, address = socket_address(ip, port, zone)
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as e:
        raise SocketCallError("socket", e.errno or 0) from None
    try:
        if family == socket.AF_INET6 and ip == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setblocking(False)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise SocketCallError("bind", e.errno or 0) from None
    return sock, address


# -- dialing --------------------------------------------------------------------------------


class _Dial:
    """One dial: a UDP socket of its own, the QUIC handshake within
    :data:`HANDSHAKE_TIMEOUT`, then the stream; ``result`` fires with the link protocol
    built on it."""

    def __init__(
        self, reactor: Any, ip: str, port: int, zone: str, factory: IProtocolFactory
    ) -> None:
        self.result: Deferred[IProtocol] = Deferred(self._cancel)
        self._reactor = reactor
        self._factory = factory
        self.connection: QuicLink | None = None
        family, target = socket_address(ip, port, zone)
        sock, _ = _udp_socket("::" if family == socket.AF_INET6 else "0.0.0.0", 0)
        self._udp = _UDPSocket(reactor, sock, self._datagram)
        quic = QuicConnection(configuration=client_configuration())
        self.connection = QuicLink(
            reactor, quic, self._udp.write, self._udp.host, target, on_closed=self._closed
        )
        self.connection.on_handshake = self._handshake_done
        self.connection.on_failed = self._failed
        self._timer = reactor.callLater(HANDSHAKE_TIMEOUT, self._expire)
        quic.connect(target, now=reactor.seconds())
        self.connection.transmit()

    def _datagram(self, data: bytes, addr: Any) -> None:
        if self.connection is not None:
            self.connection.datagram_received(data, addr)

    def _handshake_done(self) -> None:
        connection = self.connection
        assert connection is not None
        link = self._factory.buildProtocol(connection.getPeer())
        if link is None:
            connection.abortConnection()
            self._finish(Failure(QuicDialError("protocol factory refused the connection")))
            return
        connection.start_link(link, connection.quic.get_next_available_stream_id())
        self._finish(link)

    def _failed(self, text: str) -> None:
        self._finish(Failure(QuicDialError(text)))

    def _expire(self) -> None:
        self._timer = None
        self._finish(Failure(QuicDialError("timeout: handshake did not complete in time")))
        if self.connection is not None:
            self.connection.abortConnection()

    def _cancel(self, _: Deferred[IProtocol]) -> None:
        if self.connection is not None:
            self.connection.abortConnection()

    def _closed(self, connection: QuicLink) -> None:
        self.connection = None
        self._udp.close()

    def _finish(self, value: Any) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        fire_once(self.result, value)


@implementer(IStreamClientEndpoint)
class QuicClientEndpoint:
    """Dials a resolved ``ip``:``port`` (``zone`` for a link-local IPv6) over QUIC;
    SocketCallError if no UDP socket can be had."""

    def __init__(self, reactor: Any, ip: str, port: int, zone: str = "") -> None:
        self._reactor = reactor
        self._ip = ip
        self._port = port
        self._zone = zone

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return _Dial(self._reactor, self._ip, self._port, self._zone, protocolFactory).result


# -- listening ------------------------------------------------------------------------------


class _Listener:
    """One UDP port, every connection to it: datagrams go to the connection whose ID they
    name; an Initial packet with a new ID starts a connection."""

    def __init__(self, reactor: Any, factory: IProtocolFactory, certificate: Certificate) -> None:
        self.reactor = reactor
        self.factory = factory
        self.configuration = server_configuration(certificate)
        self.connections: dict[bytes, QuicLink] = {}
        self.udp: _UDPSocket | None = None
        #: Set when the listener stops: no new connections; fires once the last is gone.
        self.drained: Deferred[None] | None = None

    def datagram_received(self, datagram: bytes, addr: Any) -> None:
        try:
            header = pull_quic_header(
                Buffer(data=datagram), host_cid_length=self.configuration.connection_id_length
            )
        except ValueError:
            return
        versions = self.configuration.supported_versions
        if (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in versions
        ):
            reply = encode_quic_version_negotiation(
                source_cid=header.destination_cid,
                destination_cid=header.source_cid,
                supported_versions=versions,
            )
            self._write(reply, addr)
            return
        connection = self.connections.get(header.destination_cid)
        if connection is None:
            if header.packet_type != QuicPacketType.INITIAL or self.drained is not None:
                return
            if len(datagram) < SMALLEST_MAX_DATAGRAM_SIZE:
                return
            connection = self._accept(header.destination_cid, addr)
        connection.datagram_received(datagram, addr)

    def _write(self, data: bytes, addr: Any) -> None:
        if self.udp is not None:
            self.udp.write(data, addr)

    def _accept(self, original_cid: bytes, addr: Any) -> QuicLink:
        assert self.udp is not None
        quic = QuicConnection(
            configuration=self.configuration, original_destination_connection_id=original_cid
        )
        connection = QuicLink(
            self.reactor, quic, self._write, self.udp.host, addr, on_closed=self._closed
        )
        connection._on_cids = lambda cid, issued: self._cids(connection, cid, issued)
        connection.on_stream = lambda stream_id: self._stream(connection, stream_id)
        self.connections[original_cid] = connection
        self.connections[quic.host_cid] = connection
        # A connection that carries no link within the handshake's time is dropped, as
        # quic-go drops one whose handshake stalls: a stray Initial costs 5 s, not 60.
        deadline = self.reactor.callLater(HANDSHAKE_TIMEOUT, self._unlinked, connection)
        connection.closed.addCallback(lambda _: deadline.active() and deadline.cancel())
        return connection

    def _unlinked(self, connection: QuicLink) -> None:
        if connection.link is None:
            connection.abortConnection()

    def _cids(self, connection: QuicLink, cid: bytes, issued: bool) -> None:
        if issued:
            self.connections[cid] = connection
        elif self.connections.get(cid) is connection:
            del self.connections[cid]

    def _stream(self, connection: QuicLink, stream_id: int) -> None:
        link = self.factory.buildProtocol(connection.getPeer())
        if link is None:
            connection.abortConnection()
            return
        connection.start_link(link, stream_id)

    def _closed(self, connection: QuicLink) -> None:
        for cid in [c for c, found in self.connections.items() if found is connection]:
            del self.connections[cid]
        if self.drained is not None and not self.connections and not self.drained.called:
            self.drained.callback(None)

    def stop(self) -> Deferred[None]:
        """Take no new connections, drop those not yet carrying a link, and fire once the
        links still on the port have ended (as a TCP listener leaves its connections be)."""
        self.drained = Deferred()
        for connection in set(self.connections.values()):
            if connection.link is None:
                connection.abortConnection()
        if not self.connections:
            self.drained.callback(None)
        return self.drained


@implementer(IListeningPort)
class QuicPort:
    """A listening QUIC port: its UDP socket, closed once its links have ended."""

    def __init__(self, listener: _Listener) -> None:
        self._listener = listener
        assert listener.udp is not None
        self._host = listener.udp.host

    def startListening(self) -> None:
        pass

    def stopListening(self) -> Deferred[None]:
        udp = self._listener.udp
        return self._listener.stop().addCallback(lambda _: udp and udp.close())

    def getHost(self) -> Any:
        return self._host


def listen(
    reactor: Any,
    ip: str,
    port: int,
    zone: str,
    factory: IProtocolFactory,
    certificate: Certificate,
) -> QuicPort:
    """Listen for QUIC links on ``ip``:``port`` (``::`` for both families); raises
    SocketCallError when the UDP port cannot be bound."""
    listener = _Listener(reactor, factory, certificate)
    sock, _ = _udp_socket(ip, port, zone)
    listener.udp = _UDPSocket(reactor, sock, listener.datagram_received)
    return QuicPort(listener)


__all__ = [
    "QuicClientEndpoint",
    "QuicDialError",
    "QuicLink",
    "QuicPort",
    "listen",
]
