"""The admin socket yggdrasilctl talks to (``AdminListen``), byte for byte as 0.4.7 answers
(and as 0.5.12 does once the node runs v0.5).

A client writes JSON values back to back; each is a request ``{"request": name,
"arguments": {...}, "keepalive": bool}``.  Each gets one reply, written as Go's
json.Encoder writes it (2-space indent, newline), with the members ``status``, ``error``
(only on error), ``request`` (null as 0.4.7 writes it; the request echoed as 0.5.12 does
once the node runs v0.5: ``ygg.admin.envelope``) and ``response``.  After a reply the
connection closes unless the request asked to keep it alive.  Requests are answered in
order.

Limits the Go node does not have, so that a misbehaving client can neither fill the
node's memory nor its file descriptors nor lock the operator out: a request may be at most
1 MiB; a connection is closed 300 s after its last request or reply; at most 128
connections are served at once and 32 from one client (a unix-socket peer's uid, a TCP
peer's address), and a newcomer who finds no place takes that of the longest idle
connection instead of being refused (``ygg.admin.limits``).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from typing import Any

from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IListeningPort,
    IPushProducer,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.admin import envelope
from ygg.admin.forms import V04, node_form
from ygg.admin.limits import Slots
from ygg.admin.listener import AdminListener, AdminListenError, describe
from ygg.admin.registry import AdminError, Registry

log = Logger(namespace="ygg.admin")

MAX_REQUEST = 1 << 20
MAX_CONNECTIONS = 128
MAX_PER_CLIENT = 32
IDLE_TIMEOUT = 300.0

_WHITESPACE = b" \t\r\n"
# What raw_decode stops at when the text ends inside a token: a literal, a \u escape (even
# a whole one: it looks past it), a number's sign, fraction or exponent.
_CUT_TOKEN = re.compile(r"t(r(ue?)?)?|f(a(l(se?)?)?)?|n(u(ll?)?)?|u[0-9a-fA-F]{0,4}|-|\.|[eE][+-]?")
_decoder = json.JSONDecoder()


def encode_reply(reply: Mapping[str, Any], request: str | None = None) -> bytes:
    return envelope.encode_reply(reply, request)


def error_reply(text: str) -> dict[str, Any]:
    return {"status": "error", "error": text, "request": None, "response": None}


_WAIT = object()  # no complete request buffered yet


@implementer(IHalfCloseableProtocol, IPushProducer)
class AdminProtocol(TimeoutMixin, Protocol):
    """One connection: requests decoded and answered one at a time, in order.

    Answering is a loop, not a chain of callbacks, so any number of pipelined requests
    take constant stack.  It stops, and stops reading, while the transport's write buffer
    is full (the protocol is its producer): a client that writes without reading gets
    its replies as it reads them, instead of the node buffering all it asked for.
    The idle timer restarts at each request and reply, not at each byte: a connection
    that trickles bytes without finishing a request is closed ``IDLE_TIMEOUT`` after its
    last one.
    """

    def __init__(self, factory: AdminFactory) -> None:
        self.factory = factory
        self._buffer = b""
        self._text = ""  # the request being answered, as text (for 0.5.12's echo)
        self._busy = False  # a request is being answered
        self._looping = False  # _next's loop is running (further up the stack)
        self._paused = False  # the transport's write buffer is full
        self._done = False
        self._producing = False
        self._input_ended = False

    def callLater(self, period: float, func: Any) -> Any:  # TimeoutMixin's clock
        return self.factory.reactor.callLater(period, func)

    def connectionMade(self) -> None:
        if not self.factory.slots.admit(self):
            self._done = True
            self.transport.abortConnection()
            return
        self.transport.registerProducer(self, True)
        self._producing = True
        self.setTimeout(IDLE_TIMEOUT)

    def eviction_rank(self) -> int | None:
        return None if self._busy else 0

    def timeoutConnection(self) -> None:
        self._done = True
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.slots.release(self)
        self.setTimeout(None)
        self._done = True

    def readConnectionLost(self) -> None:
        """The client half-closed: answer what it sent, then end as Go's loop does."""
        self._input_ended = True
        self._next()

    def writeConnectionLost(self) -> None:
        self._close()

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._buffer += data
        self._next()

    # -- IPushProducer: the transport asks us to wait while its write buffer drains ------

    def pauseProducing(self) -> None:
        self._paused = True
        self.transport.pauseProducing()  # and read no more meanwhile

    def resumeProducing(self) -> None:
        self._paused = False
        if not self._done:
            self.transport.resumeProducing()
            self._next()

    def stopProducing(self) -> None:
        self._done = True

    # -- requests ---------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the buffered requests, one at a time, while nothing stops us."""
        if self._looping:
            return  # a reply that came at once: the loop further up goes on
        self._looping = True
        try:
            while not (self._busy or self._done or self._paused):
                value = self._request()
                if value is _WAIT:
                    return
                self._active()
                self._answer(value)
        finally:
            self._looping = False

    def _request(self) -> Any:
        """The next complete request; ``_WAIT`` until there is one (or after answering a
        malformed one, which ends the connection)."""
        buffer = self._buffer.lstrip(_WHITESPACE)
        self._buffer = buffer
        if not buffer:
            if self._input_ended:
                # Go's decoder meets the end of the stream where it wanted a request.
                self._finish(error_reply("Failed to find request"))
            return _WAIT
        if len(buffer) > MAX_REQUEST:
            self._finish(error_reply("Failed to find request"))
            return _WAIT
        broken = False  # the bytes read so far cannot become a request, whatever follows
        try:
            text = buffer.decode()
        except UnicodeDecodeError as e:
            # The requests before a bad byte are answered first, as Go's decoder reads
            # them first; a character cut in two at the end may still be completed.
            text = buffer[: e.start].decode()
            broken = e.reason != "unexpected end of data" or self._input_ended
        try:
            value, end = _decoder.raw_decode(text)
        except json.JSONDecodeError as e:
            if broken or not _incomplete(text, e) or self._input_ended:
                self._finish(error_reply("Failed to find request"))
            return _WAIT
        except (RecursionError, ValueError):  # absurd nesting, a number of 5000 digits
            self._finish(error_reply("Failed to find request"))
            return _WAIT
        self._buffer = buffer[len(text[:end].encode()) :]
        self._text = text[:end]
        return value

    def _answer(self, value: Any) -> None:
        keepalive = False
        unread = envelope.UNREAD if self.factory.echoes else None
        if isinstance(value, dict):
            name = value.get("request")
            keepalive = value.get("keepalive", False)
            if not isinstance(name, (str, type(None))) or not isinstance(keepalive, bool):
                self._reply(error_reply("Failed to unmarshal request"), False, unread)
                return
            echo = self._echo(value)
            if not name:
                self._reply(error_reply("No request specified"), keepalive, echo)
                return
            arguments = value.get("arguments", {})
        elif value is None:
            self._reply(error_reply("No request specified"), False, self._echo(value))
            return
        else:
            self._reply(error_reply("Failed to unmarshal request"), False, unread)
            return
        self._busy = True
        d = self.factory.registry.call(self.factory.node, name, arguments, door="json")
        d.addCallbacks(self._success, self._failure)
        d.addCallback(self._reply, keepalive, echo)
        d.addErrback(self._crashed)

    def _active(self) -> None:
        """A request came or a reply went: what keeps a connection (bytes do not)."""
        self.factory.slots.touch(self)
        self.resetTimeout()

    def _success(self, result: Any) -> dict[str, Any]:
        return {"status": "success", "request": None, "response": result}

    def _failure(self, failure: Failure) -> dict[str, Any]:
        if failure.check(AdminError):
            return error_reply(str(failure.value))
        log.failure("Admin method failed", failure)
        return {"error": "Check your syntax and input types"}

    def _echo(self, value: Any) -> str | None:
        """0.5.12's echo of the request (None where 0.4.7's null is written)."""
        return envelope.echo(value, self._text) if self.factory.echoes else None

    def _reply(self, reply: dict[str, Any], keepalive: bool, echo: str | None = None) -> None:
        self._busy = False
        if self._done:
            return
        try:
            data = encode_reply(reply, echo)
        except (TypeError, ValueError) as e:
            data = encode_reply(error_reply(f"Failed to marshal response: {e}"), echo)
        self.transport.write(data)
        self._active()
        if not keepalive or "status" not in reply:
            self._close()
            return
        self._next()

    def _crashed(self, failure: Failure) -> None:
        log.failure("Admin socket error", failure)
        self._close()

    def _finish(self, reply: dict[str, Any]) -> None:
        self.transport.write(encode_reply(reply, envelope.UNREAD if self.factory.echoes else None))
        self._close()

    def _close(self) -> None:
        """Close once the replies are written (a registered producer would hold it)."""
        self._done = True
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()


def _incomplete(text: str, error: json.JSONDecodeError) -> bool:
    """Whether more input could still make ``text`` start with a JSON value."""
    if error.pos >= len(text):
        return True
    # raw_decode reports an unterminated string or a value cut short at its start, and
    # a token cut short (``tr``, ``\ud8``, ``1e+``) where that token starts.
    rest = text[error.pos :]
    return (
        error.msg.startswith("Unterminated string")
        or (error.msg.startswith("Expecting") and rest.strip() == "")
        or _CUT_TOKEN.fullmatch(rest) is not None
    )


class AdminFactory(Factory):
    noisy = False

    def __init__(
        self, node: Any, registry: Registry, reactor: Any, slots: Slots | None = None
    ) -> None:
        self.node = node
        self.registry = registry
        self.reactor = reactor
        self.slots = slots or Slots("Admin socket", MAX_CONNECTIONS, MAX_PER_CLIENT, reactor)
        #: Whether replies echo the request, as 0.5.12's do (a node running v0.5).
        self.echoes = node_form(node) != V04

    def buildProtocol(self, addr: Any) -> AdminProtocol:
        return AdminProtocol(self)


class AdminSocketService(AdminListener):
    """Listens on ``AdminListen``: ``unix:///path`` (mode 0660, removed on stop),
    ``tcp://host:port``, or a bare ``host:port``."""

    what = "Admin socket"

    def __init__(self, node: Any, registry: Registry, listen: str, reactor: Any) -> None:
        super().__init__(reactor)
        self.node = node
        self.registry = registry
        self.listen = listen
        self.path: str | None = None

    def make_endpoint(self) -> IStreamServerEndpoint:
        listen = self.listen
        try:
            if listen.lower().startswith("unix://"):
                self.path = listen[7:]
                self._clean_up(self.path)
                return UNIXServerEndpoint(self.reactor, self.path, mode=0o660)
            hostport = listen[6:] if listen.lower().startswith("tcp://") else listen
            host, _, port = hostport.rpartition(":")
            host = host.strip("[]")
            if host == "localhost":
                host = "127.0.0.1"
            kind = TCP6ServerEndpoint if ":" in host else TCP4ServerEndpoint
            return kind(self.reactor, int(port), interface=host)
        except (OSError, ValueError) as e:
            raise AdminListenError(self.listen_error(str(e))) from None

    def build_factory(self) -> AdminFactory:
        self.slots = Slots("Admin socket", MAX_CONNECTIONS, MAX_PER_CLIENT, self.reactor)
        return AdminFactory(self.node, self.registry, self.reactor, self.slots)

    def announce(self, port: IListeningPort) -> None:
        if self.path is not None:
            log.info("UNIX admin socket listening on {where}", where=self.path)
        else:
            log.info("TCP admin socket listening on {where}", where=describe(port))

    def _clean_up(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if not os.path.exists(path):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: nobody answers on it
            return
        finally:
            probe.close()
        raise AdminListenError(
            f"Admin socket {path} already exists and is in use by another process"
        )
