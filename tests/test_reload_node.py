"""Node.reload and the runtime peers, on a MemoryReactor: apply, refuse, broken configs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from types import SimpleNamespace
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from tests.test_service import Captured, FakeConfig, FakeFeature
from ygg import config, tap
from ygg.features import Discovery
from ygg.interfaces import AdminError
from ygg.keys import NodeKey
from ygg.links.versions import V04, V05
from ygg.reload import ReloadError
from ygg.runtimestate import state_path
from ygg.service import Node

KEY = NodeKey.generate().private.hex()
OTHER_KEY = NodeKey.generate().private.hex()
#: Unix peers and listeners: the MemoryReactor records them, and nothing real is dialled.
PEERS = [f"unix:///ygg-reload-test/peer{n}.sock" for n in (1, 2, 3)]
LISTEN = [f"unix:///ygg-reload-test/listen{n}.sock" for n in (1, 2)]


def levels(captured: Captured, *wanted: LogLevel) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in captured.events if e.get("log_level") in wanted]


class ReloadCase(SynchronousTestCase):
    """A node started from a file in a directory of its own."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ygg-reload-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "ygg.conf")
        self.captured = Captured(self)

    def write(self, **keys: Any) -> None:
        data = {
            "PrivateKey": KEY,
            "AdminListen": "none",
            "IfName": "none",
            "MulticastInterfaces": [],
            **keys,
        }
        with open(self.path, "w") as f:
            f.write(json.dumps(data))

    def start(self, features=(), **keys: Any) -> Node:
        self.write(**keys)
        cfg, warnings = config.load(self.path)
        discovery = Discovery(tuple(features), (), ())
        node = Node(
            cfg, MemoryReactorClock(), discovery=discovery, warnings=warnings, config_path=self.path
        )
        node.startService()
        self.addCleanup(lambda: node.running and node.stopService())
        return node

    def reload(self, node: Node, **keys: Any) -> str:
        self.write(**keys)
        return self.successResultOf(node.reload())

    def persistent(self, node: Node) -> list[tuple[str, str]]:
        return sorted(node.links.persistent)


class PeerReloadTests(ReloadCase):
    def test_one_added_one_removed_the_third_untouched(self) -> None:
        node = self.start(Peers=PEERS[:2])
        dials = len(node.reactor.unixClients)
        kept = node.links.persistent[(PEERS[1], "")]
        line = self.reload(node, Peers=PEERS[1:])
        self.assertEqual(line, "Reload: +1 peer, -1 peer")
        self.assertEqual(self.persistent(node), [(PEERS[1], ""), (PEERS[2], "")])
        self.assertIs(node.links.persistent[(PEERS[1], "")], kept)  # not redialled
        self.assertTrue(kept.running)
        new = node.reactor.unixClients[dials:]
        self.assertEqual([address for address, *_ in new], ["/ygg-reload-test/peer3.sock"])
        self.assertIn("Reload: +1 peer, -1 peer", levels(self.captured, LogLevel.info))

    def test_no_change(self) -> None:
        node = self.start(Peers=PEERS[:1])
        self.assertEqual(self.reload(node, Peers=PEERS[:1]), "Reload: no change")

    def test_interface_peers(self) -> None:
        node = self.start(InterfacePeers={"lo": PEERS[:1]})
        self.reload(node, InterfacePeers={"lo": PEERS[:1], "ygg-nosuch0": PEERS[1:2]})
        self.assertEqual(self.persistent(node), [(PEERS[0], "lo"), (PEERS[1], "ygg-nosuch0")])


class BrokenReloadTests(ReloadCase):
    def assert_unchanged(self, node: Node, before: config.NodeConfig, error: str) -> None:
        failure = self.failureResultOf(node.reload(), ReloadError)
        self.assertIn(error, str(failure.value))
        self.assertIs(node.config, before)
        errors = levels(self.captured, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertTrue(errors[0].startswith(f"Reload failed: {self.path}: "), errors[0])
        self.assertTrue(errors[0].endswith("; nothing changed"), errors[0])

    def test_broken_file(self) -> None:
        node = self.start(Peers=PEERS[:1])
        before = node.config
        with open(self.path, "w") as f:
            f.write('{ "Peers": [ "unix:///x.sock" ')  # cut short
        self.assert_unchanged(node, before, "not valid HJSON or JSON")
        self.assertEqual(self.persistent(node), [(PEERS[0], "")])

    def test_a_bad_value(self) -> None:
        node = self.start(Peers=PEERS[:1])
        before = node.config
        self.write(Peers=PEERS[1:2], IfMTU="big")
        self.assert_unchanged(node, before, "IfMTU: expected an integer")
        self.assertEqual(self.persistent(node), [(PEERS[0], "")])

    def test_a_bad_new_peer_changes_nothing(self) -> None:
        node = self.start(Peers=PEERS[:1], NodeInfo={"a": 1})
        before, info = node.config, node.proto.node_info
        self.write(Peers=[PEERS[1], "foo://x"], NodeInfo={"a": 2})
        self.assert_unchanged(node, before, "Peers: foo://x: ")
        self.assertEqual(self.persistent(node), [(PEERS[0], "")])
        self.assertEqual(node.proto.node_info, info)

    def test_a_bad_feature_section_changes_nothing(self) -> None:
        node = self.start(features=[FakeFeature()], Fake={"Enable": True}, Peers=PEERS[:1])
        service = node.getServiceNamed("feature:fake").service
        before = node.config
        self.write(Fake={"Enable": True, "Word": 5}, Peers=PEERS[1:2])
        self.assert_unchanged(node, before, "Fake.Word: expected a string")
        self.assertIs(node.getServiceNamed("feature:fake").service, service)
        self.assertTrue(service.running)
        self.assertEqual(self.persistent(node), [(PEERS[0], "")])

    def test_no_file(self) -> None:
        cfg, _ = config.parse(json.dumps({"AdminListen": "none", "IfName": "none"}))
        node = Node(cfg, MemoryReactorClock(), discovery=Discovery((), (), ()))
        failure = self.failureResultOf(node.reload(), ReloadError)
        self.assertIn("did not come from a file", str(failure.value))


class RefusedReloadTests(ReloadCase):
    def test_key_change_refused_node_runs(self) -> None:
        node = self.start(Peers=PEERS[:1])
        key = node.config.private_key
        line = self.reload(node, PrivateKey=OTHER_KEY, Peers=PEERS[:2])
        self.assertEqual(line, "Reload: +1 peer, PrivateKey refused (restart to apply)")
        self.assertEqual(node.config.private_key, key)
        self.assertEqual(node.public_key, bytes.fromhex(KEY[64:]))
        self.assertTrue(node.running)
        warnings = levels(self.captured, LogLevel.warn)
        self.assertEqual(
            [w for w in warnings if w.startswith("Reload:")],
            ["Reload: the node's key cannot change while the node runs; keeping the running value"],
        )
        # The next reload of the same file says the same, and nothing else.
        self.assertEqual(
            self.successResultOf(node.reload()), "Reload: PrivateKey refused (restart to apply)"
        )

    def test_versions_kept_so_the_admin_api_stays(self) -> None:
        node = self.start()
        self.reload(node, ProtocolVersions=["0.4"], IfName="ygg-x", IfMTU=1300)
        self.assertEqual(node.config.protocol_versions, (V04, V05))
        self.assertEqual((node.config.if_name, node.config.if_mtu), ("none", 65535))
        self.assertEqual(node.versions(), (V04, V05))


class LiveKeyReloadTests(ReloadCase):
    def test_listen_added_and_removed(self) -> None:
        node = self.start(Listen=LISTEN[:1])
        old = node.links.listeners[0]
        line = self.reload(node, Listen=LISTEN[1:])
        self.assertEqual(line, "Reload: +1 listener, -1 listener")
        self.assertEqual([listener.text for listener in node.links.listeners], LISTEN[1:])
        self.assertFalse(old.running)
        self.assertEqual(
            [p[0] for p in node.reactor.unixServers],
            ["/ygg-reload-test/listen1.sock", "/ygg-reload-test/listen2.sock"],
        )

    def test_node_info(self) -> None:
        node = self.start(NodeInfo={"name": "a"})
        self.assertEqual(self.reload(node, NodeInfo={"name": "b"}), "Reload: NodeInfo changed")
        for proto in (node.proto, node.proto05):
            self.assertIn(b'"name":"b"', proto.node_info)
        self.reload(node, NodeInfo={"name": "b"}, NodeInfoPrivacy=True)
        self.assertNotIn(b"buildname", node.proto.node_info)

    def test_multicast_replaced(self) -> None:
        node = self.start()
        old = node.multicast
        line = self.reload(node, MulticastInterfaces=[{"Regex": "ygg-nosuch", "Port": 0}])
        self.assertEqual(line, "Reload: MulticastInterfaces changed")
        self.assertIsNot(node.multicast, old)
        self.assertFalse(old.running)
        self.assertTrue(node.multicast.running)
        self.assertEqual([e.regex for e in node.multicast.entries], ["ygg-nosuch"])

    def test_allowed_public_keys_close_refused_inbound_links(self) -> None:
        node = self.start()
        allowed, other = "ab" * 32, "cd" * 32
        closed: list[str] = []

        def link(key: str, outbound: bool = False, local: bool = False) -> Any:
            spec = SimpleNamespace(outbound=outbound, forced=local, local=local)
            return SimpleNamespace(
                spec=spec,
                remote_key=bytes.fromhex(key),
                version=V04,
                close=lambda reason: closed.append((key, outbound, local, reason)),
            )

        for i, fake in enumerate(
            [link(allowed), link(other), link(other, outbound=True), link(other, local=True)]
        ):
            node.links.links[i] = fake  # type: ignore[index]
        line = self.reload(node, AllowedPublicKeys=[allowed])
        self.assertEqual(line, "Reload: AllowedPublicKeys changed (1 link closed)")
        self.assertEqual(closed, [(other, False, False, "not in AllowedPublicKeys")])
        node.links.links.clear()


class FeatureReloadTests(ReloadCase):
    def test_enable_change_disable(self) -> None:
        node = self.start(features=[FakeFeature()])
        self.assertEqual(self.reload(node, Fake={"Enable": True}), "Reload: feature fake started")
        service = node.getServiceNamed("feature:fake").service
        self.assertTrue(service.running)
        call = node.admin.call(node, "getWord")
        self.assertEqual(self.successResultOf(call), {"word": "x"})

        line = self.reload(node, Fake={"Enable": True, "Word": "y"})
        self.assertEqual(line, "Reload: feature fake restarted")
        self.assertFalse(service.running)
        self.assertEqual(self.successResultOf(node.admin.call(node, "getWord")), {"word": "y"})
        self.assertEqual(node.feature_config("fake"), FakeConfig(True, "y"))

        self.assertEqual(self.reload(node, Fake={"Enable": False}), "Reload: feature fake stopped")
        self.assertEqual(node.feature_status(), {"fake": "off"})
        self.failureResultOf(node.admin.call(node, "getWord"), AdminError)

    def test_a_feature_that_fails_to_start(self) -> None:
        node = self.start(features=[FakeFeature(fail_at="start")])
        line = self.reload(node, Fake={"Enable": True})
        self.assertEqual(line, "Reload: feature fake failed to start")
        self.assertTrue(node.feature_status()["fake"].startswith("failed"))
        self.assertTrue(node.running)
        self.flushLoggedErrors(RuntimeError)


class RuntimePeerTests(ReloadCase):
    def call(self, node: Node, name: str, **args: Any) -> Any:
        return self.successResultOf(node.admin.call(node, name, args))

    def test_admin_changes_kept_and_applied_at_start(self) -> None:
        node = self.start(Peers=PEERS[:2])
        self.call(node, "addPeer", uri=PEERS[2])
        self.call(node, "removePeer", uri=PEERS[0])
        state = self.call(node, "getRuntimeState")
        self.assertEqual(state["file"], state_path(self.path))
        self.assertEqual(state["added"], [{"uri": PEERS[2], "interface": ""}])
        self.assertEqual(state["removed"], [{"uri": PEERS[0], "interface": ""}])
        self.successResultOf(node.stopService())

        again = self.start(Peers=PEERS[:2])
        self.assertEqual(self.persistent(again), [(PEERS[1], ""), (PEERS[2], "")])

    def test_reload_keeps_the_state_on_top(self) -> None:
        node = self.start(Peers=PEERS[:2])
        self.call(node, "removePeer", uri=PEERS[0])
        self.call(node, "addPeer", uri=PEERS[2])
        # The file drops PEERS[1]: only that changes.
        self.assertEqual(self.reload(node, Peers=PEERS[:1]), "Reload: -1 peer")
        self.assertEqual(self.persistent(node), [(PEERS[2], "")])

    def test_clear_runs_the_config_again(self) -> None:
        node = self.start(Peers=PEERS[:1])
        self.call(node, "removePeer", uri=PEERS[0])
        self.call(node, "addPeer", uri=PEERS[1])
        cleared = self.call(node, "clearRuntimeState")
        self.assertEqual(
            cleared,
            {
                "cleared": {
                    "added": [{"uri": PEERS[1], "interface": ""}],
                    "removed": [{"uri": PEERS[0], "interface": ""}],
                }
            },
        )
        self.assertEqual(self.persistent(node), [(PEERS[0], "")])
        self.assertFalse(os.path.exists(state_path(self.path)))
        self.assertEqual(self.call(node, "getRuntimeState")["added"], [])

    def test_the_config_file_is_never_written(self) -> None:
        node = self.start(Peers=PEERS[:1])
        with open(self.path, "rb") as f:
            before = f.read()
        self.call(node, "addPeer", uri=PEERS[1])
        self.call(node, "removePeer", uri=PEERS[0])
        self.successResultOf(node.reload())
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_reload_by_admin_and_unlisted(self) -> None:
        node = self.start(Peers=PEERS[:1])
        self.write(Peers=PEERS[:2])
        self.assertEqual(self.call(node, "reload"), {"reload": "Reload: +1 peer"})
        listed = [e["command"] for e in self.call(node, "list")["list"]]
        for name in ("reload", "getruntimestate", "clearruntimestate"):
            self.assertNotIn(name, listed)
            self.assertIsNotNone(node.admin.lookup(name, node))
        with open(self.path, "w") as f:
            f.write("{")
        error = self.failureResultOf(node.admin.call(node, "reload"), AdminError)
        self.assertIn("not valid HJSON or JSON", str(error.value))


class ConfigFileTests(ReloadCase):
    def test_only_a_regular_file_is_reloadable(self) -> None:
        self.write()
        self.assertEqual(tap.reloadable(self.path), self.path)
        relative = os.path.relpath(self.path)
        self.assertEqual(tap.reloadable(relative), self.path)  # absolute: twistd may chdir
        for path in (None, "", "/dev/stdin", "/proc/self/fd/0", self.dir, self.path + ".no"):
            self.assertIsNone(tap.reloadable(path), path)

    def test_tap_gives_the_node_its_file(self) -> None:
        self.write(Peers=PEERS[:1])
        options = tap.Options()
        options.parseOptions(["--config", self.path])
        node = tap.makeService(options, MemoryReactorClock())
        self.assertEqual(node.config_path, self.path)
        self.assertEqual(node.runtime.path, state_path(self.path))
