"""The simulator itself: its clock, its graphs, and ``python -m ygg.sim`` on a small graph."""

from __future__ import annotations

import json
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT
from ygg.sim import graphs
from ygg.sim.clock import SimClock


class SimClockTests(SynchronousTestCase):
    def test_order_time_and_cancel(self) -> None:
        clock = SimClock(100.0)
        seen: list[tuple[str, float]] = []
        clock.callLater(2, lambda: seen.append(("b", clock.seconds())))
        clock.callLater(1, lambda: seen.append(("a", clock.seconds())))
        c = clock.callLater(1.5, lambda: seen.append(("x", clock.seconds())))
        clock.callLater(2, lambda: seen.append(("c", clock.seconds())))
        c.cancel()
        self.assertFalse(c.active())
        clock.advance(5)
        self.assertEqual(seen, [("a", 101.0), ("b", 102.0), ("c", 102.0)])
        self.assertEqual(clock.seconds(), 105.0)
        self.assertEqual(clock.pending(), 0)

    def test_reset_and_calls_scheduled_while_advancing(self) -> None:
        clock = SimClock()
        seen: list[float] = []
        call = clock.callLater(1, lambda: seen.append(clock.seconds()))
        call.reset(3)
        clock.callLater(0.5, lambda: clock.callLater(0.5, lambda: seen.append(clock.seconds())))
        clock.advance(10)
        self.assertEqual(seen, [1.0, 3.0])


class GraphTests(SynchronousTestCase):
    def test_shapes(self) -> None:
        self.assertEqual(graphs.line(4), [(0, 1), (1, 2), (2, 3)])
        self.assertEqual(len(graphs.ring(5)), 5)
        self.assertEqual(len(graphs.grid(9)), 12)
        for kind in ("ba", "er"):
            edges = graphs.generate(kind, 50, 7)
            self.assertEqual(edges, graphs.generate(kind, 50, 7))  # seeded
            hops = graphs.hops_from(0, graphs.neighbours(50, edges))
            self.assertNotIn(-1, hops)  # connected
        self.assertEqual(len(graphs.generate("ba", 50, 7)), 2 * 48)


class CommandLineTests(SynchronousTestCase):
    def test_json_output(self) -> None:
        done = subprocess.run(
            [
                PYTHON,
                "-m",
                "ygg.sim",
                "--nodes",
                "30",
                "--graph",
                "ba",
                "--seed",
                "2",
                "--pairs",
                "20",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        result = json.loads(done.stdout)
        for key in (
            "nodes",
            "edges",
            "pairs",
            "delivered",
            "stretch_mean",
            "stretch_p95",
            "converge_sim_seconds",
            "wall_seconds",
            "peak_rss_kb",
            "dht_entries_mean",
            "dht_entries_max",
            "root_agreed",
        ):
            self.assertIn(key, result)
        self.assertEqual((result["nodes"], result["pairs"], result["delivered"]), (30, 20, 20))
        self.assertTrue(result["root_agreed"])
        self.assertGreaterEqual(result["stretch_mean"], 1.0)
        self.assertEqual(result["protocol"], "0.4")
        self.assertNotIn("tree_entries_mean", result)

    def test_json_output_v05(self) -> None:
        """``--protocol 0.5``: the same fields, v0.5's tables instead of the DHT's."""
        done = subprocess.run(
            [
                PYTHON,
                "-m",
                "ygg.sim",
                "--protocol",
                "0.5",
                "--nodes",
                "30",
                "--graph",
                "ba",
                "--seed",
                "2",
                "--pairs",
                "20",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        result = json.loads(done.stdout)
        self.assertEqual(result["protocol"], "0.5")
        self.assertEqual((result["nodes"], result["pairs"], result["delivered"]), (30, 20, 20))
        self.assertTrue(result["root_agreed"])
        self.assertGreaterEqual(result["stretch_mean"], 1.0)
        self.assertIsNone(result["dht_entries_mean"])
        self.assertGreater(result["tree_entries_mean"], 1)
        self.assertGreater(result["bloom_occupancy_max"], 0)
        for key in (
            "converge_sim_seconds",
            "wall_seconds",
            "peak_rss_kb",
            "frames_per_node_second",
            "idle_frames_per_node_second",
        ):
            self.assertIn(key, result)
