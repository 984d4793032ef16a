"""The spanning tree (spec §6): root = lowest key, signed announcements, parent choice.

Every link that delivered a valid announcement has its latest one in ``infos``.  ``self``
is either one of those (adopted from the parent) or an info rooted at this node.  The rules
are ironwood's, including the ones that look odd: a child's announcement is stored even
though it fails the loop check, parent choice prefers the announcement that arrived first,
and bad news from the parent is held down for 7 seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ygg.network import wire
from ygg.timers import cancel

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.network.peers import Peer
    from ygg.network.router import Router

TREE_TIMEOUT = 3600.0  # a root's seq is good for an hour after it was first seen
TREE_ANNOUNCE = TREE_TIMEOUT / 2  # the root refreshes its seq this often
HOLD_DOWN = 7.0  # bad news from the parent: wait this long (peer timeout + 1 s) before re-choosing
_INFINITY = 1 << 62


class Info:
    """A tree announcement as this node holds it, with when and in what order it arrived."""

    __slots__ = ("hseq", "keys", "label", "ports", "root", "sender", "seq", "time", "wire")

    def __init__(self, info: wire.TreeInfo, time: float, hseq: int) -> None:
        self.wire = info
        self.root = info.root
        self.seq = info.seq
        self.ports = tuple(hop.port for hop in info.hops)
        self.keys = tuple(hop.next for hop in info.hops)
        self.sender = info.from_key()
        self.time = time
        self.hseq = hseq
        self.label: wire.Label | None = None  # our label while this info is our self

    def check_loops(self) -> bool:
        return self.wire.check_loops()


def dist(ports: tuple[int, ...], path: tuple[int, ...]) -> int:
    """Hops between two tree coordinates: down from the common ancestor to each (spec §2.3)."""
    common = 0
    for a, b in zip(ports, path, strict=False):
        if a != b:
            break
        common += 1
    return len(ports) + len(path) - 2 * common


class Tree:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.key = router.public_key
        self.clock = router.clock
        self.infos: dict[Peer, Info] = {}
        self.expired: dict[bytes, tuple[int, float]] = {}  # root -> (highest seq, first seen)
        self.self: Info = None  # type: ignore[assignment]  # set by fix() below
        self.parent: Peer | None = None
        self.wait = False
        self.hseq = 0
        self.closed = False
        self._self_timer: IDelayedCall | None = None
        self.fix()

    # -- announcements --------------------------------------------------------------------

    def _own_info(self, seq: int) -> Info:
        info = Info(wire.TreeInfo(self.key, seq), self.clock.seconds(), 0)
        return info

    def send_link_start(self, peer: Peer) -> None:
        """The first frame on every link claims this node as root with seq 0 (spec §3.4)."""
        self._send(peer, wire.TreeInfo(self.key, 0))

    def _send(self, peer: Peer, info: wire.TreeInfo) -> None:
        announcement = info.add_hop(peer.key, peer.port, self.router.node_key.sign)
        peer.send(wire.TREE, announcement)

    def _send_all(self) -> None:
        info = self.self.wire
        for peer in list(self.infos):
            self._send(peer, info)

    def handle(self, peer: Peer, info: wire.TreeInfo) -> None:
        """A decoded announcement from ``peer``; raises LinkError where Go drops the link."""
        from ygg.network.peers import LinkError

        if not info.hops:
            raise LinkError("tree announcement without hops")
        verify = self.router.verify
        for signer, message, sig in info.signed_hops():
            if not verify(signer, message, sig):
                raise LinkError("invalid signature")
        if info.from_key() != peer.key:
            raise LinkError("unrecognized publicKey")
        if info.hops[-1].next != self.key:
            raise LinkError("incorrect destination")
        self.update(peer, info)

    def update(self, peer: Peer, received: wire.TreeInfo) -> None:
        now = self.clock.seconds()
        self.hseq += 1
        info = Info(received, now, self.hseq)
        peer.info = info
        seen = self.expired.get(info.root)
        if seen is None or seen[0] < info.seq:
            self.expired[info.root] = (info.seq, now)
        if peer not in self.infos:
            # The peer may have missed our self while the link was being set up.
            self._send(peer, self.self.wire)
        self.infos[peer] = info
        if peer is self.parent:
            do_wait = self.self.root < info.root or (
                info.root == self.self.root and info.seq <= self.self.seq
            )
            self.self, self.parent = None, None  # type: ignore[assignment]
            if do_wait:
                # Bad news: tell everyone at once, but choose again only after a hold-down,
                # so that two nodes do not chase each other as parents.
                self.wait = True
                self.self = self._own_info(0)
                self.self.time = 0.0
                self._send_all()
                self.clock.callLater(HOLD_DOWN, self._end_wait)
        if not self.wait:
            self.fix()
            self.router.dht.do_bootstrap()

    def _end_wait(self) -> None:
        if self.closed:
            return
        self.wait = False
        self.self, self.parent = None, None  # type: ignore[assignment]
        self.fix()
        self.router.dht.do_bootstrap()

    def remove(self, peer: Peer) -> None:
        """A link went away: forget its announcement and tear down DHT paths through it."""
        old = self.infos.pop(peer, None)
        if old is not None and self.self is old:
            self.self, self.parent = None, None  # type: ignore[assignment]
            self.fix()
        self.router.dht.remove_peer(peer)

    # -- parent choice --------------------------------------------------------------------

    def fix(self) -> None:
        if self.closed:
            return
        old = self.self
        now = self.clock.seconds()
        if self.self is None or self.key < self.self.root:
            self.self = self._own_info(int(now))
            self.parent = None
        expired = self.expired
        for info in self.infos.values():
            seen = expired.get(info.root)
            if seen is None or seen[0] < info.seq or (seen[0] == info.seq and info.time < seen[1]):
                expired[info.root] = (info.seq, info.time)
        for peer, info in self.infos.items():
            seen = expired.get(info.root)
            if seen is not None:
                if info.seq < seen[0]:
                    continue
                if info.seq == seen[0] and now - seen[1] > TREE_TIMEOUT:
                    continue
            current = self.self
            if not info.check_loops():
                continue  # e.g. a child's announcement, which lists us as an ancestor
            if info.root < current.root:
                take = True
            elif current.root < info.root:
                take = False
            elif info.seq != current.seq:
                take = info.seq > current.seq
            else:
                take = info.hseq < current.hseq  # held longer: the more stable path
            if take:
                self.self, self.parent = info, peer
        if self.self is not old:
            cancel(self._self_timer)
            if self.self.root == self.key:
                delay = TREE_ANNOUNCE
            else:
                delay = expired[self.self.root][1] + TREE_TIMEOUT - now
            self._self_timer = self.clock.callLater(max(0.0, delay), self._expire_self, self.self)
            self._send_all()
            self.router.tree_changed()
        for key in [k for k in expired if self.self.root < k]:
            del expired[key]

    def _expire_self(self, info: Info) -> None:
        self._self_timer = None
        if self.closed or self.self is not info:
            return
        self.self, self.parent = None, None  # type: ignore[assignment]
        self.fix()
        self.router.dht.do_bootstrap()

    # -- routing --------------------------------------------------------------------------

    def lookup(self, label: wire.Label) -> Peer | None:
        """The next hop towards a label's coordinates, or None (here, or a dead end)."""
        if label.key == self.key:
            return None
        best = self.self
        path = label.path
        best_dist = dist(best.ports, path) if best.root == label.root else _INFINITY
        best_peer: Peer | None = None
        for peer, info in self.infos.items():
            if info.root != label.root or info.seq != label.seq:
                continue
            d = dist(info.ports[:-1], path)
            if d < best_dist:
                better = True
            elif d > best_dist:
                better = False
            elif info.sender < best.sender:
                better = True
            else:
                better = (
                    best_peer is not None
                    and best_peer.key == peer.key
                    and peer.prio < best_peer.prio
                )
            if better:
                best, best_dist, best_peer = info, d, peer
        if best.root != label.root or best.seq != label.seq:
            return None
        return best_peer

    def label(self) -> wire.Label:
        """This node's signed label for its current position (signed once per position)."""
        info = self.self
        if info.label is None:
            info.label = wire.Label.signed(
                self.router.node_key.sign, self.key, info.root, info.seq, info.ports
            )
        return info.label

    @property
    def coords(self) -> tuple[int, ...]:
        return self.self.ports

    def close(self) -> None:
        self.closed = True
        cancel(self._self_timer)
