"""IPv6 over the mesh (spec yggdrasil §5): address checks, key lookup, Packet Too Big.

Outbound, a packet from the TUN must come from our address or subnet and go to a
200::/7 address or a 300::/64 subnet.  The key behind that address is found by an
out-of-band lookup sent towards the partial key the address names; until the answer
comes, the latest packet for that destination waits (one per address and one per
subnet, as the Go node keeps).  Inbound, a packet must be for us and come from the
address or subnet of the key that sent it; receiving one also teaches us that key.

Both ways, the payload-length field is held to the packet's real length as Linux holds a
packet written into a TUN (``ygg.ipv6.length``): a packet shorter than it says is dropped,
bytes past its declared end are cut off, and jumbograms (none fits) are dropped.

The layer runs with or without a TUN: without one it still answers lookups, and its MTU
stays 1280, as yggdrasil's does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from ygg import address as addr
from ygg.core.core import TYPE_IPV6
from ygg.ipv6.icmp import packet_too_big
from ygg.ipv6.length import DROP_REASONS, IPV6_HEADER, kept_length
from ygg.keys import SIGNATURE_SIZE, NodeKey

KEY_TIMEOUT = 120.0  # a learnt key, and a buffered packet, are kept this long after last use
SWEEP_INTERVAL = 30.0
DEFAULT_MTU = 1280
LOOKUP = 0x01
RESPONSE = 0x02
_OOB_SIZE = 1 + SIGNATURE_SIZE


class KeyInfo:
    __slots__ = ("address", "key", "subnet", "used")

    def __init__(self, key: bytes, now: float) -> None:
        self.key = key
        self.address = addr.address_for_key(key)
        self.subnet = addr.subnet_for_key(key)
        self.used = now


class Network(Protocol):
    """What the layer sends through: the node's core."""

    def send(self, dest: bytes, message: bytes) -> None: ...
    def send_oob(self, dest: bytes, data: bytes) -> None: ...
    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool: ...


class Output(Protocol):
    """Where packets for this node go: the TUN.  ``mtu`` is 0 while it is not up."""

    mtu: int

    def write(self, packet: bytes) -> None: ...


class IPv6Layer:
    def __init__(self, key: NodeKey, clock: Any, network: Network, output: Output) -> None:
        self.network = network
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
        self._lookup_signatures: dict[bytes, bytes] = {}
        self.drops: Counter[str] = Counter()
        #: Packets sent on without the bytes past their declared length.
        self.trimmed = 0
        self._sweeper: Any = None

    @property
    def mtu(self) -> int:
        """The TUN's MTU, or 1280 without one (as yggdrasil's)."""
        return self.output.mtu or DEFAULT_MTU

    def start(self) -> None:
        self._sweeper = self.clock.callLater(SWEEP_INTERVAL, self._sweep)

    def stop(self) -> None:
        if self._sweeper is not None and self._sweeper.active():
            self._sweeper.cancel()
        self._sweeper = None

    # -- outbound: from the TUN to the mesh -----------------------------------------------

    def send(self, packet: bytes) -> None:
        if len(packet) < IPV6_HEADER or packet[0] & 0xF0 != 0x60:
            self.drops["not-ipv6" if packet and packet[0] & 0xF0 != 0x60 else "undersized"] += 1
            return
        packet = self._length_checked(packet)
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
            self._write(info.key, packet)
            return
        buffers[dest] = (bytes(packet), now)
        partial = addr.key_for_address(dest)[0] if len(dest) == 16 else addr.key_for_subnet(dest)[0]
        self._send_lookup(partial)

    def _write(self, key: bytes, packet: bytes) -> None:
        try:
            self.network.send(key, bytes((TYPE_IPV6,)) + packet)
        except ValueError:
            self.drops["oversized"] += 1

    # -- inbound: from the mesh to the TUN ------------------------------------------------

    def receive(self, source: bytes, message: bytes) -> None:
        """A session message of type IPv6 (its first byte is the type) from ``source``."""
        packet = message[1:]
        if len(packet) < IPV6_HEADER or packet[0] & 0xF0 != 0x60:
            self.drops["not-ipv6"] += 1
            return
        packet = self._length_checked(packet)
        if not packet:
            return
        mtu = self.output.mtu
        if len(packet) > (mtu or DEFAULT_MTU):
            self.drops["too-big"] += 1
            self.send(packet_too_big(packet, mtu or DEFAULT_MTU))
            return
        if packet[24:40] != self.address and packet[24:32] != self.subnet:
            self.drops["not-for-us"] += 1
            return
        info = self._learn(source)
        if packet[8:24] != info.address and packet[8:16] != info.subnet:
            self.drops["spoofed-source"] += 1
            return
        if not mtu:
            self.drops["no-tun"] += 1
            return
        self.output.write(packet)

    def _length_checked(self, packet: bytes) -> bytes:
        """``packet`` as the kernel keeps it (trimmed to its declared length), or b"" (counted
        in ``drops``) for one the kernel drops."""
        kept = kept_length(packet)
        if kept == len(packet):
            return packet
        if kept < 0:
            self.drops[DROP_REASONS[kept]] += 1
            return b""
        self.trimmed += 1
        return packet[:kept]

    def _learn(self, key: bytes) -> KeyInfo:
        """Remember which key is behind an address and subnet; send what waited for it."""
        now = self.clock.seconds()
        info = self.by_key.get(key)
        if info is not None:
            info.used = now
            return info
        info = KeyInfo(bytes(key), now)
        self.by_key[info.key] = info
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
            self._write(info.key, packet)
        return info

    # -- key lookups (out-of-band) --------------------------------------------------------

    def _send_lookup(self, partial: bytes) -> None:
        signature = self._lookup_signatures.get(partial)
        if signature is None:
            if len(self._lookup_signatures) > 1024:
                self._lookup_signatures.clear()
            signature = self._lookup_signatures[partial] = self.node_key.sign(partial)
        self.network.send_oob(partial, bytes((LOOKUP,)) + signature)

    def handle_oob(self, source: bytes, dest: bytes, data: bytes) -> None:
        if len(data) != _OOB_SIZE:
            return
        kind, signature = data[0], bytes(data[1:])
        verify = self.network.verify
        if kind == LOOKUP:
            # Only the /64 prefix is compared, as in Go, even for an address lookup.
            if addr.subnet_for_key(dest) == self.subnet and verify(source, dest, signature):
                reply = self.node_key.sign(source)
                self.network.send_oob(source, bytes((RESPONSE,)) + reply)
        elif kind == RESPONSE:
            if verify(source, dest, signature):
                self._learn(source)

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
