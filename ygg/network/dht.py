"""The DHT (spec §7): a ring of source routes between keyspace neighbours.

Each non-root node builds a path to its predecessor (the largest key below its own):
it sends a bootstrap towards its own key, the node where the bootstrap stops answers with
an ack carrying a signed setup token, and the setup then installs a path record on every
node along the tree route.  Traffic is routed "Price Is Right": towards the largest known
key that does not pass the destination, using tree ancestors, peers and path sources.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from ygg.network import wire
from ygg.timers import cancel

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.network.peers import Peer
    from ygg.network.router import Router
    from ygg.network.tree import Info

PATH_TIMEOUT = 7200.0  # a path record lives two tree timeouts unless torn down or rebuilt
BOOTSTRAP_INTERVAL = 1.0
_U64 = (1 << 64) - 1


def ordered(a: bytes, b: bytes, c: bytes) -> bool:
    return a < b < c


class PathRecord:
    """One DHT path through this node (Go's dhtInfo): from ``key`` towards its predecessor.

    ``peer`` is the link towards the path's source and ``rest`` the link towards its
    destination; None means this node is that end.
    """

    __slots__ = ("key", "peer", "rest", "root", "root_seq", "seq", "timer")

    def __init__(self, setup: wire.Setup, peer: Peer | None, rest: Peer | None) -> None:
        self.seq = setup.seq
        self.key = setup.token.source
        self.peer = peer
        self.rest = rest
        self.root = setup.token.dest.root
        self.root_seq = setup.token.dest.seq
        self.timer: IDelayedCall | None = None

    @property
    def map_key(self) -> tuple[bytes, bytes, int]:
        return (self.key, self.root, self.root_seq)

    def teardown(self) -> wire.Teardown:
        return wire.Teardown(self.seq, self.key, self.root, self.root_seq)


class DHT:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.key = router.public_key
        self.clock = router.clock
        self.records: dict[tuple[bytes, bytes, int], PathRecord] = {}
        self.prev: PathRecord | None = None  # our own path to our predecessor
        self.next: PathRecord | None = None  # our successor's path to us
        self.dest_keys: dict[PathRecord, bytes] = {}  # our own paths (current and former)
        # Setup counter: any value works as long as it does not repeat; Go starts near the
        # time in nanoseconds with a few random bits.
        self.seq = (int(self.clock.seconds() * 1e9) | struct.unpack("<Q", os.urandom(8))[0]) & _U64
        self.bwait = False
        self.closed = False
        self._btimer: IDelayedCall | None = None

    # -- routing --------------------------------------------------------------------------

    def lookup(self, dest: bytes, bootstrap: bool) -> Peer | None:
        """The next hop towards ``dest`` in keyspace, or None to stop here (spec §7.2).

        A bootstrap looks for the predecessor of ``dest`` and so never picks ``dest``
        itself; other traffic may reach it exactly.
        """
        tree = self.router.tree
        infos = tree.infos
        me = self.key
        best, best_peer = me, None
        tself = tree.self
        if (bootstrap and dest == me) or ordered(tself.root, dest, me):
            # Already past the destination: head for the root, the smallest key.
            best, best_peer = tself.root, tree.parent

        def consider(key: bytes, peer: Peer | None) -> None:
            nonlocal best, best_peer
            if (not bootstrap and key == dest and best != dest) or best < key < dest:
                best, best_peer = key, peer

        def ancestry(info: Info, peer: Peer | None) -> None:
            nonlocal best, best_peer
            consider(info.root, peer)
            for key in info.keys:
                consider(key, peer)
                held = infos.get(best_peer) if best_peer is not None else None
                if held is not None and best == key and info.hseq < held.hseq:
                    best, best_peer = key, peer  # the same ancestor, announced for longer

        ancestry(tself, tree.parent)
        for peer, info in infos.items():
            ancestry(info, peer)
        for peer in infos:
            if peer.key == best:
                best_peer = peer  # the best key is a neighbour: go straight to it
        for record in self.records.values():
            consider(record.key, record.peer)
        if best_peer is not None:
            for peer in infos:
                if peer.key == best_peer.key and peer.prio < best_peer.prio:
                    best_peer = peer
        return best_peer

    # -- bootstrapping --------------------------------------------------------------------

    def do_bootstrap(self) -> None:
        """Send a bootstrap unless our predecessor path is current; at most once a second."""
        if self.bwait or self.closed:
            return
        tself = self.router.tree.self
        prev = self.prev
        if prev is not None and prev.root == tself.root and prev.root_seq == tself.seq:
            return
        if tself.root != self.key:
            self.handle_bootstrap(self.router.tree.label())
            self.bwait = True
        cancel(self._btimer)
        self._btimer = self.clock.callLater(BOOTSTRAP_INTERVAL, self._bootstrap_timer)

    def _bootstrap_timer(self) -> None:
        self._btimer = None
        self.bwait = False
        self.do_bootstrap()

    def handle_bootstrap(self, label: wire.Label) -> None:
        source = label.key
        nxt = self.lookup(source, True)
        if nxt is not None:
            nxt.send(wire.BOOTSTRAP, label)
            return
        if source == self.key or not self.router.verify(label.key, label.message(), label.sig):
            return
        token = wire.SetupToken.signed(self.router.node_key.sign, source, self.router.tree.label())
        self.handle_bootstrap_ack(wire.BootstrapAck(label, token))

    def handle_bootstrap_ack(self, ack: wire.BootstrapAck) -> None:
        tree = self.router.tree
        token = ack.token
        source = token.dest.key  # the candidate predecessor
        nxt = tree.lookup(ack.bootstrap)
        if nxt is not None:
            nxt.send(wire.BOOTSTRAP_ACK, ack)
            return
        me = self.key
        tself = tree.self
        if (
            source == me
            or ack.bootstrap.key != me
            or token.source != me
            or token.dest.root != tself.root
            or token.dest.seq != tself.seq
        ):
            return
        prev = self.prev
        if prev is not None:
            current = self.dest_keys[prev]
            better = ordered(current, source, me)
            refresh = source == current and (prev.root != tself.root or prev.root_seq != tself.seq)
            if not (better or refresh):
                return
        if not self.router.check_token(token):
            return
        self.prev = None
        for record in list(self.records.values()):
            dest = self.dest_keys.get(record)
            if dest is not None and dest != source:
                # A former predecessor learns it is no longer ours only from a teardown.
                self.teardown(None, record.teardown())
        self.seq = (self.seq + 1) & _U64
        setup = wire.Setup.signed(self.router.node_key.sign, self.seq, token)
        self.handle_setup(None, setup)

    # -- paths ----------------------------------------------------------------------------

    def handle_setup(self, prev: Peer | None, setup: wire.Setup) -> None:
        tree = self.router.tree
        token = setup.token
        nxt = tree.lookup(token.dest)
        dest = token.dest.key
        refuse = wire.Teardown(setup.seq, token.source, token.dest.root, token.dest.seq)
        if nxt is None and dest != self.key:
            if prev is not None:
                prev.send(wire.TEARDOWN, refuse)
            return
        record = PathRecord(setup, prev, nxt)
        tself = tree.self
        if (
            record.root != tself.root
            or record.root_seq != tself.seq
            or record.map_key in self.records
        ):
            if prev is not None:
                prev.send(wire.TEARDOWN, refuse)
            return
        self.records[record.map_key] = record
        record.timer = self.clock.callLater(PATH_TIMEOUT, self._expire_record, record)
        self.router.dht_changed()
        if prev is None:
            self.prev = record
            self.dest_keys[record] = dest
        if nxt is not None:
            nxt.send(wire.SETUP, setup)
        elif self.next is None:
            self.next = record
        elif record.key == self.next.key or ordered(self.key, record.key, self.next.key):
            self.teardown(None, self.next.teardown())
            self.next = record
        else:
            self.teardown(None, record.teardown())

    def _expire_record(self, record: PathRecord) -> None:
        record.timer = None
        if self.records.get(record.map_key) is not record:
            return
        teardown = record.teardown()
        if record.peer is not None:
            record.peer.send(wire.TEARDOWN, teardown)
        self.teardown(record.peer, teardown)

    def teardown(self, came_from: Peer | None, teardown: wire.Teardown) -> None:
        """Remove the matching path and pass the teardown on out its other side."""
        record = self.records.get((teardown.key, teardown.root, teardown.root_seq))
        if record is None or record.seq != teardown.seq:
            return
        if came_from is record.peer:
            onward = record.rest
        elif came_from is record.rest:
            onward = record.peer
        else:
            return
        cancel(record.timer)
        self.dest_keys.pop(record, None)
        del self.records[record.map_key]
        self.router.dht_changed()
        if onward is not None:
            onward.send(wire.TEARDOWN, teardown)
        if self.next is record:
            self.next = None
        if self.prev is record:
            self.prev = None
            # Other bad news may be queued behind this: bootstrap after it.
            self.clock.callLater(0, self.do_bootstrap)

    def remove_peer(self, peer: Peer) -> None:
        for record in list(self.records.values()):
            if record.peer is peer or record.rest is peer:
                self.teardown(peer, record.teardown())

    def close(self) -> None:
        self.closed = True
        cancel(self._btimer)
        for record in self.records.values():
            cancel(record.timer)
