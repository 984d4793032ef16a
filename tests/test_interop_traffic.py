"""Traffic with the real Go node: sessions, NodeInfo, remote debug, and IPv6 over TUNs.

The NodeInfo and remote-debug tests run on loopback; the TUN tests put ours and the Go node
in two network namespaces joined by a veth pair (root needed; made and removed here).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

from tests.helpers import require_root, require_tool
from tests.nodes import GoNode, NetnsPair, YggNode, wait_until
from tests.test_interop_links import InteropCase


class ProtoTests(InteropCase):
    """NodeInfo and remote debug both ways, over loopback links."""

    def setUp(self) -> None:
        super().setUp()
        self.go_node = self.go("go", listen=["tcp://127.0.0.1:0"], nodeinfo={"name": "gonode"})

    def ours_peered(self, **kwargs) -> YggNode:
        node = self.ours("ours", peers=[self.go_node.listen_uri("tcp")], **kwargs)
        node.wait_peer(self.go_node.key)
        return node

    def test_go_asks_ours(self) -> None:
        ours = self.ours_peered(nodeinfo={"name": "ours", "n": 1.5, "l": [1, 2], "t": "<&>"})
        info = wait_until(
            lambda: self.go_node.ctl("getNodeInfo", f"key={ours.key}"),
            20,
            "Go's getNodeInfo of ours",
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
        address = ours.ctl("getSelf")["address"]
        remote_self = self.go_node.ctl("debug_remoteGetSelf", f"key={ours.key}")
        self.assertEqual(
            remote_self,
            {
                address: {
                    "coords": str(ours.ctl("getSelf")["coords"]).replace(",", ""),
                    "key": ours.key,
                }
            },
        )
        peers = self.go_node.ctl("debug_remoteGetPeers", f"key={ours.key}")
        self.assertEqual(peers, {address: {"keys": [self.go_node.key]}})
        dht = self.go_node.ctl("debug_remoteGetDHT", f"key={ours.key}")
        self.assertIn(address, dht)

    def test_privacy(self) -> None:
        ours = self.ours_peered(nodeinfo={"name": "private"}, nodeinfo_privacy=True)
        info = wait_until(
            lambda: self.go_node.ctl("getNodeInfo", f"key={ours.key}"),
            20,
            "Go's getNodeInfo of ours",
        )
        self.assertEqual(info, {ours.key: {"name": "private"}})

    def test_ours_asks_go(self) -> None:
        ours = self.ours_peered()
        go = self.go_node
        for command in (
            "getNodeInfo",
            "debug_remoteGetSelf",
            "debug_remoteGetPeers",
            "debug_remoteGetDHT",
        ):
            mine = wait_until(
                lambda command=command: ours.ctl(command, f"key={go.key}"),
                20,
                f"our {command} of Go",
            )
            # The Go node asking itself gives the reference answer.
            reference = go.ctl(command, f"key={go.key}")
            self.assertEqual(list(mine), list(reference), command)
            if command != "debug_remoteGetDHT":
                self.assertEqual(mine, reference, command)
        self.assertEqual(ours.ctl("getNodeInfo", f"key={go.key}")[go.key]["name"], "gonode")

    def test_errors(self) -> None:
        ours = self.ours_peered()
        for args, text in (
            (("key=zz",), "Failed to decode public key: encoding/hex: invalid byte: U+007A 'z'"),
            ((), "No remote public key supplied"),
        ):
            done = subprocess.run(
                ["/usr/sbin/yggdrasilctl", "-endpoint", ours.admin, "getNodeInfo", *args],
                capture_output=True,
                text=True,
            )
            self.assertEqual(done.returncode, 1)
            self.assertIn(f"Admin socket returned an error: {text}", done.stdout + done.stderr)
        started = time.monotonic()
        done = subprocess.run(
            ["/usr/sbin/yggdrasilctl", "-endpoint", ours.admin, "getNodeInfo", f"key={'ab' * 32}"],
            capture_output=True,
            text=True,
        )
        self.assertIn("Timed out waiting for response", done.stdout + done.stderr)
        self.assertGreaterEqual(time.monotonic() - started, 5.5)

    def test_session_outlives_key_rotation(self) -> None:
        """A minute and more of traffic: keys rotate (at most once a minute) and the one
        session carries on."""
        ours = self.ours_peered()
        go = self.go_node
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline:
            self.assertEqual(go.ctl("getNodeInfo", f"key={ours.key}")[ours.key]["buildname"], "ygg")
            self.assertIn(go.key, ours.ctl("getNodeInfo", f"key={go.key}"))
            time.sleep(5)
        (session,) = [s for s in ours.ctl("getSessions")["sessions"] if s["key"] == go.key]
        self.assertGreater(session["uptime"], 65)
        (theirs,) = [s for s in go.ctl("getSessions")["sessions"] if s["key"] == ours.key]
        self.assertGreater(theirs["uptime"], 65)


class TunCase(InteropCase):
    """Ours (TUN, namespace A) and the Go node (TUN, namespace B), peered over the veth."""

    our_mtu = 65535
    go_mtu = 65535

    def setUp(self) -> None:
        super().setUp()
        require_root()
        self.pair = NetnsPair().up()
        self.addCleanup(self.pair.down)
        pair = self.pair
        self.go_node = GoNode(
            f"{self.dir}/go",
            netns=pair.b,
            tun="ygg0",
            mtu=self.go_mtu,
            listen=[f"tcp://[{pair.IP_B}]:14001"],
        )
        self.go_node.start()
        self.addCleanup(self.go_node.stop)
        self.node = YggNode(
            f"{self.dir}/ours",
            netns=pair.a,
            tun="ygg0",
            mtu=self.our_mtu,
            peers=[f"tcp://[{pair.IP_B}]:14001"],
        )
        self.node.start()
        self.addCleanup(self.node.stop)
        self.node.wait_peer(self.go_node.key)
        self.go_address = self.go_node.ctl("getSelf")["address"]
        self.our_address = self.node.ctl("getSelf")["address"]

    def ping(
        self, ns: str, target: str, *extra: str, count: int = 3
    ) -> subprocess.CompletedProcess:
        return self.pair.exec(
            ns, "ping", "-6", "-c", str(count), "-W", "3", *extra, target, timeout=60
        )


class TunTests(TunCase):
    def test_ping_addresses_both_ways(self) -> None:
        # 0.5's cap: ours runs both versions (a v0.4-only node's TUN takes 53049, as 0.4.7's).
        self.assertEqual(self.node.ctl("getTUN"), {"enabled": True, "name": "ygg0", "mtu": 65535})
        for ns, target in ((self.pair.a, self.go_address), (self.pair.b, self.our_address)):
            done = self.ping(ns, target)
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
            done = self.ping(ns, target)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_large_packets_near_the_mtu(self) -> None:
        # 53049-byte packets: 40 bytes of IPv6 header and 8 of ICMPv6 around the data.
        for ns, target in ((self.pair.a, self.go_address), (self.pair.b, self.our_address)):
            done = self.ping(ns, target, "-s", "53001", "-M", "do", count=2)
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
        for server_ns, client_ns, target in (
            (self.pair.b, self.pair.a, self.go_address),
            (self.pair.a, self.pair.b, self.our_address),
        ):
            server = subprocess.Popen(
                ["ip", "netns", "exec", server_ns, "python3", "-c", script, target],
                stdout=subprocess.PIPE,
                text=True,
            )
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

    def test_iperf3(self) -> None:
        iperf3 = require_tool("iperf3")
        for server_ns, client_ns, target in (
            (self.pair.b, self.pair.a, self.go_address),
            (self.pair.a, self.pair.b, self.our_address),
        ):
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
    """Our TUN has a small MTU: a bigger packet from the Go side gets our Packet Too Big,
    and the sender's kernel learns the path MTU from it."""

    our_mtu = 1400

    def test_packet_too_big_from_ours(self) -> None:
        self.assertEqual(self.node.ctl("getTUN")["mtu"], 1400)
        done = self.ping(self.pair.b, self.our_address, "-s", "2000", count=4)
        output = done.stdout + done.stderr
        self.assertIn("mtu=1400", output.lower().replace(" ", ""), output)
        # After that the sender fragments to fit, and the replies come back.
        done = self.ping(self.pair.b, self.our_address, "-s", "2000", count=2)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
