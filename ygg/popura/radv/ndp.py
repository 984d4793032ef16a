"""Router Solicitations and Router Advertisements (RFC 4861 §4.1–4.2) on the wire.

The one module that encodes and decodes the Neighbor Discovery messages the RAdv feature
sends and reads: the ICMPv6 body only (from the type byte on), as a raw ICMPv6 socket
hands it over.  The kernel fills in and checks the ICMPv6 checksum, so encoding leaves it
zero and decoding ignores it.

Options understood: Source Link-Layer Address (1), Prefix Information (3), Route
Information (RFC 4191, 24) and Recursive DNS Server (RFC 8106, 25); any other option is
kept as an ``UnknownOption``.  Every malformed message raises ``ygg.errors.DecodeError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ygg.interfaces import DecodeError

ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134

OPTION_SOURCE_LINK_LAYER_ADDRESS = 1
OPTION_PREFIX_INFORMATION = 3
OPTION_ROUTE_INFORMATION = 24
OPTION_RECURSIVE_DNS_SERVER = 25

#: A lifetime of all ones: "infinity" (RFC 4861 §4.6.2, RFC 8106 §5.1).
INFINITE = 0xFFFFFFFF
#: Hop limit every Neighbor Discovery message must arrive with (RFC 4861 §6.1).
ND_HOP_LIMIT = 255

#: Router and route preferences (RFC 4191 §2.1), as their 2-bit field values.
PREFERENCE_HIGH = 0b01
PREFERENCE_MEDIUM = 0b00
PREFERENCE_LOW = 0b11
_RESERVED_PREFERENCE = 0b10

_UNSPECIFIED = bytes(16)
_RA_HEADER = struct.Struct("!BBHBBHII")  # type, code, checksum, hop limit, flags, lifetimes
_PIO = struct.Struct("!BBII4s16s")  # length, flags, valid, preferred, reserved, prefix
_RIO = struct.Struct("!BBI")  # prefix length, flags, lifetime (prefix follows)
_RDNSS = struct.Struct("!2sI")  # reserved, lifetime (servers follow)


@dataclass(frozen=True)
class SourceLinkLayerAddress:
    address: bytes  # 6 bytes on Ethernet


@dataclass(frozen=True)
class PrefixInformation:
    prefix: bytes  # 16 bytes
    length: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True)
class RouteInformation:
    prefix: bytes  # 16 bytes, zero past ``length`` bits
    length: int
    preference: int
    lifetime: int


@dataclass(frozen=True)
class RecursiveDNSServer:
    servers: tuple[bytes, ...]  # 16-byte addresses
    lifetime: int


@dataclass(frozen=True)
class UnknownOption:
    type: int
    body: bytes  # what follows the type and length bytes


Option = (
    SourceLinkLayerAddress
    | PrefixInformation
    | RouteInformation
    | RecursiveDNSServer
    | UnknownOption
)


@dataclass(frozen=True)
class RouterAdvertisement:
    cur_hop_limit: int = 0
    managed: bool = False
    other: bool = False
    preference: int = PREFERENCE_MEDIUM
    router_lifetime: int = 0  # seconds; 0 = not a default router
    reachable_time: int = 0  # milliseconds
    retrans_timer: int = 0  # milliseconds
    options: tuple[Option, ...] = ()

    def option(self, kind: type) -> Option | None:
        """The first option of this class, if any."""
        return next((o for o in self.options if isinstance(o, kind)), None)


@dataclass(frozen=True)
class RouterSolicitation:
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------- encoding


def encode_router_advertisement(ra: RouterAdvertisement) -> bytes:
    flags = (0x80 if ra.managed else 0) | (0x40 if ra.other else 0) | ((ra.preference & 0b11) << 3)
    header = _RA_HEADER.pack(
        ROUTER_ADVERTISEMENT,
        0,
        0,
        ra.cur_hop_limit,
        flags,
        ra.router_lifetime,
        ra.reachable_time,
        ra.retrans_timer,
    )
    return header + b"".join(encode_option(o) for o in ra.options)


def encode_router_solicitation(rs: RouterSolicitation) -> bytes:
    return bytes([ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0]) + b"".join(
        encode_option(o) for o in rs.options
    )


def encode_option(option: Option) -> bytes:
    if isinstance(option, SourceLinkLayerAddress):
        return _option(OPTION_SOURCE_LINK_LAYER_ADDRESS, option.address)
    if isinstance(option, PrefixInformation):
        flags = (0x80 if option.on_link else 0) | (0x40 if option.autonomous else 0)
        return _option(
            OPTION_PREFIX_INFORMATION,
            _PIO.pack(
                option.length,
                flags,
                option.valid_lifetime,
                option.preferred_lifetime,
                bytes(4),
                _masked(option.prefix, option.length),
            ),
        )
    if isinstance(option, RouteInformation):
        # RFC 4191 §2.3: no prefix bytes for ::/0, 8 for lengths up to 64, else 16.
        size = 0 if option.length == 0 else 8 if option.length <= 64 else 16
        body = _RIO.pack(option.length, (option.preference & 0b11) << 3, option.lifetime)
        return _option(
            OPTION_ROUTE_INFORMATION, body + _masked(option.prefix, option.length)[:size]
        )
    if isinstance(option, RecursiveDNSServer):
        return _option(
            OPTION_RECURSIVE_DNS_SERVER,
            _RDNSS.pack(bytes(2), option.lifetime) + b"".join(option.servers),
        )
    if isinstance(option, UnknownOption):
        return _option(option.type, option.body)
    raise TypeError(f"not a Neighbor Discovery option: {option!r}")


def _option(kind: int, body: bytes) -> bytes:
    """Type, length in units of 8 bytes, body padded with zeros to that length."""
    units = (len(body) + 2 + 7) // 8
    if units > 255:
        raise ValueError("a Neighbor Discovery option is at most 2040 bytes")
    return bytes([kind, units]) + body + bytes(units * 8 - 2 - len(body))


def _masked(prefix: bytes, length: int) -> bytes:
    if len(prefix) != 16 or not 0 <= length <= 128:
        raise ValueError(f"bad prefix {prefix.hex()}/{length}")
    value = int.from_bytes(prefix, "big") >> (128 - length) << (128 - length) if length else 0
    return value.to_bytes(16, "big")


# --------------------------------------------------------------------------- decoding


def decode_router_solicitation(
    data: bytes, source: bytes | None = None, hop_limit: int | None = None
) -> RouterSolicitation:
    """A Router Solicitation, validated as RFC 4861 §6.1.1 asks of a router.

    ``source`` (16 bytes) and ``hop_limit`` come from the IPv6 header when the caller has
    them: a hop limit other than 255 means the message crossed a router, and a message
    from the unspecified address must not carry a source link-layer address.  The
    checksum is the kernel's business.
    """
    if hop_limit is not None and hop_limit != ND_HOP_LIMIT:
        raise DecodeError(f"Router Solicitation with hop limit {hop_limit}, not 255")
    _check_type(data, ROUTER_SOLICITATION, "Router Solicitation")
    options = decode_options(data, 8)
    if source == _UNSPECIFIED and any(isinstance(o, SourceLinkLayerAddress) for o in options):
        raise DecodeError("Router Solicitation from :: with a source link-layer address")
    return RouterSolicitation(options)


def decode_router_advertisement(data: bytes) -> RouterAdvertisement:
    _check_type(data, ROUTER_ADVERTISEMENT, "Router Advertisement")
    if len(data) < _RA_HEADER.size:
        raise DecodeError(f"Router Advertisement of {len(data)} bytes, shorter than 16")
    _, _, _, hop_limit, flags, lifetime, reachable, retrans = _RA_HEADER.unpack_from(data)
    return RouterAdvertisement(
        cur_hop_limit=hop_limit,
        managed=bool(flags & 0x80),
        other=bool(flags & 0x40),
        preference=(flags >> 3) & 0b11,
        router_lifetime=lifetime,
        reachable_time=reachable,
        retrans_timer=retrans,
        options=decode_options(data, _RA_HEADER.size),
    )


def _check_type(data: bytes, kind: int, what: str) -> None:
    if len(data) < 8:
        raise DecodeError(f"ICMPv6 message of {len(data)} bytes, shorter than 8")
    if data[0] != kind:
        raise DecodeError(f"ICMPv6 type {data[0]}, not a {what} ({kind})")
    if data[1] != 0:
        raise DecodeError(f"{what} with code {data[1]}, not 0")


def decode_options(data: bytes, offset: int) -> tuple[Option, ...]:
    options: list[Option] = []
    while offset < len(data):
        if len(data) - offset < 2:
            raise DecodeError(f"option header cut short at byte {offset}")
        kind, units = data[offset], data[offset + 1]
        if units == 0:
            raise DecodeError(f"option type {kind} with length 0 at byte {offset}")
        end = offset + units * 8
        if end > len(data):
            raise DecodeError(
                f"option type {kind} of {units * 8} bytes runs past the message's end"
            )
        options.append(_decode_option(kind, units, data[offset + 2 : end]))
        offset = end
    return tuple(options)


def _decode_option(kind: int, units: int, body: bytes) -> Option:
    if kind == OPTION_SOURCE_LINK_LAYER_ADDRESS:
        # The body is padded to 8-byte units; on Ethernet the address is its 6 bytes.
        return SourceLinkLayerAddress(body[:6] if units == 1 else body)
    if kind == OPTION_PREFIX_INFORMATION:
        if units != 4:
            raise DecodeError(f"prefix information option of length {units}, not 4")
        length, flags, valid, preferred, _, prefix = _PIO.unpack(body)
        if length > 128:
            raise DecodeError(f"prefix information with prefix length {length}")
        return PrefixInformation(
            prefix, length, bool(flags & 0x80), bool(flags & 0x40), valid, preferred
        )
    if kind == OPTION_ROUTE_INFORMATION:
        if units > 3:
            raise DecodeError(f"route information option of length {units}")
        length, flags, lifetime = _RIO.unpack_from(body)
        if length > 128 or (length > 64 and units < 3) or (length > 0 and units < 2):
            raise DecodeError(f"route information for a /{length} in {units * 8} bytes")
        preference = (flags >> 3) & 0b11
        if preference == _RESERVED_PREFERENCE:
            raise DecodeError("route information with the reserved preference 10")
        prefix = (body[_RIO.size :] + bytes(16))[:16]
        return RouteInformation(_masked(prefix, length), length, preference, lifetime)
    if kind == OPTION_RECURSIVE_DNS_SERVER:
        if units < 3 or units % 2 == 0:
            raise DecodeError(f"RDNSS option of length {units}, not an odd number from 3")
        _, lifetime = _RDNSS.unpack_from(body)
        rest = body[_RDNSS.size :]
        return RecursiveDNSServer(
            tuple(rest[i : i + 16] for i in range(0, len(rest), 16)), lifetime
        )
    return UnknownOption(kind, body)
