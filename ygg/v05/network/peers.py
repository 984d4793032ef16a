"""One v0.5 link as the routing core sees it (docs/spec-v05.md §3.4-§3.8).

The link layer hands each received frame body to :meth:`Peer.handle_body` (or raw stream
bytes to :meth:`Peer.data_received`) and gives the peer a :class:`LinkIO` to write with.
Protocol frames (types 0-5) are written at once and never dropped; lookups, notifies,
brokens and traffic (types 6-9) are written at once while the transport takes them, else
wait in a queue that drops by 0.5.12's 25 ms rule.

Keepalive and timeout follow ironwood's ``peerMonitor``: a frame received (other than a
dummy or keepalive) arms a 1 s keepalive that any write cancels; a frame written (likewise)
arms a 3 s read deadline that any received frame clears.  Both are kept as deadlines with
at most one timer each, so the per-packet path never touches the reactor.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from ygg.errors import DecodeError
from ygg.timers import cancel
from ygg.v05.network import wire

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.v05.network.router import Router

KEEPALIVE_DELAY = 1.0  # peerKeepAliveDelay: answer a received frame this long after it
PEER_TIMEOUT = 3.0  # peerTimeout: hear something back this long after writing
QUEUE_DROP_AGE = 0.025  # 0.5.12: past this age of the oldest queued packet, drop one per push
_SLACK = 1e-6


class LinkError(DecodeError):
    """A frame that decoded but breaks the protocol (ironwood ErrBadMessage and kin): the
    link closes, as for a decode error.  A DecodeError, so link code catches one type."""


class LinkIO(Protocol):
    """What a peer writes with: the link layer's side of one connection."""

    def write_body(self, body: bytes) -> None:
        """Write one frame body (the link adds the uvarint length)."""

    def close(self, reason: str) -> None:
        """Close the connection; the link layer then calls ``Router.remove_peer``."""


class PacketQueue:
    """Queued packets of one link, grouped by destination then source (ironwood
    packetqueue.go).  Popping takes the oldest head; dropping takes the oldest packet of
    the source with most bytes within the destination with most bytes."""

    __slots__ = ("_dests", "size")

    def __init__(self) -> None:
        # dest -> [bytes, {source -> [bytes, deque of (time, body)]}]
        self._dests: dict[bytes, list[Any]] = {}
        self.size = 0

    def __len__(self) -> int:
        return sum(len(s[1]) for d in self._dests.values() for s in d[1].values())

    def oldest_time(self) -> float | None:
        best = None
        for dest in self._dests.values():
            for source in dest[1].values():
                t = source[1][0][0]
                if best is None or t < best:
                    best = t
        return best

    def push(self, source: bytes, dest: bytes, body: bytes, now: float) -> None:
        size = len(body) - 1  # Go counts packet.size(): the payload after the type byte
        d = self._dests.get(dest)
        if d is None:
            d = self._dests[dest] = [0, {}]
        s = d[1].get(source)
        if s is None:
            s = d[1][source] = [0, deque()]
        s[0] += size
        s[1].append((now, body))
        d[0] += size
        self.size += size

    def _take(self, dest: bytes, source: bytes) -> bytes:
        d = self._dests[dest]
        s = d[1][source]
        _, body = s[1].popleft()
        size = len(body) - 1
        s[0] -= size
        d[0] -= size
        self.size -= size
        if not s[1]:
            del d[1][source]
            if not d[1]:
                del self._dests[dest]
        return body

    def drop(self) -> bool:
        if not self._dests:
            return False
        dest, d = max(self._dests.items(), key=lambda item: item[1][0])
        source = max(d[1].items(), key=lambda item: item[1][0])[0]
        self._take(dest, source)
        return True

    def pop(self) -> bytes | None:
        best = None
        for dest, d in self._dests.items():
            for source, s in d[1].items():
                t = s[1][0][0]
                if best is None or t < best[0]:
                    best = (t, dest, source)
        if best is None:
            return None
        return self._take(best[1], best[2])

    def clear(self) -> None:
        self._dests.clear()
        self.size = 0


class Peer:
    """One link to a neighbour; every link to the same key shares that key's ``port``."""

    __slots__ = (
        "_deadline",
        "_deadline_timer",
        "_keepalive",
        "_keepalive_timer",
        "_reader",
        "bytes_recvd",
        "bytes_sent",
        "closed",
        "dropped",
        "key",
        "link",
        "order",
        "paused",
        "port",
        "prio",
        "queue",
        "router",
        "sig_req_time",
        "sig_res_time",
        "started",
    )

    def __init__(
        self, router: Router, key: bytes, port: int, link: LinkIO, prio: int, order: int
    ) -> None:
        self.router = router
        self.key = key
        self.port = port
        self.link = link
        self.prio = prio
        self.order = order  # connection order: older links win ties (ironwood peer.order)
        self.queue = PacketQueue()
        self.paused = False
        self.closed = False
        self.dropped = 0
        self.bytes_sent = 0
        self.bytes_recvd = 0
        self.started = router.clock.seconds()
        self.sig_req_time: float | None = None  # when our last sigReq went out on this link
        self.sig_res_time: float | None = None  # when its answer came back
        self._keepalive: float | None = None  # when a keepalive is due (None: not armed)
        self._deadline: float | None = None  # when the read deadline passes (None: unset)
        self._keepalive_timer: IDelayedCall | None = None
        self._deadline_timer: IDelayedCall | None = None
        self._reader: wire.FrameReader | None = None

    def __repr__(self) -> str:
        return f"<v05 Peer port={self.port} key={self.key.hex()[:16]}… prio={self.prio}>"

    def stop(self) -> None:
        self.closed = True
        cancel(self._keepalive_timer)
        cancel(self._deadline_timer)
        self._keepalive_timer = self._deadline_timer = None
        self._keepalive = self._deadline = None
        self.queue.clear()

    # -- writing --------------------------------------------------------------------------

    def write(self, body: bytes) -> None:
        """Write one frame body now; Go silently sends nothing over the size limit."""
        if self.closed or len(body) > wire.MAX_MESSAGE_SIZE:
            return
        self.bytes_sent += len(body)
        self.link.write_body(body)
        # peerMonitor.sent: any write cancels the keepalive; a real frame sets a deadline.
        self._keepalive = None
        if self._deadline is None and body[0] > wire.KEEPALIVE:
            now = self.router.clock.seconds()
            self._deadline = now + PEER_TIMEOUT
            if self._deadline_timer is None:
                self._deadline_timer = self.router.clock.callLater(
                    PEER_TIMEOUT, self._check_deadline
                )

    def send_sig_req(self, body: bytes) -> None:
        self.write(body)
        if not self.closed:
            self.sig_req_time = self.router.clock.seconds()

    def push(self, body: bytes, source: bytes, dest: bytes) -> None:
        """A queued packet (lookup, notify, broken, traffic) from ``source`` to ``dest``."""
        if not self.paused:
            self.write(body)
            return
        if self.closed or len(body) > wire.MAX_MESSAGE_SIZE:
            return
        now = self.router.clock.seconds()
        queue = self.queue
        oldest = queue.oldest_time()
        if oldest is not None and now - oldest > QUEUE_DROP_AGE and queue.drop():
            self.dropped += 1
        queue.push(source, dest, body, now)

    def pause(self) -> None:
        """The transport is full: hold queued packets."""
        self.paused = True

    def resume(self) -> None:
        """The transport drained: write queued packets until it fills again."""
        self.paused = False
        while not self.paused and not self.closed:
            body = self.queue.pop()
            if body is None:
                break
            self.write(body)

    # -- timers ---------------------------------------------------------------------------

    def _check_keepalive(self) -> None:
        self._keepalive_timer = None
        due = self._keepalive
        if self.closed or due is None:
            return
        left = due - self.router.clock.seconds()
        if left <= _SLACK:
            self.write(wire.KEEPALIVE_FRAME[1:])
        else:
            self._keepalive_timer = self.router.clock.callLater(left, self._check_keepalive)

    def _check_deadline(self) -> None:
        self._deadline_timer = None
        due = self._deadline
        if self.closed or due is None:
            return
        left = due - self.router.clock.seconds()
        if left <= _SLACK:
            self.link.close("read: i/o timeout")
        else:
            self._deadline_timer = self.router.clock.callLater(left, self._check_deadline)

    # -- reading --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Raw stream bytes: split into frames (uvarint lengths) and handle each.  Raises
        DecodeError where Go closes the link, after handling the frames before the fault."""
        if self._reader is None:
            self._reader = wire.FrameReader()
        try:
            bodies = self._reader.feed(data)
        except wire.FrameError as e:
            for body in e.bodies:
                self.handle_body(body)
            raise
        for body in bodies:
            self.handle_body(body)

    def handle_body(self, body: bytes) -> None:
        """One received frame body.  Raises DecodeError (LinkError included) where Go
        closes the link; the caller closes it and calls ``Router.remove_peer``."""
        if self.closed:
            return
        if not body:
            raise LinkError("empty message")
        self.bytes_recvd += len(body)
        ptype = body[0]
        # peerMonitor.recv: clear the deadline; a real frame arms the keepalive.
        self._deadline = None
        if self._keepalive is None and ptype > wire.KEEPALIVE:
            self._keepalive = self.router.clock.seconds() + KEEPALIVE_DELAY
            if self._keepalive_timer is None:
                self._keepalive_timer = self.router.clock.callLater(
                    KEEPALIVE_DELAY, self._check_keepalive
                )
        if ptype == wire.TRAFFIC:
            self.router.handle_traffic(body, self)
        elif ptype > wire.TRAFFIC:
            raise LinkError(f"unrecognized message type {ptype}")
        elif ptype > wire.KEEPALIVE:
            self.router.handle_protocol(self, ptype, wire.decode_body(body))
