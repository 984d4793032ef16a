"""Popura's autopeering as a feature: ``Autopeering { Enable: true }`` or ``--autopeer``.

Cheap to import: the implementation (``ygg.popura.autopeer``) is imported only when the
feature is enabled.  The built-in peer list is data beside this module
(``data/peers.txt``, made by ``contrib/compile-peers.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ygg.config import AutopeeringConfig
from ygg.interfaces import FeatureOption, IFeature, INode

BUILTIN_PEERS = Path(__file__).parent / "data" / "peers.txt"


@implementer(IPlugin, IFeature)
class AutopeerFeature:
    name = "autopeer"
    section = "Autopeering"
    schema = AutopeeringConfig
    options = (
        FeatureOption(
            "autopeer",
            "Enable",
            "Automatic Internet peering: while no Internet peer is connected, connect one "
            "of the 10 public peers with least latency (from yggdrasil-network/public-peers).",
        ),
    )

    def makeService(self, node: INode, config: AutopeeringConfig) -> Any:
        from ygg.popura.autopeer import AutopeerService

        return AutopeerService(node, config, builtin=BUILTIN_PEERS)


autopeer = AutopeerFeature()
