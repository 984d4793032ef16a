"""Reload by SIGHUP and runtime peers across a restart: ``ygg run`` with three Go 0.4.7
peers, all on loopback, read with the Go node's yggdrasilctl."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import TWISTD, YGG, require_go
from tests.nodes import GoNode, YggNode, remove_tree, short_tempdir, wait_until
from tests.processes import Process
from ygg.keys import NodeKey
from ygg.runtimestate import state_path


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ReloadInteropTests(SynchronousTestCase):
    def setUp(self) -> None:
        require_go()
        self.dir = short_tempdir("ygrl")
        self.addCleanup(remove_tree, self.dir)
        self.go = []
        for name in ("go1", "go2", "go3"):
            node = GoNode(f"{self.dir}/{name}", listen=["tcp://127.0.0.1:0"])
            node.start()
            self.addCleanup(node.stop)
            self.go.append(node)

    def uri(self, n: int) -> str:
        return self.go[n].listen_uri("tcp")

    def up_keys(self, ours: YggNode) -> set[str]:
        return {p["key"] for p in ours.peers() if p.get("up", True) and p.get("key")}

    def uptime(self, ours: YggNode, key: str) -> tuple[float, float]:
        """The link's uptime as getPeers says it, and when we asked (monotonic)."""
        (row,) = [p for p in ours.peers() if p.get("key") == key]
        return row["uptime"], time.monotonic()

    def assert_kept_growing(self, before: tuple[float, float], after: tuple[float, float]) -> None:
        """Up all along: the uptime grew by the time that passed (a redial resets it)."""
        (u1, t1), (u2, t2) = before, after
        self.assertGreaterEqual(u2, u1 + (t2 - t1) - 0.5, (before, after))

    def hangup(self, ours: YggNode, line: str) -> str:
        """SIGHUP, and the log line that answers it (the next one containing ``line``)."""
        assert ours.process is not None
        seen = ours.log.count(line)
        os.kill(ours.process.proc.pid, signal.SIGHUP)
        wait_until(lambda: ours.log.count(line) > seen, 20, f"{line!r} after SIGHUP")
        return [text for text in ours.log.splitlines() if line in text][-1]

    def test_sighup_broken_file_key_change_and_runtime_peer_across_restart(self) -> None:
        go1, go2, go3 = self.go
        ours = YggNode(f"{self.dir}/ours", peers=[self.uri(0), self.uri(1)])
        ours.start()
        self.addCleanup(ours.stop)
        wait_until(lambda: {go1.key, go2.key} <= self.up_keys(ours), 30, "two links up")
        # Up long enough that a redial (uptime from 0 again) cannot pass for growth.
        wait_until(lambda: self.uptime(ours, go2.key)[0] >= 3, 30, "three seconds of uptime")
        before = self.uptime(ours, go2.key)

        # One peer added and one removed in the file.
        ours.config["Peers"] = [self.uri(1), self.uri(2)]
        ours.write_config()
        line = self.hangup(ours, "Reload: ")
        self.assertTrue(line.endswith("Reload: +1 peer, -1 peer"), line)
        wait_until(lambda: go3.key in self.up_keys(ours), 30, "the new link up")
        wait_until(lambda: go1.key not in self.up_keys(ours), 30, "the removed link gone")
        self.assertNotIn(go1.key, [p.get("key") for p in ours.peers()])
        after = self.uptime(ours, go2.key)
        self.assert_kept_growing(before, after)

        # A broken file: one error line, nothing changes.
        errors = ours.log.count("Reload failed")
        Path(ours.config_path).write_text('{ "Peers": [ "tcp://127.0.0.1:1" ')
        line = self.hangup(ours, "Reload failed: ")
        self.assertIn(ours.config_path, line)
        self.assertTrue(line.endswith("; nothing changed"), line)
        time.sleep(1)
        self.assertEqual(ours.log.count("Reload failed"), errors + 1)
        self.assertEqual(self.up_keys(ours), {go2.key, go3.key})
        self.assert_kept_growing(after, self.uptime(ours, go2.key))

        # A new key: refused in one line, the node runs on with its own.
        good = dict(ours.config)
        ours.config["PrivateKey"] = NodeKey.generate().private.hex()
        ours.config["PublicKey"] = ours.config["PrivateKey"][64:]
        ours.write_config()
        line = self.hangup(ours, "Reload: PrivateKey refused")
        self.assertTrue(line.endswith("Reload: PrivateKey refused (restart to apply)"), line)
        self.assertEqual(ours.log.count("Reload: the node's key cannot change"), 1)
        self.assertEqual(ours.ctl("getSelf")["key"], good["PrivateKey"][64:])
        self.assertEqual(self.up_keys(ours), {go2.key, go3.key})
        ours.config = good

        # The user's file, HJSON with a comment, back as it was: no change.
        text = "# my node, my comments\n" + json.dumps(ours.config, indent=4) + "\n"
        Path(ours.config_path).write_text(text)
        self.assertTrue(self.hangup(ours, "Reload: ").endswith("Reload: no change"))
        self.assertEqual(ours.ctl("reload"), {"reload": "Reload: no change"})  # by name
        kept = digest(ours.config_path)

        # addPeer at runtime (0.4.7's yggdrasilctl), stop, start: the peer is back.
        ours.ctl("addPeer", f"uri={self.uri(0)}")
        wait_until(lambda: go1.key in self.up_keys(ours), 30, "the runtime peer up")
        state = json.loads(Path(state_path(ours.config_path)).read_text())
        self.assertEqual(state["added"], [{"uri": self.uri(0), "interface": ""}])
        self.assertEqual(ours.stop(), 0)
        self.assertEqual(digest(ours.config_path), kept)

        ours.process = Process(ours.argv(), cwd=ours.dir)  # the same file, not rewritten
        ours.process.wait_for("Your IPv6 subnet is", timeout=30)
        wait_until(lambda: {go1.key, go2.key, go3.key} <= self.up_keys(ours), 30, "three links up")
        self.assertEqual(digest(ours.config_path), kept)
        shown = ours.ctl("getRuntimeState")
        self.assertEqual(shown["added"], [{"uri": self.uri(0), "interface": ""}])
        self.assertEqual(shown["file"], state_path(ours.config_path))


class FrontDoorTests(SynchronousTestCase):
    """SIGHUP under twistd, and a node whose config came from standard input."""

    def setUp(self) -> None:
        self.dir = short_tempdir("ygrd")
        self.addCleanup(remove_tree, self.dir)
        self.path = os.path.join(self.dir, "node.conf")
        self.config = {
            "AdminListen": "none",
            "IfName": "none",
            "MulticastInterfaces": [],
            "PrivateKey": NodeKey.generate().private.hex(),
        }
        Path(self.path).write_text(json.dumps(self.config))

    def start(self, *argv: str) -> Process:
        proc = Process(argv, cwd=self.dir)
        self.addCleanup(proc.kill)
        proc.wait_for("Your IPv6 subnet is", timeout=30)
        return proc

    def test_twistd_reloads_its_file(self) -> None:
        """Given by a relative path: twistd may change directory, the node keeps the file."""
        proc = self.start(TWISTD, "-n", "--pidfile=", "ygg", "--config", "node.conf")
        changed = {**self.config, "NodeInfo": {"name": "x"}, "Listen": ["tcp://127.0.0.1:0"]}
        Path(self.path).write_text(json.dumps(changed))
        os.kill(proc.proc.pid, signal.SIGHUP)
        proc.wait_for("Reload: +1 listener, NodeInfo changed")
        proc.wait_for("TCP listener started on 127.0.0.1:")
        self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)

    def test_config_from_stdin_has_no_file(self) -> None:
        proc = self.start("sh", "-c", f"exec {YGG} -useconf < {self.path}")
        os.kill(proc.proc.pid, signal.SIGHUP)
        line = proc.wait_for("Reload failed: ")
        self.assertIn("the config did not come from a file", line)
        self.assertTrue(line.endswith("; nothing changed"), line)
        self.assertEqual(proc.stop(signal.SIGTERM), 0, proc.output)
        self.assertFalse(os.path.exists("/dev/stdin.state.json"))
