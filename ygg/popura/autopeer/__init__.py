"""Popura's autopeering as a feature: ``Autopeering { Enable: true }`` or ``--autopeer``.

This module is what the node loads at every start (the ``ygg.features`` entry point), so it
holds only the feature object and its schema; the service (``.service``) is imported when
the feature is enabled.  The built-in peer lists lie beside it (made by
``contrib/compile-peers.py``, each entry tagged with the protocol version it serves):
``peers.txt``, public-peers' 2022 snapshot of v0.4 peers, and ``peers-v05.txt``, a
current snapshot of v0.5 peers.  A node reads the lists of the versions it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zope.interface import implementer

from ygg.interfaces import FeatureOption, IFeature, INode, setting

#: The v0.4 list (public-peers bcf561e).
BUILTIN_PEERS = Path(__file__).parent / "peers.txt"
#: The v0.5 list (a current public-peers commit, named in its header).
BUILTIN_PEERS_V05 = Path(__file__).parent / "peers-v05.txt"
#: The built-in list of each protocol version.
BUILTIN_LISTS = {"0.4": BUILTIN_PEERS, "0.5": BUILTIN_PEERS_V05}


@dataclass(frozen=True)
class AutopeeringConfig:
    enable: bool = setting("Enable", False)
    #: Peer URIs to choose from instead of the built-in public list.
    peers: tuple[str, ...] = setting("Peers", ())
    #: A file of peer URIs (one per line) instead of the built-in list.
    peers_file: str = setting("PeersFile", "")
    #: "random" (one of the 10 fastest, as documented) or "fastest" (what Popura's binary does).
    pick: str = setting("Pick", "random", choices=("random", "fastest"))


@implementer(IFeature)
class AutopeerFeature:
    name = "autopeer"
    section = "Autopeering"
    schema = AutopeeringConfig
    description = """Popura's autopeering: with no peers connected, pick one of the 10 peers
with least latency from a public list and keep one such peer connected (one per protocol
version the node runs)."""
    options = (
        FeatureOption(
            "autopeer",
            "Enable",
            "Automatic Internet peering: while no Internet peer is connected, connect one "
            "of the 10 public peers with least latency (from yggdrasil-network/public-peers), "
            "one per protocol version the node runs.",
        ),
    )
    commands = ()

    def makeService(self, node: INode, config: AutopeeringConfig) -> Any:
        from ygg.popura.autopeer.service import AutopeerService

        return AutopeerService(node, config, builtin=BUILTIN_LISTS)


feature = AutopeerFeature()
