"""The RAdv feature: Router Advertisements of the node's 300::/64 on a LAN interface.

Enabled by the config section ``RAdv { Enable: true, Interface: "eth0", … }`` (Popura's
keys; no command-line switch, as in Popura).  Linux only.  The service (``.service``) is
imported only when the feature runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from ygg.interfaces import IFeature, INode, setting


@dataclass(frozen=True)
class RAdvConfig:
    enable: bool = setting("Enable", False)
    interface: str = setting("Interface", "eth0")
    set_gateway_ip: bool = setting("SetGatewayIP", True)
    default_router: bool = setting("DefaultRouter", False)
    dns: bool = setting("DNS", False)


@implementer(IFeature)
class RAdvFeature:
    name = "radv"
    section = "RAdv"
    schema = RAdvConfig
    description = """Popura's router advertisements: give the LAN on Interface addresses in
this node's 300::/64 subnet by SLAAC (needs IPv6 forwarding on)."""
    options = ()
    commands = ()

    def makeService(self, node: INode, config: RAdvConfig) -> Any:
        from ygg.popura.radv.service import RAdvService

        return RAdvService(node, config)


feature = RAdvFeature()
