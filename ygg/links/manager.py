"""All of a node's peering: listeners, configured peers kept connected, one-off dials.

``Links`` is a MultiService.  Each ``Listen`` URI is a listening service; each configured
peer (``Peers``, ``InterfacePeers``, and peers added through the admin API) is a
:class:`PersistentPeer` that redials with backoff; multicast and autopeering make one-off
``call``s.  The identity rule of the Go node (one link per type, local interface and
remote address, §2.3) is kept here, as are AllowedPublicKeys and the quick redial of a
dialled link that ends.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.errors import YggError
from ygg.keys import NodeKey
from ygg.links import endpoints
from ygg.links.netutil import is_link_local_unicast, tcp_addr_string
from ygg.links.protocol import (
    LinkEvents,
    LinkInfo,
    LinkProtocol,
    LinkSpec,
    VersionMismatch,
    _address_text,
)
from ygg.links.tls import Certificate, make_certificate
from ygg.links.uri import LinkURIError, PeerURI, parse_listen_uri, parse_peer_uri
from ygg.links.versions import V04, V05, versions_for
from ygg.network.router import Router
from ygg.v05.handshake import PASSWORD_MAX

log = Logger(namespace="ygg.links")

QUICK_REDIAL_DELAY = 1.0
QUICK_REDIAL_ATTEMPTS = 3
MAX_REDIAL_DELAY = 60.0
MAX_BACKOFF_EXPONENT = 32  # Go stops doubling after 2**32 s
V05_ONLY_SCHEMES = frozenset(("quic",))


class AlreadyConnected(YggError):
    """A link with this identity exists already: the dial is skipped, as Go does silently."""


def tcp_identity(local_ip: str | None, remote_ip: str, port: int, zone: str = "") -> str:
    """The remote part of a TCP/TLS link identity (Go's tcpIDFor)."""
    if local_ip is not None and _same_ip(local_ip, remote_ip):
        return tcp_addr_string(remote_ip, port, zone)
    if is_link_local_unicast(remote_ip):
        return str(ipaddress.ip_address(remote_ip.split("%")[0]))
    return tcp_addr_string(remote_ip, port, zone)


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a.split("%")[0]) == ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False


class _LinkFactory(Factory):
    """Builds the protocol for one connection whose spec is decided per connection."""

    noisy = False

    def __init__(self, links: Links, make_spec: Callable[[Any], LinkSpec]) -> None:
        self.links = links
        self.make_spec = make_spec

    def buildProtocol(self, addr: Any) -> LinkProtocol:
        return LinkProtocol(self.links, self.make_spec)


class Links(MultiService):
    def __init__(
        self,
        reactor: Any,
        router: Router,
        key: NodeKey,
        *,
        listen: tuple[str, ...] = (),
        peers: tuple[str, ...] = (),
        interface_peers: dict[str, tuple[str, ...]] | None = None,
        allowed_public_keys: tuple[str, ...] = (),
        jitter: Callable[[], float] | None = None,
        router05: Any = None,
        versions: Iterable[str] | None = None,
    ) -> None:
        """``router05``: the v0.5 router (None: v0.5 off); ``versions``: the protocol
        versions links may speak ("0.4", "0.5"; default: v0.4, and v0.5 with its router)."""
        super().__init__()
        self.reactor = reactor
        self.router = router
        self.router05 = router05
        if versions is None:
            versions = (V04,) if router05 is None else (V04, V05)
        self.versions = frozenset(versions)
        if not self.versions or (V05 in self.versions and router05 is None):
            raise ValueError(f"cannot run versions {sorted(self.versions)}")
        #: The version each dialled identity answered in when we guessed wrong: its next
        #: dials speak it at once.
        self.known_versions: dict[LinkInfo, str] = {}
        self.key = key
        self.public_key = key.public
        self.allowed_keys = _allowed_keys(allowed_public_keys)
        self._certificate: Certificate | None = None
        self.jitter = jitter or random.random
        self.links: dict[LinkInfo, LinkProtocol] = {}
        self.up: set[LinkProtocol] = set()
        #: Links up, down and failed, counted by the links themselves (for metrics).
        self.events = LinkEvents()
        self.persistent: dict[tuple[str, str], PersistentPeer] = {}
        self.listeners: list[Listener] = []
        for text in listen:
            listener = Listener(self, text)
            listener.setServiceParent(self)
            self.listeners.append(listener)
        for text in peers:
            self._add_configured(text, "")
        for interface, uris in (interface_peers or {}).items():
            for text in uris:
                self._add_configured(text, interface)

    @property
    def certificate(self) -> Certificate:
        """The node's TLS certificate, one for every link, made when the first TLS link
        needs it (Go makes it at start): a node without one never loads pyOpenSSL."""
        if self._certificate is None:
            self._certificate = make_certificate(self.key)
        return self._certificate

    def certificate_for(self, scheme: str) -> Certificate | None:
        """The certificate for a link of ``scheme``, or None when it uses no TLS."""
        return self.certificate if scheme in endpoints.TLS_SCHEMES else None

    def _add_configured(self, text: str, interface: str) -> None:
        if (text, interface) in self.persistent:
            # Go dials a repeated entry twice and the second dial finds the link up.
            log.warn(
                "Peer {uri} is configured more than once{where}; using it once",
                uri=text,
                where=f" for interface {interface}" if interface else "",
            )
            return
        try:
            self.add_peer(text, interface)
        except LinkURIError as e:
            log.error("Failed to add peer: {error}", error=str(e))

    def stopService(self) -> Any:
        stopping = super().stopService()
        for link in list(self.links.values()):
            link.close("node stopping")
        return stopping

    # -- identities -----------------------------------------------------------------------

    def register(self, link: LinkProtocol) -> bool:
        info = link.spec.info
        if info in self.links:
            return False
        self.links[info] = link
        return True

    def unregister(self, link: LinkProtocol) -> None:
        if self.links.get(link.spec.info) is link:
            del self.links[link.spec.info]

    def link_up(self, link: LinkProtocol) -> None:
        self.up.add(link)

    def link_down(self, link: LinkProtocol) -> None:
        self.up.discard(link)
        if link.spec.outbound and link.redial is not None and self.running:
            # A dialled link ended: try the same URI again shortly (as the Go node does).
            link.redial()

    def is_connected_to(self, info: LinkInfo) -> bool:
        return info in self.links

    def link_versions(self, password: str, scheme: str = "") -> frozenset[str]:
        """What a link with this ``?password=`` may speak: v0.4 has no password, so a link
        with one is v0.5 only (when v0.5 runs; a v0.4-only node ignores it, as 0.4.7 does).
        A quic link is v0.5 only too: 0.4.7 has no quic, and a quic listener cannot speak
        first (its stream exists once the dialer writes), so the dialer writes at once."""
        if scheme in V05_ONLY_SCHEMES:
            return frozenset((V05,))
        return versions_for(self.versions, password.encode())

    def check_password(self, uri: PeerURI, listen: bool = False) -> None:
        """LinkURIError (Go's text) for what this node refuses in ``uri``: a ``?password=``
        longer than v0.5 allows, or quic on a node without v0.5 (0.4.7's refusal)."""
        if V05 not in self.versions and uri.scheme in V05_ONLY_SCHEMES:
            if listen:
                raise LinkURIError(f'unrecognised scheme "{uri.scheme}"')
            raise LinkURIError(f"unknown call scheme: {uri.scheme}")
        if V05 in self.versions and len(uri.link_password.encode()) > PASSWORD_MAX:
            raise LinkURIError("invalid password supplied")

    # -- dialing --------------------------------------------------------------------------

    def dial(
        self, uri: PeerURI, interface: str = "", speak: str | None = None
    ) -> Deferred[LinkProtocol]:
        """Connect to ``uri`` and run the handshake; the Deferred fires with the link.

        ``speak``: the version to write at once (a v0.5 beacon's), instead of waiting for
        the remote's handshake.  Fails with AlreadyConnected when a link with the same
        identity exists, with DialError (text as the Go node's) when the connection cannot
        be made, and with LinkError when the handshake fails.
        """
        try:
            self.check_password(uri)
        except LinkURIError as e:
            return fail(e)
        if uri.scheme in ("tcp", "tls", "ws", "wss", "quic"):
            resolving = endpoints.resolve_address(
                self.reactor, uri, bind_interface=interface or None
            )
            return resolving.addCallback(self._dial_resolved, uri, interface, speak)
        if uri.scheme == "unix":
            info = LinkInfo("unix", interface, uri.path)
        elif uri.scheme in ("socks", "sockstls"):
            info = LinkInfo(uri.scheme, "", "/" + uri.path)
        else:
            return fail(LinkURIError(f"unknown call scheme: {uri.scheme}"))
        endpoint = endpoints.client_endpoint(
            self.reactor, uri, self.key, tls_certificate=self.certificate_for(uri.scheme)
        )
        return self._connect(uri, info, endpoint, speak)

    def _dial_resolved(
        self, address: endpoints.ResolvedAddress, uri: PeerURI, interface: str, speak: str | None
    ) -> Deferred[LinkProtocol]:
        source = None
        if interface:
            from ygg.links import interfaces

            found = interfaces.by_name(interface)
            if found is None:
                return fail(endpoints.DialError(f'interface "{interface}" not found'))
            if not found.up:
                return fail(endpoints.DialError(f'interface "{interface}" is not up'))
            source = source_address_for(interface, address.ip)
            if source is None:
                return fail(
                    endpoints.DialError(
                        f'no suitable source address found on interface "{interface}"'
                    )
                )
        remote = tcp_identity(source, address.ip, address.port, address.zone)
        info = LinkInfo(uri.scheme, interface, remote)
        endpoint = endpoints.client_endpoint(
            self.reactor,
            uri,
            self.key,
            bind_interface=interface or None,
            source_address=source,
            resolved=address,
            tls_certificate=self.certificate_for(uri.scheme),
        )
        return self._connect(uri, info, endpoint, speak)

    def _connect(
        self,
        uri: PeerURI,
        info: LinkInfo,
        endpoint: IStreamClientEndpoint,
        speak: str | None = None,
        again: bool = True,
    ) -> Deferred[LinkProtocol]:
        if self.is_connected_to(info):
            return fail(AlreadyConnected(str(info)))
        password = uri.link_password
        spec = LinkSpec(
            info,
            uri.link_name(),
            True,
            uri.priority,
            uri.pinned_keys,
            versions=self.link_versions(password, uri.scheme),
            password=password.encode(),
            speak=speak or self.known_versions.get(info),
            dial_started=self.reactor.seconds(),
        )
        connecting = endpoint.connect(_LinkFactory(self, lambda transport: spec))
        handshaking = connecting.addCallback(lambda link: link.handshake)

        def mismatch(failure: Failure) -> Any:
            # We guessed the version wrong: dial once more speaking the remote's.
            if not again or not failure.check(VersionMismatch):
                return failure
            version = failure.value.version
            self.known_versions[info] = version
            return self._connect(uri, info, endpoint, version, again=False)

        return handshaking.addErrback(mismatch)

    def call(
        self, text: str, interface: str = "", speak: str | None = None
    ) -> Deferred[LinkProtocol]:
        """One dial, not kept up: multicast-discovered peers, autopeering.  A link it makes
        is redialled a few times if it ends (Go's quick redial).  ``speak``: see dial."""
        uri = parse_peer_uri(text)
        self.check_password(uri)
        return self._call(uri, interface, QUICK_REDIAL_ATTEMPTS, speak)

    def _call(
        self, uri: PeerURI, interface: str, attempts: int, speak: str | None = None
    ) -> Deferred[LinkProtocol]:
        dialing = self.dial(uri, interface, speak)

        def up(link: LinkProtocol) -> LinkProtocol:
            link.redial = lambda: self._quick_redial(
                uri, interface, QUICK_REDIAL_ATTEMPTS, link.version
            )
            return link

        return dialing.addCallback(up)

    def _quick_redial(
        self, uri: PeerURI, interface: str, attempts: int, speak: str | None = None
    ) -> None:
        def again() -> None:
            if not self.running:
                return
            d = self._call(uri, interface, attempts - 1, speak)
            d.addErrback(failed)

        def failed(failure: Failure) -> None:
            if failure.check(AlreadyConnected):
                return
            log.debug(
                "Quick redial of {uri} failed: {error}",
                uri=uri.text,
                error=failure.getErrorMessage(),
            )
            if attempts > 1:
                self._quick_redial(uri, interface, attempts - 1, speak)

        self.reactor.callLater(QUICK_REDIAL_DELAY, again)

    # -- configured peers (admin addPeer / removePeer) --------------------------------------

    def add_peer(self, text: str, interface: str = "") -> None:
        """Keep a link to this peer up.  Raises LinkURIError with the Go text, or
        YggError("peer already configured")."""
        key = (text, interface)
        if key in self.persistent:
            raise YggError("peer already configured")
        uri = parse_peer_uri(text)
        self.check_password(uri)
        peer = PersistentPeer(self, uri, interface)
        self.persistent[key] = peer
        peer.setServiceParent(self)

    def remove_peer(self, text: str, interface: str = "") -> None:
        peer = self.persistent.pop((text, interface), None)
        if peer is None:
            raise YggError("peer not configured")
        peer.disownServiceParent()

    # -- a reload's changes -----------------------------------------------------------------

    def add_listener(self, text: str) -> None:
        """Listen on one more URI."""
        listener = Listener(self, text)
        listener.setServiceParent(self)
        self.listeners.append(listener)

    def remove_listener(self, text: str) -> Deferred[None] | None:
        """Stop listening on ``text`` (the Deferred fires once the port is closed); the
        links it accepted stay up, as Go's listeners leave theirs."""
        for listener in self.listeners:
            if listener.text == text:
                self.listeners.remove(listener)
                return listener.disownServiceParent()
        return None

    def set_allowed_public_keys(self, allowed: tuple[str, ...]) -> int:
        """Change AllowedPublicKeys: the inbound links it now refuses (their handshake
        would fail today) are closed; returns how many."""
        self.allowed_keys = _allowed_keys(allowed)
        closed = 0
        for link in list(self.links.values()):
            spec, key = link.spec, link.remote_key
            exempt = spec.local if link.version == V05 else spec.forced  # link-local
            if key is None or spec.outbound or exempt or not self.allowed_keys:
                continue
            if bytes(key) not in self.allowed_keys:
                link.close("not in AllowedPublicKeys")
                closed += 1
        return closed


def _allowed_keys(texts: Iterable[str]) -> frozenset[bytes]:
    return frozenset(bytes.fromhex(k)[:32].ljust(32, b"\0") for k in texts)


class PersistentPeer(Service):
    """One configured peer: dialled at start and redialled with backoff whenever it is down.

    The first attempt after a link ends comes a second later (the Go node's quick
    redial); failed attempts back off exponentially to a minute, or to the URI's
    ``?maxbackoff=`` (v0.5's option, at least 30 s).  A handshake that fails counts as a
    failed attempt.  An unreachable peer is logged once, then at debug level, until it
    connects again.
    """

    def __init__(self, links: Links, uri: PeerURI, interface: str) -> None:
        self.links = links
        self.uri = uri
        self.interface = interface
        self.failures = 0
        self.link: LinkProtocol | None = None
        #: Why the last dial failed or the link ended, and when (reactor seconds): 0.5's
        #: getPeers shows it for a peer that is down.
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self._dialing: Deferred[LinkProtocol] | None = None
        self._timer: Any = None

    def delay(self) -> float:
        """Seconds until the next attempt: 1, 2, 4… up to the cap (60, or ?maxbackoff=),
        plus up to a second of jitter (so that many peers do not redial in step)."""
        if self.failures == 0:
            return QUICK_REDIAL_DELAY
        # The exponent is capped as Go caps it (2.0 ** 1024 would overflow).
        backoff = QUICK_REDIAL_DELAY * 2 ** min(self.failures - 1, MAX_BACKOFF_EXPONENT)
        return min(self.max_delay, backoff) + self.links.jitter()

    @property
    def max_delay(self) -> float:
        """The longest wait between attempts: ``?maxbackoff=``, else a minute."""
        return self.uri.max_backoff or MAX_REDIAL_DELAY

    def startService(self) -> None:
        super().startService()
        self._dial()

    def stopService(self) -> None:
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._dialing is not None:
            self._dialing.cancel()
        if self.link is not None:
            self.link.close("peer removed" if self.links.running else "node stopping")

    def _schedule(self) -> None:
        if self.running:
            self._timer = self.links.reactor.callLater(self.delay(), self._dial)

    def _dial(self) -> None:
        self._timer = None
        if not self.running:
            return
        self._dialing = self.links.dial(self.uri, self.interface)
        self._dialing.addCallbacks(self._up, self._failed)

    def _up(self, link: LinkProtocol) -> None:
        self._dialing = None
        self.failures = 0
        self.link = link
        link.redial = self._down

    def _down(self) -> None:
        link, self.link = self.link, None
        self._error(getattr(link, "ended", None) or "remote side closed the connection")
        self._schedule()

    def _error(self, text: str) -> None:
        self.last_error = text
        self.last_error_time = self.links.reactor.seconds()

    def _failed(self, failure: Failure) -> None:
        self._dialing = None
        if failure.check(CancelledError) or not self.running:
            return
        if not failure.check(AlreadyConnected):
            self.failures += 1
            self._log_failure(failure)
            self._error(failure.getErrorMessage())
        self._schedule()

    def _log_failure(self, failure: Failure) -> None:
        emit = log.warn if self.failures == 1 else log.debug
        emit(
            "Failed to dial {kind} {host}: {error}{again}",
            kind=self.uri.scheme.upper(),
            host=self.uri.host_port or self.uri.path,
            error=failure.getErrorMessage(),
            again=" (retrying with backoff)" if self.failures == 1 else f" ({self.failures})",
        )


class Listener(Service):
    """One ``Listen`` URI (or a multicast listener, bound to ``interface``)."""

    def __init__(
        self,
        links: Links,
        text: str,
        interface: str = "",
        on_listening: Callable[[Listener], None] | None = None,
    ) -> None:
        self.links = links
        self.text = text
        self.interface = interface
        self.on_listening = on_listening
        self.port: Any = None
        self.uri: PeerURI | None = None

    def startService(self) -> None:
        super().startService()
        try:
            self.uri = parse_listen_uri(self.text)
            self.links.check_password(self.uri, listen=True)
        except LinkURIError as e:
            log.error(
                "Invalid listener URI {uri!r} specified, ignoring ({error})",
                uri=self.text,
                error=str(e),
            )
            return
        uri = self.uri
        endpoint = endpoints.server_endpoint(
            self.links.reactor,
            uri,
            self.links.key,
            bind_interface=self.interface or None,
            tls_certificate=self.links.certificate_for(uri.scheme),
        )
        factory = _LinkFactory(self.links, self._spec)
        endpoint.listen(factory).addCallbacks(self._listening, self._failed)

    def _listening(self, port: Any) -> None:
        self.port = port
        if not self.running:
            port.stopListening()
            return
        log.info(
            "{kind} listener started on {address}",
            kind=self.uri.scheme.upper(),
            address=self.address,
        )
        if self.on_listening is not None:
            self.on_listening(self)

    def _failed(self, failure: Failure) -> None:
        log.error(
            "Failed to start listener {uri!r}: {error}",
            uri=self.text,
            error=failure.getErrorMessage(),
        )

    @property
    def address(self) -> str:
        if self.port is None:
            return ""
        return _address_text(self.port.getHost())

    def _spec(self, transport: Any) -> LinkSpec:
        uri = self.uri
        assert uri is not None
        password = uri.link_password
        v05 = {
            "versions": self.links.link_versions(password, uri.scheme),
            "password": password.encode(),
            "local": bool(self.interface),  # multicast's listener (Go's ListenLocal)
        }
        peer = transport.getPeer()
        if uri.scheme == "unix":
            return LinkSpec(LinkInfo("unix", "", uri.text), uri.text, False, uri.priority, **v05)
        local_ip = transport.getHost().host
        remote_ip = peer.host
        forced = is_link_local_unicast(remote_ip)
        remote = tcp_identity(local_ip, remote_ip, peer.port)
        zone = self.interface if forced else ""
        name = f"{uri.scheme}://{tcp_addr_string(remote_ip, peer.port, zone)}"
        info = LinkInfo(uri.scheme, self.interface, remote)
        return LinkSpec(info, name, False, uri.priority, forced=forced, **v05)

    def stopService(self) -> Any:
        super().stopService()
        if self.port is None:
            return None
        port, self.port = self.port, None
        address = _address_text(port.getHost())
        d = port.stopListening()

        def stopped(_: Any) -> None:
            log.info(
                "{kind} listener stopped on {address}",
                kind=self.uri.scheme.upper(),
                address=address,
            )

        if isinstance(d, Deferred):
            return d.addCallback(stopped)
        stopped(None)
        return None


def source_address_for(interface: str, destination: str) -> str | None:
    """The local address to dial ``destination`` from on ``interface`` (spec §2.4): the
    first global or link-local unicast address of the same family and the same class."""
    from ygg.links import interfaces

    dest = ipaddress.ip_address(destination.split("%")[0])
    for text in interfaces.addresses(interface):
        src = ipaddress.ip_address(text.split("%")[0])
        if src.version != dest.version:
            continue
        if not (src.is_global or src.is_private or src.is_link_local) or src.is_loopback:
            continue
        if src.is_link_local != dest.is_link_local:
            continue
        return f"{src}%{interface}" if src.is_link_local else str(src)
    return None
