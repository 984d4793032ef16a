"""The admin socket yggdrasilctl talks to (``AdminListen``), byte for byte as 0.4.7 answers.

A client writes JSON values back to back; each is a request ``{"request": name,
"arguments": {...}, "keepalive": bool}``.  Each gets one reply, written as Go's
json.Encoder writes it (2-space indent, newline), with the members ``status``, ``error``
(only on error), ``request`` (always null) and ``response``.  After a reply the connection
closes unless the request asked to keep it alive.  Requests are answered in order.

Limits the Go node does not have: a request may be at most 1 MiB, and at most 128
connections are served at once (more are closed at once), so a misbehaving client can
neither fill the node's memory nor its file descriptors.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg import gojson
from ygg.admin.registry import AdminError, Registry
from ygg.errors import YggError

log = Logger(namespace="ygg.admin")

MAX_REQUEST = 1 << 20
MAX_CONNECTIONS = 128
IDLE_TIMEOUT = 300.0

_WHITESPACE = b" \t\r\n"
_decoder = json.JSONDecoder()


class AdminListenError(YggError):
    pass


def encode_reply(reply: Mapping[str, Any]) -> bytes:
    return (gojson.dumps(reply, indent=2) + "\n").encode()


def error_reply(text: str) -> dict[str, Any]:
    return {"status": "error", "error": text, "request": None, "response": None}


@implementer(IHalfCloseableProtocol)
class AdminProtocol(Protocol):
    def __init__(self, factory: AdminFactory) -> None:
        self.factory = factory
        self._buffer = b""
        self._busy = False
        self._done = False
        self._input_ended = False
        self._idle: Any = None

    def connectionMade(self) -> None:
        if self.factory.connections >= MAX_CONNECTIONS:
            self._done = True
            self.transport.abortConnection()
            return
        self.factory.connections += 1
        self._counted = True
        self._idle = self.factory.reactor.callLater(IDLE_TIMEOUT, self.transport.abortConnection)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if getattr(self, "_counted", False):
            self.factory.connections -= 1
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._done = True

    def readConnectionLost(self) -> None:
        """The client half-closed: answer what it sent, then end as Go's loop does."""
        self._input_ended = True
        self._next()

    def writeConnectionLost(self) -> None:
        self._done = True
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._done:
            return
        self._buffer += data
        if self._idle is not None and self._idle.active():
            self._idle.reset(IDLE_TIMEOUT)
        self._next()

    def _next(self) -> None:
        """Decode and answer the next complete request, if one is buffered and none is
        being answered."""
        while not self._busy and not self._done:
            buffer = self._buffer.lstrip(_WHITESPACE)
            self._buffer = buffer
            if not buffer:
                if self._input_ended:
                    # Go's decoder meets the end of the stream where it wanted a request.
                    self._finish(error_reply("Failed to find request"))
                return
            if len(buffer) > MAX_REQUEST:
                self._finish(error_reply("Failed to find request"))
                return
            try:
                text = buffer.decode()
            except UnicodeDecodeError as e:
                if e.end >= len(buffer) - 3:  # a character cut in two: wait for the rest
                    return
                self._finish(error_reply("Failed to find request"))
                return
            try:
                value, end = _decoder.raw_decode(text)
            except json.JSONDecodeError as e:
                if _incomplete(text, e) and not self._input_ended:
                    return
                self._finish(error_reply("Failed to find request"))
                return
            except (RecursionError, ValueError):  # absurd nesting, a number of 5000 digits
                self._finish(error_reply("Failed to find request"))
                return
            self._buffer = text[end:].encode()
            self._answer(value)

    def _answer(self, value: Any) -> None:
        keepalive = False
        if isinstance(value, dict):
            name = value.get("request")
            keepalive = value.get("keepalive", False)
            if not isinstance(name, (str, type(None))) or not isinstance(keepalive, bool):
                self._reply(error_reply("Failed to unmarshal request"), keepalive=False)
                return
            if not name:
                self._reply(error_reply("No request specified"), keepalive)
                return
            arguments = value.get("arguments", {})
        elif value is None:
            self._reply(error_reply("No request specified"), False)
            return
        else:
            self._reply(error_reply("Failed to unmarshal request"), False)
            return
        self._busy = True
        d = self.factory.registry.call(self.factory.node, name, arguments)
        d.addCallbacks(self._success, self._failure)
        d.addCallback(self._reply, keepalive)
        d.addErrback(self._crashed)

    def _success(self, result: Any) -> dict[str, Any]:
        return {"status": "success", "request": None, "response": result}

    def _failure(self, failure: Failure) -> dict[str, Any]:
        if failure.check(AdminError):
            return error_reply(str(failure.value))
        log.failure("Admin method failed", failure)
        return {"error": "Check your syntax and input types"}

    def _reply(self, reply: dict[str, Any], keepalive: bool) -> None:
        self._busy = False
        if self._done:
            return
        try:
            data = encode_reply(reply)
        except (TypeError, ValueError) as e:
            data = encode_reply(error_reply(f"Failed to marshal response: {e}"))
        self.transport.write(data)
        if not keepalive or "status" not in reply:
            self._done = True
            self.transport.loseConnection()
            return
        self._next()

    def _crashed(self, failure: Failure) -> None:
        log.failure("Admin socket error", failure)
        self._done = True
        self.transport.loseConnection()

    def _finish(self, reply: dict[str, Any]) -> None:
        self._done = True
        self.transport.write(encode_reply(reply))
        self.transport.loseConnection()


def _incomplete(text: str, error: json.JSONDecodeError) -> bool:
    """Whether more input could still make ``text`` start with a JSON value."""
    if error.pos >= len(text):
        return True
    # raw_decode reports an unterminated string or a value cut short at its start.
    return error.msg.startswith("Unterminated string") or (
        error.msg.startswith("Expecting") and text[error.pos :].strip() == ""
    )


class AdminFactory(Factory):
    noisy = False

    def __init__(self, node: Any, registry: Registry, reactor: Any) -> None:
        self.node = node
        self.registry = registry
        self.reactor = reactor
        self.connections = 0

    def buildProtocol(self, addr: Any) -> AdminProtocol:
        return AdminProtocol(self)


class AdminSocketService(Service):
    """Listens on ``AdminListen``: ``unix:///path`` (mode 0660, removed on stop),
    ``tcp://host:port``, or a bare ``host:port``."""

    def __init__(self, node: Any, registry: Registry, listen: str, reactor: Any) -> None:
        self.node = node
        self.registry = registry
        self.listen = listen
        self.reactor = reactor
        self.port: Any = None
        self.path: str | None = None

    def startService(self) -> None:
        super().startService()
        factory = AdminFactory(self.node, self.registry, self.reactor)
        listen = self.listen
        try:
            if listen.lower().startswith("unix://"):
                self.path = listen[7:]
                self._clean_up(self.path)
                self.port = self.reactor.listenUNIX(self.path, factory, mode=0o660)
                os.chmod(self.path, 0o660)
                where, kind = self.path, "UNIX"
            else:
                hostport = listen[6:] if listen.lower().startswith("tcp://") else listen
                host, _, port = hostport.rpartition(":")
                host = host.strip("[]")
                if host == "localhost":
                    host = "127.0.0.1"
                self.port = self.reactor.listenTCP(int(port), factory, interface=host)
                bound = self.port.getHost()
                where = (
                    f"[{bound.host}]:{bound.port}"
                    if ":" in bound.host
                    else (f"{bound.host}:{bound.port}")
                )
                kind = "TCP"
        except (OSError, ValueError, CannotListenError) as e:
            raise AdminListenError(f"Admin socket failed to listen: {e}") from None
        log.info("{kind} admin socket listening on {where}", kind=kind, where=where)

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

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.port is None:
            return None
        port, self.port = self.port, None
        return port.stopListening()
