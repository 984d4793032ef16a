"""Helpers shared by the real-socket link tests (this module holds no tests).

Real-reactor tests use ``twisted.trial.unittest.TestCase`` and return Deferreds: run under
pytest (``-p no:twisted``), trial's ``TestCase.run`` still spins the global reactor until
the Deferred fires, enforces ``timeout`` and fails a test that leaves the reactor dirty
(open sockets, pending calls).  So each test closes what it opened and waits for it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.trial import unittest


class Recorder(Protocol):
    """Records what arrives; Deferreds for connect, for N bytes, and for the close
    (``lost`` fires with the ``connectionLost`` reason's exception)."""

    def __init__(self) -> None:
        self.data = b""
        self.made: Deferred[Recorder] = Deferred()
        self.lost: Deferred[BaseException] = Deferred()
        self._waiting: list[tuple[int, Deferred[bytes]]] = []

    def connectionMade(self) -> None:
        self.made.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        ready = [(n, d) for n, d in self._waiting if len(self.data) >= n]
        self._waiting = [(n, d) for n, d in self._waiting if len(self.data) < n]
        for n, d in ready:
            d.callback(self.data[:n])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        for _, d in self._waiting:
            d.errback(reason)
        self._waiting = []
        self.lost.callback(reason.value)

    def wait_bytes(self, count: int) -> Deferred[bytes]:
        if len(self.data) >= count:
            d: Deferred[bytes] = Deferred()
            d.callback(self.data[:count])
            return d
        d = Deferred()
        self._waiting.append((count, d))
        return d


class Echo(Recorder):
    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self.transport.write(data)


class Collecting(Factory):
    """Builds ``protocol`` instances and keeps them, with a Deferred for the first."""

    def __init__(self, protocol: type[Recorder] = Recorder) -> None:
        self.protocol = protocol
        self.built: list[Recorder] = []
        self.first: Deferred[Recorder] = Deferred()

    def buildProtocol(self, addr: Any) -> Recorder:
        proto = self.protocol()
        proto.factory = self
        self.built.append(proto)
        if len(self.built) == 1:
            proto.made.addCallback(lambda p: (self.first.callback(p), p)[1])
        return proto


def close_all(*protocols: Recorder) -> Deferred[Any]:
    """Close every connection and wait until each side has seen it end."""
    for proto in protocols:
        if proto.transport is not None and not proto.lost.called:
            proto.transport.loseConnection()
    return DeferredList([p.lost for p in protocols], consumeErrors=True)


class RealReactorTestCase(unittest.TestCase):
    timeout = 10

    def sleep(self, seconds: float) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        call = reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
        d.addCallback(lambda _: None)
        self.addCleanup(lambda: call.active() and call.cancel())
        return d
