"""Popura's autopeering: while the node has no Internet peer, keep one public peer connected.

Every ``CHECK_PERIOD`` (10 s) the service looks at the links that are up.  When none of
them is an Internet peer (``is_internet_peer``) and none has been for ``GRACE`` (30 s),
it measures the latency to every peer of its list — a bare TCP connect to the URI's
host:port as Popura does, at most ``PROBE_CONCURRENCY`` at a time, ``PROBE_TIMEOUT``
(3 s) each — picks one of the ``CLOSEST`` (10) peers with least latency at random, and
dials it once with ``INode.call_peer``.  The peer is not added to the configured peers:
when it goes away the same rule picks a new one 30–40 s later.

Where this differs from Popura 0.4.6 (spec popura §1), on purpose:

* **What counts as an Internet peer.**  Any link that is up whose remote host is not a
  link-local address (fe80::/10, 169.254.0.0/16), whatever the scheme and direction.
  Popura tests the name for the prefix ``tls://[fe80`` — the multicast links; ours also
  leaves out a static ``tcp://[fe80::…%eth0]`` LAN peer.  Configured ``Peers`` count
  once they are connected, like any other link, and not before; loopback, LAN IPv4,
  inbound, unix and SOCKS links count, as in Popura.
* **A grace period at start.**  Popura's first check fires at once, so a node with
  configured Peers whose dials are still in flight gets an extra autopeer.  Here a node
  with configured peers waits the same 30 s grace at start as after losing its peers; a
  node without any (nothing else could connect it) autopeers at once.
* **The grace is measured from the first check that found no Internet peer**, and is
  reached at the fourth such check (30 s later, with ``_SLACK`` for late timers), so a
  lost peer is replaced 30–40 s after it went, never sooner.
* **Random really is random** among the 10 fastest (the documented intent); ``Pick:
  "fastest"`` keeps the binary's behaviour of always taking the fastest, including
  retrying it forever when its handshake fails.  In random mode a peer whose dial failed
  sits out the picks for ``FAILED_HOLD`` (unless every peer that answered has failed).
* **One autopeer at a time.**  No new pick while a measurement or a dial is under way;
  the peers of the node's own configured list are never autopeered.
* **Name resolution is not timed** (``TCPProbe``): only the connect to the address the
  node would dial.  Popura's Go resolver runs every lookup at once; Twisted's queues them
  for a few threads, and timing that queue would rank peers by their place in the list.
* **Bad list entries are skipped with one warning** (Popura panics at start); a
  ``PeersFile`` that cannot be read is a configuration error naming the key.
* **Failures are logged once**: the first failed attempt of an outage as a warning, the
  next ones at debug level until a peer is connected again.  Every choice is logged with
  its latency.

The admin method ``getAutopeer`` shows the state, the current choice and its latency,
and the last round of measurements.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import (
    Deferred,
    DeferredSemaphore,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.interfaces import ConfigError, INode, Method
from ygg.popura.autopeer import AutopeeringConfig

log = Logger(namespace="ygg.autopeer")

CHECK_PERIOD = 10.0
GRACE = 30.0
PROBE_TIMEOUT = 3.0
PROBE_CONCURRENCY = 32
CLOSEST = 10
FAILED_HOLD = 600.0
#: Real timers fire a little late; the grace counts whole check periods despite that.
_SLACK = 0.5


# -- the list -----------------------------------------------------------------------------


#: A list entry's version tag: the protocol the peer serves (contrib/compile-peers.py).
VERSION_TAGS = {"v0.4": "0.4", "v0.5": "0.5"}


@dataclass(frozen=True)
class Candidate:
    """One peer of the list: the URI dialled (query included), the host:port probed and
    the protocol version the list tags it with ("0.4", "0.5"; None when untagged)."""

    uri: str
    host: str
    port: int
    version: str | None = None

    @property
    def name(self) -> str:
        """The ``remote`` a link dialled to this URI shows in getPeers."""
        return link_name(self.uri)


def link_name(uri: str) -> str:
    return uri.split("?", 1)[0].rstrip("/")


def parse_candidate(uri: str, version: str | None = None) -> Candidate | None:
    """A tcp:// or tls:// URI with a host and a port; None for anything else."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        return None
    return Candidate(uri, parts.hostname, port, version)


def parse_entry(line: str) -> Candidate | None:
    """One line of a list: a URI, optionally followed by its version tag (``v0.4`` or
    ``v0.5``); None for anything else."""
    match line.split():
        case [uri]:
            return parse_candidate(uri)
        case [uri, tag] if tag in VERSION_TAGS:
            return parse_candidate(uri, VERSION_TAGS[tag])
    return None


def parse_peer_list(lines: Iterable[str]) -> tuple[list[Candidate], list[str]]:
    """The candidates of a list, each URI once (its first line), in order, and the lines
    that are not peers.

    Blank lines and lines starting with ``#`` are skipped.
    """
    candidates: list[Candidate] = []
    rejected: list[str] = []
    seen_lines: set[str] = set()
    seen_uris: set[str] = set()
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or line in seen_lines:
            continue
        seen_lines.add(line)
        candidate = parse_entry(line)
        if candidate is None:
            rejected.append(line)
        elif candidate.uri not in seen_uris:
            seen_uris.add(candidate.uri)
            candidates.append(candidate)
    return candidates, rejected


def read_peer_list(config: AutopeeringConfig, builtin: Path | None) -> tuple[list[str], str]:
    """The lines of the list to use and where they came from.

    ``Peers`` and ``PeersFile`` (both, when both are given) replace the built-in list.
    """
    if not config.peers and not config.peers_file:
        if builtin is None:
            return [], "no list"
        return builtin.read_text(encoding="utf-8").splitlines(), "the built-in list"
    lines = list(config.peers)
    sources = ["Autopeering.Peers"] if config.peers else []
    if config.peers_file:
        try:
            text = Path(config.peers_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise ConfigError(
                "Autopeering.PeersFile", f"cannot read {config.peers_file}: {reason}"
            ) from None
        lines += text.splitlines()
        sources.append(config.peers_file)
    return lines, " and ".join(sources)


# -- peers that count -----------------------------------------------------------------------


def _remote_host(remote: str) -> str:
    _, sep, rest = remote.partition("://")
    if not sep:
        return ""
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    return rest.split("/", 1)[0].rsplit(":", 1)[0]


def is_internet_peer(remote: str) -> bool:
    """Whether a link (by its getPeers ``remote``) counts as a way into the network.

    Everything but links to link-local addresses: multicast peers, and static LAN peers
    given by a link-local address.
    """
    try:
        ip = ipaddress.ip_address(_remote_host(remote).split("%", 1)[0])
    except ValueError:
        return True
    return not ip.is_link_local


# -- measuring and choosing -------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    candidate: Candidate
    #: Seconds from the dial to the connection; None: it did not answer.
    latency: float | None
    error: str = ""


Measure = Callable[[list[Candidate]], "Deferred[list[Measurement]]"]


class _Probe(Protocol):
    def connectionMade(self) -> None:
        self.transport.loseConnection()


class _ProbeFactory(Factory):
    noisy = False
    protocol = _Probe


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class TCPProbe:
    """Measures latency as Popura does — one TCP connect to host:port, closed at once; no
    TLS, no handshake; ``timeout`` for the whole — but times the connect alone.

    A name is resolved first, untimed, to the address the node would dial (its first IPv4
    address, else its first): resolutions queue for the resolver's threads, and timing
    them would favour the peers that happen to come first in the list.
    """

    def __init__(
        self,
        reactor: Any,
        timeout: float = PROBE_TIMEOUT,
        concurrency: int = PROBE_CONCURRENCY,
        *,
        resolve: Callable[[str], Deferred[str]],
        endpoint: Callable[[str, int], Any] | None = None,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.concurrency = concurrency
        self._resolve_name = resolve
        self.endpoint = endpoint or self._endpoint

    def resolve(self, host: str) -> Deferred[str]:
        """The address a dial to ``host`` goes to (the node's choice), untimed."""
        return succeed(host) if _is_ip(host) else self._resolve_name(host)

    def _endpoint(self, ip: str, port: int) -> Any:
        kind = TCP6ClientEndpoint if ":" in ip else TCP4ClientEndpoint
        return kind(self.reactor, ip, port, timeout=self.timeout)

    def __call__(self, candidates: list[Candidate]) -> Deferred[list[Measurement]]:
        limit = DeferredSemaphore(self.concurrency)
        return gatherResults([limit.run(self._one, c) for c in candidates])

    def _one(self, candidate: Candidate) -> Deferred[Measurement]:
        def connect(ip: str) -> Deferred[float]:
            started = self.reactor.seconds()
            connecting = self.endpoint(ip, candidate.port).connect(_ProbeFactory())
            return connecting.addCallback(lambda _: max(self.reactor.seconds() - started, 0.0))

        probing = maybeDeferred(self.resolve, candidate.host).addCallback(connect)
        probing.addTimeout(self.timeout, self.reactor)

        def failed(failure: Failure) -> Measurement:
            if failure.check(ConnectTimeout, defer.TimeoutError):
                return Measurement(candidate, None, "timed out")
            return Measurement(candidate, None, failure.getErrorMessage())

        return probing.addCallbacks(lambda latency: Measurement(candidate, latency), failed)


def choose(
    measurements: Iterable[Measurement],
    pick: str,
    rng: random.Random,
    held: frozenset[str] = frozenset(),
) -> tuple[Measurement, int] | None:
    """The peer to dial and how many answered; None when none answered.

    "random": one of the ``CLOSEST`` that answered fastest, left out those ``held`` (URIs
    that failed lately) unless that leaves none.  "fastest": the fastest, always.
    """
    online = sorted((m for m in measurements if m.latency is not None), key=lambda m: m.latency)
    if not online:
        return None
    if pick == "fastest":
        return online[0], len(online)
    eligible = [m for m in online if m.candidate.uri not in held] or online
    return rng.choice(eligible[:CLOSEST]), len(online)


# -- the service ----------------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class AutopeerService(Service):
    """Keeps one autopeer connected while the node has no other Internet peer."""

    def __init__(
        self,
        node: INode,
        config: AutopeeringConfig,
        *,
        builtin: Path | None = None,
        measure: Measure | None = None,
        dial: Callable[[str], Deferred[Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.clock = node.reactor
        lines, self.source = read_peer_list(config, builtin)
        self.candidates, self.rejected = parse_peer_list(lines)
        self.measure: Measure = measure or TCPProbe(self.clock, resolve=node.resolve_dial_address)
        self.dial = dial or node.call_peer
        self.rng = rng or random.Random()
        self.state = "stopped"
        self.chosen: Measurement | None = None
        self.chosen_at: float | None = None
        self.measurements: list[Measurement] = []
        self.measured_at: float | None = None
        self.last_error = ""
        self.failed: dict[str, float] = {}
        self._no_peers_since: float | None = None
        self._measuring: Deferred[Any] | None = None
        self._dialing: Deferred[Any] | None = None
        self._failing = False
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock

    # -- lifecycle --------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.node.register_admin_method(
            Method(
                "getAutopeer",
                "Show the autopeering choice, its latency and the last measurements",
                lambda node, args: self.describe(),
                table="measurements",
            )
        )
        for line in self.rejected:
            log.warn("Autopeering: not a tcp:// or tls:// peer, skipped: {line}", line=line)
        if not self.candidates:
            log.error("Autopeering: no peers to choose from in {source}", source=self.source)
            self.state = "no peers"
            return
        log.info(
            "Autopeering: started with {count} peers from {source}, pick {pick}",
            count=len(self.candidates),
            source=self.source,
            pick=self.config.pick,
        )
        now = self.clock.seconds()
        # Configured peers get the grace period to come up; otherwise nothing else can.
        self._no_peers_since = now if self.node.configured_peers() else now - GRACE
        self.state = "waiting"
        self._loop.start(CHECK_PERIOD, now=True).addErrback(
            lambda failure: log.failure("Autopeering: the check failed; stopped", failure)
        )

    def stopService(self) -> Any:
        stopped = super().stopService()
        if self._loop.running:
            self._loop.stop()
        if self._measuring is not None:
            self._measuring.cancel()
        self.state = "stopped"
        return stopped

    # -- the check ------------------------------------------------------------------------

    def check(self) -> None:
        now = self.clock.seconds()
        internet = [p for p in self.node.peers() if is_internet_peer(p.remote)]
        if internet:
            self._no_peers_since = None
            self._failing = False
            if self._dialing is None and self._measuring is None:
                chosen = self.chosen.candidate.name if self.chosen else None
                connected = any(p.remote == chosen for p in internet)
                self.state = "connected" if connected else "online"
            return
        if self._no_peers_since is None:
            self._no_peers_since = now
        if self._measuring is not None or self._dialing is not None:
            return  # one autopeer at a time
        if now - self._no_peers_since + _SLACK < GRACE:
            self.state = "waiting"
            return
        self._no_peers_since = now  # the next attempt is a whole grace period away
        self._autopeer()

    def _autopeer(self) -> None:
        configured = {link_name(uri) for uri, _ in self.node.configured_peers()}
        candidates = [c for c in self.candidates if c.name not in configured]
        self.state = "measuring"
        measuring = maybeDeferred(self.measure, candidates)
        self._measuring = measuring
        measuring.addBoth(self._measure_done)
        measuring.addCallbacks(self._measured, self._measure_failed)

    def _measure_done(self, result: Any) -> Any:
        self._measuring = None
        return result

    def _measure_failed(self, failure: Failure) -> None:
        if self.running:
            log.failure("Autopeering: measuring failed", failure)
            self.state = "waiting"

    def _measured(self, measurements: list[Measurement]) -> None:
        if not self.running:
            return
        now = self.clock.seconds()
        self.measurements = measurements
        self.measured_at = now
        for uri, when in list(self.failed.items()):
            if now - when >= FAILED_HOLD:
                del self.failed[uri]
        if any(is_internet_peer(p.remote) for p in self.node.peers()):
            self.state = "online"  # one came up while measuring: nothing to do
            self._no_peers_since = None
            return
        held = frozenset(self.failed) if self.config.pick == "random" else frozenset()
        picked = choose(measurements, self.config.pick, self.rng, held)
        if picked is None:
            self.state = "waiting"
            self._report(f"none of the {len(measurements)} peers answered")
            return
        choice, online = picked
        self.chosen, self.chosen_at = choice, now
        log.info(
            "Autopeering: chose {uri} ({latency:.1f} ms; {online} of {count} peers answered, "
            "pick {pick})",
            uri=choice.candidate.uri,
            latency=(choice.latency or 0.0) * 1000,
            online=online,
            count=len(measurements),
            pick=self.config.pick,
        )
        self.state = "dialing"
        try:
            dialing = self.dial(choice.candidate.uri)
        except Exception as e:  # a URI the node cannot dial: leave it out from now on
            self.candidates = [c for c in self.candidates if c != choice.candidate]
            self.state = "waiting"
            self._report(f"{choice.candidate.uri}: {e}; removed from the list")
            return
        self._dialing = dialing
        dialing.addBoth(self._dial_done)
        dialing.addCallbacks(self._connected, self._dial_failed, (choice,), None, (choice,))

    def _dial_done(self, result: Any) -> Any:
        self._dialing = None
        return result

    def _connected(self, _: Any, choice: Measurement) -> None:
        self.failed.pop(choice.candidate.uri, None)
        if not self.running:
            return
        self.state = "connected"
        self.last_error = ""
        self._failing = False
        self._no_peers_since = None  # a peer was there: the grace starts when it is seen gone
        log.info("Autopeering: connected to {uri}", uri=choice.candidate.uri)

    def _dial_failed(self, failure: Failure, choice: Measurement) -> None:
        self.failed[choice.candidate.uri] = self.clock.seconds()
        if not self.running:
            return
        self.state = "waiting"
        self._report(f"{choice.candidate.uri}: {failure.getErrorMessage()}")

    def _report(self, error: str) -> None:
        """Warn about the first failure of an outage; the next ones go to debug."""
        self.last_error = error
        if self._failing:
            log.debug("Autopeering: failed again: {error}", error=error)
            return
        self._failing = True
        log.warn(
            "Autopeering: no peer connected: {error} (retrying every {grace:.0f} s; "
            "further failures are logged at debug level)",
            error=error,
            grace=GRACE,
        )

    # -- admin ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What getAutopeer answers."""
        now = self.clock.seconds()
        online = sorted(
            (m for m in self.measurements if m.latency is not None), key=lambda m: m.latency
        )
        offline = [m for m in self.measurements if m.latency is None]
        chosen = self.chosen
        return {
            "state": self.state,
            "pick": self.config.pick,
            "source": self.source,
            "list_size": len(self.candidates),
            "uri": chosen.candidate.uri if chosen else "",
            "latency_ms": _ms(chosen.latency) if chosen else None,
            "chosen_ago": None if self.chosen_at is None else round(now - self.chosen_at, 3),
            "measured_ago": None if self.measured_at is None else round(now - self.measured_at, 3),
            "answered": len(online),
            "last_error": self.last_error,
            "measurements": [
                {"uri": m.candidate.uri, "latency_ms": _ms(m.latency), "error": m.error}
                for m in online + offline
            ],
        }
