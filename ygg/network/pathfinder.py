"""Source routes (spec §8): notify, lookup and response.

A node that sends to a destination keeps an entry for it for a minute after the last send.
When DHT-routed traffic reaches its destination, the destination (if it also tracks the
sender) sends a signed notify back through the DHT; the sender answers with a lookup that
walks the tree to the destination collecting the reverse ports; the destination's response
comes back source-routed, and the sender stores the route it carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ygg.network import wire
from ygg.timers import cancel, expire_idle

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.network.router import Router

TIMEOUT = 60.0  # an entry lives this long after the last send; also the keepalive notify period
THROTTLE = 1.0  # at most one lookup per destination per second, and one notify for DHT traffic


class PathEntry:
    __slots__ = ("ltime", "ntime", "path", "timer", "used")

    def __init__(self, now: float) -> None:
        self.path: list[int] | None = None  # None until a response arrived; ends with 0
        self.ltime = now - THROTTLE
        self.ntime = now - THROTTLE
        self.used = now
        self.timer: IDelayedCall | None = None


class Pathfinder:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.key = router.public_key
        self.clock = router.clock
        self.paths: dict[bytes, PathEntry] = {}

    def get_path(self, dest: bytes) -> list[int] | None:
        """Called on every send to ``dest``: keeps its entry alive; its route, if known."""
        now = self.clock.seconds()
        entry = self.paths.get(dest)
        if entry is None:
            entry = self.paths[dest] = PathEntry(now)
            entry.timer = self.clock.callLater(TIMEOUT, self._expire, dest, entry)
        entry.used = now
        return entry.path

    def _expire(self, dest: bytes, entry: PathEntry) -> None:
        expire_idle(self.clock, self.paths, dest, entry, entry.used, TIMEOUT, self._expire)

    def do_notify(self, dest: bytes, keepalive: bool) -> None:
        """Traffic from ``dest`` reached us: tell it where we are, if we talk to it too."""
        entry = self.paths.get(dest)
        if entry is None:
            return
        now = self.clock.seconds()
        if now - entry.ntime <= (TIMEOUT if keepalive else THROTTLE):
            return
        entry.ntime = now
        notify = wire.PathNotify.signed(self.router.node_key.sign, dest, self.router.tree.label())
        self.handle_notify(notify)

    def handle_notify(self, notify: wire.PathNotify) -> None:
        nxt = self.router.dht.lookup(notify.dest, False)
        if nxt is not None:
            nxt.send(wire.PATH_NOTIFY, notify)
            return
        entry = self.paths.get(notify.label.key)
        if entry is None:
            return
        now = self.clock.seconds()
        if now - entry.ltime < THROTTLE or not self.router.check_notify(notify):
            return
        entry.ltime = now
        self.handle_lookup(wire.PathLookup(notify, ()))

    def handle_lookup(self, lookup: wire.PathLookup) -> None:
        notify = lookup.notify
        nxt = self.router.tree.lookup(notify.label)
        if nxt is not None:
            nxt.send(wire.PATH_LOOKUP, lookup)
            return
        if notify.label.key != self.key or not self.router.check_notify(notify):
            return
        route = (*reversed(lookup.rpath), 0)
        self.router.handle_path_response(wire.PathResponse(self.key, route, ()))

    def handle_response(self, response: wire.PathResponse) -> None:
        """A response that ended here: store the route to its sender, if we want one."""
        entry = self.paths.get(response.from_key)
        if entry is not None:
            entry.path = [*reversed(response.rpath), 0]

    def close(self) -> None:
        for entry in self.paths.values():
            cancel(entry.timer)
