"""Popura's DHT crawler as a feature: ``DHTCrawler { Enable: true }`` or ``--dhtcrawler``
(``-dhtcrawler`` in yggdrasil's flag spelling, as Popura 0.3 took it).

It adds the admin methods ``getDHTCrawl`` and ``getDHTCrawlProgress``.  The walk itself,
``ygg.popura.crawler_service``, is imported only when the feature runs; ``ygg crawl`` (in
``ygg.popura.crawler``) is the command-line client.
"""

from __future__ import annotations

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ygg.config import DHTCrawlerConfig
from ygg.interfaces import FeatureOption, IFeature, INode


@implementer(IPlugin, IFeature)
class CrawlerFeature:
    name = "crawler"
    section = "DHTCrawler"
    schema = DHTCrawlerConfig
    options = (
        FeatureOption(
            "dhtcrawler",
            "Enable",
            "Enable the getDHTCrawl admin method (a crawl of the whole network).",
        ),
    )

    def makeService(self, node: INode, config: DHTCrawlerConfig) -> Any:
        from ygg.popura.crawler_service import CrawlerService

        return CrawlerService(node, config)


crawler = CrawlerFeature()
