"""A service that listens on a Twisted server endpoint string, for the AMP and SSH doors.

The node does not run without an admin door it was told to open (as with AdminListen):
a bad endpoint string, or a listen that fails at once (a port in use), raises
``AdminListenError`` from ``startService``, which the node turns into an error and exit 1.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.admin.json_socket import AdminListenError

log = Logger(namespace="ygg.admin")


def describe(port: IListeningPort) -> str:
    address = port.getHost()
    host = getattr(address, "host", None)
    if host is None:
        return str(getattr(address, "name", address))
    return f"[{host}]:{address.port}" if ":" in host else f"{host}:{address.port}"


class Connections:
    """The connections a door has open: at most ``limit`` at once, all closed on stop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[Any, list[Deferred[None]]] = {}

    def add(self, protocol: Any) -> bool:
        """Count a new connection; False (close it) when there are too many."""
        if len(self.open) >= self.limit:
            return False
        self.open[protocol] = []
        return True

    def remove(self, protocol: Any) -> None:
        for waiter in self.open.pop(protocol, ()):
            waiter.callback(None)

    def close_all(self) -> Deferred[Any]:
        """Close them all; fires once all are gone."""
        waiters = []
        for protocol, waiting in list(self.open.items()):
            waiter: Deferred[None] = Deferred()
            waiting.append(waiter)
            waiters.append(waiter)
            if protocol.transport is not None:
                protocol.transport.loseConnection()
        return DeferredList(waiters)


class EndpointListener(Service):
    #: Names the door in log lines and errors, e.g. "AMP admin".
    what = "admin"

    def __init__(self, listen: str, reactor: Any) -> None:
        self.listen = listen
        self.reactor = reactor
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None
        self._failure: Failure | None = None
        self._waiters: list[Deferred[IListeningPort]] = []
        self._starting = False
        self.connections: Connections | None = None

    def build_factory(self) -> Factory:
        """The factory to listen with; it counts its connections in ``self.connections``."""
        raise NotImplementedError

    def startService(self) -> None:
        super().startService()
        if not self.listen:
            return
        try:
            endpoint = serverFromString(self.reactor, self.listen)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise AdminListenError(
                f"{self.what} failed to listen: bad endpoint {self.listen!r}: {e}"
            ) from None
        self._failure = None
        self._starting = True
        self._listening = endpoint.listen(self.build_factory())
        self._listening.addCallbacks(self._listened, self._failed)
        self._starting = False
        if self._failure is not None:
            self.running = False
            raise AdminListenError(
                f"{self.what} failed to listen: {self._failure.getErrorMessage()}"
            )

    def _listened(self, port: IListeningPort) -> None:
        self._listening = None
        self.port = port
        log.info("{what} listening on {where}", what=self.what, where=describe(port))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(port)

    def _failed(self, failure: Failure) -> None:
        self._listening = None
        self._failure = failure
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)
        if self._starting or failure.check(CancelledError):
            return  # startService raises it; or stopService cancelled it
        log.error(
            "{what} failed to listen on {listen}: {error}",
            what=self.what,
            listen=self.listen,
            error=failure.getErrorMessage(),
        )

    def when_listening(self) -> Deferred[IListeningPort]:
        """Fires with the listening port once there is one (tests ask it the port)."""
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred[IListeningPort] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[Any] | None:
        """Stop listening and close the open connections; fires when both are done."""
        super().stopService()
        if self._listening is not None:
            listening, self._listening = self._listening, None
            listening.cancel()
        waits = []
        if self.port is not None:
            port, self.port = self.port, None
            waits.append(port.stopListening())
        if self.connections is not None:
            waits.append(self.connections.close_all())
        if not waits:
            return None
        return DeferredList([d for d in waits if d is not None]).addCallback(lambda _: None)
