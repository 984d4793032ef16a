"""IPv6 over the mesh (spec yggdrasil §5, docs/spec-v05.md §7.4): address checks, key
lookup, Packet Too Big — over one network or two (v0.4 and v0.5) at once.

Outbound, a packet from the TUN must come from our address or subnet and go to a
200::/7 address or a 300::/64 subnet.  The key behind that address is looked up from the
partial key the address names, on every network the node runs (``ygg.ipv6.networks``);
until an answer comes, the latest packet for that destination waits (one per address and
one per subnet, as the Go node keeps).  Go asks again only when the next packet comes;
ygg also asks again 1, 3 and 7 s after a packet started waiting, since a lookup sent
before the network has settled (a link that just came up) is lost, and a lone packet (a
DNS query) would otherwise wait its two minutes for nothing.  Inbound, a packet must be
for us and come from the address or subnet of the key that sent it; receiving one also
teaches us that key.

With two networks, each key is remembered with one network, and its packets go over that
one only (never over both):

* the first network whose lookup yields the key wins (a later answer from the other
  network is ignored while the key is remembered);
* traffic that comes in teaches the key with the network it came in on — a new key at
  once; a key remembered with the other network moves only when nothing came in from it
  on that network for :data:`SWITCH_QUIET` seconds (so that two nodes whose packets cross
  on different networks do not swap networks with every packet);
* a key is forgotten :data:`KEY_TIMEOUT` after it was last used or heard from, and is then
  looked up again on every network.

A packet larger than its network carries (v0.4: 53049 bytes, v0.5: 65535) is answered
with an ICMPv6 Packet Too Big written into the TUN, so the kernel learns that path's MTU.

Both ways, the payload-length field is held to the packet's real length as Linux holds a
packet written into a TUN (``ygg.ipv6.length``): a packet shorter than it says is dropped,
bytes past its declared end are cut off, and jumbograms (none fits) are dropped.

The layer runs with or without a TUN: without one it still answers lookups, and its MTU
stays 1280, as yggdrasil's does.  Drops before a network is chosen are counted in
``drops``; drops of packets to or from a network in that network's ``drops``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from ygg import address as addr
from ygg.core.core import TYPE_IPV6
from ygg.ipv6.icmp import packet_too_big
from ygg.ipv6.length import DROP_REASONS, IPV6_HEADER, kept_length
from ygg.ipv6.networks import Network
from ygg.keys import NodeKey
from ygg.timers import cancel

KEY_TIMEOUT = 120.0  # a learnt key, and a buffered packet, are kept this long after last use
SWEEP_INTERVAL = 30.0
#: A key moves to another network only after this long without traffic on its own.
SWITCH_QUIET = 5.0
#: A waiting packet's destination is looked up again after these delays (each from the last).
LOOKUP_RETRIES = (1.0, 2.0, 4.0)
#: At most this many destinations are retried at once (a scan of 200::/7 gets no more).
MAX_RETRYING = 1024
DEFAULT_MTU = 1280
_NEVER = float("-inf")


class KeyInfo:
    __slots__ = ("address", "heard", "key", "network", "subnet", "used")

    def __init__(self, key: bytes, network: Network, now: float) -> None:
        self.key = key
        self.address = addr.address_for_key(key)
        self.subnet = addr.subnet_for_key(key)
        self.network = network
        self.used = now  # last sent to or heard from: the key is kept KEY_TIMEOUT after
        self.heard = _NEVER  # last heard from on ``network``


class Output(Protocol):
    """Where packets for this node go: the TUN.  ``mtu`` is 0 while it is not up."""

    mtu: int

    def write(self, packet: bytes) -> None: ...


class IPv6Layer:
    def __init__(
        self, key: NodeKey, clock: Any, networks: Sequence[Network], output: Output
    ) -> None:
        if not networks:
            raise ValueError("the IPv6 layer needs a network")
        self.networks = tuple(networks)
        self.output = output
        self.clock = clock
        self.node_key = key
        self.address = addr.address_for_key(key.public)
        self.subnet = addr.subnet_for_key(key.public)
        self.by_key: dict[bytes, KeyInfo] = {}
        self.by_address: dict[bytes, KeyInfo] = {}
        self.by_subnet: dict[bytes, KeyInfo] = {}
        self.address_buffer: dict[bytes, tuple[bytes, float]] = {}
        self.subnet_buffer: dict[bytes, tuple[bytes, float]] = {}
        #: Packets from the TUN dropped before a network was chosen, by reason.
        self.drops: Counter[str] = Counter()
        #: Packets sent on without the bytes past their declared length.
        self.trimmed = 0
        self._sweeper: Any = None
        #: Per destination waiting for its key, the timer of its next lookup.
        self._retries: dict[bytes, Any] = {}

    @property
    def mtu(self) -> int:
        """The TUN's MTU, or 1280 without one (as yggdrasil's)."""
        return self.output.mtu or DEFAULT_MTU

    def network_of(self, key: bytes) -> Network | None:
        """The network packets to ``key`` go over, if the key is remembered."""
        info = self.by_key.get(key)
        return info.network if info is not None else None

    def start(self) -> None:
        self._sweeper = self.clock.callLater(SWEEP_INTERVAL, self._sweep)

    def stop(self) -> None:
        for timer in (self._sweeper, *self._retries.values()):
            cancel(timer)
        self._sweeper = None
        self._retries.clear()

    # -- outbound: from the TUN to the mesh -----------------------------------------------

    def send(self, packet: bytes) -> None:
        if len(packet) < IPV6_HEADER or packet[0] & 0xF0 != 0x60:
            self.drops["not-ipv6" if packet and packet[0] & 0xF0 != 0x60 else "undersized"] += 1
            return
        packet = self._length_checked(packet, self.drops)
        if not packet:
            return
        source = packet[8:24]
        if source != self.address and packet[8:16] != self.subnet:
            self.drops["source"] += 1  # normal for the kernel's fe80:: traffic
            return
        prefix = packet[24]
        if prefix == addr.ADDRESS_PREFIX:
            dest = packet[24:40]
            info = self.by_address.get(dest)
            buffers = self.address_buffer
        elif prefix == addr.SUBNET_PREFIX:
            dest = packet[24:32]
            info = self.by_subnet.get(dest)
            buffers = self.subnet_buffer
        else:
            self.drops["destination"] += 1
            return
        now = self.clock.seconds()
        if info is not None:
            info.used = now
            self._write(info, packet)
            return
        buffers[dest] = (bytes(packet), now)
        self._look_up(dest)
        if dest not in self._retries and len(self._retries) < MAX_RETRYING:
            self._retries[dest] = self.clock.callLater(LOOKUP_RETRIES[0], self._retry, dest, 1)

    def _look_up(self, dest: bytes) -> None:
        """Ask every network for the key behind an address (16 bytes) or a subnet (8)."""
        partial = addr.key_for_address(dest)[0] if len(dest) == 16 else addr.key_for_subnet(dest)[0]
        for network in self.networks:
            network.lookup(partial)

    def _retry(self, dest: bytes, attempt: int) -> None:
        del self._retries[dest]
        if dest not in (self.address_buffer if len(dest) == 16 else self.subnet_buffer):
            return  # sent (its key was found) or expired
        self._look_up(dest)
        if attempt < len(LOOKUP_RETRIES):
            self._retries[dest] = self.clock.callLater(
                LOOKUP_RETRIES[attempt], self._retry, dest, attempt + 1
            )

    def _write(self, info: KeyInfo, packet: bytes) -> None:
        network = info.network
        if len(packet) > network.mtu:
            # Larger than this network carries (the TUN's MTU is the largest network's).
            network.drops["too-big-for-network"] += 1
            if self.output.mtu:
                self.output.write(packet_too_big(packet, network.mtu))
            return
        try:
            network.send(info.key, bytes((TYPE_IPV6,)) + packet)
        except ValueError:
            network.drops["unsendable"] += 1

    # -- inbound: from the mesh to the TUN ------------------------------------------------

    def receive(self, network: Network, source: bytes, message: bytes) -> None:
        """A session message of type IPv6 (its first byte is the type) from ``source``,
        which came over ``network``."""
        drops = network.drops
        packet = message[1:]
        if len(packet) < IPV6_HEADER or packet[0] & 0xF0 != 0x60:
            drops["not-ipv6"] += 1
            return
        packet = self._length_checked(packet, drops)
        if not packet:
            return
        mtu = self.output.mtu
        if len(packet) > (mtu or DEFAULT_MTU):
            drops["too-big"] += 1
            self.send(packet_too_big(packet, mtu or DEFAULT_MTU))
            return
        if packet[24:40] != self.address and packet[24:32] != self.subnet:
            drops["not-for-us"] += 1
            return
        info = self._heard(source, network)
        if packet[8:24] != info.address and packet[8:16] != info.subnet:
            drops["spoofed-source"] += 1
            return
        if not mtu:
            drops["no-tun"] += 1
            return
        self.output.write(packet)

    def _length_checked(self, packet: bytes, drops: Counter[str]) -> bytes:
        """``packet`` as the kernel keeps it (trimmed to its declared length), or b"" (counted
        in ``drops``) for one the kernel drops."""
        kept = kept_length(packet)
        if kept == len(packet):
            return packet
        if kept < 0:
            drops[DROP_REASONS[kept]] += 1
            return b""
        self.trimmed += 1
        return packet[:kept]

    # -- learning keys --------------------------------------------------------------------

    def learn(self, key: bytes, network: Network) -> None:
        """A lookup on ``network`` found ``key``.  A key already remembered stays with its
        network (refreshed when it is this one)."""
        info = self.by_key.get(key)
        if info is None:
            self._remember(bytes(key), network, self.clock.seconds())
        elif info.network is network:
            info.used = self.clock.seconds()

    def _heard(self, key: bytes, network: Network) -> KeyInfo:
        """Traffic from ``key`` came in over ``network``: remember or refresh it there."""
        now = self.clock.seconds()
        info = self.by_key.get(key)
        if info is None:
            info = self._remember(bytes(key), network, now)
        elif info.network is not network:
            if now - info.heard < SWITCH_QUIET:
                info.used = now
                return info
            info.network = network
        info.heard = info.used = now
        return info

    def _remember(self, key: bytes, network: Network, now: float) -> KeyInfo:
        """A new key: remember which address, subnet and network it has; send what waited."""
        info = KeyInfo(key, network, now)
        self.by_key[key] = info
        self.by_address[info.address] = info
        self.by_subnet[info.subnet] = info
        waiting = [
            buffer.pop(dest)[0]
            for buffer, dest in (
                (self.address_buffer, info.address),
                (self.subnet_buffer, info.subnet),
            )
            if dest in buffer
        ]
        for packet in waiting:
            self._write(info, packet)
        return info

    # -- housekeeping ---------------------------------------------------------------------

    def _sweep(self) -> None:
        cutoff = self.clock.seconds() - KEY_TIMEOUT
        for key, info in list(self.by_key.items()):
            if info.used < cutoff:
                del self.by_key[key]
                if self.by_address.get(info.address) is info:
                    del self.by_address[info.address]
                if self.by_subnet.get(info.subnet) is info:
                    del self.by_subnet[info.subnet]
        for buffer in (self.address_buffer, self.subnet_buffer):
            for dest, (_, stored) in list(buffer.items()):
                if stored < cutoff:
                    del buffer[dest]
        self._sweeper = self.clock.callLater(SWEEP_INTERVAL, self._sweep)
