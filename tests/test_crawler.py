"""The DHT crawler's walk, cache and admin methods, on a fake node over an adjacency list.

Why a fake ``INode`` rather than the simulator: the walk sees the network only through
four ``INode`` calls (getSelf, getPeers, getDHT, NodeInfo), and what these tests check is
how it uses them — which keys it asks, how often, when, with how many at once, and what
it makes of silence.  A fake whose answers come after a delay on a ``task.Clock`` (and
whose silent nodes fail after the node's 6 s timeout) makes each of those exact and
cheap to arrange: a node that answers on the third try, one that never answers, one that
answers everything but NodeInfo.  The simulator runs routers without sessions or the
proto layer, so it could only feed the same four answers from routing tables; one test
below does that, to walk a converged simulated network's real peers and DHT tables.
The real stack (sessions, proto messages, the Go node's answers) is covered by
tests/test_interop_crawler.py.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests import scrape
from ygg import address as addr
from ygg import features, gojson
from ygg.admin.registry import AdminError, Registry
from ygg.config import NodeConfig, parse
from ygg.core.proto import go_coords
from ygg.interfaces import IFeature
from ygg.popura.crawler import DHTCrawlerConfig
from ygg.popura.crawler import command as cli
from ygg.popura.crawler import feature as crawler_feature
from ygg.popura.crawler.service import (
    CACHE_FOR,
    V05_NETWORK,
    Crawl,
    Crawler,
    CrawlerService,
    parse_coords,
    parse_count,
)
from ygg.sim.network import SimNetwork

TIMEOUT = 6.0  # the node's own timeout for a remote request


class MiddleRandom(random.Random):
    """Always half the jitter: each pause is its delay plus 0.5 s."""

    def random(self) -> float:
        return 0.5


def make_keys(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


class FakeMesh:
    """An ``INode`` (the parts the crawler uses) over an adjacency list.

    Each remote call is recorded and answered ``delay`` seconds later on the clock; a
    silent key fails with ``AdminError("timeout")`` after 6 s, as the node's own requests
    do.  ``fail_first[(kind, key)] = n`` makes the first ``n`` such calls time out.
    """

    def __init__(
        self,
        clock: Clock,
        me: bytes,
        peers: dict[bytes, list[bytes]],
        dht: dict[bytes, list[bytes]] | None = None,
        *,
        silent: set[bytes] | frozenset[bytes] = frozenset(),
        delay: float = 0.05,
        fail_first: dict[tuple[str, bytes], int] | None = None,
        coords: dict[bytes, str] | None = None,
        versions: tuple[str, ...] = ("0.4",),
    ) -> None:
        self.reactor = clock
        self.public_key = me
        self.running = versions
        self.peer_map = peers
        self.dht_map = dht or {}
        self.silent = set(silent)
        self.delay = delay
        self.fail_first = dict(fail_first or {})
        self.coords = coords or {}
        #: key -> time before which its requests time out (a session stuck on a lost ack)
        self.deaf_until: dict[bytes, float] = {}
        self.calls: list[tuple[float, str, bytes]] = []
        self.outstanding: dict[bytes, int] = {}
        self.max_keys_in_flight = 0
        self.registry = Registry()
        self.collectors: list = []

    # -- admin ------------------------------------------------------------------------------

    def register_admin_method(self, method: Any) -> None:
        self.registry.register(method)

    def register_metrics(self, collector: Any) -> bool:
        self.collectors.append(collector)  # what a scrape would collect
        return True

    def call_admin(self, name: str, arguments: dict | None = None) -> Deferred:
        return self.registry.call(self, name, arguments)

    # -- remote requests ----------------------------------------------------------------------

    def answers(self, key: bytes) -> bool:
        return key in self.peer_map and key not in self.silent

    def _ask(self, kind: str, key: bytes, value: Any) -> Deferred:
        self.calls.append((self.reactor.seconds(), kind, key))
        self.outstanding[key] = self.outstanding.get(key, 0) + 1
        self.max_keys_in_flight = max(self.max_keys_in_flight, len(self.outstanding))
        d: Deferred = Deferred()
        failing = self.fail_first.get((kind, key), 0)
        if failing:
            self.fail_first[(kind, key)] = failing - 1
        deaf = self.reactor.seconds() < self.deaf_until.get(key, 0.0)
        if not self.answers(key) or failing or deaf:
            self.reactor.callLater(TIMEOUT, self._fire, key, d, AdminError("timeout"))
        else:
            self.reactor.callLater(self.delay, self._fire, key, d, value)
        return d

    def _fire(self, key: bytes, d: Deferred, value: Any) -> None:
        self.outstanding[key] -= 1
        if not self.outstanding[key]:
            del self.outstanding[key]
        if isinstance(value, Exception):
            d.errback(Failure(value))
        else:
            d.callback(value)

    def versions(self) -> tuple[str, ...]:
        return self.running

    def _network(self, version: str | None) -> None:
        # The crawler asks each network by name, one the node runs.
        if version not in self.running:
            raise AssertionError(f"asked v{version}, the node runs {self.running}")

    def remote_get_self(self, key: bytes, version: str | None = None) -> Deferred:
        self._network(version)
        if version == "0.5":
            reply = {"key": key.hex(), "routing_entries": self.coords.get(key, "7")}
        else:
            reply = {"key": key.hex(), "coords": self.coords.get(key, "[1]")}
        return self._ask("self", key, reply)

    def remote_get_peers(self, key: bytes, version: str | None = None) -> Deferred:
        self._network(version)
        return self._ask("peers", key, list(self.peer_map.get(key, [])))

    def remote_get_dht(self, key: bytes, version: str | None = None) -> Deferred:
        self._network(version)
        return self._ask("dht", key, list(self.dht_map.get(key, [])))

    def remote_get_tree(self, key: bytes) -> Deferred:
        self._network("0.5")
        return self._ask("tree", key, list(self.dht_map.get(key, [])))

    def get_node_info(self, key: bytes, version: str | None = None) -> Deferred:
        self._network(version)
        return self._ask("nodeinfo", key, {"name": f"node-{key.hex()[:8]}"})

    # -- what was asked ---------------------------------------------------------------------------

    def asked(self, kind: str, key: bytes) -> list[float]:
        return [t for t, k, who in self.calls if k == kind and who == key]


def thirty_node_mesh(clock: Clock, **kwargs: Any) -> tuple[FakeMesh, list[bytes], list[bytes]]:
    """30 answering nodes in a ring with chords (every third node to the one five on),
    plus three silent keys that some nodes list as peers.  DHT: each node's neighbours in
    key order (predecessor and successor on the ring of the 30)."""
    keys = make_keys(33)
    nodes, silent = keys[:30], keys[30:]
    edges = {(i, (i + 1) % 30) for i in range(30)} | {(i, (i + 5) % 30) for i in range(0, 30, 3)}
    peers: dict[bytes, list[bytes]] = {k: [] for k in nodes}
    for a, b in sorted(edges):
        peers[nodes[a]].append(nodes[b])
        peers[nodes[b]].append(nodes[a])
    for i, key in enumerate(silent):
        peers[nodes[10 * i + 4]].append(key)  # heard of through a peer, never answers
    ordered = sorted(nodes)
    dht = {k: [ordered[(j - 1) % 30], ordered[(j + 1) % 30]] for j, k in enumerate(ordered)}
    coords = {k: "[" + " ".join(str(p) for p in (1, i % 7, i)) + "]" for i, k in enumerate(nodes)}
    coords[nodes[0]] = "[]"
    mesh = FakeMesh(clock, nodes[0], peers, dht, silent=set(silent), coords=coords, **kwargs)
    return mesh, nodes, silent


def run_until_fired(clock: Clock, d: Deferred) -> Any:
    """Move the clock from one pending call to the next until ``d`` fires."""
    results: list[Any] = []
    d.addBoth(results.append)
    while not results:
        calls = clock.getDelayedCalls()
        if not calls:
            raise AssertionError("nothing left to run and the crawl has not finished")
        clock.advance(max(0.0, min(call.getTime() for call in calls) - clock.seconds()))
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


class WalkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def crawler(self, mesh: FakeMesh, **options: Any) -> Crawler:
        options.setdefault("rng", MiddleRandom())
        return Crawler(mesh, **options)

    def test_thirty_nodes_crawled_completely(self) -> None:
        mesh, nodes, silent = thirty_node_mesh(self.clock)
        started = self.clock.seconds()
        result = run_until_fired(self.clock, self.crawler(mesh).crawl())
        report = result["dht_crawl"]
        self.assertEqual(list(report), ["meta", "topology", "nodeinfo"])
        topology = report["topology"]
        self.assertEqual(sorted(topology), sorted(k.hex() for k in nodes + silent))
        self.assertEqual(list(topology), sorted(topology))
        for i, key in enumerate(nodes):
            entry = topology[key.hex()]
            self.assertEqual(
                list(entry), ["ipv6_addr", "ipv6_subnet", "coords", "found", "peers", "dht"]
            )
            self.assertTrue(entry["found"])
            self.assertEqual(entry["peers"], [k.hex() for k in mesh.peer_map[key]])
            self.assertEqual(entry["dht"], [k.hex() for k in mesh.dht_map[key]])
            self.assertEqual(entry["coords"], [] if i == 0 else [1, i % 7, i])
            self.assertEqual(entry["ipv6_addr"], addr.format_address(addr.address_for_key(key)))
            self.assertEqual(entry["ipv6_subnet"], addr.format_subnet(addr.subnet_for_key(key)))
            self.assertEqual(report["nodeinfo"][key.hex()], {"name": f"node-{key.hex()[:8]}"})
        for key in silent:
            entry = topology[key.hex()]
            self.assertEqual(
                (entry["found"], entry["coords"], entry["peers"], entry["dht"]),
                (False, [], [], []),
            )
            self.assertNotIn(key.hex(), report["nodeinfo"])
            # Silent: asked getSelf on every attempt, and nothing else.
            self.assertEqual(len(mesh.asked("self", key)), 3)
            for kind in ("peers", "dht", "nodeinfo"):
                self.assertEqual(mesh.asked(kind, key), [])
        # Each answering node asked each thing exactly once.
        for key in nodes:
            for kind in ("self", "peers", "dht", "nodeinfo"):
                self.assertEqual(len(mesh.asked(kind, key)), 1, (kind, key.hex()))
        elapsed = self.clock.seconds() - started
        self.assertEqual(
            report["meta"],
            {
                "generated_at_utc": int(self.clock.seconds()),
                "nodes_attempted": 33,
                "nodes_successful": 30,
                "crawl_time_seconds": round(elapsed, 3),
                "nodes_failed": 3,
                "nodeinfo_successful": 30,
                "nodeinfo_failed": 0,
                "version": "0.4",
                "crawler": nodes[0].hex(),
            },
        )
        # As the admin socket writes it (Go's encoder) and back.
        self.assertEqual(json.loads(gojson.dumps(result, indent=2)), result)

    def test_breadth_first_from_our_own_key(self) -> None:
        """Our own key is asked first; then our peers, before their peers."""
        keys = make_keys(4)
        me, a, b, c = keys
        mesh = FakeMesh(self.clock, me, {me: [a, b], a: [me, c], b: [me], c: [a]})
        run_until_fired(self.clock, self.crawler(mesh, concurrency=1).crawl())
        order = [who for _, kind, who in mesh.calls if kind == "self"]
        self.assertEqual(order, [me, a, b, c])

    def test_getself_before_the_rest(self) -> None:
        """Until a session is up only the last message to a key is kept, so getSelf goes
        alone and the other three follow its answer."""
        me, other = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [other], other: [me]}, delay=0.5)
        run_until_fired(self.clock, self.crawler(mesh).crawl())
        (asked_self,) = mesh.asked("self", other)
        for kind in ("peers", "dht", "nodeinfo"):
            self.assertEqual(mesh.asked(kind, other), [asked_self + 0.5])

    def test_dht_neighbours_are_followed(self) -> None:
        """A key heard of only through getDHT is crawled too."""
        me, far = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [], far: []}, {me: [far], far: [me]})
        report = run_until_fired(self.clock, self.crawler(mesh).crawl())["dht_crawl"]
        self.assertTrue(report["topology"][far.hex()]["found"])
        self.assertEqual(report["topology"][me.hex()]["dht"], [far.hex()])

    def test_concurrency_is_bounded(self) -> None:
        mesh, _, _ = thirty_node_mesh(self.clock)
        report = run_until_fired(self.clock, self.crawler(mesh, concurrency=4).crawl())
        self.assertEqual(report["dht_crawl"]["meta"]["nodes_successful"], 30)
        self.assertEqual(mesh.max_keys_in_flight, 4)
        mesh, _, _ = thirty_node_mesh(Clock())
        mesh.reactor.advance(1)
        run_until_fired(mesh.reactor, self.crawler(mesh).crawl())
        self.assertLessEqual(mesh.max_keys_in_flight, 32)
        self.assertGreater(mesh.max_keys_in_flight, 4)

    def test_retries_back_off_then_give_up(self) -> None:
        me, dead = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [dead]}, silent={dead})
        report = run_until_fired(self.clock, self.crawler(mesh).crawl())
        first, second, third = mesh.asked("self", dead)
        # The 6 s timeout, then 1 s (+ half the 1 s jitter); the timeout again, then 60 s.
        self.assertAlmostEqual(second - first, TIMEOUT + 1.5)
        self.assertAlmostEqual(third - second, TIMEOUT + 60.5)
        self.assertAlmostEqual(self.clock.seconds() - third, TIMEOUT)
        self.assertFalse(report["dht_crawl"]["topology"][dead.hex()]["found"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_jittered_pauses(self) -> None:
        me, dead = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [dead]}, silent={dead})
        crawler = Crawler(mesh, retry_delays=(2.0, 4.0), attempts=4, rng=random.Random(7))
        run_until_fired(self.clock, crawler.crawl())
        times = mesh.asked("self", dead)
        self.assertEqual(len(times), 4)
        pauses = [later - earlier - TIMEOUT for earlier, later in itertools.pairwise(times)]
        for pause, least in zip(pauses, (2.0, 4.0, 4.0), strict=True):
            self.assertGreaterEqual(pause, least)
            self.assertLess(pause, least + 1.0)
        self.assertEqual(len(set(pauses)), 3)

    def test_a_stuck_session_is_waited_out(self) -> None:
        """When the ack to our first init is lost, the remote drops our repeated init as
        stale until the session it made expires, 60 s on: the third try, after the long
        pause, gets through."""
        me, stuck = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [stuck], stuck: [me]})
        mesh.deaf_until[stuck] = self.clock.seconds() + 60.0
        report = run_until_fired(self.clock, self.crawler(mesh).crawl())["dht_crawl"]
        self.assertEqual(len(mesh.asked("self", stuck)), 3)
        self.assertTrue(report["topology"][stuck.hex()]["found"])
        self.assertIn(stuck.hex(), report["nodeinfo"])

    def test_a_key_waiting_to_retry_gives_up_its_place(self) -> None:
        """With one place, a silent key's pauses are used to ask the others."""
        me, dead, a, b = make_keys(4)
        mesh = FakeMesh(self.clock, me, {me: [dead, a, b], a: [me], b: [me]}, silent={dead})
        report = run_until_fired(self.clock, self.crawler(mesh, concurrency=1).crawl())
        self.assertEqual(report["dht_crawl"]["meta"]["nodes_successful"], 3)
        first, second, _ = mesh.asked("self", dead)
        self.assertLess(first, mesh.asked("self", a)[0])
        self.assertLess(mesh.asked("nodeinfo", b)[0], second)
        self.assertEqual(mesh.max_keys_in_flight, 1)

    def test_a_retry_that_succeeds(self) -> None:
        me, shy, quiet = make_keys(3)
        mesh = FakeMesh(
            self.clock,
            me,
            {me: [shy, quiet], shy: [me], quiet: [me]},
            fail_first={("self", shy): 2, ("nodeinfo", quiet): 5},
        )
        report = run_until_fired(self.clock, self.crawler(mesh).crawl())["dht_crawl"]
        self.assertTrue(report["topology"][shy.hex()]["found"])
        self.assertEqual(len(mesh.asked("self", shy)), 3)
        self.assertIn(shy.hex(), report["nodeinfo"])
        # quiet answers getSelf but never NodeInfo: found, without NodeInfo.
        self.assertTrue(report["topology"][quiet.hex()]["found"])
        self.assertNotIn(quiet.hex(), report["nodeinfo"])
        self.assertEqual(len(mesh.asked("nodeinfo", quiet)), 3)
        meta = report["meta"]
        self.assertEqual((meta["nodeinfo_successful"], meta["nodeinfo_failed"]), (2, 1))

    def test_fewer_attempts(self) -> None:
        me, dead = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [dead]}, silent={dead})
        run_until_fired(self.clock, self.crawler(mesh, attempts=1).crawl())
        self.assertEqual(len(mesh.asked("self", dead)), 1)

    def test_deadline(self) -> None:
        """A long line of slow nodes: the walk stops at the deadline with what it has;
        nodes not reached are found: false, and nothing is asked after it."""
        keys = make_keys(30)
        peers = {k: [keys[j] for j in (i - 1, i + 1) if 0 <= j < 30] for i, k in enumerate(keys)}
        mesh = FakeMesh(self.clock, keys[0], peers, delay=1.0)
        started = self.clock.seconds()
        d = self.crawler(mesh, deadline=10.5).crawl()
        report = run_until_fired(self.clock, d)["dht_crawl"]
        self.assertEqual(self.clock.seconds() - started, 10.5)
        self.assertEqual(report["meta"]["crawl_time_seconds"], 10.5)
        found = [k for k in keys if report["topology"].get(k.hex(), {}).get("found")]
        # Two seconds a hop (getSelf, then getPeers): five nodes answered by 10.5 s, the
        # sixth was heard of and asked, but had not answered.
        self.assertEqual(found, keys[:5])
        self.assertFalse(report["topology"][keys[5].hex()]["found"])
        self.assertEqual(report["meta"]["nodes_attempted"], len(report["topology"]))
        asked = len(mesh.calls)
        self.clock.advance(100)
        self.assertEqual(len(mesh.calls), asked)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_deadline_cancels_pending_retries(self) -> None:
        me, dead = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [dead]}, silent={dead})
        run_until_fired(self.clock, self.crawler(mesh, deadline=6.5).crawl())
        self.assertEqual(len(mesh.asked("self", dead)), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cache(self) -> None:
        mesh, _, _ = thirty_node_mesh(self.clock)
        crawler = self.crawler(mesh)
        first = run_until_fired(self.clock, crawler.crawl())
        finished = self.clock.seconds()
        asked = len(mesh.calls)
        # Within five minutes of the end of that crawl: the same result, nothing asked.
        self.clock.advance(CACHE_FOR - 1 - (self.clock.seconds() - finished))
        again: list[Any] = []
        crawler.crawl().addCallback(again.append)
        self.assertEqual(again, [first])
        self.assertIs(again[0], first)
        self.assertEqual(len(mesh.calls), asked)
        self.assertEqual(crawler.crawls, 1)
        # Five minutes on: a new crawl.
        self.clock.advance(1)
        second = run_until_fired(self.clock, crawler.crawl())
        self.assertEqual(crawler.crawls, 2)
        self.assertEqual(len(mesh.calls), 2 * asked)
        self.assertGreater(
            second["dht_crawl"]["meta"]["generated_at_utc"],
            first["dht_crawl"]["meta"]["generated_at_utc"],
        )

    def test_concurrent_callers_share_one_crawl(self) -> None:
        mesh, _, _ = thirty_node_mesh(self.clock)
        crawler = self.crawler(mesh)
        results: list[Any] = []
        crawler.crawl().addCallback(results.append)
        self.clock.advance(1)
        crawler.crawl().addCallback(results.append)
        self.clock.advance(1)
        crawler.crawl().addCallback(results.append)
        self.assertEqual(results, [])
        while not results:
            self.clock.advance(0.1)
        self.assertEqual(len(results), 3)
        self.assertIs(results[0], results[1])
        self.assertIs(results[1], results[2])
        self.assertEqual(crawler.crawls, 1)
        for key in mesh.peer_map:
            self.assertLessEqual(len(mesh.asked("self", key)), 1 if mesh.answers(key) else 3)

    def test_progress(self) -> None:
        mesh, _, _ = thirty_node_mesh(self.clock)
        crawler = self.crawler(mesh)
        idle = crawler.progress()
        self.assertEqual(
            idle,
            {
                "running": False,
                "found": 0,
                "answered": 0,
                "failed": 0,
                "pending": 0,
                "in_flight": 0,
                "elapsed_seconds": 0,
            },
        )
        d = crawler.crawl()
        for _ in range(4):
            self.clock.advance(0.05)
        during = crawler.progress()
        self.assertTrue(during["running"])
        self.assertGreater(during["found"], 1)
        self.assertGreater(during["pending"], 0)
        self.assertGreater(during["in_flight"], 0)
        self.assertEqual(during["elapsed_seconds"], 0.2)
        seen = [during]
        while not d.called:
            self.clock.advance(1)
            seen.append(crawler.progress())
        self.assertEqual([p["found"] for p in seen], sorted(p["found"] for p in seen))
        self.assertEqual([p["answered"] for p in seen], sorted(p["answered"] for p in seen))
        done = crawler.progress()
        self.assertEqual(
            {k: done[k] for k in ("running", "found", "answered", "failed", "pending")},
            {"running": False, "found": 33, "answered": 30, "failed": 3, "pending": 0},
        )
        self.assertEqual(done["in_flight"], 0)
        self.assertEqual(
            done["elapsed_seconds"],
            crawler.crawl().result["dht_crawl"]["meta"]["crawl_time_seconds"],
        )

    def test_malformed_answers(self) -> None:
        """Odd replies are taken for what they are worth: bad coords give [], keys of the
        wrong size are dropped, repeated keys (several links to one peer) listed once."""
        me, a = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [a, a, b"short"], a: [me]}, coords={me: "[1 x]"})
        report = run_until_fired(self.clock, self.crawler(mesh).crawl())["dht_crawl"]
        self.assertEqual(report["topology"][me.hex()]["coords"], [])
        self.assertEqual(report["topology"][me.hex()]["peers"], [a.hex()])
        self.assertEqual(sorted(report["topology"]), sorted([me.hex(), a.hex()]))

    def test_synchronous_answers(self) -> None:
        """An INode that answers at once (no clock involved) is walked without recursion
        trouble, however large the network."""
        keys = make_keys(600)
        peers = {k: [keys[i - 1], keys[(i + 1) % 600]] for i, k in enumerate(keys)}

        class Instant(FakeMesh):
            def _ask(self, kind: str, key: bytes, value: Any) -> Deferred:
                self.calls.append((0.0, kind, key))
                d: Deferred = Deferred()
                d.callback(value)
                return d

        mesh = Instant(self.clock, keys[0], peers)
        results: list[Any] = []
        Crawler(mesh, concurrency=32).crawl().addCallback(results.append)
        self.assertEqual(results[0]["dht_crawl"]["meta"]["nodes_successful"], 600)

    def test_crawl_validates_its_options(self) -> None:
        mesh = FakeMesh(self.clock, b"\x01" * 32, {})
        self.assertRaises(ValueError, Crawl, mesh, self.clock, concurrency=0)
        self.assertRaises(ValueError, Crawl, mesh, self.clock, attempts=0)


class SimulatedRouters:
    """An ``INode`` whose remote answers come from the routers of a simulated network:
    each node's own coordinates, peers and DHT neighbours, 50 ms after the question."""

    def __init__(self, net: SimNetwork, me: int) -> None:
        self.net = net
        self.reactor = net.clock
        self.public_key = net.nodes[me].public
        self.asked = 0

    def _answer(self, key: bytes, read: Any) -> Deferred:
        self.asked += 1
        d: Deferred = Deferred()
        node = self.net.by_key.get(key)
        self.reactor.callLater(0.05, lambda: d.callback(read(node.router, node.index)))
        return d

    def remote_get_self(self, key: bytes, version: str | None = None) -> Deferred:
        if version == "0.5":
            return self._answer(
                key,
                lambda r, i: {"key": key.hex(), "routing_entries": str(len(r.get_tree()))},
            )
        return self._answer(
            key, lambda r, i: {"key": key.hex(), "coords": go_coords(r.get_self().coords)}
        )

    def remote_get_peers(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(key, lambda r, i: [p.key for p in r.get_peers()])

    def remote_get_dht(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(key, lambda r, i: [d.key for d in r.get_dht()])

    def remote_get_tree(self, key: bytes) -> Deferred:
        return self._answer(key, lambda r, i: [t.key for t in r.get_tree()])

    def get_node_info(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(key, lambda r, i: {"index": i})


class SimulatedNetworkTests(SynchronousTestCase):
    def test_walk_a_converged_simulated_network(self) -> None:
        """30 routers in a ring with chords, converged: the walk from one of them finds
        every node, with the peers, DHT neighbours and coordinates its router holds."""
        edges = {(i, (i + 1) % 30) for i in range(30)} | {
            (i, (i + 5) % 30) for i in range(0, 30, 3)
        }
        net = SimNetwork.from_edges(30, sorted(edges), seed=3)
        net.run_until(net.converged, timeout=120, settle=1.0)
        node = SimulatedRouters(net, me=7)
        results: list[Any] = []
        Crawler(node).crawl().addCallback(results.append)
        while not results:
            net.run(0.05)
        report = results[0]["dht_crawl"]
        self.assertEqual(report["meta"]["nodes_successful"], 30)
        self.assertEqual(report["meta"]["nodes_failed"], 0)
        for sim_node in net.nodes:
            entry = report["topology"][sim_node.public.hex()]
            router = sim_node.router
            self.assertTrue(entry["found"])
            self.assertEqual(entry["coords"], list(router.get_self().coords))
            self.assertEqual(
                sorted(entry["peers"]), sorted(p.key.hex() for p in router.get_peers())
            )
            self.assertEqual(sorted(entry["dht"]), sorted(d.key.hex() for d in router.get_dht()))
            self.assertEqual(report["nodeinfo"][sim_node.public.hex()], {"index": sim_node.index})
        self.assertEqual(node.asked, 4 * 30)


class V05WalkTests(SynchronousTestCase):
    """The v0.5 crawl: the same walk over v0.5's questions (getSelf, getPeers, getTree,
    NodeInfo, each asked of the v0.5 network), in getTreeCrawl's shape."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def test_thirty_nodes_over_v05(self) -> None:
        mesh, nodes, silent = thirty_node_mesh(self.clock, versions=("0.4", "0.5"))
        mesh.coords = {k: str(i + 2) for i, k in enumerate(nodes)}  # routing_entries
        crawler = Crawler(mesh, network=V05_NETWORK, rng=MiddleRandom())
        result = run_until_fired(self.clock, crawler.crawl())
        self.assertEqual(list(result), ["tree_crawl"])
        report = result["tree_crawl"]
        topology = report["topology"]
        self.assertEqual(sorted(topology), sorted(k.hex() for k in nodes + silent))
        for i, key in enumerate(nodes):
            entry = topology[key.hex()]
            self.assertEqual(
                list(entry),
                ["ipv6_addr", "ipv6_subnet", "routing_entries", "found", "peers", "tree"],
            )
            self.assertTrue(entry["found"])
            self.assertEqual(entry["routing_entries"], i + 2)
            self.assertEqual(entry["peers"], [k.hex() for k in mesh.peer_map[key]])
            self.assertEqual(entry["tree"], [k.hex() for k in mesh.dht_map[key]])
            for kind in ("self", "peers", "tree", "nodeinfo"):
                self.assertEqual(len(mesh.asked(kind, key)), 1, (kind, key.hex()))
            self.assertEqual(mesh.asked("dht", key), [])
        for key in silent:
            self.assertEqual(
                topology[key.hex()],
                {
                    "ipv6_addr": addr.format_address(addr.address_for_key(key)),
                    "ipv6_subnet": addr.format_subnet(addr.subnet_for_key(key)),
                    "routing_entries": 0,
                    "found": False,
                    "peers": [],
                    "tree": [],
                },
            )
        meta = report["meta"]
        self.assertEqual(
            {k: meta[k] for k in ("nodes_attempted", "nodes_successful", "nodes_failed")},
            {"nodes_attempted": 33, "nodes_successful": 30, "nodes_failed": 3},
        )
        self.assertEqual((meta["version"], meta["crawler"]), ("0.5", nodes[0].hex()))
        # What the map makes of it: every node on v0.5, the crawler marked by meta alone.
        from ygg.popura.crawler import map as crawl_map

        cmap = crawl_map.crawl_map([result])
        self.assertEqual(cmap.versions(), {"0.5": 33})
        self.assertEqual(cmap.crawler.key, nodes[0].hex())  # type: ignore[union-attr]

    def test_same_bounds_as_v04(self) -> None:
        """Places, tries and the deadline are the walk's, whichever the network."""
        me, dead = make_keys(2)
        mesh = FakeMesh(self.clock, me, {me: [dead]}, silent={dead}, versions=("0.5",))
        crawler = Crawler(mesh, network=V05_NETWORK, rng=MiddleRandom())
        report = run_until_fired(self.clock, crawler.crawl())["tree_crawl"]
        first, second, third = mesh.asked("self", dead)
        self.assertAlmostEqual(second - first, TIMEOUT + 1.5)
        self.assertAlmostEqual(third - second, TIMEOUT + 60.5)
        self.assertFalse(report["topology"][dead.hex()]["found"])
        mesh, _, _ = thirty_node_mesh(Clock(), versions=("0.5",))
        run_until_fired(mesh.reactor, Crawler(mesh, network=V05_NETWORK, concurrency=4).crawl())
        self.assertEqual(mesh.max_keys_in_flight, 4)

    def test_routing_entries(self) -> None:
        for text, count in (("5", 5), ("0", 0), ("-3", 0), ("x", 0), (None, 0), (True, 0)):
            self.assertEqual(parse_count(text), count, text)

    def test_walk_a_converged_simulated_v05_network(self) -> None:
        """30 v0.5 routers in a ring with chords: every node found, with the peers and
        tree keys its router holds."""
        edges = {(i, (i + 1) % 30) for i in range(30)} | {
            (i, (i + 5) % 30) for i in range(0, 30, 3)
        }
        net = SimNetwork.from_edges(30, sorted(edges), seed=3, protocol="0.5")
        net.run_until(net.converged, timeout=120, settle=1.0)
        node = SimulatedRouters(net, me=7)
        results: list[Any] = []
        Crawler(node, network=V05_NETWORK).crawl().addCallback(results.append)
        while not results:
            net.run(0.05)
        report = results[0]["tree_crawl"]
        self.assertEqual(report["meta"]["nodes_successful"], 30)
        for sim_node in net.nodes:
            entry = report["topology"][sim_node.public.hex()]
            router = sim_node.router
            self.assertEqual(
                sorted(entry["peers"]), sorted({p.key.hex() for p in router.get_peers()})
            )
            self.assertEqual(sorted(entry["tree"]), sorted(t.key.hex() for t in router.get_tree()))
            self.assertEqual(entry["routing_entries"], len(router.get_tree()))


class CoordsTests(SynchronousTestCase):
    def test_parse(self) -> None:
        self.assertEqual(parse_coords("[]"), [])
        self.assertEqual(parse_coords("[1]"), [1])
        self.assertEqual(parse_coords("[1 4 2]"), [1, 4, 2])
        self.assertEqual(parse_coords(" [18446744073709551615 3] "), [2**64 - 1, 3])
        for bad in ("", "1 2", "[1 x]", "[-1]", None, [1, 2], 5):
            self.assertEqual(parse_coords(bad), [], bad)


class ServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.mesh, self.nodes, _ = thirty_node_mesh(self.clock)

    def test_admin_methods(self) -> None:
        service = crawler_feature.makeService(self.mesh, DHTCrawlerConfig(enable=True))
        self.assertIsInstance(service, CrawlerService)
        self.assertEqual(self.mesh.registry.list_entries(), [])  # registered at start
        service.startService()
        listed = {e["command"]: e for e in self.mesh.registry.list_entries()}
        self.assertIn("getdhtcrawl", listed)
        self.assertIn("getdhtcrawlprogress", listed)
        self.assertNotIn("fields", listed["getdhtcrawl"])
        d = self.mesh.call_admin("getDHTCrawl")
        progress: list[Any] = []
        self.clock.advance(0.1)
        self.mesh.call_admin("getdhtcrawlprogress").addCallback(progress.append)
        self.assertTrue(progress[0]["running"])
        result = run_until_fired(self.clock, d)
        self.assertEqual(result["dht_crawl"]["meta"]["nodes_successful"], 30)

    def test_one_crawler_per_network(self) -> None:
        """A dual node has both crawls, each with its methods; a v0.5 node only
        getTreeCrawl."""
        for versions, methods in (
            (("0.4",), {"getdhtcrawl", "getdhtcrawlprogress"}),
            (("0.5",), {"gettreecrawl", "gettreecrawlprogress"}),
            (
                ("0.4", "0.5"),
                {"getdhtcrawl", "getdhtcrawlprogress", "gettreecrawl", "gettreecrawlprogress"},
            ),
        ):
            mesh, _, _ = thirty_node_mesh(Clock(), versions=versions)
            service = CrawlerService(mesh, DHTCrawlerConfig(enable=True))
            service.startService()
            self.assertEqual({e["command"] for e in mesh.registry.list_entries()}, methods)
            service.stopService()
        mesh, _, _ = thirty_node_mesh(Clock(), versions=("0.4", "0.5"))
        CrawlerService(mesh, DHTCrawlerConfig(enable=True)).startService()
        d4, d5 = mesh.call_admin("getDHTCrawl"), mesh.call_admin("getTreeCrawl")
        self.assertTrue(self.successResultOf(mesh.call_admin("getTreeCrawlProgress"))["running"])
        five = run_until_fired(mesh.reactor, d5)
        four = run_until_fired(mesh.reactor, d4)
        self.assertEqual(four["dht_crawl"]["meta"]["version"], "0.4")
        self.assertEqual(five["tree_crawl"]["meta"]["version"], "0.5")
        self.assertEqual(five["tree_crawl"]["meta"]["nodes_successful"], 30)
        self.assertFalse(self.successResultOf(mesh.call_admin("getTreeCrawlProgress"))["running"])

    def test_metrics(self) -> None:
        """Walks by result and what the last one found (docs/metrics.md)."""
        service = CrawlerService(self.mesh, DHTCrawlerConfig(enable=True))
        service.startService()
        (collector,) = self.mesh.collectors
        d = self.mesh.call_admin("getDHTCrawl")
        self.clock.advance(0.1)
        found = scrape.samples(scrape.page(collector))
        self.assertEqual(scrape.value(found, "ygg_crawler_running", version="0.4"), 1)
        self.assertEqual(scrape.named(found, "ygg_crawler_last_nodes"), {})  # nothing finished yet
        meta = run_until_fired(self.clock, d)["dht_crawl"]["meta"]
        found = scrape.samples(scrape.page(collector))
        self.assertEqual(scrape.value(found, "ygg_crawler_running", version="0.4"), 0)
        self.assertEqual(
            scrape.value(found, "ygg_crawler_runs_total", version="0.4", result="finished"), 1
        )
        self.assertEqual(
            scrape.value(found, "ygg_crawler_runs_total", version="0.4", result="failed"), 0
        )
        self.assertEqual(meta["nodes_successful"], 30)
        for kind, key in (
            ("attempted", "nodes_attempted"),
            ("answered", "nodes_successful"),
            ("nodeinfo", "nodeinfo_successful"),
        ):
            self.assertEqual(
                scrape.value(found, "ygg_crawler_last_nodes", version="0.4", kind=kind), meta[key]
            )
        self.assertEqual(
            scrape.value(found, "ygg_crawler_last_duration_seconds", version="0.4"),
            meta["crawl_time_seconds"],
        )
        self.assertEqual(
            scrape.value(found, "ygg_crawler_last_finished_timestamp_seconds", version="0.4"),
            meta["generated_at_utc"],
        )

    def test_stop_during_a_crawl(self) -> None:
        service = CrawlerService(self.mesh, DHTCrawlerConfig(enable=True))
        service.startService()
        d = self.mesh.call_admin("getDHTCrawl")
        self.clock.advance(0.5)
        service.stopService()
        failure = self.failureResultOf(d, AdminError)
        self.assertEqual(str(failure.value), "The crawler was stopped")
        asked = len(self.mesh.calls)
        self.clock.advance(60)
        self.assertEqual(len(self.mesh.calls), asked)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FeatureTests(SynchronousTestCase):
    def test_plugin(self) -> None:
        verifyObject(IFeature, crawler_feature)
        self.assertIn("crawler", [f.name for f in features.discover(refresh=True).features])

    def test_off_unless_enabled(self) -> None:
        self.assertFalse(features.feature_config(crawler_feature, NodeConfig()).enable)
        cfg, _ = parse('{"DHTCrawler": {"Enable": true}}')
        self.assertTrue(features.feature_config(crawler_feature, cfg).enable)
        switched = features.feature_config(crawler_feature, NodeConfig(), {"dhtcrawler": True})
        self.assertTrue(switched.enable)

    def test_yggdrasil_style_switch(self) -> None:
        """``-dhtcrawler`` is one of yggdrasil's flags that ``ygg`` takes."""
        from ygg import cli as ygg_cli

        bools, values = ygg_cli._feature_flags()
        self.assertIn("dhtcrawler", bools)
        self.assertNotIn("dhtcrawler", values)

    def test_the_plugin_module_is_cheap(self) -> None:
        """Neither the feature's module nor the CLI's imports the walk."""
        code = (
            "import sys, ygg.popura.crawler, ygg.popura.crawler.command; "
            "print('ygg.popura.crawler.service' in sys.modules, "
            "'twisted.internet.defer' in sys.modules)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        self.assertEqual(out.stdout.split(), ["False", "False"], out.stderr)


# --------------------------------------------------------------------------- ygg crawl


class FakeAdminSocket:
    """A unix admin socket in a thread: holds the getDHTCrawl reply (and getTreeCrawl's,
    ``tree_reply``) until it has answered ``progress_before`` progress requests, as a
    crawl in progress would.  ``listing``: its reply to ``list`` (else an error)."""

    def __init__(
        self,
        path: str,
        *,
        crawl_reply: dict | str,
        tree_reply: dict | None = None,
        listing: dict | None = None,
        progress: list[dict] | None = None,
        progress_before: int = 0,
    ) -> None:
        self.path = path
        self.crawl_reply = crawl_reply
        self.tree_reply = tree_reply
        self.listing = listing
        self.progress = list(progress or [])
        self.progress_before = progress_before
        self.requests: list[str] = []
        self.progress_served = threading.Semaphore(0)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            name = json.loads(data)["request"]
            self.requests.append(name)
            if name == "list" and self.listing is not None:
                reply = {"status": "success", "request": None, "response": self.listing}
            elif name == "getDHTCrawl" or (name == "getTreeCrawl" and self.tree_reply):
                for _ in range(self.progress_before):
                    if not self.progress_served.acquire(timeout=10):
                        return
                crawl_reply = self.crawl_reply if name == "getDHTCrawl" else self.tree_reply
                if isinstance(crawl_reply, str):  # a reply's text as the node wrote it
                    conn.sendall(crawl_reply.encode())
                    return
                reply = crawl_reply  # type: ignore[assignment]
            elif name.endswith("CrawlProgress") and self.progress:
                # The last report is repeated for any later request.
                report = self.progress.pop(0) if len(self.progress) > 1 else self.progress[0]
                reply = {"status": "success", "request": None, "response": report}
                conn.sendall(json.dumps(reply, indent=2).encode() + b"\n")
                self.progress_served.release()
                return
            else:
                reply = {
                    "status": "error",
                    "error": f"Unknown action '{name.lower()}', try 'list' for help",
                    "request": None,
                    "response": None,
                }
                if name.endswith("Progress"):
                    self.progress_served.release()
            conn.sendall(json.dumps(reply, indent=2).encode() + b"\n")

    def close(self) -> None:
        self.stopping = True
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


RESULT = {
    "dht_crawl": {
        "meta": {
            "generated_at_utc": 1700000000,
            "nodes_attempted": 3,
            "nodes_successful": 2,
            "crawl_time_seconds": 1.5,
            "nodes_failed": 1,
            "nodeinfo_successful": 2,
            "nodeinfo_failed": 0,
        },
        "topology": {},
        "nodeinfo": {"aa": {"ratio": 1e-07, "n": 1.0}},
    }
}
RESULT_TEXT = """{"dht_crawl": {"meta": {"generated_at_utc": 1700000000, "nodes_attempted": 3,
"nodes_successful": 2, "crawl_time_seconds": 1.5, "nodes_failed": 1, "nodeinfo_successful": 2,
"nodeinfo_failed": 0}, "topology": {}, "nodeinfo": {"aa": {"ratio": 1e-7, "n": 1.0}}}}"""


def running(found: int, answered: int, pending: int) -> dict:
    return {
        "running": True,
        "found": found,
        "answered": answered,
        "failed": 0,
        "pending": pending,
        "elapsed_seconds": 1.0,
    }


class CrawlCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygc", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.path = os.path.join(self.dir, "admin.sock")
        self.endpoint = f"unix://{self.path}"

    def serve(self, **kwargs: Any) -> FakeAdminSocket:
        server = FakeAdminSocket(self.path, **kwargs)
        self.addCleanup(server.close)
        return server

    def test_progress_while_the_crawl_runs(self) -> None:
        reply = '{"status": "success", "request": null, "response": ' + RESULT_TEXT + "}\n"
        server = self.serve(
            crawl_reply=reply,
            progress=[running(1, 0, 1), running(5, 1, 4), running(5, 1, 4), running(9, 6, 3)],
            progress_before=4,
        )
        out_file = os.path.join(self.dir, "crawl.json")
        err = io.StringIO()
        code = cli.main(
            ["--endpoint", self.endpoint, "--out", out_file, "--interval", "0.02"], err=err
        )
        self.assertEqual(code, 0, err.getvalue())
        # A node whose list will not say: its v0.4 crawl.
        self.assertEqual(server.requests[:2], ["list", "getDHTCrawl"])
        self.assertEqual(server.requests[2:6], ["getDHTCrawlProgress"] * 4)
        lines = err.getvalue().splitlines()
        self.assertEqual(
            lines,
            [
                "crawl: 1 nodes found, 0 answered, 1 pending (1 s)",
                "crawl: 5 nodes found, 1 answered, 4 pending (1 s)",
                "crawl: 9 nodes found, 6 answered, 3 pending (1 s)",
                "crawl: done: 3 nodes, 2 answered, 2 with NodeInfo, in 1.5 s",
            ],
        )
        with open(out_file) as f:
            text = f.read()
        self.assertEqual(json.loads(text), RESULT)
        # Numbers written as the node sent them.
        self.assertIn('"ratio": 1e-7', text)
        self.assertIn('"n": 1.0', text)

    def test_standard_output_and_no_progress_method(self) -> None:
        reply = {"status": "success", "request": None, "response": RESULT}
        self.serve(crawl_reply=reply, progress_before=1)
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["-endpoint", self.endpoint, "--interval", "0.02"], out=out, err=err)
        self.assertEqual(code, 0, err.getvalue())
        self.assertEqual(json.loads(out.getvalue()), RESULT)
        self.assertIn("crawl: no progress reports (Unknown action", err.getvalue())

    def test_both_networks_at_once(self) -> None:
        """A node listing both crawls: both run at once, each with its progress lines
        and summary, and the output is the list of both replies."""
        tree = {"tree_crawl": dict(RESULT["dht_crawl"], meta=dict(RESULT["dht_crawl"]["meta"]))}
        tree["tree_crawl"]["meta"].update(version="0.5", nodes_attempted=7)
        server = self.serve(
            crawl_reply={"status": "success", "request": None, "response": RESULT},
            tree_reply={"status": "success", "request": None, "response": tree},
            listing={"list": [{"command": c} for c in ("getdhtcrawl", "gettreecrawl", "list")]},
            progress=[running(1, 0, 1), running(4, 2, 2)],
            progress_before=4,
        )
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["--endpoint", self.endpoint, "--interval", "0.02"], out=out, err=err)
        self.assertEqual(code, 0, err.getvalue())
        self.assertEqual(json.loads(out.getvalue()), [RESULT, tree])
        self.assertEqual(server.requests[0], "list")
        self.assertEqual(sorted(server.requests[1:3]), ["getDHTCrawl", "getTreeCrawl"])
        self.assertIn("getTreeCrawlProgress", server.requests)
        self.assertIn("getDHTCrawlProgress", server.requests)
        lines = err.getvalue().splitlines()
        self.assertTrue(any(x.startswith("crawl v0.5: ") and "found" in x for x in lines))
        self.assertEqual(
            lines[-2:],
            [
                "crawl v0.4: done: 3 nodes, 2 answered, 2 with NodeInfo, in 1.5 s",
                "crawl v0.5: done: 7 nodes, 2 answered, 2 with NodeInfo, in 1.5 s",
            ],
        )

    def test_one_network_by_name(self) -> None:
        tree = {"tree_crawl": RESULT["dht_crawl"]}
        server = self.serve(
            crawl_reply={"status": "success", "request": None, "response": RESULT},
            tree_reply={"status": "success", "request": None, "response": tree},
        )
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--endpoint", self.endpoint, "--network", "0.5", "--interval", "5"], out=out, err=err
        )
        self.assertEqual(code, 0, err.getvalue())
        self.assertEqual(json.loads(out.getvalue()), tree)
        self.assertEqual(server.requests, ["getTreeCrawl"])
        self.assertEqual(
            err.getvalue(), "crawl: done: 3 nodes, 2 answered, 2 with NodeInfo, in 1.5 s\n"
        )

    def test_error_from_the_node(self) -> None:
        reply = {
            "status": "error",
            "error": "Unknown action 'getdhtcrawl', try 'list' for help",
            "request": None,
            "response": None,
        }
        self.serve(crawl_reply=reply)
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["--endpoint", self.endpoint], out=out, err=err)
        self.assertEqual(code, 1)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(
            err.getvalue(), "ygg crawl: Unknown action 'getdhtcrawl', try 'list' for help\n"
        )

    def test_nobody_listening(self) -> None:
        err = io.StringIO()
        self.assertEqual(cli.main(["--endpoint", self.endpoint], err=err), 1)
        self.assertIn(f"ygg crawl: cannot reach the admin socket {self.endpoint}", err.getvalue())
        err = io.StringIO()
        self.assertEqual(cli.main(["--endpoint", "tcp://localhost:port"], err=err), 1)
        self.assertIn("cannot reach the admin socket", err.getvalue())

    def test_default_endpoint(self) -> None:
        conf = os.path.join(self.dir, "yggdrasil.conf")
        self.assertEqual(cli.default_endpoint(conf), cli.DEFAULT_ENDPOINT)
        with open(conf, "w") as f:
            f.write('{\n  AdminListen: "tcp://localhost:9001"\n}\n')
        self.assertEqual(cli.default_endpoint(conf), "tcp://localhost:9001")
        with open(conf, "w") as f:
            f.write('{ AdminListen: "none" }')
        self.assertEqual(cli.default_endpoint(conf), cli.DEFAULT_ENDPOINT)
        with open(conf, "w") as f:
            f.write("{ IfName: auto }")
        self.assertEqual(cli.default_endpoint(conf), cli.DEFAULT_ENDPOINT)
        with open(conf, "w") as f:
            f.write("{ not hjson")
        self.assertEqual(cli.default_endpoint(conf), cli.DEFAULT_ENDPOINT)
