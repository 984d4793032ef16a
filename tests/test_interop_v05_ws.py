"""WebSocket links with the real yggdrasil 0.5.12: ws:// each side dialling and listening,
wss:// (Go dials our wss listener; ours dials Go through a TLS-terminating proxy, since
0.5.12 does not listen on wss itself), link passwords over ws, and a 0.5.12 genconf file
whose Peers use ``?maxbackoff=`` running on ours.

Our side is read from our log (``Connected …``), the Go side from the 0.5.12 yggdrasilctl.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path

from tests.helpers import YGG, YGGDRASIL05
from tests.nodes import wait_until
from tests.processes import Process, run
from tests.test_interop_v05_links import WRONG, V05Case


class WebSocketTests(V05Case):
    def test_ws_and_wss_each_side_dialling(self) -> None:
        """Go listens on ws, ours on ws and wss; ours dials Go's ws, Go dials both of ours.
        Go's getPeers lists the three links, all up, and none drops past several of v0.5's
        3 s read deadlines."""
        go = self.go05("go", listen=["ws://127.0.0.1:0"])
        ours = self.ours(
            "ours",
            listen=["ws://127.0.0.1:0", "wss://127.0.0.1:0"],
            peers=[go.listen_uri("ws")],
        )
        go.ctl("addPeer", f"uri={ours.listen_uri('ws')}")
        go.ctl("addPeer", f"uri={ours.listen_uri('wss')}")
        rows = go.wait_peer(ours.key, count=3)
        self.assertTrue(all(r["up"] for r in rows), rows)
        outbound = sorted(r["remote"] for r in rows if not r["inbound"])
        self.assertEqual(outbound, sorted([ours.listen_uri("ws"), ours.listen_uri("wss")]))
        [inbound] = [r["remote"] for r in rows if r["inbound"]]
        self.assertTrue(inbound.startswith("ws://127.0.0.1:"), inbound)
        for line in ("Connected outbound WS:", "Connected inbound WS:", "Connected inbound WSS:"):
            wait_until(lambda line=line: line in ours.log, 10, line)
        self.assert_same_root(go, ours)

        time.sleep(7)  # past the 3 s read deadline several times over
        rows = [p for p in go.peers() if p["key"] == ours.key]
        self.assertEqual(len(rows), 3)
        self.assertTrue(all(r["up"] and r["uptime"] >= 6 for r in rows), rows)
        self.assertNotIn("Disconnected", ours.log)
        self.assertNotIn("Disconnected", go.log)

    def test_ours_dials_wss_through_a_tls_proxy(self) -> None:
        go = self.go05("go", listen=["ws://127.0.0.1:0"])
        go_port = go.listen_uri("ws").rsplit(":", 1)[1]
        proxy = Process([sys.executable, "-m", "tests.tools.tls_proxy", go_port])
        self.addCleanup(proxy.stop)
        line = proxy.wait_for("listening on")
        address = line.split()[-1]
        ours = self.ours("ours", peers=[f"wss://{address}/ygg"])
        [row] = go.wait_peer(ours.key)
        self.assertTrue(row["inbound"] and row["up"], row)
        wait_until(lambda: "Connected outbound WSS: " in ours.log, 10, "our WSS link")
        self.assert_same_root(go, ours)

    def test_password_over_ws(self) -> None:
        go = self.go05("go", listen=["ws://127.0.0.1:0?password=sesame"])
        uri = go.listen_uri("ws")
        ours = self.ours(
            "ours",
            listen=["ws://127.0.0.1:0?password=opensesame"],
            peers=[f"{uri}?password=sesame"],
        )
        go.wait_peer(ours.key)

        bad = self.ours("bad", peers=[f"{uri}?password=wrong"])
        wait_until(lambda: WRONG in bad.log, 20, "our refusal of the wrong password")
        self.assertIn(f"Failed to dial WS {uri.split('://')[1]}: {WRONG}", bad.log)
        self.assertNotIn(bad.key, go.peer_keys())

        go.ctl("addPeer", f"uri={ours.listen_uri('ws')}?password=opensesame")
        wait_until(
            lambda: sum(p["up"] for p in go.peers() if p["key"] == ours.key) == 2,
            20,
            "Go's second link, dialled with the right password",
        )

    def test_plain_http_to_our_listener_is_answered_as_go_answers(self) -> None:
        ours = self.ours("ours", listen=["ws://127.0.0.1:0"])
        go = self.go05("go", listen=["ws://127.0.0.1:0"])
        for node in (ours, go):
            address = node.listen_uri("ws").split("://")[1]
            for path, status in (("/health", "200"), ("/healthz", "200"), ("/", "426")):
                with self.subTest(node=type(node).__name__, path=path):
                    answer = http_get(address, path)
                    self.assertEqual(answer.split()[1], status, answer)
                    if status == "200":
                        self.assertTrue(answer.endswith("\r\n\r\nOK"), answer)


def http_get(address: str, path: str) -> str:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.decode(errors="replace")


class GenconfTests(V05Case):
    def test_genconf_05_file_with_maxbackoff_peers_runs(self) -> None:
        """A file as 0.5.12's ``-genconf`` writes it (HJSON, comments and all), given Peers
        with ``?maxbackoff=`` and ``LogLookups: true``, runs on ours: the good peer links,
        the unreachable one is retried, LogLookups draws one warning.  The only other
        edits keep the test on loopback (no TUN, no multicast, the admin socket here)."""
        go = self.go05("go", listen=["tcp://127.0.0.1:0"])
        text = run([YGGDRASIL05, "-genconf"]).stdout
        self.assertIn("Peers: []", text)
        directory = Path(self.dir, "ours")
        directory.mkdir()
        peers = f'"{go.listen_uri("tcp")}?maxbackoff=2m" "ws://127.0.0.1:1?maxbackoff=30s"'
        text = text.replace("Peers: []", f"Peers: [{peers}]", 1)
        text = re.sub(r"IfName: \S+", "IfName: none", text, count=1)
        text = re.sub(
            r"MulticastInterfaces: \[.*?\n  \]",
            "MulticastInterfaces: []",
            text,
            count=1,
            flags=re.S,
        )
        admin = f"unix://{directory}/admin.sock"
        text = text.replace("{", f'{{\n  AdminListen: "{admin}"\n  LogLookups: true', 1)
        config = directory / "yggdrasil.conf"
        config.write_text(text)

        ours = Process([YGG, "run", "--config", str(config)], cwd=str(directory))
        self.addCleanup(ours.stop)
        ours.wait_for("Your IPv6 subnet is", 30)
        wait_until(
            lambda: [p for p in go.peers() if p["up"] and p["inbound"]], 30, "Go to list our link"
        )
        ours.wait_for("Failed to dial WS 127.0.0.1:1", 20)
        self.assertEqual(ours.output.count("LogLookups"), 1, ours.output)
        self.assertNotIn("Failed to add peer", ours.output)
