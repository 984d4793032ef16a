"""One peering connection: the version handshake, then frames to and from that version's router.

A :class:`LinkProtocol` is built for every stream (tcp, tls, unix, socks; inbound or
outbound).  It settles which protocol the link speaks (:mod:`ygg.links.versions`): v0.4's
38-byte metadata (:mod:`ygg.links.handshake`) or v0.5's signed one
(:mod:`ygg.v05.handshake`), reads the peer's within 6 seconds, applies the Go node's checks,
and then becomes the ``LinkIO`` of that version's router for that peer: frames read are
handed to the router's ``Peer``, frames the router writes are length-prefixed (u16 in v0.4,
a uvarint in v0.5) onto the transport.  The transport's producer signals pause and resume
the peer's traffic queue.  Keepalives and read deadlines are the routers' own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
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
from ygg.links.versions import LISTEN_WAIT, V04, V05, dial_wait
from ygg.network.peers import LinkError, LinkStats
from ygg.network.wire import FrameError, FrameReader, frame_header
from ygg.v05 import handshake as handshake05
from ygg.v05.network import wire as wire05

if TYPE_CHECKING:
    from ygg.links.manager import Links

log = Logger(namespace="ygg.links")

HANDSHAKE_TIMEOUT = 6.0
RATE_INTERVAL = 1.0  # the byte rates getPeers shows are those of the last whole second
_SNIFF_SIZE = handshake05.HEADER_SIZE  # 6: "meta" and two bytes that tell the versions apart


class LinkEvents:
    """Links that came up, went down and failed before they were up, by a reason from a
    short fixed list (error texts can hold keys and addresses): what the metrics show.

    ``up``: (version, inbound); ``down``: (version, inbound, reason); ``failed``: (version
    or "" when not yet known, inbound, reason).
    """

    __slots__ = ("down", "failed", "up")

    def __init__(self) -> None:
        self.up: Counter[tuple[str, bool]] = Counter()
        self.down: Counter[tuple[str, bool, str]] = Counter()
        self.failed: Counter[tuple[str, bool, str]] = Counter()


#: Why the node closed a link that was up, by the text its closer gave; anything else
#: the node closes a link for is the peer breaking the protocol ("protocol").
_CLOSED_BY = {
    "node stopping": "stopping",
    "peer removed": "removed",
    "no frame for 6 seconds": "timeout",  # v0.4's read deadline
    "read: i/o timeout": "timeout",  # v0.5's
    "not in AllowedPublicKeys": "key",  # AllowedPublicKeys changed while it was up
}


def _refusal(error: Exception) -> str:
    """Why a handshake check failed, as one of a few words."""
    if getattr(error, "remote_version", None) is not None:
        return "version"
    if isinstance(error, HandshakeError):  # v0.4's handshake checks, and both versions' keys
        return "key"
    if str(error) in (handshake05.ERR_PASSWORD, handshake05.ERR_PASSWORD_INVALID):
        return "password"
    return "malformed"


class VersionMismatch(LinkError):
    """We wrote one version's handshake first and the remote speaks the other: the dial is
    made again in ``version``."""

    def __init__(self, version: str) -> None:
        super().__init__(f"remote speaks v{version}")
        self.version = version


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
    #: The versions this link may speak; empty: every version the node runs.
    versions: frozenset[str] = frozenset()
    password: bytes = b""  # v0.5's link password (?password=, multicast Password)
    #: v0.5 "local" listener (multicast's): AllowedPublicKeys does not apply.
    local: bool = False
    #: Write this version's handshake at once instead of waiting for the remote's (a
    #: remembered version, a v0.5 beacon).
    speak: str | None = None
    #: When the dial started (reactor seconds): the connect time sets how long to wait.
    dial_started: float | None = None


@implementer(IPushProducer)
class LinkProtocol(Protocol):
    def __init__(self, links: Links, make_spec: Callable[[Any], LinkSpec]) -> None:
        self.links = links
        self._make_spec = make_spec
        self.spec: LinkSpec = None  # type: ignore[assignment]  # decided in connectionMade
        self.peer: Any = None  # the router's Peer of this link's version, once up
        #: Called when this dialled link ends, to dial again (None: nobody wants that).
        self.redial: Callable[[], None] | None = None
        self.remote_key: bytes | None = None
        self.bytes_recvd = 0
        self.bytes_sent = 0
        # Frames, counted where each is touched anyway (an integer add, no more).
        self.packets_recvd = 0
        self.packets_sent = 0
        self.started = links.reactor.seconds()
        self.local = ""
        self.closing: str | None = None
        #: Why the node closed the link once it was up, as metrics count it.
        self._closed_as: str | None = None
        #: Why the link ended once it was up (0.5's last_error): the error, or that the
        #: remote closed it.
        self.ended: str | None = None
        #: The protocol version of this link ("0.4", "0.5"), once known.
        self.version: str | None = None
        self._versions: frozenset[str] = frozenset()
        self._sent: str | None = None  # the version of the handshake we wrote
        self._need = META_SIZE  # handshake bytes to read (known once the version is)
        self._buffer = b""
        self._reader: Any = None
        self._header: Callable[[bytes], bytes] = frame_header
        self._router: Any = None
        self._timer: Any = None
        self._wait: Any = None
        self._registered = False
        # Byte counts at the last rate sample, and the rates measured then.
        self._rate_sampler: LoopingCall | None = None
        self._sampled = (0, 0)
        self._rates = (0, 0)
        #: Fires with this protocol when the handshake passed, fails when it did not.
        self.handshake: Deferred[LinkProtocol] = Deferred()

    # -- connection -----------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.local = _address_text(self.transport.getHost())
        self.spec = spec = self._make_spec(self.transport)
        if not self.links.register(self):
            # Already connected (or connecting) with this identity: close without a word.
            self.links.events.failed[("", not spec.outbound, "duplicate")] += 1
            self.closing = "duplicate"
            self.transport.abortConnection()
            return
        self._registered = True
        self.transport.registerProducer(self, True)
        self._versions = versions = spec.versions or self.links.versions
        reactor = self.links.reactor
        if len(versions) == 1:
            # One version: exactly that version's Go node, which writes at once.
            self.version = next(iter(versions))
            self._need = META_SIZE if self.version == V04 else _SNIFF_SIZE
            self._write_meta(self.version)
        elif spec.speak in versions:
            self._write_meta(spec.speak)  # type: ignore[arg-type]
        elif spec.outbound:
            started = spec.dial_started
            took = reactor.seconds() - started if started is not None else 0.0
            self._wait = reactor.callLater(dial_wait(took), self._dialer_speaks)
        else:
            # A listener running both versions waits for the dialer's first bytes.
            self._wait = reactor.callLater(LISTEN_WAIT, self._listener_speaks)
        self._timer = reactor.callLater(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def _dialer_speaks(self) -> None:
        # Nothing came: the listener waits for us (a ygg one); v0.5 it is, unless what it
        # then says shows otherwise (see _mismatch).
        self._wait = None
        if self._sent is None and self.closing is None:
            self._write_meta(V05)

    def _listener_speaks(self) -> None:
        # No dialer of either Go version waits this long (both write at once), nor does a
        # ygg one: whatever waits is taken for a v0.4 client, answered as 0.4.7 would.
        self._wait = None
        if self._sent is None and self.closing is None:
            self.version = V04
            self._need = META_SIZE
            self._write_meta(V04)
            # From here on a 0.4.7 listener: 6 s to read theirs after writing ours.
            if self._timer is not None and self._timer.active():
                self._timer.reset(HANDSHAKE_TIMEOUT)

    def _write_meta(self, version: str) -> None:
        self._sent = version
        if version == V04:
            meta = encode_meta(self.links.public_key)
        else:
            spec = self.spec
            meta = handshake05.encode_meta(self.links.key, spec.priority, spec.password)
        self.transport.write(meta)
        self.bytes_sent += len(meta)

    def _handshake_timeout(self) -> None:
        self._timer = None
        self._fail("read handshake: i/o timeout", "timeout")

    def dataReceived(self, data: bytes) -> None:
        self.bytes_recvd += len(data)
        if self.peer is None:
            if self.closing is not None:
                return
            self._buffer += data
            if not self._read_handshake():
                return
            data, self._buffer = self._buffer, b""
            if not data:
                return
        peer = self.peer
        frames = 0
        try:
            for body in self._reader.feed(data):
                frames += 1
                peer.handle_body(body)
        except (FrameError, wire05.FrameError) as e:
            try:
                for body in e.bodies:  # what came before the bad length, as Go would
                    frames += 1
                    peer.handle_body(body)
            except (LinkError, DecodeError) as inner:
                e = inner  # type: ignore[assignment]
            self._close(str(e), "protocol")
        except (LinkError, DecodeError) as e:  # v0.5's LinkError is a DecodeError
            self._close(str(e), "protocol")
        finally:
            self.packets_recvd += frames

    def _read_handshake(self) -> bool:
        """Whether the link is up; the bytes after the handshake are left in the buffer."""
        if self.version is None or (self.version == V05 and self._need == _SNIFF_SIZE):
            if len(self._buffer) < _SNIFF_SIZE:
                return False
            try:
                if self.version is None:
                    self._choose(handshake05.sniff_version(self._buffer[:_SNIFF_SIZE]))
                if self.version == V05:
                    self._need = _SNIFF_SIZE + handshake05.body_length(self._buffer)
            except DecodeError as e:
                self._fail(str(e), "malformed")
                return False
            if self.version is None:  # closed for a redial
                return False
        if len(self._buffer) < self._need:
            return False
        meta, self._buffer = self._buffer[: self._need], self._buffer[self._need :]
        if self.version == V04:
            return self._handshake04(meta)
        return self._handshake05(meta)

    def _choose(self, sniffed: tuple[int, int] | None) -> None:
        version = V04 if sniffed == (0, 4) else V05
        if self._sent is not None and self._sent != version:
            self._mismatch(version)
            return
        self.version = version
        self._need = META_SIZE if version == V04 else _SNIFF_SIZE
        if self._wait is not None and self._wait.active():
            self._wait.cancel()
        self._wait = None
        if self._sent is None:
            self._write_meta(version)

    def _mismatch(self, version: str) -> None:
        """We spoke first in the other version (a slow Go 0.4.7 listener, a peer that
        changed version): drop this stream and let the dialer try again in ``version``."""
        log.debug(
            "Link {name}: remote speaks v{version}, we wrote v{sent}; dialing again",
            name=self.spec.name,
            version=version,
            sent=self._sent,
        )
        # Free the identity now, so the new dial is not taken for a duplicate.
        if self._registered:
            self._registered = False
            self.links.unregister(self)
        self.links.events.failed[(self._sent or "", not self.spec.outbound, "redial")] += 1
        self.closing = f"remote speaks v{version}"
        if self.spec.outbound and not self.handshake.called:
            self.handshake.errback(Failure(VersionMismatch(version)))
        self._cancel_timers()
        self.transport.abortConnection()

    def _handshake04(self, meta: bytes) -> bool:
        self._cancel_timers()
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
            self._fail(str(e), _refusal(e))
            return False
        except DecodeError as e:
            self._fail(str(e), "malformed")
            return False
        return self._up(key, self.links.router, spec.priority, FrameReader(), frame_header)

    def _handshake05(self, data: bytes) -> bool:
        self._cancel_timers()
        spec = self.spec
        try:
            meta = handshake05.decode_meta(data)
            key = handshake05.check_meta(meta, spec.password)
            check_remote_key(
                key,
                pinned=spec.pinned,
                allowed=self.links.allowed_keys,
                inbound=not spec.outbound,
                forced=spec.local,
            )
        except DecodeError as e:
            self._fail(str(e), _refusal(e))
            return False
        router = self.links.router05
        if router is None:  # cannot happen: v0.5 is spoken only when its router runs
            self._fail("v0.5 is not enabled", "version")
            return False
        # Go links with the higher of the two sides' priorities (spec-v05 §2.3 check 12).
        priority = max(spec.priority, meta.priority)
        return self._up(key, router, priority, wire05.FrameReader(), _uvarint_header)

    def _up(
        self,
        key: bytes,
        router: Any,
        priority: int,
        reader: Any,
        header: Callable[[bytes], bytes],
    ) -> bool:
        self.remote_key = key
        self._reader = reader
        self._header = header
        self._router = router
        try:
            self.peer = router.add_peer(key, self, priority)
        except ValueError as e:  # our own key, or the node is stopping
            self._fail(str(e), "refused")
            return False
        spec = self.spec
        log.info(
            "Connected {direction} {kind}: {remote}, source {local}",
            direction=self.direction,
            kind=spec.info.link_type.upper(),
            remote=self.remote_text,
            local=self.local,
        )
        self.links.events.up[(self.version or "", not spec.outbound)] += 1
        self.links.link_up(self)
        self._sampled = (self.bytes_recvd, self.bytes_sent)
        self._rate_sampler = sampler = LoopingCall(self._sample_rates)
        sampler.clock = self.links.reactor
        sampler.start(RATE_INTERVAL, now=False)
        self.handshake.callback(self)
        return True

    def _sample_rates(self) -> None:
        # As Go's links do once a second: the bytes since the last sample are the rates.
        now = (self.bytes_recvd, self.bytes_sent)
        self._rates = (now[0] - self._sampled[0], now[1] - self._sampled[1])
        self._sampled = now

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._wait):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._wait = None

    def _fail(self, reason: str, kind: str) -> None:
        """The handshake failed: ``reason`` is the Go node's text, ``kind`` the metrics'."""
        if self.closing is None:
            self.links.events.failed[(self.version or "", not self.spec.outbound, kind)] += 1
        # A failed dial is reported by whoever dialled (once, however often it retries).
        if self.closing is None and not self.spec.outbound:
            log.info(
                "Link handler {name} error ({remote}): {reason}",
                name=self.spec.name,
                remote=_address_text(self.transport.getPeer()),
                reason=reason,
            )
        self.closing = reason
        self._cancel_timers()
        self._handshake_failed(reason)
        if self.version == V05:
            # A close, not a reset: the peer then reads our handshake before the end of
            # the stream and fails with its own check's text, as two Go nodes do.
            self.transport.loseConnection()
        else:
            self.transport.abortConnection()

    def _handshake_failed(self, reason: str) -> None:
        # Only a dial waits on the handshake; an inbound failure is just logged.
        if self.spec is not None and self.spec.outbound and not self.handshake.called:
            self.handshake.errback(Failure(LinkError(reason)))

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._cancel_timers()
        if self._rate_sampler is not None and self._rate_sampler.running:
            self._rate_sampler.stop()
        self._rates = (0, 0)
        if self._registered:
            self.links.unregister(self)
        if self.peer is not None:
            self._router.remove_peer(self.peer)
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
            self.ended = error or "remote side closed the connection"
            if self._closed_as is not None:
                why = self._closed_as
            else:
                why = "error" if error else "closed"  # the stream broke, or the remote closed
            self.links.events.down[(self.version or "", not self.spec.outbound, why)] += 1
            self.links.link_down(self)
        else:
            # Counted here when the stream ended first ("closed") or the node closed it
            # (stopping, the peer removed); a failed check was counted by _fail.
            why = "closed" if self.closing is None else self._closed_as
            if why is not None and self.spec is not None:
                self.links.events.failed[(self.version or "", not self.spec.outbound, why)] += 1
            self._handshake_failed(self.closing or "read handshake: EOF")

    # -- the router's LinkIO ---------------------------------------------------------------

    def write_body(self, body: bytes) -> None:
        header = self._header(body)
        self.transport.writeSequence((header, body))
        self.bytes_sent += len(header) + len(body)
        self.packets_sent += 1

    def close(self, reason: str) -> None:
        """Close the link (the router or the link manager asks); logged once, on disconnect."""
        self._close(reason, _CLOSED_BY.get(reason, "protocol"))

    def _close(self, reason: str, kind: str) -> None:
        if self.closing is None:
            self.closing = reason
            self._closed_as = kind
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
            rate_recvd=self._rates[0],
            rate_sent=self._rates[1],
            packets_recvd=self.packets_recvd,
            packets_sent=self.packets_sent,
        )


def _uvarint_header(body: bytes) -> bytes:
    """v0.5's frame length: a uvarint (spec-v05 §3.1)."""
    return wire05.put_uvarint(len(body))


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
