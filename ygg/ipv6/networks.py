"""The networks the IPv6 layer sends through, one per protocol version the node runs.

Each sends a typed message to a key (its core's sessions) and looks up the key behind an
address or subnet from its partial key; what the lookup finds comes back to the layer's
``learn`` (wired by the node).  Each counts the IPv6 packets it dropped, by reason.

* v0.4 (spec yggdrasil §5.3): a signed out-of-band lookup routed towards the partial key;
  the node owning that /64 answers with a signed response, which names its full key.
* v0.5 (docs/spec-v05.md §7.4): the router's path lookup for the partial key; the notify
  that answers carries the full key, which the router's ``path_notify`` reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from ygg import address as addr
from ygg.core.core import Core
from ygg.keys import SIGNATURE_SIZE, NodeKey
from ygg.v05.core import Core as Core05

LOOKUP = 0x01
RESPONSE = 0x02
_OOB_SIZE = 1 + SIGNATURE_SIZE
_MAX_SIGNATURES = 1024


class Network(Protocol):
    """What the IPv6 layer needs of a network."""

    #: The protocol version, "0.4" or "0.5" (for logs and counters).
    name: str
    #: The largest IPv6 packet it carries.
    mtu: int
    #: IPv6 packets to or from it that were dropped, by reason.
    drops: Counter[str]

    def send(self, dest: bytes, message: bytes) -> None:
        """A typed session message to ``dest``; ValueError if it cannot be sent."""

    def lookup(self, partial: bytes) -> None:
        """Look for the node behind a partial key; the answer comes back by ``learn``."""


class Network04:
    """The v0.4 network: its core, and the signed out-of-band key lookup."""

    name = "0.4"

    def __init__(self, core: Core, key: NodeKey, found: Callable[[bytes], None]) -> None:
        """``found(key)`` hears of each key a lookup response proved."""
        self.core = core
        self.node_key = key
        self.subnet = addr.subnet_for_key(key.public)
        self.mtu = core.ipv6_mtu
        self.drops: Counter[str] = Counter()
        self._found = found
        self._signatures: dict[bytes, bytes] = {}

    def send(self, dest: bytes, message: bytes) -> None:
        self.core.send(dest, message)

    def lookup(self, partial: bytes) -> None:
        signature = self._signatures.get(partial)
        if signature is None:
            if len(self._signatures) > _MAX_SIGNATURES:
                self._signatures.clear()
            signature = self._signatures[partial] = self.node_key.sign(partial)
        self.core.send_oob(partial, bytes((LOOKUP,)) + signature)

    def handle_oob(self, source: bytes, dest: bytes, data: bytes) -> None:
        """Out-of-band data routed to us: a lookup to answer, or a response to one."""
        if len(data) != _OOB_SIZE:
            return
        kind, signature = data[0], bytes(data[1:])
        verify = self.core.verify
        if kind == LOOKUP:
            # Only the /64 prefix is compared, as in Go, even for an address lookup.
            if addr.subnet_for_key(dest) == self.subnet and verify(source, dest, signature):
                reply = self.node_key.sign(source)
                self.core.send_oob(source, bytes((RESPONSE,)) + reply)
        elif kind == RESPONSE:
            if verify(source, dest, signature):
                self._found(bytes(source))


class Network05:
    """The v0.5 network: its core, whose router looks keys up by path lookups."""

    name = "0.5"

    def __init__(self, core: Core05) -> None:
        self.core = core
        self.mtu = core.ipv6_mtu
        self.drops: Counter[str] = Counter()

    def send(self, dest: bytes, message: bytes) -> None:
        self.core.send(dest, message)

    def lookup(self, partial: bytes) -> None:
        self.core.lookup(partial)
