"""ygg.service.Node composed in process, with fake features and a MemoryReactor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from ygg import address as addr
from ygg import config, features, tap
from ygg.errors import ConfigError
from ygg.features import Discovery, Failure
from ygg.interfaces import AdminError, FeatureOption, IFeature, INode, Method
from ygg.service import Node


@dataclass(frozen=True)
class FakeConfig:
    enable: bool = config.setting("Enable", False)
    word: str = config.setting("Word", "x")


class FakeService(Service):
    """Registers ``getWord`` (or the method names it is given) when it starts."""

    def __init__(self, node, section, methods=("getWord",), fail_at: str = "") -> None:
        self.node, self.section = node, section
        self.methods, self.fail_at = methods, fail_at
        self.registered: list[bool] = []

    def startService(self) -> None:
        super().startService()
        for name in self.methods:
            method = Method(name, "the word", lambda node, args: {"word": self.section.word})
            self.registered.append(self.node.register_admin_method(method))
        if self.fail_at == "start":
            raise RuntimeError("no start today")

    def stopService(self):
        super().stopService()
        if self.fail_at == "stop":
            raise OSError("cannot stop")


@implementer(IFeature)
class FakeFeature:
    schema = FakeConfig
    commands = ()

    def __init__(
        self, name: str = "fake", methods=("getWord",), fail_at: str = "", section: str = ""
    ) -> None:
        self.name = name
        self.section = section or name.capitalize()
        self.options = (
            FeatureOption(name, "Enable", "on"),
            FeatureOption(f"{name}word", "Word", "w", True),
        )
        self.methods, self.fail_at = methods, fail_at

    def makeService(self, node, section) -> FakeService:
        if self.fail_at == "make":
            raise ValueError("bad luck")
        return FakeService(node, section, self.methods, self.fail_at)


class Captured:
    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events]


def node(text: str = "{}", *, found=None, failures=(), **kwargs) -> Node:
    cfg, warnings = config.parse(text)
    cfg = dataclasses.replace(cfg, admin_listen="none", multicast_interfaces=(), if_name="none")
    discovery = Discovery(tuple(found or (FakeFeature(),)), tuple(failures), ())
    return Node(cfg, MemoryReactorClock(), discovery=discovery, warnings=warnings, **kwargs)


def errors(captured: Captured) -> list[str]:
    from twisted.logger import formatEvent

    return [
        formatEvent(e)
        for e in captured.events
        if e.get("log_level") in (LogLevel.error, LogLevel.critical)
    ]


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
        service = n.getServiceNamed("feature:fake").service
        verifyObject(INode, service.node)
        self.assertEqual(service.node.public_key, n.public_key)
        self.assertEqual(service.section, FakeConfig(True, "hello"))
        self.assertEqual(n.feature_config("fake"), FakeConfig(True, "hello"))
        self.assertIsNone(n.feature_config("other"))
        n.startService()
        self.assertTrue(service.running)
        self.assertEqual(self.successResultOf(n.call_admin("getword")), {"word": "hello"})
        self.successResultOf(n.stopService())
        self.assertFalse(service.running)
        # Its methods go with it, and come back when it starts again.
        self.failureResultOf(n.call_admin("getWord"), AdminError)
        n.startService()
        self.assertEqual(self.successResultOf(n.call_admin("getWord")), {"word": "hello"})
        self.successResultOf(n.stopService())

    def test_a_feature_sees_only_inode(self) -> None:
        n = node('{"fake": {"enable": true}}')
        view = n.getServiceNamed("feature:fake").service.node
        self.assertIsNot(view, n)
        with self.assertRaises(AttributeError):
            view.router  # noqa: B018  (the node's internals are not for features)

    def test_feature_off_by_default(self) -> None:
        n = node()
        self.assertEqual(n.features(), [])
        self.assertEqual([s.name for s in n if (s.name or "").startswith("feature:")], [])

    def test_feature_enabled_by_switch(self) -> None:
        n = node(feature_options={"fake": True, "fakeword": "w2"})
        self.assertEqual(n.getServiceNamed("feature:fake").service.section, FakeConfig(True, "w2"))

    def test_unknown_section_warns_once(self) -> None:
        captured = Captured(self)
        n = node('{"Fake": {}, "Frobnicator": {"Enable": true}}')
        n.startService()
        warnings = [e for e in captured.events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("'Frobnicator'", captured.texts()[0])
        self.successResultOf(n.stopService())

    def test_unknown_key_in_a_feature_section_warns(self) -> None:
        captured = Captured(self)
        n = node('{"Fake": {"Enable": true, "Wrod": "x"}, "AdminShell": {"Lisen": "y"}}')
        n.startService()
        texts = captured.texts()
        self.assertIn("Config: Fake.Wrod: unknown key", texts)
        self.assertIn("Config: AdminShell.Lisen: unknown key", texts)
        self.successResultOf(n.stopService())

    def test_mismatched_key_refused(self) -> None:
        from tests.helpers import load_json

        bad = load_json("keys.json")["vectors"][-1]["private_key"]
        with self.assertRaises(ConfigError) as caught:
            node(f'{{"PrivateKey": "{bad}"}}')
        self.assertEqual(caught.exception.key, "PrivateKey")


class FailureIsolationTests(SynchronousTestCase):
    """A feature that fails is one error line naming it; the node and the others run on."""

    def started(self, *found: FakeFeature, failures=(), text: str = "") -> tuple[Node, Captured]:
        captured = Captured(self)
        sections = ", ".join(f'"{f.section}": {{"Enable": true}}' for f in found)
        n = node(text or "{" + sections + "}", found=found, failures=failures)
        n.startService()
        n.reactor.run()
        self.addCleanup(lambda: n.running and n.stopService())
        return n, captured

    def assertAnswers(self, n: Node) -> None:
        self.assertEqual(self.successResultOf(n.call_admin("getSelf"))["key"], n.public_key.hex())

    def test_failing_make_service(self) -> None:
        n, captured = self.started(FakeFeature("bad", fail_at="make"), FakeFeature("good"))
        self.assertEqual(
            errors(captured), ["Feature bad failed to start: ValueError: bad luck; it is off"]
        )
        self.assertEqual(n.features(), ["good"])
        self.assertIn("Features: bad (failed: ValueError: bad luck), good (on)", captured.texts())
        self.assertAnswers(n)
        tracebacks = [e for e in captured.events if e.get("log_failure") is not None]
        self.assertEqual({e["log_level"] for e in tracebacks}, {LogLevel.debug})
        self.flushLoggedErrors(ValueError)

    def test_failing_start_service(self) -> None:
        n, captured = self.started(FakeFeature("bad", ("getBad",), "start"), FakeFeature("good"))
        self.assertEqual(
            errors(captured),
            ["Feature bad failed to start: RuntimeError: no start today; it is off"],
        )
        self.assertEqual(n.features(), ["good"])
        self.failureResultOf(n.call_admin("getBad"), AdminError)  # what it registered is gone
        self.assertAnswers(n)
        self.successResultOf(n.stopService())
        self.flushLoggedErrors(RuntimeError)

    def test_failing_stop_service(self) -> None:
        n, captured = self.started(FakeFeature("bad", fail_at="stop"))
        self.successResultOf(n.stopService())
        self.assertEqual(
            errors(captured), ["Feature bad failed to stop cleanly: OSError: cannot stop"]
        )
        self.flushLoggedErrors(OSError)

    def test_failed_to_load(self) -> None:
        n, captured = self.started(
            FakeFeature("good"), failures=[Failure("broken", "ImportError: no module x")]
        )
        self.assertIn(
            "Features: broken (failed: ImportError: no module x), good (on)", captured.texts()
        )
        self.assertAnswers(n)

    def test_method_name_taken(self) -> None:
        """The node's own names are reserved; between features, the first to register
        (they start in name order) keeps a name, compared whatever its case."""
        n, captured = self.started(
            FakeFeature("alpha", ("getWord",)),
            FakeFeature("beta", ("GETWORD", "getpeers", "getBeta")),
        )
        self.assertEqual(
            errors(captured),
            [
                "Feature beta: admin method GETWORD refused: the name is taken by feature alpha",
                "Feature beta: admin method getpeers refused: the name is taken by the node itself",
            ],
        )
        beta = n.getServiceNamed("feature:beta").service
        self.assertEqual(beta.registered, [False, False, True])
        self.assertEqual(n.features(), ["alpha", "beta"])
        self.assertEqual(self.successResultOf(n.call_admin("getword")), {"word": "x"})
        self.assertIn("peers", self.successResultOf(n.call_admin("getPeers")))
        self.successResultOf(n.call_admin("getBeta"))


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
        found = features.discover().features
        self.assertEqual([f.name for f in found], sorted(f.name for f in found))
        self.assertEqual([f.name for f in features.discover().features], [f.name for f in found])
        self.assertEqual(
            [f.name for f in found], ["autopeer", "crawler", "meshname", "radv"]
        )  # Popura's, found by their entry points like anyone's
        for feature in found:
            verifyObject(IFeature, feature)
