"""The network crawls over real nodes, on loopback: Go nodes (Debian's yggdrasil 0.4.7 and
the 0.5.12 judge) and ours.

Six nodes in a ring n0 – n1 – n2 – n3 – n4 – n5 – n0 with the chords n0 – n3 and n1 – n4,
Go and ours alternating: n0 is ours with ``DHTCrawler { Enable: true }``, n2 ours started
with ``--dhtcrawler``, n4 ours without the crawler; n1, n3 and n5 are Go nodes.

* With Go 0.4.7 nodes, the v0.4 crawl from n0 (``ygg crawl --network 0.4`` and
  yggdrasilctl's ``getDHTCrawl``) finds all six with their NodeInfo and coordinates, and
  for each node the peers its own ``getPeers`` lists and the DHT neighbours its own
  ``getDHT`` lists.
* With Go 0.5.12 nodes, every link is v0.5: the v0.5 crawl (``getTreeCrawl``) finds all
  six with NodeInfo, the peers each lists and the keys of its own ``getTree``.  Two Go
  0.4.7 nodes hang off n0 and n2 over v0.4, so n0's default ``ygg crawl`` walks both
  networks at once, and draws them (``--map`` .svg and .html).
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from typing import Any

from tests.browser import Chromium
from tests.helpers import YGG, require_go05, require_tool
from tests.nodes import GoNode, GoNode05, Node, YggNode, wait_until
from tests.processes import run
from tests.test_crawler_map import SVG, svg_labels
from tests.test_interop_links import InteropCase

EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3), (1, 4)]
SETTLE = 5.0


class SwitchedYggNode(YggNode):
    """Ours, with the crawler turned on by the command-line switch instead of the config."""

    def argv(self) -> list[str]:
        return [*super().argv(), "--dhtcrawler"]


class RingCase(InteropCase):
    def start_ring(self, go: type[Node] = GoNode) -> list[Node]:
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
                node = go(directory, **kwargs)
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


class CrawlInteropTests(RingCase):
    def test_crawl_a_ring_of_go_nodes_and_ours(self) -> None:
        nodes = self.start_ring()
        self.wait_converged(nodes)
        crawler = nodes[0]

        # ygg crawl: a fresh crawl, reported on standard error as it goes.
        out_file = os.path.join(self.dir, "crawl.json")
        started = time.monotonic()
        argv = [YGG, "crawl", "--endpoint", crawler.admin, "--network", "0.4"]
        done = run([*argv, "--out", out_file, "--interval", "0.2"], timeout=150)
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
        self.assertEqual((meta["version"], meta["crawler"]), ("0.4", crawler.key))
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


def tree_root(node: Node) -> str:
    """The v0.5 root as a node's getTree shows it (0.5.12's form, ours too): the top of
    its own ancestry."""
    parents = {row["key"]: row["parent"] for row in node.ctl("getTree")["tree"]}
    key = node.key
    for _ in range(len(parents) + 1):
        parent = parents.get(key, key)
        if parent == key:
            return key
        key = parent
    return ""


class V05CrawlInteropTests(RingCase):
    """The ring with Go 0.5.12 nodes, and two Go 0.4.7 nodes on n0 and n2."""

    def setUp(self) -> None:
        super().setUp()
        require_go05()

    def wait_v05(self, nodes: list[Node]) -> None:
        for a, b in EDGES:
            nodes[a].wait_peer(nodes[b].key)
            nodes[b].wait_peer(nodes[a].key)
        root = min(node.key for node in nodes)
        wait_until(lambda: all(tree_root(node) == root for node in nodes), 30, "one v0.5 tree")
        time.sleep(SETTLE)

    def test_v05_and_dual_crawls_and_their_maps(self) -> None:
        nodes = self.start_ring(GoNode05)
        crawler = nodes[0]
        # The v0.4 side: g4a to n0 and n2, g4b to g4a (v0.4 links: Go 0.4.7 speaks no other).
        g4a = self.go(
            "g4a",
            listen=["tcp://127.0.0.1:0"],
            peers=[nodes[0].listen_uri("tcp"), nodes[2].listen_uri("tcp")],
            nodeinfo={"name": "g4a"},
        )
        g4b = self.go("g4b", peers=[g4a.listen_uri("tcp")], nodeinfo={"name": "g4b"})
        self.wait_v05(nodes)
        for node in (nodes[0], nodes[2], g4b):
            g4a.wait_peer(node.key)
        v04 = [nodes[0], g4a, nodes[2], g4b]
        wait_until(
            lambda: sum(1 for n in v04 if n.ctl("getSelf")["coords"] == []) == 1,
            20,
            "one v0.4 tree",
        )
        self.assertIn("gettreecrawl", nodes[2].ctl("list", table=True))
        self.assertNotIn("gettreecrawl", nodes[4].ctl("list", table=True))

        # ygg crawl with no --network: both networks at once, and the SVG map.
        out_file = os.path.join(self.dir, "both.json")
        svg = os.path.join(self.dir, "both.svg")
        argv = [YGG, "crawl", "--endpoint", crawler.admin, "--out", out_file]
        done = run([*argv, "--interval", "0.2", "--map", svg], timeout=200)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "")
        self.assertIn("crawl v0.4: done: 4 nodes, 4 answered, 4 with NodeInfo", done.stderr)
        self.assertIn("crawl v0.5: done: 6 nodes, 6 answered, 6 with NodeInfo", done.stderr)
        self.assertIn("crawl: map of 8 nodes and 11 peerings in", done.stderr)
        with open(out_file) as f:
            dht, tree = json.load(f)

        # The v0.5 crawl, as getTreeCrawl gives it (the node's cache: the same crawl).
        self.assertEqual(crawler.ctl("getTreeCrawl", timeout=150), tree)
        report = tree["tree_crawl"]
        meta = report["meta"]
        self.assertEqual(
            (meta["nodes_attempted"], meta["nodes_successful"], meta["nodeinfo_successful"]),
            (6, 6, 6),
        )
        self.assertEqual((meta["version"], meta["crawler"]), ("0.5", crawler.key))
        self.assertEqual(sorted(report["topology"]), sorted(node.key for node in nodes))
        for i, node in enumerate(nodes):
            entry = report["topology"][node.key]
            self.assertTrue(entry["found"], node)
            self.assertEqual(entry["ipv6_addr"], node.address_text())
            own_peers = {r["key"] for r in node.peers() if r.get("version", "0.5") == "0.5"}
            self.assertEqual(set(entry["peers"]), own_peers, node)
            expected = {nodes[b if a == i else a].key for a, b in EDGES if i in (a, b)}
            self.assertEqual(set(entry["peers"]), expected, node)
            own_tree = {row["key"] for row in node.ctl("getTree")["tree"]}
            self.assertEqual(set(entry["tree"]), own_tree, node)
            entries = int(node.ctl("getSelf")["routing_entries"])
            self.assertEqual(entry["routing_entries"], entries, node)
            self.assertEqual(report["nodeinfo"][node.key]["name"], f"n{i}")
            self.assertNotIn("dht", entry)

        # The v0.4 crawl of the same node: its other network.
        report = dht["dht_crawl"]
        self.assertEqual(report["meta"]["version"], "0.4")
        self.assertEqual(sorted(report["topology"]), sorted(n.key for n in v04))
        for node in v04:
            entry = report["topology"][node.key]
            self.assertTrue(entry["found"], node)
            self.assertEqual(entry["coords"], node.ctl("getSelf")["coords"], node)
        self.assertEqual(
            {report["nodeinfo"][n.key]["name"] for n in v04}, {"n0", "g4a", "n2", "g4b"}
        )

        # The SVG: every node labelled, the dual nodes on both versions, the crawler ringed.
        root = ET.parse(svg).getroot()
        names = {n.key: f"n{i}" for i, n in enumerate(nodes)} | {g4a.key: "g4a", g4b.key: "g4b"}
        self.assertEqual(svg_labels(root), names)
        groups = {g.get("id"): g for g in root.iter(f"{SVG}g")}
        both = groups["nodes-v0.4+0.5-found"]
        self.assertEqual(len(list(both.iter(f"{SVG}use"))), 2)  # n0 and n2
        self.assertEqual(len(list(groups["nodes-v0.5-found"].iter(f"{SVG}use"))), 4)
        self.assertEqual(len(list(groups["nodes-v0.4-found"].iter(f"{SVG}use"))), 2)
        self.assertIn("crawler", groups)

        # The HTML page of the same live crawls (from the node's cache), in Chromium.
        chromium = require_tool("chromium")
        page = os.path.join(self.dir, "both.html")
        done = run([*argv[:4], "--map", page], timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("crawl: map of 8 nodes", done.stderr)
        with Chromium(chromium) as browser:
            browser.open(page)
            shown = browser.evaluate(
                """(() => ({
                  status: document.getElementById("status").textContent,
                  crawler: !!document.getElementById("crawler"),
                  titles: [...document.querySelectorAll('g[id^="node-"] > title')]
                    .map(t => t.textContent),
                }))()"""
            )
            self.assertEqual(shown["status"], "8 nodes shown")
            self.assertTrue(shown["crawler"])
            (n0_title,) = [t for t in shown["titles"] if t.startswith("n0\n")]
            self.assertIn("v0.4 and v0.5, the crawling node", n0_title)
            self.assertEqual(browser.errors, [], browser.messages)
