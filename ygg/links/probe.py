"""Handshake probes: how long a peer takes to answer one protocol version's handshake.

A probe dials a peer URI as a link does (:func:`ygg.links.endpoints.client_endpoint`: tcp,
tls with its TLS handshake, unix, socks, ws, quic), writes our handshake of the version
asked at once, reads the remote's and checks it as a link would (the v0.5 signature and
``?password=``, the ``?key=`` pins), then closes.  It joins no router and sends nothing
else.  Writing first matters: a ygg listener running both versions answers in the version
the dialer speaks, and both Go versions write theirs at once whatever we send.

The time runs from the dial (after resolving a host name, which is not timed: lookups
queue for the resolver's threads, and timing the queue would rank peers by their place in
a list) to the last byte of the remote's handshake.  Failures are
:class:`ygg.errors.ProbeError` (public in ``ygg.interfaces``), whose ``kind`` tells a
peer that refuses the version from one that is merely down.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from ygg.errors import DecodeError, ProbeError, YggError
from ygg.keys import NodeKey
from ygg.links import endpoints
from ygg.links.handshake import META_SIZE, HandshakeError, check_remote_key, decode_meta
from ygg.links.handshake import encode_meta as encode_meta04
from ygg.links.tls import Certificate
from ygg.links.uri import PeerURI
from ygg.links.versions import V04, V05
from ygg.v05 import handshake as handshake05

#: Schemes whose host is resolved before the dial (untimed), as Links.dial does.
_RESOLVED = frozenset(("tcp", "tls", "ws", "wss", "quic"))
_V05_ONLY = frozenset(("quic",))


def probe_handshake(
    reactor: Any,
    uri: PeerURI,
    version: str,
    key: NodeKey,
    *,
    timeout: float,
    certificate: Certificate | None = None,
) -> Deferred[float]:
    """Seconds from the dial to the remote's whole handshake of ``version``; see the
    module's text.  Cancelling the Deferred closes whatever the probe opened."""
    if version not in (V04, V05):
        raise ValueError(f"a protocol version is 0.4 or 0.5, not {version!r}")
    if version == V04 and (uri.link_password or uri.scheme in _V05_ONLY):
        what = "a ?password=" if uri.link_password else uri.scheme
        return fail(ProbeError(ProbeError.VERSION, f"v0.4 has no {what}: the link is v0.5"))
    return _Probe(reactor, uri, version, key, timeout, certificate).result


class _Probe:
    """One probe: resolve, dial, write ours, read theirs, close."""

    def __init__(
        self,
        reactor: Any,
        uri: PeerURI,
        version: str,
        key: NodeKey,
        timeout: float,
        certificate: Certificate | None,
    ) -> None:
        self.reactor = reactor
        self.uri = uri
        self.version = version
        self.key = key
        self.timeout = timeout
        self.certificate = certificate
        self.result: Deferred[float] = Deferred(self._cancelled)
        self.started: float | None = None
        self._done = False
        self._protocol: _ProbeProtocol | None = None
        self._pending: Deferred[Any] | None = None
        self._timer = reactor.callLater(timeout, self._expired)
        if uri.scheme in _RESOLVED:
            self._pending = endpoints.resolve_address(reactor, uri)
            self._pending.addCallbacks(self._dial, self._unreachable)
        else:
            self._dial(None)

    # -- dialling -----------------------------------------------------------------------

    def _dial(self, address: endpoints.ResolvedAddress | None) -> None:
        self._pending = None
        if self._done:
            return
        try:
            endpoint = endpoints.client_endpoint(
                self.reactor, self.uri, self.key, resolved=address, tls_certificate=self.certificate
            )
        except YggError as e:  # a scheme this node cannot dial
            self._finish(Failure(ProbeError(ProbeError.UNREACHABLE, str(e))))
            return
        self.started = self.reactor.seconds()
        connecting = endpoint.connect(Factory.forProtocol(lambda: _ProbeProtocol(self)))
        self._pending = connecting
        connecting.addCallbacks(self._connected, self._unreachable)

    def _connected(self, _: Any) -> None:
        self._pending = None

    def _unreachable(self, failure: Failure) -> None:
        self._pending = None
        if not self._done:
            self._finish(Failure(ProbeError(ProbeError.UNREACHABLE, failure.getErrorMessage())))

    # -- the handshakes -------------------------------------------------------------------

    def write_ours(self, protocol: _ProbeProtocol) -> None:
        self._protocol = protocol
        if self._done:  # timed out or cancelled as the stream came up
            protocol.transport.abortConnection()
            return
        if self.version == V04:
            meta = encode_meta04(self.key.public)
        else:
            password = self.uri.link_password.encode()
            meta = handshake05.encode_meta(self.key, self.uri.priority, password)
        protocol.transport.write(meta)

    def read_theirs(self, buffer: bytes) -> None:
        """The remote's bytes so far; finishes once they hold its whole handshake."""
        if self._done:
            return
        try:
            remote = self._check(buffer)
        except ProbeError as e:
            self._finish(Failure(e))
            return
        if remote is not None:
            assert self.started is not None
            self._finish(max(self.reactor.seconds() - self.started, 0.0))

    def _check(self, buffer: bytes) -> bytes | None:
        """The remote's key once its handshake is whole and good; None while it is not
        whole; ProbeError for one that is bad."""
        sniff = handshake05.HEADER_SIZE
        try:
            sniffed = handshake05.sniff_version(buffer[:sniff])
            if sniffed is None:
                return None
            theirs = V04 if sniffed == (0, 4) else V05
            if theirs != self.version:
                raise ProbeError(
                    ProbeError.VERSION, f"remote speaks v{theirs}, not v{self.version}"
                )
            if theirs == V04:
                if len(buffer) < META_SIZE:
                    return None
                remote = decode_meta(buffer[:META_SIZE])
            else:
                need = sniff + handshake05.body_length(buffer)
                if len(buffer) < need:
                    return None
                meta = handshake05.decode_meta(buffer[:need])
                remote = handshake05.check_meta(meta, self.uri.link_password.encode())
        except (HandshakeError, handshake05.HandshakeError) as e:
            version_text = e.remote_version is not None or str(e) == handshake05.ERR_LENGTH
            kind = ProbeError.VERSION if version_text else ProbeError.HANDSHAKE
            raise ProbeError(kind, str(e)) from None
        except DecodeError as e:
            raise ProbeError(ProbeError.HANDSHAKE, str(e)) from None
        try:
            check_remote_key(
                remote, pinned=self.uri.pinned_keys, allowed=(), inbound=False, forced=False
            )
        except HandshakeError as e:
            raise ProbeError(ProbeError.KEY, str(e)) from None
        if remote == self.key.public:
            raise ProbeError(ProbeError.KEY, "the remote is this node")
        return remote

    def lost(self) -> None:
        if not self._done:
            text = "remote closed the connection before its handshake"
            self._finish(Failure(ProbeError(ProbeError.HANDSHAKE, text)))

    # -- the end --------------------------------------------------------------------------

    def _expired(self) -> None:
        text = f"no v{self.version} handshake within {self.timeout:g} s"
        self._finish(Failure(ProbeError(ProbeError.TIMEOUT, text)))

    def _cancelled(self, _: Deferred[float]) -> None:
        self._done = True  # the Deferred fails with CancelledError
        self._stop()

    def _finish(self, outcome: float | Failure) -> None:
        self._done = True
        self._stop()
        self.result.callback(outcome)  # a Failure errbacks

    def _stop(self) -> None:
        if self._timer.active():
            self._timer.cancel()
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.connected:
            # A close, not a reset: a v0.5 remote reads our handshake to the end first.
            protocol.transport.loseConnection()


class _ProbeProtocol(Protocol):
    """Frames nothing: hands the bytes of the stream to its probe."""

    def __init__(self, probe: _Probe) -> None:
        self.probe = probe
        self.buffer = b""

    def connectionMade(self) -> None:
        self.probe.write_ours(self)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self.probe.read_theirs(self.buffer)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.probe.lost()
