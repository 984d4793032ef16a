"""The routing core of one node (ironwood's network layer), sans-IO.

The rest of the node sees this API (spec §14): ``add_peer``/``remove_peer`` for links,
``send``/``send_oob`` for traffic, the ``deliver``/``deliver_oob`` callables it was given for
traffic that arrives, and debug snapshots.  Time comes from the ``IReactorTime`` handed in;
there is no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ygg.keys import PUBLIC_KEY_SIZE, NodeKey, VerifyCache
from ygg.network import wire
from ygg.network.dht import DHT
from ygg.network.pathfinder import Pathfinder
from ygg.network.peers import LinkError, LinkIO, Peer
from ygg.network.tree import Tree

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

#: The largest payload ``send`` takes: a frame less the longest possible source route.
MTU = 53129

#: One cache for every router in the process: the simulator runs thousands of nodes that
#: see the same signatures; a hit is as strong as a fresh check (spec §2.4).
_SHARED_VERIFIER = VerifyCache()


@dataclass(frozen=True, slots=True)
class SelfInfo:
    key: bytes
    root: bytes
    coords: tuple[int, ...]
    updated: float


@dataclass(frozen=True, slots=True)
class PeerInfo:
    key: bytes
    root: bytes
    coords: tuple[int, ...]
    port: int
    updated: float
    priority: int
    link: LinkIO


@dataclass(frozen=True, slots=True)
class DHTInfo:
    key: bytes
    port: int
    rest: int


@dataclass(frozen=True, slots=True)
class PathInfo:
    key: bytes
    path: tuple[int, ...]


class Router:
    def __init__(
        self,
        key: NodeKey,
        clock: IReactorTime,
        deliver: Callable[[bytes, bytes], None],
        deliver_oob: Callable[[bytes, bytes, bytes], None] | None = None,
        verifier: VerifyCache | None = None,
    ) -> None:
        self.node_key = key
        self.public_key = key.public
        self.clock = clock
        self.deliver = deliver
        self.deliver_oob = deliver_oob
        self.verify = (verifier or _SHARED_VERIFIER).verify
        self.peers: dict[int, Peer] = {}
        #: The link the traffic being delivered came in on (None: our own), for ``deliver``
        #: to read: the session layer budgets work per link.
        self.arrival: Peer | None = None
        self.closed = False
        #: Bumped whenever the tree or the DHT changes (lets callers notice convergence).
        self.version = 0
        self.dht = DHT(self)
        self.tree = Tree(self)
        self.pathfinder = Pathfinder(self)

    # -- links ----------------------------------------------------------------------------

    def add_peer(self, key: bytes, link: LinkIO, priority: int = 0) -> Peer:
        """A link to ``key`` passed its handshake: give it the smallest free port and start."""
        if self.closed:
            raise ValueError("closed")
        if len(key) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect key length")
        if key == self.public_key:
            raise ValueError("attempted to connect to self")
        port = 1
        while port in self.peers:
            port += 1
        peer = Peer(self, bytes(key), port, link, priority)
        self.peers[port] = peer
        peer.start()
        return peer

    def remove_peer(self, peer: Peer) -> None:
        """The link ended: forget what it told us and free its port."""
        if self.peers.get(peer.port) is not peer:
            return
        peer.stop()
        if peer.info is not None:
            self.tree.remove(peer)
        del self.peers[peer.port]
        self.version += 1

    # -- sending --------------------------------------------------------------------------

    def send(self, dest: bytes, payload: bytes) -> None:
        """Standard (kind 1) traffic to the node with key ``dest``."""
        if len(payload) > MTU:
            raise ValueError("oversized message")
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect address length")
        self._send(dest, wire.KIND_STANDARD, payload)

    def send_untracked(self, dest: bytes, payload: bytes) -> None:
        """Like :meth:`send`, for a one-off answer to a packet whose source may be made up:
        a route already known is used, but no route entry is made (each is held a minute,
        and made-up sources would fill the table)."""
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect address length")
        self._send(dest, wire.KIND_STANDARD, payload, track=False)

    def send_oob(self, dest: bytes, payload: bytes) -> None:
        """Out-of-band (kind 2) data, handled where routing towards ``dest`` ends (which
        may be a partial key: the node closest to it answers)."""
        if len(dest) != PUBLIC_KEY_SIZE:
            raise ValueError("incorrect address length")
        self._send(dest, wire.KIND_OOB, payload)

    def _send(self, dest: bytes, kind: int, payload: bytes, track: bool = True) -> None:
        if self.closed:
            raise ValueError("closed")
        if track:
            path = self.pathfinder.get_path(dest)
        else:
            entry = self.pathfinder.paths.get(dest)
            path = entry.path if entry is not None else None
        me = self.public_key
        if path is not None:
            nxt = self.peers.get(path[0] if path else 0)
            if nxt is not None:
                body = wire.path_traffic(path[1:], me, dest, kind, payload)
                nxt.push(body, len(body) - len(payload) - wire.TRAFFIC_HEADER)
                return
        nxt = self.dht.lookup(dest, False)
        if nxt is not None:
            nxt.push(wire.dht_traffic(me, dest, kind, payload), 1)
        else:
            body = wire.dht_traffic(me, dest, kind, payload)
            self._arrived(body, 1, dest, keepalive=True)

    # -- receiving ------------------------------------------------------------------------

    def handle_dht_traffic(
        self, body: bytes, offset: int, from_link: bool, peer: Peer | None = None
    ) -> None:
        """Type 9 traffic (or a broken source route's fallback) that came in on ``peer``:
        route on by key."""
        dest = wire.traffic_dest(body, offset)
        # No key is closer to our own than ours: the lookup would end here.
        nxt = None if dest == self.public_key else self.dht.lookup(dest, False)
        if nxt is None:
            self._arrived(body, offset, dest, not from_link, peer)
        elif offset == 1:
            nxt.push(body, 1)
        else:
            nxt.push(wire.path_to_dht_traffic(body, offset), 1)

    def handle_path_traffic(self, body: bytes, peer: Peer | None = None) -> None:
        """Type 10 traffic that came in on ``peer``: follow the source route, or fall back
        to the DHT where it ends."""
        ports, offset = wire.split_path_traffic(body)
        nxt = self.peers.get(ports[0] if ports else 0)
        if nxt is not None:
            forward = wire.reroute_path_traffic(ports[1:], body, offset)
            nxt.push(forward, offset + len(forward) - len(body))
        else:
            self.handle_dht_traffic(body, offset, False, peer)

    def _arrived(
        self, body: bytes, offset: int, dest: bytes, keepalive: bool, peer: Peer | None = None
    ) -> None:
        """Routing ends here: notify the sender if it is us it wanted, then deliver."""
        source, _, kind, payload = wire.traffic_fields(body, offset)
        me = self.public_key
        if dest == me:
            self.pathfinder.do_notify(source, keepalive)
        if kind == wire.KIND_STANDARD:
            if dest == me:
                self.arrival = peer
                self.deliver(source, payload)
                self.arrival = None
        elif kind == wire.KIND_OOB:
            if self.deliver_oob is not None:
                self.deliver_oob(source, dest, payload)

    def handle_protocol(self, peer: Peer, ptype: int, packet: wire.Packet) -> None:
        """A decoded protocol packet (types 1–8) from ``peer``."""
        if ptype == wire.TREE:
            self.tree.handle(peer, packet)  # type: ignore[arg-type]
        elif ptype == wire.BOOTSTRAP:
            self.dht.handle_bootstrap(packet)  # type: ignore[arg-type]
        elif ptype == wire.BOOTSTRAP_ACK:
            self.dht.handle_bootstrap_ack(packet)  # type: ignore[arg-type]
        elif ptype == wire.SETUP:
            if not self.check_setup(packet):  # type: ignore[arg-type]
                raise LinkError("invalid setup")
            self.dht.handle_setup(peer, packet)  # type: ignore[arg-type]
        elif ptype == wire.TEARDOWN:
            self.dht.teardown(peer, packet)  # type: ignore[arg-type]
        elif ptype == wire.PATH_NOTIFY:
            self.pathfinder.handle_notify(packet)  # type: ignore[arg-type]
        elif ptype == wire.PATH_LOOKUP:
            lookup: wire.PathLookup = packet  # type: ignore[assignment]
            self.pathfinder.handle_lookup(
                wire.PathLookup(lookup.notify, (*lookup.rpath, peer.port))
            )
        elif ptype == wire.PATH_RESPONSE:
            response: wire.PathResponse = packet  # type: ignore[assignment]
            self.handle_path_response(
                wire.PathResponse(response.from_key, response.path, (*response.rpath, peer.port))
            )

    def handle_path_response(self, response: wire.PathResponse) -> None:
        """Forward a response along its route; the end of the route is the pathfinder's."""
        path = response.path
        nxt = self.peers.get(path[0] if path else 0)
        if nxt is not None:
            nxt.send(
                wire.PATH_RESPONSE, wire.PathResponse(response.from_key, path[1:], response.rpath)
            )
        else:
            self.pathfinder.handle_response(response)

    # -- signature checks -----------------------------------------------------------------

    def check_label(self, label: wire.Label) -> bool:
        return self.verify(label.key, label.message(), label.sig)

    def check_token(self, token: wire.SetupToken) -> bool:
        return self.verify(token.dest.key, token.message(), token.sig) and self.check_label(
            token.dest
        )

    def check_setup(self, setup: wire.Setup) -> bool:
        return self.check_token(setup.token) and self.verify(
            setup.token.source, setup.message(), setup.sig
        )

    def check_notify(self, notify: wire.PathNotify) -> bool:
        return self.check_label(notify.label) and self.verify(
            notify.label.key, notify.message(), notify.sig
        )

    # -- change tracking ------------------------------------------------------------------

    def tree_changed(self) -> None:
        self.version += 1

    def dht_changed(self) -> None:
        self.version += 1

    # -- debug snapshots (spec §15) ---------------------------------------------------------

    def get_self(self) -> SelfInfo:
        info = self.tree.self
        return SelfInfo(self.public_key, info.root, info.ports, info.time)

    def get_peers(self) -> list[PeerInfo]:
        return [
            PeerInfo(
                peer.key, info.root, info.ports[:-1], peer.port, info.time, peer.prio, peer.link
            )
            for peer, info in self.tree.infos.items()
        ]

    def get_dht(self) -> list[DHTInfo]:
        return [
            DHTInfo(
                record.key,
                record.peer.port if record.peer is not None else 0,
                record.rest.port if record.rest is not None else 0,
            )
            for record in self.dht.records.values()
        ]

    def get_paths(self) -> list[PathInfo]:
        return [
            PathInfo(key, tuple(entry.path) if entry.path is not None else ())
            for key, entry in self.pathfinder.paths.items()
        ]

    @property
    def mtu(self) -> int:
        return MTU

    # -- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Close every link and stop every timer."""
        if self.closed:
            return
        self.closed = True
        for peer in list(self.peers.values()):
            peer.link.close("node stopping")
        for peer in list(self.peers.values()):
            self.remove_peer(peer)
        self.tree.close()
        self.dht.close()
        self.pathfinder.close()
