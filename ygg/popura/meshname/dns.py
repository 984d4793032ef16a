"""The meshname DNS server: an authority for our own labels, a forwarder for everyone else's.

Composed as twisted.names composes a server: a ``DNSServerFactory`` whose resolver chain is
an authority (``MeshnameAuthority``: the records of ``Meshname.Config``, and ``.meship``)
followed by a client (``MeshForwarder``: asks the DNS server of the node a name encodes,
on UDP port 53 of that node's address — the kernel routes 200::/7 into our TUN).

What a query gets:

* a name outside ``.meshname``, ``.ygg``, ``.popura``, ``.vapordns`` and ``.meship``:
  REFUSED (this is not an open resolver); a label that decodes outside 200::/7: REFUSED;
* a name under one of our configured labels: the configured records (CNAMEs followed
  within our data), NODATA with an SOA when the name exists without that type, NXDOMAIN
  with an SOA when it does not exist at all;
* ``<label>.meship``: its address as AAAA, answered here;
* any other meshname name: the remote server's answer (its RCODE and its records); after
  5 s without one, or when it cannot be reached: SERVFAIL;
* a label that is not base32 of 16 bytes: NXDOMAIN (no such name can exist).

``DNSServerFactory``'s reply path is replaced where it does not suit a server that
faces the network: its REFUSED reply is the request sent back (QR clear), it logs every
failed lookup, and it truncates in the middle of a record.  Here nothing is logged per
packet; malformed requests get FORMERR when their header can be read and are dropped
otherwise; UDP replies keep to 512 bytes (or the client's EDNS size, at most 1232) and
set TC when the answer does not fit, so the client asks again over TCP.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.internet.protocol import ClientFactory, DatagramProtocol, ServerFactory
from twisted.logger import Logger
from twisted.names import common, dns, server
from twisted.names import error as dns_error
from twisted.protocols.basic import Int16StringReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from ygg.popura.meshname.names import (
    DEFAULT_TTL,
    MESHIP,
    TLDS,
    MeshnameError,
    ip_from_label,
    parse_listen,
)
from ygg.popura.meshname.zone import Zone, parse_zone

log = Logger(namespace="meshname")

#: How long a remote meshname server has to answer (Popura: 5 s, no retries).
UPSTREAM_TIMEOUT = 5.0
#: Remote lookups in flight at once; more get SERVFAIL at once.
MAX_PENDING = 256
#: A request longer than this is not read (FORMERR): a query is a few dozen bytes.
MAX_REQUEST = 4096
#: The largest UDP reply we send to an EDNS client (the DNS flag day 2020 value).
MAX_UDP_REPLY = 1232
MIN_UDP_REPLY = 512
TCP_IDLE_TIMEOUT = 10.0
MAX_TCP_CONNECTIONS = 64
#: Negative answers are cached this long (the minimum of our synthesised SOA).
NEGATIVE_TTL = 60
_HEADER = struct.Struct("!HBBHHHH")
_UDP_RECEIVE = 65535


# --------------------------------------------------------------------------- names


class Target(NamedTuple):
    """What a query name is to this server."""

    kind: str  # one of the constants below
    address: ipaddress.IPv6Address | None = None
    apex: bytes = b""  # our zone's apex (label.tld), for OWN


REFUSED = "refused"  # not a name we answer for
TLD = "tld"  # a bare top-level domain: exists, holds nothing
NXDOMAIN = "nxdomain"  # cannot exist
OWN = "own"  # under one of our labels
MESHIP_NAME = "meship"  # <label>.meship
REMOTE = "remote"  # another node's name: forward


def classify(
    name: bytes,
    zone: Zone,
    local: frozenset[ipaddress.IPv6Address] = frozenset(),
    meship: bool = True,
) -> Target:
    """Where a name belongs.  ``local``: addresses whose names we must answer ourselves
    because forwarding to them would reach this very server."""
    labels = name.lower().rstrip(b".").split(b".")
    if labels == [b""]:
        return Target(REFUSED)
    try:
        tld = labels[-1].decode("ascii")
    except UnicodeDecodeError:
        return Target(REFUSED)
    if meship and tld == MESHIP:
        if len(labels) == 1:
            return Target(TLD)
        if len(labels) > 2:
            return Target(NXDOMAIN)
        try:
            return Target(MESHIP_NAME, ip_from_label(labels[0]))
        except MeshnameError:
            return Target(NXDOMAIN)
    network = TLDS.get(tld)
    if network is None:
        return Target(REFUSED)
    if len(labels) == 1:
        return Target(TLD)
    label = labels[-2].decode("ascii", "replace")
    try:
        address: ipaddress.IPv6Address | None = ip_from_label(labels[-2])
    except MeshnameError:
        address = None
    apex = labels[-2] + b"." + labels[-1]
    if zone.owns(label, address) or (address is not None and address in local):
        return Target(OWN, address, apex)
    if address is None:
        return Target(NXDOMAIN)
    if address not in network:
        return Target(REFUSED)
    return Target(REMOTE, address)


# --------------------------------------------------------------------------- authority


class NoSuchName(dns_error.AuthoritativeDomainError):
    """NXDOMAIN from our own data; carries the authority section (our SOA)."""

    def __init__(self, name: bytes, authority: list[dns.RRHeader]) -> None:
        super().__init__(name)
        self.authority = authority


class Refused(Exception):
    """A query this server declines (zone transfers)."""


class Busy(Exception):
    """Too many remote lookups in flight."""


class NoMesh(Exception):
    """The node has no TUN, so 200::/7 is not routed into the mesh from this host."""


def _soa(apex: bytes) -> dns.RRHeader:
    record = dns.Record_SOA(
        mname=apex,
        rname=b"hostmaster." + apex,
        serial=1,
        refresh=DEFAULT_TTL,
        retry=600,
        expire=86400,
        minimum=NEGATIVE_TTL,
        ttl=NEGATIVE_TTL,
    )
    return dns.RRHeader(apex, dns.SOA, dns.IN, NEGATIVE_TTL, record, auth=True)


def _renamed(rr: dns.RRHeader, name: bytes) -> dns.RRHeader:
    return dns.RRHeader(name, rr.type, rr.cls, rr.ttl, rr.payload, auth=True)


_TARGET_NAMES = {dns.SRV: "target", dns.MX: "name", dns.NS: "name"}


class MeshnameAuthority(common.ResolverBase):
    """Answers for our own labels and for ``.meship``; ``DomainError`` for other names,
    which passes them down the chain to the forwarder."""

    MAX_CNAME_CHAIN = 8

    def __init__(
        self, zone: Zone, local: frozenset[ipaddress.IPv6Address] = frozenset(), meship=True
    ) -> None:
        super().__init__()
        self.zone = zone
        self.local = local
        self.meship = meship

    def classify(self, name: bytes) -> Target:
        return classify(name, self.zone, self.local, self.meship)

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred:
        target = self.classify(name)
        if target.kind == OWN:
            return self._own(name, type, target.apex)
        if target.kind == MESHIP_NAME:
            answers = []
            if type in (dns.AAAA, dns.ALL_RECORDS):
                record = dns.Record_AAAA(str(target.address), ttl=DEFAULT_TTL)
                answers = [dns.RRHeader(name, dns.AAAA, dns.IN, DEFAULT_TTL, record, True)]
            return defer.succeed((answers, [], []))
        if target.kind == TLD:
            return defer.succeed(([], [], []))
        if target.kind == NXDOMAIN:
            return defer.fail(dns_error.AuthoritativeDomainError(name))
        return defer.fail(dns_error.DomainError(name))

    def _own(self, name: bytes, type: int, apex: bytes) -> defer.Deferred:
        if type in (dns.AXFR, dns.IXFR):
            return defer.fail(Refused())
        key = name.lower()
        zone = self.zone
        soa = [rr for rr in zone.records.get(apex, ()) if rr.type == dns.SOA] or [_soa(apex)]
        rrs = zone.records.get(key)
        if rrs is None and key not in zone.names and key != apex:
            return defer.fail(NoSuchName(name, soa))
        answers = [_renamed(rr, name) for rr in rrs or () if type in (rr.type, dns.ALL_RECORDS)]
        if key == apex and type == dns.SOA and not answers:
            answers = [_renamed(soa[0], name)]
        if not answers and type != dns.CNAME:
            answers = self._follow_cname(name, rrs or (), type)
        if not answers:
            return defer.succeed(([], soa, []))
        return defer.succeed((answers, [], self._additional(answers)))

    def _follow_cname(self, name: bytes, rrs: Any, type: int) -> list[dns.RRHeader]:
        chain: list[dns.RRHeader] = []
        seen = {name.lower()}
        cnames = [rr for rr in rrs if rr.type == dns.CNAME]
        owner = name
        while cnames and len(chain) < self.MAX_CNAME_CHAIN:
            cname = cnames[0]
            chain.append(_renamed(cname, owner) if not chain else cname)
            owner = cname.payload.name.name
            if owner.lower() in seen:
                break
            seen.add(owner.lower())
            found = self.zone.records.get(owner.lower(), [])
            matching = [rr for rr in found if rr.type == type]
            if matching:
                chain.extend(matching)
                break
            cnames = [rr for rr in found if rr.type == dns.CNAME]
        return chain

    def _additional(self, answers: list[dns.RRHeader]) -> list[dns.RRHeader]:
        """The addresses we hold of the hosts SRV, MX and NS answers name."""
        targets = []
        for rr in answers:
            attribute = _TARGET_NAMES.get(rr.type)
            if attribute is not None:
                target = getattr(rr.payload, attribute).name.lower()
                if target not in targets:
                    targets.append(target)
        return [
            r
            for target in targets
            for r in self.zone.records.get(target, ())
            if r.type in (dns.A, dns.AAAA)
        ]


# --------------------------------------------------------------------------- forwarder


def default_upstream(address: ipaddress.IPv6Address) -> tuple[str, int]:
    """Where the DNS server of a meshname label is: UDP port 53 of its address."""
    return str(address), 53


def decode_message(data: bytes) -> dns.Message:
    """A whole DNS message; ``ValueError`` if it is malformed or shorter than its header
    says (twisted.names returns what it could read of a message cut short)."""
    if len(data) < _HEADER.size:
        raise ValueError("shorter than a DNS header")
    counts = _HEADER.unpack_from(data)[3:]
    message = dns.Message()
    try:
        message.fromStr(data)
    except Exception as e:
        raise ValueError(f"malformed: {e}") from None
    sections = (message.queries, message.answers, message.authority, message.additional)
    if tuple(len(section) for section in sections) != counts:
        raise ValueError("cut short")
    return message


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
        if len(data) < _HEADER.size:
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
        exchange = self._exchange(server, query)
        self._exchanges.add(exchange)

        def done(result: Any) -> Any:
            self._exchanges.discard(exchange)
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
                0, proto, interface="::" if ipv6 else "0.0.0.0", maxPacketSize=_UDP_RECEIVE
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


# --------------------------------------------------------------------------- server


class RequestError(Exception):
    """A request that gets FORMERR."""


def read_request(data: bytes) -> dns.Message:
    """Decode a request; ``RequestError`` when it must get FORMERR, ``ValueError`` when it
    is not worth an answer (too short to hold a header, or a response)."""
    if len(data) < _HEADER.size:
        raise ValueError("shorter than a DNS header")
    _, flags, _, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & 0x80:
        raise ValueError("a response")
    if len(data) > MAX_REQUEST or qd != 1 or an > 1 or ns > 1 or ar > 2:
        raise RequestError("malformed")
    try:
        return decode_message(data)
    except ValueError as e:
        raise RequestError(str(e)) from None


def formerr(data: bytes) -> bytes:
    """The FORMERR reply to a request whose header could be read: ID, opcode, RD kept."""
    qid, flags = struct.unpack_from("!HB", data)
    return _HEADER.pack(qid, 0x80 | (flags & 0x79), dns.EFORMAT, 0, 0, 0, 0)


class MeshnameServerFactory(server.DNSServerFactory):
    """twisted.names' server, answering only for meshname domains."""

    def __init__(
        self,
        authority: MeshnameAuthority,
        forwarder: MeshForwarder,
        stats: Counter | None = None,
    ) -> None:
        super().__init__(authorities=[authority], clients=[forwarder])
        self.authority = authority
        self.forwarder = forwarder
        self.stats = stats if stats is not None else Counter()
        self._unexpected: set[type] = set()

    # -- requests ---------------------------------------------------------------------

    def messageReceived(self, message: dns.Message, proto: Any, address: Any = None) -> None:
        self.stats["queries"] += 1
        edns = [rr for rr in message.additional if rr.type == dns.OPT]
        message.edns = edns[0].cls if edns else None
        if len(edns) > 1:
            return self._error(message, proto, address, dns.EFORMAT)
        if edns and (edns[0].ttl >> 16) & 0xFF:
            return self._error(message, proto, address, dns.OK, badvers=True)
        if message.opCode != dns.OP_QUERY:
            return self._error(message, proto, address, dns.ENOTIMP)
        query = message.queries[0]
        if query.cls != dns.IN or self.authority.classify(query.name.name).kind == REFUSED:
            self.stats["refused"] += 1
            return self._error(message, proto, address, dns.EREFUSED)
        if query.type in (dns.AXFR, dns.IXFR):
            return self._error(message, proto, address, dns.EREFUSED)
        self.handleQuery(message, proto, address)

    def handleQuery(self, message: dns.Message, protocol: Any, address: Any) -> defer.Deferred:
        d = self.resolver.query(message.queries[0])
        d.addCallbacks(
            self.gotResolverResponse,
            self.gotResolverError,
            callbackArgs=(protocol, message, address),
            errbackArgs=(protocol, message, address),
        )
        return d.addErrback(self._unexpected_failure)

    def gotResolverResponse(
        self, response: Any, protocol: Any, message: dns.Message, address: Any
    ) -> None:
        answers, authority, additional = response
        reply = self._reply(message, dns.OK)
        reply.answers, reply.authority, reply.additional = (
            list(answers),
            list(authority),
            list(additional),
        )
        reply.auth = any(rr.auth for rr in reply.answers + reply.authority)
        self.sendReply(protocol, reply, address)

    def gotResolverError(
        self, failure: Any, protocol: Any, message: dns.Message, address: Any
    ) -> None:
        reply = self._reply(message, dns.ESERVER)
        if failure.check(NoSuchName):
            reply.rCode, reply.auth = dns.ENAME, 1
            reply.authority = list(failure.value.authority)
        elif failure.check(dns_error.AuthoritativeDomainError):
            reply.rCode, reply.auth = dns.ENAME, 1
        elif failure.check(Refused):
            reply.rCode = dns.EREFUSED
        elif failure.check(dns_error.DomainError) and isinstance(
            (failure.value.args or (None,))[0], dns.Message
        ):
            upstream = failure.value.args[0]
            if upstream.rCode == dns.ENAME:  # relayed with the remote server's SOA
                reply.rCode = dns.ENAME
                reply.authority = list(upstream.authority)
            else:  # its REFUSED, FORMERR…: the lookup failed
                self.stats["servfail"] += 1
        else:
            self.stats["servfail"] += 1
            expected = (
                Busy,
                NoMesh,
                dns_error.DomainError,
                defer.TimeoutError,
                defer.CancelledError,
                OSError,
                error.ConnectError,
                error.ConnectionLost,
                error.CannotListenError,
                error.MessageLengthError,
            )
            if not failure.check(*expected):
                self._unexpected_failure(failure)
        self.sendReply(protocol, reply, address)

    def _unexpected_failure(self, failure: Any) -> None:
        # A bug, not bad input: logged once per kind, never once per packet.
        if failure.type not in self._unexpected:
            self._unexpected.add(failure.type)
            log.failure("meshname: unexpected error answering a query", failure)

    # -- replies ----------------------------------------------------------------------

    def _reply(self, message: dns.Message, rcode: int) -> dns.Message:
        reply = dns.Message(
            id=message.id,
            answer=1,
            opCode=message.opCode,
            recDes=message.recDes,
            recAv=1,
            rCode=rcode,
            maxSize=0,
        )
        reply.queries = list(message.queries)
        reply.edns = getattr(message, "edns", None)
        return reply

    def _error(
        self, message: dns.Message, proto: Any, address: Any, rcode: int, badvers: bool = False
    ) -> None:
        reply = self._reply(message, rcode)
        reply.badvers = badvers
        self.sendReply(proto, reply, address)

    def sendReply(self, protocol: Any, message: dns.Message, address: Any) -> None:
        try:
            data = encode_reply(message, udp=address is not None)
        except Exception:
            # A relayed record that does not encode again: SERVFAIL, and say so once.
            self._unexpected_failure(Failure())
            message.answers, message.authority, message.additional = [], [], []
            message.rCode, message.auth = dns.ESERVER, 0
            data = encode_reply(message, udp=address is not None)
        protocol.writeMessage(data, address)


def _opt(badvers: bool = False) -> dns.RRHeader:
    # An OPT pseudo-record: class = our UDP payload size, TTL = extended RCODE and version.
    return dns.RRHeader(
        b"", dns.OPT, MAX_UDP_REPLY, (1 << 24) if badvers else 0, dns.UnknownRecord(b"")
    )


def encode_reply(reply: dns.Message, udp: bool) -> bytes:
    """The reply's bytes: within the client's UDP limit, else only the header, the question
    and TC, so that the client asks again over TCP."""
    edns = getattr(reply, "edns", None)
    if edns is not None:
        reply.additional = [*reply.additional, _opt(getattr(reply, "badvers", False))]
    data = reply.toStr()
    limit = max(MIN_UDP_REPLY, min(edns or MIN_UDP_REPLY, MAX_UDP_REPLY)) if udp else 65535
    if len(data) > limit:
        reply.answers, reply.authority = [], []
        reply.additional = [_opt()] if edns is not None else []
        reply.trunc = 1
        data = reply.toStr()
    return data


class MeshnameDatagramProtocol(DatagramProtocol):
    """DNS over UDP: decode, hand to the factory, write the reply; never log per packet."""

    noisy = False

    def __init__(self, factory: MeshnameServerFactory) -> None:
        self.factory = factory

    def logPrefix(self) -> str:
        return "Meshname DNS (UDP)"

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            message = read_request(data)
        except RequestError:
            self.factory.stats["malformed"] += 1
            self._write(formerr(data), addr)
            return
        except ValueError:
            self.factory.stats["dropped"] += 1
            return
        self.factory.messageReceived(message, self, addr)

    def writeMessage(self, data: bytes, address: Any) -> None:
        self._write(data, address)

    def _write(self, data: bytes, addr: Any) -> None:
        if self.transport is None:
            return  # stopped while the answer was on its way
        try:
            self.transport.write(data, addr)
        except (OSError, error.MessageLengthError, error.ConnectionRefusedError):
            self.factory.stats["unsent"] += 1


class MeshnameStreamProtocol(Int16StringReceiver, TimeoutMixin):
    """DNS over TCP: length-prefixed messages, idle connections closed after 10 s."""

    def __init__(self, factory: MeshnameServerFactory, owner: _StreamServerFactory) -> None:
        self.factory = factory
        self.owner = owner
        self.open = False

    def connectionMade(self) -> None:
        self.open = True
        self.setTimeout(TCP_IDLE_TIMEOUT)

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        try:
            message = read_request(data)
        except RequestError:
            self.factory.stats["malformed"] += 1
            self.sendString(formerr(data))
            return
        except ValueError:
            self.factory.stats["dropped"] += 1
            self.transport.loseConnection()
            return
        self.factory.messageReceived(message, self, None)

    def writeMessage(self, data: bytes, address: Any = None) -> None:
        if self.open:
            self.sendString(data)

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self.setTimeout(None)
        self.owner.connections -= 1


class _StreamServerFactory(ServerFactory):
    noisy = False

    def __init__(self, dns_factory: MeshnameServerFactory) -> None:
        self.dns_factory = dns_factory
        self.connections = 0

    def logPrefix(self) -> str:
        return "Meshname DNS (TCP)"

    def buildProtocol(self, addr: Any) -> MeshnameStreamProtocol | None:
        if self.connections >= MAX_TCP_CONNECTIONS:
            self.dns_factory.stats["tcp refused"] += 1
            return None  # the connection is closed at once
        self.connections += 1
        return MeshnameStreamProtocol(self.dns_factory, self)


# --------------------------------------------------------------------------- service


def _format_where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MeshnameService(Service):
    """The feature: the DNS server on ``Meshname.Listen`` (UDP, and TCP on the same port).

    Bad settings (Listen, a record) raise ``ConfigError`` here, when the node is built,
    so the node stops with one line naming them.  A port that cannot be bound only turns
    the feature off, with one error line.
    """

    def __init__(
        self,
        node: Any,
        config: Any,
        *,
        upstream: Callable[[ipaddress.IPv6Address], tuple[str, int]] = default_upstream,
        timeout: float = UPSTREAM_TIMEOUT,
        max_pending: int = MAX_PENDING,
        meship: bool = True,
    ) -> None:
        self.node = node
        self.reactor = node.reactor
        self.host, self.port = parse_listen(config.listen)
        self.zone = parse_zone(config.config)
        own = ipaddress.IPv6Address(bytes(node.address))
        local: frozenset[ipaddress.IPv6Address] = frozenset()
        if self.port == 53 and self.host in ("::", str(own)):
            # Forwarding a name of our own address would come back to this server.
            local = frozenset({own})
        self.stats: Counter = Counter()
        self.authority = MeshnameAuthority(self.zone, local, meship)
        self.forwarder = MeshForwarder(
            self.reactor,
            self.authority.classify,
            upstream=upstream,
            timeout=timeout,
            max_pending=max_pending,
            stats=self.stats,
            # Real lookups go through our TUN; a test's own upstream needs none.
            reachable=node.tun_enabled if upstream is default_upstream else lambda: True,
        )
        self.factory = MeshnameServerFactory(self.authority, self.forwarder, self.stats)
        self.udp_port: Any = None
        self.tcp_port: Any = None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the server listens (host, port), once started; None if it could not."""
        if self.udp_port is None:
            return None
        return self.host, self.udp_port.getHost().port

    def startService(self) -> None:
        super().startService()
        for warning in self.zone.warnings:
            log.warn("Meshname: {warning}", warning=warning)
        where = _format_where(self.host, self.port)
        try:
            self.udp_port = self.reactor.listenUDP(
                self.port,
                MeshnameDatagramProtocol(self.factory),
                interface=self.host,
                maxPacketSize=_UDP_RECEIVE,
            )
        except (error.CannotListenError, OSError) as e:
            log.error(
                "Meshname: cannot listen on {where}: {reason}; the meshname DNS server is off",
                where=where,
                reason=_reason(e),
            )
            return
        port = self.udp_port.getHost().port
        where = _format_where(self.host, port)
        try:
            self.tcp_port = self.reactor.listenTCP(
                port, _StreamServerFactory(self.factory), interface=self.host
            )
        except (error.CannotListenError, OSError) as e:
            log.warn(
                "Meshname: cannot listen on TCP {where}: {reason}; serving UDP only",
                where=where,
                reason=_reason(e),
            )
        log.info(
            "Meshname DNS server listening on {where} ({transports})",
            where=where,
            transports="UDP and TCP" if self.tcp_port else "UDP",
        )

    def stopService(self) -> defer.Deferred:
        super().stopService()
        ports = [p for p in (self.udp_port, self.tcp_port) if p is not None]
        self.udp_port = self.tcp_port = None
        stopping = [defer.maybeDeferred(p.stopListening) for p in ports]
        stopping.append(self.forwarder.close())
        return defer.gatherResults(stopping).addCallback(lambda _: None)


def _reason(e: BaseException) -> str:
    inner = getattr(e, "socketError", None)
    if inner is not None:
        return getattr(inner, "strerror", None) or str(inner)
    return getattr(e, "strerror", None) or str(e)
