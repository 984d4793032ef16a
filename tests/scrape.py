"""Metrics in tests as Prometheus reads them: collectors rendered into a page by
prometheus_client, and the page parsed back by prometheus_client's own parsers."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def page(*collectors: Any, openmetrics: bool = False) -> str:
    """The page a scrape of these collectors gets (Prometheus text, or OpenMetrics)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    render = generate_openmetrics if openmetrics else generate_latest
    return render(registry).decode()


def samples(text: str, openmetrics: bool = False) -> Samples:
    """Every sample of a page, by (name, labels); parsing it is part of the check."""
    parse = parse_om if openmetrics else text_string_to_metric_families
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def named(found: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of one name, by their labels."""
    return {labels: v for (n, labels), v in found.items() if n == name}
