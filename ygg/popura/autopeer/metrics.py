"""Autopeering's metrics (docs/metrics.md): probes by result, switches, the choice.

Read at scrape time from the service's own counts; prometheus_client is imported only
then, so a node without metrics never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class AutopeerCollector:
    """A prometheus_client collector of one ``AutopeerService``."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        service = self.service
        probes = CounterMetricFamily(
            "ygg_autopeer_probes",
            "Candidates probed, by result (ok, version, key, handshake, timeout, unreachable, "
            "error).",
            labels=("version", "result"),
        )
        switches = CounterMetricFamily(
            "ygg_autopeer_switches",
            "Dials of a newly chosen autopeer, by result (connected, failed).",
            labels=("version", "result"),
        )
        chosen = GaugeMetricFamily(
            "ygg_autopeer_chosen_latency_seconds",
            "Handshake time of the peer chosen last, when it was measured.",
            labels=("version", "uri"),
        )
        candidates = GaugeMetricFamily(
            "ygg_autopeer_candidates", "Peers in the list for this version.", labels=("version",)
        )
        quarantined = GaugeMetricFamily(
            "ygg_autopeer_quarantined", "Peers in quarantine now.", labels=("version",)
        )
        held = service.quarantine.active()
        for version, network in service.networks.items():
            for result, count in sorted(network.probes.items()):
                probes.add_metric([version, result], count)
            for result, count in sorted(network.switches.items()):
                switches.add_metric([version, result], count)
            choice = network.chosen
            if choice is not None and choice.latency is not None:
                chosen.add_metric([version, choice.candidate.uri], choice.latency)
            candidates.add_metric([version], len(network.candidates))
            quarantined.add_metric([version], sum(1 for e in held if e.version == version))
        yield from (probes, switches, chosen, candidates, quarantined)
