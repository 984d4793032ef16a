"""The admin registry over AMP (``AdminAMP.Listen``), and a client for it.

Commands
    ``Call(method, arguments)`` runs any registry method: ``method`` is its name (any
    case), ``arguments`` a JSON object, checked as the JSON socket checks them.  Besides,
    every registry method is an AMP command of its own name (``getPeers``,
    ``getNodeInfo key=…``, a plugin's), with one optional argument per declared field,
    typed by the field's kind (string: UTF-8, bool: ``True``/``False``, number: decimal).
    Both are looked up in the registry when they arrive, so methods plugins register
    later are there too.

Replies are paged
    AMP values stop at 65,535 bytes, and a DHT, a peer list or a crawl can be larger.
    Every method answers ``page`` (bytes of the Go-style JSON text of the reply), ``size``
    (the length of the whole text) and, when more follows, ``more``: a cursor for
    ``Next(cursor)``, which answers the next page the same way.  The reply is encoded
    once, when the method returns, so the pages are one consistent snapshot.  A
    connection keeps at most 16 unfinished replies, each for at most 60 s after its last
    page was asked for; older ones are dropped (``Next`` then fails).

Errors
    A method's error (and an unknown method given to ``Call``) is the AMP error
    ``ADMIN_ERROR`` whose description is the text the JSON socket would give; the client
    raises ``ygg.admin.registry.AdminError`` with it.

Limits
    128 connections, 32 from one client; a newcomer who finds them taken closes the
    longest idle one (``ygg.admin.limits``).  A connection with no command for 300 s is
    closed, and so is one sending a box of more than 1 MiB.

Client
    ``connect("tcp:host=\\:\\:1:port=9002")`` gives a Deferred ``AdminClient``; its
    methods (``get_peers()``, ``call("getNodeInfo", key=…)``…) give Deferreds of the same
    plain data the JSON socket's ``response`` holds.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from ygg import gojson
from ygg.admin.limits import Slots
from ygg.admin.listener import AdminListener
from ygg.admin.registry import AdminError, Method, Registry

log = Logger(namespace="ygg.admin")

PAGE_SIZE = 60 * 1024
MAX_CONNECTIONS = 128
MAX_PER_CLIENT = 32
IDLE_TIMEOUT = 300.0
MAX_BOX = 1 << 20
MAX_PENDING = 16
PENDING_TIMEOUT = 60.0
ERRORS = {AdminError: b"ADMIN_ERROR"}


class Number(amp.Argument):
    """A JSON number: an integer when it is written as one, else a float."""

    def fromString(self, inString: bytes) -> int | float:
        text = inString.decode("ascii")
        try:
            return int(text)
        except ValueError:
            return float(text)

    def toString(self, inObject: int | float) -> bytes:
        return repr(inObject).encode("ascii")


PAGE = [
    (b"page", amp.String()),
    (b"size", amp.Integer()),
    (b"more", amp.Unicode(optional=True)),
]


class Call(amp.Command):
    """Run a registry method by name, with JSON arguments."""

    arguments = [(b"method", amp.Unicode()), (b"arguments", amp.Unicode(optional=True))]
    response = PAGE
    errors = ERRORS


class Next(amp.Command):
    """The next page of a reply."""

    arguments = [(b"cursor", amp.Unicode())]
    response = PAGE
    errors = ERRORS


_KINDS = {"string": amp.Unicode, "bool": amp.Boolean, "number": Number}
_COMMANDS: dict[Method, type[amp.Command]] = {}


def command_for(method: Method) -> type[amp.Command]:
    """The AMP command of a registry method (the same class for the same method)."""
    command = _COMMANDS.get(method)
    if command is None:
        attributes = {
            "commandName": method.name.encode(),
            "arguments": [
                (arg.name.encode(), _KINDS.get(arg.kind, amp.Unicode)(optional=True))
                for arg in method.args
            ],
            "response": PAGE,
            "errors": ERRORS,
            "__doc__": method.description,
        }
        command = type(amp.Command)(f"AMP_{method.key}", (amp.Command,), attributes)
        _COMMANDS[method] = command
    return command


# --------------------------------------------------------------------------- server


class _Pending:
    def __init__(self, pages: list[bytes], size: int) -> None:
        self.pages = pages
        self.size = size
        self.timer: Any = None


class QuietAMP(amp.AMP):
    """AMP without its info line for every connection made and lost (anyone who can
    connect could fill the log with them)."""

    def makeConnection(self, transport: Any) -> None:
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionLost(self, reason: Failure) -> None:
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None


class AdminAMP(TimeoutMixin, QuietAMP):
    """One AMP connection to the admin registry; closed after ``IDLE_TIMEOUT`` without a
    command, and holding one of the door's ``slots`` (none in tests that make it alone)."""

    def __init__(
        self, node: Any, registry: Registry, reactor: Any, slots: Slots | None = None
    ) -> None:
        super().__init__()
        self.node = node
        self.registry = registry
        self.reactor = reactor
        self.slots = slots
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        self.calls = 0  # commands being answered
        self.unboxed = 0  # bytes received since the last complete box
        self.refused = False  # a box that is not a command closed the connection

    def callLater(self, period: float, func: Any) -> Any:  # TimeoutMixin's clock
        return self.reactor.callLater(period, func)

    # -- the connection -------------------------------------------------------------------

    def connectionMade(self) -> None:
        if self.slots is not None and not self.slots.admit(self):
            self.transport.abortConnection()
            return
        self.setTimeout(IDLE_TIMEOUT)

    def eviction_rank(self) -> int | None:
        return None if self.calls else 0

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        # AMP bounds each key and value but not how many a box has: bound the box.
        self.unboxed += len(data)
        super().dataReceived(data)
        if self.unboxed > MAX_BOX and self.transport is not None:
            self.transport.abortConnection()

    def ampBoxReceived(self, box: amp.AmpBox) -> None:
        self.unboxed = 0
        if self.refused:
            return  # the rest of a chunk that arrived with the offending box
        if amp.COMMAND not in box or amp.ANSWER in box or amp.ERROR in box:
            # We never ask, so an answer answers nothing, and a box without a command
            # means nothing: AMP would raise out of dataReceived for either (a traceback
            # in the log for every such connection).  Not our protocol: close.
            self.refused = True
            self.transport.abortConnection()
            return
        if self.slots is not None:
            self.slots.touch(self)
        self.resetTimeout()
        super().ampBoxReceived(box)

    def unhandledError(self, failure: Failure) -> None:
        # The error of a command sent without _ask (an unknown one, bad arguments, a
        # method's AdminError) has nowhere to go: AMP would log it and drop the
        # connection.  The client asked for no answer, and gets none.
        if failure.check(amp.RemoteAmpError, AdminError):
            return
        super().unhandledError(failure)

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        for cursor in list(self.pending):
            self._forget(cursor)
        if self.slots is not None:
            self.slots.release(self)
        super().connectionLost(reason)

    # -- commands ---------------------------------------------------------------------

    @Call.responder
    def _call(self, method: str, arguments: str | None = None) -> Deferred[dict[str, Any]]:
        try:
            decoded = json.loads(arguments) if arguments else {}
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            raise AdminError("Failed to unmarshal request") from None
        return self._run(method, decoded)

    @Next.responder
    def _next(self, cursor: str) -> dict[str, Any]:
        pending = self.pending.get(cursor)
        if pending is None:
            raise AdminError(f"no reply is waiting under cursor {cursor!r} (expired?)")
        page = pending.pages.pop(0)
        if not pending.pages:
            self._forget(cursor)
            return {"page": page, "size": pending.size}
        pending.timer.reset(PENDING_TIMEOUT)
        return {"page": page, "size": pending.size, "more": cursor}

    def locateResponder(self, name: bytes) -> Any:
        if not name.isascii():
            return None  # AMP's own lookup decodes the name as ASCII, and would raise
        responder = super().locateResponder(name)
        if responder is None:
            method = self.registry.lookup(name.decode(), self.node)
            if method is None:
                return None
            command = command_for(method)
            names = {amp._wireNameToPythonIdentifier(a.name.encode()): a.name for a in method.args}

            def respond(**kwargs: Any) -> Deferred[dict[str, Any]]:
                arguments = {names[k]: v for k, v in kwargs.items() if v is not None}
                return self._run(method.name, arguments)

            responder = self._wrapWithSerialization(respond, command)
        return _arguments_checked(responder)

    # -- running and paging -----------------------------------------------------------

    def _run(self, name: str, arguments: Any) -> Deferred[dict[str, Any]]:
        self.calls += 1
        d = self.registry.call(self.node, name, arguments, door="amp")
        d.addBoth(self._answered)
        d.addCallbacks(self._first_page, self._failed, errbackArgs=(name,))
        return d

    def _answered(self, result: Any) -> Any:
        self.calls -= 1
        return result

    def _failed(self, failure: Failure, name: str) -> Failure:
        if failure.check(AdminError):
            return failure
        log.failure("Admin method {name} failed", failure, name=name)
        return Failure(AdminError("Check your syntax and input types"))

    def _first_page(self, result: Any) -> dict[str, Any]:
        try:
            text = gojson.dumps(result).encode()
        except (TypeError, ValueError) as e:
            raise AdminError(f"Failed to marshal response: {e}") from None
        if len(text) <= PAGE_SIZE:
            return {"page": text, "size": len(text)}
        pages = [text[i : i + PAGE_SIZE] for i in range(PAGE_SIZE, len(text), PAGE_SIZE)]
        while len(self.pending) >= MAX_PENDING:
            self._forget(next(iter(self.pending)))
        cursor = secrets.token_urlsafe(12)
        pending = _Pending(pages, len(text))
        pending.timer = self.reactor.callLater(PENDING_TIMEOUT, self._forget, cursor)
        self.pending[cursor] = pending
        return {"page": text[:PAGE_SIZE], "size": len(text), "more": cursor}

    def _forget(self, cursor: str) -> None:
        pending = self.pending.pop(cursor, None)
        if pending is not None and pending.timer is not None and pending.timer.active():
            pending.timer.cancel()


def _arguments_checked(responder: Any) -> Any:
    """``responder`` answering arguments it cannot parse (missing, bad UTF-8, not a
    number…) with ADMIN_ERROR, as the JSON socket answers bad JSON, where AMP would log
    a traceback and close the connection."""

    def respond(box: amp.AmpBox) -> Any:
        try:
            return responder(box)  # parses the arguments, then runs the method in a Deferred
        except Exception:
            raise amp.RemoteAmpError(ERRORS[AdminError], "Failed to unmarshal request") from None

    return respond


class AdminAMPFactory(Factory):
    noisy = False

    def __init__(self, node: Any, registry: Registry, reactor: Any, slots: Slots) -> None:
        self.node = node
        self.registry = registry
        self.reactor = reactor
        self.slots = slots

    def buildProtocol(self, addr: Any) -> AdminAMP:
        protocol = AdminAMP(self.node, self.registry, self.reactor, self.slots)
        protocol.factory = self
        return protocol


class AdminAMPService(AdminListener):
    """Listens on ``AdminAMP.Listen`` (a Twisted server endpoint string); off when empty."""

    what = "AMP admin"

    def __init__(self, node: Any, registry: Registry, listen: str, reactor: Any) -> None:
        super().__init__(reactor)
        self.node = node
        self.registry = registry
        self.listen = listen

    def make_endpoint(self) -> IStreamServerEndpoint | None:
        return self.parse_endpoint(self.listen)

    def build_factory(self) -> Factory:
        self.slots = Slots(self.what, MAX_CONNECTIONS, MAX_PER_CLIENT, self.reactor)
        return AdminAMPFactory(self.node, self.registry, self.reactor, self.slots)


# --------------------------------------------------------------------------- client


class ClientAMP(QuietAMP):
    """The client's side of the connection, which tells when it has ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ended = False
        self._waiting: list[Deferred[None]] = []

    def when_lost(self) -> Deferred[None]:
        if self.ended:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.ended = True
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)


class AdminClient:
    """The admin methods of one node over one AMP connection."""

    def __init__(self, protocol: amp.AMP) -> None:
        self.protocol = protocol

    def call(self, name: str, **arguments: Any) -> Deferred[Any]:
        """Any registry method, by name; the reply's plain data, or AdminError."""
        return self.call_command(Call, method=name, arguments=json.dumps(arguments))

    def call_command(self, command: type[amp.Command], **arguments: Any) -> Deferred[Any]:
        """A method's own AMP command (``command_for(method)``), or ``Call``."""
        # AMP ends the chain of a command's Deferred with an errback that logs an error
        # nobody handled yet and drops the connection; a Deferred of our own keeps the
        # outcome for callers, whenever they look.
        outcome: Deferred[Any] = Deferred()
        d = self.protocol.callRemote(command, **arguments)
        d.addCallback(self._collect, [])
        d.addCallbacks(outcome.callback, outcome.errback)
        return outcome

    def _collect(self, box: dict[str, Any], pages: list[bytes]) -> Any:
        pages.append(box["page"])
        if box.get("more"):
            d = self.protocol.callRemote(Next, cursor=box["more"])
            return d.addCallback(self._collect, pages)
        text = b"".join(pages)
        if len(text) != box["size"]:
            raise AdminError(f"reply cut short: {len(text)} of {box['size']} bytes")
        return json.loads(text)

    def list(self) -> Deferred[Any]:
        return self.call("list")

    def get_self(self) -> Deferred[Any]:
        return self.call("getSelf")

    def get_peers(self) -> Deferred[Any]:
        return self.call("getPeers")

    def get_dht(self) -> Deferred[Any]:
        return self.call("getDHT")

    def get_tree(self) -> Deferred[Any]:
        return self.call("getTree")

    def get_paths(self) -> Deferred[Any]:
        return self.call("getPaths")

    def get_sessions(self) -> Deferred[Any]:
        return self.call("getSessions")

    def get_tun(self) -> Deferred[Any]:
        return self.call("getTUN")

    def get_multicast_interfaces(self) -> Deferred[Any]:
        return self.call("getMulticastInterfaces")

    def add_peer(self, uri: str, interface: str = "") -> Deferred[Any]:
        return self.call("addPeer", uri=uri, interface=interface)

    def remove_peer(self, uri: str, interface: str = "") -> Deferred[Any]:
        return self.call("removePeer", uri=uri, interface=interface)

    def get_node_info(self, key: str) -> Deferred[Any]:
        return self.call("getNodeInfo", key=key)

    def debug_remote_get_self(self, key: str) -> Deferred[Any]:
        return self.call("debug_remoteGetSelf", key=key)

    def debug_remote_get_peers(self, key: str) -> Deferred[Any]:
        return self.call("debug_remoteGetPeers", key=key)

    def debug_remote_get_dht(self, key: str) -> Deferred[Any]:
        return self.call("debug_remoteGetDHT", key=key)

    def debug_remote_get_tree(self, key: str) -> Deferred[Any]:
        return self.call("debug_remoteGetTree", key=key)

    def close(self) -> Deferred[None]:
        """Close the connection; fires once it is closed."""
        lost = self.protocol.when_lost() if isinstance(self.protocol, ClientAMP) else succeed(None)
        if self.protocol.transport is not None:
            self.protocol.transport.loseConnection()
        return lost


def connect(endpoint: str | IStreamClientEndpoint, reactor: Any = None) -> Deferred[AdminClient]:
    """Connect to an AMP admin door: a Twisted client endpoint string
    (``tcp:host=\\:\\:1:port=9002``, ``unix:path=/run/ygg/amp.sock``) or an endpoint."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    if isinstance(endpoint, str):
        endpoint = clientFromString(reactor, endpoint)
    factory = Factory.forProtocol(ClientAMP)
    factory.noisy = False  # connectProtocol's factory logs "Starting factory" at info
    return endpoint.connect(factory).addCallback(AdminClient)
