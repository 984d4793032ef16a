"""The routing core on small simulated networks, on the clock, and against captured frames."""

from __future__ import annotations

import itertools

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import load_json
from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.network import wire
from ygg.network.peers import KEEPALIVE, TIMEOUT, LinkError, PacketQueue
from ygg.network.router import MTU, Router
from ygg.network.tree import HOLD_DOWN
from ygg.sim import graphs
from ygg.sim.network import START_TIME, SimNetwork

CONVERGE = 120.0  # simulated seconds a small network may take


def converged_net(kind: str, n: int, seed: int = 1, **kwargs) -> SimNetwork:
    edges = kind if isinstance(kind, list) else graphs.generate(kind, n, seed)
    net = SimNetwork.from_edges(n, edges, seed=seed, **kwargs)
    net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
    return net


class RecordingLink:
    """A LinkIO that keeps what was written and whether it was closed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.closed: str | None = None

    def write_body(self, body: bytes) -> None:
        self.bodies.append(bytes(body))

    def close(self, reason: str) -> None:
        self.closed = reason


def check_tree(test: SynchronousTestCase, net: SimNetwork) -> None:
    """Everyone agrees on the lowest key as root, and coords chain down the tree."""
    root = net.expected_root()
    for node in net.live():
        router = node.router
        test.assertEqual(router.tree.self.root, root)
        if node.public == root:
            test.assertEqual(router.get_self().coords, ())
            continue
        parent = router.tree.parent
        test.assertIsNotNone(parent)
        parent_router = net.by_key[parent.key].router
        port_back = next(p.port for p in parent_router.peers.values() if p.key == node.public)
        test.assertEqual(router.get_self().coords, (*parent_router.get_self().coords, port_back))


def check_dht(test: SynchronousTestCase, net: SimNetwork) -> None:
    """Every node's predecessor path leads to the next lower key, its successor to the next
    higher one (the ring of the DHT)."""
    live = sorted(net.live(), key=lambda n: n.public)
    for i, node in enumerate(live):
        dht = node.router.dht
        if i > 0:
            test.assertEqual(dht.dest_keys[dht.prev], live[i - 1].public)
        if i + 1 < len(live):
            test.assertIsNotNone(dht.next, f"node {node.index} has no successor path")
            test.assertEqual(dht.next.key, live[i + 1].public)


def exchange(net: SimNetwork, a: int, b: int) -> int:
    """Traffic both ways until source routes exist, then one more probe a -> b."""
    for x, y in ((a, b), (b, a), (a, b), (b, a)):
        net.send_probe(x, y)
        net.run(0.3)
    net.run(1.5)
    probe = net.send_probe(a, b)
    net.run(0.5)
    return probe


class SmallNetworkTests(SynchronousTestCase):
    SHAPES = (("line", 6), ("ring", 7), ("star", 6), ("grid", 9), ("er", 16), ("ba", 20))

    def test_trees_and_rings(self) -> None:
        for kind, n in self.SHAPES:
            with self.subTest(kind=kind):
                net = converged_net(kind, n)
                check_tree(self, net)
                check_dht(self, net)
                self.assertEqual(net.closed_links, [])

    def test_every_pair_delivers(self) -> None:
        for kind, n in (("line", 5), ("ring", 6), ("grid", 9)):
            net = converged_net(kind, n)
            for a, b in itertools.permutations(range(n), 2):
                probe = net.send_probe(a, b)
                net.run(0.2)
                self.assertTrue(net.delivered(b, probe), f"{kind}: {a} -> {b}")

    def test_source_routes_found_and_used(self) -> None:
        net = converged_net("grid", 9)
        adjacency = graphs.neighbours(9, graphs.generate("grid", 9, 1))
        for a, b in ((0, 8), (2, 6), (1, 7)):
            probe = exchange(net, a, b)
            self.assertTrue(net.delivered(b, probe))
            route = net.nodes[a].router.pathfinder.paths[net.nodes[b].public].path
            self.assertIsNotNone(route)
            self.assertEqual(route[-1], 0)
            self.assertEqual(net.hops[probe], len(route) - 1)  # it went by the route
            self.assertLessEqual(len(route) - 1, 2 * graphs.hops_from(a, adjacency)[b])
            paths = {p.key: p.path for p in net.nodes[a].router.get_paths()}
            self.assertEqual(paths[net.nodes[b].public], tuple(route))

    def test_runs_on_task_clock(self) -> None:
        """The simulator drives the same code on twisted's own Clock."""
        clock = Clock()
        net = SimNetwork(seed=3, clock=clock)
        self.assertGreaterEqual(clock.seconds(), START_TIME)
        for _ in range(4):
            net.add_node()
        for a, b in graphs.line(4):
            net.link(a, b)
        net.run_until(net.converged, timeout=60, step=0.05, settle=1)
        check_tree(self, net)
        probe = net.send_probe(0, 3)
        net.run(0.5)
        self.assertTrue(net.delivered(3, probe))


class ReconvergenceTests(SynchronousTestCase):
    def test_cut_link_reconverges(self) -> None:
        net = converged_net("ring", 8)
        root = min(range(8), key=lambda i: net.nodes[i].public)
        a, b = root, (root + 1) % 8
        net.cut(a, b)
        took = net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        # The spec's timers bound it: a 7 s hold-down and bootstraps every second.
        self.assertLess(took, 3 * HOLD_DOWN)
        check_tree(self, net)
        check_dht(self, net)
        probe = exchange(net, a, b)
        self.assertTrue(net.delivered(b, probe))
        self.assertEqual(net.hops[probe], 7)  # the long way round the ring now

    def test_root_leaves_and_rejoins(self) -> None:
        net = converged_net("grid", 9)
        root = min(range(9), key=lambda i: net.nodes[i].public)
        neighbours = net.stop_node(root)
        net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        check_tree(self, net)
        self.assertNotEqual(net.expected_root(), net.nodes[root].public)
        others = [i for i in range(9) if i != root]
        probe = net.send_probe(others[0], others[-1])
        net.run(1)
        self.assertTrue(net.delivered(others[-1], probe))
        net.start_node(root, neighbours)
        net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        check_tree(self, net)
        check_dht(self, net)
        for other in (others[0], others[-1]):
            probe = net.send_probe(other, root)
            net.run(1)
            self.assertTrue(net.delivered(root, probe), f"{other} -> rejoined root")

    def test_source_route_broken_falls_back_to_dht(self) -> None:
        net = converged_net("grid", 9)
        probe = exchange(net, 0, 8)
        route = net.nodes[0].router.pathfinder.paths[net.nodes[8].public].path
        # Cut the first link of the route: the packet takes the DHT, a new route follows.
        first = next(p for p in net.nodes[0].router.peers.values() if p.port == route[0])
        net.cut(0, net.by_key[first.key].index)
        net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        probe = net.send_probe(0, 8)
        net.run(1)
        self.assertTrue(net.delivered(8, probe))
        probe = exchange(net, 0, 8)
        self.assertTrue(net.delivered(8, probe))


class TrafficTests(SynchronousTestCase):
    def test_out_of_band_to_partial_key(self) -> None:
        net = converged_net("line", 4)
        target = net.nodes[3]
        partial = target.public[:8] + b"\xff" * 24
        net.nodes[0].router.send_oob(partial, b"lookup")
        net.run(1)
        # Routing ends at the node closest to the partial key (here the target itself,
        # unless another key sits between it and the partial key).
        ends = [n for n in net.nodes if n.received_oob]
        self.assertEqual(len(ends), 1)
        self.assertEqual(ends[0].received_oob[0], (net.nodes[0].public, partial, b"lookup"))

    def test_oversized_and_bad_destination(self) -> None:
        router = converged_net("line", 2).nodes[0].router
        with self.assertRaises(ValueError):
            router.send(b"\x01" * 32, b"x" * (MTU + 1))
        with self.assertRaises(ValueError):
            router.send(b"\x01" * 31, b"x")
        router.send(router.public_key, b"to myself")
        self.assertEqual(router.mtu, 53129)

    def test_kind_one_for_someone_else_is_dropped(self) -> None:
        net = converged_net("line", 2)
        a, b = net.nodes
        peer = next(iter(b.router.peers.values()))
        peer.handle_body(wire.dht_traffic(a.public, b"\x00" * 32, wire.KIND_STANDARD, b"x"))
        self.assertEqual(b.received, [])


class BadInputTests(SynchronousTestCase):
    """Frames the Go node would close a link for close that link only."""

    def setUp(self) -> None:
        self.net = converged_net("star", 4)
        self.hub = self.net.nodes[0]

    def deliver_bad(self, body: bytes) -> None:
        pair = self.net.pairs[(0, 1)]
        self.net._deliver(pair, 0, body)
        self.assertTrue(pair.closed)
        self.assertEqual(len([p for p in self.net.pairs.values() if p.closed]), 1)
        # The rest of the star still works and still routes.
        self.assertEqual(len(self.hub.router.peers), 2)
        probe = self.net.send_probe(2, 3)
        self.net.run(0.5)
        self.assertTrue(self.net.delivered(3, probe))

    def signed_tree(self, key: NodeKey, to: bytes) -> wire.TreeInfo:
        return wire.TreeInfo(key.public, 0).add_hop(to, 1, key.sign)

    def test_bad_tree_signature(self) -> None:
        leaf = self.net.nodes[1]
        info = self.signed_tree(leaf.key, self.hub.public)
        hop = info.hops[0]
        forged = wire.TreeInfo(info.root, info.seq, (wire.TreeHop(hop.next, 2, hop.sig),))
        self.deliver_bad(wire.body(wire.TREE, forged.encode()))
        self.assertIn("invalid signature", self.net.closed_links[0][1])

    def test_tree_from_someone_else(self) -> None:
        stranger = NodeKey.generate()
        info = self.signed_tree(stranger, self.hub.public)
        self.deliver_bad(wire.body(wire.TREE, info.encode()))

    def test_unknown_type(self) -> None:
        self.deliver_bad(b"\x0b" + b"\x00" * 10)

    def test_truncated_path_traffic(self) -> None:
        self.deliver_bad(b"\x0a\x01\x00" + b"\x00" * 30)

    def test_truncated_setup(self) -> None:
        self.deliver_bad(b"\x04" + b"\x00" * 40)

    def test_bad_setup_signature(self) -> None:
        leaf = self.net.nodes[1]
        label = wire.Label.signed(leaf.key.sign, leaf.public, leaf.public, 0, ())
        token = wire.SetupToken.signed(leaf.key.sign, leaf.public, label)
        setup = wire.Setup(b"\x00" * 64, 1, token)
        self.deliver_bad(wire.body(wire.SETUP, setup.encode()))

    def test_empty_body(self) -> None:
        self.deliver_bad(b"")

    def test_odd_but_valid_frames_keep_the_link(self) -> None:
        pair = self.net.pairs[(0, 1)]
        for body in (
            b"\x00",  # keepalive
            b"\x00q\x05",  # a dummy Go ignores
            wire.body(wire.TEARDOWN, wire.Teardown(1, b"\x01" * 32, b"\x02" * 32, 3).encode()),
            wire.dht_traffic(b"\x03" * 32, b"\x04" * 32, 7, b"unknown kind"),
        ):
            self.net._deliver(pair, 0, body)
        self.assertFalse(pair.closed)

    def test_unsendable_frame_is_not_sent(self) -> None:
        router = Router(NodeKey.generate(), Clock(), deliver=lambda *a: None)
        link = RecordingLink()
        peer = router.add_peer(NodeKey.generate().public, link)
        count = len(link.bodies)
        peer.write(b"\x09" + b"\x00" * wire.MAX_BODY)
        self.assertEqual(len(link.bodies), count)


class PeerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START_TIME)
        self.router = Router(NodeKey.generate(), self.clock, deliver=lambda *a: None)
        self.link = RecordingLink()
        self.remote = NodeKey.generate()

    def test_link_start_sequence(self) -> None:
        peer = self.router.add_peer(self.remote.public, self.link, priority=3)
        first, second = self.link.bodies[:2]
        info = wire.decode_body(first)
        self.assertEqual((info.root, info.seq), (self.router.public_key, 0))
        self.assertEqual(info.hops[0].next, self.remote.public)
        self.assertEqual(info.hops[0].port, peer.port)
        self.assertEqual(second, b"\x00p\x03")

    def test_ports_are_smallest_free(self) -> None:
        peers = [self.router.add_peer(NodeKey.generate().public, RecordingLink()) for _ in range(3)]
        self.assertEqual([p.port for p in peers], [1, 2, 3])
        self.router.remove_peer(peers[1])
        self.assertEqual(self.router.add_peer(NodeKey.generate().public, RecordingLink()).port, 2)
        with self.assertRaises(ValueError):
            self.router.add_peer(self.router.public_key, RecordingLink())

    def test_keepalive_four_seconds_after_last_write(self) -> None:
        peer = self.router.add_peer(self.remote.public, self.link)
        start = len(self.link.bodies)
        self.clock.advance(3.0)
        peer.write(wire.KEEPALIVE + b"")  # any write moves the keepalive
        self.clock.advance(KEEPALIVE - 0.01)
        self.assertEqual(len(self.link.bodies), start + 1)
        self.clock.advance(0.02)
        self.assertEqual(self.link.bodies[-1], wire.KEEPALIVE)
        self.assertEqual(len(self.link.bodies), start + 2)
        self.clock.advance(KEEPALIVE)
        self.assertEqual(len(self.link.bodies), start + 3)

    def test_silent_peer_is_dropped_after_six_seconds(self) -> None:
        peer = self.router.add_peer(self.remote.public, self.link)
        self.clock.advance(5.0)
        peer.handle_body(wire.KEEPALIVE)
        self.clock.advance(TIMEOUT - 0.1)
        self.assertIsNone(self.link.closed)
        self.clock.advance(0.2)
        self.assertEqual(self.link.closed, "no frame for 6 seconds")

    def test_priority_is_the_larger_of_both(self) -> None:
        peer = self.router.add_peer(self.remote.public, self.link, priority=2)
        peer.handle_body(b"\x00p\x01")
        self.assertEqual(peer.prio, 2)
        peer.handle_body(b"\x00p\x07")
        self.assertEqual(peer.prio, 7)

    def test_queue_while_paused(self) -> None:
        peer = self.router.add_peer(self.remote.public, self.link)
        sent = len(self.link.bodies)
        peer.pause()
        a, b = b"\x0a" * 32, b"\x0b" * 32
        for i in range(3):
            peer.push(wire.dht_traffic(a, b, 1, bytes([i]) * 100), 1)
        peer.send(wire.TEARDOWN, wire.Teardown(1, a, b, 2))  # protocol frames go at once
        self.assertEqual(len(self.link.bodies), sent + 1)
        peer.resume()
        self.assertEqual([body[-1] for body in self.link.bodies[sent + 1 :]], [0, 1, 2])


class PacketQueueTests(SynchronousTestCase):
    def test_pop_is_oldest_head_first(self) -> None:
        q = PacketQueue()
        q.push(b"s1", b"a", 10, 1.0)
        q.push(b"s2", b"b", 10, 2.0)
        q.push(b"s1", b"c", 10, 3.0)
        self.assertEqual([q.pop(), q.pop(), q.pop(), q.pop()], [b"a", b"b", b"c", None])

    def test_drop_takes_oldest_of_biggest_stream(self) -> None:
        q = PacketQueue()
        q.push(b"small", b"x", 10, 1.0)
        q.push(b"big", b"y1", 500, 2.0)
        q.push(b"big", b"y2", 500, 3.0)
        self.assertTrue(q.drop())
        self.assertEqual(q.size, 510)
        self.assertEqual([q.pop(), q.pop()], [b"x", b"y2"])
        self.assertFalse(q.drop())

    def test_drops_only_after_25ms(self) -> None:
        clock = Clock()
        router = Router(NodeKey.generate(), clock, deliver=lambda *a: None)
        peer = router.add_peer(NodeKey.generate().public, RecordingLink())
        peer.pause()
        body = wire.dht_traffic(b"\x01" * 32, b"\x02" * 32, 1, b"p")
        for _ in range(5):
            peer.push(body, 1)
        self.assertEqual((len(peer.queue), peer.dropped), (5, 0))
        clock.advance(0.03)
        peer.push(body, 1)
        self.assertEqual((len(peer.queue), peer.dropped), (5, 1))


class CapturedLinkTests(SynchronousTestCase):
    """Our router in node A's place, fed what the real Go node B sent A on the wire."""

    def test_go_frames_are_accepted(self) -> None:
        frames = load_json("wire/frames.json")
        keys = load_json("wire/session.json")["nodes"]
        a_key = NodeKey(bytes.fromhex(keys["A"]["private_key"]))
        b_public = bytes.fromhex(keys["B"]["public_key"])
        clock = Clock()
        clock.advance(START_TIME)
        delivered: list[tuple[bytes, bytes]] = []
        router = Router(a_key, clock, deliver=lambda s, p: delivered.append((s, p)))
        link = RecordingLink()
        peer = router.add_peer(b_public, link)
        b_to_a = next(d for d in frames["directions"] if d["direction"] == "B->A")
        last = 0.0
        stream = sorted(
            b_to_a["frames"] + b_to_a["omitted_keepalives"], key=lambda f: f["stream_offset"]
        )
        for frame in stream:
            clock.advance(frame["t"] - last)
            last = frame["t"]
            raw = bytes.fromhex(frame["raw_hex"])
            try:
                peer.handle_body(raw[2:])
            except (LinkError, DecodeError) as e:  # pragma: no cover - the test fails
                self.fail(f"frame at {frame['stream_offset']} refused: {e}")
        self.assertIsNone(link.closed)
        me = router.get_self()
        self.assertEqual(me.root, b_public)
        self.assertEqual(me.coords, (1,))
        (info,) = router.get_peers()
        self.assertEqual((info.key, info.coords, info.port, info.priority), (b_public, (), 1, 3))
        # B's ack answered our bootstrap (same label as A's: same key, root, seq, coords),
        # so we sent B a setup for a path, as A did.
        sent_types = [body[0] for body in link.bodies]
        self.assertIn(wire.SETUP, sent_types)
        self.assertEqual(router.dht.dest_keys.get(router.dht.prev), b_public)
        # B's session packets (kind 1 traffic) were delivered up, from B.
        self.assertTrue(delivered)
        self.assertTrue(all(source == b_public for source, _ in delivered))
