"""Bloom filters of the keys reachable through each tree link (docs/spec-v05.md §5.6).

Filters are Python ints of 8192 bits (bit i = filter bit i), as :class:`wire.Bloom` holds
them, so a union is one ``|`` and a membership test one ``&``.  They are exchanged only
with on-tree neighbours (our parent and our children): the filter sent to N is our own
transformed key plus the filters received from every other on-tree neighbour.  Lookups
are multicast to each on-tree neighbour whose filter may hold the destination.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from ygg.v05.network import bloom, wire

if TYPE_CHECKING:
    from ygg.v05.network.peers import Peer
    from ygg.v05.network.router import Router

RESEND_TICKS = 3600  # an unchanged filter is sent again about once an hour
EMPTY_BODY = wire.encode_body(wire.Bloom(0))


@lru_cache(maxsize=1 << 16)
def xform(key: bytes) -> bytes:
    """yggdrasil's bloom transform of a key (cached: the simulator asks for the same
    keys millions of times)."""
    return bloom.transform(key)


@lru_cache(maxsize=1 << 16)
def xmask(key: bytes) -> int:
    """The filter bits of ``key``'s transform."""
    return bloom.mask(xform(key))


class BloomState:
    __slots__ = ("on_tree", "recv", "send", "ticks", "z_dirty")

    def __init__(self) -> None:
        self.send = 0  # the last filter sent to this neighbour
        self.recv = 0  # the last filter it sent us
        self.ticks = 0  # ticks since it was last sent
        self.on_tree = False
        self.z_dirty = False  # the last filter sent kept stale 1 bits


class Blooms:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.states: dict[bytes, BloomState] = {}
        self.own = xmask(router.public_key)

    def add_key(self, key: bytes) -> None:
        self.states[key] = BloomState()

    def remove_key(self, key: bytes) -> None:
        self.states.pop(key, None)

    def handle_bloom(self, peer: Peer, bits: int) -> None:
        state = self.states.get(peer.key)
        if state is not None:
            state.recv = bits

    def send_bloom(self, peer: Peer) -> None:
        """Send a link the last filter sent to its key (a new link, or a sibling closed)."""
        state = self.states.get(peer.key)
        bits = state.send if state is not None else 0
        peer.write(wire.encode_body(wire.Bloom(bits)) if bits else EMPTY_BODY)

    def is_on_tree(self, key: bytes) -> bool:
        state = self.states.get(key)
        return state is not None and state.on_tree

    def tick(self) -> None:
        self._fix_on_tree()
        self._send_all()

    def _fix_on_tree(self) -> None:
        tree = self.router.tree
        peers = self.router.peers
        for key, state in self.states.items():
            was = state.on_tree
            state.on_tree = tree.on_tree(key)
            if was and not state.on_tree:
                state.send = 0
                for peer in peers.get(key, ()):
                    peer.write(EMPTY_BODY)

    def _needed(self) -> list[tuple[bytes, BloomState, int]]:
        """Each on-tree neighbour with the filter it needs: our own key and every other
        on-tree neighbour's filter (unions of prefixes and suffixes, not n² of them)."""
        on = [(key, state) for key, state in self.states.items() if state.on_tree]
        count = len(on)
        suffix = [0] * (count + 1)
        for i in range(count - 1, -1, -1):
            suffix[i] = suffix[i + 1] | on[i][1].recv
        prefix = self.own
        out = []
        for i, (key, state) in enumerate(on):
            out.append((key, state, prefix | suffix[i + 1]))
            prefix |= state.recv
        return out

    def settled(self) -> bool:
        """The next tick would change no filter (the simulator's convergence test)."""
        tree = self.router.tree
        if any(state.on_tree != tree.on_tree(key) for key, state in self.states.items()):
            return False
        for _, state, needed in self._needed():
            if state.z_dirty and needed != state.send:
                return False
            if not state.z_dirty and needed | state.send != state.send:
                return False
        return True

    def _send_all(self) -> None:
        peers = self.router.peers
        for key, state, needed in self._needed():
            if not state.z_dirty:
                bits = needed | state.send  # keep stale 1 bits for now…
                dirty = bits != needed
            else:
                bits = needed  # … and clear them the next time the filter changes
                dirty = False
            changed = bits != state.send
            if changed:
                state.send = bits
                state.z_dirty = dirty  # as in Go: only stored with a changed filter
            state.ticks += 1
            if changed or state.ticks >= RESEND_TICKS:
                body = wire.encode_body(wire.Bloom(bits))
                for peer in peers.get(key, ()):
                    peer.write(body)
                state.ticks = 0

    def multicast(self, body: bytes, from_key: bytes, dest: bytes, source: bytes) -> None:
        """Queue a lookup to each on-tree neighbour (but the one it came from) whose filter
        may hold ``dest``, on that neighbour's lowest-priority link."""
        mask = xmask(dest)
        peers = self.router.peers
        for key, state in self.states.items():
            if not state.on_tree or key == from_key or state.recv & mask != mask:
                continue
            best = None
            for peer in peers.get(key, ()):
                if best is None or peer.prio < best.prio:
                    best = peer
            if best is not None:
                best.push(body, source, dest)

    def occupancy(self) -> tuple[int, int]:
        """(bits set in the filters we last sent, filters) for the simulator's tables."""
        bits = [s.send.bit_count() for s in self.states.values() if s.on_tree]
        return sum(bits), len(bits)
