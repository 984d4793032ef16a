"""The host's network interfaces, as the link layer needs them (names, flags, addresses).

Read through pyroute2's netlink socket, so it sees the network namespace it runs in.
"""

from __future__ import annotations

from dataclasses import dataclass

IFF_UP = 0x1
IFF_POINTOPOINT = 0x10
IFF_LOOPBACK = 0x8
IFF_MULTICAST = 0x1000


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    flags: int
    addresses: tuple[str, ...]  # in the kernel's order; IPv6 link-local ones without zone

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def multicast(self) -> bool:
        return bool(self.flags & IFF_MULTICAST)

    @property
    def point_to_point(self) -> bool:
        return bool(self.flags & IFF_POINTOPOINT)


def all_interfaces() -> list[Interface]:
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        links = ip.get_links()
        addresses: dict[int, list[str]] = {}
        for entry in ip.get_addr():
            address = entry.get_attr("IFA_ADDRESS")
            if address:
                addresses.setdefault(entry["index"], []).append(address)
    return [
        Interface(
            link.get_attr("IFLA_IFNAME"),
            link["index"],
            link["flags"],
            tuple(addresses.get(link["index"], ())),
        )
        for link in links
    ]


def addresses(name: str) -> tuple[str, ...]:
    for interface in all_interfaces():
        if interface.name == name:
            return interface.addresses
    return ()


def by_name(name: str) -> Interface | None:
    return next((i for i in all_interfaces() if i.name == name), None)
