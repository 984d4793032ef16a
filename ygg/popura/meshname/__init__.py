"""Popura's meshname DNS server as a feature: ``Meshname { Enable, Listen, Config }``.

Switches: ``--meshname`` (Enable) and ``--meshnamelisten ADDR`` (Listen), also spelled
``-meshname`` and ``-meshnamelisten`` as Popura 0.4.2+ takes them.  Commands:
``ygg meshname encode|decode`` and ``ygg meshnameconf`` (``.commands``).  The server
(``.service`` and the modules it uses) is imported only when the feature is enabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from ygg.interfaces import Command, FeatureOption, IFeature, INode, setting

DEFAULT_LISTEN = "[::1]:53535"


@dataclass(frozen=True)
class MeshnameConfig:
    enable: bool = setting("Enable", False)
    listen: str = setting("Listen", DEFAULT_LISTEN)
    #: label -> zone-file records served for that label.
    config: Mapping[str, tuple[str, ...]] = setting("Config", factory=dict)


def _meshname(argv: list[str]) -> int:
    from ygg.popura.meshname.commands import cmd_meshname

    return cmd_meshname(argv)


def _meshnameconf(argv: list[str]) -> int:
    from ygg.popura.meshname.commands import cmd_meshnameconf

    return cmd_meshnameconf(argv)


@implementer(IFeature)
class MeshnameFeature:
    name = "meshname"
    section = "Meshname"
    schema = MeshnameConfig
    description = """Popura's meshname: a DNS server for .meshname names on Listen. Config
maps a label of yours to zone-file records served for it."""
    options = (
        FeatureOption("meshname", "Enable", "Enable the meshname DNS server."),
        FeatureOption(
            "meshnamelisten",
            "Listen",
            f'Where the meshname DNS server listens, host:port (default "{DEFAULT_LISTEN}").',
            takes_value=True,
        ),
    )
    commands = (
        Command("meshname", "meshname labels: encode ADDRESS, decode NAME", _meshname),
        Command(
            "meshnameconf",
            "print a Meshname config section for a node (its default AAAA record)",
            _meshnameconf,
            go_flag=True,
        ),
    )

    def makeService(self, node: INode, config: MeshnameConfig) -> Any:
        from ygg.popura.meshname.service import MeshnameService

        return MeshnameService(node, config)


feature = MeshnameFeature()
