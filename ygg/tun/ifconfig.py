"""The three things the node sets on its TUN: the MTU, its address, and link up.

Each is one ioctl on an IPv6 datagram socket (``SIOCSIFMTU``, ``SIOCSIFADDR`` with an
``in6_ifreq``, ``SIOCSIFFLAGS``), the calls ``ifconfig`` makes; the kernel adds the
address as ``ip addr add`` over netlink does (permanent, with its prefix route).  pyroute2
did the same in ~7 MiB of imports; these need fcntl and struct.
"""

from __future__ import annotations

import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
IFF_UP = 0x1
IFNAMSIZ = 16
#: ``struct ifreq``: the name, then a 24-byte union (an int MTU, a short of flags…).
_IFREQ = struct.Struct(f"{IFNAMSIZ}s24s")
#: ``struct in6_ifreq``: address, prefix length, interface index.
_IN6_IFREQ = struct.Struct("16sIi")


def _ifreq(name: str, value: bytes = b"") -> bytes:
    return _IFREQ.pack(name.encode(), value)


def _value(reply: bytes, fmt: str) -> int:
    return struct.unpack_from(fmt, reply, IFNAMSIZ)[0]


class InterfaceConfig:
    """Sets an interface's MTU, addresses and state; errors are ``OSError`` (EPERM…)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = socket.if_nametoindex(name)
        self._socket = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)

    def __enter__(self) -> InterfaceConfig:
        return self

    def __exit__(self, *_: object) -> None:
        self._socket.close()

    def _ioctl(self, request: int, argument: bytes) -> bytes:
        return fcntl.ioctl(self._socket.fileno(), request, argument)

    def mtu(self) -> int:
        return _value(self._ioctl(SIOCGIFMTU, _ifreq(self.name)), "i")

    def set_mtu(self, mtu: int) -> None:
        self._ioctl(SIOCSIFMTU, _ifreq(self.name, struct.pack("i", mtu)))

    def add_address(self, address: bytes, prefix_length: int) -> None:
        self._ioctl(SIOCSIFADDR, _IN6_IFREQ.pack(address, prefix_length, self.index))

    def up(self) -> None:
        flags = _value(self._ioctl(SIOCGIFFLAGS, _ifreq(self.name)), "H")
        self._ioctl(SIOCSIFFLAGS, _ifreq(self.name, struct.pack("H", flags | IFF_UP)))
