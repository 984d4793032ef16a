"""One peering connection: the 38-byte handshake, then ironwood frames to and from the router.

A :class:`LinkProtocol` is built for every stream (tcp, tls, unix, socks; inbound or
outbound).  It sends its meta at once, reads the peer's within 6 seconds, applies the Go
node's checks, and then becomes the router's ``LinkIO`` for that peer: frames read are
handed to the router's ``Peer``, frames the router writes are length-prefixed onto the
transport.  The transport's producer signals pause and resume the peer's traffic queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ygg import address as addr
from ygg.errors import DecodeError
from ygg.links.handshake import (
    META_SIZE,
    HandshakeError,
    check_remote_key,
    decode_meta,
    encode_meta,
)
from ygg.network.peers import LinkError, LinkStats, Peer
from ygg.network.wire import FrameError, FrameReader, frame_header

if TYPE_CHECKING:
    from ygg.links.manager import Links

log = Logger(namespace="ygg.links")

HANDSHAKE_TIMEOUT = 6.0


@dataclass(frozen=True)
class LinkInfo:
    """A link's identity (spec §2.3): at most one link (up or being set up) per identity."""

    link_type: str  # "tcp", "tls", "unix", "socks"
    local: str  # source interface, or ""
    remote: str


@dataclass
class LinkSpec:
    """What a connection is, decided before its protocol exists."""

    info: LinkInfo
    name: str  # getPeers "remote"
    outbound: bool
    priority: int = 0
    pinned: frozenset[bytes] = frozenset()
    forced: bool = False  # inbound from a link-local address: AllowedPublicKeys does not apply


@implementer(IPushProducer)
class LinkProtocol(Protocol):
    def __init__(self, links: Links, make_spec: Callable[[Any], LinkSpec]) -> None:
        self.links = links
        self._make_spec = make_spec
        self.spec: LinkSpec = None  # type: ignore[assignment]  # decided in connectionMade
        self.peer: Peer | None = None
        #: Called when this dialled link ends, to dial again (None: nobody wants that).
        self.redial: Callable[[], None] | None = None
        self.remote_key: bytes | None = None
        self.bytes_recvd = 0
        self.bytes_sent = 0
        self.started = links.reactor.seconds()
        self.local = ""
        self.closing: str | None = None
        self._buffer = b""
        self._reader = FrameReader()
        self._timer: Any = None
        self._registered = False
        #: Fires with this protocol when the handshake passed, fails when it did not.
        self.handshake: Deferred[LinkProtocol] = Deferred()

    # -- connection -----------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.local = _address_text(self.transport.getHost())
        self.spec = self._make_spec(self.transport)
        if not self.links.register(self):
            # Already connected (or connecting) with this identity: close without a word.
            self.closing = "duplicate"
            self.transport.abortConnection()
            return
        self._registered = True
        self.transport.registerProducer(self, True)
        meta = encode_meta(self.links.public_key)
        self.transport.write(meta)
        self.bytes_sent += len(meta)
        self._timer = self.links.reactor.callLater(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        self._timer = None
        self._fail("read handshake: i/o timeout")

    def dataReceived(self, data: bytes) -> None:
        self.bytes_recvd += len(data)
        if self.peer is None:
            if self.closing is not None:
                return
            self._buffer += data
            if len(self._buffer) < META_SIZE:
                return
            data, self._buffer = self._buffer[META_SIZE:], self._buffer[:META_SIZE]
            if not self._handshake(self._buffer):
                return
            self._buffer = b""
            if not data:
                return
        peer = self.peer
        try:
            for body in self._reader.feed(data):
                peer.handle_body(body)  # type: ignore[union-attr]
        except FrameError as e:
            try:
                for body in e.bodies:  # what came before the bad length, as Go would
                    peer.handle_body(body)  # type: ignore[union-attr]
            except (LinkError, DecodeError) as inner:
                e = inner  # type: ignore[assignment]
            self.close(str(e))
        except (LinkError, DecodeError) as e:
            self.close(str(e))

    def _handshake(self, meta: bytes) -> bool:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        spec = self.spec
        try:
            key = decode_meta(meta)
            check_remote_key(
                key,
                pinned=spec.pinned,
                allowed=self.links.allowed_keys,
                inbound=not spec.outbound,
                forced=spec.forced,
            )
        except HandshakeError as e:
            if e.remote_version is not None:
                log.debug(
                    "{what}: {name} is incompatible version (local 0.4, remote {major}.{minor})",
                    what="Failed to connect" if spec.outbound else "Rejected incoming connection",
                    name=spec.name,
                    major=e.remote_version[0],
                    minor=e.remote_version[1],
                )
            self._fail(str(e))
            return False
        except DecodeError as e:
            self._fail(str(e))
            return False
        self.remote_key = key
        try:
            self.peer = self.links.router.add_peer(key, self, spec.priority)
        except ValueError as e:  # our own key, or the node is stopping
            self._fail(str(e))
            return False
        log.info(
            "Connected {direction} {kind}: {remote}, source {local}",
            direction=self.direction,
            kind=spec.info.link_type.upper(),
            remote=self.remote_text,
            local=self.local,
        )
        self.links.link_up(self)
        self.handshake.callback(self)
        return True

    def _fail(self, reason: str) -> None:
        # A failed dial is reported by whoever dialled (once, however often it retries).
        if self.closing is None and not self.spec.outbound:
            log.info(
                "Link handler {name} error ({remote}): {reason}",
                name=self.spec.name,
                remote=_address_text(self.transport.getPeer()),
                reason=reason,
            )
        self.closing = reason
        self._handshake_failed(reason)
        self.transport.abortConnection()

    def _handshake_failed(self, reason: str) -> None:
        # Only a dial waits on the handshake; an inbound failure is just logged.
        if self.spec is not None and self.spec.outbound and not self.handshake.called:
            self.handshake.errback(Failure(LinkError(reason)))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._registered:
            self.links.unregister(self)
        if self.peer is not None:
            self.links.router.remove_peer(self.peer)
            error = self.closing
            if error is None and not reason.check(ConnectionDone):
                error = reason.getErrorMessage()
            log.info(
                "Disconnected {direction} {kind}: {remote}, source {local}{error}",
                direction=self.direction,
                kind=self.spec.info.link_type.upper(),
                remote=self.remote_text,
                local=self.local,
                error=f"; error: {error}" if error else "",
            )
            self.links.link_down(self)
        else:
            self._handshake_failed(self.closing or "read handshake: EOF")

    # -- the router's LinkIO ---------------------------------------------------------------

    def write_body(self, body: bytes) -> None:
        self.transport.writeSequence((frame_header(body), body))
        self.bytes_sent += 2 + len(body)

    def close(self, reason: str) -> None:
        """Close the link (the router or a decode error asks); logged once, on disconnect."""
        if self.closing is None:
            self.closing = reason
            self.transport.abortConnection()

    # -- IPushProducer: the transport tells us when its buffer is full or drained --------

    def pauseProducing(self) -> None:
        if self.peer is not None:
            self.peer.pause()

    def resumeProducing(self) -> None:
        if self.peer is not None:
            self.peer.resume()

    def stopProducing(self) -> None:
        pass

    # -- for getPeers and logs -------------------------------------------------------------

    @property
    def direction(self) -> str:
        return "outbound" if self.spec.outbound else "inbound"

    @property
    def remote_text(self) -> str:
        key = self.remote_key
        ip = addr.format_address(addr.address_for_key(key)) if key else "?"
        return f"{ip}@{self.spec.info.remote}"

    def uptime(self) -> float:
        return self.links.reactor.seconds() - self.started

    def stats(self) -> LinkStats:
        spec = self.spec
        return LinkStats(
            remote=spec.name,
            inbound=not spec.outbound,
            uptime=self.uptime(),
            bytes_recvd=self.bytes_recvd,
            bytes_sent=self.bytes_sent,
        )


def _address_text(address: Any) -> str:
    """Go's net.Addr String(): ``1.2.3.4:5``, ``[::1]:5``, a unix path, or ``@``."""
    host = getattr(address, "host", None)
    if host is not None:
        scope = ""
        if ":" in host:
            if "%" not in host and getattr(address, "scopeID", 0):
                scope = f"%{address.scopeID}"
            return f"[{host}{scope}]:{address.port}"
        return f"{host}:{address.port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return name or "@"
