"""Autopeering for real, on loopback only: the lab's Go nodes stand in for the Internet.

Ours picks from a PeersFile of Go lab nodes — Debian's yggdrasil 0.4.7 and the 0.5.12
judge — and dead ports, probing each with the handshake of the version it wants: a node
running both versions keeps one peer of each, a v0.4 node one v0.4 peer; a peer that
refuses the version is quarantined (and logged once), and a stopped autopeer is replaced.

Nothing but 127.0.0.1 is dialled; the built-in public lists are never used here.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import YGG, require_go, require_go05
from tests.nodes import GoNode, GoNode05, Node, YggNode, remove_tree, short_tempdir, wait_until

#: The grace after an autopeer went, and the checks' period: replaced 30–40 s later.
GRACE = 30
#: How long an autopeer must stay up not to be quarantined.
SETTLE = 10


class SwitchedYggNode(YggNode):
    """Ours started with yggdrasil's flag spelling and the ``-autopeer`` switch."""

    def argv(self) -> list[str]:
        return [YGG, "-useconffile", self.config_path, "-loglevel", self.loglevel, "-autopeer"]


def dead_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on (bound once to find them, then closed)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class AutopeerInteropCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_go()
        self.dir = short_tempdir("yga")
        self.addCleanup(remove_tree, self.dir)

    def go(self, name: str) -> GoNode:
        node = GoNode(f"{self.dir}/{name}", listen=["tcp://127.0.0.1:0"])
        node.start()
        self.addCleanup(node.stop)
        return node

    def go05(self, name: str) -> GoNode05:
        node = GoNode05(f"{self.dir}/{name}", listen=["tcp://127.0.0.1:0"])
        node.start()
        self.addCleanup(node.stop)
        return node

    def peers_file(self, lines: list[str]) -> str:
        path = Path(self.dir, "peers.txt")
        path.write_text("# lab peers\n" + "\n".join(lines) + "\n")
        return str(path)

    def autopeers(self, ours: YggNode, candidates: list[Node]) -> dict[str, Node]:
        """Our links to the candidates, by version; at most one per version."""
        by_key = {node.key: node for node in candidates}
        found: dict[str, Node] = {}
        for row in ours.peers():
            if row["key"] in by_key:
                version = row.get("version", "0.4")
                self.assertNotIn(version, found, f"two v{version} autopeers: {ours.peers()}")
                found[version] = by_key[row["key"]]
        return found


class DualNodeTests(AutopeerInteropCase):
    def setUp(self) -> None:
        super().setUp()
        require_go05()

    def test_one_peer_of_each_version_quarantine_and_heal(self) -> None:
        go4a, go4b = self.go("go4a"), self.go("go4b")
        go5a, go5b = self.go05("go5a"), self.go05("go5b")
        dead = [f"tcp://127.0.0.1:{port}" for port in dead_ports(3)]
        uri = {node: node.listen_uri("tcp") for node in (go4a, go4b, go5a, go5b)}
        peers_file = self.peers_file(
            [
                dead[0],
                uri[go4a],  # untagged: probed for both versions, refuses v0.5
                f"{uri[go4b]} v0.5",  # tagged wrong, as a stale list would: refuses v0.5
                uri[go5a],  # untagged: refuses v0.4
                f"{uri[go5b]} v0.5",
                f"{dead[1]} v0.4",
                dead[2],
            ]
        )
        ours = YggNode(
            f"{self.dir}/ours",
            extra={"Autopeering": {"Enable": True, "PeersFile": peers_file}},
        )
        self.assertEqual(tuple(ours.config.get("ProtocolVersions", ("0.4", "0.5"))), ("0.4", "0.5"))
        ours.start()
        self.addCleanup(ours.stop)
        nodes: list[Node] = [go4a, go4b, go5a, go5b]

        chosen = wait_until(
            lambda: len(found := self.autopeers(ours, nodes)) == 2 and found,
            20,
            "one autopeer of each version",
        )
        self.assertIs(chosen["0.4"], go4a)  # the only v0.4 peer that answers v0.4
        first5 = chosen["0.5"]
        self.assertIn(first5, (go5a, go5b))
        go4a.wait_peer(ours.key, timeout=10)
        first5.wait_peer(ours.key, timeout=10)

        state = wait_until(
            lambda: (
                (s := ours.ctl("getAutopeer"))["networks"]["0.5"]["state"] == "connected"
                and s["networks"]["0.4"]["state"] == "connected"
                and s
            ),
            15,
            "getAutopeer: both connected",
        )
        self.assertEqual(state["networks"]["0.4"]["uri"], uri[go4a])
        self.assertEqual(state["networks"]["0.5"]["uri"], uri[first5])
        self.assertEqual(state["networks"]["0.4"]["answered"], 1)
        self.assertEqual(state["networks"]["0.5"]["answered"], 2)
        quarantined = {(q["uri"], q["version"]) for q in state["quarantined"]}
        self.assertEqual(
            quarantined,
            {(uri[go5a], "0.4"), (uri[go4a], "0.5"), (uri[go4b], "0.5")},
        )
        reasons = {(q["uri"], q["version"]): q["reason"] for q in state["quarantined"]}
        self.assertEqual(reasons[(uri[go4a], "0.5")], "remote speaks v0.4, not v0.5")
        self.assertEqual(reasons[(uri[go5a], "0.4")], "remote speaks v0.5, not v0.4")
        rows = {(r["version"], r["uri"]): r for r in state["measurements"]}
        for address in dead:
            for version in ("0.4", "0.5"):
                if (version, address) in rows:
                    self.assertIsNone(rows[(version, address)]["latency_ms"])
        self.assertIsNotNone(rows[("0.5", uri[go5b])]["latency_ms"])

        # The chosen 0.5.12 node stops: ours peers with the other one, 30–40 s later.  (Once
        # its link has been up for SETTLE: one that drops sooner is quarantined.)
        second5 = go5b if first5 is go5a else go5a
        wait_until(
            lambda: any(
                row["key"] == first5.key and row["uptime"] > SETTLE + 1 for row in ours.peers()
            ),
            SETTLE + 5,
            "the v0.5 autopeer to settle",
        )
        first5.stop()
        stopped = time.monotonic()
        wait_until(
            lambda: self.autopeers(ours, nodes).get("0.5") is second5,
            GRACE + 20,
            "ours to autopeer the other 0.5.12 node",
        )
        healed = time.monotonic() - stopped
        second5.wait_peer(ours.key, timeout=10)
        self.assertGreaterEqual(healed, GRACE - 1, ours.log)
        self.assertIs(self.autopeers(ours, nodes)["0.4"], go4a)  # v0.4 untouched

        state = ours.ctl("getAutopeer")
        self.assertEqual(state["networks"]["0.5"]["uri"], uri[second5])
        # The quarantined were not probed again, nor chosen; each was logged once.
        measured = {r["uri"] for r in state["measurements"] if r["version"] == "0.5"}
        self.assertNotIn(uri[go4a], measured)
        self.assertNotIn(uri[go4b], measured)
        self.assertIn(uri[first5], measured)  # down now, but not quarantined for it
        log = ours.log
        self.assertEqual(log.count("Autopeering: chose "), 3, log)
        for node in (go4a, go4b):
            self.assertNotIn(f"Autopeering: chose {uri[node]} for v0.5", log)
            self.assertEqual(log.count(f"{uri[node]} is not chosen for v0.5"), 1, log)
        self.assertNotIn(f"Autopeering: chose {uri[go5a]} for v0.4", log)
        self.assertEqual(log.count(f"{uri[go5a]} is not chosen for v0.4"), 1, log)


class V04NodeTests(AutopeerInteropCase):
    def test_peers_with_a_live_node_and_heals_when_it_stops(self) -> None:
        """A v0.4 node (``ProtocolVersions: ["0.4"]``, the ``-autopeer`` switch) chooses
        among v0.4 peers only: a 0.5.12 node in its list is quarantined."""
        require_go05()
        gos = [self.go(f"go{i}") for i in range(3)]
        go05 = self.go05("go05")
        dead = [f"tcp://127.0.0.1:{port}" for port in dead_ports(4)]
        live = [g.listen_uri("tcp") for g in gos]
        peers_file = self.peers_file([dead[0], *live, go05.listen_uri("tcp"), *dead[1:]])
        ours = SwitchedYggNode(
            f"{self.dir}/ours",
            versions=("0.4",),
            extra={"Autopeering": {"PeersFile": peers_file}},
        )
        ours.start()
        self.addCleanup(ours.stop)
        by_key = {g.key: g for g in gos}

        def autopeer() -> GoNode | None:
            keys = [k for k in ours.peer_keys() if k in by_key]
            self.assertLessEqual(len(keys), 1, "more than one autopeer")
            self.assertNotIn(go05.key, ours.peer_keys())
            return by_key[keys[0]] if keys else None

        first = wait_until(autopeer, 15, "ours to autopeer")
        first.wait_peer(ours.key, timeout=10)
        wait_until(
            lambda: any(r["key"] == first.key and r["uptime"] > SETTLE + 1 for r in ours.peers()),
            SETTLE + 5,
            "the autopeer to settle",
        )
        for other in gos:
            if other is not first:
                self.assertNotIn(ours.key, other.peer_keys())

        state = ours.ctl("getAutopeer")
        self.assertEqual(list(state["networks"]), ["0.4"])
        network = state["networks"]["0.4"]
        self.assertEqual(network["state"], "connected")
        self.assertEqual(network["uri"], first.listen_uri("tcp"))
        self.assertEqual(network["answered"], 3)
        measured = {row["uri"]: row["latency_ms"] for row in state["measurements"]}
        self.assertEqual(set(measured), set(live + dead + [go05.listen_uri("tcp")]))
        for uri in [*dead, go05.listen_uri("tcp")]:
            self.assertIsNone(measured[uri])
        for uri in live:
            self.assertIsNotNone(measured[uri])
        self.assertEqual(
            [(q["uri"], q["version"]) for q in state["quarantined"]],
            [(go05.listen_uri("tcp"), "0.4")],
        )
        self.assertIn(f"Autopeering: chose {first.listen_uri('tcp')} for v0.4 (", ours.log)

        first.stop()
        stopped = time.monotonic()
        second = wait_until(
            lambda: (node := autopeer()) is not None and node is not first and node,
            GRACE + 15,
            "ours to autopeer again",
        )
        healed = time.monotonic() - stopped
        second.wait_peer(ours.key, timeout=10)
        # The spec's grace: replaced 30–40 s after the peer went, not sooner.
        self.assertGreaterEqual(healed, GRACE - 1, ours.log)
        self.assertLess(healed, GRACE + 15)
        self.assertEqual(
            ours.ctl("getAutopeer")["networks"]["0.4"]["uri"], second.listen_uri("tcp")
        )
        self.assertEqual(ours.log.count("Autopeering: chose "), 2, ours.log)
        self.assertEqual(ours.log.count(" is not chosen for v0.4"), 1, ours.log)
