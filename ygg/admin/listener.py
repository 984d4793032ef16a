"""The admin doors' listening service: Twisted's ``StreamServerEndpointService``, as the
node needs it.

- The endpoint and the factory are made when the service starts, not when the node is
  built, and a door that cannot open (a bad endpoint string, a port in use, a bad host
  key) raises ``AdminListenError`` from ``startService``, which the node turns into one
  error line and exit 1, as yggdrasil does for its admin socket.  That is also why the
  listening waits for ``startService`` rather than ``privilegedStartService``: the node
  catches the error only there.
- The door logs one line of its own once it listens (``UNIX admin socket listening on …``,
  ``AMP admin listening on …``); the port's "<Factory> starting on …" line goes to debug.
- Stopping closes the door's open connections too, and fires when they are gone.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.python import log as legacy_log
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg.admin.limits import Slots
from ygg.errors import YggError

log = Logger(namespace="ygg.admin")


class AdminListenError(YggError):
    """An admin door cannot open; the text is the node's one line about it."""


def describe(port: IListeningPort) -> str:
    """Where a port listens: ``host:port``, ``[v6]:port`` or a unix socket's path."""
    address = port.getHost()
    host = getattr(address, "host", None)
    if host is None:
        return str(getattr(address, "name", address))
    return f"[{host}]:{address.port}" if ":" in host else f"{host}:{address.port}"


@implementer(IStreamServerEndpoint)
class _Reporting:
    """An endpoint that tells its door how listening went."""

    def __init__(self, endpoint: IStreamServerEndpoint, door: AdminListener) -> None:
        self.endpoint = endpoint
        self.door = door

    def listen(self, factory: Any) -> Deferred[IListeningPort]:
        # Twisted's ports log "<Factory> starting on …" through the legacy log at info;
        # the door's own line says it better, so theirs goes to debug.
        listening = legacy_log.callWithContext(
            {"log_level": LogLevel.debug}, self.endpoint.listen, factory
        )
        return listening.addCallbacks(self.door._listened, self.door._failed)


class AdminListener(StreamServerEndpointService):
    """A door: listens on ``make_endpoint()`` with ``build_factory()``'s connections,
    counted in ``self.slots``."""

    #: Names the door in its log lines and errors, e.g. "AMP admin".
    what = "admin"

    def __init__(self, reactor: Any) -> None:
        super().__init__(None, None)
        self.reactor = reactor
        self.port: IListeningPort | None = None
        self.slots: Slots | None = None
        self._starting = False
        self._waiters: list[Deferred[IListeningPort]] = []

    # -- what a door provides ------------------------------------------------------------

    def make_endpoint(self) -> IStreamServerEndpoint | None:
        """The endpoint to listen on, None for a door that is off; may raise
        AdminListenError."""
        raise NotImplementedError

    def build_factory(self) -> Factory:
        """The factory of the door's connections; may raise AdminListenError."""
        raise NotImplementedError

    def parse_endpoint(self, description: str) -> IStreamServerEndpoint | None:
        """A server endpoint string as an endpoint; None when empty (the door is off)."""
        if not description:
            return None
        try:
            return serverFromString(self.reactor, description)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise AdminListenError(
                self.listen_error(f"bad endpoint {description!r}: {e}")
            ) from None

    def announce(self, port: IListeningPort) -> None:
        log.info("{what} listening on {where}", what=self.what, where=describe(port))

    def listen_error(self, text: str) -> str:
        return f"{self.what} failed to listen: {text}"

    # -- IService --------------------------------------------------------------------------

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)  # listening waits for startService

    def startService(self) -> None:
        Service.startService(self)
        try:
            endpoint = self.make_endpoint()
            if endpoint is None:
                return
            self.factory = self.build_factory()
        except AdminListenError:
            self.running = False
            raise
        self.endpoint = _Reporting(endpoint, self)
        self._raiseSynchronously = True  # as strports.service sets it: fail here, at once
        self._starting = True
        try:
            StreamServerEndpointService.privilegedStartService(self)
        except Exception as e:  # CannotListenError, OSError… whatever the endpoint raised
            self.running = False
            raise AdminListenError(self.listen_error(str(e))) from None
        finally:
            self._starting = False

    def stopService(self) -> Deferred[None] | None:
        """Stop listening and close the door's connections; fires when both are done."""
        if self.endpoint is None:
            Service.stopService(self)
            return None
        stopping = [super().stopService()]
        if self.slots is not None:
            stopping.append(self.slots.close_all())
        self.port = None
        return DeferredList(stopping).addCallback(lambda _: None)

    # -- the port --------------------------------------------------------------------------

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self.announce(port)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(port)
        return port

    def _failed(self, failure: Failure) -> Failure | None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)
        if self._starting:
            return failure  # startService raises it
        if not failure.check(CancelledError):
            log.error(
                "{error}", error=self.listen_error(failure.getErrorMessage() or repr(failure))
            )
        return None

    def when_listening(self) -> Deferred[IListeningPort]:
        """Fires with the listening port once there is one (tests ask it the port)."""
        if self.port is not None:
            return succeed(self.port)
        waiter: Deferred[IListeningPort] = Deferred()
        self._waiters.append(waiter)
        return waiter
