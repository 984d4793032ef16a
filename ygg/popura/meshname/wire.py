"""DNS messages in and out of the meshname server: strict decoding, FORMERR, and replies
kept within the client's UDP limit.

twisted.names decodes what it can of a message cut short and encodes without a size
limit; these wrappers decide what is malformed and what a UDP reply may hold.
"""

from __future__ import annotations

import struct

from twisted.names import dns

#: A request longer than this is not read (FORMERR): a query is a few dozen bytes.
MAX_REQUEST = 4096
#: The largest UDP reply we send to an EDNS client (the DNS flag day 2020 value).
MAX_UDP_REPLY = 1232
MIN_UDP_REPLY = 512
#: What a UDP socket of ours reads at once: any datagram, so none is cut short.
MAX_DATAGRAM = 65535
HEADER = struct.Struct("!HBBHHHH")
#: The longest name in its dotted form: 255 octets on the wire (RFC 1035 §3.1).
MAX_NAME = 253


def decode_message(data: bytes) -> dns.Message:
    """A whole DNS message; ``ValueError`` if it is malformed or shorter than its header
    says (twisted.names returns what it could read of a message cut short)."""
    if len(data) < HEADER.size:
        raise ValueError("shorter than a DNS header")
    counts = HEADER.unpack_from(data)[3:]
    message = dns.Message()
    try:
        message.fromStr(data)
    except Exception as e:
        raise ValueError(f"malformed: {e}") from None
    sections = (message.queries, message.answers, message.authority, message.additional)
    if tuple(len(section) for section in sections) != counts:
        raise ValueError("cut short")
    # twisted.names reads names of any length; a reply echoing one would not fit in UDP.
    for section in sections:
        for record in section:
            if len(record.name.name) > MAX_NAME:
                raise ValueError("a name longer than 255 octets")
    return message


class RequestError(Exception):
    """A request that gets FORMERR."""


def read_request(data: bytes) -> dns.Message:
    """Decode a request; ``RequestError`` when it must get FORMERR, ``ValueError`` when it
    is not worth an answer (too short to hold a header, or a response)."""
    if len(data) < HEADER.size:
        raise ValueError("shorter than a DNS header")
    _, flags, _, qd, an, ns, ar = HEADER.unpack_from(data)
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
    return HEADER.pack(qid, 0x80 | (flags & 0x79), dns.EFORMAT, 0, 0, 0, 0)


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
