"""``ygg crawl --map``: the crawl read as nodes and peerings, and the pictures drawn from
it (.svg, .png, .html), from a crawl of a simulated 50-node network.

The crawl is the real walk (``Crawler``) over the routers of a converged ``ygg.sim``
network, as in tests/test_crawler.py: deterministic, no node, no socket.  The drawing
needs the ``map`` extra (networkx, matplotlib; the test extra has them) and the page is
opened in Debian's headless Chromium (tests/browser.py), which must find no error in it.

``python -m tests.test_crawler_map docs/crawl-map.svg`` redraws the picture in
docs/crawler.md from the same simulated crawl.
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from unittest import mock

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from tests.browser import Chromium
from tests.helpers import require_tool
from ygg import gojson
from ygg.core.proto import go_coords
from ygg.popura.crawler import command as cli
from ygg.popura.crawler import map as crawl_map
from ygg.popura.crawler.service import Crawler
from ygg.sim.network import SimNetwork

N = 50
ROOT = Path(__file__).parent.parent
ROOT_README = ROOT / "README.md"
SVG = "{http://www.w3.org/2000/svg}"

#: NodeInfo names, some of them awkward: mathtext dollars, markup, non-ASCII, too long.
SPECIAL_NAMES = {
    3: "cost $5 $ node",
    5: "<b>tag</b> & co",
    8: "Zürich – ü",
    9: "a-very-long-name-that-will-not-fit-on-the-map.example.net",
    10: "tab\tand\nnewline",
}


def mesh_edges(n: int, seed: int) -> list[tuple[int, int]]:
    """A network like the public one: each node joins by peering with one earlier node,
    the well-connected more likely, and the first dozen are meshed among themselves."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    degree = [0] * n
    for i in range(1, n):
        j = rng.choices(range(i), [degree[k] + 1 for k in range(i)])[0]
        edges.add((j, i))
        degree[i] += 1
        degree[j] += 1
    while len(edges) < n - 1 + n // 5:
        a, b = sorted(rng.sample(range(min(n, 12)), 2))
        edges.add((a, b))
    return sorted(edges)


def node_name(index: int, odd: bool) -> str | None:
    """Every seventh node has no name (the map shows its key); with ``odd``, a few have
    awkward ones."""
    if index % 7 == 0:
        return None
    return SPECIAL_NAMES.get(index) if odd and index in SPECIAL_NAMES else f"node-{index:02d}"


class SimulatedRouters:
    """An ``INode`` whose remote answers come from a simulated network's routers."""

    def __init__(self, net: SimNetwork, me: int, odd_names: bool) -> None:
        self.net = net
        self.reactor = net.clock
        self.public_key = net.nodes[me].public
        self.odd_names = odd_names

    def _answer(self, key: bytes, read: Any) -> Deferred:
        d: Deferred = Deferred()
        node = self.net.by_key[key]
        self.reactor.callLater(0.05, lambda: d.callback(read(node.router, node.index)))
        return d

    def remote_get_self(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(
            key, lambda r, i: {"key": key.hex(), "coords": go_coords(r.get_self().coords)}
        )

    def remote_get_peers(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(key, lambda r, i: [p.key for p in r.get_peers()])

    def remote_get_dht(self, key: bytes, version: str | None = None) -> Deferred:
        return self._answer(key, lambda r, i: [d.key for d in r.get_dht()])

    def get_node_info(self, key: bytes, version: str | None = None) -> Deferred:
        def info(router: Any, index: int) -> dict[str, Any]:
            name = node_name(index, self.odd_names)
            return {"buildname": "ygg"} if name is None else {"name": name}

        return self._answer(key, info)


@functools.cache
def simulated_crawl_text(odd_names: bool = True) -> tuple[str, str, int]:
    """getDHTCrawl's result (as JSON text) from node 0 of a converged simulated
    50-node network, node 0's key, and the network's number of links."""
    edges = mesh_edges(N, seed=5)
    net = SimNetwork.from_edges(N, edges, seed=5)
    net.run_until(net.converged, timeout=300, settle=1.0)
    results: list[Any] = []
    walk = Crawler(SimulatedRouters(net, 0, odd_names), rng=random.Random(0)).crawl()
    walk.addCallback(results.append)
    while not results:
        net.run(0.05)
    return gojson.dumps(results[0], indent=2), net.nodes[0].public.hex(), len(edges)


def simulated_crawl() -> tuple[dict[str, Any], str, int]:
    text, me, links = simulated_crawl_text()
    return json.loads(text), me, links


def v05_network(shared: str, size: int = 12, seed: int = 2) -> dict[str, Any]:
    """A v0.5 crawl as the v0.5 crawler will give it (the same shape per node, plus a
    version and tree entries instead of DHT ones), of a small tree of nodes whose root
    is ``shared`` (ygg, on both networks with one key)."""
    rng = random.Random(seed)
    keys = [shared] + [rng.randbytes(32).hex() for _ in range(size - 1)]
    peers: dict[str, list[str]] = {k: [] for k in keys}
    for i in range(1, size):
        j = rng.randrange(i)
        peers[keys[i]].append(keys[j])
        peers[keys[j]].append(keys[i])
    topology = {
        key: {"version": "0.5", "coords": [], "found": True, "peers": peers[key], "tree": keys}
        for key in keys
    }
    infos = {key: {"name": f"five-{i}"} for i, key in enumerate(keys) if i}
    return {"tree_crawl": {"meta": {"version": "0.5"}, "topology": topology, "nodeinfo": infos}}


# -- the crawl as nodes and peerings -----------------------------------------------------------


class CrawlMapTests(SynchronousTestCase):
    def test_the_simulated_crawl(self) -> None:
        result, me, links = simulated_crawl()
        self.assertEqual(result["dht_crawl"]["meta"]["nodes_successful"], N)
        cmap = crawl_map.crawl_map([result], crawler=me)
        self.assertEqual(len(cmap.nodes), N)
        self.assertEqual(len(cmap.edges), links)
        self.assertEqual(cmap.versions(), {"0.4": N})
        self.assertEqual(cmap.crawler, cmap.nodes[me])
        self.assertTrue(all(n.found for n in cmap.nodes.values()))
        labels = [n.label for n in cmap.nodes.values()]
        self.assertEqual(len(set(labels)), N)
        self.assertIn("node-01", labels)
        self.assertIn("cost $5 $ node", labels)
        self.assertIn("tab and newline", labels)
        self.assertIn("a-very-long-name-that-will-…", labels)
        self.assertEqual(cmap.nodes[me].label, me[:8])  # node 0 has no name

    def test_short_keys_are_told_apart(self) -> None:
        keys = ["00000000aa" + "0" * 54, "00000000ab" + "0" * 54, "11111111" + "2" * 56]
        topology = {k: {"found": True, "peers": [keys[0]] if k != keys[0] else []} for k in keys}
        cmap = crawl_map.crawl_map([{"dht_crawl": {"topology": topology}}])
        self.assertEqual(
            [cmap.nodes[k].label for k in keys], ["00000000aa", "00000000ab", "11111111"]
        )

    def test_missing_fields_and_other_shapes(self) -> None:
        """Whatever a result leaves out, the map takes what is there."""
        a, b, c, d = (ch * 64 for ch in "abcd")
        results = [
            # An admin reply around a result, entries with no found, lists or NodeInfo.
            {
                "status": "success",
                "response": {
                    "dht_crawl": {
                        "topology": {a: {"peers": [b, {"key": c}, 5, None, a]}, b: {}},
                        "nodeinfo": {a: {"name": 7}},
                    }
                },
            },
            # A list of entries, the version on each, NodeInfo inside the entry.
            {
                "crawl": {
                    "topology": [
                        {"key": d, "version": "v0.5", "peers": [a], "nodeinfo": {"name": "D"}},
                        {"version": "0.5"},
                        "junk",
                    ]
                }
            },
        ]
        cmap = crawl_map.crawl_map(results, crawler="A" * 64)
        self.assertEqual(sorted(cmap.nodes), [a, b, c, d])
        self.assertEqual(cmap.edges, {(a, b), (a, c), (a, d)})
        self.assertEqual(cmap.nodes[a].version, "0.4+0.5")
        self.assertEqual((cmap.nodes[b].version, cmap.nodes[b].found), ("0.4", False))
        self.assertEqual(cmap.nodes[d].version, "0.5")
        self.assertEqual(cmap.nodes[d].label, "D")
        self.assertTrue(cmap.nodes[a].found)
        self.assertTrue(cmap.nodes[a].crawler)
        # A network that says nothing of its version.
        unknown = crawl_map.crawl_map([{"topology": {a: {"found": True}}}])
        self.assertEqual(unknown.versions(), {"?": 1})
        for bad in ({}, {"dht_crawl": {}}, [], "text", {"topology": 5}):
            self.assertRaises(crawl_map.MapError, crawl_map.crawl_map, [bad])
        self.assertRaises(crawl_map.MapError, crawl_map.check_results, [results[0], {}])

    def test_two_networks_share_the_crawling_node(self) -> None:
        result, me, _ = simulated_crawl()
        cmap = crawl_map.crawl_map([result, v05_network(me)], crawler=me)
        self.assertEqual(cmap.versions(), {"0.4": N - 1, "0.4+0.5": 1, "0.5": 11})
        self.assertEqual(cmap.nodes[me].version, "0.4+0.5")

    def test_names(self) -> None:
        self.assertEqual(crawl_map.clean_name({"name": "  a\x00b\u200bc  "}), "a b c")
        self.assertIsNone(crawl_map.clean_name({"name": " \n "}))
        self.assertIsNone(crawl_map.clean_name({"name": ["x"]}))
        self.assertIsNone(crawl_map.clean_name("name"))
        self.assertEqual(len(crawl_map.clean_name({"name": "x" * 500}) or ""), 28)


# -- the pictures ----------------------------------------------------------------------------


def svg_labels(root: ET.Element) -> dict[str, str]:
    """Each node's label text in a map's SVG, by key."""
    labels = {}
    for group in root.iter(f"{SVG}g"):
        gid = group.get("id", "")
        if gid.startswith("node-"):
            texts = list(group.iter(f"{SVG}text"))
            labels[gid[5:]] = "".join("".join(t.itertext()) for t in texts)
    return labels


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError("not a PNG")
    return struct.unpack(">II", data[16:24])


class PictureTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ygg-map-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.result, self.me, self.links = simulated_crawl()
        self.cmap = crawl_map.crawl_map([self.result], crawler=self.me)

    def test_svg_has_every_label_and_the_mark(self) -> None:
        path = self.dir / "map.svg"
        crawl_map.write_map([self.result], path, crawler=self.me)
        root = ET.parse(path).getroot()
        labels = svg_labels(root)
        self.assertEqual(len(labels), N)
        self.assertEqual(labels, {k: n.label for k, n in self.cmap.nodes.items()})
        marks = [g for g in root.iter(f"{SVG}g") if g.get("id") == "crawler"]
        self.assertEqual(len(marks), 1)
        self.assertTrue(list(marks[0].iter(f"{SVG}path")) + list(marks[0].iter(f"{SVG}use")))
        text = path.read_text()
        self.assertIn(f"{N} nodes ({N} on v0.4), {self.links} peerings", text)
        self.assertIn("crawling node", text)
        # The same crawl draws the same file.
        again = self.dir / "again.svg"
        crawl_map.write_map([self.result], again, crawler=self.me)
        self.assertEqual(again.read_bytes(), path.read_bytes())

    def test_the_layout_does_not_depend_on_the_hash_seed(self) -> None:
        """The docs picture is redrawn in other processes: the same crawl, the same map."""
        code = (
            "import json; from tests.test_crawler_map import simulated_crawl; "
            "from ygg.popura.crawler import map as m; r, me, _ = simulated_crawl(); "
            "pos = m.layout(m.crawl_map([r], me)); "
            "print(json.dumps({k: [round(x, 9), round(y, 9)] for k, (x, y) in pos.items()}))"
        )
        layouts = []
        for seed in ("1", "2"):
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                env={**os.environ, "PYTHONHASHSEED": seed},
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(done.returncode, 0, done.stderr)
            layouts.append(json.loads(done.stdout))
        self.assertEqual(len(layouts[0]), N)
        self.assertEqual(layouts[0], layouts[1])

    def test_nodes_that_did_not_answer_are_hollow(self) -> None:
        topology = self.result["dht_crawl"]["topology"]
        silent = sorted(k for k in topology if k != self.me)[:3]
        for key in silent:
            topology[key].update(found=False, coords=[], peers=[], dht=[])
        path = self.dir / "silent.svg"
        drawn = crawl_map.write_map([self.result], path, crawler=self.me)
        self.assertEqual(sum(not n.found for n in drawn.nodes.values()), 3)
        root = ET.parse(path).getroot()
        groups = {g.get("id"): g for g in root.iter(f"{SVG}g")}
        self.assertEqual(len(list(groups["nodes-v0.4-silent"].iter(f"{SVG}use"))), 3)
        self.assertEqual(len(svg_labels(root)), N)
        self.assertIn("3 did not answer", path.read_text())
        everyone = self.dir / "everyone.svg"
        crawl_map.write_map([simulated_crawl()[0]], everyone)
        self.assertNotIn("did not answer", everyone.read_text())  # no legend entry for none

    def test_png(self) -> None:
        path = self.dir / "map.png"
        crawl_map.write_map([self.result, v05_network(self.me)], path, crawler=self.me)
        width, height = png_size(path.read_bytes())
        self.assertTrue(500 <= width <= 3000 and 500 <= height <= 3000, (width, height))
        self.assertGreater(path.stat().st_size, 20_000)

    def test_html_opens_in_chromium_without_errors(self) -> None:
        chromium = require_tool("chromium")
        path = self.dir / "map.html"
        crawl_map.write_map([self.result], path, crawler=self.me)
        page = path.read_text()
        for outside in (r"<script[^>]* src", r"<link", r"<img", r"url\((?!#)", r"@import"):
            self.assertNotRegex(page, outside)
        with Chromium(chromium) as browser:
            browser.open(path)
            shown = browser.evaluate(
                """(() => {
                  const inside = r => r.width > 0 && r.right > 0 && r.bottom > 0 &&
                    r.left < innerWidth && r.top < innerHeight;
                  const labels = [...document.querySelectorAll('g[id^="node-"]')];
                  return {
                    status: document.getElementById("status").textContent,
                    labels: labels.length,
                    visible: labels.filter(g => inside(g.getBoundingClientRect())).length,
                    titled: labels.filter(g => g.querySelector("title")).length,
                    crawler: !!document.getElementById("crawler"),
                    view: document.querySelector("#map svg").getAttribute("viewBox"),
                  };
                })()"""
            )
            self.assertEqual(shown["status"], f"{N} nodes shown")
            self.assertEqual((shown["labels"], shown["visible"], shown["titled"]), (N, N, N), shown)
            self.assertTrue(shown["crawler"])
            # Zoom in with the wheel, then 0 goes back.
            zoomed = browser.evaluate(
                """(() => {
                  const box = document.getElementById("map");
                  const r = box.getBoundingClientRect();
                  box.dispatchEvent(new WheelEvent("wheel", {deltaY: -500, bubbles: true,
                    cancelable: true, clientX: r.left + r.width / 2,
                    clientY: r.top + r.height / 2}));
                  const after = document.querySelector("#map svg").getAttribute("viewBox");
                  document.dispatchEvent(new KeyboardEvent("keydown", {key: "0"}));
                  return [after, document.querySelector("#map svg").getAttribute("viewBox")];
                })()"""
            )
            self.assertLess(float(zoomed[0].split()[2]), float(shown["view"].split()[2]))
            for reset, home in zip(zoomed[1].split(), shown["view"].split(), strict=True):
                self.assertAlmostEqual(float(reset), float(home), places=3)
            self.assertEqual(browser.errors, [], browser.messages)
            self.assertEqual(browser.messages, [])

    def test_the_browser_check_sees_errors(self) -> None:
        """The check above would fail on a broken page."""
        chromium = require_tool("chromium")
        path = self.dir / "broken.html"
        path.write_text(
            "<!DOCTYPE html><html><body><img src='missing.png'>"
            "<script>console.error('seen'); nothing();</script></body></html>"
        )
        with Chromium(chromium) as browser:
            browser.open(path)
            browser.evaluate("1")
        joined = "\n".join(browser.errors)
        self.assertIn("console.error: seen", joined)
        self.assertIn("nothing is not defined", joined)
        self.assertIn("missing.png", joined)


# -- ygg crawl --map ---------------------------------------------------------------------------


class CommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ygg-map-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        text, self.me, self.links = simulated_crawl_text()
        self.saved = self.dir / "crawl.json"
        self.saved.write_text(text)

    def run_cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def test_map_from_a_saved_crawl(self) -> None:
        for suffix in ("svg", "png", "html"):
            picture = self.dir / f"map.{suffix}"
            code, out, err = self.run_cli(
                "--from", str(self.saved), "--crawler", self.me, "--map", str(picture)
            )
            self.assertEqual(code, 0, err)
            self.assertEqual(out, "")
            self.assertEqual(
                err, f"crawl: map of {N} nodes and {self.links} peerings in {picture}\n"
            )
            self.assertGreater(picture.stat().st_size, 10_000)

    def test_json_still_prints_the_crawl(self) -> None:
        code, out, err = self.run_cli(
            "--from", str(self.saved), "--map", str(self.dir / "m.svg"), "--json"
        )
        self.assertEqual(code, 0, err)
        self.assertEqual(out, self.saved.read_text() + "\n")
        code, out, _ = self.run_cli("--from", str(self.saved))
        self.assertEqual((code, out), (0, self.saved.read_text() + "\n"))

    def test_two_saved_crawls(self) -> None:
        other = self.dir / "v05.json"
        other.write_text(json.dumps([v05_network(self.me)]))
        picture = self.dir / "both.svg"
        code, _, err = self.run_cli(
            "--from", str(self.saved), "--from", str(other), "--map", str(picture)
        )
        self.assertEqual(code, 0, err)
        self.assertIn(f"map of {N + 11} nodes", err)
        self.assertIn("on v0.4 and v0.5", picture.read_text())

    def test_errors_are_one_line(self) -> None:
        cases = [
            (("--from", str(self.saved), "--map", str(self.dir / "m.jpg")), "must end in .svg"),
            (("--from", str(self.dir / "nope.json"), "--map", "m.svg"), "cannot read"),
            (("--from", str(ROOT_README), "--map", str(self.dir / "m.svg")), "cannot read"),
        ]
        bad = self.dir / "bad.json"
        bad.write_text('{"dht_crawl": {}}')
        cases.append((("--from", str(bad), "--map", str(self.dir / "m.svg")), "not a crawl"))
        for argv, words in cases:
            code, out, err = self.run_cli(*argv)
            self.assertEqual((code, out), (1, ""), argv)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertTrue(err.startswith("ygg crawl: ") and words in err, err)
        code, _, err = self.run_cli(
            "--from", str(self.saved), "--crawler", "ff" * 32, "--map", str(self.dir / "m.svg")
        )
        self.assertEqual(code, 0)
        self.assertIn(f"the crawling node {'ff' * 32} is not in the crawl", err)

    def test_missing_libraries_say_which_extra(self) -> None:
        """Checked before any crawl: nothing is asked of the node."""
        for missing in ("networkx", "matplotlib"):
            with mock.patch.dict(sys.modules, {missing: None}):
                code, out, err = self.run_cli(
                    "--endpoint", "unix:///nonexistent", "--map", str(self.dir / "m.svg")
                )
            self.assertEqual((code, out), (1, ""))
            self.assertEqual(
                err, f"ygg crawl: drawing a map needs {missing}: pip install 'ygg[map]'\n"
            )

    def test_the_crawling_node_from_get_self(self) -> None:
        answers: dict[str, Any] = {}

        def call(endpoint: str, name: str, *args: Any, **kwargs: Any) -> Any:
            if isinstance(answers.get(name), Exception):
                raise answers[name]
            return answers.get(name)

        self.patch(cli, "call", call)
        answers["getSelf"] = {"key": self.me, "address": "200::1"}  # ygg's, 0.5's
        self.assertEqual(cli.crawler_key("e"), self.me)
        answers["getSelf"] = {"self": {"200::1": {"key": self.me, "coords": "[1]"}}}  # 0.4's
        self.assertEqual(cli.crawler_key("e"), self.me)
        answers["getSelf"] = cli.AdminClientError("Unknown action")
        self.assertIsNone(cli.crawler_key("e"))
        answers["getSelf"] = ["nonsense"]
        self.assertIsNone(cli.crawler_key("e"))

    def test_map_of_a_live_crawl(self) -> None:
        """The crawl's meta names the crawling node, which the map marks; a node whose
        crawl does not is asked its key (getSelf)."""
        asked: list[str] = []
        result = json.loads(self.saved.read_text())
        self.assertEqual(result["dht_crawl"]["meta"]["crawler"], self.me)

        def call(endpoint: str, name: str, *args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            return {"key": self.me}

        def crawl(endpoint: str, err: Any, **kwargs: Any) -> Any:
            asked.append("getDHTCrawl")
            return [result]

        self.patch(cli, "call", call)
        self.patch(cli, "crawl", crawl)
        for old_node in (False, True):
            if old_node:
                del result["dht_crawl"]["meta"]["crawler"]
            asked.clear()
            picture = self.dir / "live.svg"
            code, out, err = self.run_cli("--endpoint", "unix:///x", "--map", str(picture))
            self.assertEqual(code, 0, err)
            expected = ["list", "getDHTCrawl"] + (["getSelf"] if old_node else [])
            self.assertEqual(asked, expected)
            self.assertEqual(out, "")
            self.assertIn("crawl: done: 50 nodes", err)
            root = ET.parse(picture).getroot()
            marks = [g for g in root.iter(f"{SVG}g") if g.get("id") == "crawler"]
            self.assertEqual(len(marks), 1)


def main(argv: list[str]) -> int:
    """Draw the simulated crawl into argv[0] (the picture in docs/crawler.md)."""
    if len(argv) != 1:
        print("usage: python -m tests.test_crawler_map PICTURE", file=sys.stderr)
        return 2
    text, me, _ = simulated_crawl_text(odd_names=False)
    directory = tempfile.mkdtemp(prefix="ygg-map-")
    try:
        saved = os.path.join(directory, "crawl.json")
        with open(saved, "w") as f:
            f.write(text)
        return cli.main(["--from", saved, "--crawler", me, "--map", argv[0]])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
