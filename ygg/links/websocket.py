"""WebSocket links (``ws://``, ``wss://``): the link's byte stream in binary WebSocket messages.

yggdrasil 0.5 (``src/core/link_ws.go``, ``link_wss.go``) dials with an HTTP/1.1 upgrade
offering the subprotocol ``ygg-ws``, then treats the WebSocket as a plain stream: each write
is one binary message, and reads run across message boundaries; a text message ends the
link.  A listener answers ``GET /health`` and ``/healthz`` with ``200 OK``, accepts an
upgrade whose subprotocol is not ``ygg-ws`` only to close it at once (1008), and refuses a
browser's cross-origin request unless its host matches a ``?origin=`` pattern of the
listener URI (0.5.14; ``*`` allows any).  TLS for ``wss://`` is the same as for ``tls://``
links, set up underneath by :mod:`ygg.links.endpoints`.

The link handshake and framing then run unchanged over :class:`WebSocketTransport`.  The
WebSocket protocol itself is autobahn's; this module, and so autobahn, is imported only
when a ws/wss peer or listener exists.  Timers are our own, on the reactor we are handed
(autobahn's would use the global one), so its own timeouts are all turned off.
"""

from __future__ import annotations

import fnmatch
import http
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest, ConnectionResponse
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.errors import YggError
from ygg.links.netutil import go_quote
from ygg.links.sockets import fire_once

log = Logger(namespace="ygg.links")

SUBPROTOCOL = "ygg-ws"
HEALTH_PATHS = frozenset(("/health", "/healthz"))
UPGRADE_TIMEOUT = 5.0
"""Seconds for the HTTP upgrade once the stream (TCP, TLS) is up."""
CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the peer's close frame after ours (Go waits as long)."""

_NORMAL, _GOING_AWAY, _UNSUPPORTED_DATA, _POLICY_VIOLATION = 1000, 1001, 1003, 1008

# Our own timers replace autobahn's, which run on the global reactor through txaio.
_PROTOCOL_OPTIONS: dict[str, Any] = {
    "openHandshakeTimeout": 0,
    "closeHandshakeTimeout": 0,
    "autoPingInterval": 0,
    "failByDrop": False,
    "maxFramePayloadSize": 0,
    "maxMessagePayloadSize": 0,
}


class WebSocketDialError(YggError):
    """The upgrade failed; ``str(e)`` reads like the Go node's error."""


@implementer(ITransport)
class WebSocketTransport:
    """The link protocol's transport: writes become binary messages on the WebSocket.

    Flow control is the stream's: a producer registered here is registered with the TCP
    (or TLS) transport underneath.
    """

    def __init__(self, protocol: _LinkCarrier) -> None:
        self._ws = protocol

    def write(self, data: bytes) -> None:
        self._ws.send_stream(bytes(data))

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self._ws.send_stream(b"".join(data))

    def loseConnection(self) -> None:
        self._ws.close_link(_NORMAL)

    def abortConnection(self) -> None:
        self._ws.abort_link()

    def getPeer(self) -> Any:
        return self._ws.transport.getPeer()

    def getHost(self) -> Any:
        return self._ws.transport.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._ws.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._ws.transport.unregisterProducer()


class _LinkCarrier:
    """What the client and server protocols share: a link protocol riding the WebSocket.

    Mixed into autobahn's protocols, which provide ``sendMessage``, ``sendClose`` and the
    ``on…`` callbacks overridden here.
    """

    transport: Any
    factory: Any
    link: IProtocol | None = None
    _closing = False
    _error: str | None = None  # why we closed the WebSocket, when it was an error
    _close_timer: Any = None

    def start_link(self, link: IProtocol) -> None:
        self.link = link
        link.makeConnection(WebSocketTransport(self))  # type: ignore[arg-type]

    # -- from the link ------------------------------------------------------------------

    def send_stream(self, data: bytes) -> None:
        if not self._closing and data:
            self.sendMessage(data, isBinary=True)  # type: ignore[attr-defined]

    def close_link(self, code: int, reason: str | None = None) -> None:
        """Go's ``NetConn.Close``: a close frame, then the TCP connection once the peer
        answers (or :data:`CLOSE_TIMEOUT` later)."""
        if self._closing:
            return
        self._closing = True
        if code != _NORMAL:
            self._error = reason or f"close status {code}"
        if self.state != self.STATE_OPEN:  # type: ignore[attr-defined]
            self.abort_link()
            return
        # The frame itself: autobahn's sendClose refuses the protocol's own codes (1003…).
        payload = reason.encode("utf-8")[:123] if reason else None  # a frame holds 125
        self.sendCloseFrame(code, payload)  # type: ignore[attr-defined]
        self._close_timer = self.factory.reactor.callLater(CLOSE_TIMEOUT, self.abort_link)

    def abort_link(self) -> None:
        self._closing = True
        self.transport.abortConnection()

    # -- from the WebSocket -------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        # autobahn's own dataReceived formats a debug line for every read.
        self._dataReceived(data)  # type: ignore[attr-defined]

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.link is None or self._closing:
            return
        if not isBinary:
            # As Go's NetConn: the stream is binary messages only.
            self.close_link(
                _UNSUPPORTED_DATA,
                "unexpected frame type read (expected MessageBinary): MessageText",
            )
            return
        self.link.dataReceived(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        link, self.link = self.link, None
        if link is None:
            return
        if self._error is not None:
            link.connectionLost(Failure(ConnectionLost(self._error)))
        elif wasClean and code in (_NORMAL, _GOING_AWAY):
            # Go reads these as the end of the stream (EOF).
            link.connectionLost(Failure(ConnectionDone()))
        else:
            link.connectionLost(Failure(ConnectionLost(_close_text(wasClean, code, reason))))


def _close_text(clean: bool, code: int | None, reason: str | None) -> str:
    if clean and code is not None:
        return f"received close frame: status = {code} and reason = {go_quote(reason or '')}"
    return "EOF"


# -- listening ------------------------------------------------------------------------------


class _ServerProtocol(_LinkCarrier, WebSocketServerProtocol):
    factory: WebSocketListenFactory

    def onConnect(self, request: ConnectionRequest) -> str | None:
        if request.path in HEALTH_PATHS:
            raise ConnectionDeny(200, "OK")
        refused = check_origin(
            request.headers.get("origin", ""), request.headers.get("host", ""), self.factory.origins
        )
        if refused:
            raise ConnectionDeny(403, refused)
        for offered in request.protocols:
            if offered.lower() == SUBPROTOCOL:
                return offered
        return None  # accepted, then closed in onOpen, as Go does

    def onOpen(self) -> None:
        if self.websocket_protocol_in_use is None:
            self.close_link(_POLICY_VIOLATION, "client must speak the ygg-ws subprotocol")
            return
        link = self.factory.wrapped.buildProtocol(self.transport.getPeer())
        if link is None:
            self.abort_link()
            return
        self.start_link(link)

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        """An HTTP answer in Go's form (``http.Error``), logged at debug level only: anyone
        can send a listener a bad request."""
        self.wasNotCleanReason = reason
        path = getattr(self, "http_request_path", None)
        if path in HEALTH_PATHS:
            code, reason = http.HTTPStatus.OK, "OK"
        else:
            log.debug(
                "WebSocket listener refused {peer}: {reason}",
                peer=self.transport.getPeer(),
                reason=reason,
            )
        self.sendData(http_response(int(code), reason, responseHeaders))
        self.dropConnection(abort=False)


def http_response(code: int, body: str, headers: Iterable[tuple[str, str]] | None = None) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    text = body if code == http.HTTPStatus.OK else body + "\n"
    payload = text.encode("utf-8", "replace")
    lines = [
        f"HTTP/1.1 {code} {phrase}",
        "Content-Type: text/plain; charset=utf-8",
        "X-Content-Type-Options: nosniff",
        f"Content-Length: {len(payload)}",
        "Connection: close",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers or ())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace") + payload


def check_origin(origin: str, host: str, patterns: Iterable[str]) -> str:
    """Why a request's ``Origin`` is refused, or "" (Go's coder/websocket
    ``authenticateOrigin``): none, the request's own host, or a host matching a pattern
    (``*`` matches any) passes."""
    patterns = tuple(patterns)
    if not origin or "*" in patterns:
        return ""
    try:
        origin_host = urlsplit(origin).netloc
    except ValueError:
        return f"failed to parse Origin header {origin!r}"
    if origin_host.lower() == host.lower():
        return ""
    for pattern in patterns:
        if _host_pattern(pattern).fullmatch(origin_host.lower()):
            return ""
    if not origin_host:
        return f"request Origin {origin!r} is not a valid URL with a host"
    return f"request Origin {origin_host!r} is not authorized for Host {host!r}"


def _host_pattern(pattern: str) -> re.Pattern[str]:
    """Go's ``filepath.Match`` of a lower-cased pattern: ``*`` and ``?`` stop at ``/``."""
    return re.compile(fnmatch.translate(pattern.lower()).replace(".*", "[^/]*"))


class WebSocketListenFactory(WebSocketServerFactory):
    """Wraps the link factory of a ws/wss listener: each upgraded connection gets a link."""

    protocol = _ServerProtocol
    noisy = False

    def __init__(self, reactor: Any, wrapped: IProtocolFactory, origins: Iterable[str]) -> None:
        super().__init__(reactor=reactor, server=None)
        self.setProtocolOptions(**_PROTOCOL_OPTIONS, webStatus=False)
        self.wrapped = wrapped
        self.origins = tuple(origins)

    def startFactory(self) -> None:
        self.wrapped.doStart()
        super().startFactory()

    def stopFactory(self) -> None:
        self.wrapped.doStop()
        super().stopFactory()


# -- dialing --------------------------------------------------------------------------------


class _ClientProtocol(_LinkCarrier, WebSocketClientProtocol):
    factory: _DialFactory
    _status: int | None = None
    _failure: str | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.dial.stream_up(self)

    def onConnect(self, response: ConnectionResponse) -> None:
        return None

    def onOpen(self) -> None:
        self.factory.dial.opened(self)

    def failHandshake(self, reason: str) -> None:
        self._failure = reason
        status = getattr(self, "http_status_line", "").split()
        if len(status) >= 2 and status[1].isdigit():
            self._status = int(status[1])
        super().failHandshake(reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.link is None:
            self.factory.dial.failed(self._failure_text())
        super().onClose(wasClean, code, reason)

    def _failure_text(self) -> str:
        if self._status is not None and self._status != 101:
            return f"expected handshake response status code 101 but got {self._status}"
        if self._failure:
            return f"WebSocket protocol violation: {self._failure}"
        return "failed to read handshake response: EOF"


class _DialFactory(WebSocketClientFactory):
    protocol = _ClientProtocol
    noisy = False

    def __init__(self, reactor: Any, dial: _Dial, host: str, port: int, resource: str) -> None:
        super().__init__(reactor=reactor)
        self.setProtocolOptions(**_PROTOCOL_OPTIONS, serverConnectionDropTimeout=0)
        self.dial = dial
        # The request Go sends: GET <path?query>, Host, the ygg-ws subprotocol; no
        # compression, Origin or User-Agent.
        self.host = f"[{host}]" if ":" in host else host
        self.port = port
        self.resource = resource
        self.protocols = [SUBPROTOCOL]
        self.useragent = None
        self.origin = None


class _Dial:
    """One dial: the stream endpoint connects, the upgrade runs within
    :data:`UPGRADE_TIMEOUT`, and ``result`` fires with the link protocol built on the open
    WebSocket, or fails with :class:`WebSocketDialError` (Go's text)."""

    def __init__(
        self,
        reactor: Any,
        stream: IStreamClientEndpoint,
        factory: IProtocolFactory,
        uri: Any,
        url_text: str,
    ) -> None:
        self.result: Deferred[IProtocol] = Deferred(self._cancel)
        self._reactor = reactor
        self._factory = factory
        self._url = url_text
        self._ws: _ClientProtocol | None = None
        self._timer: Any = None
        ws_factory = _DialFactory(reactor, self, uri.host, uri.port, uri.resource)
        self._connecting = stream.connect(ws_factory)
        self._connecting.addErrback(self._stream_failed)

    def stream_up(self, ws: _ClientProtocol) -> None:
        self._ws = ws
        self._timer = self._reactor.callLater(UPGRADE_TIMEOUT, self._expire)

    def _stream_failed(self, failure: Failure) -> None:
        if not failure.check(CancelledError):
            self._request_failed(failure.getErrorMessage())

    def _request_failed(self, error: str) -> None:
        # Go's http client: ``Get "<url>": <error>``.
        text = f"failed to send handshake request: Get {go_quote(self._url)}: {error}"
        self._finish(Failure(_dial_error(text)))

    def opened(self, ws: _ClientProtocol) -> None:
        link = self._factory.buildProtocol(ws.transport.getPeer())
        if link is None:
            ws.abort_link()
            self._finish(Failure(_dial_error("protocol factory refused the connection")))
            return
        ws.start_link(link)
        self._finish(link)

    def failed(self, text: str) -> None:
        self._finish(Failure(_dial_error(text)))

    def _expire(self) -> None:
        self._timer = None
        self._request_failed("i/o timeout")
        if self._ws is not None:
            self._ws.abort_link()

    def _cancel(self, _: Deferred[IProtocol]) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._ws is not None:
            self._ws.abort_link()
        else:
            self._connecting.cancel()

    def _finish(self, value: Any) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        fire_once(self.result, value)


def _dial_error(text: str) -> WebSocketDialError:
    return WebSocketDialError(f"failed to WebSocket dial: {text}")


@implementer(IStreamClientEndpoint)
class WebSocketClientEndpoint:
    """Dials ``uri`` (ws or wss) over ``stream``, an endpoint that brings up the TCP (and,
    for wss, TLS) connection to the resolved address; the WebSocket upgrade runs on it."""

    def __init__(self, reactor: Any, stream: IStreamClientEndpoint, uri: Any, address: str) -> None:
        self._reactor = reactor
        self._stream = stream
        self._uri = uri
        scheme = "https" if uri.scheme == "wss" else "http"
        # Go's client reports errors against the URL with the resolved address in it.
        self._url = f"{scheme}://{address}{uri.resource}"

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return _Dial(self._reactor, self._stream, protocolFactory, self._uri, self._url).result


def server_factory(
    reactor: Any, wrapped: IProtocolFactory, origins: Iterable[str] = ()
) -> WebSocketListenFactory:
    """The factory a ws/wss listener listens with, around the link factory ``wrapped``."""
    return WebSocketListenFactory(reactor, wrapped, origins)


__all__ = [
    "SUBPROTOCOL",
    "WebSocketClientEndpoint",
    "WebSocketDialError",
    "WebSocketListenFactory",
    "WebSocketTransport",
    "check_origin",
    "server_factory",
]
