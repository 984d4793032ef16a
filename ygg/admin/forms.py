"""Which admin API a node answers: yggdrasil 0.4.7's, 0.5.12's, or the union of both.

A node running only v0.4 answers exactly as 0.4.7 does, one running only v0.5 exactly as
0.5.12 does; a node running both answers each method with the members both versions'
yggdrasilctl read (docs/admin.md has the table).  Both clients send the same request, so
the node cannot tell them apart; where a reply cannot serve both (getMulticastInterfaces),
the client chooses with the argument ``version=0.4`` or ``version=0.5``, which any method
whose reply differs between the versions takes on a node running both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ygg.interfaces import AdminError, Arg
from ygg.links.versions import V04, V05

__all__ = [
    "BOTH",
    "ONE_VERSION",
    "TWO_VERSIONS",
    "V04",
    "V05",
    "VERSION_ARG",
    "WITH_04",
    "WITH_05",
    "Gate",
    "node_form",
    "node_versions",
    "reply_form",
]

#: The form of a node running both versions: the union of 0.4.7's and 0.5.12's replies.
BOTH = "both"

VERSION_ARG = Arg("version", help="0.4 or 0.5: the reply as that version's node gives it")

_ONLY_04 = frozenset((V04,))


def node_versions(node: Any) -> frozenset[str]:
    """The protocol versions the node runs (its ProtocolVersions); a node without a
    config (a test's stand-in) runs v0.4, as every node did before v0.5."""
    versions = getattr(getattr(node, "config", None), "protocol_versions", None)
    return frozenset(versions) if versions else _ONLY_04


def node_form(node: Any) -> str:
    """``"0.4"``, ``"0.5"`` or ``BOTH``: whose replies the node gives by default."""
    versions = node_versions(node)
    if V05 not in versions:
        return V04
    return V05 if V04 not in versions else BOTH


def reply_form(node: Any, args: dict[str, Any]) -> str:
    """The form of this reply: the node's, or on a node running both, the one the
    ``version`` argument asks for."""
    form = node_form(node)
    wanted = args.get("version", "")
    if form != BOTH or not wanted:
        return form
    if wanted not in (V04, V05):
        raise AdminError(f"version {wanted!r} unknown: 0.4 or 0.5")
    return wanted


@dataclass(frozen=True)
class Gate:
    """Which kinds of node have a method: the sets of versions it is there for."""

    kinds: frozenset[frozenset[str]]

    def admits(self, versions: frozenset[str]) -> bool:
        return versions in self.kinds


_ONLY_05 = frozenset((V05,))
_BOTH = frozenset((V04, V05))
#: The gates of the builtin methods that differ between the kinds of node.
WITH_04 = Gate(frozenset((_ONLY_04, _BOTH)))  # getDHT, debug_remoteGetDHT
WITH_05 = Gate(frozenset((_ONLY_05, _BOTH)))  # getTree, debug_remoteGetTree
ONE_VERSION = Gate(frozenset((_ONLY_04, _ONLY_05)))  # the form without ``version=``
TWO_VERSIONS = Gate(frozenset((_BOTH,)))  # the form with it
