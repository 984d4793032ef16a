"""PeerWatch: logs the node's peers coming and going, and remembers the last events.

This module is what the node imports at every start (the entry point names ``feature``),
so it holds only the feature object, its config schema and its command: cheap to import.
The service is imported when the feature is enabled, the command's code when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from ygg.interfaces import Command, FeatureOption, IFeature, INode, setting


@dataclass(frozen=True)
class PeerWatchConfig:
    """The section ``PeerWatch { Enable, Interval, Keep }``."""

    enable: bool = setting("Enable", False)
    #: Seconds between looks at the peers.
    interval: int = setting("Interval", 10, min=1, max=3600)
    #: How many events getPeerWatch keeps.
    keep: int = setting("Keep", 100, min=1, max=10_000)


def _command(argv: list[str]) -> int:
    from ygg_peerwatch.command import main

    return main(argv)


@implementer(IFeature)
class PeerWatchFeature:
    name = "peerwatch"
    section = "PeerWatch"
    schema = PeerWatchConfig
    description = """PeerWatch (example plugin): log peers coming and going every Interval
seconds; getPeerWatch shows the last Keep events."""
    options = (
        FeatureOption("peerwatch", "Enable", "Watch peers come and go."),
        FeatureOption("peerwatchinterval", "Interval", "Seconds between looks.", True),
    )
    commands = (Command("peerwatch", "show the node's last peer events (PeerWatch)", _command),)

    def makeService(self, node: INode, config: PeerWatchConfig) -> Any:
        from ygg_peerwatch.service import PeerWatchService

        return PeerWatchService(node, config)


feature = PeerWatchFeature()
