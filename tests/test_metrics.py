"""The Prometheus endpoint (ygg.metrics): the config section, what is imported when, the
collector on whole nodes in memory (links of both versions over iosim pairs), the features'
collectors, the page over a real socket, and every name documented in docs/metrics.md.

The real Prometheus server scraping a node peered with the Go node is
tests/test_interop_metrics.py."""

from __future__ import annotations

import gzip
import json
import re
import socket
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.application.service import Service
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from zope.interface import implementer

from tests.helpers import PYTHON, ROOT
from tests.processes import run
from tests.scrape import named, page, samples, value
from tests.test_v05_node import START, STEP, Nodes, RecordingPort, spec
from ygg import config, features
from ygg.config import MetricsConfig
from ygg.errors import ConfigError
from ygg.interfaces import FeatureOption, IFeature
from ygg.links.protocol import LinkProtocol
from ygg.links.versions import V04, V05
from ygg.metrics.collector import NodeCollector
from ygg.metrics.service import MetricsService
from ygg.service import Node

DOCS = (ROOT / "docs" / "metrics.md").read_text()


def metrics_node(
    versions: tuple[str, ...] = (V04, V05),
    name: str = "",
    found: tuple[Any, ...] = (),
    **sections: Any,
) -> Node:
    """A node on a MemoryReactorClock with Metrics on (its port is the memory reactor's)."""
    data = {
        "AdminListen": "none",
        "IfName": "none",
        "MulticastInterfaces": [],
        "ProtocolVersions": list(versions),
        "NodeInfo": {"name": name},
        "Metrics": {"Enable": True, "Listen": "127.0.0.1:0"},
        **sections,
    }
    cfg, _ = config.parse(json.dumps(data))
    clock = MemoryReactorClock()
    clock.advance(START)
    return Node(cfg, clock, discovery=features.Discovery(tuple(found), (), ()))


def scrape(node: Node, openmetrics: bool = False) -> dict:
    """The node's page, parsed back (the parser is part of the check)."""
    registry = node.metrics.registry
    return samples(page(registry, openmetrics=openmetrics), openmetrics)


class Captured:
    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def at_least(self, level: LogLevel) -> list[str]:
        return [formatEvent(e) for e in self.events if e["log_level"] >= level]


# --------------------------------------------------------------------------- configuration


class ConfigTests(SynchronousTestCase):
    def test_off_by_default_on_loopback(self) -> None:
        cfg, warnings = config.parse("{}")
        self.assertEqual(cfg.metrics, MetricsConfig(False, "[::1]:9464"))
        self.assertEqual(cfg.metrics.address, ("::1", 9464))
        self.assertEqual(warnings, [])
        data = config.to_data(cfg, sections="all")
        self.assertEqual(data["Metrics"], {"Enable": False, "Listen": "[::1]:9464"})
        self.assertNotIn("Metrics", config.to_data(cfg))  # normaliseconf keeps files as they are

    def test_listen_forms(self) -> None:
        for text, address in (
            ("[::1]:9464", ("::1", 9464)),
            ("127.0.0.1:9100", ("127.0.0.1", 9100)),
            (":9464", ("::", 9464)),
            ("[::]:0", ("::", 0)),
        ):
            cfg, _ = config.parse(json.dumps({"metrics": {"listen": text}}))
            self.assertEqual(cfg.metrics.address, address, text)

    def test_bad_listen_is_one_line_even_when_off(self) -> None:
        for text, reason in (
            ("localhost:9464", "'localhost' is not an IP address (names are not resolved)"),
            ("::1:9464", "an IPv6 address needs brackets, [::1]:9464"),
            ("[::1]", "expected host:port such as [::1]:9464, got '[::1]'"),
            ("[::1]:65536", "expected host:port such as [::1]:9464, got '[::1]:65536'"),
            ("[127.0.0.1]:1", "brackets are for IPv6 addresses, got '[127.0.0.1]:1'"),
        ):
            with self.assertRaises(ConfigError) as caught:
                config.parse(json.dumps({"Metrics": {"Enable": False, "Listen": text}}))
            self.assertEqual(str(caught.exception), f"Metrics.Listen: {reason}")
        with self.assertRaises(ConfigError) as caught:
            config.parse('{"Metrics": {"Enable": "yes"}}')
        self.assertEqual(str(caught.exception), 'Metrics.Enable: expected true or false, got "yes"')


# --------------------------------------------------------------------------- off and on


IMPORTS = """
import dataclasses, sys
from twisted.internet.testing import MemoryReactorClock
from ygg import config, features
from ygg.service import Node
cfg, _ = config.parse('{"IfName": "none", "AdminListen": "none", "MulticastInterfaces": [],'
                      ' "Metrics": {"Enable": %s, "Listen": "127.0.0.1:0"}}')
node = Node(cfg, MemoryReactorClock(), discovery=features.Discovery((), (), ()))
node.startService()
print(sorted(n for n in ("prometheus_client", "twisted.web.server") if n in sys.modules))
"""


class ImportTests(SynchronousTestCase):
    def loaded(self, enable: str) -> list[str]:
        done = run([PYTHON, "-c", IMPORTS % enable], cwd=str(ROOT))
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout.strip().replace("'", '"'))

    def test_prometheus_client_and_twisted_web_only_when_on(self) -> None:
        self.assertEqual(self.loaded("false"), [])
        self.assertEqual(self.loaded("true"), ["prometheus_client", "twisted.web.server"])


class ServiceTests(SynchronousTestCase):
    def test_off_no_service_and_features_are_told(self) -> None:
        cfg, _ = config.parse('{"IfName": "none", "AdminListen": "none"}')
        node = Node(cfg, MemoryReactorClock(), discovery=features.Discovery((), (), ()))
        self.assertIsNone(node.metrics)
        self.assertFalse(node.register_metrics(NodeCollector(node)))
        self.assertRaises(KeyError, node.getServiceNamed, "metrics")

    def test_listens_where_configured_and_says_so(self) -> None:
        captured = Captured(self)
        node = metrics_node()
        node.startService()
        self.addCleanup(node.stopService)
        ((port, _, _, interface),) = node.reactor.tcpServers
        self.assertEqual((port, interface), (0, "127.0.0.1"))
        self.assertIn(
            "Metrics: serving Prometheus metrics on http://127.0.0.1:0/metrics",
            [formatEvent(e) for e in captured.events],
        )
        self.assertEqual(captured.at_least(LogLevel.warn), [])

    def test_page_parses_in_both_formats(self) -> None:
        node = metrics_node()
        node.startService()
        self.addCleanup(node.stopService)
        for openmetrics in (False, True):
            found = scrape(node, openmetrics)
            info = named(found, "ygg_node_info")
            (labels,) = info
            self.assertEqual(dict(labels)["key"], node.public_key.hex())
            self.assertEqual(dict(labels)["protocols"], "0.4,0.5")
            self.assertEqual(value(found, "ygg_sessions", network="0.5"), 0)
            self.assertEqual(value(found, "ygg_tree_entries", network="0.5"), 1)  # ourselves
            self.assertEqual(value(found, "ygg_dht_entries", network="0.4"), 0)
            self.assertEqual(
                value(found, "ygg_link_rtt_seconds_bucket", le="+Inf", version="0.5"), 0
            )


# --------------------------------------------------------------------------- the node's numbers


class MetricsNodes(Nodes):
    """Whole nodes with Metrics on, linked in memory (tests/test_v05_node.py's harness)."""

    def node(self, versions: tuple[str, ...], name: str = "") -> Node:
        node = metrics_node(versions, name)
        node.startService()
        node.tun.port = RecordingPort()  # type: ignore[assignment]
        node.tun.mtu = node.tun.max_mtu
        self.nodes.append(node)
        self.addCleanup(node.stopService)
        return node


def peer(found: dict, name: str, link: LinkProtocol) -> float | None:
    """The sample of ``name`` for the link ``link``."""
    stats = link.stats()
    return value(
        found,
        name,
        key=link.remote_key.hex(),  # type: ignore[union-attr]
        remote=stats.remote,
        version=link.version or "",
        inbound="true" if stats.inbound else "false",
    )


class PeerTests(MetricsNodes):
    def test_bytes_packets_uptime_cost_per_link_of_both_versions(self) -> None:
        dual = self.node((V04, V05), "dual")
        new = self.node((V04, V05), "new")
        old = self.node((V04,), "old")
        to_new, from_dual = self.link(dual, new)
        to_old, _ = self.link(dual, old)
        self.advance(6.0)
        self.assertTrue(self.reaches(dual, new, b"over v0.5"))
        self.assertTrue(self.reaches(dual, old, b"over v0.4"))
        self.assertEqual((to_new.version, to_old.version), (V05, V04))
        found = scrape(dual)
        for link in (to_new, to_old):
            stats = link.stats()
            self.assertEqual(peer(found, "ygg_peer_received_bytes_total", link), stats.bytes_recvd)
            self.assertEqual(peer(found, "ygg_peer_sent_bytes_total", link), stats.bytes_sent)
            self.assertGreater(link.packets_recvd, 0)
            self.assertEqual(
                peer(found, "ygg_peer_received_packets_total", link), link.packets_recvd
            )
            self.assertEqual(peer(found, "ygg_peer_sent_packets_total", link), link.packets_sent)
            self.assertAlmostEqual(peer(found, "ygg_peer_uptime_seconds", link), stats.uptime)
        # Each frame one side wrote is one the other read.
        self.assertEqual(to_new.packets_sent, from_dual.packets_recvd)
        self.assertEqual(to_new.packets_recvd, from_dual.packets_sent)
        self.assertEqual(peer(found, "ygg_peer_cost", to_new), 1)
        self.assertIsNone(peer(found, "ygg_peer_cost", to_old))  # v0.4 has no cost
        # The listener's side of the same link is inbound.
        self.assertIsNotNone(peer(scrape(new), "ygg_peer_received_bytes_total", from_dual))
        self.assertEqual(value(found, "ygg_links_up_total", version="0.5", inbound="false"), 1)
        self.assertEqual(value(found, "ygg_links_up_total", version="0.4", inbound="false"), 1)
        self.assertEqual(value(scrape(new), "ygg_links_up_total", version="0.5", inbound="true"), 1)
        # Each network's tables, as the admin API shows them.
        for network, router, core in (
            ("0.4", dual.router, dual.core),
            ("0.5", dual.router05, dual.core05),
        ):
            self.assertEqual(value(found, "ygg_sessions", network=network), 1)
            self.assertEqual(
                value(found, "ygg_paths", network=network),
                len(router.get_paths()),  # type: ignore[union-attr]
            )
            self.assertEqual(
                value(found, "ygg_tree_depth", network=network),
                len(router.get_self().coords),  # type: ignore[union-attr]
            )
            del core
        self.assertEqual(value(found, "ygg_dht_entries", network="0.4"), len(dual.router.get_dht()))
        self.assertEqual(
            value(found, "ygg_tree_entries", network="0.5"),
            dual.router05.get_self().routing_entries,  # type: ignore[union-attr]
        )
        self.assertEqual(value(found, "ygg_bloom_filters", network="0.5"), 1)
        self.assertGreaterEqual(value(found, "ygg_bloom_bits_set", network="0.5"), 8)

    def test_rtt_gauge_and_histogram(self) -> None:
        a = self.node((V05,), "a")
        b = self.node((V05,), "b")
        client = LinkProtocol(a.links, lambda _: spec(a, True, "198.51.100.1:1"))
        server = LinkProtocol(b.links, lambda _: spec(b, False, "198.51.100.1:1"))
        server_io, client_io = iosim.makeFakeServer(server), iosim.makeFakeClient(client)
        self.pumps.append(iosim.connect(server, server_io, client, client_io, greet=False))
        # One pump per 20 ms step: an answer comes back one step after its question.  A
        # link's latency is unknown again while its next question is out: step until known.
        for _ in range(int(10.0 / STEP)):
            for node in self.nodes:
                node.reactor.advance(STEP)
            for pump in self.pumps:
                pump.pump()
            (info,) = a.router05.get_peers()  # type: ignore[union-attr]
            if info.latency is not None:
                break
        self.assertIsNotNone(info.latency)
        found = scrape(a)
        rtt = peer(found, "ygg_peer_rtt_seconds", client)
        self.assertEqual(rtt, info.latency)
        bucket = f"{next(b for b in (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1) if rtt <= b)!r}"
        self.assertEqual(value(found, "ygg_link_rtt_seconds_bucket", version="0.5", le=bucket), 1)
        self.assertEqual(value(found, "ygg_link_rtt_seconds_bucket", version="0.5", le="0.001"), 0)
        self.assertEqual(value(found, "ygg_link_rtt_seconds_gcount", version="0.5"), 1)
        self.assertAlmostEqual(value(found, "ygg_link_rtt_seconds_gsum", version="0.5"), rtt)


class LinkEventTests(MetricsNodes):
    def test_down_by_reason(self) -> None:
        a = self.node((V04, V05))
        b = self.node((V04, V05))
        c = self.node((V04,))
        d = self.node((V04, V05))
        to_b, _ = self.link(a, b)
        _, at_c = self.link(a, c)
        _, from_a = self.link(a, d)
        self.advance(3.0)
        to_b.close("peer removed")  # removePeer
        at_c.transport.loseConnection()  # the remote closes its end
        from_a.close("not in AllowedPublicKeys")  # d's AllowedPublicKeys changed
        self.advance(1.0)
        found = scrape(a)
        self.assertEqual(
            value(scrape(d), "ygg_links_down_total", version="0.5", inbound="true", reason="key"),
            1,
        )
        self.assertEqual(
            value(found, "ygg_links_down_total", version="0.5", inbound="false", reason="removed"),
            1,
        )
        self.assertEqual(
            value(found, "ygg_links_down_total", version="0.4", inbound="false", reason="closed"), 1
        )

    def test_failed_handshakes_by_reason(self) -> None:
        node = self.node((V04, V05))

        def inbound(remote: str) -> tuple[LinkProtocol, StringTransport]:
            link = LinkProtocol(node.links, lambda _: spec(node, False, remote))
            transport = StringTransport()
            link.makeConnection(transport)
            return link, transport

        garbage, _ = inbound("198.51.100.10:1")
        garbage.dataReceived(b"GET / HTTP/1.1\r\n")
        silent, _ = inbound("198.51.100.11:1")
        node.reactor.advance(2.0)  # a dialer silent this long is answered in v0.4 …
        node.reactor.advance(6.0)  # … and has 6 s from then
        gone, _ = inbound("198.51.100.12:1")
        for link in (garbage, silent, gone):
            link.connectionLost(Failure(ConnectionDone()))
        failed = {
            (labels["version"], labels["reason"]): count
            for labels, count in (
                (dict(labels), count)
                for labels, count in named(scrape(node), "ygg_links_failed_total").items()
            )
        }
        # The silent one had been answered in v0.4 when its time ran out.
        self.assertEqual(failed, {("", "malformed"): 1, ("0.4", "timeout"): 1, ("", "closed"): 1})


class DropAndAdminTests(MetricsNodes):
    def test_drops_by_layer_network_and_reason(self) -> None:
        node = self.node((V04, V05))
        node.tun.deliver(b"\x45" + bytes(39))  # IPv4 from the kernel
        node.tun.deliver(b"\x60" + bytes(10))  # too short for IPv6
        found = scrape(node)
        self.assertEqual(
            value(found, "ygg_drops_total", layer="ipv6", network="", reason="not-ipv6"), 1
        )
        self.assertEqual(
            value(found, "ygg_drops_total", layer="ipv6", network="", reason="undersized"), 1
        )
        flat = node.drop_counts()
        total = sum(flat["ipv6"].values()) + sum(flat["tun"].values())
        self.assertEqual(sum(named(found, "ygg_drops_total").values()), total)

    def test_admin_requests_by_method_door_and_result(self) -> None:
        node = self.node((V04, V05))
        node.call_admin("getSelf")
        node.admin.call(node, "getPeers", door="json")
        node.admin.call(node, "getPeers", door="json")
        self.failureResultOf(node.admin.call(node, "getNodeInfo", {"key": 1}, door="amp"))
        self.failureResultOf(node.admin.call(node, "noSuchThing", door="shell"))
        found = scrape(node)
        requests = {
            tuple(sorted(dict(labels).items())): count
            for labels, count in named(found, "ygg_admin_requests_total").items()
        }
        self.assertEqual(
            requests,
            {
                (("door", "node"), ("method", "getself"), ("result", "ok")): 1,
                (("door", "json"), ("method", "getpeers"), ("result", "ok")): 2,
                (("door", "amp"), ("method", "getnodeinfo"), ("result", "error")): 1,
                (("door", "shell"), ("method", "unknown"), ("result", "error")): 1,
            },
        )


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class WatchConfig:
    enable: bool = config.setting("Enable", False)


class Good:
    def collect(self) -> Any:
        family = CounterMetricFamily("ygg_watch_things", "Things.", labels=("kind",))
        family.add_metric(["a"], 3)
        yield family
        yield GaugeMetricFamily("ygg_peer_cost", "Squatting on the node's name.", value=1)


class Broken:
    def collect(self) -> Any:
        raise RuntimeError("no numbers today")


class WatchService(Service):
    def __init__(self, node: Any) -> None:
        self.node = node
        self.registered: list[bool] = []

    def startService(self) -> None:
        super().startService()
        self.registered = [self.node.register_metrics(c) for c in (Good(), Broken())]


@implementer(IFeature)
class WatchFeature:
    name = "watch"
    section = "Watch"
    schema = WatchConfig
    options = (FeatureOption("watch", "Enable", "on"),)

    def makeService(self, node: Any, section: Any) -> WatchService:
        return WatchService(node)


class FeatureCollectorTests(SynchronousTestCase):
    def test_registered_prefixed_guarded_and_gone_with_the_feature(self) -> None:
        captured = Captured(self)
        node = metrics_node(found=(WatchFeature(),), Watch={"Enable": True})
        node.startService()
        service = node.getServiceNamed("feature:watch").service
        self.assertEqual(service.registered, [True, True])
        for _ in range(2):
            found = scrape(node)
            self.assertEqual(value(found, "ygg_watch_things_total", kind="a"), 3)
            self.assertEqual(named(found, "ygg_peer_cost"), {})  # not the feature's name
            self.assertEqual(value(found, "ygg_sessions", network="0.4"), 0)  # the rest is there
        self.assertEqual(
            sorted(captured.at_least(LogLevel.warn)),
            [
                "Metrics of feature watch: its collector raised no numbers today",
                "Metrics of feature watch: ygg_peer_cost left out: its metrics are named "
                "ygg_watch_…",
            ],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # at debug level
        self.successResultOf(node.stopService())
        self.assertEqual(node.metrics.features.owners, {})


# --------------------------------------------------------------------------- names and docs


class NamingTests(MetricsNodes):
    def test_names_follow_the_conventions_and_are_documented(self) -> None:
        a = self.node((V04, V05))
        b = self.node((V04,))
        self.link(a, b)
        self.advance(3.0)
        text = page(a.metrics.registry)
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        self.assertGreater(len(types), 20)
        for name, kind in types.items():
            self.assertRegex(name, r"^ygg_[a-z0-9_]+$")
            documented = re.sub(r"_(gcount|gsum)$", "", name)  # a gauge histogram's parts
            self.assertIn(f"`{documented}", DOCS, f"{name} is not in docs/metrics.md")
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
            if "seconds" in name or "bytes" in name:
                self.assertRegex(documented, r"_(seconds|bytes)(_total)?$")
        for feature in ("meshname", "autopeer", "crawler", "radv"):
            self.assertIn(f"ygg_{feature}_", DOCS)


# --------------------------------------------------------------------------- over HTTP


class HTTPTests(TestCase):
    """The page over a real socket (the node itself on a memory reactor)."""

    def serve(self, listen: str = "127.0.0.1:0") -> MetricsService:
        node = metrics_node()
        service = MetricsService(node, MetricsConfig(True, listen), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    @defer.inlineCallbacks
    def test_metrics_gzip_openmetrics_and_nothing_else(self):
        service = self.serve()
        base = f"http://127.0.0.1:{service.port.getHost().port}"
        agent = Agent(reactor)
        response = yield agent.request(b"GET", f"{base}/metrics".encode())
        body = (yield readBody(response)).decode()
        self.assertEqual(response.code, 200)
        (kind,) = response.headers.getRawHeaders(b"content-type")
        self.assertTrue(kind.startswith(b"text/plain; version=0.0.4"), kind)
        self.assertIn("ygg_node_info", {f[0] for f in samples(body)})
        headers = Headers(
            {
                b"accept": [b"application/openmetrics-text; version=1.0.0"],
                b"accept-encoding": [b"gzip"],
            }
        )
        response = yield agent.request(b"GET", f"{base}/metrics".encode(), headers)
        raw = yield readBody(response)
        self.assertEqual(response.headers.getRawHeaders(b"content-encoding"), [b"gzip"])
        (kind,) = response.headers.getRawHeaders(b"content-type")
        self.assertTrue(kind.startswith(b"application/openmetrics-text"), kind)
        text = gzip.decompress(raw).decode()
        self.assertTrue(text.endswith("# EOF\n"))
        self.assertIn("ygg_node_info", {f[0] for f in samples(text, openmetrics=True)})
        response = yield agent.request(b"GET", f"{base}/".encode())
        yield readBody(response)
        self.assertEqual(response.code, 404)

    def test_port_in_use_is_one_error_and_metrics_off(self):
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        self.addCleanup(held.close)
        port = held.getsockname()[1]
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service = self.serve(f"127.0.0.1:{port}")
        self.assertIsNone(service.port)
        errors = [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(
            errors,
            [
                f"Metrics: cannot listen on 127.0.0.1:{port}: Address already in use; "
                "metrics are off"
            ],
        )
