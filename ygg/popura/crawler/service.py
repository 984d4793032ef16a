"""The network crawls: a breadth-first walk of a whole network, from this node, over the
remote debug requests every node answers — one walk per protocol version the node runs.

Popura 0.3 walked the network with DHT pings.  0.4 has none; instead each node answers
getSelf, getPeers and getDHT (its coordinates and the keys of its peers and DHT
neighbours) and NodeInfo to anyone who asks through a session.  A v0.5 node answers the
same requests (getSelf with its routing table's size instead of coordinates, and getTree,
the keys of the tree infos it holds, where 0.4 has getDHT).  Each network is walked over
its own sessions (``INode``'s asks with ``version=``), as a ``Network`` describes it:
v0.4's ``getDHTCrawl`` and v0.5's ``getTreeCrawl``.  A walk starts at our own key and
asks every key it hears of:

1. getSelf first.  It sets up the session: until one exists only the last message to a
   key is kept, so several first requests at once would lose all but one.  A node that
   answers is *found*; one that never does (after every attempt) is reported with
   ``found: false`` and asked nothing else.
2. Then getPeers, getDHT (v0.5: getTree) and NodeInfo together.  Every key in the peers
   and DHT (tree) replies not seen before joins the end of the queue (breadth first).

**Concurrency.**  At most ``concurrency`` keys have requests outstanding at once; a key
waiting to retry does not count, and retries get the next free place before new keys.

**Retries.**  Each request is tried up to ``attempts`` times, pausing ``retry_delays``
(plus up to ``jitter`` seconds, at random, so retries to many nodes do not go out in
step) after each failure (the node's own 6 s timeout).  The first pause is short: most
lost first requests are a lost init or reply, and the next try works.  The second
outlasts a stuck session: when the ack to our session init is lost, the remote keeps the
session that init created, and drops our repeated init (the same init, with the same
sequence number, as ironwood resends it) as stale, without an ack, until that session
times out 60 s after it was made.  Every try in between is lost.

**Deadline.**  At ``deadline`` seconds the walk stops where it is: keys queued or still
being asked are reported ``found: false``, and answers arriving later are ignored.

``Crawler`` keeps the last result for ``cache_for`` seconds (five minutes, as Popura) after
the walk finished, and callers arriving while a walk runs all get its result.  The admin
methods, per network: ``getDHTCrawl`` (the result, Popura's response shape with peers and
DHT added) and ``getDHTCrawlProgress`` (how far the running walk got); ``getTreeCrawl``
and ``getTreeCrawlProgress`` the same for v0.5.
"""

from __future__ import annotations

import functools
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg import address as addr
from ygg.interfaces import AdminError, INode, Method
from ygg.popura.crawler import DHTCrawlerConfig
from ygg.popura.crawler.metrics import CrawlerCollector

log = Logger(namespace="ygg.crawler")

#: Keys with requests outstanding at once.
CONCURRENCY = 32
#: Tries per request (each waits up to the node's 6 s timeout).
ATTEMPTS = 3
#: Seconds to pause before the second and the third try (the last repeats for any more).
#: The 60 s wait out a remote session stuck on a lost ack (see above).
RETRY_DELAYS = (1.0, 60.0)
#: Up to this many seconds are added to each pause, at random.
JITTER = 1.0
#: Seconds after which a walk stops with what it has.  Under the admin socket's 300 s
#: idle timeout, so that the reply still reaches a client that has waited all along.
DEADLINE = 240.0
#: Seconds a finished walk's result is handed out again.
CACHE_FOR = 300.0

KEY_SIZE = 32


@dataclass(frozen=True)
class Network:
    """What differs between the crawls of the two protocol versions."""

    version: str  # "0.4", "0.5"
    result: str  # the key of the admin reply holding the crawl
    method: str  # the admin method that runs it (its progress: method + "Progress")
    #: The third debug request ("getDHT", "getTree") and the entry's key for its keys.
    request: str
    neighbours: str
    #: What a node's getSelf tells of its place: "coords" (v0.4) or "routing_entries".
    place: str


V04_NETWORK = Network("0.4", "dht_crawl", "getDHTCrawl", "getDHT", "dht", "coords")
V05_NETWORK = Network("0.5", "tree_crawl", "getTreeCrawl", "getTree", "tree", "routing_entries")
NETWORKS = {n.version: n for n in (V04_NETWORK, V05_NETWORK)}


def parse_coords(text: Any) -> list[int]:
    """A remote getSelf's ``coords`` (Go's ``%v`` of the port list, ``"[1 4 2]"``) as a
    list of ints; anything malformed gives ``[]``."""
    if not isinstance(text, str):
        return []
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return []
    try:
        ports = [int(word) for word in text[1:-1].split()]
    except ValueError:
        return []
    if any(port < 0 for port in ports):
        return []
    return ports


def parse_count(text: Any) -> int:
    """A remote v0.5 getSelf's ``routing_entries`` (a number sent as a string) as an
    int; anything malformed gives 0."""
    if isinstance(text, bool):
        return 0
    try:
        count = int(text)
    except (TypeError, ValueError):
        return 0
    return max(count, 0)


@dataclass
class _Visit:
    """What the walk knows of one key."""

    key: bytes
    found: bool = False  # answered getSelf
    done: bool = False  # every request to it has finished
    coords: list[int] = field(default_factory=list)  # v0.4
    routing_entries: int = 0  # v0.5
    peers: list[str] = field(default_factory=list)
    neighbours: list[str] = field(default_factory=list)  # DHT (v0.4) or tree (v0.5) keys

    def entry(self, network: Network) -> dict[str, Any]:
        place: Any = list(self.coords) if network.place == "coords" else self.routing_entries
        return {
            "ipv6_addr": addr.format_address(addr.address_for_key(self.key)),
            "ipv6_subnet": addr.format_subnet(addr.subnet_for_key(self.key)),
            network.place: place,
            "found": self.found,
            "peers": list(self.peers),
            network.neighbours: list(self.neighbours),
        }


class Crawl:
    """One walk of one network.  ``start()`` returns a Deferred of the crawl object (what
    the admin reply holds under ``network.result``)."""

    def __init__(
        self,
        node: INode,
        clock: Any,
        *,
        network: Network = V04_NETWORK,
        concurrency: int = CONCURRENCY,
        attempts: int = ATTEMPTS,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        jitter: float = JITTER,
        deadline: float = DEADLINE,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1 or attempts < 1:
            raise ValueError("concurrency and attempts must be at least 1")
        if not retry_delays:
            raise ValueError("retry_delays must not be empty")
        self.node = node
        self.clock = clock
        self.network = network
        # The four questions, each over this network's sessions alone.
        version = network.version
        self._get_self = functools.partial(node.remote_get_self, version=version)
        self._get_peers = functools.partial(node.remote_get_peers, version=version)
        self._get_node_info = functools.partial(node.get_node_info, version=version)
        if network.neighbours == "tree":
            self._get_neighbours: Callable[[bytes], Any] = node.remote_get_tree
        else:
            self._get_neighbours = functools.partial(node.remote_get_dht, version=version)
        self.concurrency = concurrency
        self.attempts = attempts
        self.retry_delays = tuple(retry_delays)
        self.jitter = jitter
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.visits: dict[bytes, _Visit] = {}
        self.node_info: dict[bytes, Any] = {}
        self.requests = 0
        self.started: float | None = None
        self.finished_at: float | None = None
        self.timed_out = False
        self._new: deque[bytes] = deque()  # keys heard of, not asked yet
        self._ready: deque[tuple[bytes, Callable[[], None]]] = deque()  # retries due
        self._slots: dict[bytes, int] = {}  # keys with requests outstanding -> how many
        self._open = 0  # visits started and not done
        self._filling = False
        self._timers: set[Any] = set()
        self._deadline_call: Any = None
        self._result: Deferred[dict[str, Any]] = Deferred()

    @property
    def running(self) -> bool:
        return self.started is not None and self.finished_at is None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def start(self) -> Deferred[dict[str, Any]]:
        self.started = self.clock.seconds()
        self._deadline_call = self.clock.callLater(self.deadline, self._out_of_time)
        self._hear_of(self.node.public_key)
        return self._result

    def abort(self) -> None:
        """Stop at once, cancelling every timer; the result never fires."""
        if not self.finished:
            self.finished_at = self.clock.seconds()
            self._cancel_timers()

    # -- the walk --------------------------------------------------------------------------

    def _hear_of(self, key: bytes) -> None:
        key = bytes(key)
        if len(key) != KEY_SIZE or key in self.visits:
            return
        self.visits[key] = _Visit(key)
        self._new.append(key)
        self._next()

    def _next(self) -> None:
        """Fill the free places (retries due first, then new keys); finish when nothing is
        left.  A request answered at once (a synchronous INode) comes back here and is
        picked up by the loop already running instead of recursing."""
        if self.finished or self._filling:
            return
        self._filling = True
        try:
            while len(self._slots) < self.concurrency and not self.finished:
                if self._ready:
                    _, send = self._ready.popleft()
                    send()
                elif self._new:
                    self._visit(self.visits[self._new.popleft()])
                else:
                    break
        finally:
            self._filling = False
        if not self.finished and self._open == 0 and not self._new:
            self._finish()

    def _visit(self, visit: _Visit) -> None:
        self._open += 1
        d = self._ask("getSelf", self._get_self, visit.key)
        d.addCallbacks(
            self._answered, self._unanswered, callbackArgs=(visit,), errbackArgs=(visit,)
        )
        d.addBoth(self._visited, visit)

    def _answered(self, reply: Any, visit: _Visit) -> Deferred[Any] | None:
        if self.finished:
            return None
        visit.found = True
        place = reply.get(self.network.place) if isinstance(reply, dict) else None
        if self.network.place == "coords":
            visit.coords = parse_coords(place)
        else:
            visit.routing_entries = parse_count(place)
        key = visit.key
        asks = [
            self._ask("getPeers", self._get_peers, key).addCallback(self._got_keys, visit, "peers"),
            self._ask(self.network.request, self._get_neighbours, key).addCallback(
                self._got_keys, visit, "neighbours"
            ),
            self._ask("getNodeInfo", self._get_node_info, key).addCallback(
                self._got_node_info, visit
            ),
        ]
        for d in asks:
            d.addErrback(self._failed, visit)
        return DeferredList(asks)

    def _unanswered(self, failure: Failure, visit: _Visit) -> None:
        self._failed(failure, visit)  # the visit stays found: false

    def _got_keys(self, keys: list[bytes], visit: _Visit, which: str) -> None:
        if self.finished:
            return
        seen: list[str] = []
        for key in keys:
            key = bytes(key)
            if len(key) == KEY_SIZE and key.hex() not in seen:
                seen.append(key.hex())
        setattr(visit, which, seen)
        for text in seen:
            self._hear_of(bytes.fromhex(text))

    def _got_node_info(self, info: Any, visit: _Visit) -> None:
        if not self.finished:
            self.node_info[visit.key] = info

    def _failed(self, failure: Failure, visit: _Visit) -> None:
        if not failure.check(AdminError):
            log.failure("Crawl of {key} failed", failure, key=visit.key.hex())

    def _visited(self, result: Any, visit: _Visit) -> None:
        if isinstance(result, Failure):
            log.failure("Crawl of {key} failed", result, key=visit.key.hex())
        if self.finished:
            return
        visit.done = True
        self._open -= 1
        self._next()

    # -- requests: places, retries ---------------------------------------------------------

    def _ask(self, what: str, call: Callable[[bytes], Any], key: bytes) -> Deferred[Any]:
        """``call(key)`` with up to ``attempts`` tries.  The Deferred fails with the last
        failure; it never fires once the walk has finished."""
        result: Deferred[Any] = Deferred()

        def attempt(number: int) -> None:
            self._slots[key] = self._slots.get(key, 0) + 1
            self.requests += 1
            maybeDeferred(call, key).addBoth(returned, number)

        def returned(outcome: Any, number: int) -> None:
            try:
                if self.finished:
                    return
                if not isinstance(outcome, Failure):
                    result.callback(outcome)  # follow-ups start while the key has its place
                    return
                log.debug(
                    "{what} to {key} failed (attempt {number}): {error}",
                    what=what,
                    key=key.hex(),
                    number=number,
                    error=outcome.getErrorMessage(),
                )
                if number >= self.attempts:
                    result.errback(outcome)
                else:
                    self._later(self._pause(number), self._when_free, key, attempt, number + 1)
            finally:
                self._release(key)

        self._when_free(key, attempt, 1)
        return result

    def _when_free(self, key: bytes, attempt: Callable[[int], None], number: int) -> None:
        if self.finished:
            return
        if key in self._slots or len(self._slots) < self.concurrency:
            attempt(number)
        else:
            self._ready.append((key, lambda: attempt(number)))

    def _release(self, key: bytes) -> None:
        left = self._slots[key] - 1
        if left:
            self._slots[key] = left
        else:
            del self._slots[key]
            self._next()

    def _pause(self, failed_attempt: int) -> float:
        delays = self.retry_delays
        return delays[min(failed_attempt, len(delays)) - 1] + self.jitter * self.rng.random()

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        def fire() -> None:
            self._timers.discard(call)
            fn(*args)

        call = self.clock.callLater(delay, fire)
        self._timers.add(call)

    def _cancel_timers(self) -> None:
        for call in list(self._timers):
            if call.active():
                call.cancel()
        self._timers.clear()
        if self._deadline_call is not None and self._deadline_call.active():
            self._deadline_call.cancel()
        self._deadline_call = None

    # -- the end ---------------------------------------------------------------------------

    def _out_of_time(self) -> None:
        self._deadline_call = None
        self.timed_out = True
        log.info(
            "The crawl reached its {deadline} s deadline with {left} nodes not done",
            deadline=self.deadline,
            left=len(self._new) + self._open,
        )
        self._finish()

    def _finish(self) -> None:
        self.finished_at = self.clock.seconds()
        self._cancel_timers()
        self._ready.clear()
        self._result.callback(self.report())

    def report(self) -> dict[str, Any]:
        """The crawl object: Popura's shape, with each node's peers and DHT (v0.5: tree)
        keys, and in ``meta`` the network's version and the crawling node's key."""
        now = self.finished_at if self.finished_at is not None else self.clock.seconds()
        started = self.started if self.started is not None else now
        found = sum(1 for visit in self.visits.values() if visit.found)
        network = self.network
        return {
            "meta": {
                "generated_at_utc": int(now),
                "nodes_attempted": len(self.visits),
                "nodes_successful": found,
                "crawl_time_seconds": round(now - started, 3),
                "nodes_failed": len(self.visits) - found,
                "nodeinfo_successful": len(self.node_info),
                "nodeinfo_failed": found - len(self.node_info),
                "version": network.version,
                "crawler": bytes(self.node.public_key).hex(),
            },
            "topology": {key.hex(): self.visits[key].entry(network) for key in sorted(self.visits)},
            "nodeinfo": {key.hex(): self.node_info[key] for key in sorted(self.node_info)},
        }

    def progress(self) -> dict[str, Any]:
        now = self.finished_at if self.finished_at is not None else self.clock.seconds()
        running = self.running
        return {
            "running": running,
            "found": len(self.visits),
            "answered": sum(1 for visit in self.visits.values() if visit.found),
            "failed": sum(1 for v in self.visits.values() if v.done and not v.found),
            "pending": len(self._new) + self._open if running else 0,
            "in_flight": len(self._slots) if running else 0,
            "elapsed_seconds": round(now - (self.started or now), 3),
        }


class Crawler:
    """Runs walks of one network on demand, one at a time: callers while one runs share
    its result, and callers within ``cache_for`` seconds of its end get that result
    again."""

    def __init__(
        self,
        node: INode,
        *,
        network: Network = V04_NETWORK,
        clock: Any = None,
        cache_for: float = CACHE_FOR,
        **crawl_options: Any,
    ) -> None:
        self.node = node
        self.network = network
        self.clock = clock if clock is not None else node.reactor
        self.cache_for = cache_for
        self.crawl_options = crawl_options
        self.current: Crawl | None = None
        self.crawls = 0
        #: Walks ended, by result ("finished", "failed"), and the last one's ``meta``
        #: (metrics).
        self.results: Counter[str] = Counter()
        self.last_meta: dict[str, Any] | None = None
        self._cached: dict[str, Any] | None = None
        self._cached_until = 0.0
        self._waiting: list[Deferred[dict[str, Any]]] = []

    def crawl(self) -> Deferred[dict[str, Any]]:
        """The last result if it is recent enough, else that of the walk running (started
        now if none is): ``{"dht_crawl": {...}}`` (v0.5: ``{"tree_crawl": {...}}``)."""
        if self._cached is not None and self.clock.seconds() < self._cached_until:
            return succeed(self._cached)
        waiter: Deferred[dict[str, Any]] = Deferred()
        self._waiting.append(waiter)
        if self.current is None or not self.current.running:
            self.current = Crawl(self.node, self.clock, network=self.network, **self.crawl_options)
            self.crawls += 1
            log.info("Crawling the v{version} network", version=self.network.version)
            self.current.start().addCallbacks(self._done, self._crashed)
        return waiter

    def progress(self) -> dict[str, Any]:
        if self.current is None:
            return {
                "running": False,
                "found": 0,
                "answered": 0,
                "failed": 0,
                "pending": 0,
                "in_flight": 0,
                "elapsed_seconds": 0,
            }
        return self.current.progress()

    def stop(self) -> None:
        """Abandon a running walk; whoever waits for it gets an error."""
        if self.current is not None and self.current.running:
            self.current.abort()
            self._release(lambda waiter: waiter.errback(AdminError("The crawler was stopped")))

    def _done(self, report: dict[str, Any]) -> None:
        meta = report["meta"]
        self.results["finished"] += 1
        self.last_meta = meta
        log.info(
            "The v{version} crawl took {seconds} s: {answered} of {attempted} nodes answered, "
            "{nodeinfo} gave NodeInfo",
            version=self.network.version,
            seconds=meta["crawl_time_seconds"],
            answered=meta["nodes_successful"],
            attempted=meta["nodes_attempted"],
            nodeinfo=meta["nodeinfo_successful"],
        )
        result = {self.network.result: report}
        self._cached = result
        self._cached_until = self.clock.seconds() + self.cache_for  # from the walk's end
        self._release(lambda waiter: waiter.callback(result))

    def _crashed(self, failure: Failure) -> None:
        self.results["failed"] += 1
        log.failure("The crawl failed", failure)
        self._release(lambda waiter: waiter.errback(AdminError("The crawl failed")))

    def _release(self, fire: Callable[[Deferred[dict[str, Any]]], None]) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            fire(waiter)


class CrawlerService(Service):
    """The feature: one crawler per protocol version the node runs, each with its two
    admin methods (``getDHTCrawl``/``getDHTCrawlProgress`` for v0.4,
    ``getTreeCrawl``/``getTreeCrawlProgress`` for v0.5)."""

    def __init__(self, node: INode, config: DHTCrawlerConfig, **crawler_options: Any) -> None:
        self.node = node
        self.config = config
        self.crawlers = {
            version: Crawler(node, network=NETWORKS[version], **crawler_options)
            for version in node.versions()
            if version in NETWORKS
        }

    def startService(self) -> None:
        super().startService()
        self.node.register_metrics(CrawlerCollector(self.crawlers))
        for crawler in self.crawlers.values():
            self._register(crawler)

    def _register(self, crawler: Crawler) -> None:
        network = crawler.network
        if network.version == "0.4":
            what = "coordinates, peers, DHT neighbours and NodeInfo"
        else:
            what = "routing table size, peers, tree entries and NodeInfo"
        self.node.register_admin_method(
            Method(
                network.method,
                f"Crawl the whole v{network.version} network from this node: every node's "
                f"{what} (the result is kept for 5 minutes)",
                lambda node, args: crawler.crawl(),
                help=f"Walk the v{network.version} network; may take minutes "
                f"(see {network.method}Progress).",
            )
        )
        self.node.register_admin_method(
            Method(
                network.method + "Progress",
                f"Show how far the running {network.method} got: nodes found, answered and pending",
                lambda node, args: crawler.progress(),
            )
        )

    def stopService(self) -> Any:
        super().stopService()
        for crawler in self.crawlers.values():
            crawler.stop()
        return None
