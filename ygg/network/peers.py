"""One peer link as the routing core sees it: port, key, priority, writer, queue, timers.

The link layer hands each received frame body to :meth:`Peer.handle_body` and gives the
peer something to write with (:class:`LinkIO`).  Protocol frames are written at once and
never dropped; traffic frames are written at once while the link's transport takes them and
otherwise wait in a queue that drops by ironwood's rule (spec §10).  The link tells the
peer when its transport is full (``pause``) and drained again (``resume``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ygg.errors import YggError
from ygg.network import wire
from ygg.timers import cancel

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from ygg.network.router import Router
    from ygg.network.tree import Info

KEEPALIVE = 4.0  # write a keepalive this long after the last write of any kind
TIMEOUT = 6.0  # close a link that delivered no complete frame for this long
QUEUE_DROP_AGE = 0.025  # traffic waits at most this long before the queue starts dropping
_TIMER_SLACK = 1e-3


class LinkError(YggError):
    """A peer broke the protocol in a way the Go node answers by closing the link."""


@dataclass(frozen=True, slots=True)
class LinkStats:
    """What the link layer tells of one connection, for getPeers and features."""

    remote: str  # the dialled URI, or tcp://ip:port for inbound
    inbound: bool
    uptime: float
    bytes_recvd: int
    bytes_sent: int
    #: Bytes in the last whole second the link was up (0.5's getPeers rate_recvd/rate_sent).
    rate_recvd: int = 0
    rate_sent: int = 0
    #: Frames read and written (metrics).
    packets_recvd: int = 0
    packets_sent: int = 0


class LinkIO(Protocol):
    """What a peer writes with: the link layer's side of one connection."""

    def stats(self) -> LinkStats:
        """The connection's name, direction, age and byte counts."""

    def write_body(self, body: bytes) -> None:
        """Write one frame body (the link adds the u16 length prefix)."""

    def close(self, reason: str) -> None:
        """Close the connection; the link layer then calls ``Router.remove_peer``."""


class PacketQueue:
    """Traffic waiting for a busy link: FIFO per (source, dest) stream, oldest head first.

    When the oldest packet has waited longer than 25 ms, each push first drops the oldest
    packet of the stream holding the most payload bytes (ironwood's packetqueue).
    """

    __slots__ = ("_streams", "size")

    def __init__(self) -> None:
        # stream id -> [payload bytes queued, deque of (time, body, payload size)]
        self._streams: dict[bytes, list[Any]] = {}
        self.size = 0

    def __len__(self) -> int:
        return sum(len(s[1]) for s in self._streams.values())

    def oldest_time(self) -> float | None:
        heads = [s[1][0][0] for s in self._streams.values()]
        return min(heads) if heads else None

    def push(self, stream: bytes, body: bytes, size: int, now: float) -> None:
        entry = self._streams.get(stream)
        if entry is None:
            entry = self._streams[stream] = [0, deque()]
        entry[0] += size
        entry[1].append((now, body, size))
        self.size += size

    def drop(self) -> bool:
        if not self._streams:
            return False
        stream, entry = max(self._streams.items(), key=lambda item: item[1][0])
        self._take(stream, entry)
        return True

    def pop(self) -> bytes | None:
        if not self._streams:
            return None
        stream, entry = min(self._streams.items(), key=lambda item: item[1][1][0][0])
        return self._take(stream, entry)

    def _take(self, stream: bytes, entry: list[Any]) -> bytes:
        _, body, size = entry[1].popleft()
        entry[0] -= size
        self.size -= size
        if not entry[1]:
            del self._streams[stream]
        return body

    def clear(self) -> None:
        self._streams.clear()
        self.size = 0


class Peer:
    """One link to a neighbour, numbered by its local ``port``."""

    __slots__ = (
        "_keepalive",
        "_last_read",
        "_last_write",
        "_timeout",
        "closed",
        "dropped",
        "info",
        "key",
        "link",
        "paused",
        "port",
        "prio",
        "queue",
        "router",
    )

    def __init__(self, router: Router, key: bytes, port: int, link: LinkIO, prio: int) -> None:
        self.router = router
        self.key = key
        self.port = port
        self.link = link
        self.prio = prio
        self.info: Info | None = None  # the last valid tree info this link delivered
        self.queue = PacketQueue()
        self.paused = False
        self.closed = False
        self.dropped = 0
        now = router.clock.seconds()
        self._last_write = now
        self._last_read = now
        self._keepalive: IDelayedCall | None = None
        self._timeout: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<Peer port={self.port} key={self.key.hex()[:16]}… prio={self.prio}>"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """The link-start sequence (spec §3.4): the seq-0 tree "hack", then our priority."""
        self.router.tree.send_link_start(self)
        if self.prio > 0:
            self.write(wire.priority_body(self.prio))
        clock = self.router.clock
        self._timeout = clock.callLater(TIMEOUT, self._check_timeout)
        if self._keepalive is None:
            self._keepalive = clock.callLater(KEEPALIVE, self._check_keepalive)

    def stop(self) -> None:
        self.closed = True
        for timer in (self._keepalive, self._timeout):
            cancel(timer)
        self._keepalive = self._timeout = None
        self.queue.clear()

    # -- writing --------------------------------------------------------------------------

    def write(self, body: bytes) -> None:
        """Write a frame body now (protocol frames, and traffic when the link is free)."""
        if self.closed or len(body) > wire.MAX_BODY:
            return  # Go silently does not send a frame it cannot length-prefix
        self._last_write = self.router.clock.seconds()
        self.link.write_body(body)

    def send(self, ptype: int, packet: wire.Packet) -> None:
        self.write(wire.body(ptype, packet.encode()))

    def push(self, body: bytes, offset: int) -> None:
        """Send a traffic body whose header (source, dest, kind) starts at ``offset``."""
        if not self.paused:
            self.write(body)
            return
        if self.closed:
            return
        now = self.router.clock.seconds()
        queue = self.queue
        oldest = queue.oldest_time()
        if oldest is not None and now - oldest > QUEUE_DROP_AGE and queue.drop():
            self.dropped += 1
        stream = body[offset : offset + 2 * wire.KEY_SIZE]
        queue.push(stream, body, len(body) - offset - wire.TRAFFIC_HEADER, now)

    def pause(self) -> None:
        """The link's transport is full: hold traffic in the queue."""
        self.paused = True

    def resume(self) -> None:
        """The link's transport drained: send queued traffic until it fills again."""
        self.paused = False
        queue = self.queue
        while not self.paused and not self.closed:
            body = queue.pop()
            if body is None:
                break
            self.write(body)

    # -- timers ---------------------------------------------------------------------------

    def _check_keepalive(self) -> None:
        self._keepalive = None
        if self.closed:
            return
        due = self._last_write + KEEPALIVE - self.router.clock.seconds()
        if due <= _TIMER_SLACK:
            self.write(wire.KEEPALIVE)
            due = KEEPALIVE
        self._keepalive = self.router.clock.callLater(due, self._check_keepalive)

    def _check_timeout(self) -> None:
        self._timeout = None
        if self.closed:
            return
        due = self._last_read + TIMEOUT - self.router.clock.seconds()
        if due <= _TIMER_SLACK:
            self.link.close("no frame for 6 seconds")
            return
        self._timeout = self.router.clock.callLater(due, self._check_timeout)

    # -- reading --------------------------------------------------------------------------

    def handle_body(self, body: bytes) -> None:
        """One received frame body.  Raises LinkError or DecodeError where Go closes the link."""
        self._last_read = self.router.clock.seconds()
        if not body:
            raise LinkError("empty packet")
        ptype = body[0]
        router = self.router
        if ptype == wire.PATH_TRAFFIC:
            router.handle_path_traffic(body, self)
        elif ptype == wire.DHT_TRAFFIC:
            router.handle_dht_traffic(body, 1, True, self)
        elif ptype == wire.DUMMY:
            prio = wire.dummy_priority(body)
            if prio is not None and prio > self.prio:
                self.prio = prio
        elif ptype > wire.PATH_TRAFFIC:
            raise LinkError(f"unrecognized packet type {ptype}")
        else:
            router.handle_protocol(self, ptype, wire.decode_body(body))
