"""Popura's meshname DNS server as a feature: ``Meshname { Enable, Listen, Config }``.

Switches: ``--meshname`` (Enable) and ``--meshnamelisten ADDR`` (Listen), also spelled
``-meshname`` and ``-meshnamelisten`` as Popura 0.4.2+ takes them.  The server itself is in
``ygg.popura.meshname_dns`` and is imported only when the feature is enabled.
"""

from __future__ import annotations

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ygg.config import MeshnameConfig
from ygg.interfaces import FeatureOption, IFeature, INode


@implementer(IPlugin, IFeature)
class MeshnameFeature:
    name = "meshname"
    section = "Meshname"
    schema = MeshnameConfig
    options = (
        FeatureOption("meshname", "Enable", "Enable the meshname DNS server."),
        FeatureOption(
            "meshnamelisten",
            "Listen",
            'Where the meshname DNS server listens, host:port (default "[::1]:53535").',
            takes_value=True,
        ),
    )

    def makeService(self, node: INode, config: MeshnameConfig) -> Any:
        from ygg.popura.meshname_dns import MeshnameService

        return MeshnameService(node, config)


meshname = MeshnameFeature()
