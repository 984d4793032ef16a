"""Popura's DHT crawler as a feature: ``DHTCrawler { Enable: true }`` or ``--dhtcrawler``
(``-dhtcrawler`` in yggdrasil's flag spelling, as Popura 0.3 took it).

It adds, per protocol version the node runs, the admin methods ``getDHTCrawl`` and
``getDHTCrawlProgress`` (v0.4) or ``getTreeCrawl`` and ``getTreeCrawlProgress`` (v0.5),
and the command ``ygg crawl``.  The walk (``.service``) is imported only when the feature runs, the
command's client (``.command``) only when the command runs, and its drawing (``.map``,
the optional ``map`` extra) only when it is asked for a map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from ygg.interfaces import Command, FeatureOption, IFeature, INode, setting


@dataclass(frozen=True)
class DHTCrawlerConfig:
    enable: bool = setting("Enable", False)


def _crawl(argv: list[str]) -> int:
    from ygg.popura.crawler.command import main

    return main(argv)


@implementer(IFeature)
class CrawlerFeature:
    name = "crawler"
    section = "DHTCrawler"
    schema = DHTCrawlerConfig
    description = """Popura's crawler: the admin methods getDHTCrawl (v0.4) and getTreeCrawl
(v0.5), which walk the whole network of each version the node runs."""
    options = (
        FeatureOption(
            "dhtcrawler",
            "Enable",
            "Enable the getDHTCrawl (v0.4) and getTreeCrawl (v0.5) admin methods "
            "(a crawl of the whole network).",
        ),
    )
    commands = (
        Command(
            "crawl",
            "crawl the whole network through a node's getDHTCrawl and getTreeCrawl "
            "(DHTCrawler enabled); --network picks one, --map draws it as .svg, .png or .html",
            _crawl,
        ),
    )

    def makeService(self, node: INode, config: DHTCrawlerConfig) -> Any:
        from ygg.popura.crawler.service import CrawlerService

        return CrawlerService(node, config)


feature = CrawlerFeature()
