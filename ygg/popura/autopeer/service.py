"""Popura's autopeering: keep one public peer connected per protocol version the node runs.

The node may run v0.4, v0.5 or both (``INode.versions()``), and each is a network of its
own: a link speaks one of them.  Autopeering keeps one Internet peer *of each running
version*: a v0.5 node chooses among v0.5 peers, a v0.4 node among v0.4 peers, a node
running both keeps one of each.  Per version, every ``CHECK_PERIOD`` (10 s) the service
looks at the links that are up.  When none of them is an Internet peer of that version
(``is_internet_peer`` and ``PeerSummary.version``) and none has been for ``GRACE``
(30 s), it measures every peer of its list that may serve that version —
``INode.probe_peer``: the time from the dial to the remote's whole handshake of that
version, at most ``PROBE_CONCURRENCY`` at a time, ``PROBE_TIMEOUT`` (5 s) each — picks
one of the ``CLOSEST`` (10) fastest at random, and dials it once with
``INode.call_peer(uri, version=…)``.  The peer is not added to the configured peers:
when it goes away the same rule picks a new one 30–40 s later.

Which peers serve which version: a list entry may carry its version (``tls://h:1 v0.5``;
the built-in lists tag every entry).  A tagged entry is a candidate for its version only;
an untagged one for every version the node runs, and the probe tells: a peer answering
in the other version (or refusing ours) fails the probe with ``ProbeError.VERSION``.

**Quarantine.**  A peer that refuses the version (the probe's ``version``, ``key`` or
``handshake`` failures: it speaks another version, is not the key the URI pins, is not a
Yggdrasil node of that version) or whose link drops within ``SETTLE`` (10 s) of
connecting (or comes up in the other version) is left out of that version's probes and
picks for ``QUARANTINE`` (10 min), doubled each time it happens again, up to
``QUARANTINE_MAX`` (6 h).  It is logged once per window, not once per try.  A peer that
merely does not answer (timeout, connection refused) is not quarantined: it is measured
again next time and simply not chosen while it is down.

Where this differs from Popura 0.4.6 (spec popura §1), on purpose:

* **What counts as an Internet peer.**  Any link that is up whose remote host is not a
  link-local address (fe80::/10, 169.254.0.0/16), whatever the scheme and direction.
  Popura tests the name for the prefix ``tls://[fe80`` — the multicast links; ours also
  leaves out a static ``tcp://[fe80::…%eth0]`` LAN peer.  Configured ``Peers`` count
  once they are connected, like any other link, and not before; loopback, LAN IPv4,
  inbound, unix and SOCKS links count, as in Popura.
* **The handshake is timed, not a TCP connect**: a peer that accepts TCP but refuses our
  version (the 2022 list's hosts all run 0.5 now) would otherwise win the measurement
  and fail the dial forever.
* **A grace period at start.**  Popura's first check fires at once, so a node with
  configured Peers whose dials are still in flight gets an extra autopeer.  Here a node
  with configured peers waits the same 30 s grace at start as after losing its peers; a
  node without any (nothing else could connect it) autopeers at once.
* **The grace is measured from the first check that found no Internet peer**, and is
  reached at the fourth such check (30 s later, with ``_SLACK`` for late timers), so a
  lost peer is replaced 30–40 s after it went, never sooner.
* **Random really is random** among the 10 fastest (the documented intent); ``Pick:
  "fastest"`` keeps the binary's behaviour of always taking the fastest, including
  retrying it forever when its dial fails.  In random mode a peer whose dial failed
  sits out the picks for ``FAILED_HOLD`` (unless every peer that answered has failed).
  Quarantine holds in both modes.
* **One autopeer at a time** per version: no new pick while a measurement or a dial is
  under way; the peers of the node's own configured list are never autopeered.
* **Bad list entries are skipped with one warning** (Popura panics at start); a
  ``PeersFile`` that cannot be read is a configuration error naming the key.
* **Failures are logged once**: the first failed attempt of an outage as a warning, the
  next ones at debug level until a peer is connected again.  Every choice is logged with
  its latency.

The admin method ``getAutopeer`` shows each version's state, its current choice and its
latency, the quarantined peers, and the last round of measurements.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.interfaces import ConfigError, INode, Method, ProbeError
from ygg.popura.autopeer import AutopeeringConfig
from ygg.popura.autopeer.metrics import AutopeerCollector

log = Logger(namespace="ygg.autopeer")

CHECK_PERIOD = 10.0
GRACE = 30.0
PROBE_TIMEOUT = 5.0
PROBE_CONCURRENCY = 32
CLOSEST = 10
FAILED_HOLD = 600.0
#: A peer's first quarantine, doubled for each next one, up to QUARANTINE_MAX.
QUARANTINE = 600.0
QUARANTINE_MAX = 6 * 3600.0
#: An autopeer must still be up, in the version it was chosen for, this long after
#: its dial succeeded; else it is quarantined.
SETTLE = 10.0
#: Probe failures that mean the peer refuses us (rather than being down).
REFUSALS = frozenset((ProbeError.VERSION, ProbeError.KEY, ProbeError.HANDSHAKE))
#: Real timers fire a little late; the grace counts whole check periods despite that.
_SLACK = 0.5


# -- the list -----------------------------------------------------------------------------


#: A list entry's version tag: the protocol the peer serves (contrib/compile-peers.py).
VERSION_TAGS = {"v0.4": "0.4", "v0.5": "0.5"}


@dataclass(frozen=True)
class Candidate:
    """One peer of the list: the URI dialled (query included), its host and port, and
    the protocol version the list tags it with ("0.4", "0.5"; None: untagged, a
    candidate for every version, which the probe tells)."""

    uri: str
    host: str
    port: int
    version: str | None = None

    @property
    def name(self) -> str:
        """The ``remote`` a link dialled to this URI shows in getPeers."""
        return link_name(self.uri)

    def serves(self, version: str) -> bool:
        return self.version is None or self.version == version


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


def read_peer_list(config: AutopeeringConfig) -> tuple[list[str], str]:
    """The lines of the user's list (``Peers`` and ``PeersFile``, both when both are
    given) and where they came from; no lines when neither is set."""
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


def load_candidates(
    config: AutopeeringConfig, builtin: Mapping[str, Path], versions: Iterable[str]
) -> tuple[list[Candidate], list[str], str]:
    """The candidates, the rejected lines and where they came from.

    ``Peers`` and ``PeersFile`` replace the built-in lists.  Of those (``builtin``: one
    list per version) the lists of the running ``versions`` are read, each on its own,
    so a host on both lists is a candidate for both versions.
    """
    if config.peers or config.peers_file:
        lines, source = read_peer_list(config)
        candidates, rejected = parse_peer_list(lines)
        return candidates, rejected, source
    candidates, rejected, names = [], [], []
    for version in versions:
        path = builtin.get(version)
        if path is None:
            continue
        found, bad = parse_peer_list(path.read_text(encoding="utf-8").splitlines())
        candidates += [replace(c, version=c.version or version) for c in found]
        rejected += bad
        names.append(f"v{version}: {path.name}")
    if not names:
        return [], [], "no list"
    return candidates, rejected, f"the built-in list ({', '.join(names)})"


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


def speaks(peer: Any, version: str) -> bool:
    """Whether a ``PeerSummary`` is a link of ``version`` (a node that does not say the
    version of its links, ``""``, is taken at its word for every version)."""
    return getattr(peer, "version", "") in (version, "")


# -- measuring and choosing -------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    candidate: Candidate
    #: Seconds from the dial to the remote's handshake; None: it did not give one.
    latency: float | None
    error: str = ""
    #: The ProbeError kind of a failed probe ("version", "timeout"…), else "".
    kind: str = ""

    @property
    def refused(self) -> bool:
        """The peer refuses us, rather than being down: it goes into quarantine."""
        return self.kind in REFUSALS


#: (candidates, version) -> their measurements, in the same order.
Measure = Callable[[list[Candidate], str], "Deferred[list[Measurement]]"]
Probe = Callable[[str, str, float], "Deferred[float]"]


class HandshakeProbe:
    """Measures candidates with ``INode.probe_peer``: the time to the remote's whole
    handshake of the version wanted (name resolution untimed), ``concurrency`` at a time,
    ``timeout`` each."""

    def __init__(
        self,
        probe: Probe,
        timeout: float = PROBE_TIMEOUT,
        concurrency: int = PROBE_CONCURRENCY,
    ) -> None:
        self.probe = probe
        self.timeout = timeout
        self.concurrency = concurrency

    def __call__(self, candidates: list[Candidate], version: str) -> Deferred[list[Measurement]]:
        limit = DeferredSemaphore(self.concurrency)
        return gatherResults([limit.run(self._one, c, version) for c in candidates])

    def _one(self, candidate: Candidate, version: str) -> Deferred[Measurement]:
        probing = maybeDeferred(self.probe, candidate.uri, version, self.timeout)

        def failed(failure: Failure) -> Measurement:
            error = failure.value
            kind = error.kind if isinstance(error, ProbeError) else ""
            return Measurement(candidate, None, failure.getErrorMessage(), kind)

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


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# -- quarantine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quarantined:
    """A peer left out of one version's picks until ``until`` (reactor seconds)."""

    uri: str
    version: str
    reason: str
    until: float
    #: How many times it was quarantined: each doubles the window.
    strikes: int


class Quarantine:
    """Peers that refused a version, per (URI, version), with windows that back off."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.entries: dict[tuple[str, str], Quarantined] = {}

    def holds(self, uri: str, version: str) -> bool:
        entry = self.entries.get((uri, version))
        return entry is not None and self.clock.seconds() < entry.until

    def add(self, uri: str, version: str, reason: str) -> Quarantined:
        """Quarantine a peer; its window doubles for each earlier quarantine."""
        earlier = self.entries.get((uri, version))
        strikes = earlier.strikes + 1 if earlier is not None else 1
        hold = min(QUARANTINE * 2 ** (strikes - 1), QUARANTINE_MAX)
        entry = Quarantined(uri, version, reason, self.clock.seconds() + hold, strikes)
        self.entries[(uri, version)] = entry
        log.info(
            "Autopeering: {uri} is not chosen for v{version} for {hold:.0f} s: {reason}",
            uri=uri,
            version=version,
            hold=hold,
            reason=reason,
        )
        return entry

    def active(self) -> list[Quarantined]:
        now = self.clock.seconds()
        return sorted(
            (e for e in self.entries.values() if now < e.until), key=lambda e: (e.until, e.uri)
        )


# -- one version ----------------------------------------------------------------------------


class NetworkAutopeer:
    """Keeps one autopeer of ``version`` connected while there is no other Internet peer
    of that version.  Driven by the service's checks."""

    def __init__(self, service: AutopeerService, version: str) -> None:
        self.service = service
        self.version = version
        self.node = service.node
        self.clock = service.clock
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
        self._settling: Any = None
        self._failing = False
        #: Probes by result ("ok", or the ProbeError kind; "error" for another failure) and
        #: dials of a chosen peer ("connected", "failed"): metrics.
        self.probes: Counter[str] = Counter()
        self.switches: Counter[str] = Counter()

    @property
    def candidates(self) -> list[Candidate]:
        """The list's peers that may serve this version."""
        return [c for c in self.service.candidates if c.serves(self.version)]

    def internet_peers(self) -> list[Any]:
        return [
            p for p in self.node.peers() if speaks(p, self.version) and is_internet_peer(p.remote)
        ]

    def start(self, now: float, configured: bool) -> None:
        # Configured peers get the grace period to come up; otherwise nothing else can.
        self._no_peers_since = now if configured else now - GRACE
        self.state = "waiting"

    def stop(self) -> None:
        if self._measuring is not None:
            self._measuring.cancel()
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = None
        self.state = "stopped"

    # -- the check ------------------------------------------------------------------------

    def check(self) -> None:
        now = self.clock.seconds()
        internet = self.internet_peers()
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
        quarantine = self.service.quarantine
        candidates = [
            c
            for c in self.candidates
            if c.name not in configured and not quarantine.holds(c.uri, self.version)
        ]
        self.state = "measuring"
        measuring = maybeDeferred(self.service.measure, candidates, self.version)
        self._measuring = measuring
        measuring.addBoth(self._measure_done)
        measuring.addCallbacks(self._measured, self._measure_failed)

    def _measure_done(self, result: Any) -> Any:
        self._measuring = None
        return result

    def _measure_failed(self, failure: Failure) -> None:
        if self.service.running:
            log.failure("Autopeering: measuring failed", failure)
            self.state = "waiting"

    def _measured(self, measurements: list[Measurement]) -> None:
        if not self.service.running:
            return
        now = self.clock.seconds()
        self.measurements = measurements
        self.measured_at = now
        for m in measurements:
            self.probes["ok" if m.latency is not None else m.kind or "error"] += 1
        for m in measurements:
            if m.refused:
                self.service.quarantine.add(m.candidate.uri, self.version, m.error)
        for uri, when in list(self.failed.items()):
            if now - when >= FAILED_HOLD:
                del self.failed[uri]
        if self.internet_peers():
            self.state = "online"  # one came up while measuring: nothing to do
            self._no_peers_since = None
            return
        pick = self.service.config.pick
        held = frozenset(self.failed) if pick == "random" else frozenset()
        picked = choose(measurements, pick, self.service.rng, held)
        if picked is None:
            self.state = "waiting"
            self._report(f"none of the {len(measurements)} peers answered")
            return
        choice, online = picked
        self.chosen, self.chosen_at = choice, now
        log.info(
            "Autopeering: chose {uri} for v{version} ({latency:.1f} ms; {online} of {count} "
            "peers answered, pick {pick})",
            uri=choice.candidate.uri,
            version=self.version,
            latency=(choice.latency or 0.0) * 1000,
            online=online,
            count=len(measurements),
            pick=pick,
        )
        self.state = "dialing"
        try:
            dialing = self.service.dial(choice.candidate.uri, self.version)
        except Exception as e:  # a URI the node cannot dial: leave it out from now on
            self.service.drop(choice.candidate)
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
        self.switches["connected"] += 1
        self.failed.pop(choice.candidate.uri, None)
        if not self.service.running:
            return
        self.state = "connected"
        self.last_error = ""
        self._failing = False
        self._no_peers_since = None  # a peer was there: the grace starts when it is seen gone
        log.info(
            "Autopeering: connected to {uri} for v{version}",
            uri=choice.candidate.uri,
            version=self.version,
        )
        if self._settling is not None and self._settling.active():
            self._settling.cancel()
        self._settling = self.clock.callLater(SETTLE, self._settled, choice)

    def _settled(self, choice: Measurement) -> None:
        """SETTLE seconds after the dial: the link must be up since, in this version."""
        self._settling = None
        name = choice.candidate.name
        links = [p for p in self.node.peers() if p.remote == name]
        if any(speaks(p, self.version) and p.uptime + _SLACK >= SETTLE for p in links):
            return
        others = sorted({p.version for p in links if p.version and p.version != self.version})
        if others:
            reason = f"the link came up in v{others[0]}"
        elif links:
            reason = f"the link dropped within {SETTLE:.0f} s and came back"
        else:
            reason = f"the link dropped within {SETTLE:.0f} s of connecting"
        self.service.quarantine.add(choice.candidate.uri, self.version, reason)

    def _dial_failed(self, failure: Failure, choice: Measurement) -> None:
        self.switches["failed"] += 1
        self.failed[choice.candidate.uri] = self.clock.seconds()
        if not self.service.running:
            return
        self.state = "waiting"
        self._report(f"{choice.candidate.uri}: {failure.getErrorMessage()}")

    def _report(self, error: str) -> None:
        """Warn about the first failure of an outage; the next ones go to debug."""
        self.last_error = error
        if self._failing:
            log.debug(
                "Autopeering: v{version}: failed again: {error}", version=self.version, error=error
            )
            return
        self._failing = True
        log.warn(
            "Autopeering: no v{version} peer connected: {error} (retrying every {grace:.0f} s; "
            "further failures are logged at debug level)",
            version=self.version,
            error=error,
            grace=GRACE,
        )

    # -- admin ------------------------------------------------------------------------------

    def describe(self, now: float) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "state": self.state,
            "uri": chosen.candidate.uri if chosen else "",
            "latency_ms": _ms(chosen.latency) if chosen else None,
            "chosen_ago": None if self.chosen_at is None else round(now - self.chosen_at, 3),
            "measured_ago": None if self.measured_at is None else round(now - self.measured_at, 3),
            "candidates": len(self.candidates),
            "answered": sum(1 for m in self.measurements if m.latency is not None),
            "last_error": self.last_error,
        }

    def rows(self) -> list[dict[str, Any]]:
        """The last measurements: fastest first, then those that gave no handshake."""
        online = sorted(
            (m for m in self.measurements if m.latency is not None), key=lambda m: m.latency
        )
        offline = [m for m in self.measurements if m.latency is None]
        return [
            {
                "version": self.version,
                "uri": m.candidate.uri,
                "latency_ms": _ms(m.latency),
                "error": m.error,
            }
            for m in online + offline
        ]


# -- the service ----------------------------------------------------------------------------


class AutopeerService(Service):
    """Keeps one autopeer connected per running version while the node has no other
    Internet peer of that version."""

    def __init__(
        self,
        node: INode,
        config: AutopeeringConfig,
        *,
        builtin: Mapping[str, Path] | None = None,
        measure: Measure | None = None,
        dial: Callable[[str, str], Deferred[Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.clock = node.reactor
        self.versions = tuple(node.versions())
        self.candidates, self.rejected, self.source = load_candidates(
            config, builtin or {}, self.versions
        )
        self.measure: Measure = measure or HandshakeProbe(node.probe_peer)
        self.dial = dial or (lambda uri, version: node.call_peer(uri, version=version))
        self.rng = rng or random.Random()
        self.quarantine = Quarantine(self.clock)
        #: One per running version, oldest first.
        self.networks = {v: NetworkAutopeer(self, v) for v in self.versions}
        #: The networks with peers to choose from, once started.
        self._running: list[NetworkAutopeer] = []
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.clock

    def drop(self, candidate: Candidate) -> None:
        """Leave a candidate out from now on (the node cannot dial it)."""
        self.candidates = [c for c in self.candidates if c != candidate]

    # -- lifecycle --------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.node.register_metrics(AutopeerCollector(self))
        self.node.register_admin_method(
            Method(
                "getAutopeer",
                "Show the autopeering choice per protocol version, its latency, the "
                "quarantined peers and the last measurements",
                lambda node, args: self.describe(),
                table="measurements",
            )
        )
        for line in self.rejected:
            log.warn("Autopeering: not a tcp:// or tls:// peer, skipped: {line}", line=line)
        now = self.clock.seconds()
        configured = bool(self.node.configured_peers())
        running = []
        for version, network in self.networks.items():
            if not network.candidates:
                log.error(
                    "Autopeering: no v{version} peers to choose from in {source}",
                    version=version,
                    source=self.source,
                )
                network.state = "no peers"
                continue
            network.start(now, configured)
            running.append(network)
        if not running:
            return
        log.info(
            "Autopeering: started with {count} peers from {source}, pick {pick}, one peer "
            "of {versions}",
            count=len(self.candidates),
            source=self.source,
            pick=self.config.pick,
            versions=" and ".join(f"v{n.version}" for n in running),
        )
        self._running = running
        self._loop.start(CHECK_PERIOD, now=True).addErrback(
            lambda failure: log.failure("Autopeering: the check failed; stopped", failure)
        )

    def stopService(self) -> Any:
        stopped = super().stopService()
        if self._loop.running:
            self._loop.stop()
        for network in self.networks.values():
            network.stop()
        return stopped

    def check(self) -> None:
        for network in self._running:
            network.check()

    # -- admin ----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What getAutopeer answers."""
        now = self.clock.seconds()
        return {
            "pick": self.config.pick,
            "source": self.source,
            "list_size": len(self.candidates),
            "networks": {v: n.describe(now) for v, n in self.networks.items()},
            "quarantined": [
                {
                    "uri": e.uri,
                    "version": e.version,
                    "reason": e.reason,
                    "left_seconds": round(e.until - now, 3),
                    "strikes": e.strikes,
                }
                for e in self.quarantine.active()
            ],
            "measurements": [row for n in self.networks.values() for row in n.rows()],
        }
