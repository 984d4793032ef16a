"""The host's network interfaces, as the link layer needs them: names, flags, addresses.

Read from the kernel's own tables (``if_nameindex``, ``SIOCGIFFLAGS``/``SIOCGIFADDR`` and
``/proc/net/if_inet6``), which is cheap enough to do every second for multicast and sees
the network namespace the node runs in.  (pyroute2 would do it too, but costs 8 MiB of
memory to import; the node uses it only to configure its TUN.)
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_MULTICAST = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
_IF_INET6 = "/proc/net/if_inet6"


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    flags: int
    addresses: tuple[str, ...]  # IPv6 (no zone) then IPv4

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def multicast(self) -> bool:
        return bool(self.flags & IFF_MULTICAST)

    @property
    def point_to_point(self) -> bool:
        return bool(self.flags & IFF_POINTOPOINT)


def _ipv6_addresses() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    try:
        with open(_IF_INET6) as table:
            for line in table:
                fields = line.split()
                if len(fields) < 6:
                    continue
                address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
                found.setdefault(int(fields[1], 16), []).append(address)
    except OSError:
        pass
    return found


def _ioctl(sock: socket.socket, request: int, name: str) -> bytes | None:
    try:
        return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None


def all_interfaces() -> list[Interface]:
    ipv6 = _ipv6_addresses()
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, name in socket.if_nameindex():
            raw = _ioctl(sock, SIOCGIFFLAGS, name)
            flags = struct.unpack_from("H", raw, 16)[0] if raw else 0
            addresses = list(ipv6.get(index, ()))
            raw = _ioctl(sock, SIOCGIFADDR, name)
            if raw:
                addresses.append(socket.inet_ntoa(raw[20:24]))
            found.append(Interface(name, index, flags, tuple(addresses)))
    return found


def addresses(name: str) -> tuple[str, ...]:
    interface = by_name(name)
    return interface.addresses if interface is not None else ()


def by_name(name: str) -> Interface | None:
    return next((i for i in all_interfaces() if i.name == name), None)
