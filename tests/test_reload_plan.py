"""ygg.reload.plan: the difference between two configs, as data (no reactor)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from ygg import config
from ygg.errors import ConfigError
from ygg.interfaces import FeatureOption
from ygg.reload import FeatureChange, plan, refusal, summary
from ygg.runtimestate import RuntimeState

KEY = "11" * 64
OTHER_KEY = "22" * 64


def cfg(**keys: Any) -> config.NodeConfig:
    keys.setdefault("PrivateKey", KEY)
    parsed, _ = config.parse(json.dumps(keys))
    return parsed


@dataclass(frozen=True)
class WordConfig:
    enable: bool = config.setting("Enable", False)
    word: str = config.setting("Word", "x")


class WordFeature:
    schema = WordConfig

    def __init__(self, name: str = "word") -> None:
        self.name = name
        self.section = name.capitalize()
        self.options = (FeatureOption(name, "Enable", "on"),)


class PeerTests(SynchronousTestCase):
    def test_only_the_entries_that_changed(self) -> None:
        old = cfg(Peers=["tcp://a:1", "tcp://b:1", "tcp://c:1"])
        new = cfg(Peers=["tcp://c:1", "tcp://b:1", "tcp://d:1"])
        p = plan(old, new)
        self.assertEqual(p.add_peers, (("tcp://d:1", ""),))
        self.assertEqual(p.remove_peers, (("tcp://a:1", ""),))
        self.assertEqual(p.config.peers, new.peers)
        self.assertEqual(summary(p), "Reload: +1 peer, -1 peer")

    def test_interface_peers_are_peers_of_an_interface(self) -> None:
        old = cfg(Peers=["tcp://a:1"], InterfacePeers={"eth0": ["tcp://a:1"]})
        new = cfg(Peers=[], InterfacePeers={"eth0": ["tcp://a:1"], "eth1": ["tcp://a:1"]})
        p = plan(old, new)
        self.assertEqual(p.add_peers, (("tcp://a:1", "eth1"),))
        self.assertEqual(p.remove_peers, (("tcp://a:1", ""),))

    def test_a_changed_query_is_another_peer(self) -> None:
        p = plan(cfg(Peers=["tcp://a:1"]), cfg(Peers=["tcp://a:1?priority=2"]))
        self.assertEqual(p.add_peers, (("tcp://a:1?priority=2", ""),))
        self.assertEqual(p.remove_peers, (("tcp://a:1", ""),))

    def test_runtime_state_stays_on_top(self) -> None:
        """A peer removed at runtime stays removed when the file still lists it, one added
        at runtime stays when the file does not list it; only the file's changes move."""
        state = RuntimeState(added=[("tcp://x:1", "")], removed=[("tcp://a:1", "")])
        old = cfg(Peers=["tcp://a:1", "tcp://b:1"])
        new = cfg(Peers=["tcp://a:1", "tcp://c:1"])
        p = plan(old, new, state=state)
        self.assertEqual(p.add_peers, (("tcp://c:1", ""),))
        self.assertEqual(p.remove_peers, (("tcp://b:1", ""),))
        # The file now lists the runtime peer: it was up already.
        self.assertFalse(plan(old, cfg(Peers=["tcp://a:1", "tcp://b:1", "tcp://x:1"]), state=state))


class LiveKeyTests(SynchronousTestCase):
    def test_no_change(self) -> None:
        same = cfg(Peers=["tcp://a:1"], Listen=["tcp://[::]:1"], NodeInfo={"a": 1})
        p = plan(same, cfg(Peers=["tcp://a:1"], Listen=["tcp://[::]:1"], NodeInfo={"a": 1}))
        self.assertFalse(p)
        self.assertEqual(p.refused, ())
        self.assertEqual(summary(p), "Reload: no change")

    def test_listen(self) -> None:
        old = cfg(Listen=["tcp://[::]:1", "tls://[::]:2"])
        p = plan(old, cfg(Listen=["tls://[::]:2", "tls://[::]:3"]))
        self.assertEqual(p.add_listen, ("tls://[::]:3",))
        self.assertEqual(p.remove_listen, ("tcp://[::]:1",))
        self.assertEqual(summary(p), "Reload: +1 listener, -1 listener")

    def test_multicast_allowed_keys_node_info(self) -> None:
        old = cfg()
        new = cfg(
            MulticastInterfaces=[{"Regex": "eth0"}],
            AllowedPublicKeys=["ab" * 32],
            NodeInfoPrivacy=True,
        )
        p = plan(old, new)
        self.assertTrue(p.multicast and p.allowed_public_keys and p.node_info)
        self.assertEqual(p.refused, ())
        self.assertEqual(
            summary(p, closed=2),
            "Reload: MulticastInterfaces changed, AllowedPublicKeys changed (2 links closed), "
            "NodeInfo changed",
        )

    def test_allowed_keys_in_another_order_is_no_change(self) -> None:
        a, b = "ab" * 32, "cd" * 32
        self.assertFalse(plan(cfg(AllowedPublicKeys=[a, b]), cfg(AllowedPublicKeys=[b, a])))


class RefusedTests(SynchronousTestCase):
    def test_each_fixed_key_once_and_the_old_value_kept(self) -> None:
        old = cfg(IfName="auto", IfMTU=1500, Peers=["tcp://a:1"])
        new = cfg(
            PrivateKey=OTHER_KEY,
            IfName="ygg9",
            IfMTU=9000,
            ProtocolVersions=["0.4"],
            AdminListen="tcp://127.0.0.1:1",
            AdminAMP={"Listen": "tcp:1"},
            GroupPassword="x",
            Peers=["tcp://b:1"],
        )
        p = plan(old, new)
        self.assertEqual(
            p.refused,
            (
                "AdminListen",
                "PrivateKey",
                "IfName",
                "IfMTU",
                "AdminAMP",
                "ProtocolVersions",
                "GroupPassword",
            ),
        )
        kept = p.config
        self.assertEqual(
            (kept.private_key, kept.public_key, kept.if_name, kept.if_mtu),
            (old.private_key, old.public_key, "auto", 1500),
        )
        self.assertEqual(kept.protocol_versions, old.protocol_versions)
        self.assertEqual((kept.admin_listen, kept.admin_amp), (old.admin_listen, old.admin_amp))
        self.assertEqual(kept.group_password, "")
        # What may change still does.
        self.assertEqual(p.add_peers, (("tcp://b:1", ""),))
        self.assertIn("IfName refused (restart to apply)", summary(p))

    def test_the_public_key_alone_is_the_key(self) -> None:
        old = cfg(PublicKey=KEY[64:])
        p = plan(old, cfg(PublicKey="ab" * 32))
        self.assertEqual(p.refused, ("PrivateKey",))
        self.assertEqual(p.config.public_key, KEY[64:])

    def test_a_file_without_a_key_keeps_the_running_one(self) -> None:
        """Each read of a file without PrivateKey makes a new key: not a change."""
        old, _ = config.parse("{}")
        new, _ = config.parse("{}")
        self.assertNotEqual(old.private_key, new.private_key)
        p = plan(old, new)
        self.assertEqual(p.refused, ())
        self.assertEqual(p.config.private_key, old.private_key)
        # But a key taken out of a file that had one is a change of key.
        self.assertEqual(plan(cfg(), new).refused, ("PrivateKey",))

    def test_refusal_line(self) -> None:
        self.assertEqual(
            refusal("IfName"),
            "Reload: IfName cannot change while the node runs; keeping the running value",
        )
        self.assertIn("the node's key cannot change", refusal("PrivateKey"))


class FeatureTests(SynchronousTestCase):
    def plan(self, old: dict, new: dict, running=(), **kwargs: Any):
        return plan(cfg(**old), cfg(**new), features=[WordFeature()], running=running, **kwargs)

    def test_newly_enabled_started(self) -> None:
        p = self.plan({}, {"Word": {"Enable": True}})
        self.assertEqual(p.features, (FeatureChange("word", "start", WordConfig(True, "x")),))
        self.assertEqual(summary(p), "Reload: feature word started")

    def test_changed_restarted_and_disabled_stopped(self) -> None:
        on = {"Word": {"Enable": True}}
        p = self.plan(on, {"Word": {"Enable": True, "Word": "y"}}, running=["word"])
        self.assertEqual(p.features, (FeatureChange("word", "restart", WordConfig(True, "y")),))
        p = self.plan(on, {}, running=["word"])
        self.assertEqual(p.features, (FeatureChange("word", "stop"),))
        self.assertEqual(summary(p, failed=()), "Reload: feature word stopped")

    def test_unchanged_section_is_left_alone(self) -> None:
        """Same settings (the keys' case or order aside): nothing, running or not."""
        a = {"Word": {"Enable": True, "Word": "y"}}
        b = {"word": {"word": "y", "enable": True}}
        self.assertFalse(self.plan(a, b, running=["word"]))
        self.assertFalse(self.plan(a, b))

    def test_command_line_options_still_win(self) -> None:
        p = self.plan({}, {"Word": {"Word": "z"}}, running=["word"], overrides={"word": True})
        self.assertEqual(p.features, (FeatureChange("word", "restart", WordConfig(True, "z")),))

    def test_a_bad_section_is_a_config_error(self) -> None:
        error = self.assertRaises(
            ConfigError, self.plan, {}, {"Word": {"Enable": 1}}, running=["word"]
        )
        self.assertEqual(str(error), "Word.Enable: expected true or false, got 1")

    def test_warnings_of_the_new_file(self) -> None:
        p = self.plan({}, {"Word": {"Wrod": 1}, "Nosuch": {}})
        self.assertEqual(
            list(p.warnings), ["Word.Wrod: unknown key", "unknown config key 'Nosuch' ignored"]
        )

    def test_failed_start_in_the_summary(self) -> None:
        p = self.plan({}, {"Word": {"Enable": True}})
        self.assertEqual(summary(p, failed=["word"]), "Reload: feature word failed to start")
