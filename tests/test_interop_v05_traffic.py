"""Traffic with the real yggdrasil 0.5.12: sessions, NodeInfo, remote debug, and IPv6 over
TUNs; a node running both versions between a 0.4.7 and a 0.5.12 node; two ygg nodes.

NodeInfo and remote debug run on loopback; the TUN tests put the nodes in network
namespaces joined by veth pairs (root needed; made and removed here).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

from tests.helpers import YGG, YGGDRASIL05, require_go, require_root, require_tool
from tests.nodes import GoNode, NetnsPair, NetnsStar, YggNode, wait_until
from tests.processes import Process
from tests.test_interop_v05_links import V05Case

V04_V05 = ("0.4", "0.5")


class ProtoTests(V05Case):
    """NodeInfo and remote debug both ways with a 0.5.12 node, over a loopback link."""

    def setUp(self) -> None:
        super().setUp()
        self.go_node = self.go05("go", listen=["tcp://127.0.0.1:0"], nodeinfo={"name": "go05"})

    def ours_peered(self, **kwargs) -> YggNode:
        node = self.ours("ours", peers=[self.go_node.listen_uri("tcp")], **kwargs)
        self.go_node.wait_peer(node.key)
        return node

    def test_go_asks_ours(self) -> None:
        ours = self.ours_peered(nodeinfo={"name": "ours", "n": 1.5, "l": [1, 2], "t": "<&>"})
        go = self.go_node
        info = wait_until(
            lambda: go.ctl("getNodeInfo", f"key={ours.key}"), 30, "Go's getNodeInfo of ours"
        )
        self.assertEqual(
            info[ours.key],
            {
                "buildarch": info[ours.key]["buildarch"],
                "buildname": "ygg",
                "buildplatform": "linux",
                "buildversion": info[ours.key]["buildversion"],
                "l": [1, 2],
                "n": 1.5,
                "name": "ours",
                "t": "<&>",
            },
        )
        address = ours.address_text()
        remote_self = go.ctl("debug_remoteGetSelf", f"key={ours.key}")
        (entries,) = [row[address]["routing_entries"] for row in (remote_self,)]
        self.assertEqual(remote_self, {address: {"key": ours.key, "routing_entries": entries}})
        self.assertIsInstance(entries, str)  # 0.5's getSelf sends it as a string
        self.assertGreaterEqual(int(entries), 2)
        peers = go.ctl("debug_remoteGetPeers", f"key={ours.key}")
        self.assertEqual(peers, {address: {"keys": [go.key]}})
        tree = go.ctl("debug_remoteGetTree", f"key={ours.key}")
        self.assertEqual(sorted(tree[address]["keys"]), sorted([go.key, ours.key]))

    def test_ours_asks_go(self) -> None:
        """Our admin getNodeInfo (INode.get_node_info: the first network to answer) and
        remote getSelf/getPeers of a 0.5.12 node (which cannot ask itself: 0.5 has no
        session to its own key)."""
        ours = self.ours_peered()
        go = self.go_node
        mine = wait_until(
            lambda: ours.ctl("getNodeInfo", f"key={go.key}"), 30, "our getNodeInfo of Go"
        )
        self.assertEqual(
            mine,
            {
                go.key: {
                    "buildarch": mine[go.key]["buildarch"],
                    "buildname": "yggdrasil",
                    "buildplatform": "linux",
                    "buildversion": "0.5.12",
                    "name": "go05",
                }
            },
        )
        remote_self = ours.ctl("debug_remoteGetSelf", f"key={go.key}")
        self.assertEqual(remote_self[go.address_text()]["key"], go.key)
        self.assertIn("routing_entries", remote_self[go.address_text()])
        self.assertEqual(
            ours.ctl("debug_remoteGetPeers", f"key={go.key}"),
            {go.address_text(): {"keys": [ours.key]}},
        )

    def test_privacy(self) -> None:
        ours = self.ours_peered(nodeinfo={"name": "private"}, nodeinfo_privacy=True)
        info = wait_until(
            lambda: self.go_node.ctl("getNodeInfo", f"key={ours.key}"),
            30,
            "Go's getNodeInfo of ours",
        )
        self.assertEqual(info, {ours.key: {"name": "private"}})


class TunCase(V05Case):
    """Ours (TUN, namespace A) and a 0.5.12 node (TUN, namespace B), peered over the veth."""

    our_mtu = 65535
    versions = V04_V05

    def setUp(self) -> None:
        super().setUp()
        require_root()
        self.pair = NetnsPair("y5t").up()
        self.addCleanup(self.pair.down)
        pair = self.pair
        self.go_node = self.go05(
            "go", netns=pair.b, tun="ygg0", listen=[f"tcp://[{pair.IP_B}]:14001"]
        )
        self.node = self.ours(
            "ours",
            netns=pair.a,
            tun="ygg0",
            mtu=self.our_mtu,
            peers=[f"tcp://[{pair.IP_B}]:14001"],
            versions=self.versions,
        )
        self.go_node.wait_peer(self.node.key)
        self.go_address = self.go_node.address_text()
        self.our_address = self.node.address_text()

    def ping(
        self, ns: str, target: str, *extra: str, count: int = 3
    ) -> subprocess.CompletedProcess:
        return self.pair.exec(
            ns, "ping", "-6", "-c", str(count), "-W", "3", *extra, target, timeout=60
        )

    def first_reply(self, ns: str, target: str) -> None:
        """Ping until one comes back: 0.5.12 loses the first packets or two to a node it
        has not yet found (two Go nodes do the same), until its path lookup is answered."""
        wait_until(
            lambda: self.pair.exec(ns, "ping", "-6", "-c1", "-W2", target).returncode == 0,
            30,
            f"a first ping of {target}",
        )

    def both_ways(self) -> list[tuple[str, str]]:
        """(namespace, the other node's address) from each side."""
        return [(self.pair.a, self.go_address), (self.pair.b, self.our_address)]

    def server_client_target(self) -> list[tuple[str, str, str]]:
        """(server's namespace, client's namespace, server's address), each way."""
        return [
            (self.pair.b, self.pair.a, self.go_address),
            (self.pair.a, self.pair.b, self.our_address),
        ]


class TunTests(TunCase):
    def test_ping_both_ways_small_and_8000_bytes(self) -> None:
        self.assertEqual(self.node.ctl("getTUN"), {"enabled": True, "name": "ygg0", "mtu": 65535})
        for ns, target in self.both_ways():
            self.first_reply(ns, target)
            for size in ("56", "8000"):
                done = self.ping(ns, target, "-s", size)
                self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                self.assertIn("3 received", done.stdout)

    def test_ping_subnets_both_ways(self) -> None:
        our_subnet = self.node.ctl("getSelf")["subnet"].split("/")[0]
        go_subnet = self.go_node.ctl("getSelf")["subnet"].split("/")[0]
        ours_in_subnet, go_in_subnet = f"{our_subnet}1", f"{go_subnet}1"
        for ns, address in ((self.pair.a, ours_in_subnet), (self.pair.b, go_in_subnet)):
            done = self.pair.exec(
                ns, "ip", "-6", "addr", "add", f"{address}/64", "dev", "ygg0", "nodad"
            )
            self.assertEqual(done.returncode, 0, done.stderr)
        for ns, target in ((self.pair.a, go_in_subnet), (self.pair.b, ours_in_subnet)):
            self.first_reply(ns, target)
            done = self.ping(ns, target)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_tcp_both_ways_intact(self) -> None:
        """A TCP stream each way across the mesh; the bytes arrive whole and in order."""
        payload = os.urandom(4 * 1024 * 1024)
        digest = hashlib.sha256(payload).hexdigest()
        script = (
            "import socket,hashlib,sys;"
            "s=socket.socket(socket.AF_INET6);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            "s.bind((sys.argv[1],5001));s.listen(1);c,_=s.accept();h=hashlib.sha256();n=0\n"
            "while True:\n d=c.recv(65536)\n if not d: break\n h.update(d);n+=len(d)\n"
            "print(n,h.hexdigest())"
        )
        sender = (
            "import socket,sys;c=socket.create_connection((sys.argv[1],5001),timeout=30);"
            "c.sendall(sys.stdin.buffer.read());c.close()"
        )
        for server_ns, client_ns, target in self.server_client_target():
            server = subprocess.Popen(
                ["ip", "netns", "exec", server_ns, "python3", "-c", script, target],
                stdout=subprocess.PIPE,
                text=True,
            )
            self.addCleanup(server.kill)
            time.sleep(0.5)
            sent = subprocess.run(
                ["ip", "netns", "exec", client_ns, "python3", "-c", sender, target],
                input=payload,
                capture_output=True,
                timeout=60,
            )
            self.assertEqual(sent.returncode, 0, sent.stderr)
            out, _ = server.communicate(timeout=60)
            self.assertEqual(out.split(), [str(len(payload)), digest])

    def test_iperf3_both_ways(self) -> None:
        iperf3 = require_tool("iperf3")
        for server_ns, client_ns, target in self.server_client_target():
            server = subprocess.Popen(
                ["ip", "netns", "exec", server_ns, iperf3, "-s", "-1", "-B", target],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.addCleanup(server.kill)
            time.sleep(0.5)
            done = self.pair.exec(client_ns, iperf3, "-c", target, "-t", "3", timeout=60)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.assertIn("receiver", done.stdout)
            server.wait(timeout=20)


class PacketTooBigTests(TunCase):
    """Our TUN has a small MTU: a bigger packet from the 0.5.12 side gets our Packet Too
    Big back over v0.5, and the sender's kernel learns the path MTU from it."""

    our_mtu = 1400

    def test_packet_too_big_from_ours(self) -> None:
        self.assertEqual(self.node.ctl("getTUN")["mtu"], 1400)
        done = self.ping(self.pair.b, self.our_address, "-s", "2000", count=4)
        output = done.stdout + done.stderr
        self.assertIn("mtu=1400", output.lower().replace(" ", ""), output)
        done = self.ping(self.pair.b, self.our_address, "-s", "2000", count=2)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)


class DualStackTests(V05Case):
    """One ygg node in the middle namespace, peered with a 0.4.7 node and a 0.5.12 node
    in two others: its one TUN reaches both, and both reach it."""

    def test_one_tun_two_networks(self) -> None:
        require_root()
        require_go()
        star = NetnsStar("y5d").up()
        self.addCleanup(star.down)
        old_ns, new_ns = star.leaves
        old = GoNode(
            f"{self.dir}/old",
            netns=old_ns,
            tun="ygg0",
            listen=[f"tcp://[{star.leaf_ip(0)}]:14001"],
            nodeinfo={"name": "old"},
        )
        old.start()
        self.addCleanup(old.stop)
        new = self.go05(
            "new",
            netns=new_ns,
            tun="ygg0",
            listen=[f"tcp://[{star.leaf_ip(1)}]:14002"],
            nodeinfo={"name": "new"},
        )
        ours = self.ours(
            "ours",
            netns=star.middle,
            tun="ygg0",
            peers=[f"tcp://[{star.leaf_ip(0)}]:14001", f"tcp://[{star.leaf_ip(1)}]:14002"],
        )
        old.wait_peer(ours.key)
        new.wait_peer(ours.key)
        self.assertEqual(ours.ctl("getTUN")["mtu"], 65535)
        for ns, target in (
            (star.middle, old.address_text()),
            (star.middle, new.address_text()),
            (old_ns, ours.address_text()),
            (new_ns, ours.address_text()),
        ):
            done = star.exec(ns, "ping", "-6", "-c", "3", "-W", "3", target, timeout=60)
            self.assertEqual(done.returncode, 0, f"{ns} → {target}: {done.stdout}{done.stderr}")
        for target in (old.address_text(), new.address_text()):
            done = star.exec(star.middle, "ping", "-6", "-c", "3", "-W", "3", "-s", "8000", target)
            self.assertEqual(done.returncode, 0, f"8000 bytes → {target}: {done.stdout}")
        # Our TUN takes 65535 (0.5's cap); v0.4 carries 53049: a bigger packet for the 0.4.7
        # node gets our Packet Too Big, and the kernel fragments to fit from then on.
        big = ("ping", "-6", "-W", "3", "-s", "60000", old.address_text())
        done = star.exec(star.middle, *big[:2], "-c", "2", *big[2:], timeout=60)
        output = done.stdout + done.stderr
        self.assertIn("mtu=53049", output.lower().replace(" ", ""), output)
        done = star.exec(star.middle, *big[:2], "-c", "2", *big[2:], timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for other, name in ((old, "old"), (new, "new")):
            info = ours.ctl("getNodeInfo", f"key={other.key}")
            self.assertEqual(info[other.key]["name"], name)
        # Each Go node asks ours over its own network.
        self.assertEqual(old.ctl("getNodeInfo", f"key={ours.key}")[ours.key]["buildname"], "ygg")
        self.assertEqual(new.ctl("getNodeInfo", f"key={ours.key}")[ours.key]["buildname"], "ygg")


class YggToYggTests(V05Case):
    """Two ygg nodes with the default config (no ProtocolVersions: both), with TUNs in two
    namespaces: their link is v0.5, and traffic and NodeInfo go over it."""

    def test_default_nodes_talk_over_v05(self) -> None:
        require_root()
        pair = NetnsPair("y5y").up()
        self.addCleanup(pair.down)
        b = YggNode(
            f"{self.dir}/b",
            netns=pair.b,
            tun="ygg0",
            listen=[f"tcp://[{pair.IP_B}]:14001"],
            nodeinfo={"name": "b"},
            loglevel="debug",
        )
        b.start()
        self.addCleanup(b.stop)
        a = YggNode(
            f"{self.dir}/a",
            netns=pair.a,
            tun="ygg0",
            peers=[f"tcp://[{pair.IP_B}]:14001"],
            loglevel="debug",
        )
        a.start()
        self.addCleanup(a.stop)
        self.assertNotIn("ProtocolVersions", a.config)
        wait_until(lambda: a.v05_root() == b.v05_root() == min(a.key, b.key), 30, "one v0.5 tree")
        for ns, target in ((pair.a, b.address_text()), (pair.b, a.address_text())):
            done = pair.exec(ns, "ping", "-6", "-c", "3", "-W", "3", "-s", "8000", target)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(a.ctl("getNodeInfo", f"key={b.key}")[b.key]["name"], "b")
        self.assertEqual(a.ctl("getTUN")["mtu"], 65535)


class GenconfTests(V05Case):
    """A config file as 0.5.12's ``-genconf`` writes it runs ygg unchanged.

    The file is used as it is: a TUN named by the system, the admin socket at the default
    /var/run/yggdrasil/yggdrasil.sock and multicast on every interface.  So the node runs in
    a namespace of its own, with a private /run (``ip netns exec`` gives the command its own
    mount namespace; the tmpfs mounted there is seen by nothing outside)."""

    def run_with(self, text: str, ns: str) -> str:
        path = f"{self.dir}/yggdrasil.conf"
        with open(path, "w") as f:
            f.write(text)
        script = f'mount -t tmpfs tmpfs /run && exec "$0" run --config "{path}"'
        node = Process(["ip", "netns", "exec", ns, "sh", "-c", script, YGG], cwd=self.dir)
        try:
            node.wait_for("Interface MTU", timeout=30)
            node.wait_for("Your IPv6 subnet is", timeout=30)
            time.sleep(1)  # a beacon out, a tick of each router: no error follows
        finally:
            self.assertEqual(node.stop(), 0, node.output)
        return node.output

    def test_genconf_hjson_and_json(self) -> None:
        require_root()
        pair = NetnsPair("y5g").up()
        self.addCleanup(pair.down)
        for flags in (["-genconf"], ["-genconf", "-json"]):
            text = subprocess.run(
                [YGGDRASIL05, *flags], capture_output=True, text=True, check=True
            ).stdout
            log = self.run_with(text, pair.a)
            self.assertIn("UNIX admin socket listening on /var/run/yggdrasil/yggdrasil.sock", log)
            self.assertIn("Interface MTU: 65535", log)
            self.assertNotIn("[ERROR]", log.upper())
            self.assertNotIn("Config:", log)  # nothing unknown, nothing ignored

    def test_0_5_keys_honoured_or_warned(self) -> None:
        """GroupPassword (0.5.14) is honoured; LogLookups and PrivateKeyPath (0.5.12) are
        read and ignored with a warning each."""
        require_root()
        pair = NetnsPair("y5k").up()
        self.addCleanup(pair.down)
        text = subprocess.run(
            [YGGDRASIL05, "-genconf"], capture_output=True, text=True, check=True
        ).stdout
        extra = '  LogLookups: true\n  PrivateKeyPath: ""\n  GroupPassword: sesame\n}'
        log = self.run_with(text.rstrip().removesuffix("}") + extra, pair.a)
        warnings = [line for line in log.splitlines() if "Config:" in line]
        self.assertEqual(len(warnings), 2, log)
        self.assertIn("LogLookups", warnings[0])
        self.assertIn("Config: unknown config key 'PrivateKeyPath' ignored", warnings[1])
        self.assertNotIn("GroupPassword", log)
