"""What a query name is to the meshname server: ours, another node's, or none of ours.

``classify`` is the one place that reads a query name against the TLD table, our labels
and ``.meship``; the authority answers the first kinds, the forwarder the ``REMOTE`` one.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, NamedTuple

from ygg.popura.meshname.names import MESHIP, TLDS, MeshnameError, ip_from_label

if TYPE_CHECKING:
    from ygg.popura.meshname.zone import Zone


class Target(NamedTuple):
    """What a query name is to this server."""

    kind: str  # one of the constants below
    address: ipaddress.IPv6Address | None = None
    apex: bytes = b""  # our zone's apex (label.tld), for OWN


REFUSED = "refused"  # not a name we answer for
TLD = "tld"  # a bare top-level domain: exists, holds nothing
NXDOMAIN = "nxdomain"  # cannot exist
OWN = "own"  # under one of our labels
MESHIP_NAME = "meship"  # <label>.meship
REMOTE = "remote"  # another node's name: forward


def classify(
    name: bytes,
    zone: Zone,
    local: frozenset[ipaddress.IPv6Address] = frozenset(),
    meship: bool = True,
) -> Target:
    """Where a name belongs.  ``local``: addresses whose names we must answer ourselves
    because forwarding to them would reach this very server."""
    labels = name.lower().rstrip(b".").split(b".")
    if labels == [b""]:
        return Target(REFUSED)
    try:
        tld = labels[-1].decode("ascii")
    except UnicodeDecodeError:
        return Target(REFUSED)
    if meship and tld == MESHIP:
        if len(labels) == 1:
            return Target(TLD)
        if len(labels) > 2:
            return Target(NXDOMAIN)
        try:
            return Target(MESHIP_NAME, ip_from_label(labels[0]))
        except MeshnameError:
            return Target(NXDOMAIN)
    network = TLDS.get(tld)
    if network is None:
        return Target(REFUSED)
    if len(labels) == 1:
        return Target(TLD)
    label = labels[-2].decode("ascii", "replace")
    try:
        address: ipaddress.IPv6Address | None = ip_from_label(labels[-2])
    except MeshnameError:
        address = None
    apex = labels[-2] + b"." + labels[-1]
    if zone.owns(label, address) or (address is not None and address in local):
        return Target(OWN, address, apex)
    if address is None:
        return Target(NXDOMAIN)
    if address not in network:
        return Target(REFUSED)
    return Target(REMOTE, address)
