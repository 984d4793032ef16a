"""Links with the real yggdrasil 0.5.12: tcp, tls and unix each way, passwords, a v0.4 and a
v0.5 peer on one listener, a chain of Go 0.5 nodes through ours over TUNs, multicast.

Our side of a v0.5 link is read from our log (``Connected …``, and at debug level the v0.5
tree's root); the Go side from the 0.5.12 yggdrasilctl.  The namespace tests need root.
"""

from __future__ import annotations

import time

from tests.helpers import require_go, require_go05, require_root
from tests.nodes import GoNode, GoNode05, NetnsPair, YggNode, wait_until
from tests.test_interop_links import InteropCase

SCHEMES = ["tcp", "tls", "unix"]
WRONG = "password does not match remote side"


class V05Case(InteropCase):
    def setUp(self) -> None:
        super().setUp()
        require_go05()

    def go05(self, name: str, **kwargs) -> GoNode05:
        node = GoNode05(f"{self.dir}/{name}", loglevel="debug", **kwargs)
        node.start()
        self.addCleanup(node.stop)
        return node

    def ours(self, name: str, **kwargs) -> YggNode:
        kwargs.setdefault("loglevel", "debug")
        kwargs.setdefault("versions", ("0.4", "0.5"))  # the default of a real node
        return super().ours(name, **kwargs)

    def assert_same_root(self, go: GoNode05, ours: YggNode) -> None:
        """Both see one tree: Go's root (from getTree) is the one we logged last."""
        wait_until(
            lambda: go.tree_root() == ours.v05_root() == min(go.key, ours.key),
            20,
            "one v0.5 tree root on both sides",
        )


class BothWaysTests(V05Case):
    def test_tcp_tls_unix_each_side_dialling(self) -> None:
        """Six v0.5 links between a 0.5.12 node and ours: tcp, tls and unix, each side
        dialling; Go lists all six, both agree on the root, and none drops for a while
        (v0.5 keepalives are the router's)."""
        go = self.go05("go", listen=self.listeners("go"))
        ours = self.ours(
            "ours", listen=self.listeners("ours"), peers=[go.listen_uri(s) for s in SCHEMES]
        )
        for scheme in SCHEMES:
            go.ctl("addPeer", f"uri={ours.listen_uri(scheme)}")
        rows = go.wait_peer(ours.key, count=6)
        self.assertTrue(all(r["up"] for r in rows), rows)
        outbound = sorted(r["remote"] for r in rows if not r["inbound"])
        self.assertEqual(outbound, sorted(ours.listen_uri(s) for s in SCHEMES))
        inbound = sorted(r["remote"].split("://")[0] for r in rows if r["inbound"])
        self.assertEqual(inbound, SCHEMES)
        self.assertEqual({r["port"] for r in rows}, {rows[0]["port"]})  # one key, one port
        self.assert_same_root(go, ours)
        wait_until(lambda: ours.log.count("Connected ") == 6, 10, "our six links up")

        time.sleep(8)  # past the 3 s read deadline several times over
        rows = [p for p in go.peers() if p["key"] == ours.key]
        self.assertEqual(len(rows), 6)
        self.assertTrue(all(r["uptime"] >= 7 for r in rows), rows)
        self.assertNotIn("Disconnected", ours.log)
        self.assertNotIn("Disconnected", go.log)

    def test_password_right_links_wrong_is_refused_both_sides(self) -> None:
        go = self.go05("go", listen=["tcp://127.0.0.1:0?password=sesame"])
        secured_uri = go.listen_uri("tcp")
        secured = secured_uri.split("://")[1]
        ours = self.ours(
            "ours",
            listen=["tcp://127.0.0.1:0?password=opensesame"],
            peers=[f"{secured_uri}?password=sesame"],
        )
        go.wait_peer(ours.key)

        # Ours dials with the wrong password: refused, with Go's text on both sides.
        bad = self.ours("bad", peers=[f"{secured_uri}?password=wrong"])
        wait_until(lambda: f"{WRONG}" in bad.log, 20, "our refusal of the wrong password")
        self.assertIn(f"Failed to dial TCP {secured}: {WRONG}", bad.log)
        wait_until(lambda: f"error: {WRONG}" in go.log, 20, "Go's refusal")
        self.assertNotIn(bad.key, go.peer_keys())

        # Go dials ours with the wrong password, then the right one.
        ours_uri = ours.listen_uri("tcp")
        go.ctl("addPeer", f"uri={ours_uri}?password=sesame")
        wait_until(
            lambda: any(WRONG in p.get("last_error", "") for p in go.peers() if not p["up"]),
            20,
            "Go's getPeers to show the refusal",
        )
        wait_until(lambda: f"): {WRONG}" in ours.log, 20, "our refusal of Go's dial")
        # Go's peer identity leaves out the query: the wrong entry goes first.
        go.ctl("removePeer", f"uri={ours_uri}?password=sesame")
        go.ctl("addPeer", f"uri={ours_uri}?password=opensesame")
        wait_until(
            lambda: sum(p["up"] for p in go.peers() if p["key"] == ours.key) == 2,
            20,
            "the second link, with the right password",
        )


class YggToYggTests(V05Case):
    def test_two_dual_nodes_agree_on_v05_and_a_v05_only_node_peers_with_go(self) -> None:
        a = self.ours("a", listen=["tcp://127.0.0.1:0"])
        b = self.ours("b", peers=[a.listen_uri("tcp")])
        root = min(a.key, b.key)
        wait_until(
            lambda: a.v05_root() == b.v05_root() == root, 20, "one v0.5 tree of two ygg nodes"
        )
        # getPeers lists the links of both versions, each with its version (docs/admin.md)
        self.assertEqual([(p["key"], p["version"]) for p in a.peers()], [(b.key, "0.5")])
        self.assertIn("Connected outbound TCP", b.log)

        go = self.go05("go", listen=["tls://127.0.0.1:0"])
        only = self.ours("only", versions=("0.5",), peers=[go.listen_uri("tls")])
        go.wait_peer(only.key)
        self.assert_same_root(go, only)


class DualVersionTests(V05Case):
    def setUp(self) -> None:
        super().setUp()
        require_go()

    def test_one_listener_holds_a_v04_and_a_v05_peer(self) -> None:
        """One Listen port: a 0.4.7 node and a 0.5.12 node both dial it; and ours dials
        both kinds of listener without being told their version."""
        ours = self.ours("ours", listen=["tcp://127.0.0.1:0", "tls://127.0.0.1:0"])
        old = GoNode(
            f"{self.dir}/old", peers=[ours.listen_uri("tcp")], listen=["tls://127.0.0.1:0"]
        )
        old.start()
        self.addCleanup(old.stop)
        new = self.go05("new", peers=[ours.listen_uri("tcp")], listen=["tls://127.0.0.1:0"])
        old.wait_peer(ours.key)
        new.wait_peer(ours.key)
        ours.wait_peer(old.key)  # our getPeers lists the v0.4 links

        ours.ctl("addPeer", f"uri={old.listen_uri('tls')}")
        ours.ctl("addPeer", f"uri={new.listen_uri('tls')}")
        old.wait_peer(ours.key, count=2)
        new.wait_peer(ours.key, count=2)
        self.assertEqual(len([p for p in new.peers() if p["key"] == ours.key and p["up"]]), 2)
        self.assert_same_root(new, ours)


class ChainTests(V05Case):
    def test_go05_a_reaches_go05_b_through_ours(self) -> None:
        """Go 0.5 A — ours — Go 0.5 B, A and B with TUNs in two namespaces: A's getNodeInfo
        of B and A's ping of B go through ours; after our link to B is removed and added
        again, A reaches B again."""
        require_root()
        pair = NetnsPair("y5c").up()
        self.addCleanup(pair.down)
        b = self.go05(
            "b",
            netns=pair.b,
            tun="ygg0",
            listen=[f"tcp://[{pair.IP_B}]:14001"],
            nodeinfo={"name": "go05-b"},
        )
        b_uri = f"tcp://[{pair.IP_B}]:14001"
        ours = self.ours("ours", netns=pair.a, listen=["tcp://127.0.0.1:0"], peers=[b_uri])
        a = self.go05("a", netns=pair.a, tun="ygg0", peers=[ours.listen_uri("tcp")])
        a.wait_peer(ours.key)
        b.wait_peer(ours.key)
        self.assertNotIn(b.key, a.peer_keys())
        b_address = b.ctl("getSelf")["address"]

        def reaches_b() -> None:
            info = wait_until(
                lambda: a.ctl("getNodeInfo", f"key={b.key}"), 60, "A's getNodeInfo of B"
            )
            self.assertEqual(info[b.key]["name"], "go05-b")
            wait_until(
                lambda: pair.exec(pair.a, "ping", "-6", "-c1", "-W2", b_address).returncode == 0,
                40,
                "A's ping of B over the TUNs",
            )
            done = pair.exec(pair.a, "ping", "-6", "-c3", "-W3", b_address, timeout=30)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

        reaches_b()
        ours.ctl("removePeer", f"uri={b_uri}")
        wait_until(lambda: ours.key not in b.peer_keys(), 20, "our link to B gone")
        ours.ctl("addPeer", f"uri={b_uri}")
        b.wait_peer(ours.key)
        reaches_b()
        self.assertNotIn(b.key, a.peer_keys())


class MulticastTests(V05Case):
    """A 0.5.12 node and ours in two namespaces joined by a veth find each other."""

    def setUp(self) -> None:
        super().setUp()
        require_root()
        self.pair = NetnsPair("y5m").up()
        self.addCleanup(self.pair.down)

    def found(self, *, go_beacon: bool, our_beacon: bool, password: str = "") -> None:
        pair = self.pair
        go = self.go05(
            "go",
            netns=pair.a,
            multicast=pair.IFACE,
            beacon=go_beacon,
            multicast_password=password,
        )
        ours = self.ours(
            "ours",
            netns=pair.b,
            multicast=pair.IFACE,
            beacon=our_beacon,
            multicast_password=password,
        )
        rows = go.wait_peer(ours.key, timeout=30)
        self.assertTrue(rows[0]["up"], rows)
        self.assertTrue(rows[0]["remote"].startswith("tls://[fe80::"), rows)
        wait_until(
            lambda: f"{go.address_text()}@" in ours.log and "Connected" in ours.log,
            10,
            "our log of the link",
        )
        self.assert_same_root(go, ours)

    def test_both_beacon(self) -> None:
        self.found(go_beacon=True, our_beacon=True)

    def test_go_beacons_ours_dials(self) -> None:
        self.found(go_beacon=True, our_beacon=False)

    def test_ours_beacons_go_dials(self) -> None:
        self.found(go_beacon=False, our_beacon=True)

    def test_with_password_both_beacon(self) -> None:
        self.found(go_beacon=True, our_beacon=True, password="sesame")

    def test_with_password_go_beacons(self) -> None:
        self.found(go_beacon=True, our_beacon=False, password="sesame")

    def test_with_password_ours_beacons(self) -> None:
        self.found(go_beacon=False, our_beacon=True, password="sesame")

    def test_different_passwords_never_link(self) -> None:
        pair = self.pair
        go = self.go05("go", netns=pair.a, multicast=pair.IFACE, multicast_password="one")
        ours = self.ours("ours", netns=pair.b, multicast=pair.IFACE, multicast_password="two")
        time.sleep(6)  # several beacons each way
        self.assertNotIn(ours.key, go.peer_keys())
        self.assertNotIn("Connected", ours.log)
