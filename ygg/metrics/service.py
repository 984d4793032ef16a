"""Serving the metrics: a private registry, a /metrics page on Twisted's web server.

The registry is the node's own ``CollectorRegistry`` (never prometheus_client's global
one): the node's collector and, through :class:`FeatureCollectors`, what features
registered with ``INode.register_metrics``.  The page is rendered on the reactor's
thread — the node's state is only ever read there — by prometheus_client's encoders,
in whichever format the scraper asks for (Prometheus text or OpenMetrics), gzipped when
it accepts that.  A port that cannot be bound is one error line: metrics are off, the
node runs on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.logger import Logger, LogLevel
from twisted.python import log as legacy_log
from twisted.web.resource import EncodingResourceWrapper, Resource
from twisted.web.server import GzipEncoderFactory, Request, Site

from ygg.config import MetricsConfig
from ygg.metrics.collector import NodeCollector

log = Logger(namespace="ygg.metrics")

#: An idle scraper's keep-alive connection is closed after this long (Prometheus scrapes
#: every 15 s by default, and reconnects when it must).
IDLE_TIMEOUT = 120


class MetricsPage(Resource):
    """/metrics: the registry in the format the scraper accepts."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        request.setHeader(b"content-type", content_type.encode("latin-1"))
        return encoder(self.registry)


class _NotFound(Resource):
    """Anything but /metrics: a plain-text 404 (twisted.web.pages costs 17 ms of imports)."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"Not found: metrics are at /metrics\n"


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NotFound()


class _QuietSite(Site):
    """A site that writes no access log line per scrape."""

    noisy = False

    def log(self, request: Request) -> None:
        pass


class FeatureCollectors:
    """The features' collectors, as one collector of the registry.

    Each feature's families must be named ``ygg_<feature>_…``: a name of the node's own
    (or another feature's) twice in one page would make Prometheus refuse the whole
    scrape.  A collector that raises, or a family outside its prefix, is left out and
    logged once; the rest of the page is served.
    """

    def __init__(self) -> None:
        #: owner -> its collectors, in registration order.
        self.owners: dict[str, list[Any]] = {}
        self._reported: set[tuple[str, str]] = set()

    def add(self, collector: Any, owner: str) -> None:
        collectors = self.owners.setdefault(owner, [])
        if collector not in collectors:
            collectors.append(collector)

    def remove(self, collector: Any, owner: str) -> None:
        collectors = self.owners.get(owner, [])
        if collector in collectors:
            collectors.remove(collector)
        if not collectors:
            self.owners.pop(owner, None)

    def remove_owner(self, owner: str) -> None:
        self.owners.pop(owner, None)

    @staticmethod
    def prefix(owner: str) -> str:
        if owner == "ygg":  # the node's own extra collectors (INode on the Node itself)
            return "ygg_"
        return "ygg_" + re.sub(r"[^a-zA-Z0-9_]", "_", owner) + "_"

    def collect(self) -> Iterator[Metric]:
        for owner, collectors in list(self.owners.items()):
            prefix = self.prefix(owner)
            for collector in list(collectors):
                try:
                    families = list(collector.collect())
                except Exception as e:
                    if self._once(owner, type(e).__name__, "its collector raised {error}", error=e):
                        log.failure("Metrics of {owner}", owner=owner, level=LogLevel.debug)
                    continue
                for family in families:
                    if family.name.startswith(prefix):
                        yield family
                    else:
                        self._once(
                            owner,
                            family.name,
                            "{name} left out: its metrics are named {prefix}…",
                            name=family.name,
                            prefix=prefix,
                        )

    def _once(self, owner: str, what: str, text: str, **fields: Any) -> bool:
        """Log ``text`` the first time ``owner`` gets ``what`` wrong; whether it did."""
        if (owner, what) in self._reported:
            return False
        self._reported.add((owner, what))
        log.error("Metrics of feature {owner}: " + text, owner=owner, **fields)
        return True


class MetricsService(Service):
    """The endpoint: ``http://Listen/metrics`` while the node runs."""

    def __init__(self, node: Any, config: MetricsConfig, reactor: Any) -> None:
        self.setName("metrics")
        self.reactor = reactor
        self.host, self.port_number = config.address
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(node))
        self.features = FeatureCollectors()
        self.registry.register(self.features)
        root = _Root()
        root.putChild(
            b"metrics", EncodingResourceWrapper(MetricsPage(self.registry), [GzipEncoderFactory()])
        )
        self.site = _QuietSite(root, timeout=IDLE_TIMEOUT)
        self.port: Any = None

    @property
    def where(self) -> str:
        host = self.host
        port = self.port.getHost().port if self.port is not None else self.port_number
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def startService(self) -> None:
        super().startService()
        try:
            # The port's own "Site starting on …" line goes to debug; ours says more.
            self.port = legacy_log.callWithContext(
                {"log_level": LogLevel.debug},
                self.reactor.listenTCP,
                self.port_number,
                self.site,
                interface=self.host,
            )
        except (error.CannotListenError, OSError) as e:
            reason = getattr(getattr(e, "socketError", None), "strerror", None) or str(e)
            log.error(
                "Metrics: cannot listen on {where}: {reason}; metrics are off",
                where=self.where,
                reason=reason,
            )
            return
        log.info("Metrics: serving Prometheus metrics on http://{where}/metrics", where=self.where)

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        return defer.maybeDeferred(port.stopListening)
