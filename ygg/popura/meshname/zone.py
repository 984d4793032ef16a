"""The records a node serves for its own meshname labels, from ``Meshname.Config``.

``Meshname.Config`` maps a label to a list of strings, each one record in RFC 1035
master-file syntax, read on its own (as Popura reads them with miekg/dns ``NewRR``)::

    owner [TTL] [class] TYPE rdata…

The owner comes first; TTL (seconds, or with units such as ``1h30m``; default 3600) and
class (only ``IN``) may follow in either order.  A name without a trailing dot is made
absolute by appending one: names are relative to the root, not to the label's zone, and
``@`` is not accepted.  Quoted strings may hold spaces and the escapes ``\\"``, ``\\\\`` and
``\\DDD``; ``;`` starts a comment.  Types: A, AAAA, CNAME, DNAME, NS, PTR, MX, SRV, TXT,
SPF, SOA, HINFO, SSHFP, CAA, and any type in RFC 3597's generic form
(``TYPE65 \\# 3 010203``).

One bad record rejects the whole map with a ``ConfigError`` naming it, e.g.
``Meshname.Config.aiag…[1]: "… SRV 10 5 http …": SRV port: expected a number 0-65535``.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from twisted.names import dns

from ygg.interfaces import ConfigError
from ygg.popura.meshname.names import (
    DEFAULT_TTL,
    TLDS,
    MeshnameError,
    ip_from_label,
)

MAX_TTL = 2**31 - 1
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TTL = re.compile(r"^(?:\d+[smhdw])+$", re.IGNORECASE)
_CLASSES = {"IN": dns.IN, "CH": dns.CH, "CS": dns.CS, "HS": dns.HS}


class RecordError(ValueError):
    """What is wrong with one record (the caller names the record)."""


@dataclass(frozen=True)
class Token:
    text: bytes
    quoted: bool = False


def tokenize(line: str) -> list[Token]:
    """Split one master-file line into tokens: blanks separate, quotes group, ``;`` ends."""
    data = line.encode("utf-8")
    tokens: list[Token] = []
    i, n = 0, len(data)
    while i < n:
        c = data[i : i + 1]
        if c in b" \t\r\n()":
            i += 1
        elif c == b";":
            break
        elif c == b'"':
            text, i = _quoted(data, i + 1)
            tokens.append(Token(text, True))
        else:
            start = i
            while i < n and data[i : i + 1] not in b' \t\r\n();"':
                i += 2 if data[i : i + 1] == b"\\" else 1
            tokens.append(Token(data[start:i]))
    return tokens


def _quoted(data: bytes, i: int) -> tuple[bytes, int]:
    """The quoted string starting at ``i`` (after the quote), unescaped; and where it ends."""
    start = i
    while i < len(data):
        if data[i] == 0x5C:  # a backslash: the next byte is taken as it is
            i += 2
            continue
        if data[i] == 0x22:
            return unescape(data[start:i]), i + 1
        i += 1
    raise RecordError("unterminated quoted string")


def unescape(raw: bytes) -> bytes:
    """Master-file escapes: ``\\X`` is X, ``\\DDD`` the byte of that decimal value."""
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] != 0x5C:
            out.append(raw[i])
            i += 1
            continue
        digits = raw[i + 1 : i + 4]
        if len(digits) == 3 and digits.isdigit():
            if int(digits) > 255:
                raise RecordError(f"bad escape \\{digits.decode()}")
            out.append(int(digits))
            i += 4
        elif i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            raise RecordError("a backslash at the end of a string")
    return bytes(out)


def parse_ttl(text: str) -> int:
    if text.isdigit():
        value = int(text)
    elif _TTL.match(text):
        value = sum(
            int(n) * _TTL_UNITS[u.lower()] for n, u in re.findall(r"(\d+)([a-z])", text, re.I)
        )
    else:
        raise RecordError(f"bad TTL {text!r}")
    if value > MAX_TTL:
        raise RecordError(f"TTL {text} is more than {MAX_TTL}")
    return value


def absolute_name(token: Token, what: str = "name") -> bytes:
    """A domain name as twisted.names holds it: no trailing dot, ``b""`` for the root."""
    if token.quoted:
        raise RecordError(f"{what}: a domain name cannot be quoted")
    text = token.text
    if text == b"@":
        raise RecordError(f"{what}: '@' is not allowed here; write the full name, ending in '.'")
    if b"\\" in text:
        raise RecordError(f"{what}: escapes in names are not supported")
    if text == b".":
        return b""
    name = text[:-1] if text.endswith(b".") else text
    labels = name.split(b".")
    if any(not label for label in labels):
        raise RecordError(f"{what}: empty label in {text.decode(errors='replace')!r}")
    if any(len(label) > 63 for label in labels):
        raise RecordError(f"{what}: a label is longer than 63 bytes")
    if len(name) + 2 > 255:
        raise RecordError(f"{what}: longer than 255 bytes")
    return name


def _number(token: Token, what: str, bits: int) -> int:
    limit = (1 << bits) - 1
    text = token.text.decode(errors="replace")
    if token.quoted or not text.isdigit() or int(text) > limit:
        raise RecordError(f"{what}: expected a number 0-{limit}, got {text!r}")
    return int(text)


def _expect(rdata: list[Token], count: int, type_name: str, shape: str) -> None:
    if len(rdata) != count:
        raise RecordError(f"{type_name} takes {shape}; got {len(rdata)} field(s)")


def _rd_a(rdata: list[Token]) -> dns.Record_A:
    _expect(rdata, 1, "A", "an IPv4 address")
    try:
        address = ipaddress.IPv4Address(rdata[0].text.decode(errors="replace"))
    except ValueError:
        text = rdata[0].text.decode(errors="replace")
        raise RecordError(f"A: not an IPv4 address: {text!r}") from None
    return dns.Record_A(str(address))


def _rd_aaaa(rdata: list[Token]) -> dns.Record_AAAA:
    _expect(rdata, 1, "AAAA", "an IPv6 address")
    text = rdata[0].text.decode(errors="replace")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise RecordError(f"AAAA: not an IPv6 address: {text!r}") from None
    return dns.Record_AAAA(str(address))


def _rd_name(record: type) -> Callable[[list[Token]], object]:
    type_name = record.__name__.removeprefix("Record_")

    def build(rdata: list[Token]) -> object:
        _expect(rdata, 1, type_name, "one domain name")
        return record(absolute_name(rdata[0], f"{type_name} target"))

    return build


def _rd_mx(rdata: list[Token]) -> dns.Record_MX:
    _expect(rdata, 2, "MX", "a preference and a host name")
    return dns.Record_MX(_number(rdata[0], "MX preference", 16), absolute_name(rdata[1], "MX"))


def _rd_srv(rdata: list[Token]) -> dns.Record_SRV:
    _expect(rdata, 4, "SRV", "priority, weight, port and target")
    return dns.Record_SRV(
        _number(rdata[0], "SRV priority", 16),
        _number(rdata[1], "SRV weight", 16),
        _number(rdata[2], "SRV port", 16),
        absolute_name(rdata[3], "SRV target"),
    )


def _strings(rdata: list[Token], type_name: str) -> list[bytes]:
    if not rdata:
        raise RecordError(f"{type_name} takes at least one string")
    strings = [token.text if token.quoted else unescape(token.text) for token in rdata]
    if any(len(text) > 255 for text in strings):
        raise RecordError(f"{type_name}: a string is longer than 255 bytes; split it")
    return strings


def _rd_txt(rdata: list[Token]) -> dns.Record_TXT:
    return dns.Record_TXT(*_strings(rdata, "TXT"))


def _rd_spf(rdata: list[Token]) -> dns.Record_SPF:
    return dns.Record_SPF(*_strings(rdata, "SPF"))


def _rd_soa(rdata: list[Token]) -> dns.Record_SOA:
    _expect(rdata, 7, "SOA", "mname rname serial refresh retry expire minimum")
    times = []
    for token, what in zip(rdata[3:], ("refresh", "retry", "expire", "minimum"), strict=True):
        times.append(parse_ttl(token.text.decode(errors="replace")) if not token.quoted else -1)
        if times[-1] < 0:
            raise RecordError(f"SOA {what}: expected a time")
    return dns.Record_SOA(
        absolute_name(rdata[0], "SOA mname"),
        absolute_name(rdata[1], "SOA rname"),
        _number(rdata[2], "SOA serial", 32),
        *times,
    )


def _rd_hinfo(rdata: list[Token]) -> dns.Record_HINFO:
    _expect(rdata, 2, "HINFO", "a CPU and an OS string")
    cpu, os_ = _strings(rdata, "HINFO")
    return dns.Record_HINFO(cpu, os_)


def _hex(tokens: Iterable[Token], what: str) -> bytes:
    text = b"".join(t.text for t in tokens).decode(errors="replace")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise RecordError(f"{what}: not hexadecimal: {text!r}") from None


def _rd_sshfp(rdata: list[Token]) -> dns.Record_SSHFP:
    if len(rdata) < 3:
        raise RecordError("SSHFP takes algorithm, fingerprint type and a hex fingerprint")
    return dns.Record_SSHFP(
        _number(rdata[0], "SSHFP algorithm", 8),
        _number(rdata[1], "SSHFP type", 8),
        _hex(rdata[2:], "SSHFP fingerprint"),
    )


def _rd_caa(rdata: list[Token]) -> dns.UnknownRecord:
    _expect(rdata, 3, "CAA", "flags, tag and a value")
    flags = _number(rdata[0], "CAA flags", 8)
    tag = rdata[1].text
    if not tag or len(tag) > 255 or not tag.isalnum():
        raise RecordError("CAA tag: expected letters and digits, e.g. issue")
    return dns.UnknownRecord(struct.pack("!BB", flags, len(tag)) + tag + rdata[2].text)


CAA = 257
_BUILDERS: dict[int, Callable[[list[Token]], object]] = {
    dns.A: _rd_a,
    dns.AAAA: _rd_aaaa,
    dns.NS: _rd_name(dns.Record_NS),
    dns.CNAME: _rd_name(dns.Record_CNAME),
    dns.PTR: _rd_name(dns.Record_PTR),
    dns.DNAME: _rd_name(dns.Record_DNAME),
    dns.MX: _rd_mx,
    dns.SRV: _rd_srv,
    dns.TXT: _rd_txt,
    dns.SPF: _rd_spf,
    dns.SOA: _rd_soa,
    dns.HINFO: _rd_hinfo,
    dns.SSHFP: _rd_sshfp,
    CAA: _rd_caa,
}
TYPE_NAMES = {dns.QUERY_TYPES.get(t, "CAA"): t for t in _BUILDERS}
_GENERIC_TYPE = re.compile(r"^TYPE(\d{1,5})$", re.IGNORECASE)
_NOT_RECORDS = {dns.OPT, dns.AXFR, dns.IXFR, dns.MAILA, dns.MAILB, dns.ALL_RECORDS, 0}


def _type_of(token: Token) -> int | None:
    text = token.text.decode(errors="replace").upper()
    if token.quoted:
        return None
    if text in TYPE_NAMES:
        return TYPE_NAMES[text]
    match = _GENERIC_TYPE.match(text)
    if match and int(match.group(1)) <= 65535:
        return int(match.group(1))
    return None


def _generic(rdata: list[Token], rtype: int) -> object:
    """RFC 3597: ``\\# LENGTH HEX…``; for a type ygg knows, read into its own record."""
    if not rdata or rdata[0].text != b"\\#" or rdata[0].quoted or len(rdata) < 2:
        raise RecordError(f"TYPE{rtype} takes RFC 3597 data: \\# LENGTH HEX")
    length = _number(rdata[1], "RFC 3597 length", 16)
    data = _hex(rdata[2:], "RFC 3597 data")
    if len(data) != length:
        raise RecordError(f"RFC 3597 data is {len(data)} bytes, not {length}")
    return dns.UnknownRecord(data)


def parse_record(line: str) -> dns.RRHeader:
    """One record string as an ``RRHeader``; ``RecordError`` says what is wrong."""
    tokens = tokenize(line)
    if not tokens:
        raise RecordError("empty record")
    if _type_of(tokens[0]) is not None:
        raise RecordError("missing the owner name before the type")
    owner = absolute_name(tokens[0], "owner")
    ttl: int | None = None
    cls: int | None = None
    rest = tokens[1:]
    while rest and not rest[0].quoted:
        word = rest[0].text.decode(errors="replace")
        if word.upper() in _CLASSES and cls is None:
            cls = _CLASSES[word.upper()]
        elif (word.isdigit() or _TTL.match(word)) and ttl is None:
            ttl = parse_ttl(word)
        else:
            break
        rest = rest[1:]
    if ttl is None:
        ttl = DEFAULT_TTL
    if cls not in (None, dns.IN):
        raise RecordError("only class IN is served")
    if not rest:
        raise RecordError("missing the record type")
    rtype = _type_of(rest[0])
    if rtype is None:
        raise RecordError(f"unknown record type {rest[0].text.decode(errors='replace')!r}")
    if rtype in _NOT_RECORDS:
        raise RecordError(f"{rest[0].text.decode()} is not a record type that can be served")
    rdata = rest[1:]
    if rdata and rdata[0].text == b"\\#" and not rdata[0].quoted:
        payload = _generic(rdata, rtype)
    elif rtype in _BUILDERS:
        payload = _BUILDERS[rtype](rdata)
    else:
        payload = _generic(rdata, rtype)
    payload.ttl = ttl  # type: ignore[attr-defined]
    return dns.RRHeader(owner, rtype, dns.IN, ttl, payload, auth=True)


@dataclass
class Zone:
    """The records served for the configured labels, by owner name (lowercase, no dot)."""

    #: Configured labels (lowercased), whether or not they decode to an address.
    labels: frozenset[str] = frozenset()
    #: The addresses configured labels decode to (other spellings of a label match too).
    addresses: frozenset[ipaddress.IPv6Address] = frozenset()
    records: dict[bytes, list[dns.RRHeader]] = field(default_factory=dict)
    #: Every name that exists: owners and the names between an owner and its zone apex.
    names: frozenset[bytes] = frozenset()
    warnings: list[str] = field(default_factory=list)

    def owns(self, label: str, address: ipaddress.IPv6Address | None) -> bool:
        return label in self.labels or (address is not None and address in self.addresses)


def parse_zone(config: Mapping[str, Iterable[str]]) -> Zone:
    """All of ``Meshname.Config``, or a ``ConfigError`` naming the first bad record."""
    labels, addresses = set(), set()
    records: dict[bytes, list[dns.RRHeader]] = {}
    names: set[bytes] = set()
    warnings = []
    for label, lines in config.items():
        key = label.lower()
        labels.add(key)
        if not lines:
            warnings.append(f"Meshname.Config.{label}: no records")
        try:
            addresses.add(ip_from_label(key))
        except MeshnameError:
            pass  # served by its exact spelling only (Popura matches Config keys as strings)
        for i, line in enumerate(lines):
            path = f"Meshname.Config.{label}[{i}]"
            if not isinstance(line, str):
                raise ConfigError(path, "expected a record as a string")
            try:
                rr = parse_record(line)
            except RecordError as e:
                raise ConfigError(path, f"{line!r}: {e}") from None
            owner = rr.name.name.lower()
            parts = owner.split(b".")
            if (
                len(parts) < 2
                or parts[-2].decode(errors="replace") != key
                or parts[-1].decode(errors="replace") not in TLDS
            ):
                warnings.append(
                    f"{path}: {owner.decode(errors='replace')}. is not under {key}.meshname "
                    "(or .ygg, .popura, .vapordns); it will never be asked for here"
                )
            records.setdefault(owner, []).append(rr)
            for depth in range(len(parts) - 1):
                names.add(b".".join(parts[depth:]))
    return Zone(frozenset(labels), frozenset(addresses), records, frozenset(names), warnings)
