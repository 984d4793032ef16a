"""RAdv's metrics (docs/metrics.md): Router Advertisements sent, solicitations heard.

Read at scrape time from the service's own counts; prometheus_client is imported only
then, so a node without metrics never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class RAdvCollector:
    """A prometheus_client collector of one ``RAdvService``."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        service = self.service
        stats = service.stats
        labels = [service.config.interface]
        for name, key, text in (
            ("ygg_radv_advertisements", "advertisements", "Router Advertisements sent."),
            ("ygg_radv_solicitations", "solicitations", "Router Solicitations answered."),
        ):
            family = CounterMetricFamily(name, text, labels=("interface",))
            family.add_metric(labels, stats[key])
            yield family
        errors = CounterMetricFamily(
            "ygg_radv_errors",
            "Solicitations too malformed to answer, and advertisements the socket refused.",
            labels=("interface", "reason"),
        )
        errors.add_metric([*labels, "malformed"], stats["malformed"])
        errors.add_metric([*labels, "send"], stats["send errors"])
        yield errors
        advertising = GaugeMetricFamily(
            "ygg_radv_advertising", "1 while advertising on the interface.", labels=("interface",)
        )
        advertising.add_metric(labels, 1 if service.advertising else 0)
        yield advertising
