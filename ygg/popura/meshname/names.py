"""Meshname names: derived from mesh addresses.

A node owns the DNS zone ``<label>.meshname.``, where ``<label>`` is its 16-byte address in
RFC 4648 base32 without the padding, lowercased (26 characters).  Whoever wants a name in
that zone asks the DNS server on UDP port 53 of the address the label decodes to.

This module holds the encoding, the table of top-level domains and what they map to, the
``Listen`` address syntax and the text of a ``Meshname`` section.  It stays cheap to
import (the commands use it); the DNS server and the zone records are imported only when
the feature runs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from ygg.interfaces import ConfigError, YggError

#: Top-level domains served, each with the network its labels must decode into.  Popura
#: 0.4.x passes ygg, meshname and popura; vapordns is the name Popura 0.4.0+popura2 used.
MESH_NETWORK = ipaddress.IPv6Network("200::/7")
TLDS: Mapping[str, ipaddress.IPv6Network] = {
    "meshname": MESH_NETWORK,
    "ygg": MESH_NETWORK,
    "popura": MESH_NETWORK,
    "vapordns": MESH_NETWORK,
}
#: ``<label>.meship`` is answered locally with the address the label decodes to.
MESHIP = "meship"
#: The TLD written in generated records.
DEFAULT_TLD = "meshname"
LABEL_LENGTH = 26
DEFAULT_TTL = 3600


class MeshnameError(YggError, ValueError):
    """A label that is not the base32 form of a 16-byte address, or an unusable address."""


def domain_from_ip(ip: str | bytes | ipaddress.IPv6Address) -> str:
    """The meshname label of an IPv6 address (text, 16 bytes or an ``IPv6Address``)."""
    if isinstance(ip, ipaddress.IPv6Address):
        packed = ip.packed
    elif isinstance(ip, bytes):
        if len(ip) != 16:
            raise MeshnameError(f"an IPv6 address is 16 bytes, not {len(ip)}")
        packed = ip
    else:
        try:
            packed = ipaddress.IPv6Address(ip.strip().strip("[]")).packed
        except ValueError:
            raise MeshnameError(f"not an IPv6 address: {ip!r}") from None
    return base64.b32encode(packed)[:LABEL_LENGTH].decode("ascii").lower()


def ip_from_label(label: str | bytes) -> ipaddress.IPv6Address:
    """The address a meshname label stands for.

    As zhoreeq/meshname decodes it: uppercase, add the six ``=`` of padding, base32-decode,
    and insist on exactly 16 bytes.  The unused low bits of the last character are not
    checked, so a few spellings decode to the same address.
    """
    text = label.decode("ascii", "replace") if isinstance(label, bytes) else label
    try:
        data = base64.b32decode(text.upper() + "======")
    except (binascii.Error, ValueError):
        raise MeshnameError(f"{text!r} is not a base32 label") from None
    if len(data) != 16:
        raise MeshnameError(f"{text!r} decodes to {len(data)} bytes, not a 16-byte address")
    return ipaddress.IPv6Address(data)


def split_name(name: str) -> tuple[str, ...]:
    """The labels of a domain name, lowercased, without the root."""
    return tuple(part for part in name.strip().lower().rstrip(".").split(".") if part)


def address_of_name(name: str) -> ipaddress.IPv6Address:
    """The address behind a meshname domain (``x.<label>.meshname``) or a bare label."""
    labels = split_name(name)
    if not labels:
        raise MeshnameError("empty name")
    if len(labels) == 1:
        return ip_from_label(labels[0])
    tld = labels[-1]
    if tld not in TLDS and tld != MESHIP:
        raise MeshnameError(f"{name!r} is not under .meshname, .ygg, .popura or .meship")
    address = ip_from_label(labels[-2])
    if tld in TLDS and address not in TLDS[tld]:
        raise MeshnameError(f"{address} is outside {TLDS[tld]}, which .{tld} names")
    return address


def parse_listen(text: str) -> tuple[str, int]:
    """``Listen`` as Go's net package reads host:port: an IPv6 literal in brackets, an IPv4
    literal, or no host (all interfaces).  Names are not resolved."""
    host, sep, port_text = text.strip().rpartition(":")
    bad = ConfigError("Meshname.Listen", f"expected [IPv6]:port or IPv4:port, got {text!r}")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise bad
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        version = 6
    elif ":" in host:
        raise bad  # an IPv6 literal must be bracketed
    else:
        version = 4
    if host == "":
        return "::", int(port_text)
    try:
        parsed = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise bad from None
    if parsed.version != version:
        raise bad
    return host, int(port_text)


def default_record(address: ipaddress.IPv6Address) -> str:
    """The record ``meshnameconf`` writes: the zone's apex points at the node itself."""
    return f"{domain_from_ip(address)}.{DEFAULT_TLD}. AAAA {address}"


def section_for(
    address: ipaddress.IPv6Address,
    listen: str = "[::1]:53535",
    existing: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """A ``Meshname`` section, enabled, whose Config keeps ``existing`` and gives the
    address's label the default record when it has none."""
    records = {label: list(lines) for label, lines in (existing or {}).items()}
    label = domain_from_ip(address)
    if not records.get(label):
        records[label] = [default_record(address)]
    return {"Enable": True, "Listen": listen, "Config": records}


def format_section(section: Mapping[str, Any]) -> str:
    """HJSON text of a ``Meshname`` section, to paste into the outermost object of a config."""
    lines = [
        "Meshname: {",
        f"  Enable: {'true' if section['Enable'] else 'false'}",
        f"  Listen: {json.dumps(section['Listen'])}",
        "  Config: {",
    ]
    for label, records in section["Config"].items():
        lines.append(f"    {json.dumps(label)}: [")
        lines.extend(f"      {json.dumps(record)}" for record in records)
        lines.append("    ]")
    lines += ["  }", "}"]
    return "\n".join(lines)


def ip_from_text(text: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(text.strip().strip("[]"))
    except ValueError:
        raise MeshnameError(f"not an IPv6 address: {text!r}") from None
