"""Finding destinations' coords: path lookup, notify, broken (docs/spec-v05.md §5.7).

A node sending to a key with no known path keeps the packet as a *rumor* (one per
transformed key) and multicasts a lookup along the bloom filters; the node whose
transformed key matches answers with a signed notify of its coords, routed back by tree
distance.  Paths live one minute past the last traffic from their destination; lookups
are throttled to one a second per destination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ygg.v05.network import wire
from ygg.v05.network.filters import xform
from ygg.v05.network.wire import PathBroken, PathLookup, PathNotify, PathNotifyInfo

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.v05.network.peers import Peer
    from ygg.v05.network.router import Router

PATH_TIMEOUT = 60.0  # pathTimeout: lifetime of a path and of a rumor
PATH_THROTTLE = 1.0  # pathThrottle: at most one lookup a second per destination
_SLACK = 1e-6


class Path:
    """A destination's coords as its last accepted notify gave them."""

    __slots__ = ("broken", "coords", "expires", "head", "req_time", "seq", "timer", "traffic")

    def __init__(self, now: float) -> None:
        self.coords: tuple[int, ...] = ()
        self.seq = 0
        self.req_time = now  # when it was made: lookups for it are throttled from then
        self.expires = now + PATH_TIMEOUT
        self.timer: IDelayedCall | None = None
        self.traffic: bytes | None = None  # the last payload sent on it (resent if it moves)
        self.broken = False  # a pathBroken came back: no more timer resets until a notify
        #: Our traffic's next hop and header on these coords: ``Router.traffic_head``.
        self.head: tuple[int, Peer | None, bytes] | None = None


class Rumor:
    """Lookups made for a transformed key, and the one packet waiting for the answer."""

    __slots__ = ("expires", "send_time", "timer", "traffic")

    def __init__(self, now: float) -> None:
        self.send_time = now
        self.expires = now + PATH_TIMEOUT
        self.timer: IDelayedCall | None = None
        self.traffic: tuple[bytes, bytes] | None = None  # (dest, payload)


class Pathfinder:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.key = router.public_key
        self.own_xform = xform(self.key)
        self.paths: dict[bytes, Path] = {}
        self.rumors: dict[bytes, Rumor] = {}
        self._info: PathNotifyInfo | None = None  # our signed coords, re-signed on change

    # -- expiry (lazy: traffic moves the deadline, the timer only checks it) -------------

    def _expire_path(self, key: bytes) -> None:
        path = self.paths.get(key)
        if path is None:
            return
        left = path.expires - self.router.clock.seconds()
        if left > _SLACK:
            path.timer = self.router.clock.callLater(left, self._expire_path, key)
        else:
            del self.paths[key]

    def _expire_rumor(self, x: bytes) -> None:
        rumor = self.rumors.get(x)
        if rumor is None:
            return
        left = rumor.expires - self.router.clock.seconds()
        if left > _SLACK:
            rumor.timer = self.router.clock.callLater(left, self._expire_rumor, x)
        else:
            del self.rumors[x]

    def reset_timeout(self, key: bytes) -> None:
        """Traffic from ``key`` arrived: keep its path (unless it is known broken)."""
        path = self.paths.get(key)
        if path is not None and not path.broken:
            path.expires = self.router.clock.seconds() + PATH_TIMEOUT

    # -- lookups --------------------------------------------------------------------------

    def rumor_lookup(self, dest: bytes) -> None:
        """Look ``dest`` up (a key or a partial key), at most once a second (§5.7)."""
        x = xform(dest)
        now = self.router.clock.seconds()
        rumor = self.rumors.get(x)
        if rumor is not None:
            if now - rumor.send_time < PATH_THROTTLE:
                return
            rumor.send_time = now
            rumor.expires = now + PATH_TIMEOUT
        else:
            rumor = self.rumors[x] = Rumor(now)
            rumor.timer = self.router.clock.callLater(PATH_TIMEOUT, self._expire_rumor, x)
        self.send_lookup(dest)

    def send_lookup(self, dest: bytes) -> None:
        path = self.paths.get(dest)
        if path is not None and self.router.clock.seconds() - path.req_time < PATH_THROTTLE:
            return
        lookup = PathLookup(self.key, dest, self.router.tree.own_coords())
        self.handle_lookup(self.key, lookup, wire.encode_body(lookup))

    def handle_lookup(self, from_key: bytes, lookup: PathLookup, body: bytes) -> None:
        """Pass a lookup on along the blooms; answer it if it is for us."""
        router = self.router
        router.blooms.multicast(body, from_key, lookup.dest, lookup.source)
        if lookup.dest != self.key and xform(lookup.dest) != self.own_xform:
            return
        coords = router.tree.own_coords()
        seq = int(router.clock.seconds())
        info = self._info
        if info is None or info.seq != seq or info.path != coords:
            info = self._info = PathNotifyInfo.signed(router.node_key.sign, seq, coords)
        notify = PathNotify(lookup.from_path, wire.WATERMARK_NONE, self.key, lookup.source, info)
        self.handle_notify(notify)

    # -- notifies -------------------------------------------------------------------------

    def handle_notify(self, notify: PathNotify) -> None:
        router = self.router
        peer, watermark = router.next_hop(notify.path, notify.watermark)
        if peer is not None:
            body = wire.encode_body(notify.with_watermark(watermark))
            peer.push(body, notify.source, notify.dest)
            return
        if notify.dest != self.key:
            return
        source = notify.source
        now = router.clock.seconds()
        path = self.paths.get(source)
        if path is not None:
            if notify.info.seq <= path.seq or notify.info.path == path.coords:
                return  # old news, or the same coords (a newer seq alone changes nothing)
            if not notify.check(router.verify):
                return
            path.expires = now + PATH_TIMEOUT
        else:
            x = xform(source)
            rumor = self.rumors.get(x)
            if rumor is None:
                return  # we never asked
            if not notify.check(router.verify):
                return
            path = Path(now)
            path.timer = router.clock.callLater(PATH_TIMEOUT, self._expire_path, source)
            if rumor.traffic is not None and rumor.traffic[0] == source:
                path.traffic = rumor.traffic[1]
                rumor.traffic = None
        path.coords = notify.info.path
        path.head = None
        path.seq = notify.info.seq
        path.broken = False
        self.paths[source] = path
        payload, path.traffic = path.traffic, None
        if payload is not None:
            self.send_traffic(source, payload)
        router.path_notified(source)

    # -- traffic --------------------------------------------------------------------------

    def send_traffic(self, dest: bytes, payload: bytes) -> None:
        """Our own traffic: along the known coords, or kept while a lookup runs."""
        path = self.paths.get(dest)
        router = self.router
        if path is not None:
            path.traffic = payload  # cached: resent if a notify moves the path
            head = path.head
            if head is None or head[0] != router.route_epoch:
                head = path.head = router.traffic_head(path.coords, dest)
            peer = head[1]
            if peer is not None:
                peer.push(head[2] + payload, self.key, dest)
                return
            router.forward(
                path.coords, router.tree.own_coords(), self.key, dest, wire.WATERMARK_NONE, payload
            )
            return
        self.rumor_lookup(dest)
        rumor = self.rumors.get(xform(dest))
        if rumor is not None:
            rumor.traffic = (dest, payload)

    # -- broken paths ---------------------------------------------------------------------

    def do_broken(self, from_path: tuple[int, ...], source: bytes, dest: bytes) -> None:
        """Traffic from ``source`` to ``dest`` cannot go on from here: tell the source."""
        self.handle_broken(PathBroken(from_path, wire.WATERMARK_NONE, source, dest))

    def handle_broken(self, broken: PathBroken) -> None:
        router = self.router
        peer, watermark = router.next_hop(broken.path, broken.watermark)
        if peer is not None:
            peer.push(
                wire.encode_body(broken.with_watermark(watermark)), broken.source, broken.dest
            )
            return
        if broken.source != self.key:
            return
        path = self.paths.get(broken.dest)
        if path is not None:
            path.broken = True
            self.send_lookup(broken.dest)

    def close(self) -> None:
        for entry in (*self.paths.values(), *self.rumors.values()):
            if entry.timer is not None and entry.timer.active():
                entry.timer.cancel()
        self.paths.clear()
        self.rumors.clear()
