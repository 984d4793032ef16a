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

from collections import Counter
from typing import Any

from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.names import dns, server
from twisted.names import error as dns_error
from twisted.python.failure import Failure

from ygg.popura.meshname.authority import MeshnameAuthority, NoSuchName, Refused
from ygg.popura.meshname.forwarder import Busy, MeshForwarder, NoMesh
from ygg.popura.meshname.targets import REFUSED
from ygg.popura.meshname.wire import encode_reply

log = Logger(namespace="meshname")


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
        #: Replies sent, by RCODE (metrics).
        self.rcodes: Counter[int] = Counter()
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
        self.rcodes[message.rCode] += 1
        protocol.writeMessage(data, address)
