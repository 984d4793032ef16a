"""The host's network interfaces, as the link layer needs them: names, flags, addresses.

Read with two rtnetlink dumps on a raw ``AF_NETLINK`` socket, ``RTM_GETLINK`` (index,
name, flags) and ``RTM_GETADDR`` (every address of every interface), which is what Go's
``net.Interfaces`` and ``Interface.Addrs`` read too: all of an interface's IPv4 and IPv6
addresses, in the kernel's order.  It is cheap enough to do every second for multicast,
sees the network namespace the node runs in, and needs no import beyond ``socket`` and
``struct`` (pyroute2 costs 7 MiB and more; only RAdv imports it, when enabled).
This module is the one decoder of these netlink messages.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_MULTICAST = 0x1000

NETLINK_ROUTE = 0
RTM_GETLINK = 18
RTM_GETADDR = 22
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
IFLA_IFNAME = 3
IFA_ADDRESS = 1
IFA_LOCAL = 2

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefix length, flags, scope, index
_RTATTR = struct.Struct("=HH")  # rtattr: length, type
_ERRNO = struct.Struct("=i")
_RECEIVE_SIZE = 65536
_sequence = itertools.count(1)


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    flags: int
    addresses: tuple[str, ...]  # IPv4 and IPv6 (no zone), in the kernel's order

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def multicast(self) -> bool:
        return bool(self.flags & IFF_MULTICAST)

    @property
    def point_to_point(self) -> bool:
        return bool(self.flags & IFF_POINTOPOINT)

    @property
    def link_local(self) -> str | None:
        """The first IPv6 link-local address (what beacons and multicast links use)."""
        for text in self.addresses:
            try:
                ip = ipaddress.ip_address(text.split("%")[0])
            except ValueError:
                continue
            if ip.version == 6 and ip.is_link_local:
                return str(ip)
        return None


def all_interfaces() -> list[Interface]:
    """Every interface with all its addresses; OSError if netlink cannot be read."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        links = [
            parse_link(payload) for payload in _dump(sock, RTM_GETLINK, _IFINFO.pack(0, 0, 0, 0, 0))
        ]
        addresses: dict[int, list[str]] = {}
        for payload in _dump(sock, RTM_GETADDR, _IFADDR.pack(0, 0, 0, 0, 0)):
            parsed = parse_address(payload)
            if parsed is not None:
                addresses.setdefault(parsed[0], []).append(parsed[1])
    return [
        Interface(name, index, flags, tuple(addresses.get(index, ())))
        for index, name, flags in links
        if name
    ]


def addresses(name: str) -> tuple[str, ...]:
    interface = by_name(name)
    return interface.addresses if interface is not None else ()


def by_name(name: str) -> Interface | None:
    return next((i for i in all_interfaces() if i.name == name), None)


# -- rtnetlink ------------------------------------------------------------------------------


def _dump(sock: socket.socket, kind: int, request: bytes) -> Iterator[bytes]:
    """Send one dump request; yield the payload of each answer until the dump is done."""
    sequence = next(_sequence) & 0xFFFFFFFF
    header = _HEADER.pack(
        _HEADER.size + len(request), kind, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0
    )
    sock.send(header + request)
    while True:
        data = sock.recv(_RECEIVE_SIZE)
        if not data:
            return
        for message_type, message_sequence, payload in split_messages(data):
            if message_sequence != sequence:
                continue
            if message_type == NLMSG_DONE:
                return
            if message_type == NLMSG_ERROR:
                (code,) = _ERRNO.unpack_from(payload) if len(payload) >= 4 else (-1,)
                if code:
                    raise OSError(-code, os.strerror(-code))
                continue
            yield payload


def split_messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence, payload) of each netlink message in one datagram."""
    offset = 0
    while len(data) - offset >= _HEADER.size:
        length, message_type, _flags, sequence, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            return  # truncated: nothing after it can be trusted
        yield message_type, sequence, data[offset + _HEADER.size : offset + length]
        offset += _align(length)


def attributes(payload: bytes, offset: int) -> dict[int, bytes]:
    """The rtattrs after a fixed header (the first of each type wins)."""
    found: dict[int, bytes] = {}
    while len(payload) - offset >= _RTATTR.size:
        length, kind = _RTATTR.unpack_from(payload, offset)
        if length < _RTATTR.size or offset + length > len(payload):
            break
        found.setdefault(kind, payload[offset + _RTATTR.size : offset + length])
        offset += _align(length)
    return found


def parse_link(payload: bytes) -> tuple[int, str, int]:
    """(index, name, flags) of an ``RTM_NEWLINK`` payload; name "" if it has none."""
    if len(payload) < _IFINFO.size:
        return 0, "", 0
    _family, _type, index, flags, _change = _IFINFO.unpack_from(payload)
    name = attributes(payload, _IFINFO.size).get(IFLA_IFNAME, b"")
    return index, name.split(b"\0", 1)[0].decode(errors="replace"), flags


def parse_address(payload: bytes) -> tuple[int, str] | None:
    """(interface index, address) of an ``RTM_NEWADDR`` payload, or None.

    The local address is ``IFA_LOCAL`` where there is one (on a point-to-point link
    ``IFA_ADDRESS`` is the far end), else ``IFA_ADDRESS``.
    """
    if len(payload) < _IFADDR.size:
        return None
    family, _prefix, _flags, _scope, index = _IFADDR.unpack_from(payload)
    found = attributes(payload, _IFADDR.size)
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
    if family == socket.AF_INET and raw is not None and len(raw) == 4:
        return index, str(ipaddress.IPv4Address(raw))
    if family == socket.AF_INET6 and raw is not None and len(raw) == 16:
        return index, str(ipaddress.IPv6Address(raw))
    return None


def _align(length: int) -> int:
    return (length + 3) & ~3
