"""The v0.5 core (ygg.v05.core) and its proto handler (ygg.v05.proto), sans-IO: cores whose
routers are linked in memory on one task.Clock, as the node composes them.

Dispatch by type, 0.5's IPv6 cap, answers that keep no route state
(``Router.send_untracked``), bad session packets on the wire, NodeInfo and remote debug in
0.5's formats, and the key lookup the IPv6 layer makes (a partial key in, the full key out
through ``path_notify``).
"""

from __future__ import annotations

import json
import random
from collections import deque
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg import address as addr
from ygg import gojson
from ygg.admin.registry import AdminError
from ygg.core.core import TYPE_IPV6, TYPE_PROTO
from ygg.core.proto import first_answer
from ygg.keys import NodeKey
from ygg.session.wire import TRAFFIC, decode_traffic_header, encode_traffic_header
from ygg.v05.core import IPV6_MTU, SESSION_MTU, Core
from ygg.v05.network import wire
from ygg.v05.proto import ProtoHandler

A = NodeKey.from_seed(b"\x0a" * 32)
B = NodeKey.from_seed(b"\x0b" * 32)
C = NodeKey.from_seed(b"\x0c" * 32)
START = 1_796_496_041.5
NODE_INFO = gojson.dumps({"name": "b"}, sort_keys=True).encode()


class Pipe:
    """One direction of an in-memory link; ``tap`` sees (and may keep) every body."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.target: Any = None

    def write_body(self, body: bytes) -> None:
        self.mesh.frames.append((self, bytes(body)))

    def close(self, reason: str) -> None:
        pass


class Stack:
    """A v0.5 core and a proto handler over it, with what they deliver recorded."""

    def __init__(self, key: NodeKey, clock: Clock, **kwargs: Any) -> None:
        rng = random.Random(key.public)
        self.key = key
        self.ipv6: list[tuple[bytes, bytes]] = []
        self.found: list[bytes] = []
        self.core = Core(
            key,
            clock,
            deliver_ipv6=lambda source, message: self.ipv6.append((source, message)),
            deliver_proto=self.on_proto,
            path_notify=self.found.append,
            nonce=lambda: rng.getrandbits(64),
            **kwargs,
        )
        router = self.core.router
        self.proto = ProtoHandler(
            self.core.send,
            clock,
            key.public,
            NODE_INFO if key is B else b"{}",
            lambda: router.get_self().routing_entries,
            lambda: [p.key for p in router.get_peers()],
            lambda: [t.key for t in router.get_tree()],
        )

    def on_proto(self, source: bytes, message: bytes) -> None:
        self.proto.handle(source, message)


class Mesh:
    """Stacks linked in memory: frames wait in one queue until ``run`` moves them."""

    def __init__(self, *keys: NodeKey, **kwargs: Any) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.frames: deque[tuple[Pipe, bytes]] = deque()
        self.stacks = {key.public: Stack(key, self.clock, **kwargs) for key in keys}
        #: Called with each (pipe, body) before it is delivered; returns False to drop it.
        self.tap: Any = None

    def __getitem__(self, key: NodeKey) -> Stack:
        return self.stacks[key.public]

    def link(self, a: NodeKey, b: NodeKey) -> tuple[Any, Any]:
        to_b, to_a = Pipe(self), Pipe(self)
        a_side = self[a].core.router.add_peer(b.public, to_b)
        b_side = self[b].core.router.add_peer(a.public, to_a)
        to_b.target, to_a.target = b_side, a_side
        return a_side, b_side

    def restart(self, key: NodeKey) -> Stack:
        """A fresh stack with the same key, linked again to the neighbours it had."""
        old = self.stacks.pop(key.public)
        neighbours = list(old.core.router.peers)
        old.core.close()
        self.stacks[key.public] = Stack(key, self.clock)
        for other in neighbours:
            router = self.stacks[other].core.router
            for peer in list(router.peers.get(key.public, ())):
                router.remove_peer(peer)
            self.link(self.stacks[other].key, key)
        return self.stacks[key.public]

    def flush(self) -> None:
        while self.frames:
            pipe, body = self.frames.popleft()
            if self.tap is None or self.tap(pipe, body) is not False:
                pipe.target.handle_body(body)

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds / 0.05)):
            self.clock.advance(0.05)
            self.flush()

    def close(self) -> None:
        for stack in self.stacks.values():
            stack.core.close()


def traffic_payloads(body: bytes) -> bytes | None:
    """The session packet inside a traffic body, or None for other packets."""
    if body[0] != wire.TRAFFIC:
        return None
    header = wire.traffic_header(body)
    return body[header.payload_offset :]


class MeshCase(SynchronousTestCase):
    keys: tuple[NodeKey, ...] = (A, B)

    def setUp(self) -> None:
        self.mesh = Mesh(*self.keys)
        self.addCleanup(self.mesh.close)
        for first, second in zip(self.keys, self.keys[1:], strict=False):
            self.mesh.link(first, second)
        self.mesh.run(10.0)  # the tree and the bloom filters settle

    def session_up(self, a: NodeKey, b: NodeKey) -> None:
        self.mesh[a].core.send(b.public, bytes((TYPE_PROTO, 0)))
        self.mesh.run(2.0)
        self.assertTrue(self.mesh[a].core.has_session(b.public))
        self.assertTrue(self.mesh[b].core.has_session(a.public))


class DispatchTests(MeshCase):
    def test_ipv6_and_proto_reach_their_handlers(self) -> None:
        a, b = self.mesh[A], self.mesh[B]
        a.core.send(B.public, b"\x01ipv6 packet")
        self.mesh.run(2.0)
        self.assertEqual(b.ipv6, [(A.public, b"\x01ipv6 packet")])
        b.core.send(A.public, bytes((TYPE_PROTO, 0)))  # a proto dummy: no answer
        for odd in (b"", b"\x00dummy", b"\x07unknown"):
            b.core.sessions.write_to(A.public, odd)
            self.mesh.run(1.0)  # (until B has a path to A, only the latest packet waits)
        self.assertEqual(a.ipv6, [])
        self.assertEqual(dict(a.core.drops), {"empty": 1, "dummy": 1, "unknown-type": 1})

    def test_ipv6_capped_as_0_5_caps_it(self) -> None:
        """0.5's Core.MTU() is 65535: a bigger IPv6 packet is refused on the way out and
        dropped on the way in; protocol messages may use the whole session MTU."""
        self.session_up(A, B)
        a, b = self.mesh[A], self.mesh[B]
        self.assertEqual((IPV6_MTU, SESSION_MTU), (65535, 130914))
        with self.assertRaises(ValueError):
            a.core.send(B.public, bytes((TYPE_IPV6,)) + bytes(IPV6_MTU + 1))
        a.core.send(B.public, bytes((TYPE_IPV6,)) + bytes(IPV6_MTU))
        a.core.send(B.public, bytes((TYPE_PROTO, 0)) + bytes(100_000))
        a.core.sessions.write_to(B.public, bytes((TYPE_IPV6,)) + bytes(IPV6_MTU + 1))
        self.mesh.run(1.0)
        self.assertEqual([len(m) for _, m in b.ipv6], [IPV6_MTU + 1])
        self.assertEqual(dict(b.core.drops), {"oversized-ipv6": 1})


class UntrackedTests(MeshCase):
    def test_ack_to_an_init_goes_back_along_its_coords(self) -> None:
        """B has no path to A when A's init arrives: its ack goes to the init's ``from``
        coords, with no lookup and no rumor; the session forms all the same."""
        rumors_at_ack: list[int] = []
        b_router = self.mesh[B].core.router

        def tap(pipe: Pipe, body: bytes) -> None:
            payload = traffic_payloads(body)
            if payload is not None and pipe.target.router is b_router:
                rumors_at_ack.append(len(b_router.pathfinder.rumors))

        self.mesh.tap = tap
        self.session_up(A, B)
        self.assertEqual(set(rumors_at_ack), {0})
        self.assertNotIn(A.public, b_router.pathfinder.paths)  # nothing was looked up
        self.assertEqual(b_router.untracked_dropped, 0)

    def test_known_path_used_its_cached_packet_left_alone(self) -> None:
        self.session_up(A, B)
        router = self.mesh[A].core.router
        path = router.pathfinder.paths[B.public]
        cached = path.traffic
        delivered: list[bytes] = []
        self.mesh[B].core.router.deliver = lambda source, payload: delivered.append(payload)
        router.send_untracked(B.public, b"\x00untracked")
        self.mesh.flush()
        self.assertEqual(delivered, [b"\x00untracked"])
        self.assertIs(path.traffic, cached)

    def test_no_path_no_reply_no_state(self) -> None:
        router = self.mesh[A].core.router
        router.send_untracked(C.public, b"\x03" + bytes(60))
        self.assertEqual(router.untracked_dropped, 1)
        self.assertEqual((router.pathfinder.rumors, router.pathfinder.paths), ({}, {}))
        with self.assertRaises(ValueError):
            router.send_untracked(C.public, bytes(wire.NETWORK_MTU + 1))
        with self.assertRaises(ValueError):
            router.send_untracked(b"short", b"x")

    def test_stranger_traffic_answered_statelessly(self) -> None:
        """Traffic for a session B lost (B restarted): B answers with an init along the
        packet's coords, keeps nothing, and the next message gets through."""
        self.session_up(A, B)
        b = self.mesh.restart(B)
        self.mesh.run(5.0)
        self.mesh[A].core.send(B.public, b"\x01lost")
        self.mesh.run(0.2)
        self.assertEqual(b.core.sessions.drops["no-session"], 1)
        self.assertEqual(b.core.router.pathfinder.rumors, {})
        # A takes the answer's keys, the two sides settle on fresh ones (as ironwood's
        # sessions do after a restart: a message or two may be lost on the way).
        for _ in range(5):
            self.mesh[A].core.send(B.public, b"\x01again")
            self.mesh.run(1.0)
        self.assertIn((A.public, b"\x01again"), b.ipv6)


class BadPacketTests(MeshCase):
    """Truncated, replayed and wrongly keyed session traffic from a link: each dropped and
    counted by reason, and the session carries on."""

    def test_bad_session_packets_dropped_session_goes_on(self) -> None:
        self.session_up(A, B)
        b = self.mesh[B]
        kept: list[tuple[Pipe, bytes]] = []

        def keep(pipe: Pipe, body: bytes) -> None:
            payload = traffic_payloads(body)
            if payload is not None and payload[0] == TRAFFIC:
                kept.append((pipe, body))

        self.mesh.tap = keep
        first = b"\x01" + b"first" * 10
        self.mesh[A].core.send(B.public, first)
        self.mesh.run(1.0)
        self.mesh.tap = None
        ((pipe, body),) = kept
        since = b.core.sessions.sessions()[0].uptime
        offset = wire.traffic_header(body).payload_offset
        packet = body[offset:]
        lks, rks, nonce, box = decode_traffic_header(packet)
        fresh = encode_traffic_header(lks, rks, nonce + 100)  # past the replay check
        for bad in (
            packet[:20],  # truncated below the smallest traffic packet
            fresh + packet[box:-16],  # truncated inside the box
            packet,  # replayed
            fresh + packet[box:-1] + bytes((packet[-1] ^ 1,)),  # not sealed with its key
            encode_traffic_header(lks + 5, rks, nonce + 100) + packet[box:],  # unknown keys
        ):
            pipe.target.handle_body(body[:offset] + bad)
        self.mesh.flush()
        drops = b.core.sessions.drops
        self.assertEqual(drops["short"], 1)
        self.assertEqual(drops["replay"], 1)
        self.assertEqual(drops["open-failed"], 2)
        self.assertEqual(drops["unknown-keys"], 1)
        self.assertEqual(b.ipv6, [(A.public, first)])
        self.mesh.run(1.0)
        self.mesh[A].core.send(B.public, b"\x01second")
        self.mesh.run(1.0)
        self.assertEqual(b.ipv6[1:], [(A.public, b"\x01second")])
        (info,) = b.core.sessions.sessions()
        self.assertGreater(info.uptime, since)  # the same session, older now
        self.assertEqual(dict(b.core.drops), {})

    def test_group_password(self) -> None:
        """0.5.14's GroupPassword: same password, a session; another, none (counted)."""
        for a_password, b_password, forms in (
            ("sesame", "sesame", True),
            ("sesame", "other", False),
            ("sesame", None, False),
        ):
            mesh = Mesh()
            mesh.stacks[A.public] = Stack(A, mesh.clock, group_password=a_password)
            mesh.stacks[B.public] = Stack(B, mesh.clock, group_password=b_password)
            self.addCleanup(mesh.close)
            mesh.link(A, B)
            mesh.run(10.0)
            mesh[A].core.send(B.public, b"\x01hello")
            mesh.run(3.0)
            self.assertEqual(mesh[B].ipv6 == [(A.public, b"\x01hello")], forms)
            if not forms:
                self.assertGreater(mesh[B].core.sessions.drops["bad-signature"], 0)


class LookupTests(MeshCase):
    keys = (A, B, C)

    def test_partial_key_of_an_address_finds_the_full_key(self) -> None:
        """The IPv6 layer's lookup (spec-v05 §7.4): a partial key from C's address or
        subnet, A's path_notify hears C's full key."""
        a = self.mesh[A]
        for partial in (
            addr.key_for_address(addr.address_for_key(C.public))[0],
            addr.key_for_subnet(addr.subnet_for_key(C.public))[0],
        ):
            a.found.clear()
            a.core.router.pathfinder.paths.clear()
            a.core.router.pathfinder.rumors.clear()
            a.core.lookup(partial)
            self.mesh.run(1.0)
            self.assertEqual(a.found, [C.public])


class ProtoTests(MeshCase):
    keys = (A, B, C)

    def answer(self, d: Any) -> Any:
        self.mesh.run(2.0)
        return self.successResultOf(d)

    def test_nodeinfo_and_debug_in_0_5_formats(self) -> None:
        a, b = self.mesh[A], self.mesh[B]
        self.assertEqual(self.answer(a.proto.get_node_info(B.public)), {"name": "b"})
        entries = b.core.router.get_self().routing_entries
        self.assertEqual(
            self.answer(a.proto.remote_get_self(B.public)),
            {"key": B.public.hex(), "routing_entries": str(entries)},
        )
        peers = self.answer(a.proto.remote_get_peers(B.public))
        self.assertEqual(sorted(peers["keys"]), sorted([A.public.hex(), C.public.hex()]))
        tree = self.answer(a.proto.remote_get_tree(B.public))
        self.assertEqual(tree, {"keys": [t.key.hex() for t in b.core.router.get_tree()]})
        # Bytes level: getSelf is Go's json.Marshal of a string map.
        self.assertEqual(
            b.proto.self_reply(),
            b'{"key":"'
            + B.public.hex().encode()
            + b'","routing_entries":"'
            + str(entries).encode()
            + b'"}',
        )
        self.assertEqual(json.loads(b.proto.self_reply())["routing_entries"], str(entries))

    def test_empty_key_list_and_timeouts(self) -> None:
        a = self.mesh[A]
        a.proto._peer_keys = list  # type: ignore[method-assign]
        self.assertEqual(self.answer(self.mesh[B].proto.remote_get_peers(A.public)), {})
        lost = a.proto.get_node_info(NodeKey.generate().public)
        self.mesh.run(6.5)
        self.assertEqual(
            self.failureResultOf(lost, AdminError).value.args[0], ("Timed out waiting for response")
        )

    def test_key_lists_cut_to_the_mtu(self) -> None:
        b = self.mesh[B]
        many = [bytes([i % 256, i // 256]) * 16 for i in range(3000)]
        b.proto._dht_keys = lambda: many  # type: ignore[method-assign]
        tree = self.answer(self.mesh[A].proto.remote_get_tree(B.public))
        self.assertEqual(len(tree["keys"]), (IPV6_MTU - 2) // 32)  # 2047 keys: len + 2 ≤ MTU

    def test_first_answer_wins(self) -> None:
        """How the node asks both networks about a key it cannot place."""
        a = self.mesh[A]
        lost = a.proto.get_node_info(NodeKey.generate().public)
        won = a.proto.get_node_info(B.public)
        self.assertEqual(self.answer(first_answer([lost, won])), {"name": "b"})
        self.mesh.run(7.0)  # the loser times out quietly
        both_lost = first_answer(
            [a.proto.get_node_info(b"\x01" * 32), a.proto.get_node_info(b"\x02" * 32)]
        )
        self.mesh.run(7.0)
        self.failureResultOf(both_lost, AdminError)
