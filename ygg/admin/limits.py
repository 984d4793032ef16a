"""How an admin door shares its connections out: one small helper for all three doors.

A door holds at most ``total`` connections and at most ``per_client`` from one client: a
unix-socket peer is its uid (``SO_PEERCRED``), a TCP peer its address.  A newcomer is not
turned away because others hold every place: it takes the place of a connection that can
be given up, chosen in this order —

1. connections the peer has already closed (reset or end of stream waiting to be read),
   which otherwise count until the reactor gets round to reading them;
2. at the per-client limit, that client's own; at the total, those of the client holding
   the most places, so a crowd from one address or user pays for itself;
3. the cheapest to lose first (the door ranks them: an SSH connection before key
   exchange before one in login), then the longest idle.

A connection that must not be closed (answering a request, logged in to the shell) is
never chosen; only when no connection can be given up is the newcomer refused.
``twisted.protocols.policies.LimitTotalConnectionsFactory`` refuses the newcomer instead,
which is what let idle connections lock the doors, hence this helper.

What happens under pressure is logged at most once a minute per door and kind of event,
with the count of the ones not logged, so a flood of connections cannot flood the log.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger, LogLevel, globalLogPublisher

log = Logger(namespace="ygg.admin")

#: Seconds between two log lines about the same kind of event.
NOTICE_INTERVAL = 60.0


class Held(Protocol):
    """What a door's protocol offers the helper."""

    transport: Any

    def eviction_rank(self) -> int | None:
        """None while the connection must stay; else lower ranks are closed first."""


def client_of(transport: Any) -> str:
    """Who is on the other end: ``uid N`` for a unix socket peer, the address for TCP."""
    peer = transport.getPeer()
    if isinstance(peer, (IPv4Address, IPv6Address)):
        return str(peer.host)
    if isinstance(peer, UNIXAddress):
        option = getattr(socket, "SO_PEERCRED", None)  # Linux
        try:
            handle = transport.getHandle()
            if option is not None and isinstance(handle, socket.socket):
                _pid, uid, _gid = struct.unpack(
                    "3i", handle.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
                )
                return f"uid {uid}"
        except (AttributeError, OSError):
            pass
        return "unix"
    return type(peer).__name__


def _peer_gone(transport: Any) -> bool:
    """Whether the peer has closed or reset a connection not yet read to its end."""
    try:
        handle = transport.getHandle()
    except AttributeError:
        return False
    if not isinstance(handle, socket.socket):
        return False  # TLS: the handle is the TLS connection; not peeked at
    try:
        return handle.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # reset


class Notices:
    """Log lines about one kind of event at most once per ``interval`` seconds each."""

    def __init__(self, clock: Any, interval: float = NOTICE_INTERVAL) -> None:
        self.clock = clock
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def emit(self, kind: str, level: LogLevel, format: str, **fields: Any) -> None:
        now = self.clock.seconds()
        last = self._last.get(kind)
        if last is not None and now - last[0] < self.interval:
            self._last[kind] = (last[0], last[1] + 1)
            return
        skipped = last[1] if last is not None else 0
        if skipped:
            format += " ({skipped} more like this not logged)"
        log.emit(level, format, skipped=skipped, **fields)
        self._last[kind] = (now, 0)


@dataclass
class _Place:
    client: str
    last_active: float


class Slots:
    """The connections one door holds (see the module's text)."""

    def __init__(self, what: str, total: int, per_client: int, clock: Any) -> None:
        self.what = what
        self.total = total
        self.per_client = per_client
        self.clock = clock
        self.notices = Notices(clock)
        self._held: dict[Held, _Place] = {}
        self._closing: dict[Held, Deferred[None]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, protocol: object) -> bool:
        return protocol in self._held

    def admit(self, protocol: Held) -> bool:
        """Give ``protocol`` (just connected) a place, closing another if need be; False
        when there is none to give (then the caller closes the newcomer)."""
        client = client_of(protocol.transport)
        if len(self._held) >= self.total or self._count(client) >= self.per_client:
            self._drop_gone()
        if self._count(client) >= self.per_client and not self._evict(client):
            self.notices.emit(
                "refused-client",
                LogLevel.warn,
                "{what}: refused a connection from {client}: it holds {limit} busy ones",
                what=self.what,
                client=client,
                limit=self.per_client,
            )
            return False
        if len(self._held) >= self.total and not self._evict(None):
            self.notices.emit(
                "refused",
                LogLevel.warn,
                "{what}: refused a connection: all {limit} are busy",
                what=self.what,
                limit=self.total,
            )
            return False
        self._held[protocol] = _Place(client, self.clock.seconds())
        return True

    def touch(self, protocol: Held) -> None:
        """The connection did something worth keeping it for."""
        place = self._held.get(protocol)
        if place is not None:
            place.last_active = self.clock.seconds()

    def release(self, protocol: Held) -> None:
        """The connection is gone (its ``connectionLost``) or being closed: its place is
        free."""
        self._held.pop(protocol, None)
        closing = self._closing.pop(protocol, None)
        if closing is not None:
            closing.callback(None)

    def close_all(self) -> Deferred[Any]:
        """Abort every connection (the door is closing; a client that does not read must
        not hold up the node's stop); fires once each has been released."""
        waits = []
        for protocol in list(self._held):
            waits.append(self._closing.setdefault(protocol, Deferred()))
            protocol.transport.abortConnection()
        return DeferredList(waits)

    # -- choosing whom to close ---------------------------------------------------------

    def _count(self, client: str) -> int:
        return sum(1 for place in self._held.values() if place.client == client)

    def _drop_gone(self) -> None:
        for protocol in [p for p in self._held if _peer_gone(p.transport)]:
            self.release(protocol)
            protocol.transport.abortConnection()

    def _evict(self, client: str | None) -> bool:
        """Close one connection of ``client`` (None: of whoever holds the most)."""
        counts: dict[str, int] = {}
        for place in self._held.values():
            counts[place.client] = counts.get(place.client, 0) + 1
        best: tuple[Any, ...] | None = None
        victim: Held | None = None
        for protocol, place in self._held.items():
            if client is not None and place.client != client:
                continue
            rank = protocol.eviction_rank()
            if rank is None:
                continue
            key = (-counts[place.client], rank, place.last_active)
            if best is None or key < best:
                best, victim = key, protocol
        if victim is None:
            return False
        place = self._held[victim]
        self.release(victim)
        victim.transport.abortConnection()
        self.notices.emit(
            "evicted-client" if client is not None else "evicted",
            LogLevel.info,
            "{what}: {limit} connections from {client}; closed its longest idle"
            if client is not None
            else "{what}: all {limit} connections taken; closed the longest idle of {client}",
            what=self.what,
            client=place.client,
            limit=self.per_client if client is not None else self.total,
        )
        return True


def quiet(event: dict[str, Any]) -> None:
    """A log observer for Twisted's own per-connection chatter (conch's "connection
    lost", "channel open", "Got remote error"…): whatever a peer can make it say goes on
    at debug level, so a stream of connections cannot fill the log; failures (bugs)
    stay as they are."""
    if event.get("log_level") in (LogLevel.info, LogLevel.warn, LogLevel.error):
        event["log_level"] = LogLevel.debug
    globalLogPublisher(event)


#: A ``Logger`` to put in place of a Twisted class's ``_log`` for the same effect.
quiet_log = Logger(observer=quiet)
