"""The DHT crawl over real nodes: Go nodes (Debian's yggdrasil 0.4.7) and ours, on loopback.

Six nodes in a ring n0 – n1 – n2 – n3 – n4 – n5 – n0 with the chords n0 – n3 and n1 – n4,
Go and ours alternating: n0 is ours with ``DHTCrawler { Enable: true }``, n2 ours started
with ``--dhtcrawler``, n4 ours without the crawler; n1, n3 and n5 are Go nodes.

The crawl from n0 — through ``ygg crawl`` and through yggdrasilctl's ``getDHTCrawl`` —
finds all six with their NodeInfo and coordinates, and for each node the peers its own
``getPeers`` lists and the DHT neighbours its own ``getDHT`` lists.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tests.helpers import YGG
from tests.nodes import GoNode, Node, YggNode, wait_until
from tests.processes import run
from tests.test_interop_links import InteropCase

EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3), (1, 4)]
SETTLE = 5.0


class SwitchedYggNode(YggNode):
    """Ours, with the crawler turned on by the command-line switch instead of the config."""

    def argv(self) -> list[str]:
        return [*super().argv(), "--dhtcrawler"]


class CrawlInteropTests(InteropCase):
    def start_ring(self) -> list[Node]:
        nodes: list[Node] = []
        for i in range(6):
            # Each node dials the earlier ends of its edges: their listeners are known.
            peers = [nodes[min(e)].listen_uri("tcp") for e in EDGES if max(e) == i]
            kwargs: dict[str, Any] = {
                "listen": ["tcp://127.0.0.1:0"],
                "peers": peers,
                "nodeinfo": {"name": f"n{i}"},
            }
            directory = f"{self.dir}/n{i}"
            if i == 0:
                node: Node = YggNode(directory, extra={"DHTCrawler": {"Enable": True}}, **kwargs)
            elif i == 2:
                node = SwitchedYggNode(directory, **kwargs)
            elif i == 4:
                node = YggNode(directory, **kwargs)
            else:
                node = GoNode(directory, **kwargs)
            node.start()
            self.addCleanup(node.stop)
            nodes.append(node)
        return nodes

    def wait_converged(self, nodes: list[Node]) -> None:
        for a, b in EDGES:
            nodes[a].wait_peer(nodes[b].key)
            nodes[b].wait_peer(nodes[a].key)

        def one_root() -> bool:
            coords = [node.ctl("getSelf")["coords"] for node in nodes]
            return sum(1 for c in coords if c == []) == 1

        wait_until(one_root, 20, "one tree")
        # Let the DHT and paths settle.  Sessions opened while they are still moving lose
        # an init or its ack now and then; a lost ack leaves the remote dropping our
        # repeated init until its session times out, which the crawl waits out (its 60 s
        # pause) but which would make this test slow.
        time.sleep(SETTLE)

    def test_crawl_a_ring_of_go_nodes_and_ours(self) -> None:
        nodes = self.start_ring()
        self.wait_converged(nodes)
        crawler = nodes[0]

        # ygg crawl: a fresh crawl, reported on standard error as it goes.
        out_file = os.path.join(self.dir, "crawl.json")
        started = time.monotonic()
        done = run(
            [YGG, "crawl", "--endpoint", crawler.admin, "--out", out_file, "--interval", "0.2"],
            timeout=150,
        )
        took = time.monotonic() - started
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "")
        self.assertIn("crawl: done: 6 nodes, 6 answered, 6 with NodeInfo", done.stderr)
        with open(out_file) as f:
            from_cli = json.load(f)

        # yggdrasilctl: within five minutes, the same crawl from the cache, at once.
        started = time.monotonic()
        from_ctl = crawler.ctl("getDHTCrawl", timeout=150)
        self.assertLess(time.monotonic() - started, min(took, 5.0))
        self.assertEqual(from_ctl, from_cli)
        progress = crawler.ctl("getDHTCrawlProgress")
        self.assertEqual(
            {k: progress[k] for k in ("running", "found", "answered", "pending")},
            {"running": False, "found": 6, "answered": 6, "pending": 0},
        )

        report = from_ctl["dht_crawl"]
        self.assertEqual(sorted(report["topology"]), sorted(node.key for node in nodes))
        meta = report["meta"]
        self.assertEqual(
            (meta["nodes_attempted"], meta["nodes_successful"], meta["nodes_failed"]), (6, 6, 0)
        )
        self.assertEqual((meta["nodeinfo_successful"], meta["nodeinfo_failed"]), (6, 0))
        for i, node in enumerate(nodes):
            entry = report["topology"][node.key]
            own = node.ctl("getSelf")
            self.assertTrue(entry["found"], node)
            self.assertEqual(entry["ipv6_addr"], own["address"])
            self.assertEqual(entry["ipv6_subnet"], own["subnet"])
            self.assertEqual(entry["coords"], own["coords"], node)
            self.assertEqual(sorted(entry["peers"]), sorted(set(node.peer_keys())), node)
            expected = {nodes[b if a == i else a].key for a, b in EDGES if i in (a, b)}
            self.assertEqual(set(entry["peers"]), expected, node)
            own_dht = {row["key"] for row in node.ctl("getDHT")["dht"]}
            self.assertEqual(set(entry["dht"]), own_dht, node)
            self.assertEqual(report["nodeinfo"][node.key]["name"], f"n{i}")

        # The switch turns the feature on as the config does; without either it is off.
        self.assertIn("getdhtcrawl", nodes[2].ctl("list", table=True))
        self.assertNotIn("getdhtcrawl", nodes[4].ctl("list", table=True))
