"""Finding peers on the local network (spec yggdrasil §3, spec-v05 §7.5): beacons to
[ff02::114]:9001.

Once a second, for every interface that is up, multicast-capable, not point-to-point and
matched by a ``MulticastInterfaces`` entry (the first matching entry applies): with
Beacon, keep a TLS listener on the interface's first link-local address (it speaks both
versions) and send a beacon per version the node runs — v0.4's 50 bytes (key ‖ that
address ‖ its port), v0.5's 104 (version 0.5 ‖ key ‖ port ‖ the BLAKE2b of the key keyed
with the entry's Password); with Listen, receive other nodes' beacons there and dial them
with ``tls://[ip]:port/?key=…&priority=…`` through that interface, a v0.5 beacon's
speaking v0.5 at once and with ``&password=…``.  An entry with a Password is v0.5 only:
v0.4 has no way to check one.

Each interface has its own UDP socket, bound to port 9001 and to the device
(``SO_BINDTODEVICE``), joined to the group by interface index: Twisted's multicast API
cannot join IPv6 groups per interface and loses the scope of received addresses, while a
socket per interface tells us where a beacon came from.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ygg.config import MulticastInterface
from ygg.links import interfaces as host_interfaces
from ygg.links.interfaces import Interface
from ygg.links.manager import AlreadyConnected, Links, Listener
from ygg.links.sockets import SO_BINDTODEVICE
from ygg.links.versions import V04, V05, versions_for
from ygg.v05.handshake import password_hash

log = Logger(namespace="ygg.multicast")

GROUP = "ff02::114"
PORT = 9001
BEACON_SIZE = 50
INTERVAL = 1.0
_GROUP_BYTES = ipaddress.IPv6Address(GROUP).packed
BEACON05_HEADER = 40  # major ‖ minor ‖ key ‖ port ‖ hash length
_V05 = struct.pack(">HH", 0, 5)


def beacon(key: bytes, address: str, port: int) -> bytes:
    return key + ipaddress.IPv6Address(address.split("%")[0]).packed + struct.pack(">H", port)


def parse_beacon(data: bytes) -> tuple[bytes, str, int] | None:
    """(key, advertised IPv6 address, port), or None for what Go would ignore."""
    if len(data) < 32 or len(data) - 2 <= 32:
        return None
    raw = data[32:-2]
    if len(raw) != 16:
        return None
    (port,) = struct.unpack(">H", data[-2:])
    return data[:32], str(ipaddress.IPv6Address(raw)), port


def beacon05(key: bytes, port: int, digest: bytes) -> bytes:
    """A v0.5 beacon: ``digest`` is :func:`ygg.v05.handshake.password_hash` of ``key``."""
    return _V05 + key + struct.pack(">HH", port, len(digest)) + digest


def parse_beacon05(data: bytes) -> tuple[bytes, int, bytes] | None:
    """(key, TLS port, password hash) of a v0.5 beacon, or None for what is not one (a
    short hash too, as 0.5.14 checks)."""
    if len(data) < BEACON05_HEADER or data[:4] != _V05:
        return None
    port, size = struct.unpack_from(">HH", data, 36)
    if len(data) < BEACON05_HEADER + size:
        return None
    return data[4:36], port, data[BEACON05_HEADER : BEACON05_HEADER + size]


@dataclass
class _Selected:
    interface: Interface
    entry: MulticastInterface
    address: str | None


class _BeaconProtocol(DatagramProtocol):
    noisy = False

    def __init__(self, multicast: Multicast, name: str) -> None:
        self.multicast = multicast
        self.name = name

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.multicast.received(self.name, data, addr[0])


class _InterfaceSocket:
    """The UDP socket of one interface: sends our beacons, hears others' if joined."""

    def __init__(self, reactor: Any, multicast: Multicast, interface: Interface) -> None:
        self.name = interface.name
        self.index = interface.index
        self.joined = False
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.name.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface.index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
            sock.bind(("::", PORT))
            sock.setblocking(False)
            self.port = reactor.adoptDatagramPort(
                sock.fileno(), socket.AF_INET6, _BeaconProtocol(multicast, interface.name)
            )
        finally:
            sock.close()  # the reactor holds its own duplicate

    def join(self) -> None:
        if self.joined:
            return
        request = _GROUP_BYTES + struct.pack("@I", self.index)
        try:
            self.port.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
            self.joined = True
        except OSError as e:
            log.debug(
                "Could not join {group} on {name}: {error}", group=GROUP, name=self.name, error=e
            )

    def send(self, data: bytes) -> None:
        try:
            self.port.write(data, (GROUP, PORT))
        except OSError as e:
            log.debug("Beacon on {name} not sent: {error}", name=self.name, error=e)

    def close(self) -> None:
        self.port.stopListening()


class Multicast(Service):
    def __init__(
        self,
        links: Links,
        entries: tuple[MulticastInterface, ...],
        *,
        list_interfaces: Callable[[], list[Interface]] = host_interfaces.all_interfaces,
    ) -> None:
        self.links = links
        self.reactor = links.reactor
        self.key = links.public_key
        self.entries = [e for e in entries if e.beacon or e.listen]
        self.versions = links.versions
        self.patterns = [(re.compile(e.regex), e) for e in self.entries]
        self.list_interfaces = list_interfaces
        self.selected: dict[str, _Selected] = {}
        self.sockets: dict[str, _InterfaceSocket] = {}
        self.listeners: dict[str, Listener] = {}
        self._timer: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def interface_names(self) -> list[str]:
        return list(self.selected)

    # -- lifecycle ------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self.enabled:
            log.debug("Starting multicast module")
            self._tick()

    def stopService(self) -> Deferred[Any]:
        """Stops beaconing and listening; fires once the listeners' ports are closed."""
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        stopping = [self.listeners.pop(name).stopService() for name in list(self.listeners)]
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        self.selected.clear()
        return gatherResults([d for d in stopping if isinstance(d, Deferred)])

    # -- the tick -------------------------------------------------------------------------

    def _select(self) -> dict[str, _Selected]:
        selected: dict[str, _Selected] = {}
        try:
            found = self.list_interfaces()
        except OSError as e:
            log.debug("Cannot list interfaces: {error}", error=e)
            return self.selected
        for interface in found:
            if not interface.up or not interface.multicast or interface.point_to_point:
                continue
            for pattern, entry in self.patterns:
                if pattern.search(interface.name):
                    selected[interface.name] = _Selected(interface, entry, interface.link_local)
                    break
        return selected

    def _tick(self) -> None:
        self._timer = None
        if not self.running:
            return
        self.selected = self._select()
        for name in list(self.listeners):
            chosen = self.selected.get(name)
            listener = self.listeners[name]
            bound = listener.text[len("tls://[") :].split("]")[0]
            if chosen is None or chosen.address != bound:
                log.debug("No longer multicasting on {name}", name=name)
                self._stop_listener(name)
        for name in list(self.sockets):
            if name not in self.selected:
                self.sockets.pop(name).close()
        for name, chosen in self.selected.items():
            if chosen.address is None:
                continue
            try:
                sock = self.sockets.get(name)
                if sock is None:
                    sock = self.sockets[name] = _InterfaceSocket(
                        self.reactor, self, chosen.interface
                    )
            except OSError as e:
                log.debug("No multicast socket on {name}: {error}", name=name, error=e)
                continue
            if chosen.entry.listen:
                sock.join()
            if not chosen.entry.beacon:
                continue
            entry = chosen.entry
            versions = self._versions(entry.password)
            listener = self.listeners.get(name)
            if listener is None:
                query = {}
                if entry.password:
                    query["password"] = entry.password
                if V04 not in versions and entry.priority:
                    query["priority"] = str(entry.priority)  # sent in v0.5's handshake
                text = f"tls://[{chosen.address}]:{entry.port}"
                if query:
                    text += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
                listener = Listener(self.links, text, interface=name)
                self.listeners[name] = listener
                listener.startService()
                continue  # its first beacon goes out once it listens, on the next tick
            if listener.port is not None:
                port = listener.port.getHost().port
                if V05 in versions:  # first: its dial speaks v0.5 at once
                    digest = password_hash(self.key, entry.password.encode())
                    sock.send(beacon05(self.key, port, digest))
                if V04 in versions:
                    sock.send(beacon(self.key, chosen.address, port))
        self._timer = self.reactor.callLater(INTERVAL, self._tick)

    def _versions(self, password: str) -> frozenset[str]:
        return versions_for(self.versions, password.encode())

    def _stop_listener(self, name: str) -> None:
        listener = self.listeners.pop(name)
        listener.stopService()

    # -- beacons from others --------------------------------------------------------------

    def received(self, name: str, data: bytes, source: str) -> None:
        chosen = self.selected.get(name)
        if chosen is None or not chosen.entry.listen:
            return
        entry = chosen.entry
        versions = self._versions(entry.password)
        if data[:4] == _V05 and len(data) >= BEACON05_HEADER:
            if V05 in versions:
                self._received05(name, entry, data, source)
            return
        if V04 not in versions:
            return
        parsed = parse_beacon(data)
        if parsed is None:
            return
        key, address, port = parsed
        if key == self.key:
            return
        if ipaddress.ip_address(source.split("%")[0]) != ipaddress.ip_address(address):
            return
        uri = f"tls://[{address}]:{port}/?key={key.hex()}&priority={entry.priority}"
        # Not forced to v0.4: a ygg node beacons both versions, and its listener answers
        # a dialer that waits in v0.5 (a 0.4.7 listener speaks first, in v0.4).
        self.links.call(uri, name).addErrback(self._call_failed, uri)

    def _received05(self, name: str, entry: MulticastInterface, data: bytes, source: str) -> None:
        parsed = parse_beacon05(data)
        if parsed is None:
            return
        key, port, digest = parsed
        if key == self.key or digest != password_hash(key, entry.password.encode()):
            return
        address = source.split("%")[0]
        if not ipaddress.ip_address(address).is_link_local:
            return  # 0.5 dials the beacon's source; on a LAN that is link-local
        uri = f"tls://[{address}]:{port}/?key={key.hex()}&priority={entry.priority}"
        if entry.password:
            uri += "&password=" + urllib.parse.quote(entry.password, safe="")
        self.links.call(uri, name, V05).addErrback(self._call_failed, uri)

    def _call_failed(self, failure: Failure, uri: str) -> None:
        if not failure.check(AlreadyConnected):
            log.debug(
                "Call from multicast failed: {uri}: {error}",
                uri=uri,
                error=failure.getErrorMessage(),
            )
