"""QUIC links with the real yggdrasil 0.5.12: each side dialling and listening, one with a
link password; Go's getPeers lists them and they stay up past v0.5's read deadlines."""

from __future__ import annotations

import time

from tests.nodes import wait_until
from tests.test_interop_v05_links import WRONG, V05Case


class QuicTests(V05Case):
    def test_quic_each_side_dialling(self) -> None:
        go = self.go05("go", listen=["quic://127.0.0.1:0"])
        ours = self.ours("ours", listen=["quic://127.0.0.1:0"], peers=[go.listen_uri("quic")])
        go.ctl("addPeer", f"uri={ours.listen_uri('quic')}")
        rows = go.wait_peer(ours.key, count=2)
        self.assertTrue(all(r["up"] for r in rows), rows)
        [outbound] = [r["remote"] for r in rows if not r["inbound"]]
        self.assertEqual(outbound, ours.listen_uri("quic"))
        [inbound] = [r["remote"] for r in rows if r["inbound"]]
        self.assertTrue(inbound.startswith("quic://127.0.0.1:"), inbound)
        for line in ("Connected outbound QUIC:", "Connected inbound QUIC:"):
            wait_until(lambda line=line: line in ours.log, 10, line)
        self.assert_same_root(go, ours)

        time.sleep(7)  # past the 3 s read deadline several times over
        rows = [p for p in go.peers() if p["key"] == ours.key]
        self.assertEqual(len(rows), 2)
        self.assertTrue(all(r["up"] and r["uptime"] >= 6 for r in rows), rows)
        self.assertNotIn("Disconnected", ours.log)
        self.assertNotIn("Disconnected", go.log)

    def test_password_over_quic(self) -> None:
        go = self.go05("go", listen=["quic://127.0.0.1:0?password=sesame"])
        uri = go.listen_uri("quic")
        ours = self.ours("ours", peers=[f"{uri}?password=sesame"])
        go.wait_peer(ours.key)
        bad = self.ours("bad", peers=[f"{uri}?password=wrong"])
        wait_until(lambda: WRONG in bad.log, 20, "our refusal of the wrong password")
        self.assertIn(f"Failed to dial QUIC {uri.split('://')[1]}: {WRONG}", bad.log)
        self.assertNotIn(bad.key, go.peer_keys())
