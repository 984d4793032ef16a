"""ygg.service.Node composed in process, with fake features and a MemoryReactor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ygg import address as addr
from ygg import config, features, tap
from ygg.errors import ConfigError
from ygg.interfaces import FeatureOption, IFeature, INode
from ygg.service import Node


@dataclass(frozen=True)
class FakeConfig:
    enable: bool = config.setting("Enable", False)
    word: str = config.setting("Word", "x")


class FakeService(Service):
    def __init__(self, node, section) -> None:
        self.node, self.section = node, section


@implementer(IPlugin, IFeature)
class FakeFeature:
    section = "Fake"
    schema = FakeConfig
    options = (FeatureOption("fake", "Enable", "on"), FeatureOption("fakeword", "Word", "w", True))

    def __init__(self, name: str = "fake") -> None:
        self.name = name

    def makeService(self, node, section) -> FakeService:
        return FakeService(node, section)


class Captured:
    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events]


def node(text: str = "{}", **kwargs) -> Node:
    cfg = dataclasses.replace(
        config.parse(text)[0], admin_listen="none", multicast_interfaces=(), if_name="none"
    )
    return Node(cfg, MemoryReactorClock(), available_features=[FakeFeature()], **kwargs)


class NodeTests(SynchronousTestCase):
    def test_provides_inode(self) -> None:
        n = node()
        verifyObject(INode, n)
        self.assertEqual(n.address, addr.address_for_key(n.public_key))
        self.assertEqual(n.subnet, addr.subnet_for_key(n.public_key))

    def test_logs_identity_once_running(self) -> None:
        captured = Captured(self)
        n = node()
        n.startService()
        self.assertEqual([t for t in captured.texts() if t.startswith("Your ")], [])
        n.reactor.run()  # MemoryReactor: fires the "when running" calls
        texts = captured.texts()
        self.assertIn(f"Your public key is {n.public_key.hex()}", texts)
        self.assertIn(f"Your IPv6 address is {addr.format_address(n.address)}", texts)
        self.assertIn(f"Your IPv6 subnet is {addr.format_subnet(n.subnet)}", texts)
        self.assertIn("Features: fake (off)", texts)
        self.successResultOf(n.stopService())

    def test_feature_enabled_by_config(self) -> None:
        n = node('{"fake": {"enable": true, "word": "hello"}}')
        self.assertEqual(n.features(), ["fake"])
        service = n.getServiceNamed("feature:fake")
        self.assertIs(service.node, n)
        self.assertEqual(service.section, FakeConfig(True, "hello"))
        n.startService()
        self.assertTrue(service.running)
        self.successResultOf(n.stopService())
        self.assertFalse(service.running)

    def test_feature_off_by_default(self) -> None:
        n = node()
        self.assertEqual(n.features(), [])
        self.assertEqual([s.name for s in n if (s.name or "").startswith("feature:")], [])

    def test_feature_enabled_by_switch(self) -> None:
        n = node(feature_options={"fake": True, "fakeword": "w2"})
        self.assertEqual(n.getServiceNamed("feature:fake").section, FakeConfig(True, "w2"))

    def test_unknown_section_warns_once(self) -> None:
        captured = Captured(self)
        n = node('{"Fake": {}, "Frobnicator": {"Enable": true}}')
        n.startService()
        warnings = [e for e in captured.events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("'Frobnicator'", captured.texts()[0])
        self.successResultOf(n.stopService())

    def test_mismatched_key_refused(self) -> None:
        from tests.helpers import load_json

        bad = load_json("keys.json")["vectors"][-1]["private_key"]
        with self.assertRaises(ConfigError) as caught:
            node(f'{{"PrivateKey": "{bad}"}}')
        self.assertEqual(caught.exception.key, "PrivateKey")


class TapTests(SynchronousTestCase):
    def test_options_and_make_service(self) -> None:
        options = tap.Options()
        options.parseOptions(["--autoconf"])
        service = tap.makeService(options, MemoryReactorClock())
        self.assertIsInstance(service, Node)

    def test_needs_a_config_source(self) -> None:
        from twisted.python.usage import UsageError

        with self.assertRaises(UsageError):
            tap.Options().parseOptions([])
        with self.assertRaises(UsageError):
            tap.Options().parseOptions(["--autoconf", "--config", "x"])

    def test_discovery_is_sorted_and_cached(self) -> None:
        found = features.discover()
        self.assertEqual([f.name for f in found], sorted(f.name for f in found))
        self.assertEqual([f.name for f in features.discover()], [f.name for f in found])
        for feature in found:
            verifyObject(IFeature, feature)
