"""Our own answers: the records of ``Meshname.Config`` under our labels, and ``.meship``.

A twisted.names resolver first in the server's chain; for names it does not own it fails
with ``DomainError``, which passes them on to the forwarder.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet import defer
from twisted.names import common, dns
from twisted.names import error as dns_error

from ygg.popura.meshname.names import DEFAULT_TTL
from ygg.popura.meshname.targets import MESHIP_NAME, NXDOMAIN, OWN, TLD, Target, classify
from ygg.popura.meshname.zone import Zone

#: Negative answers are cached this long (the minimum of our synthesised SOA).
NEGATIVE_TTL = 60


class NoSuchName(dns_error.AuthoritativeDomainError):
    """NXDOMAIN from our own data; carries the authority section (our SOA)."""

    def __init__(self, name: bytes, authority: list[dns.RRHeader]) -> None:
        super().__init__(name)
        self.authority = authority


class Refused(Exception):
    """A query this server declines (zone transfers)."""


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
