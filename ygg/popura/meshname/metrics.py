"""Meshname's metrics (docs/metrics.md): queries, answers by RCODE, forwards and their latency.

The server counts as it goes (a ``Counter`` of events, one of RCODEs, the forward
latencies in :class:`Latencies`); :class:`MeshnameCollector` turns those into
Prometheus families when the node's metrics endpoint is scraped.  prometheus_client is
imported only there, so a node without metrics never loads it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from typing import Any

#: Upper bounds of the forward latency histogram, seconds (the upstream timeout is 5 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

#: The server's event counts (``MeshnameService.stats``) as (family, label) pairs.
FORWARD_FAILURES = {
    "busy": "busy",
    "no tun": "no-tun",
    "upstream unreachable": "unreachable",
    "upstream timeouts": "timeout",
}
REQUEST_ERRORS = {
    "malformed": "malformed",  # answered FORMERR
    "dropped": "unreadable",  # not even a header: dropped
    "unsent": "unsent",  # the reply could not be written
    "tcp refused": "tcp-refused",  # too many TCP clients
}


class Latencies:
    """Forward latencies as a cumulative histogram's counts: what Prometheus keeps."""

    __slots__ = ("counts", "sum", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound
        self.total = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(repr, LATENCY_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class MeshnameCollector:
    """A prometheus_client collector of one running meshname server."""

    def __init__(self, stats: Counter, rcodes: Counter, latencies: Latencies) -> None:
        self.stats = stats
        self.rcodes = rcodes
        self.latencies = latencies

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        stats = self.stats
        yield CounterMetricFamily(
            "ygg_meshname_queries", "DNS requests read.", value=stats["queries"]
        )
        answers = CounterMetricFamily(
            "ygg_meshname_answers", "DNS replies sent, by RCODE.", labels=("rcode",)
        )
        for code, count in sorted(self.rcodes.items()):
            answers.add_metric([RCODES.get(code, str(code))], count)
        yield answers
        yield CounterMetricFamily(
            "ygg_meshname_forwards",
            "Queries forwarded to the meshname server of the node a name encodes.",
            value=stats["forwarded"],
        )
        failures = CounterMetricFamily(
            "ygg_meshname_forward_failures",
            "Forwards that got no answer, by reason (busy, no-tun, unreachable, timeout).",
            labels=("reason",),
        )
        for key, reason in FORWARD_FAILURES.items():
            failures.add_metric([reason], stats[key])
        yield failures
        errors = CounterMetricFamily(
            "ygg_meshname_request_errors",
            "Requests not answered normally (malformed, unreadable, unsent, tcp-refused).",
            labels=("reason",),
        )
        for key, reason in REQUEST_ERRORS.items():
            errors.add_metric([reason], stats[key])
        yield errors
        latencies = self.latencies
        yield HistogramMetricFamily(
            "ygg_meshname_forward_duration_seconds",
            "Seconds from forwarding a query to the remote server's answer.",
            buckets=latencies.buckets(),
            sum_value=latencies.sum,
        )
