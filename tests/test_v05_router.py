"""The v0.5 routing core: small networks on the simulated clock, links, and bad input."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ygg.address import address_for_key, key_for_address, key_for_subnet, subnet_for_key
from ygg.errors import DecodeError
from ygg.keys import NodeKey
from ygg.sim import graphs
from ygg.sim.network import SimNetwork
from ygg.v05.network import bloom, wire
from ygg.v05.network.filters import xform
from ygg.v05.network.peers import KEEPALIVE_DELAY, PEER_TIMEOUT, QUEUE_DROP_AGE, PacketQueue
from ygg.v05.network.router import Router
from ygg.v05.network.tree import ROUTER_REFRESH, ROUTER_TIMEOUT

CONVERGE = 60.0  # simulated seconds a small network may take


def v05_net(edges: list[tuple[int, int]], n: int, seed: int = 1, **kwargs) -> SimNetwork:
    net = SimNetwork.from_edges(n, edges, seed=seed, protocol="0.5", **kwargs)
    net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
    return net


def check_tree(test: SynchronousTestCase, net: SimNetwork) -> None:
    """Everyone's root is the lowest live key, and coords chain down parent ports."""
    root = net.expected_root()
    for node in net.live():
        router = node.router
        me = router.get_self()
        test.assertEqual(me.root, root)
        if node.public == root:
            test.assertEqual(me.coords, ())
            continue
        parent = router.tree.info(node.public).parent
        parent_router = net.by_key[parent].router
        test.assertIn(node.public, parent_router.peers)  # the parent is a neighbour
        port = parent_router.ports[node.public]
        test.assertEqual(me.coords, (*parent_router.get_self().coords, port))


def check_ancestries(test: SynchronousTestCase, net: SimNetwork) -> None:
    """Each node holds the infos of its own and its neighbours' ancestries (at least)."""
    for node in net.live():
        tree = node.router.tree
        wanted = set(tree.chain(node.public))
        for key in node.router.peers:
            wanted |= set(tree.chain(key))
        test.assertLessEqual(wanted, set(tree.infos))
        test.assertEqual(tree.root(node.public), net.expected_root())


def send(net: SimNetwork, a: int, b: int, wait: float = 1.0) -> int:
    probe = net.send_probe(a, b)
    net.run(wait)
    return probe


def exchange(test: SynchronousTestCase, net: SimNetwork, a: int, b: int) -> int:
    """Traffic both ways until both know a path; returns the hops of a last a→b packet."""
    for first, second in ((a, b), (b, a), (a, b), (b, a)):
        send(net, first, second, 1.1)
    probe = send(net, a, b)
    test.assertTrue(net.delivered(b, probe), f"{a}->{b} not delivered")
    back = send(net, b, a)
    test.assertTrue(net.delivered(a, back), f"{b}->{a} not delivered")
    return net.hops[probe]


class RecordingLink:
    """A LinkIO that keeps what was written and whether it was closed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.closed: str | None = None

    def write_body(self, body: bytes) -> None:
        self.bodies.append(bytes(body))

    def close(self, reason: str) -> None:
        self.closed = reason

    def types(self) -> list[int]:
        return [body[0] for body in self.bodies]


def make_router(seed: int = 1, clock: Clock | None = None, **kwargs) -> Router:
    rng = random.Random(seed)
    return Router(
        NodeKey.from_seed(bytes([seed]) * 32),
        clock or Clock(),
        deliver=kwargs.pop("deliver", lambda source, payload: None),
        nonce=lambda: rng.getrandbits(64),
        **kwargs,
    )


class SmallNetworkTests(SynchronousTestCase):
    def test_two_routers_agree(self) -> None:
        net = v05_net([(0, 1)], 2)
        check_tree(self, net)
        a, b = (n.router for n in net.nodes)
        self.assertEqual(a.get_self().routing_entries, 2)
        self.assertEqual(exchange(self, net, 0, 1), 1)
        # each side's filter from the other holds exactly the other's transformed key
        for me, other in ((a, b), (b, a)):
            state = me.blooms.states[other.public_key]
            self.assertTrue(state.on_tree)
            self.assertEqual(state.recv, bloom.mask(xform(other.public_key)))

    def test_three_in_a_line(self) -> None:
        net = v05_net(graphs.line(3), 3)
        check_tree(self, net)
        middle = net.nodes[1].router
        ends = (net.nodes[0].public, net.nodes[2].public)
        # the middle node's filters: each end holds the other end's key and the middle's
        for i, end in enumerate(ends):
            other = ends[1 - i]
            sent = middle.blooms.states[end].send
            self.assertTrue(bloom.contains(sent, xform(other)))
            self.assertTrue(bloom.contains(sent, xform(middle.public_key)))
        self.assertEqual(exchange(self, net, 0, 2), 2)  # through the middle node
        self.assertEqual(exchange(self, net, 2, 0), 2)
        paths = {p.key: p.path for p in net.nodes[0].router.get_paths()}
        self.assertEqual(paths[net.nodes[2].public], net.nodes[2].router.get_self().coords)

    def test_graphs_deliver_everything(self) -> None:
        for kind, n in (("ba", 30), ("er", 25), ("grid", 16), ("ring", 12)):
            edges = (
                graphs.generate(kind, n, 3) if kind in ("ba", "er") else getattr(graphs, kind)(n)
            )
            net = v05_net(edges, n, seed=3)
            check_tree(self, net)
            rng = random.Random(5)
            for _ in range(10):
                a, b = rng.sample(range(n), 2)
                exchange(self, net, a, b)
            self.assertEqual(net.closed_links, [], kind)

    def test_tree_only_holds_ancestries(self) -> None:
        """A node hears only its own and its neighbours' ancestries (spec §5.2)."""
        net = v05_net(graphs.line(5), 5)
        check_ancestries(self, net)
        net.run(ROUTER_TIMEOUT + 10)  # and so it stays, infos renewed, stale ones gone
        check_ancestries(self, net)

    def test_heal_after_link_cut(self) -> None:
        net = v05_net(graphs.ring(6), 6)
        root = min(range(6), key=lambda i: net.nodes[i].public)
        # cut one of the root's tree links: the far side re-parents round the ring
        child = next(
            i
            for i in range(6)
            if i != root
            and net.nodes[i].router.tree.info(net.nodes[i].public).parent == net.nodes[root].public
        )
        net.cut(root, child)
        took = net.run_until(net.converged, timeout=30, settle=1.0)
        self.assertLess(took, 15)  # seconds of ticks, not the 5 min info timeout
        check_tree(self, net)
        for other in range(6):
            if other != child:
                exchange(self, net, child, other)

    def test_heal_after_root_leaves(self) -> None:
        edges = graphs.generate("er", 12, 4)
        net = v05_net(edges, 12, seed=4)
        root = min(range(12), key=lambda i: net.nodes[i].public)
        net.stop_node(root)
        took = net.run_until(net.converged, timeout=60, settle=1.0)
        self.assertLess(took, 20)  # re-rooting takes 1-2 s per hop, not routerTimeout
        check_tree(self, net)
        live = [n.index for n in net.live()]
        rng = random.Random(1)
        for _ in range(6):
            a, b = rng.sample(live, 2)
            exchange(self, net, a, b)

    def test_broken_path_is_looked_up_again(self) -> None:
        # 0 - 1 - 2 and 0 - 3 - 2: cutting the path in use makes traffic find the other
        net = v05_net([(0, 1), (1, 2), (0, 3), (2, 3)], 4)
        exchange(self, net, 0, 2)
        for a, b in ((0, 1), (1, 2), (0, 3), (2, 3)):
            net.cut(a, b)
            net.run_until(net.converged, timeout=30, settle=1.0)
            probes = [send(net, 0, 2, 1.5) for _ in range(4)]
            self.assertTrue(net.delivered(2, probes[-1]), (a, b))
            net.restore(a, b)
            net.run_until(net.converged, timeout=30, settle=1.0)

    def test_routers_are_deterministic(self) -> None:
        def run() -> list:
            net = v05_net(graphs.generate("ba", 20, 2), 20, seed=2)
            exchange(self, net, 3, 17)
            return [(n.router.get_self(), n.router.get_tree()) for n in net.nodes]

        self.assertEqual(run(), run())

    def test_task_clock(self) -> None:
        """Nothing depends on the simulator's clock."""
        net = SimNetwork(seed=1, clock=Clock(), protocol="0.5")
        for _ in range(4):
            net.add_node()
        for a, b in graphs.line(4):
            net.link(a, b)
        net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        check_tree(self, net)
        exchange(self, net, 0, 3)


class ParentChoiceTests(SynchronousTestCase):
    """0.5.11's rule: a cheaper parent is only taken on refresh, and only at half the cost."""

    def build(self, delay2: float) -> tuple[SimNetwork, int, int, int]:
        # R (lowest key) - P1 and R - P2 on fast links; X hangs off P1 (50 ms) first.
        net = SimNetwork(seed=7, protocol="0.5")
        keys = sorted(
            (NodeKey.from_seed(bytes([i]) * 32) for i in range(1, 5)), key=lambda k: k.public
        )
        for key in keys:
            net.add_node(key)
        r, p1, p2, x = 0, 1, 2, 3
        net.link(r, p1, delay=0.001)
        net.link(r, p2, delay=0.001)
        net.link(x, p1, delay=0.050)
        net.run_until(net.converged, timeout=CONVERGE, settle=2.0)
        self.assertEqual(self.parent(net, x), net.nodes[p1].public)
        net.link(x, p2, delay=delay2)
        net.run_until(net.converged, timeout=CONVERGE, settle=2.0)
        return net, x, p1, p2

    def parent(self, net: SimNetwork, i: int) -> bytes:
        return net.nodes[i].router.tree.info(net.nodes[i].public).parent

    def refresh_at(self, net: SimNetwork, i: int) -> float:
        info = net.nodes[i].router.tree.infos[net.nodes[i].public]
        return info.timer.getTime()

    def costs(self, net: SimNetwork, x: int, p1: int, p2: int) -> tuple[int, int]:
        """(cost through the current parent, cost through P2) as _fix computes them."""
        router = net.nodes[x].router
        tree = router.tree
        c1 = min(tree.cost(p) for p in router.peers[net.nodes[p1].public])
        c2 = min(tree.cost(p) for p in router.peers[net.nodes[p2].public])
        hops_x = len(tree.chain(net.nodes[x].public)) - 1
        hops_p2 = len(tree.chain(net.nodes[p2].public)) - 1
        return hops_x * c1, hops_p2 * c2

    def test_cheaper_parent_waits_for_refresh(self) -> None:
        net, x, p1, p2 = self.build(delay2=0.005)
        current, candidate = self.costs(net, x, p1, p2)
        self.assertLess(2 * candidate, current)
        due = self.refresh_at(net, x)
        net.run(due - net.clock.seconds() - 0.5)
        self.assertEqual(self.parent(net, x), net.nodes[p1].public)  # no move before
        net.run(2.5)
        self.assertEqual(self.parent(net, x), net.nodes[p2].public)  # moved on refresh
        net.run_until(net.converged, timeout=CONVERGE, settle=1.0)
        check_tree(self, net)

    def test_not_cheap_enough_stays(self) -> None:
        net, x, p1, p2 = self.build(delay2=0.070)
        current, candidate = self.costs(net, x, p1, p2)
        self.assertLess(candidate, current)  # cheaper, but not by half
        self.assertGreaterEqual(2 * candidate, current)
        net.run(ROUTER_REFRESH + 5)
        self.assertEqual(self.parent(net, x), net.nodes[p1].public)

    def test_lost_parent_switches_at_once(self) -> None:
        net, x, p1, p2 = self.build(delay2=0.070)
        net.cut(x, p1)
        net.run(2.5)
        self.assertEqual(self.parent(net, x), net.nodes[p2].public)

    def test_infos_are_refreshed_before_they_expire(self) -> None:
        net, *_ = self.build(delay2=0.070)
        seqs = {n.public: n.router.tree.info(n.public).seq for n in net.nodes}
        net.run(ROUTER_TIMEOUT + 10)
        for node in net.nodes:
            self.assertGreater(node.router.tree.info(node.public).seq, seqs[node.public])
        check_ancestries(self, net)
        check_tree(self, net)
        self.assertEqual(net.closed_links, [])


class LookupTests(SynchronousTestCase):
    def test_partial_key_lookup_finds_the_full_key(self) -> None:
        found: list[bytes] = []
        net = v05_net(graphs.line(4), 4)
        src = net.nodes[0].router
        src.path_notify = found.append
        target = net.nodes[3].public
        for partial in (
            key_for_address(address_for_key(target))[0],
            key_for_subnet(subnet_for_key(target))[0],
        ):
            found.clear()
            src.pathfinder.paths.clear()
            src.pathfinder.rumors.clear()
            src.lookup(partial)
            net.run(1.0)
            self.assertEqual(found, [target])
            self.assertTrue(src.has_path(target))

    def test_lookups_are_throttled(self) -> None:
        net = v05_net(graphs.line(3), 3)
        pathfinder = net.nodes[0].router.pathfinder
        sent: list[bytes] = []
        real = pathfinder.send_lookup
        self.patch(pathfinder, "send_lookup", lambda dest: (sent.append(dest), real(dest)))
        dest = NodeKey.from_seed(b"\x99" * 32).public  # nobody has it
        for _ in range(30):
            net.nodes[0].router.lookup(dest)
            net.run(0.1)
        self.assertEqual(len(sent), 3)  # at 0, 1 and 2 s: once a second

    def test_unknown_destination_keeps_one_packet(self) -> None:
        net = v05_net(graphs.line(2), 2)
        dest = NodeKey.from_seed(b"\x98" * 32).public
        router = net.nodes[0].router
        for i in range(5):
            router.send(dest, b"packet %d" % i)
        rumors = list(router.pathfinder.rumors.values())
        self.assertEqual(len(rumors), 1)
        self.assertEqual(rumors[0].traffic, (dest, b"packet 4"))
        net.run(61)
        self.assertEqual(router.pathfinder.rumors, {})  # expired after pathTimeout

    def test_paths_expire_without_traffic(self) -> None:
        net = v05_net(graphs.line(3), 3)
        exchange(self, net, 0, 2)
        self.assertTrue(net.nodes[0].router.has_path(net.nodes[2].public))
        net.run(61)
        self.assertFalse(net.nodes[0].router.has_path(net.nodes[2].public))

    def test_send_limits(self) -> None:
        router = make_router()
        with self.assertRaises(ValueError):
            router.send(b"\1" * 32, b"x" * (router.mtu + 1))
        with self.assertRaises(ValueError):
            router.send(b"\1" * 31, b"x")
        with self.assertRaises(ValueError):
            router.add_peer(router.public_key, RecordingLink())
        router.close()
        with self.assertRaises(ValueError):
            router.send(b"\1" * 32, b"x")


class LinkTests(SynchronousTestCase):
    """One router and hand-fed frames: link start, keepalive, timeouts, bad frames."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.router = make_router(1, self.clock)
        self.other = NodeKey.from_seed(b"\x02" * 32)
        self.link = RecordingLink()
        self.peer = self.router.add_peer(self.other.public, self.link, 0)

    def test_link_start_and_ports(self) -> None:
        self.assertEqual(self.link.types(), [wire.SIG_REQ, wire.BLOOM])
        self.assertEqual(self.link.bodies[1], b"\x05" + b"\xff" * 16 + b"\x00" * 16)
        req = wire.decode_body(self.link.bodies[0])
        self.assertEqual(req.seq, 2)  # our own info is seq 1: root since the first tick
        self.assertEqual(self.peer.port, 1)
        # a second link to the same key shares its port; another key gets the next one
        second = self.router.add_peer(self.other.public, RecordingLink(), 3)
        third = self.router.add_peer(NodeKey.from_seed(b"\x03" * 32).public, RecordingLink())
        self.assertEqual((second.port, third.port), (1, 2))
        self.router.remove_peer(self.peer)
        self.assertEqual(self.router.ports[self.other.public], 1)  # still held by `second`
        self.router.remove_peer(second)
        self.assertNotIn(self.other.public, self.router.ports)
        fourth = self.router.add_peer(NodeKey.from_seed(b"\x04" * 32).public, RecordingLink())
        self.assertEqual(fourth.port, 1)

    def test_sig_req_is_answered(self) -> None:
        self.peer.handle_body(wire.encode_body(wire.SigReq(7, 12345)))
        res = wire.decode_body(self.link.bodies[-1])
        self.assertIsInstance(res, wire.SigRes)
        self.assertEqual((res.seq, res.nonce, res.port), (7, 12345, 1))
        self.assertTrue(res.check(self.other.public, self.router.public_key, self.router.verify))

    def test_keepalive_after_receiving(self) -> None:
        self.clock.advance(1.5)  # past the first tick's announce
        self.peer.handle_body(wire.encode_body(wire.SigReq(7, 1)))  # answered: a write
        self.link.bodies.clear()
        self.clock.advance(0.2)
        self.peer.handle_body(wire.encode_body(wire.Bloom(0)))  # not answered
        self.clock.advance(KEEPALIVE_DELAY - 0.01)
        self.assertEqual(self.link.bodies, [])
        self.clock.advance(0.02)
        self.assertEqual(self.link.bodies, [b"\x01"])
        # a keepalive received arms nothing: silence is allowed
        self.peer.handle_body(b"\x01")
        self.clock.advance(10)
        self.assertEqual(self.link.bodies, [b"\x01"])
        self.assertIsNone(self.link.closed)

    def test_read_deadline_after_writing(self) -> None:
        # the sigReq and bloom written at link start need an answer within 3 s
        self.clock.advance(PEER_TIMEOUT - 0.01)
        self.assertIsNone(self.link.closed)
        self.peer.handle_body(b"\x01")  # anything clears the deadline
        self.clock.advance(5)  # the ticks since wrote nothing new: no deadline again
        self.assertIsNone(self.link.closed)

    def test_silence_closes(self) -> None:
        self.clock.advance(PEER_TIMEOUT + 0.01)
        self.assertEqual(self.link.closed, "read: i/o timeout")

    def test_bad_frames_close_only_their_link(self) -> None:
        good_link = RecordingLink()
        good = self.router.add_peer(NodeKey.from_seed(b"\x05" * 32).public, good_link)
        me = self.router.public_key
        other = self.other
        bad_res = wire.SigRes(2, 1, 1, b"\1" * 64)
        root = wire.sig_message(other.public, other.public, 1, 1, 0)
        bad_root = wire.Announce(other.public, other.public, 1, 1, 0, b"\2" * 64, b"\2" * 64)
        child = wire.Announce(
            other.public, me, 1, 1, 0, other.sign(root), other.sign(root)
        )  # port 0 but not a root
        for body in (
            b"",
            b"\x0a",
            b"\xff\x00",
            b"\x02\x01",  # sigReq: truncated
            b"\x02\x01\x01\x00",  # sigReq: a byte too many
            wire.encode_body(bad_res),
            wire.encode_body(bad_root),
            wire.encode_body(child),
            b"\x05" + b"\xff" * 32,  # bloom: a word flagged all-zero and all-one
            b"\x09\x01",  # traffic: truncated path
        ):
            with self.assertRaises(DecodeError, msg=body.hex()):
                self.peer.handle_body(body)
        # the good link and the router carry on
        good.handle_body(wire.encode_body(wire.SigReq(2, 9)))
        self.assertEqual(good_link.bodies[-1][0], wire.SIG_RES)

    def test_stream_bytes(self) -> None:
        frames = wire.frame(wire.encode_body(wire.SigReq(3, 4))) + wire.frame(b"\x01")
        for i in range(len(frames)):  # any chunking
            self.link.bodies.clear()
            self.peer.data_received(frames[:i])
            self.peer.data_received(frames[i:])
            self.assertEqual(self.link.types(), [wire.SIG_RES])
        with self.assertRaises(DecodeError):
            self.peer.data_received(b"\x00")  # empty frame

    def test_huge_frames_are_refused(self) -> None:
        with self.assertRaises(DecodeError):
            self.peer.data_received(wire.put_uvarint(wire.MAX_MESSAGE_SIZE + 1))
        with self.assertRaises(DecodeError):
            self.router.add_peer(self.other.public, RecordingLink()).data_received(b"\xff" * 11)

    def test_announce_flood_is_bounded(self) -> None:
        from ygg.v05.network import tree as tree_module

        self.patch(tree_module, "MAX_INFOS", 20)
        for i in range(40):
            key = NodeKey.from_seed(i.to_bytes(2, "big") * 16)
            msg = wire.sig_message(key.public, key.public, 1, 1, 0)
            sig = key.sign(msg)
            self.peer.handle_body(
                wire.encode_body(wire.Announce(key.public, key.public, 1, 1, 0, sig, sig))
            )
        self.assertEqual(len(self.router.tree.infos), 20)
        self.assertIsNone(self.link.closed)

    def test_close_stops_timers(self) -> None:
        self.router.close()
        self.assertEqual(self.link.closed, "node stopping")
        self.assertEqual(self.clock.getDelayedCalls(), [])


class QueueTests(SynchronousTestCase):
    def test_drop_rule(self) -> None:
        q = PacketQueue()
        a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
        q.push(a, b, b"\x09" + b"1" * 10, 0.0)
        q.push(c, b, b"\x09" + b"2" * 30, 0.001)
        q.push(a, c, b"\x09" + b"3" * 20, 0.002)
        self.assertEqual(q.size, 60)
        # dest b has most bytes (40); within it source c (30): its oldest goes
        self.assertTrue(q.drop())
        self.assertEqual(q.pop(), b"\x09" + b"1" * 10)
        self.assertEqual(q.pop(), b"\x09" + b"3" * 20)
        self.assertIsNone(q.pop())
        self.assertFalse(q.drop())

    def test_busy_link_queues_and_drops_old(self) -> None:
        clock = Clock()
        router = make_router(1, clock)
        link = RecordingLink()
        peer = router.add_peer(NodeKey.from_seed(b"\x02" * 32).public, link)
        peer.pause()
        for i in range(5):
            peer.push(b"\x09" + bytes([i]) * 10, b"s" * 32, b"d" * 32)
        clock.advance(QUEUE_DROP_AGE)
        peer.push(b"\x09" + b"\x05" * 10, b"s" * 32, b"d" * 32)
        self.assertEqual((len(peer.queue), peer.dropped), (6, 0))  # 25 ms is not "more than"
        clock.advance(0.001)
        peer.push(b"\x09" + b"\x06" * 10, b"s" * 32, b"d" * 32)
        self.assertEqual((len(peer.queue), peer.dropped), (6, 1))  # the oldest went
        link.bodies.clear()
        peer.resume()
        self.assertEqual([b[1] for b in link.bodies], [1, 2, 3, 4, 5, 6])


def _captured_bodies() -> list[bytes]:
    from tests.helpers import load_json

    bodies = []
    for conn in load_json("v05/links.json"):
        for direction in conn["directions"]:
            for f in direction["frames"]:
                raw = bytes.fromhex(f["raw_hex"])
                _, start = wire.get_uvarint(raw, 0, len(raw), "frame")
                bodies.append(raw[start:])
    return bodies


CAPTURED = _captured_bodies()


class FuzzTests(SynchronousTestCase):
    """Random and mutated frames: a DecodeError at most, never anything else."""

    def fresh(self) -> tuple[Router, object]:
        router = make_router(1)
        peer = router.add_peer(NodeKey.from_seed(b"\x02" * 32).public, RecordingLink())
        return router, peer

    def feed(self, peer, bodies: list[bytes]) -> None:
        for body in bodies:
            try:
                peer.handle_body(body)
            except DecodeError:
                pass

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=300), max_size=8))
    def test_random_bodies(self, bodies: list[bytes]) -> None:
        _, peer = self.fresh()
        self.feed(peer, bodies)

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(CAPTURED),
        st.lists(st.tuples(st.integers(0, 1200), st.integers(0, 255)), min_size=1, max_size=4),
        st.integers(0, 1200),
    )
    def test_mutated_captured_frames(
        self, body: bytes, flips: list[tuple[int, int]], cut: int
    ) -> None:
        router, peer = self.fresh()
        mutated = bytearray(body)
        for where, value in flips:
            if mutated:
                mutated[where % len(mutated)] = value
        self.feed(peer, [bytes(mutated), bytes(mutated[: cut % (len(mutated) + 1)])])
        router.clock.advance(2.0)  # a tick over whatever state it left

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=2000))
    def test_random_stream(self, data: bytes) -> None:
        _, peer = self.fresh()
        try:
            peer.data_received(data)
        except DecodeError:
            pass
