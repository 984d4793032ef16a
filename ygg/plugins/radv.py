"""The RAdv feature: Router Advertisements of the node's 300::/64 on a LAN interface.

Enabled by the config section ``RAdv { Enable: true, Interface: "eth0", … }`` (Popura's
keys; no command-line switch, as in Popura).  Linux only.  The implementation,
``ygg.popura.radv``, is imported only when the feature runs.
"""

from __future__ import annotations

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ygg.config import RAdvConfig
from ygg.interfaces import IFeature, INode


@implementer(IPlugin, IFeature)
class RAdvFeature:
    name = "radv"
    section = "RAdv"
    schema = RAdvConfig
    options = ()

    def makeService(self, node: INode, config: RAdvConfig) -> Any:
        from ygg.popura.radv import RAdvService

        return RAdvService(node, config)


radv = RAdvFeature()
