"""The v0.5 routing core of one node (ironwood 743fe2f ``network/``), sans-IO.

Shaped like :class:`ygg.network.router.Router` so the link layer can hand a link to
either version the same way: ``add_peer``/``remove_peer`` for links (each link then gets
its frame bodies through :meth:`Peer.handle_body`), ``send`` for traffic (``send_untracked``
for answers that must keep no state), ``lookup`` for a key or a partial key (the IPv6
layer's address lookups, spec §7.4), the ``deliver`` and ``path_notify`` callables for what
arrives, and ``get_self``/``get_peers``/``get_tree``/``get_paths`` for the admin API.
Time comes from the ``IReactorTime`` handed in; the maintenance tick runs every second on
it.

Forwarding uses 0.5.12's next-hop rule (lowest cost per unit of tree distance gained);
0.5.13 minimises cost × remaining distance instead.  Both only ever move a packet strictly
closer in tree distance (the watermark), so they interoperate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ygg.errors import DecodeError
from ygg.keys import PUBLIC_KEY_SIZE, NodeKey, VerifyCache
from ygg.timers import cancel
from ygg.v05.network import wire
from ygg.v05.network.filters import Blooms
from ygg.v05.network.pathfinder import Pathfinder
from ygg.v05.network.peers import LinkError, LinkIO, Peer
from ygg.v05.network.tree import INFINITE, Tree

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall, IReactorTime

TICK = 1.0  # the router's maintenance period
HOP_CACHE = 4096  # next hops kept by path (a table of many more is started afresh)
MTU = wire.NETWORK_MTU  # 130993: the largest payload ``send`` takes

#: One cache for every router in the process (the simulator's nodes see the same
#: signatures); a hit is as strong as a fresh check.
_SHARED_VERIFIER = VerifyCache()


def _random_nonce() -> int:
    return int.from_bytes(os.urandom(8), "big")


@dataclass(frozen=True, slots=True)
class SelfInfo:
    key: bytes
    root: bytes
    coords: tuple[int, ...]
    routing_entries: int  # infos held (getSelf's routing_entries)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    key: bytes
    root: bytes
    port: int
    priority: int
    cost: int
    latency: float | None  # seconds: the last sigReq round trip, None before one
    bytes_recvd: int
    bytes_sent: int
    uptime: float
    link: Any


@dataclass(frozen=True, slots=True)
class TreeInfo:
    key: bytes
    parent: bytes
    sequence: int


@dataclass(frozen=True, slots=True)
class PathInfo:
    key: bytes
    path: tuple[int, ...]  # the destination's coords
    sequence: int


class Router:
    def __init__(
        self,
        key: NodeKey,
        clock: IReactorTime,
        deliver: Callable[[bytes, bytes], None],
        path_notify: Callable[[bytes], None] | None = None,
        verifier: VerifyCache | None = None,
        nonce: Callable[[], int] | None = None,
        tree_notify: Callable[[], None] | None = None,
    ) -> None:
        """``deliver(source, payload)`` gets traffic for us; ``path_notify(key)`` hears of
        every key a path was found to (yggdrasil's key store); ``nonce`` draws the 64-bit
        sigReq nonces (random; tests and the simulator pass a seeded source);
        ``tree_notify()`` hears that some tree info changed (it may not call back in)."""
        self.node_key = key
        self.public_key = key.public
        self.clock = clock
        self.deliver = deliver
        self.path_notify = path_notify
        self.verify = (verifier or _SHARED_VERIFIER).verify
        self.new_nonce = nonce or _random_nonce
        self.peers: dict[bytes, dict[Peer, None]] = {}  # key -> its links, oldest first
        self.ports: dict[bytes, int] = {}
        self._used_ports: set[int] = set()
        self._order = 0
        #: The link the traffic being delivered came in on (None: our own), for ``deliver``.
        self.arrival: Peer | None = None
        # The source of the traffic being handled, and the body and offset of its from
        # path (decoded only if ``send_untracked`` needs it).
        self._arrival_source: bytes | None = None
        self._arrival_body: bytes = b""
        self._arrival_from = 0
        # Next hops by a traffic body's path bytes: (distance from us, link or None, the
        # path).  Bumping ``route_epoch`` (coords, links or costs changed) empties it.
        self._hops: dict[bytes, tuple[int, Peer | None, tuple[int, ...]]] = {}
        #: Bumped when a next hop chosen before may no longer be the one chosen now.
        self.route_epoch = 0
        #: Answers ``send_untracked`` had no way to route (no path, not a reply).
        self.untracked_dropped = 0
        self.closed = False
        #: Bumped whenever the tree changes (lets callers notice convergence).
        self.version = 0
        self.tree_notify = tree_notify
        self.tree = Tree(self)
        self.blooms = Blooms(self)
        self.pathfinder = Pathfinder(self)
        self._tick_timer: IDelayedCall | None = None
        self._tick()

    # -- the tick (§5.1) --------------------------------------------------------------------

    def _tick(self) -> None:
        self._tick_timer = None
        if self.closed:
            return
        tree = self.tree
        tree.do_root2 = tree.do_root2 or tree.do_root1
        # (Go also drops its coords cache here; ours is dropped whenever an info changes.)
        tree.fix()
        tree.send_announces()
        self.blooms.tick()
        self._tick_timer = self.clock.callLater(TICK, self._tick)

    def tree_changed(self) -> None:
        self.version += 1
        if self.tree_notify is not None:
            self.tree_notify()

    def routes_changed(self) -> None:
        """Coords, links or a link's cost changed: forget the next hops chosen so far."""
        self.route_epoch += 1
        self._hops.clear()

    # -- links ----------------------------------------------------------------------------

    def add_peer(self, key: bytes, link: LinkIO, priority: int = 0) -> Peer:
        """A link to ``key`` passed its handshake: every link to one key shares the
        smallest port free when the first came up (§3.8).  Sends sigReq then bloom."""
        if self.closed:
            raise ValueError("closed")
        if len(key) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect key length")
        key = bytes(key)
        if key == self.public_key:
            raise ValueError("attempted to connect to self")
        links = self.peers.get(key)
        first = links is None
        if first:
            port = 1
            while port in self._used_ports:
                port += 1
            self._used_ports.add(port)
            self.ports[key] = port
            links = self.peers[key] = {}
            self.blooms.add_key(key)
        peer = Peer(self, key, self.ports[key], link, priority, self._order)
        self._order += 1
        self.tree.add_link(peer, first)  # replays sent infos, sends the sigReq
        links[peer] = None  # type: ignore[index]
        self.routes_changed()
        self.blooms.send_bloom(peer)
        return peer

    def remove_peer(self, peer: Peer) -> None:
        """The link ended."""
        links = self.peers.get(peer.key)
        if links is None or peer not in links:
            return
        peer.stop()
        del links[peer]
        last = not links
        self.tree.remove_link(peer, last)
        self.routes_changed()
        if last:
            del self.peers[peer.key]
            self._used_ports.discard(self.ports.pop(peer.key))
            self.blooms.remove_key(peer.key)
        else:
            for other in links:
                self.blooms.send_bloom(other)  # its idea of our filter may be off by a race
        self.version += 1

    # -- received protocol packets --------------------------------------------------------

    def handle_protocol(self, peer: Peer, ptype: int, packet: wire.Packet) -> None:
        """A decoded packet of types 2-8 from ``peer``; LinkError where Go closes the link."""
        me = self.public_key
        if ptype == wire.ANNOUNCE:
            ann: wire.Announce = packet  # type: ignore[assignment]
            if not ann.check(self.verify):
                raise LinkError("bad message: announce signature")
            self.tree.handle_announce(peer, ann)
        elif ptype == wire.BLOOM:
            self.blooms.handle_bloom(peer, packet.bits)  # type: ignore[union-attr]
        elif ptype == wire.SIG_REQ:
            self.tree.handle_request(peer, packet)  # type: ignore[arg-type]
        elif ptype == wire.SIG_RES:
            res: wire.SigRes = packet  # type: ignore[assignment]
            if not res.check(me, peer.key, self.verify):
                raise LinkError("bad message: sigRes signature")
            now = self.clock.seconds()
            sent = peer.sig_req_time
            peer.sig_res_time = now
            self.tree.handle_response(peer, res, now - sent if sent is not None else 0.0)
        elif ptype == wire.PATH_LOOKUP:
            if self.blooms.is_on_tree(peer.key):
                lookup: wire.PathLookup = packet  # type: ignore[assignment]
                self.pathfinder.handle_lookup(peer.key, lookup, wire.encode_body(lookup))
        elif ptype == wire.PATH_NOTIFY:
            self.pathfinder.handle_notify(packet)  # type: ignore[arg-type]
        elif ptype == wire.PATH_BROKEN:
            self.pathfinder.handle_broken(packet)  # type: ignore[arg-type]

    # -- forwarding (§5.8) ----------------------------------------------------------------

    def next_hop(self, path: tuple[int, ...], watermark: int) -> tuple[Peer | None, int]:
        """The link to send a packet for coords ``path`` on, and its new watermark.

        None when we are no closer than the packet's last hop was (then it ends here) or
        no neighbour is closer than we are.  0.5.12's choice among closer links: lowest
        cost per unit of distance gained; for the same key its lowest priority; then the
        lower distance; then the older link.
        """
        here, best = self._choose(path)
        if here >= watermark:
            return None, watermark
        return best, here

    def _choose(self, path: tuple[int, ...]) -> tuple[int, Peer | None]:
        """(our distance to ``path``, the link :meth:`next_hop` takes below it or None):
        a function of the coords, the links and their costs alone."""
        tree = self.tree
        here = tree.dist(path, self.public_key)
        best: Peer | None = None
        best_cpd = best_dist = INFINITE
        dist = tree.dist
        cost = tree.cost
        for key, links in self.peers.items():
            d = dist(path, key)
            if d >= here:
                continue
            gain = here - d
            for p in links:
                cpd = cost(p) // gain
                if best is not None:
                    if p.key == best.key:
                        if p.prio > best.prio:
                            continue
                        if p.prio == best.prio:
                            if cpd > best_cpd or (cpd == best_cpd and p.order > best.order):
                                continue
                    elif cpd > best_cpd:
                        continue
                    elif cpd == best_cpd and (
                        d > best_dist or (d == best_dist and p.order > best.order)
                    ):
                        continue
                best, best_cpd, best_dist = p, cpd, d
        return here, best

    def traffic_head(self, coords: tuple[int, ...], dest: bytes) -> tuple[int, Peer | None, bytes]:
        """(``route_epoch``, next hop, header) of our own traffic to ``dest`` at ``coords``:
        what :meth:`forward` sends is the header and the payload.  No next hop (None): the
        traffic is ours, or the path is broken, and :meth:`forward` handles it."""
        here, best = self._choose(coords)
        if best is None or here >= wire.WATERMARK_NONE:
            return self.route_epoch, None, b""
        own = self.tree.own_coords()
        header = wire.traffic_body(coords, own, self.public_key, dest, here, b"")
        return self.route_epoch, best, header

    def _hop(self, key: bytes) -> tuple[int, Peer | None, tuple[int, ...]]:
        """The cached :meth:`_choose` for a traffic body's one-byte-port path ``key``."""
        hops = self._hops
        if len(hops) >= HOP_CACHE:  # paths come from the wire: bound what they can hold
            hops.clear()
        path = tuple(key)
        here, best = self._choose(path)
        hop = hops[key] = (here, best, path)
        return hop

    def forward(
        self,
        path: tuple[int, ...],
        from_path: tuple[int, ...],
        source: bytes,
        dest: bytes,
        watermark: int,
        payload: bytes | memoryview,
    ) -> None:
        """Traffic at this node: on to the next hop, delivered here, or broken."""
        peer, watermark = self.next_hop(path, watermark)
        if peer is not None:
            peer.push(
                wire.traffic_body(path, from_path, source, dest, watermark, payload), source, dest
            )
        elif dest == self.public_key:
            self.pathfinder.reset_timeout(source)
            self.deliver(source, bytes(payload))
        else:
            self.pathfinder.do_broken(from_path, source, dest)

    def handle_traffic(self, body: bytes, peer: Peer | None = None) -> None:
        """A traffic frame body from ``peer`` (from any neighbour, on tree or not)."""
        try:
            split = wire.split_traffic(body)
            h = wire.traffic_header(body) if split is None else None
        except DecodeError as e:
            raise LinkError(f"decode: {e}") from None
        if h is not None:
            self._handle_decoded(h, body, peer)
            return
        assert split is not None
        # The per-packet path (ARCHITECTURE rule 7): offsets into the body, the next hop
        # cached by the path's bytes, the body rebuilt only past its keys.
        p, f, watermark, offset = split
        key = body[1:p]
        hop = self._hops.get(key) or self._hop(key)
        here = hop[0]
        if here < watermark:
            best = hop[1]
            if best is not None:
                at = f + 65
                best.push(
                    wire.with_watermark(body, at, offset, here),
                    body[f + 1 : f + 33],
                    body[f + 33 : at],
                )
                return
        source = body[f + 1 : f + 33]
        dest = body[f + 33 : f + 65]
        if dest != self.public_key:
            self.pathfinder.do_broken(wire.get_path(body, p + 1, f + 1, "traffic")[0], source, dest)
            return
        self.pathfinder.reset_timeout(source)
        self.arrival = peer
        self._arrival_source = source
        self._arrival_body = body
        self._arrival_from = p + 1
        try:
            self.deliver(source, body[offset:])
        finally:
            self.arrival = None
            self._arrival_source = None
            self._arrival_body = b""

    def _handle_decoded(self, h: wire.TrafficHeader, body: bytes, peer: Peer | None) -> None:
        """Any other traffic body: decoded whole, re-encoded as Go does."""
        self.arrival = peer
        self._arrival_source = h.source
        self._arrival_body = wire.put_path(h.from_path)
        self._arrival_from = 0
        try:
            self.forward(
                h.path,
                h.from_path,
                h.source,
                h.dest,
                h.watermark,
                memoryview(body)[h.payload_offset :],
            )
        finally:
            self.arrival = None
            self._arrival_source = None
            self._arrival_body = b""

    # -- the node's side ------------------------------------------------------------------

    def send(self, dest: bytes, payload: bytes) -> None:
        """Traffic to the node with key ``dest``; looked up first if no path is known."""
        if self.closed:
            raise ValueError("closed")
        if len(payload) > MTU:
            raise ValueError("oversized message")
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect address length")
        self.pathfinder.send_traffic(bytes(dest), bytes(payload))

    def send_untracked(self, dest: bytes, payload: bytes) -> None:
        """Like :meth:`send`, for a one-off answer to a packet whose source may be made up:
        it keeps no state.  A known path is used (its cached packet left alone); else, while
        that packet from ``dest`` is being delivered, the answer goes to the coords it came
        from (its ``from`` path, as a notify goes back to a lookup's); else it is dropped
        (counted in ``untracked_dropped``).  :meth:`send` would make a rumor and a lookup,
        held a minute each, for every made-up source."""
        if self.closed:
            raise ValueError("closed")
        if len(payload) > MTU:
            raise ValueError("oversized message")
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect address length")
        path = self.pathfinder.paths.get(dest)
        if path is not None:
            coords = path.coords
        elif dest == self._arrival_source:
            body = self._arrival_body
            coords = wire.get_path(body, self._arrival_from, len(body), "traffic")[0]
        else:
            self.untracked_dropped += 1
            return
        self.forward(
            coords,
            self.tree.own_coords(),
            self.public_key,
            bytes(dest),
            wire.WATERMARK_NONE,
            payload,
        )

    def lookup(self, key: bytes) -> None:
        """Look up a key, or a partial key made from an address or subnet (§7.4):
        ``path_notify`` hears the full key when the owner answers."""
        if len(key) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect key length")
        if not self.closed:
            self.pathfinder.rumor_lookup(bytes(key))

    def path_notified(self, key: bytes) -> None:
        if self.path_notify is not None:
            self.path_notify(key)

    def has_path(self, key: bytes) -> bool:
        return key in self.pathfinder.paths

    @property
    def mtu(self) -> int:
        return MTU

    # -- views for the admin API (0.5.12's getSelf/getPeers/getTree/getPaths) -------------

    def get_self(self) -> SelfInfo:
        tree = self.tree
        return SelfInfo(
            self.public_key,
            tree.root(self.public_key),
            tree.own_coords(),
            len(tree.infos),
        )

    def get_peers(self) -> list[PeerInfo]:
        tree = self.tree
        now = self.clock.seconds()
        out = []
        for key, links in self.peers.items():
            root = tree.root(key)
            for p in links:
                latency = None
                if p.sig_req_time is not None and p.sig_res_time is not None:
                    rtt = round((p.sig_res_time - p.sig_req_time) * 1e5) / 1e5  # 10 µs
                    latency = rtt if rtt > 0 else None
                out.append(
                    PeerInfo(
                        key,
                        root,
                        p.port,
                        p.prio,
                        tree.cost(p),
                        latency,
                        p.bytes_recvd,
                        p.bytes_sent,
                        now - p.started,
                        p.link,
                    )
                )
        return out

    def get_tree(self) -> list[TreeInfo]:
        return sorted(
            (TreeInfo(key, info.ann.parent, info.ann.seq) for key, info in self.tree.infos.items()),
            key=lambda t: t.key,
        )

    def get_paths(self) -> list[PathInfo]:
        return sorted(
            (PathInfo(key, p.coords, p.seq) for key, p in self.pathfinder.paths.items()),
            key=lambda t: t.key,
        )

    # -- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Close every link and stop every timer."""
        if self.closed:
            return
        self.closed = True
        cancel(self._tick_timer)
        self._tick_timer = None
        for links in list(self.peers.values()):
            for peer in list(links):
                peer.link.close("node stopping")
        for links in list(self.peers.values()):
            for peer in list(links):
                self.remove_peer(peer)
        self.tree.close()
        self.pathfinder.close()
