"""The crawler's metrics (docs/metrics.md): walks by result and what the last one found.

Read at scrape time from the crawlers' own counts; prometheus_client is imported only
then, so a node without metrics never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

#: The last walk's ``meta`` counts shown, by their label.
NODE_COUNTS = {
    "attempted": "nodes_attempted",
    "answered": "nodes_successful",
    "nodeinfo": "nodeinfo_successful",
}


class CrawlerCollector:
    """A prometheus_client collector of the crawlers, one per network (version)."""

    def __init__(self, crawlers: Mapping[str, Any]) -> None:
        self.crawlers = crawlers

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        runs = CounterMetricFamily(
            "ygg_crawler_runs",
            "Walks of the network that ended, by result (finished, failed).",
            labels=("version", "result"),
        )
        running = GaugeMetricFamily(
            "ygg_crawler_running", "1 while a walk runs.", labels=("version",)
        )
        nodes = GaugeMetricFamily(
            "ygg_crawler_last_nodes",
            "Nodes the last finished walk found, by kind (attempted, answered, nodeinfo).",
            labels=("version", "kind"),
        )
        took = GaugeMetricFamily(
            "ygg_crawler_last_duration_seconds",
            "How long the last finished walk took.",
            labels=("version",),
        )
        when = GaugeMetricFamily(
            "ygg_crawler_last_finished_timestamp_seconds",
            "When the last finished walk was generated (Unix time).",
            labels=("version",),
        )
        for version, crawler in self.crawlers.items():
            for result in ("finished", "failed"):
                runs.add_metric([version, result], crawler.results[result])
            current = crawler.current
            running.add_metric([version], 1 if current is not None and current.running else 0)
            meta = crawler.last_meta
            if meta is None:
                continue
            for kind, key in NODE_COUNTS.items():
                nodes.add_metric([version, kind], meta[key])
            took.add_metric([version], meta["crawl_time_seconds"])
            when.add_metric([version], meta["generated_at_utc"])
        yield from (runs, running, nodes, took, when)
