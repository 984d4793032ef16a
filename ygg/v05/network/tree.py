"""The v0.5 spanning tree: a CRDT of signed per-node infos (docs/spec-v05.md §5.1-§5.5).

Each node holds at most one info per key (parent, seq, nonce, port, the parent's signature
and the node's own).  Infos are gossiped along ancestries: every tick a node sends each
neighbour the infos of its own ancestry and of that neighbour's that it has not sent
yet.  Parents are chosen by root, then cost = link cost × the candidate's hops to the root,
with 0.5.11's hysteresis (a lower cost alone only wins on refresh, and only at half).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ygg.timers import cancel
from ygg.v05.network import wire
from ygg.v05.network.wire import Announce, SigReq, SigRes

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.v05.network.peers import Peer
    from ygg.v05.network.router import Router

ROUTER_REFRESH = 240.0  # routerRefresh: our own info is renewed this often
ROUTER_TIMEOUT = 300.0  # routerTimeout: anyone else's info is forgotten this long after
UNKNOWN_LATENCY = (1 << 32) - 1  # ns, a link's lag before its first answer (cost 4294)
INFINITE = (1 << 64) - 1
#: Infos held at most.  Go has no bound; only ancestries of ourself and our neighbours are
#: ever needed, so past this a peer's flood of made-up self-signed roots is dropped.
MAX_INFOS = 1 << 16


class Info:
    """One accepted announce, its encoded frame body (made once) and its expiry timer."""

    __slots__ = ("_body", "ann", "timer")

    def __init__(self, ann: Announce, timer: IDelayedCall | None) -> None:
        self.ann = ann
        self.timer = timer
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = wire.encode_body(self.ann)
        return self._body


class Tree:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.key = router.public_key
        self.infos: dict[bytes, Info] = {}
        self.sent: dict[bytes, set[bytes]] = {}  # neighbour key -> keys whose info it has
        self.requests: dict[bytes, SigReq] = {}  # neighbour key -> our outstanding request
        self.responses: dict[bytes, SigRes] = {}  # neighbour key -> its first good answer
        self.lags: dict[Peer, int] = {}  # link -> latency estimate in ns
        self.responded: set[Peer] = set()  # links whose answer to the request was timed
        self.refresh = False
        self.do_root1 = False
        self.do_root2 = True  # so the first tick makes us root
        self._coords: dict[bytes, tuple[int, ...] | None] = {}
        self._chains: dict[bytes, tuple[bytes, ...]] = {}
        # Whether _fix or _sendAnnounces could do anything different from last tick: both
        # are functions of the infos, links, answers and costs, so a quiet tick skips them.
        self._fix_dirty = True
        self._announce_dirty = True

    # -- links ----------------------------------------------------------------------------

    def add_link(self, peer: Peer, first: bool) -> None:
        """A link came up (router.addPeer's tree part): replay what the key already has,
        then (re)send our request on it."""
        key = peer.key
        self._fix_dirty = self._announce_dirty = True
        if first:
            self.sent[key] = set()
        else:
            for k in self.sent[key]:
                info = self.infos.get(k)
                if info is not None:
                    peer.write(info.body)
        self.lags[peer] = UNKNOWN_LATENCY
        req = self.requests.get(key)
        if req is None:
            req = self.requests[key] = self._new_req()
        self.responded.discard(peer)
        peer.send_sig_req(wire.encode_body(req))

    def remove_link(self, peer: Peer, last: bool) -> None:
        self._fix_dirty = self._announce_dirty = True
        self.lags.pop(peer, None)
        self.responded.discard(peer)
        if last:
            key = peer.key
            self.sent.pop(key, None)
            self.requests.pop(key, None)
            self.responses.pop(key, None)

    def cost(self, peer: Peer) -> int:
        """Link cost: the lag in whole milliseconds, at least 1."""
        return max(1, self.lags.get(peer, UNKNOWN_LATENCY) // 1_000_000)

    # -- requests and responses (§5.3) ----------------------------------------------------

    def _new_req(self) -> SigReq:
        own = self.infos.get(self.key)
        return SigReq((own.ann.seq if own is not None else 0) + 1, self.router.new_nonce())

    def send_reqs(self) -> None:
        """Our info changed: forget every request and answer, ask each neighbour afresh."""
        self.requests.clear()
        self.responses.clear()
        for key, links in self.router.peers.items():
            req = self.requests[key] = self._new_req()
            body = wire.encode_body(req)
            for peer in links:
                self.responded.discard(peer)
                peer.send_sig_req(body)

    def handle_request(self, peer: Peer, req: SigReq) -> None:
        res = SigRes(req.seq, req.nonce, peer.port, b"\0" * wire.SIG_SIZE)
        psig = self.router.node_key.sign(res.message(peer.key, self.key))
        peer.write(wire.encode_body(SigRes(req.seq, req.nonce, peer.port, psig)))

    def handle_response(self, peer: Peer, res: SigRes, rtt: float) -> None:
        key = peer.key
        req = self.requests.get(key)
        if req is None or req != res.req:
            return
        if key not in self.responses:
            self.responses[key] = res
            self._fix_dirty = True
        if peer not in self.responded:
            self._fix_dirty = True
            self.responded.add(peer)
            sample = max(0, round(rtt * 1e9))
            lag = self.lags.get(peer, UNKNOWN_LATENCY)
            if lag == UNKNOWN_LATENCY:
                self.lags[peer] = 2 * sample  # new links start with a penalty
            else:
                self.lags[peer] = lag * 7 // 8 + min(sample, 2 * lag) // 8
            self.router.routes_changed()  # the link's cost may differ

    # -- the CRDT (§5.2) ------------------------------------------------------------------

    def update(self, ann: Announce) -> bool:
        """Go's ``_update``, identical on every node: accept a newer seq, then a lower
        parent, then a lower nonce."""
        key = ann.key
        old = self.infos.get(key)
        if old is not None:
            o = old.ann
            if o.seq > ann.seq:
                return False
            if o.seq == ann.seq:
                if o.parent < ann.parent:
                    return False
                if o.parent == ann.parent and ann.nonce >= o.nonce:
                    return False
            cancel(old.timer)
        elif len(self.infos) >= MAX_INFOS and key != self.key:
            return False
        for sent in self.sent.values():
            sent.discard(key)
        self.reset_cache()
        clock = self.router.clock
        if key == self.key:
            timer = clock.callLater(ROUTER_REFRESH, self._refresh_due, key)
        else:
            timer = clock.callLater(ROUTER_TIMEOUT, self._expire, key)
        self.infos[key] = Info(ann, timer)
        self.router.tree_changed()
        return True

    def _refresh_due(self, key: bytes) -> None:
        self.refresh = True

    def _expire(self, key: bytes) -> None:
        # A replaced info's timer was cancelled, so this is the live one.
        if self.infos.pop(key, None) is None:
            return
        for sent in self.sent.values():
            sent.discard(key)
        self.reset_cache()
        self.router.tree_changed()

    def handle_announce(self, peer: Peer, ann: Announce) -> None:
        """An announce that passed its signature check (§4.4) arrived on ``peer``."""
        sent = self.sent.get(peer.key)
        if self.update(ann):
            if ann.key == self.key:
                self.refresh = True  # someone held a newer info of ours: renew it
            if sent is not None:
                sent.add(ann.key)
            return
        old = self.infos.get(ann.key)
        if old is None:
            return  # refused by the table bound, not by the CRDT
        if sent is not None:
            sent.add(ann.key)
        if old.ann != ann:
            peer.write(old.body)  # they hold something worse: tell that link what we know

    def info(self, key: bytes) -> Announce | None:
        info = self.infos.get(key)
        return info.ann if info is not None else None

    # -- ancestry, roots, coords (§5.4-§5.5) ----------------------------------------------

    def chain(self, key: bytes) -> tuple[bytes, ...]:
        """``key`` then its parent and so on, up to a root, a missing info or a repeat.
        Cached until the tree changes."""
        cached = self._chains.get(key)
        if cached is not None:
            return cached
        out: list[bytes] = []
        seen: set[bytes] = set()
        infos = self.infos
        here = key
        while here not in seen:
            info = infos.get(here)
            if info is None:
                break
            out.append(here)
            seen.add(here)
            here = info.ann.parent
        result = self._chains[key] = tuple(out)
        return result

    def coords(self, key: bytes) -> tuple[int, ...] | None:
        """Ports from the root down to ``key``; None on a loop or a missing info (Go's
        empty path with the key as root).  Cached until the tree changes."""
        cache = self._coords
        if key in cache:
            return cache[key]
        infos = self.infos
        ports: list[int] = []
        seen: set[bytes] = set()
        here = key
        result: tuple[int, ...] | None = None
        while True:
            if here in seen:
                break
            info = infos.get(here)
            if info is None:
                break
            seen.add(here)
            ann = info.ann
            if ann.parent == here:
                ports.reverse()
                result = tuple(ports)
                break
            ports.append(ann.port)
            here = ann.parent
        cache[key] = result
        return result

    def root(self, key: bytes) -> bytes:
        """The root ``key``'s coords lead to (``key`` itself when there are none)."""
        chain = self.chain(key)
        if not chain or self.infos[chain[-1]].ann.parent != chain[-1]:
            return key
        return chain[-1]

    def own_coords(self) -> tuple[int, ...]:
        return self.coords(self.key) or ()

    def dist(self, path: tuple[int, ...], key: bytes) -> int:
        """Tree distance from ``key`` to the coords ``path`` (Go ``_getDist``)."""
        coords = self._coords.get(key, False)
        if coords is False:
            coords = self.coords(key)
        if not coords:
            return len(path)
        common = 0
        for a, b in zip(coords, path, strict=False):
            if a != b:
                break
            common += 1
        return len(coords) + len(path) - 2 * common

    def reset_cache(self) -> None:
        """The infos changed: coords and chains may differ, and so may _fix's choice."""
        self._coords.clear()
        self._chains.clear()
        self._fix_dirty = self._announce_dirty = True
        self.router.routes_changed()

    # -- the tick (§5.4, §5.2) ------------------------------------------------------------

    def fix(self) -> None:
        """Choose a parent (Go ``_fix``), with 0.5.11's "only move for a larger cost
        benefit" rule."""
        if not (self._fix_dirty or self.refresh or self.do_root1 or self.do_root2):
            return
        self._fix_dirty = False
        me = self.key
        peers = self.router.peers
        infos = self.infos
        own = infos.get(me)
        current = own.ann.parent if own is not None else None
        best_root, best_parent, best_cost = me, me, INFINITE
        if current in peers:
            chain = self.chain(me)
            root = chain[-1]
            if root < best_root:
                hops = len(chain) - 1
                best_root, best_parent = root, current
                best_cost = min(hops * self.cost(p) for p in peers[current])  # type: ignore[index]
        for key in self.responses:
            if key not in infos:
                continue  # we do not know where this neighbour is
            chain = self.chain(key)
            if me in chain:
                continue  # it would loop through us
            root = chain[-1]
            hops = len(chain) - 1
            cost = min((hops * self.cost(p) for p in peers.get(key, ())), default=INFINITE)
            if root < best_root:
                best_root, best_parent, best_cost = root, key, cost
            elif root != best_root:
                continue
            if (self.refresh and cost * 2 < best_cost) or (
                best_parent != current and cost < best_cost
            ):
                best_root, best_parent, best_cost = root, key, cost
        if self.refresh or self.do_root1 or self.do_root2 or current != best_parent:
            res = self.responses.get(best_parent)
            if res is not None and best_root != me and self._use_response(best_parent, res):
                self.refresh = self.do_root1 = self.do_root2 = False
                self.send_reqs()
            elif self.do_root2:
                self._become_root()
                self.refresh = self.do_root1 = self.do_root2 = False
                self.send_reqs()
            elif not self.do_root1:
                self.do_root1 = True

    def _use_response(self, parent: bytes, res: SigRes) -> bool:
        sig = self.router.node_key.sign(res.message(self.key, parent))
        return self.update(Announce.from_res(self.key, parent, res, sig))

    def _become_root(self) -> None:
        req = self._new_req()
        me = self.key
        sig = self.router.node_key.sign(wire.sig_message(me, me, req.seq, req.nonce, 0))
        self.update(Announce(me, me, req.seq, req.nonce, 0, sig, sig))

    def send_announces(self) -> None:
        """Send each neighbour the infos of our ancestry and of its own that it lacks."""
        if not self._announce_dirty:
            return
        self._announce_dirty = False
        peers = self.router.peers
        own = self.chain(self.key)[::-1]
        infos = self.infos
        for key, sent in self.sent.items():
            bodies = []
            for k in own + self.chain(key)[::-1]:
                if k not in sent:
                    sent.add(k)
                    bodies.append(infos[k].body)
            if bodies:
                for peer in peers.get(key, ()):
                    for body in bodies:
                        peer.write(body)

    def on_tree(self, key: bytes) -> bool:
        """``key`` is our parent or names us as its parent (Go ``_fixOnTree``)."""
        own = self.infos.get(self.key)
        if own is not None and own.ann.parent == key:
            return True
        info = self.infos.get(key)
        return info is not None and info.ann.parent == self.key

    def close(self) -> None:
        for info in self.infos.values():
            cancel(info.timer)
        self.infos.clear()
