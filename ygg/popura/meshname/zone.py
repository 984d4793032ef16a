"""The records a node serves for its own meshname labels, from ``Meshname.Config``.

``Meshname.Config`` maps a label to a list of strings, each one record in RFC 1035
master-file syntax, read on its own (as Popura reads them with miekg/dns ``NewRR``)::

    owner [TTL] [class] TYPE rdata…

The owner comes first; TTL (seconds, or with units such as ``1h30m``; default 3600) and
class (only ``IN``) may follow in either order.  A name without a trailing dot is made
absolute by appending one: names are relative to the root, not to the label's zone, and
``@`` is not accepted.

dnspython reads the rdata (``dns.rdata.from_text``, its tokenizer: quoting, escapes,
comments, parentheses, every type it knows and RFC 3597's ``\\# LENGTH HEX`` form); this
module reads the owner, TTL, class and type, names the field that is wrong, and turns
each record into the twisted.names record the server answers with, through its wire
form.  One bad record rejects the whole map with a ``ConfigError`` naming it, e.g.
``Meshname.Config.aiag…[1]: '… SRV 10 5 http t.': SRV port: expected a number 0-65535, got 'http'``.
"""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.ttl
from twisted.names import dns as tdns

from ygg.interfaces import ConfigError
from ygg.popura.meshname.names import DEFAULT_TTL, TLDS, MeshnameError, ip_from_label

#: RFC 2181: a TTL is at most 2^31 - 1 (dnspython allows 2^32 - 1).
MAX_TTL = 2**31 - 1
_IN = dns.rdataclass.IN

#: The rdata fields of the documented types, one token each, to name the one that is wrong.
#: A type whose last field may take several tokens is in ``_VARIADIC``.
_FIELDS: dict[int, tuple[str, ...]] = {
    tdns.A: ("IPv4 address",),
    tdns.AAAA: ("IPv6 address",),
    tdns.NS: ("target",),
    tdns.CNAME: ("target",),
    tdns.PTR: ("target",),
    tdns.DNAME: ("target",),
    tdns.MX: ("preference", "exchange"),
    tdns.SRV: ("priority", "weight", "port", "target"),
    tdns.SOA: ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum"),
    tdns.HINFO: ("CPU", "OS"),
    tdns.TXT: ("string",),
    tdns.SPF: ("string",),
    tdns.SSHFP: ("algorithm", "fingerprint type", "fingerprint"),
    dns.rdatatype.CAA: ("flags", "tag", "value"),
}
_VARIADIC = {tdns.TXT, tdns.SPF, tdns.SSHFP}
#: The fields above that are unsigned numbers, by their width in bits.
_NUMBERS = {
    "preference": 16,
    "priority": 16,
    "weight": 16,
    "port": 16,
    "serial": 32,
    "algorithm": 8,
    "fingerprint type": 8,
    "flags": 8,
}
#: RFC 3597's generic form, for any type: ``\\# LENGTH HEX…``.
_GENERIC = ("\\#", "length", "data")
#: dnspython's bare "Text input is malformed." (its SyntaxError with no message).
_MALFORMED = str(dns.exception.SyntaxError())
#: dnspython's words where plainer ones say more in a config error.
_PLAIN = {
    "string too long": "a string is longer than 255 bytes; split it",
    "Odd-length string": "not hexadecimal (odd length)",
    "Non-hexadecimal digit found": "not hexadecimal",
    "generic rdata does not start with \\#": "expected RFC 3597 data: \\# LENGTH HEX",
}
_WRONG_LENGTH = "generic rdata hex data has wrong length"


class RecordError(ValueError):
    """What is wrong with one record (the caller names the record)."""


class _Reader(dns.tokenizer.Tokenizer):
    """dnspython's tokenizer, keeping the tokens read (so an error can name the field it
    was read for) and refusing ``@`` where a name is read (it would mean the root)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.read: list[dns.tokenizer.Token] = []

    def get(self, want_leading: bool = False, want_comment: bool = False) -> Any:
        try:
            token = super().get(want_leading, want_comment)
        except dns.exception.UnexpectedEnd:
            raise RecordError(
                "unterminated quoted string" if self.quoting else "a backslash at the end"
            ) from None
        except dns.exception.SyntaxError as e:
            bare = str(e) == _MALFORMED  # raised for a ")" without its "("
            raise RecordError("unbalanced parentheses" if bare else _reason(e)) from None
        if not (token.is_whitespace() or token.is_comment()):
            self.read.append(token)
        return token

    def unget(self, token: dns.tokenizer.Token) -> None:
        super().unget(token)
        if not (token.is_whitespace() or token.is_comment()):
            self.read.pop()

    def get_name(
        self,
        origin: dns.name.Name | None = None,
        relativize: bool = False,
        relativize_to: dns.name.Name | None = None,
    ) -> dns.name.Name:
        token = self.get()
        if token.is_identifier() and token.value == "@":
            raise dns.exception.SyntaxError(
                "'@' is not allowed here; write the full name, ending in '.'"
            )
        if token.is_quoted_string():
            raise dns.exception.SyntaxError("a domain name cannot be quoted")
        name = self.as_name(token, origin, relativize, relativize_to)
        _check_labels(name)
        return name


def _check_labels(name: dns.name.Name) -> None:
    # twisted.names holds a name as dotted bytes: a label with a dot in it would split.
    if any(b"." in label for label in name.labels):
        raise dns.exception.SyntaxError("a label with an escaped '.' cannot be served")


def _reason(error: BaseException) -> str:
    text = str(error)
    text = _PLAIN.get(text, text).rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _shown(token: dns.tokenizer.Token) -> str:
    """A token as written (quotes and escapes as they were), shortened."""
    text = f'"{token.value}"' if token.is_quoted_string() else token.value
    return "'" + (text if len(text) <= 40 else text[:37] + "...") + "'"


def _unescapes(token: dns.tokenizer.Token) -> bool:
    try:
        token.unescape_to_bytes()
    except dns.exception.DNSException:
        return False
    return True


def _explain(type_name: str, rtype: int, read: list[dns.tokenizer.Token], error: Exception) -> str:
    """One line for bad rdata: the type, the field when known, what is wrong and the token
    it was read from.  ``read``: the rdata tokens read when dnspython gave up."""
    reason = _reason(error)
    cause = error.__cause__
    if isinstance(cause, ValueError) and not isinstance(cause, binascii.Error):
        # A check of the whole rdata once read (a fingerprint's length, a CAA tag…).
        return f"{type_name}: {reason}"
    generic = bool(read) and read[0].is_identifier() and read[0].value == "\\#"
    fields = _GENERIC if generic else _FIELDS.get(rtype, ())
    if not read:
        return f"{type_name} {fields[0]} is missing" if fields else f"{type_name}: {reason}"
    if isinstance(cause, dns.exception.FormError):  # the generic form of a known type
        return f"{type_name} data: not valid {dns.rdatatype.to_text(rtype)} data"
    if generic and str(error) == _WRONG_LENGTH:
        size = len("".join(t.value for t in read[2:] if not t.is_eol_or_eof())) // 2
        return f"{type_name} data: {size} bytes, not {read[1].value}"
    variadic = generic or rtype in _VARIADIC
    index, token = len(read) - 1, read[-1]
    if fields and index >= len(fields) and not variadic and not token.is_eol_or_eof():
        count = f"{len(fields)} field{'s' if len(fields) > 1 else ''}"
        return f"{type_name} takes {count} ({', '.join(fields)}); {_shown(token)} is too many"
    name = fields[min(index, len(fields) - 1)] if fields else ""
    where = f"{type_name} {name}".rstrip()
    if token.is_eol_or_eof():
        return f"{where} is missing" if name else f"{where}: {reason}"
    if variadic and index >= len(fields) - 1:
        # A run of tokens read at once: show the one that does not unescape, if any.
        bad = next((t for t in read[len(fields) - 1 :] if not _unescapes(t)), None)
        return f"{where}: bad escape in {_shown(bad)}" if bad else f"{where}: {reason}"
    shown = _shown(token)
    if name in _NUMBERS:
        return f"{where}: expected a number 0-{2 ** _NUMBERS[name] - 1}, got {shown}"
    if str(error) == _MALFORMED and name:
        return f"{type_name}: not a valid {name}: {shown}"
    if shown in reason or reason.startswith(token.value + " "):
        return f"{where}: {reason}"
    return f"{where}: {reason}, got {shown}"


def _name_bytes(name: dns.name.Name) -> bytes:
    """An absolute dnspython name as twisted.names holds it: no trailing dot."""
    return b".".join(name.labels[:-1])


def _owner(token: dns.tokenizer.Token) -> bytes:
    if token.is_eol_or_eof():
        raise RecordError("empty record")
    if token.is_quoted_string():
        raise RecordError("owner: a domain name cannot be quoted")
    if token.value == "@":
        raise RecordError("owner: '@' is not allowed; write the full name, ending in '.'")
    try:
        name = dns.name.from_text(token.value, dns.name.root)
        _check_labels(name)
    except dns.exception.DNSException as e:
        raise RecordError(f"owner: {_reason(e)}, got {_shown(token)}") from None
    return _name_bytes(name)


def _is_type(text: str) -> bool:
    try:
        dns.rdatatype.from_text(text)
    except dns.exception.DNSException:
        return False
    return True


def _header(reader: _Reader) -> tuple[bytes, int, int, str]:
    """Owner, TTL, type and its name, as NewRR reads them: TTL and class in either order."""
    first = reader.get()
    owner = _owner(first)
    ttl: int | None = None
    cls: int | None = None
    while True:
        token = reader.get()
        if token.is_eol_or_eof():
            raise RecordError("missing the record type")
        text = token.value
        if token.is_quoted_string():
            raise RecordError(f"expected the record type, got {_shown(token)}")
        if text[:1].isdigit() and ttl is None:
            try:
                ttl = int(text) if text.isdigit() else dns.ttl.from_text(text)
            except dns.exception.SyntaxError as e:
                raise RecordError(f"bad TTL {text!r}: {_reason(e)}") from None
            if ttl > MAX_TTL:
                raise RecordError(f"TTL {text} is more than {MAX_TTL}")
            continue
        if cls is None:
            try:
                cls = dns.rdataclass.from_text(text)
            except dns.exception.DNSException:
                pass
            else:
                if cls == _IN:
                    continue
                if not _is_type(text):  # ANY and NONE name a class and a type
                    raise RecordError("only class IN is served")
        try:
            rtype = dns.rdatatype.from_text(text)
        except dns.exception.DNSException:
            if _is_type(first.value):
                raise RecordError("missing the owner name before the type") from None
            raise RecordError(f"unknown record type {text!r}") from None
        if rtype == 0 or dns.rdatatype.is_metatype(rtype):
            raise RecordError(f"{text} is not a record type that can be served")
        return owner, DEFAULT_TTL if ttl is None else ttl, rtype, text.upper()


def _twisted_record(rtype: int, wire: bytes, ttl: int) -> Any:
    """The twisted.names record of that type decoded from the wire form; the wire form
    as it is (``UnknownRecord``) for a type twisted.names does not know."""
    record_type = tdns.Message().lookupRecordType(rtype)
    if record_type is not tdns.UnknownRecord:
        record = record_type(ttl=ttl)
        stream = BytesIO(wire)
        try:
            record.decode(stream, len(wire))
        except Exception:
            pass  # a form twisted.names reads otherwise: served as the bytes dnspython wrote
        else:
            if stream.tell() == len(wire):
                return record
    return tdns.UnknownRecord(wire, ttl=ttl)


def parse_record(line: str) -> tdns.RRHeader:
    """One record string as an ``RRHeader``; ``RecordError`` says what is wrong."""
    reader = _Reader(line)
    owner, ttl, rtype, type_name = _header(reader)
    reader.read.clear()
    try:
        rdata = dns.rdata.from_text(_IN, rtype, reader, dns.name.root, relativize=False)
    except dns.exception.DNSException as e:
        raise RecordError(_explain(type_name, rtype, reader.read, e)) from None
    while (token := reader.get()).is_eol():
        pass
    if not token.is_eof():
        raise RecordError(f"one record per string; more follows: {_shown(token)}")
    payload = _twisted_record(rtype, rdata.to_wire(), ttl)
    return tdns.RRHeader(owner, rtype, tdns.IN, ttl, payload, auth=True)


@dataclass
class Zone:
    """The records served for the configured labels, by owner name (lowercase, no dot)."""

    #: Configured labels (lowercased), whether or not they decode to an address.
    labels: frozenset[str] = frozenset()
    #: The addresses configured labels decode to (other spellings of a label match too).
    addresses: frozenset[ipaddress.IPv6Address] = frozenset()
    records: dict[bytes, list[tdns.RRHeader]] = field(default_factory=dict)
    #: Every name that exists: owners and the names between an owner and its zone apex.
    names: frozenset[bytes] = frozenset()
    warnings: list[str] = field(default_factory=list)

    def owns(self, label: str, address: ipaddress.IPv6Address | None) -> bool:
        return label in self.labels or (address is not None and address in self.addresses)


def parse_zone(config: Mapping[str, Iterable[str]]) -> Zone:
    """All of ``Meshname.Config``, or a ``ConfigError`` naming the first bad record."""
    labels, addresses = set(), set()
    records: dict[bytes, list[tdns.RRHeader]] = {}
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
