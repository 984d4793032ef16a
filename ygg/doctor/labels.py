"""The kernel's IPv6 address-label table (RFC 6724 §2.1), as ``ip addrlabel list`` shows it.

Source-address selection prefers a source whose label matches the destination's (rule 6)
before it falls back to the longest common prefix (rule 8).  Linux gives 200::/7 no entry of
its own, so a node's 200::/7 address and 300::/64 subnet share ``::/0``'s label with every
Internet destination, and rule 8 can then pick one of them as the source of Internet traffic
(NAT64's 64:ff9b::/96 shares more leading bits with 300::/8 than with 2000::/3): yggdrasil
issues #1155 and #1372.  An entry giving 200::/7 a label of its own settles it at rule 6.

The table is read with one rtnetlink dump (``RTM_GETADDRLABEL``); this module is the one
decoder of those messages.  The dump is the only I/O here: the lookups are pure.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ygg.links.interfaces import NETLINK_ROUTE, attributes, split_messages

RTM_NEWADDRLABEL = 72
RTM_GETADDRLABEL = 74
IFAL_ADDRESS = 1
IFAL_LABEL = 2
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
#: ifaddrlblmsg: family, reserved, prefix length, flags, interface index, sequence.
_IFADDRLBL = struct.Struct("=BBBBII")
_LABEL = struct.Struct("=I")
_ERRNO = struct.Struct("=i")
_sequence = itertools.count(1)

YGGDRASIL = ipaddress.IPv6Network("200::/7")
#: The label ``ygg doctor`` suggests for 200::/7: the one yggdrasil users were given for
#: their /etc/gai.conf in yggdrasil-go issue #437, unused by Linux's default table.
SUGGESTED = 10


@dataclass(frozen=True)
class Label:
    prefix: ipaddress.IPv6Network
    label: int
    #: The interface an entry is limited to; 0 for every interface.
    ifindex: int = 0

    def __str__(self) -> str:
        return f"prefix {self.prefix} label {self.label}"


def parse_label(payload: bytes) -> Label | None:
    """One ``RTM_NEWADDRLABEL`` payload, or None for what is not an IPv6 entry."""
    if len(payload) < _IFADDRLBL.size:
        return None
    family, _, length, _, index, _ = _IFADDRLBL.unpack_from(payload)
    found = attributes(payload, _IFADDRLBL.size)
    address, label = found.get(IFAL_ADDRESS), found.get(IFAL_LABEL)
    if family != socket.AF_INET6 or address is None or len(address) != 16 or length > 128:
        return None
    if label is None or len(label) != _LABEL.size:
        return None
    prefix = ipaddress.IPv6Network((ipaddress.IPv6Address(address), length), strict=False)
    return Label(prefix, _LABEL.unpack(label)[0], index)


def read_labels() -> list[Label]:
    """The table in the kernel's order (longest prefix first); OSError if it cannot be
    read (no IPv6 in the kernel, no netlink)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        request = _IFADDRLBL.pack(socket.AF_INET6, 0, 0, 0, 0, 0)
        return [entry for entry in map(parse_label, _dump(sock, request)) if entry is not None]


def _dump(sock: socket.socket, request: bytes) -> Iterator[bytes]:
    sequence = next(_sequence) & 0xFFFFFFFF
    length = _HEADER.size + len(request)
    flags = _NLM_F_REQUEST | _NLM_F_DUMP
    sock.send(_HEADER.pack(length, RTM_GETADDRLABEL, flags, sequence, 0) + request)
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for kind, seq, payload in split_messages(data):
            if seq != sequence:
                continue
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR:
                (code,) = _ERRNO.unpack_from(payload) if len(payload) >= 4 else (-1,)
                if code:
                    raise OSError(-code, os.strerror(-code))
                continue
            if kind == RTM_NEWADDRLABEL:
                yield payload


def label_of(table: Iterable[Label], address: ipaddress.IPv6Address) -> int | None:
    """The label the kernel gives ``address`` (its longest matching entry for every
    interface), or None when no entry matches.  Entries limited to one interface are left
    out: they apply only to that interface's addresses."""
    best: Label | None = None
    for entry in table:
        if entry.ifindex == 0 and address in entry.prefix:
            if best is None or entry.prefix.prefixlen > best.prefix.prefixlen:
                best = entry
    return None if best is None else best.label


def free_label(table: Iterable[Label], wanted: int = SUGGESTED) -> int:
    """``wanted``, or the next number no entry uses."""
    used = {entry.label for entry in table}
    return next(n for n in itertools.count(wanted) if n not in used)


def fix_commands(table: list[Label]) -> list[str]:
    """The commands that give 200::/7 a label of its own."""
    label = free_label([e for e in table if e.prefix != YGGDRASIL])
    commands = []
    if any(e.prefix == YGGDRASIL and e.ifindex == 0 for e in table):
        commands.append(f"ip -6 addrlabel del prefix {YGGDRASIL}")
    commands.append(f"ip -6 addrlabel add prefix {YGGDRASIL} label {label}")
    return commands
