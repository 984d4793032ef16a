"""ygg on real links with the real Go node (Debian's yggdrasil 0.4.7), as processes.

Everything stays on loopback (or in namespaces the multicast test makes).  Both nodes are
read with the Go node's own yggdrasilctl.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import require_go, require_root, require_tool
from tests.nodes import GoNode, NetnsPair, YggNode, remove_tree, short_tempdir, wait_until
from ygg.links.handshake import encode_meta
from ygg.network import wire

SCHEMES = ("tcp", "tls", "unix")


class InteropCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_go()
        self.dir = short_tempdir("ygi")
        self.addCleanup(remove_tree, self.dir)

    def go(self, name: str, **kwargs) -> GoNode:
        node = GoNode(f"{self.dir}/{name}", **kwargs)
        node.start()
        self.addCleanup(node.stop)
        return node

    def ours(self, name: str, **kwargs) -> YggNode:
        node = YggNode(f"{self.dir}/{name}", **kwargs)
        node.start()
        self.addCleanup(node.stop)
        return node

    def listeners(self, name: str) -> list[str]:
        return ["tcp://127.0.0.1:0", "tls://127.0.0.1:0", f"unix://{self.dir}/{name}.peer.sock"]


class BothWaysTests(InteropCase):
    def test_tcp_tls_unix_each_side_dialling(self) -> None:
        """Six links between one Go node and ours: tcp, tls and unix, each side dialling.
        Both list all of them, agree on the root, and keep them up past several keepalive
        periods without a reconnect."""
        go = self.go("go", listen=self.listeners("go"))
        ours = self.ours(
            "ours", listen=self.listeners("ours"), peers=[go.listen_uri(s) for s in SCHEMES]
        )
        for scheme in SCHEMES:
            go.ctl("addPeer", f"uri={ours.listen_uri(scheme)}")
        go_rows = go.wait_peer(ours.key, count=6)
        our_rows = ours.wait_peer(go.key, count=6)

        go_remotes = sorted(r["remote"].split("://")[0] for r in go_rows)
        our_remotes = sorted(r["remote"].split("://")[0] for r in our_rows)
        self.assertEqual(go_remotes, sorted(SCHEMES * 2))
        self.assertEqual(our_remotes, sorted(SCHEMES * 2))
        # The links we dialled carry the URI we dialled, as the Go node names them.
        for scheme in SCHEMES:
            self.assertIn(go.listen_uri(scheme).split("?")[0], [r["remote"] for r in our_rows])

        go_self, our_self = go.ctl("getSelf"), ours.ctl("getSelf")
        root = min(go.key, ours.key)
        root_node, other = (go, ours) if root == go.key else (ours, go)
        self.assertEqual(root_node.ctl("getSelf")["coords"], [])
        other_coords = other.ctl("getSelf")["coords"]
        self.assertEqual(len(other_coords), 1)
        other_ports = [p["port"] for p in root_node.peers() if p["key"] == other.key]
        self.assertIn(other_coords[0], other_ports)
        for row in go_rows + our_rows:
            self.assertEqual(row["coords"], [] if row["key"] == root else other_coords)
        self.assertEqual(go_self["address"], go.ctl("getSelf")["address"])
        self.assertEqual(our_self["key"], ours.key)

        time.sleep(16)  # four keepalive periods; the peer drops a link silent for 6 s
        for node, key in ((go, ours.key), (ours, go.key)):
            rows = [p for p in node.peers() if p["key"] == key]
            self.assertEqual(len(rows), 6)
            self.assertTrue(all(r["uptime"] >= 15 for r in rows), rows)
        self.assertEqual(ours.log.count("Connected "), 6, ours.log)
        self.assertNotIn("Disconnected", ours.log)
        self.assertNotIn("Disconnected", go.log)
        # Our counters are the exact stream sizes, handshake included, as Go counts them.
        for row in ours.peers():
            self.assertGreater(row["bytes_recvd"], 38)
            self.assertGreater(row["bytes_sent"], 38)


def key_starting(first: int) -> str:
    """A private key whose public key starts with the byte ``first``: where a node falls in
    the tree (the smallest key is the root) and the keyspace is then the test's choice."""
    from ygg.keys import NodeKey

    while True:
        key = NodeKey.generate()
        if key.public[0] == first:
            return key.private.hex()


class ChainTests(InteropCase):
    def chain(self, a: int, ours: int, b: int) -> tuple[GoNode, YggNode, GoNode]:
        """Go A — ours — Go B, each key starting with the byte given."""
        go_b = self.go(
            "b",
            listen=["tcp://127.0.0.1:0"],
            nodeinfo={"name": "go-b"},
            private_key=key_starting(b),
        )
        middle = self.ours(
            "ours",
            listen=["tcp://127.0.0.1:0"],
            peers=[go_b.listen_uri("tcp")],
            private_key=key_starting(ours),
        )
        go_a = self.go("a", peers=[middle.listen_uri("tcp")], private_key=key_starting(a))
        return go_a, middle, go_b

    @pytest.mark.xfail(reason="known bug: ours as root, Go B's key below Go A's", strict=True)
    def test_ours_as_root_between_go_nodes(self) -> None:
        """Known bug (found 2026-12-05, present before): with ours the tree's root and B's
        key below A's, Go B never answers Go A's session init through ours (ours forwards
        A's init, B's path notify and path response, A's path traffic; B sends nothing
        back), so A's getNodeInfo of B times out.  This test fails until that is fixed;
        it then passes, which fails the run (strict): remove the mark then."""
        a, ours, b = self.chain(a=0xC0, ours=0x00, b=0x40)
        ours.wait_peer(a.key)
        ours.wait_peer(b.key)
        info = wait_until(lambda: a.ctl("getNodeInfo", f"key={b.key}"), 20, "A's getNodeInfo of B")
        self.assertEqual(info[b.key]["name"], "go-b")

    def test_go_sessions_routed_through_ours(self) -> None:
        """Go A — ours — Go B: A reaches B's NodeInfo and remote getSelf through us; after
        our link to B is cut and restored, A reaches B again.  The keys are chosen (B the
        root, A's key above ours) so that the test runs the same tree every time."""
        a, ours, b = self.chain(a=0xC0, ours=0x80, b=0x00)
        ours.wait_peer(a.key)
        ours.wait_peer(b.key)
        self.assertNotIn(b.key, a.peer_keys())

        # The first request often leaves before the DHT has settled and times out (6 s),
        # with a Go node in the middle too, which does not resend it.
        info = wait_until(lambda: a.ctl("getNodeInfo", f"key={b.key}"), 60, "A's getNodeInfo of B")
        self.assertEqual(info[b.key]["name"], "go-b")
        remote = a.ctl("debug_remoteGetSelf", f"key={b.key}")
        (entry,) = remote.values()
        self.assertEqual(entry["key"], b.key)

        ours.ctl("removePeer", f"uri={b.listen_uri('tcp')}")
        wait_until(lambda: b.key not in ours.peer_keys(), 10, "our link to B to close")
        ours.ctl("addPeer", f"uri={b.listen_uri('tcp')}")
        ours.wait_peer(b.key)
        started = time.monotonic()
        wait_until(lambda: a.ctl("getNodeInfo", f"key={b.key}"), 60, "A reaching B again")
        # The Go node's own reconvergence: a 7 s hold-down, bootstraps every second.
        self.assertLess(time.monotonic() - started, 45)


class BadPeerTests(InteropCase):
    """Misbehaving peers lose their link with one log line; the node and its other links
    carry on."""

    def setUp(self) -> None:
        super().setUp()
        self.go_node = self.go("go", listen=["tcp://127.0.0.1:0"])
        self.node = self.ours(
            "ours",
            listen=["tcp://127.0.0.1:0"],
            peers=[self.go_node.listen_uri("tcp")],
            allow=[self.go_node.key],
        )
        self.node.wait_peer(self.go_node.key)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.node.listen_uri("tcp")[len("tcp://") :].rsplit(":", 1)
        return host, int(port)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        self.addCleanup(sock.close)
        greeting = b""
        while len(greeting) < 38:
            greeting += sock.recv(38 - len(greeting))
        self.assertEqual(greeting[:6], b"meta\x00\x04")
        return sock

    def assert_dropped(self, sock: socket.socket, text: str) -> None:
        sock.settimeout(10)
        try:
            while sock.recv(4096):
                pass
        except (ConnectionResetError, TimeoutError):
            pass
        wait_until(lambda: text in self.node.log, 10, repr(text))
        self.assertEqual(self.node.log.count(text), 1)
        self.assertIn(self.go_node.key, self.node.peer_keys())  # the good link is untouched

    def test_garbage(self) -> None:
        sock = self.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 20)
        self.assert_dropped(sock, "remote node is incompatible version")

    def test_wrong_version(self) -> None:
        sock = self.connect()
        sock.sendall(b"meta\x00\x05" + bytes(32))
        self.assert_dropped(sock, "remote node is incompatible version")

    def test_not_in_allowed_public_keys(self) -> None:
        sock = self.connect()
        sock.sendall(encode_meta(b"\x11" * 32))
        self.assert_dropped(sock, f'node public key "{"11" * 32}" is not in AllowedPublicKeys')

    def test_silent_for_six_seconds(self) -> None:
        sock = self.connect()
        started = time.monotonic()
        self.assert_dropped(sock, "read handshake: i/o timeout")
        self.assertGreaterEqual(time.monotonic() - started, 5.5)

    def test_bad_frame_after_handshake(self) -> None:
        """A frame with an unknown type after a good handshake: Go closes; so do we."""
        self.node.stop()
        self.node.config["AllowedPublicKeys"] = []
        self.node.start()
        sock = self.connect()
        sock.sendall(encode_meta(b"\x22" * 32) + wire.frame(b"\x0b junk"))
        self.assert_dropped(sock, "unrecognized packet type 11")

    def test_wrong_pinned_key(self) -> None:
        other = self.go("other", listen=["tcp://127.0.0.1:0"])
        uri = other.listen_uri("tcp") + "?key=" + "ab" * 32
        self.node.ctl("addPeer", f"uri={uri}")
        wait_until(
            lambda: "node public key that does not match pinned keys" in self.node.log,
            15,
            "the pinned-key refusal",
        )
        time.sleep(3)
        # Logged once, retried quietly with backoff.
        self.assertEqual(self.node.log.count("does not match pinned keys"), 1)


class SocksTests(InteropCase):
    def test_socks_peer_through_microsocks(self) -> None:
        microsocks = require_tool("microsocks")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proxy = subprocess.Popen(
            [microsocks, "-i", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(proxy.wait)
        self.addCleanup(proxy.terminate)
        go = self.go("go", listen=["tcp://127.0.0.1:0"])
        target = go.listen_uri("tcp")[len("tcp://") :]
        ours = self.ours("ours", peers=[f"socks://127.0.0.1:{port}/{target}"])
        (row,) = ours.wait_peer(go.key)
        self.assertEqual(row["remote"], f"socks://127.0.0.1:{port}/{target}")
        go.wait_peer(ours.key)


class MulticastTests(InteropCase):
    """Ours and a Go node in two namespaces on a veth pair, no Peers: they find each other.

    Run three ways: both beaconing (one link, whoever dialled first), only the Go node
    beaconing (so ours must dial Go from its beacon), only ours beaconing (so Go must
    dial us from ours).
    """

    def pair(self, ours_beacon: bool, go_beacon: bool) -> tuple[YggNode, GoNode, NetnsPair]:
        require_root()
        pair = NetnsPair().up()
        self.addCleanup(pair.down)
        go = GoNode(f"{self.dir}/go", multicast=pair.IFACE, netns=pair.b, beacon=go_beacon)
        go.start()
        self.addCleanup(go.stop)
        # As a v0.4 node: what is checked is 0.4.7's multicast (and its admin replies).
        ours = YggNode(
            f"{self.dir}/ours",
            multicast=pair.IFACE,
            netns=pair.a,
            beacon=ours_beacon,
            versions=("0.4",),
        )
        ours.start()
        self.addCleanup(ours.stop)
        return ours, go, pair

    def linked(self, ours: YggNode, go: GoNode) -> tuple[dict, dict]:
        our_row = ours.wait_peer(go.key, timeout=30)[0]
        go_row = go.wait_peer(ours.key, timeout=30)[0]
        self.assertTrue(our_row["remote"].startswith("tls://[fe80:"), our_row)
        self.assertTrue(go_row["remote"].startswith("tls://[fe80:"), go_row)
        return our_row, go_row

    def test_both_beaconing(self) -> None:
        ours, go, pair = self.pair(True, True)
        self.linked(ours, go)
        # version=0.4: 0.4.7's list of names (a node running both answers 0.5.12's objects)
        names = ours.ctl("getMulticastInterfaces", "version=0.4")["multicast_interfaces"]
        self.assertEqual(names, [pair.IFACE])
        time.sleep(3)  # beacons keep coming; still one link per neighbour
        self.assertEqual(len([p for p in ours.peers() if p["key"] == go.key]), 1)
        self.assertEqual(len([p for p in go.peers() if p["key"] == ours.key]), 1)

    def test_ours_dials_go(self) -> None:
        ours, go, pair = self.pair(False, True)
        our_row, go_row = self.linked(ours, go)
        self.assertNotIn("%", our_row["remote"])  # dialled: the URI, no zone
        self.assertIn(f"%{pair.IFACE}]", go_row["remote"])  # accepted by Go

    def test_go_dials_ours(self) -> None:
        ours, go, pair = self.pair(True, False)
        our_row, go_row = self.linked(ours, go)
        self.assertIn(f"%{pair.IFACE}]", our_row["remote"])  # accepted by us
        self.assertNotIn("%", go_row["remote"])


class InterfacePeersTests(InteropCase):
    def test_peer_through_an_interface(self) -> None:
        """InterfacePeers dial from that interface's address; a missing interface fails
        the dial with the Go node's text, once."""
        require_root()
        pair = NetnsPair().up()
        self.addCleanup(pair.down)
        go = GoNode(f"{self.dir}/go", netns=pair.b, listen=[f"tcp://[{pair.IP_B}]:14001"])
        go.start()
        self.addCleanup(go.stop)
        ours = YggNode(
            f"{self.dir}/ours",
            netns=pair.a,
            extra={
                "InterfacePeers": {
                    pair.IFACE: [f"tcp://[{pair.IP_B}]:14001"],
                    "nosuch0": ["tcp://[fd59:6767::9]:1"],
                }
            },
        )
        ours.start()
        self.addCleanup(ours.stop)
        (row,) = ours.wait_peer(go.key)
        self.assertEqual(row["remote"], f"tcp://[{pair.IP_B}]:14001")
        (go_row,) = go.wait_peer(ours.key)
        self.assertTrue(go_row["remote"].startswith(f"tcp://[{pair.IP_A}]:"), go_row)
        wait_until(
            lambda: (
                'no suitable source address found on interface "nosuch0"' in ours.log
                or 'interface "nosuch0" not found' in ours.log
            ),
            10,
            "the missing interface",
        )
