"""A deterministic network of real routers on one :class:`~ygg.sim.clock.SimClock`.

Every node is an unmodified router of the protocol chosen: v0.4's
:class:`ygg.network.router.Router` (the default) or v0.5's
:class:`ygg.v05.network.router.Router`, each behind a small adapter (:data:`PROTOCOLS`)
that knows how to build it, where a probe's payload sits in its traffic frames and what
"converged" means for it.  Links are in-memory pipes that deliver each frame body to the
other side after a fixed delay.  Keys (and v0.5's nonces) come from the seed, time only
moves when the simulation advances the clock, and nothing else is random that affects
routing, so a run is reproducible and any routing bug can be replayed.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.network import wire
from ygg.network.peers import LinkError, Peer
from ygg.network.router import Router
from ygg.sim.clock import SimClock
from ygg.v05.network import wire as wire05
from ygg.v05.network.router import Router as Router05

START_TIME = 1_700_000_000.0
_PROBE = b"ygg-sim"  # payloads the simulator sends carry this, then a u64 packet id
_PROBE_ID = struct.Struct(">Q")


@dataclass
class SimNode:
    index: int
    key: NodeKey
    router: Router
    up: bool = True
    received: list[tuple[bytes, bytes]] = field(default_factory=list)
    received_oob: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)

    @property
    def public(self) -> bytes:
        return self.key.public


class _V04:
    """v0.4: ironwood ec61cea's tree, DHT and source routes."""

    name = "0.4"

    @staticmethod
    def make_router(net: SimNetwork, node: SimNode) -> Any:
        return Router(
            node.key,
            net.clock,
            deliver=lambda source, payload: node.received.append((source, payload)),
            deliver_oob=lambda source, dest, payload: node.received_oob.append(
                (source, dest, payload)
            ),
        )

    @staticmethod
    def payload_offset(body: bytes) -> int | None:
        if not body or body[0] not in (wire.DHT_TRAFFIC, wire.PATH_TRAFFIC):
            return None
        try:
            offset = 1 if body[0] == wire.DHT_TRAFFIC else wire.split_path_traffic(body)[1]
        except DecodeError:
            return None
        return offset + wire.TRAFFIC_HEADER

    @staticmethod
    def root_view(router: Any) -> tuple[bytes, int]:
        return router.tree.self.root, router.tree.self.seq

    @staticmethod
    def has_path(router: Any, key: bytes) -> bool:
        return router.pathfinder.get_path(key) is not None

    @staticmethod
    def converged(net: SimNetwork) -> bool:
        return net.root_agreed() and net.dht_converged()


class _V05:
    """v0.5: ironwood 743fe2f's tree CRDT, bloom filters and greedy tree routing."""

    name = "0.5"

    @staticmethod
    def make_router(net: SimNetwork, node: SimNode) -> Any:
        nonces = random.Random(node.key.public)  # seeded per key: reproducible
        return Router05(
            node.key,
            net.clock,
            deliver=lambda source, payload: node.received.append((source, payload)),
            nonce=lambda: nonces.getrandbits(64),
        )

    @staticmethod
    def payload_offset(body: bytes) -> int | None:
        if not body or body[0] != wire05.TRAFFIC:
            return None
        try:
            return wire05.traffic_header(body).payload_offset
        except DecodeError:
            return None

    @staticmethod
    def root_view(router: Any) -> tuple[bytes, int]:
        tree = router.tree
        root = tree.root(router.public_key)
        info = tree.info(root)
        return root, info.seq if info is not None else -1

    @staticmethod
    def has_path(router: Any, key: bytes) -> bool:
        return router.has_path(key)

    @staticmethod
    def converged(net: SimNetwork) -> bool:
        """One root, the lowest key, for everyone, reached through parents that are
        neighbours; and every bloom filter settled: the last one each node sent is the one
        its neighbour holds, and the next tick would send nothing new."""
        live = net.live()
        root = net.expected_root()
        if not net.root_agreed() or _V05.root_view(live[0].router)[0] != root:
            return False
        for node in live:
            own = node.router.tree.info(node.public)
            if own is None or (own.parent != node.public and own.parent not in node.router.peers):
                return False
            blooms = node.router.blooms
            if not blooms.settled():
                return False
            for key, state in blooms.states.items():
                if not state.on_tree:
                    continue
                other = net.by_key[key].router.blooms.states.get(node.public)
                if other is None or other.recv != state.send:
                    return False
        return True


#: The protocol adapters, by the name ``--protocol`` takes.
PROTOCOLS = {"0.4": _V04, "0.5": _V05}


class SimLink:
    """One direction of an in-memory link: what a Peer writes with."""

    def __init__(self, net: SimNetwork, pair: SimPair, to_side: int) -> None:
        self.net = net
        self.pair = pair
        self.to_side = to_side
        self.frames = 0
        self.bytes = 0

    def write_body(self, body: bytes) -> None:
        pair = self.pair
        if pair.closed:
            return
        self.frames += 1
        self.bytes += len(body)
        self.net.frames_total += 1
        self.net.clock.callLater(pair.delay, self.net._deliver, pair, self.to_side, bytes(body))

    def close(self, reason: str) -> None:
        self.net._close_pair(self.pair, reason)


class SimPair:
    """Both directions of one link and the two peers it joined."""

    def __init__(self, a: SimNode, b: SimNode, delay: float) -> None:
        self.nodes = (a, b)
        self.delay = delay
        self.peers: list[Peer | None] = [None, None]
        self.closed = False
        self.reason = ""


class SimNetwork:
    def __init__(
        self, seed: int = 0, delay: float = 0.005, clock: Any = None, protocol: str = "0.4"
    ) -> None:
        # Roots use the time in seconds as their sequence number and the link-start
        # announcement uses 0, so the simulation starts at a realistic time.
        if clock is None:
            clock = SimClock(START_TIME)
        elif clock.seconds() < START_TIME:
            clock.advance(START_TIME - clock.seconds())
        self.clock = clock
        self.protocol = PROTOCOLS[protocol]
        self.rng = random.Random(seed)
        self.delay = delay
        self.nodes: list[SimNode] = []
        self.pairs: dict[tuple[int, int], SimPair] = {}
        self.closed_links: list[tuple[tuple[int, int], str]] = []
        self.hops: dict[int, int] = {}  # probe id -> traffic frames it crossed
        self.frames_total = 0
        self._next_probe = 0
        self.by_key: dict[bytes, SimNode] = {}

    # -- building -------------------------------------------------------------------------

    def add_node(self, key: NodeKey | None = None) -> SimNode:
        if key is None:
            key = NodeKey.from_seed(self.rng.randbytes(32))
        node = self._make_node(len(self.nodes), key)
        self.nodes.append(node)
        return node

    def _make_node(self, index: int, key: NodeKey) -> SimNode:
        node = SimNode(index, key, None)  # type: ignore[arg-type]
        node.router = self.protocol.make_router(self, node)
        self.by_key[key.public] = node
        return node

    @classmethod
    def from_edges(
        cls,
        n: int,
        edges: Iterable[tuple[int, int]],
        seed: int = 0,
        delay: float = 0.005,
        protocol: str = "0.4",
    ) -> SimNetwork:
        net = cls(seed=seed, delay=delay, protocol=protocol)
        for _ in range(n):
            net.add_node()
        for a, b in edges:
            net.link(a, b)
        return net

    def link(
        self, a: int, b: int, delay: float | None = None, prio: tuple[int, int] = (0, 0)
    ) -> SimPair:
        """Connect nodes ``a`` and ``b`` (both sides add the peer at once, as after a
        handshake)."""
        key = (min(a, b), max(a, b))
        if key in self.pairs and not self.pairs[key].closed:
            raise ValueError(f"nodes {a} and {b} are already linked")
        na, nb = self.nodes[a], self.nodes[b]
        pair = SimPair(na, nb, self.delay if delay is None else delay)
        self.pairs[key] = pair
        pair.peers[0] = na.router.add_peer(nb.public, SimLink(self, pair, 1), prio[0])
        pair.peers[1] = nb.router.add_peer(na.public, SimLink(self, pair, 0), prio[1])
        return pair

    def cut(self, a: int, b: int) -> None:
        pair = self.pairs.get((min(a, b), max(a, b)))
        if pair is not None and not pair.closed:
            self._close_pair(pair, "cut")

    def restore(self, a: int, b: int) -> SimPair:
        return self.link(a, b)

    def stop_node(self, index: int) -> list[int]:
        """Take a node down: all its links close.  Returns its neighbours."""
        node = self.nodes[index]
        node.up = False
        neighbours = []
        for (a, b), pair in list(self.pairs.items()):
            if index in (a, b) and not pair.closed:
                self._close_pair(pair, "node stopped")
                neighbours.append(b if a == index else a)
        return neighbours

    def start_node(self, index: int, neighbours: Iterable[int]) -> SimNode:
        """Bring a stopped node back as a fresh router (same key), linked to ``neighbours``."""
        old = self.nodes[index]
        old.router.close()
        node = self.nodes[index] = self._make_node(index, old.key)
        for other in neighbours:
            if self.nodes[other].up:
                self.link(index, other)
        return node

    # -- frames ---------------------------------------------------------------------------

    def _deliver(self, pair: SimPair, side: int, body: bytes) -> None:
        peer = pair.peers[side]
        if pair.closed or peer is None:
            return
        start = self.protocol.payload_offset(body)
        if start is not None:
            self._trace(body, start)
        try:
            peer.handle_body(body)
        except (LinkError, DecodeError) as e:  # v0.5's LinkError is a DecodeError
            self._close_pair(pair, f"{type(e).__name__}: {e}")

    def _trace(self, body: bytes, start: int) -> None:
        if body[start : start + len(_PROBE)] == _PROBE:
            (probe,) = _PROBE_ID.unpack_from(body, start + len(_PROBE))
            self.hops[probe] = self.hops.get(probe, 0) + 1

    def _close_pair(self, pair: SimPair, reason: str) -> None:
        if pair.closed:
            return
        pair.closed = True
        pair.reason = reason
        a, b = pair.nodes
        self.closed_links.append(((a.index, b.index), reason))
        for side, node in ((0, a), (1, b)):
            peer = pair.peers[side]
            if peer is not None:
                node.router.remove_peer(peer)

    # -- running --------------------------------------------------------------------------

    def run(self, seconds: float, step: float = 0.05) -> None:
        """Advance simulated time, firing timers and delivering frames in order."""
        end = self.clock.seconds() + seconds
        while self.clock.seconds() < end - 1e-9:
            self.clock.advance(min(step, end - self.clock.seconds()))

    def run_until(
        self, done: Callable[[], bool], timeout: float, step: float = 0.1, settle: float = 0.0
    ) -> float:
        """Run until ``done()`` holds (and has held for ``settle`` seconds); returns the
        simulated time it took.  Raises TimeoutError past ``timeout``."""
        start = self.clock.seconds()
        since: float | None = None
        while True:
            now = self.clock.seconds()
            if done():
                since = now if since is None else since
                if now - since >= settle:
                    return now - start
            else:
                since = None
            if now - start > timeout:
                raise TimeoutError(f"not done after {timeout} simulated seconds")
            self.run(step, step)

    # -- observing ------------------------------------------------------------------------

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes if n.up]

    def root_agreed(self) -> bool:
        view = self.protocol.root_view
        return len({view(n.router) for n in self.live()}) == 1

    def expected_root(self) -> bytes:
        return min(n.public for n in self.live())

    def dht_converged(self) -> bool:
        """Every non-root node has a current path to its true predecessor, and every node
        with a successor knows it (the ring is closed)."""
        live = sorted(self.live(), key=lambda n: n.public)
        keys = [n.public for n in live]
        for i, node in enumerate(live):
            tree, dht = node.router.tree, node.router.dht
            if tree.self.root != keys[0] or tree.wait:
                return False
            if i == 0:
                continue
            prev = dht.prev
            if (
                prev is None
                or prev.root_seq != tree.self.seq
                or dht.dest_keys.get(prev) != keys[i - 1]
            ):
                return False
        return True

    def converged(self) -> bool:
        return self.protocol.converged(self)

    def has_path(self, src: int, dst: int) -> bool:
        """``src`` knows a route to ``dst`` (v0.4: a source route; v0.5: its coords)."""
        return self.protocol.has_path(self.nodes[src].router, self.nodes[dst].public)

    def frames_sent(self) -> int:
        """Frames written on every link so far (both directions, closed links included)."""
        return self.frames_total

    def send_probe(self, src: int, dst: int) -> int:
        """Network-layer traffic from ``src`` to ``dst`` carrying a fresh probe id."""
        probe = self._next_probe
        self._next_probe += 1
        self.hops[probe] = 0
        payload = _PROBE + _PROBE_ID.pack(probe)
        self.nodes[src].router.send(self.nodes[dst].public, payload)
        return probe

    def delivered(self, dst: int, probe: int) -> bool:
        payload = _PROBE + _PROBE_ID.pack(probe)
        return any(p == payload for _, p in self.nodes[dst].received)

    def dht_sizes(self) -> list[int]:
        return [len(n.router.dht.records) for n in self.live()]

    def tree_sizes(self) -> list[int]:
        """v0.5: infos held per node (getSelf's routing_entries)."""
        return [len(n.router.tree.infos) for n in self.live()]

    def bloom_occupancy(self) -> list[float]:
        """v0.5: the fraction of bits set in each filter a node last sent on the tree."""
        out = []
        for n in self.live():
            for state in n.router.blooms.states.values():
                if state.on_tree:
                    out.append(state.send.bit_count() / wire05.BLOOM_BITS)
        return out
