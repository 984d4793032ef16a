"""The DNS client of the meshname server: asks the server of the node a name encodes.

One UDP socket per address family for all lookups, replies matched by ID, source and
question; a truncated reply is asked again over TCP within the same deadline.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer, error
from twisted.internet.protocol import ClientFactory, DatagramProtocol
from twisted.names import common, dns
from twisted.names import error as dns_error
from twisted.protocols.basic import Int16StringReceiver

from ygg.popura.meshname.metrics import Latencies
from ygg.popura.meshname.targets import REMOTE, Target
from ygg.popura.meshname.wire import HEADER, MAX_DATAGRAM, decode_message

#: How long a remote meshname server has to answer (Popura: 5 s, no retries).
UPSTREAM_TIMEOUT = 5.0
#: Remote lookups in flight at once; more get SERVFAIL at once.
MAX_PENDING = 256


class Busy(Exception):
    """Too many remote lookups in flight."""


class NoMesh(Exception):
    """The node has no TUN, so 200::/7 is not routed into the mesh from this host."""


def default_upstream(address: ipaddress.IPv6Address) -> tuple[str, int]:
    """Where the DNS server of a meshname label is: UDP port 53 of its address."""
    return str(address), 53


class _Pending(NamedTuple):
    deferred: defer.Deferred
    server: tuple[str, int]
    query: dns.Query


class _UpstreamSocket(DatagramProtocol):
    """One UDP socket for all remote lookups of an address family; replies are matched by
    message ID, server address and question (mesh source addresses cannot be forged: they
    are bound to the sender's key)."""

    noisy = False

    def logPrefix(self) -> str:
        return "Meshname client (UDP)"

    def __init__(self) -> None:
        self.pending: dict[int, _Pending] = {}

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        if len(data) < HEADER.size:
            return
        entry = self.pending.get(struct.unpack_from("!H", data)[0])
        if entry is None or not _same_host(addr, entry.server):
            return
        try:
            message = decode_message(data)
        except ValueError:
            return
        if not message.answer or not _answers(message, entry.query):
            return
        del self.pending[message.id]
        entry.deferred.callback(message)

    def connectionRefused(self) -> None:
        pass  # an unconnected socket: not reported per destination; the lookup times out


def _same_host(addr: Any, server: tuple[str, int]) -> bool:
    try:
        return addr[1] == server[1] and ipaddress.ip_address(
            addr[0].split("%", 1)[0]
        ) == ipaddress.ip_address(server[0])
    except (ValueError, IndexError, TypeError):
        return False


def _answers(message: dns.Message, query: dns.Query) -> bool:
    if not message.queries:
        return True  # allowed for some errors; the ID and source matched
    q = message.queries[0]
    return (
        q.type == query.type
        and q.cls == query.cls
        and q.name.name.lower() == query.name.name.lower()
    )


class _StreamExchange(Int16StringReceiver):
    """One query over TCP (after a truncated UDP reply): send, read one reply, close."""

    def __init__(self, request: bytes, query: dns.Query, deferred: defer.Deferred) -> None:
        self.request = request
        self.query = query
        self.deferred = deferred

    def connectionMade(self) -> None:
        self.sendString(self.request)

    def stringReceived(self, data: bytes) -> None:
        try:
            message = decode_message(data)
        except ValueError:
            message = None
        if message is not None and message.answer and _answers(message, self.query):
            if not self.deferred.called:
                self.deferred.callback(message)
        self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        if not self.deferred.called:
            self.deferred.errback(error.ConnectionLost("no reply over TCP"))


class _StreamExchangeFactory(ClientFactory):
    noisy = False

    def __init__(self, request: bytes, query: dns.Query, deferred: defer.Deferred) -> None:
        self.request, self.query, self.deferred = request, query, deferred

    def buildProtocol(self, addr: Any) -> _StreamExchange:
        return _StreamExchange(self.request, self.query, self.deferred)

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        if not self.deferred.called:
            self.deferred.errback(reason)


class MeshForwarder(common.ResolverBase):
    """Asks the DNS server of the node a meshname label names, over the mesh.

    ``upstream`` maps the decoded address to the (host, port) to ask; by default port 53
    of that address, as Popura does.  Tests point it at a local server.  One question
    per lookup, RD set, no EDNS; 5 s in all, no retries; a truncated reply is asked
    again over TCP within the same 5 s.  Identical lookups in flight share one question.
    """

    def __init__(
        self,
        reactor: Any,
        classify: Callable[[bytes], Target],
        *,
        upstream: Callable[[ipaddress.IPv6Address], tuple[str, int]] = default_upstream,
        timeout: float = UPSTREAM_TIMEOUT,
        max_pending: int = MAX_PENDING,
        stats: Counter | None = None,
        reachable: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.reachable = reachable
        self.classify = classify
        self.upstream = upstream
        self.timeout = timeout
        self.max_pending = max_pending
        self.stats = stats if stats is not None else Counter()
        #: How long answered forwards took (metrics).
        self.latencies = Latencies()
        self._sockets: dict[int, tuple[_UpstreamSocket, Any]] = {}
        self._inflight: dict[tuple, list[defer.Deferred]] = {}
        self._exchanges: set[defer.Deferred] = set()

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred:
        target = self.classify(name)
        if target.kind != REMOTE or target.address is None:
            return defer.fail(dns_error.DomainError(name))
        if not self.reachable():
            # Without our TUN the host would route 200::/7 elsewhere (off this machine).
            self.stats["no tun"] += 1
            return defer.fail(NoMesh())
        server = self.upstream(target.address)
        key = (server, name.lower(), type, cls)
        waiting = self._inflight.get(key)
        if waiting is not None:
            d: defer.Deferred = defer.Deferred()
            waiting.append(d)
            return d.addCallback(self._result)
        if len(self._exchanges) >= self.max_pending:
            self.stats["busy"] += 1
            return defer.fail(Busy())
        self._inflight[key] = waiting = []
        self.stats["forwarded"] += 1
        query = dns.Query(name, type, cls)
        started = self.reactor.seconds()
        exchange = self._exchange(server, query)
        self._exchanges.add(exchange)

        def done(result: Any) -> Any:
            self._exchanges.discard(exchange)
            if isinstance(result, dns.Message):
                self.latencies.observe(self.reactor.seconds() - started)
            for other in self._inflight.pop(key, ()):
                other.callback(result)
            return result

        exchange.addBoth(done)
        return exchange.addCallback(self._result)

    def _result(self, message: dns.Message) -> tuple[list, list, list]:
        for rr in message.answers + message.authority + message.additional:
            rr.auth = False  # relayed, not ours
        if message.rCode != dns.OK:
            raise self.exceptionForCode(message.rCode)(message)
        return (
            list(message.answers),
            list(message.authority),
            [rr for rr in message.additional if rr.type != dns.OPT],
        )

    def _exchange(self, server: tuple[str, int], query: dns.Query) -> defer.Deferred:
        """A Deferred of the reply message, within ``timeout``; cancellable."""
        deadline = self.reactor.seconds() + self.timeout
        d: defer.Deferred = defer.Deferred(lambda _: None)
        timer = self.reactor.callLater(self.timeout, self._expire, d)

        def settle(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        try:
            udp = self._socket(":" in server[0])
        except error.CannotListenError as e:
            timer.cancel()
            return defer.fail(e)
        qid = secrets.randbelow(65536)
        while qid in udp.pending:
            qid = secrets.randbelow(65536)
        request = dns.Message(id=qid, recDes=1)
        request.queries = [query]
        data = request.toStr()
        udp.pending[qid] = _Pending(d, server, query)

        def forget(result: Any) -> Any:
            udp.pending.pop(qid, None)
            return result

        d.addBoth(forget)
        try:
            udp.transport.write(data, server)
        except (OSError, error.MessageLengthError, error.ConnectionRefusedError) as e:
            udp.pending.pop(qid, None)
            timer.cancel()
            self.stats["upstream unreachable"] += 1
            return defer.fail(e)
        d.addCallback(self._maybe_tcp, server, data, query, deadline)
        return d.addBoth(settle)

    def _maybe_tcp(
        self,
        message: dns.Message,
        server: tuple[str, int],
        data: bytes,
        query: dns.Query,
        deadline: float,
    ) -> Any:
        if not message.trunc:
            return message
        left = deadline - self.reactor.seconds()
        if left <= 0:
            return message
        d: defer.Deferred = defer.Deferred()
        connector = self.reactor.connectTCP(
            server[0], server[1], _StreamExchangeFactory(data, query, d), timeout=left
        )
        timer = self.reactor.callLater(left, self._expire, d)

        def settle(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            connector.disconnect()
            return result

        return d.addBoth(settle)

    def _expire(self, d: defer.Deferred) -> None:
        if not d.called:
            self.stats["upstream timeouts"] += 1
            d.errback(defer.TimeoutError("no answer from the meshname server"))

    def _socket(self, ipv6: bool) -> _UpstreamSocket:
        family = 6 if ipv6 else 4
        if family not in self._sockets:
            proto = _UpstreamSocket()
            port = self.reactor.listenUDP(
                0, proto, interface="::" if ipv6 else "0.0.0.0", maxPacketSize=MAX_DATAGRAM
            )
            self._sockets[family] = (proto, port)
        return self._sockets[family][0]

    def close(self) -> defer.Deferred:
        """Fail the lookups in flight and close the sockets."""
        for d in list(self._exchanges):
            d.cancel()
        stopping = [defer.maybeDeferred(port.stopListening) for _, port in self._sockets.values()]
        self._sockets.clear()
        return defer.gatherResults(stopping).addCallback(lambda _: None)
