"""RAdv: Router Advertisements that give a LAN addresses in this node's 300::/64.

Popura's RAdv (spec popura §2), on Linux: on ``RAdv.Interface`` the node advertises its
subnet for SLAAC and a route to 200::/7 through itself, from the interface's link-local
address to all nodes (ff02::1) with hop limit 255 — at start, after 16, 32 and 48 s, then
every 200–600 s, and when a host asks with a Router Solicitation.  With ``SetGatewayIP``
the interface also gets ``<subnet>::1/64`` while the feature runs.

Where this differs from Popura, on purpose:

* at stop, one last advertisement withdraws everything it announced (router lifetime 0,
  route and DNS lifetimes 0, the prefix deprecated with valid lifetime 0), so hosts stop
  using a router that has gone instead of waiting up to 30 minutes;
* Router Solicitations are validated as RFC 4861 §6.1.1 asks (hop limit 255, code 0, sane
  options); malformed ones are dropped;
* answers to solicitations are still immediate and multicast, but at most one every
  3 s (RFC 4861's MIN_DELAY_BETWEEN_RAS): a burst of solicitations gets one answer, 3 s
  after the last advertisement, instead of one multicast per solicitation;
* no source link-layer address option on an interface without an Ethernet address
  (Popura could not send at all there);
* a link-local address still in duplicate address detection is waited for (up to 10 s);
* the gateway address is removed at stop only if the feature added it.

Start-up failures (another OS, no such interface, no link-local address, no permission
for a raw socket) are logged as one error line and leave the feature off; the node keeps
running, as Popura's did.  Only this module and ``ygg.tun`` touch the kernel: the socket
API for the raw ICMPv6 socket, pyroute2 for links and addresses.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from ygg import address as addr
from ygg.interfaces import DecodeError, INode, YggError
from ygg.popura.radv import RAdvConfig, ndp
from ygg.popura.radv.metrics import RAdvCollector

log = Logger(namespace="ygg.radv")

# The schedule (RFC 4861 §6.2.4 with Popura's constants), in seconds.
MIN_INTERVAL = 200
MAX_INTERVAL = 600
MAX_INITIAL_INTERVAL = 16
MAX_INITIAL_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3

# What the advertisement says (spec popura §2.3).
CUR_HOP_LIMIT = 64
ROUTER_LIFETIME = 1800  # only with DefaultRouter
ROUTE_LIFETIME = 1800
VALID_LIFETIME = 86400
PREFERRED_LIFETIME = 14400
SUBNET_LENGTH = 64
MESH_PREFIX = bytes([addr.ADDRESS_PREFIX]) + bytes(15)  # 200::/7

ALL_NODES = "ff02::1"
ALL_ROUTERS = "ff02::2"
FORWARDING = "/proc/sys/net/ipv6/conf/all/forwarding"
FORWARDING_HINT = "sudo sysctl -w net.ipv6.conf.all.forwarding=1"
LINK_LOCAL_WAIT = 10.0
LINK_LOCAL_POLL = 1.0

_ARPHRD_ETHER = 1
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40
_ICMP6_FILTER = 1  # linux/icmpv6.h; Python's socket module does not name it
_RECEIVE_SIZE = 4096
_READS_PER_CALL = 16


class NotStarted(YggError):
    """Why the feature could not start; logged as one line, the node carries on."""


def gateway_address(subnet: bytes) -> bytes:
    """``<subnet>::1``: the 8-byte prefix, zeros, and a last byte of 1."""
    return bytes(subnet[:8]) + bytes(7) + b"\x01"


def advertisement(
    subnet: bytes,
    *,
    default_router: bool,
    mac: bytes | None = None,
    dns_server: bytes | None = None,
    final: bool = False,
) -> ndp.RouterAdvertisement:
    """The Router Advertisement for ``subnet`` (8 bytes), as spec popura §2.3 lays it out.

    ``final`` gives the farewell version: every lifetime zero, which withdraws the default
    router, the route and the DNS server, and deprecates the prefix.
    """
    options: list[ndp.Option] = [
        ndp.PrefixInformation(
            prefix=bytes(subnet[:8]) + bytes(8),
            length=SUBNET_LENGTH,
            on_link=True,
            autonomous=True,
            valid_lifetime=0 if final else VALID_LIFETIME,
            preferred_lifetime=0 if final else PREFERRED_LIFETIME,
        )
    ]
    if mac is not None:
        options.append(ndp.SourceLinkLayerAddress(mac))
    if not default_router:
        options.append(
            ndp.RouteInformation(
                prefix=MESH_PREFIX,
                length=addr.PREFIX_LENGTH,
                preference=ndp.PREFERENCE_MEDIUM,
                lifetime=0 if final else ROUTE_LIFETIME,
            )
        )
    if dns_server is not None:
        options.append(
            ndp.RecursiveDNSServer(servers=(dns_server,), lifetime=0 if final else ndp.INFINITE)
        )
    return ndp.RouterAdvertisement(
        cur_hop_limit=CUR_HOP_LIMIT,
        preference=ndp.PREFERENCE_MEDIUM,
        router_lifetime=ROUTER_LIFETIME if default_router and not final else 0,
        options=tuple(options),
    )


def next_interval(rng: random.Random, waits_before: int) -> int:
    """Seconds to the next unsolicited advertisement: uniform in [200, 600] to the whole
    second, but at most 16 for the first three waits."""
    delay = round(rng.uniform(MIN_INTERVAL, MAX_INTERVAL))
    if waits_before < MAX_INITIAL_ADVERTISEMENTS:
        delay = min(delay, MAX_INITIAL_INTERVAL)
    return delay


class Advertiser:
    """When to advertise: given a clock and a ``send()`` callable, nothing else.

    ``start()`` sends at once and then on the schedule; ``solicited()`` sends at once,
    or — when the last advertisement is less than 3 s old — once, 3 s after it.
    """

    def __init__(self, clock: Any, send: Callable[[], None], rng: random.Random) -> None:
        self._clock = clock
        self._send = send
        self._rng = rng
        self._waits = 0
        self._last: float | None = None
        self._periodic: Any = None
        self._answer: Any = None

    @property
    def running(self) -> bool:
        return self._periodic is not None

    def start(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self._periodic = None
        self._advertise()
        delay = next_interval(self._rng, self._waits)
        self._waits += 1
        self._periodic = self._clock.callLater(delay, self._tick)

    def solicited(self) -> None:
        if self._periodic is None or self._answer is not None:
            return
        now = self._clock.seconds()
        if self._last is None or now - self._last >= MIN_DELAY_BETWEEN_RAS:
            self._advertise()
        else:
            self._answer = self._clock.callLater(
                self._last + MIN_DELAY_BETWEEN_RAS - now, self._answer_now
            )

    def _answer_now(self) -> None:
        self._answer = None
        self._advertise()

    def _advertise(self) -> None:
        self._last = self._clock.seconds()
        self._send()

    def stop(self) -> None:
        for call in (self._periodic, self._answer):
            if call is not None and call.active():
                call.cancel()
        self._periodic = self._answer = None


# --------------------------------------------------------------------------- the kernel


@dataclass(frozen=True)
class Link:
    """What RAdv needs to know about its interface."""

    index: int
    name: str
    mac: bytes | None  # the 6-byte Ethernet address; None on other kinds of link
    link_local: bytes | None  # the first usable fe80::/10 address (DAD done)
    tentative: bool = False  # a link-local address is still in DAD


class Netlink:
    """The netlink calls RAdv makes, through pyroute2 (imported on first use)."""

    def link(self, name: str) -> Link | None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            return self._link(name)
        except NetlinkError as e:
            raise OSError(e.code, os.strerror(e.code)) from None

    def _link(self, name: str) -> Link | None:
        from pyroute2 import IPRoute

        with IPRoute() as ip:
            found = ip.link_lookup(ifname=name)
            if not found:
                return None
            index = found[0]
            info = ip.get_links(index)[0]
            mac = None
            text = info.get_attr("IFLA_ADDRESS")
            if info.get("ifi_type") == _ARPHRD_ETHER and text:
                raw = bytes.fromhex(text.replace(":", ""))
                mac = raw if len(raw) == 6 else None
            link_local, tentative = None, False
            for row in ip.get_addr(index=index, family=socket.AF_INET6):
                packed = socket.inet_pton(socket.AF_INET6, row.get_attr("IFA_ADDRESS"))
                if packed[0] != 0xFE or packed[1] & 0xC0 != 0x80:
                    continue
                flags = row.get_attr("IFA_FLAGS") or row.get("flags") or 0
                if flags & _IFA_F_DADFAILED:
                    continue
                if flags & _IFA_F_TENTATIVE:
                    tentative = True
                elif link_local is None:
                    link_local = packed
        return Link(index, name, mac, link_local, tentative)

    def add_address(self, index: int, address: bytes, length: int) -> bool:
        """Add an address; False if the interface already had it."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ip:
            try:
                ip.addr("add", index=index, address=addr.format_address(address), prefixlen=length)
            except NetlinkError as e:
                if e.code == errno.EEXIST:
                    return False
                raise OSError(e.code, os.strerror(e.code)) from None
        return True

    def remove_address(self, index: int, address: bytes, length: int) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ip:
            try:
                ip.addr("del", index=index, address=addr.format_address(address), prefixlen=length)
            except NetlinkError as e:
                raise OSError(e.code, os.strerror(e.code)) from None


def _only_router_solicitations() -> bytes:
    """An ICMP6_FILTER passing type 133 alone (on Linux a set bit blocks a type)."""
    words = [0xFFFFFFFF] * 8
    words[ndp.ROUTER_SOLICITATION >> 5] &= ~(1 << (ndp.ROUTER_SOLICITATION & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


@implementer(IReadDescriptor)
class NDPSocket:
    """A raw ICMPv6 socket on one interface, registered with the reactor as a reader.

    Bound to the interface's link-local address (which also ties it to the interface),
    hop limits 255, joined to all-routers (ff02::2), reading only Router Solicitations
    with their hop limit.  ``send`` multicasts to all nodes (ff02::1).  The kernel
    computes and checks the ICMPv6 checksum.
    """

    def __init__(
        self, index: int, link_local: bytes, received: Callable[[bytes, bytes, int | None], None]
    ) -> None:
        self.index = index
        self._received = received
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, _only_router_solicitations())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ndp.ND_HOP_LIMIT)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ndp.ND_HOP_LIMIT)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.bind((addr.format_address(link_local), 0, 0, index))
            group = socket.inet_pton(socket.AF_INET6, ALL_ROUTERS) + struct.pack("=I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def logPrefix(self) -> str:
        return "RAdv"

    def connectionLost(self, reason: Any) -> None:
        pass

    def doRead(self) -> None:
        for _ in range(_READS_PER_CALL):
            try:
                data, ancillary, flags, source = self._sock.recvmsg(
                    _RECEIVE_SIZE, socket.CMSG_SPACE(4)
                )
            except BlockingIOError:
                return
            except OSError as e:
                log.debug("RAdv: reading the ICMPv6 socket: {reason}", reason=e.strerror)
                return
            if flags & socket.MSG_TRUNC:
                continue
            hop_limit = None
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                    hop_limit = int.from_bytes(value[:4], sys.byteorder)
            try:
                packed = socket.inet_pton(socket.AF_INET6, source[0].split("%", 1)[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                self._received(data, packed, hop_limit)
            except Exception:
                log.failure("RAdv: handling a Router Solicitation")

    def send(self, message: bytes) -> None:
        self._sock.sendto(message, (ALL_NODES, 0, 0, self.index))

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------------- the service


class RAdvService(Service):
    """Advertises the node's subnet on ``config.interface`` while it runs."""

    def __init__(
        self,
        node: INode,
        config: RAdvConfig,
        *,
        netlink: Any = None,
        open_socket: Callable[..., Any] = NDPSocket,
        platform: str = sys.platform,
        rng: random.Random | None = None,
        forwarding_path: str = FORWARDING,
    ) -> None:
        self.node = node
        self.config = config
        self.reactor = node.reactor
        self.netlink = netlink if netlink is not None else Netlink()
        self._open_socket = open_socket
        self._platform = platform
        self._rng = rng if rng is not None else random.Random()
        self._forwarding_path = forwarding_path
        self.subnet = bytes(node.subnet)
        self.gateway = gateway_address(self.subnet)
        self.link: Link | None = None
        self.socket: Any = None
        self.advertiser: Advertiser | None = None
        self.stats: Counter[str] = Counter()
        self._message = b""
        self._farewell = b""
        self._gateway_added = False
        self._forwarding_checked = False
        self._waiting_since: float | None = None
        self._wait_logged = False
        self._retry: Any = None
        self._send_failing = False

    @property
    def advertising(self) -> bool:
        return self.advertiser is not None

    # -- start ----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.node.register_metrics(RAdvCollector(self))
        self._waiting_since = self.reactor.seconds()
        self._attempt()

    def _attempt(self) -> None:
        self._retry = None
        if not self.running:
            return
        try:
            self._start()
        except NotStarted as e:
            log.error("RAdv: {reason}; router advertisements are off", reason=str(e))
        except Exception:
            # A bug here must not take the node down with it.
            log.failure("RAdv: could not start; router advertisements are off")

    def _start(self) -> None:
        name = self.config.interface
        if not self._platform.startswith("linux"):
            raise NotStarted(f"it works on Linux only, and this is {self._platform}")
        try:
            link = self.netlink.link(name)
        except OSError as e:
            raise NotStarted(f"cannot look up interface {name!r}: {e.strerror or e}") from None
        if link is None:
            raise NotStarted(f"there is no network interface named {name!r} (RAdv.Interface)")
        if not self._forwarding_checked:
            self._forwarding_checked = True
            self._check_forwarding()
        if link.link_local is None:
            assert self._waiting_since is not None
            if self.reactor.seconds() - self._waiting_since < LINK_LOCAL_WAIT:
                if not self._wait_logged:
                    self._wait_logged = True
                    log.info(
                        "RAdv: waiting up to {seconds:.0f} s for an IPv6 link-local address "
                        "on {name}",
                        seconds=LINK_LOCAL_WAIT,
                        name=name,
                    )
                self._retry = self.reactor.callLater(LINK_LOCAL_POLL, self._attempt)
                return
            raise NotStarted(
                f"interface {name} has no usable IPv6 link-local address "
                "(is it up, with IPv6 enabled?)"
            )
        self._open(link)

    def _open(self, link: Link) -> None:
        assert link.link_local is not None
        try:
            sock = self._open_socket(link.index, link.link_local, self._received)
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                raise NotStarted(
                    "opening a raw ICMPv6 socket needs root (or CAP_NET_RAW and CAP_NET_ADMIN)"
                ) from None
            raise NotStarted(f"cannot open a raw ICMPv6 socket on {link.name}: {e}") from None
        self.link, self.socket = link, sock
        if self.config.set_gateway_ip:
            self._add_gateway(link)
        common = {
            "default_router": self.config.default_router,
            "mac": link.mac,
            "dns_server": link.link_local if self.config.dns else None,
        }
        self._message = ndp.encode_router_advertisement(advertisement(self.subnet, **common))
        self._farewell = ndp.encode_router_advertisement(
            advertisement(self.subnet, final=True, **common)
        )
        self.reactor.addReader(sock)
        self.advertiser = Advertiser(self.reactor, self._advertise, self._rng)
        self.advertiser.start()
        log.info(
            "Started RAdv on {source}%{name}: advertising {subnet}{what}",
            source=addr.format_address(link.link_local),
            name=link.name,
            subnet=addr.format_subnet(self.subnet),
            what=(" as a default router" if self.config.default_router else " and 200::/7")
            + (", with itself as DNS server" if self.config.dns else ""),
        )
        self._check_dns(link)

    def _check_forwarding(self) -> None:
        try:
            with open(self._forwarding_path) as f:
                value = f.read().strip()
        except OSError as e:
            log.warn(
                "RAdv: cannot read {path} ({reason}) to check that IPv6 forwarding is on",
                path=self._forwarding_path,
                reason=e.strerror,
            )
            return
        if value != "1":
            log.warn(
                "RAdv: IPv6 forwarding is disabled, so traffic from the LAN will not reach the "
                "mesh. To enable it, run: {hint}",
                hint=FORWARDING_HINT,
            )

    def _add_gateway(self, link: Link) -> None:
        where = f"{addr.format_address(self.gateway)}/{SUBNET_LENGTH}"
        try:
            self._gateway_added = self.netlink.add_address(link.index, self.gateway, SUBNET_LENGTH)
        except OSError as e:
            log.error(
                "RAdv: cannot add {address} to {name}: {reason}",
                address=where,
                name=link.name,
                reason=e.strerror or str(e),
            )
            return
        if not self._gateway_added:
            log.info(
                "RAdv: {name} already has {address}; leaving it there at stop",
                name=link.name,
                address=where,
            )

    def _check_dns(self, link: Link) -> None:
        """RDNSS names UDP port 53 of our link-local address: say so when the meshname
        server running here cannot be reached there."""
        if not self.config.dns or "meshname" not in self.node.features():
            return
        meshname = self.node.feature_config("meshname")
        if meshname is None:
            return
        listen = meshname.listen
        host, _, port = listen.rpartition(":")
        host = host.strip("[]").split("%", 1)[0]
        reachable = port == "53" and (
            host in ("", "::") or host == addr.format_address(link.link_local or bytes(16))
        )
        if not reachable:
            log.warn(
                "RAdv: DNS tells LAN hosts to ask {source}%{name} on port 53, but Meshname "
                'listens on {listen}; set Meshname.Listen to "[::]:53" for them to reach it',
                source=addr.format_address(link.link_local or bytes(16)),
                name=link.name,
                listen=listen,
            )

    # -- running --------------------------------------------------------------------------

    def _received(self, data: bytes, source: bytes, hop_limit: int | None) -> None:
        if self.link is None or self.advertiser is None or source == self.link.link_local:
            return
        try:
            ndp.decode_router_solicitation(data, source, hop_limit)
        except DecodeError as e:
            self.stats["malformed"] += 1
            log.debug(
                "RAdv: ignored a malformed Router Solicitation from {source}: {reason}",
                source=addr.format_address(source),
                reason=str(e),
            )
            return
        self.stats["solicitations"] += 1
        log.debug("RAdv: Router Solicitation from {source}", source=addr.format_address(source))
        self.advertiser.solicited()

    def _advertise(self) -> None:
        self._send(self._message)

    def _send(self, message: bytes) -> bool:
        try:
            self.socket.send(message)
        except OSError as e:
            self.stats["send errors"] += 1
            if not self._send_failing:
                self._send_failing = True
                assert self.link is not None
                log.warn(
                    "RAdv: cannot send a Router Advertisement on {name}: {reason}",
                    name=self.link.name,
                    reason=e.strerror or str(e),
                )
            return False
        self.stats["advertisements"] += 1
        if self._send_failing:
            self._send_failing = False
            log.info("RAdv: sending Router Advertisements again")
        return True

    # -- stop -----------------------------------------------------------------------------

    def stopService(self) -> None:
        super().stopService()
        if self._retry is not None:
            if self._retry.active():
                self._retry.cancel()
            self._retry = None
        if self.advertiser is None or self.link is None:
            return
        self.advertiser.stop()
        farewell_sent = self._send(self._farewell)
        link, sock = self.link, self.socket
        self.link = self.socket = self.advertiser = None
        self.reactor.removeReader(sock)
        sock.close()
        if self._gateway_added:
            self._gateway_added = False
            try:
                self.netlink.remove_address(link.index, self.gateway, SUBNET_LENGTH)
            except OSError as e:
                log.warn(
                    "RAdv: cannot remove {address}/64 from {name}: {reason}",
                    address=addr.format_address(self.gateway),
                    name=link.name,
                    reason=e.strerror or str(e),
                )
        log.info(
            "Stopped RAdv on {name}{how}",
            name=link.name,
            how="; hosts were told to stop using this router" if farewell_sent else "",
        )
